// KPI tile: one indicator of the area over the dashboard's window — its
// figure (live from kpi/, or added up from the series API for an
// indicator kept only as history), the change against the window before
// (or a year before), the tone of the definition's thresholds, and a
// sparkline of the window from the series API.

import { Widget } from './base.js';
import { h, svg, bi, setBi, setText, setData, hide } from '../dom.js';
import { formatValue, formatChange, changeTone, unitText, compactCount, isNum, isTally } from '../text.js';
import { thresholdTone, catalogThresholds, TONES } from '../ramp.js';
import { comparePlan, splitPlan, combine, linePath, extent } from '../layout.js';
import { query, enc } from '../api.js';

const REFRESH = 5 * 60 * 1000; // the series behind change and sparkline

const AGAINST = {
  today: ['so với cùng giờ hôm qua', 'vs yesterday, same time'],
  '24h': ['so với 24 giờ trước đó', 'vs the 24 h before'],
  '7d': ['so với 7 ngày trước đó', 'vs the 7 days before'],
  '30d': ['so với 30 ngày trước đó', 'vs the 30 days before'],
  year_ago: ['so với cùng kỳ năm trước', 'vs a year ago'],
};

export class Kpi extends Widget {
  init() {
    this.id = this.o.indicator;
    this.def = this.indicator(this.id);
    const [vi, en] = this.indicatorTitle(this.id);
    this.setTitle(vi, en);
    if (this.notInCatalog()) return;
    // A department's figure comes by month or year: a window's hours or
    // days hold none of its periods, so it has no change or sparkline
    // unless the definition asks.
    const grained = !!this.def.grain;
    this.compare = ['previous_period', 'year_ago', 'none'].includes(this.o.compare) ? this.o.compare : grained ? 'none' : 'previous_period';
    this.spark = (grained ? this.o.sparkline === true : this.o.sparkline !== false) && this.def.history;
    this.value = null;
    this.haveValue = false;
    this.previous = null;
    this.points = null; // the window's steps, for the sparkline
    this.seriesDone = !this.def.history || (this.compare === 'none' && !this.spark && this.def.live);

    this.valueEl = h('span', { class: 'kpi-value', data: { value: '', indicator: this.id } });
    const [uvi] = unitText(this.def);
    this.unitEl = h('span', { class: 'kpi-unit' }, uvi);
    this.markEl = h('span', { class: 'kpi-mark', 'aria-hidden': 'true' });
    this.changeEl = h('div', { class: 'kpi-change', data: { optional: 3, tone: 'neutral' } });
    this.changeText = bi('', '', '', 1);
    this.changeEl.append(this.changeText);
    this.sparkEl = svg('svg', { class: 'kpi-spark', viewBox: '0 0 100 30', preserveAspectRatio: 'none', 'aria-hidden': 'true', 'data-optional': 2 });
    this.sparkPath = svg('path', { 'vector-effect': 'non-scaling-stroke' });
    this.sparkEl.append(this.sparkPath);
    // The tone's mark sits by the title, not by the figure: the widest
    // figure (100,0%) takes a narrow tile's whole width.
    const head = h('div', { class: 'kpi-head' });
    this.titleEl.replaceWith(head);
    head.append(this.titleEl, this.markEl);
    this.body.append(h('div', { class: 'kpi-main' }, this.valueEl, this.unitEl), this.changeEl, this.sparkEl);
    if (!this.spark) { this.sparkEl.dataset.empty = 'true'; hide(this.sparkEl, true); }
    if (this.compare === 'none' || !this.def.history) { this.changeEl.dataset.empty = 'true'; hide(this.changeEl, true); }

    // The live figures also give the deployment's zone, which the series
    // request needs to cut days.
    this.listen('figures', (snap, info) => {
      if (!snap) {
        if (!this.haveValue && this.def.live) this.fail(new Error(info.error));
        return;
      }
      this.svc.clock.learn(snap.as_of);
      if (this.def.live) {
        const v = snap.kpis ? snap.kpis[this.id] : undefined;
        this.value = this.def.kind === 'breakdown' ? sumOf(v) : (isNum(v) ? v : null);
        this.haveValue = true;
      }
      if (!this.fetched && this.def.history && !this.seriesDone) this.fetchSeries();
      this.changed();
    });
    this.board.every(REFRESH, () => { if (this.def.history && !this.seriesDone) this.fetchSeries(); });
  }

  async fetchSeries() {
    this.fetched = true;
    const clock = this.svc.clock;
    const plan = comparePlan(this.board.window, this.compare, clock.now(), clock.offsetOr());
    const q = query({ area: this.board.area, step: plan.step, from: plan.from, to: plan.to, compare: plan.compare });
    try {
      const s = await this.svc.api.get(`/api/v1/kpis/${enc(this.id)}/series${q}`);
      const { cur, prev } = splitPlan(plan, s.points);
      this.points = cur.map((p) => p.value);
      if (this.compare !== 'none') this.previous = combine(prev, this.def.kind);
      if (!this.def.live) {
        this.value = combine(cur, this.def.kind);
        this.haveValue = true;
      }
      this.seriesError = '';
    } catch (e) {
      this.seriesError = e.message;
      if (!this.def.live && !this.haveValue) {
        this.fail(e);
        return;
      }
    }
    this.seriesDone = true;
    this.changed();
  }

  render() {
    if (!this.def || !this.haveValue) return;
    const v = this.value;
    const compact = isTally(this.def) ? compactCount(v) : null;
    setText(this.valueEl, compact ? compact[0] : formatValue(this.def, v));
    setText(this.unitEl, compact ? compact[1] : unitText(this.def)[0]);
    setData(this.valueEl, 'value', isNum(v) ? String(v) : '');
    // The tile's own thresholds, else those the catalog gives.
    const tone = thresholdTone(this.o.thresholds || catalogThresholds(this.def), v, this.def.direction);
    setData(this.el, 'tone', tone || '');
    setText(this.markEl, tone && TONES[tone] ? TONES[tone].mark : '');
    if (this.compare !== 'none' && this.def.history) {
      const c = formatChange(this.def, v, this.previous);
      const against = AGAINST[this.compare === 'year_ago' ? 'year_ago' : this.board.window] || AGAINST.today;
      if (c) {
        const arrow = c.sign > 0 ? '▲' : c.sign < 0 ? '▼' : '●';
        setBi(this.changeText, `${arrow} ${c.vi} ${against[0]}`, `${c.en} ${against[1]}`);
        setData(this.changeEl, 'tone', changeTone(this.def, c.sign));
      } else {
        setBi(this.changeText, this.seriesDone ? 'Chưa có số liệu kỳ trước để so sánh' : '', this.seriesDone ? 'nothing to compare with' : '');
        setData(this.changeEl, 'tone', 'neutral');
      }
      setData(this.changeEl, 'previous', isNum(this.previous) ? String(this.previous) : '');
    }
    if (this.spark && this.points) {
      const [lo, hi] = extent([this.points], this.def.kind === 'count');
      this.sparkPath.setAttribute('d', linePath(this.points, 100, 28, lo, hi));
    }
    if (this.seriesDone) this.paint();
  }

  // fit drops the optional parts that do not fit, as every widget does;
  // a value too wide for its tile even then (100,0% in a sixth of the
  // screen's width) is set smaller, px by px, but on the wall theme never
  // under the 6% of the screen's height a value must keep to be read
  // from across the room; then the unit beside it (999,9 µg/m³), down to
  // the 2% any text keeps.
  fit() {
    this.valueEl.style.fontSize = '';
    this.unitEl.style.fontSize = '';
    super.fit();
    if (this.el.dataset.fits === 'true') return;
    const wall = (this.board.def.theme || 'wall') === 'wall';
    const shrink = (el, share) => {
      const full = parseFloat(getComputedStyle(el).fontSize);
      const floor = wall ? Math.min(full, Math.ceil(share * window.innerHeight)) : 0.8 * full;
      for (let size = Math.floor(full) - 1; size >= floor; size--) {
        el.style.fontSize = `${size}px`;
        super.fit();
        if (this.el.dataset.fits === 'true') return true;
      }
      return false;
    };
    if (!shrink(this.valueEl, 0.06) && this.unitEl.textContent) shrink(this.unitEl, 0.02);
  }
}

function sumOf(v) {
  if (!v || typeof v !== 'object') return null;
  let n = 0;
  for (const x of Object.values(v)) if (isNum(x)) n += x;
  return n;
}
