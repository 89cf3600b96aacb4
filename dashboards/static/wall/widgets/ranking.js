// Ranking of the area's children by an indicator: the top (highest) or
// bottom (lowest) n, as many rows as the box holds, the rest on pages
// that turn every page_seconds — a wall has no one to scroll. Live from
// map/ for an indicator with live figures, else from the ranking API.

import { Widget } from './base.js';
import { h, bi, setText, setData } from '../dom.js';
import { formatValue, isNum } from '../text.js';
import { rank, paginate, pageAt, rowsThatFit, localDate } from '../layout.js';
import { query, enc } from '../api.js';

const REFRESH = 5 * 60 * 1000;
const DAY = 864e5;

export class Ranking extends Widget {
  init() {
    this.id = this.o.indicator;
    this.def = this.indicator(this.id);
    const [vi, en] = this.indicatorTitle(this.id);
    this.order = this.o.order === 'bottom' ? 'bottom' : 'top';
    this.n = Math.max(1, Math.min(50, Math.floor(this.o.n) || 10));
    this.pageSeconds = Math.max(3, Math.min(600, Number(this.o.page_seconds) || 10));
    const [ovi, oen] = this.order === 'top' ? [`${this.n} cao nhất`, `top ${this.n}`] : [`${this.n} thấp nhất`, `bottom ${this.n}`];
    this.setTitle(`${vi} · ${ovi}`, en ? `${en}, ${oen}` : oen);
    if (this.notInCatalog()) return;
    this.items = null;
    this.perPage = 0;
    this.started = performance.now();
    this.list = h('ol', { class: 'rank-list' });
    this.pager = h('div', { class: 'rank-pager', data: { optional: 3 } });
    this.body.append(this.list, this.pager);
    if (this.def.live) {
      this.listen('children', (d, info) => {
        if (!d) {
          if (!this.items) this.fail(new Error(info.error));
          return;
        }
        if (!d.children || d.area !== this.board.area) return;
        this.items = rank(Object.entries(d.children).map(([area, c]) => ({ area, name: (c && c.name) || area, value: c && c.kpis ? c.kpis[this.id] : null })), this.order, this.n);
        this.changed();
      });
    } else {
      this.listen('figures', (snap) => {
        if (!snap) return;
        this.svc.clock.learn(snap.as_of);
        if (!this.fetched) this.fetch();
      });
      this.board.every(REFRESH, () => this.fetch());
    }
    this.board.every(this.pageSeconds * 1000, () => this.changed());
  }

  async fetch() {
    this.fetched = true;
    const clock = this.svc.clock;
    const now = clock.now();
    const off = clock.offsetOr();
    const days = { today: 1, '24h': 2, '7d': 7, '30d': 30 }[this.board.window] || 1;
    const q = query({ parent: this.board.area, from: localDate(now - (days - 1) * DAY, off), to: localDate(now, off), order: this.order === 'top' ? 'desc' : 'asc', limit: this.n });
    try {
      const r = await this.svc.api.get(`/api/v1/kpis/${enc(this.id)}/ranking${q}`);
      this.items = rank((r.items || []).map((it) => ({ area: it.area, name: it.name, value: it.value })), this.order, this.n);
      this.changed();
    } catch (e) {
      if (!this.items) this.fail(e);
    }
  }

  row(it, max) {
    const bar = h('span', { class: 'rank-bar', 'aria-hidden': 'true' });
    bar.style.setProperty('--share', String(isNum(it.value) && max > 0 ? Math.max(0, it.value / max) : 0));
    return h('li', { class: 'rank-row', data: { area: it.area, rank: it.rank, value: isNum(it.value) ? String(it.value) : '' } },
      h('span', { class: 'rank-n' }, String(it.rank)),
      h('span', { class: 'rank-name' }, it.name),
      bar,
      h('span', { class: 'rank-value' }, formatValue(this.def, it.value)));
  }

  clipBoxes() {
    return [this.body, this.list];
  }

  render() {
    if (!this.items) return;
    const items = this.items;
    const max = Math.max(0, ...items.map((x) => (isNum(x.value) ? x.value : 0)));
    if (!this.perPage) {
      // Measure one row to learn how many the box holds.
      this.list.replaceChildren(this.row(items[0] || { rank: 1, area: '', name: '–', value: null }, max));
      const rowH = this.list.firstChild.offsetHeight; // layout size: a preview scales the screen
      const gap = parseFloat(getComputedStyle(this.list).rowGap) || 0;
      this.pager.hidden = false;
      setText(this.pager, '1/1'); // measured with its text: it takes a line
      const fitAll = rowsThatFit(this.list.clientHeight + this.pager.offsetHeight, rowH, gap);
      this.perPage = Math.max(1, fitAll >= items.length ? items.length : rowsThatFit(this.list.clientHeight, rowH, gap));
    }
    const pages = paginate(items, this.perPage);
    const page = pageAt(pages.length, (performance.now() - this.started) / 1000, this.pageSeconds);
    this.list.replaceChildren(...pages[page].map((it) => this.row(it, max)));
    this.pager.dataset.empty = String(pages.length < 2);
    this.pager.hidden = pages.length < 2;
    setText(this.pager, pages.length > 1 ? `${page + 1}/${pages.length}` : '');
    setData(this.el, 'page', String(page + 1));
    setData(this.el, 'pages', String(pages.length));
    setData(this.el, 'items', items.map((x) => x.area + '=' + (isNum(x.value) ? x.value : '')).join(','));
    if (!items.length) this.list.replaceChildren(h('li', { class: 'w-empty' }, bi('', 'Chưa có đơn vị nào', 'No units', 1)));
    this.paint();
  }

  resize() { this.perPage = 0; }
}


