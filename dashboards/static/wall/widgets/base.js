// What every widget shares: its box on the grid (a section with an
// optional bilingual title and a body), the board it belongs to, its
// first paint, and fitting its content to its box.

import { h, bi, setBi, fitOptional } from '../dom.js';
import { pick, indicatorName } from '../text.js';

export class Widget {
  constructor(board, spec, { title = true } = {}) {
    this.board = board;
    this.spec = spec;
    this.o = spec.options && typeof spec.options === 'object' ? spec.options : {};
    this.el = h('section', { class: `widget w-${spec.type}`, data: { widget: spec.id, type: spec.type } });
    if (title) {
      this.titleEl = bi('w-title', '', '', 1);
      this.el.append(this.titleEl);
    }
    this.body = h('div', { class: 'w-body' });
    this.el.append(this.body);
    this.unlisten = [];
    this.done = false;
  }

  get safety() { return false; }
  get catalog() { return this.board.catalog; }
  get svc() { return this.board.svc; }

  // setTitle shows the definition's own title if it gives one, else vi/en.
  setTitle(vi, en) {
    if (!this.titleEl) return;
    const own = pick(this.o.title);
    if (own[0]) setBi(this.titleEl, own[0], own[1]);
    else setBi(this.titleEl, vi, en);
  }

  indicator(id) {
    return this.catalog.byId.get(id) || null;
  }

  indicatorTitle(id) {
    const d = this.indicator(id);
    return indicatorName(d, id);
  }

  listen(kind, fn) {
    this.unlisten.push(this.board.feed(kind).listen(fn));
  }

  init() {}
  render() {}

  // paint marks the first paint: the board counts it toward the full
  // render, and lets the others paint once the alarms have.
  paint() {
    if (this.done) return;
    this.done = true;
    this.board.painted(this);
  }

  // fail shows why the widget has nothing to show, and counts as its paint.
  fail(e) {
    const msg = e && e.message ? e.message : String(e || '');
    this.body.replaceChildren(h('p', { class: 'w-empty', data: { error: 'true' } }, bi('', 'Không có số liệu', msg ? `No data: ${msg}` : 'No data', 1)));
    this.paint();
  }

  // clipBoxes are the boxes whose content must fit: the body, and lists
  // inside it that hide what does not fit.
  clipBoxes() {
    return [this.body];
  }

  fit() {
    this.el.dataset.fits = String(fitOptional(this.el, this.clipBoxes()));
  }

  changed() {
    this.board.schedule(this);
  }

  destroy() {
    for (const u of this.unlisten) u();
    this.unlisten = [];
  }
}
