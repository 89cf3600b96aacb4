// Time-series chart of one or more indicators of the area, from the
// series API (days whole local days by step), drawn in SVG with its labels
// in HTML (so that they keep their size whatever the chart's scale). By
// day, today's point follows the live figures of kpi/{area}: the day so
// far is exactly the today window. Figures of different units get a scale
// each, left and right.

import { Widget } from './base.js';
import { h, svg, bi, setText, setData } from '../dom.js';
import { formatValue, isNum, isShare, indicatorName } from '../text.js';
import { seriesRange, linePath, extent, localDate, rfc3339 } from '../layout.js';
import { query, enc } from '../api.js';

// Okabe–Ito, told apart by every common colour blindness; dashes too.
export const LINE_COLOURS = ['#56b4e9', '#e69f00', '#009e73', '#f0e442', '#cc79a7', '#d55e00'];
const DASHES = ['', '6 4', '2 3', '10 3 2 3', '', '6 4'];
const REFRESH = 10 * 60 * 1000;
const STEPS = ['hour', 'day', 'week', 'month'];

export class Series extends Widget {
  init() {
    const ids = Array.isArray(this.o.indicators) ? this.o.indicators.filter((x) => typeof x === 'string') : [];
    this.ids = ids.length ? ids : typeof this.o.indicator === 'string' ? [this.o.indicator] : [];
    this.step = STEPS.includes(this.o.step) ? this.o.step : 'day';
    this.days = Math.max(1, Math.min(400, Math.floor(this.o.days) || 30));
    if (this.step === 'hour') this.days = Math.min(this.days, 31); // the API's cap for hours
    const names = this.ids.map((id) => indicatorName(this.indicator(id), id));
    this.setTitle(names.map((n) => n[0]).join(' · '), names.map((n) => n[1]).filter(Boolean).join(' · '));
    const missing = this.ids.filter((id) => !this.indicator(id) || !this.indicator(id).history);
    if (!this.ids.length || missing.length) {
      this.fail(new Error(this.ids.length ? `no history for ${missing.join(', ')} (GET /api/v1/kpis lists the indicators with history)` : 'the definition names no indicators'));
      return;
    }
    this.lines = this.ids.map((id, i) => ({ id, def: this.indicator(id), colour: LINE_COLOURS[i % LINE_COLOURS.length], dash: DASHES[i % DASHES.length], points: null }));
    this.plot = h('div', { class: 'series-plot' });
    this.chart = svg('svg', { class: 'series-svg', viewBox: '0 0 1000 300', preserveAspectRatio: 'none', 'aria-hidden': 'true' });
    this.grid = svg('g', { class: 'series-grid' });
    this.chart.append(this.grid);
    for (const l of this.lines) {
      l.path = svg('path', { 'vector-effect': 'non-scaling-stroke', stroke: l.colour, 'data-indicator': l.id });
      if (l.dash) l.path.setAttribute('stroke-dasharray', l.dash);
      // The latest figure as a dot: a line of one point draws nothing.
      l.dot = svg('path', { class: 'series-dot', 'vector-effect': 'non-scaling-stroke', stroke: l.colour });
      this.chart.append(l.path, l.dot);
    }
    this.yLeft = h('div', { class: 'series-y left' }, h('span'), h('span'));
    this.yRight = h('div', { class: 'series-y right' }, h('span'), h('span'));
    this.xAxis = h('div', { class: 'series-x', data: { optional: 2 } }, h('span'), h('span'));
    this.plot.append(this.yLeft, this.chart, this.yRight);
    this.legend = h('div', { class: 'series-legend' });
    for (const l of this.lines) {
      const sw = h('span', { class: 'series-swatch', 'aria-hidden': 'true' });
      sw.style.backgroundColor = l.colour;
      const [vi, en] = indicatorName(l.def, l.id);
      l.label = bi('', vi, en, 1);
      l.last = h('span', { class: 'series-last' });
      l.item = h('span', { class: 'series-item', data: { indicator: l.id } }, sw, l.label, l.last);
      this.legend.append(l.item);
    }
    this.body.append(this.plot, this.xAxis, this.legend);
    this.listen('figures', (snap) => {
      if (!snap) return;
      this.svc.clock.learn(snap.as_of);
      if (!this.fetched) this.fetch();
    });
    if (this.step === 'day') {
      this.listen('today', (snap) => {
        if (!snap || !snap.kpis) return;
        this.today = snap;
        this.changed();
      });
    }
    this.board.every(REFRESH, () => this.fetch());
  }

  async fetch() {
    this.fetched = true;
    const clock = this.svc.clock;
    const now = clock.now();
    const { from, to } = seriesRange(this.days, now, clock.offsetOr());
    // By hour the series ends now (to a date would add the day's hours to
    // come); by day, week or month, with the step holding today.
    const q = query({ area: this.board.area, step: this.step, from, to: this.step === 'hour' ? rfc3339(now, clock.offsetOr()) : to });
    try {
      const answers = await Promise.all(this.lines.map((l) => this.svc.api.get(`/api/v1/kpis/${enc(l.id)}/series${q}`)));
      answers.forEach((s, i) => { this.lines[i].points = Array.isArray(s.points) ? s.points : []; });
      this.changed();
    } catch (e) {
      if (!this.lines[0].points) this.fail(e);
    }
  }

  // values of a line, today's point from the live figures when by day.
  values(l) {
    const vals = l.points.map((p) => (isNum(p.value) ? p.value : null));
    if (this.step === 'day' && this.today && l.def.live && l.points.length) {
      const last = l.points[l.points.length - 1];
      const day = localDate(Date.parse(this.today.as_of), this.svc.clock.offsetOr());
      const v = this.today.kpis[l.id];
      if (typeof last.t === 'string' && last.t.slice(0, 10) === day && (isNum(v) || v === null)) vals[vals.length - 1] = v;
    }
    return vals;
  }

  render() {
    if (!this.lines || this.lines.some((l) => !l.points)) return;
    const units = [];
    for (const l of this.lines) {
      const u = isShare(l.def) ? 'ratio' : l.def.unit;
      if (!units.includes(u)) units.push(u);
      l.axis = Math.min(units.indexOf(u), 1);
    }
    const data = this.lines.map((l) => this.values(l));
    const scales = [0, 1].map((axis) => extent(data.filter((_, i) => this.lines[i].axis === axis), true));
    this.lines.forEach((l, i) => {
      const [lo, hi] = scales[l.axis];
      l.path.setAttribute('d', linePath(data[i], 1000, 300, lo, hi));
      let k = data[i].length - 1;
      while (k >= 0 && !isNum(data[i][k])) k--;
      if (k >= 0) {
        const x = data[i].length > 1 ? (k * 1000) / (data[i].length - 1) : 500;
        const y = 300 - ((data[i][k] - lo) / (hi - lo || 1)) * 300;
        l.dot.setAttribute('d', `M${x.toFixed(1)},${y.toFixed(1)}h0.01`);
      } else {
        l.dot.setAttribute('d', '');
      }
      const vals = data[i].filter(isNum);
      const last = data[i].length ? data[i][data[i].length - 1] : null;
      setText(l.last, formatValue(l.def, last));
      setData(l.item, 'last', isNum(last) ? String(last) : '');
      setData(l.item, 'points', String(vals.length));
    });
    const label = (axis, el) => {
      const l = this.lines.find((x) => x.axis === axis);
      el.hidden = !l;
      if (!l) return;
      setText(el.firstChild, formatValue(l.def, scales[axis][1]));
      setText(el.lastChild, formatValue(l.def, scales[axis][0]));
    };
    label(0, this.yLeft);
    label(1, this.yRight);
    const pts = this.lines[0].points;
    if (pts.length) {
      const when = (t) => t.slice(0, 10).split('-').reverse().join('/') + (this.step === 'hour' ? ' ' + t.slice(11, 16) : '');
      setText(this.xAxis.firstChild, when(pts[0].t));
      setText(this.xAxis.lastChild, when(pts[pts.length - 1].t));
    }
    if (!this.gridDrawn) {
      this.gridDrawn = true;
      for (const y of [0, 150, 300]) this.grid.append(svg('line', { x1: 0, x2: 1000, y1: y, y2: y, 'vector-effect': 'non-scaling-stroke' }));
    }
    this.paint();
  }
}


