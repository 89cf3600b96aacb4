// What every widget shares: its box on the grid (a section with an
// optional bilingual title and a body), the board it belongs to, its
// first paint, and fitting its content to its box.

import { h, bi, setBi, setData, fitOptional } from '../dom.js';
import { pick, indicatorName, formatInt } from '../text.js';

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

  // notInCatalog shows, when the widget's indicator (this.id, this.def)
  // is not in the catalog, that it has nothing for that reason, and says
  // so.
  notInCatalog() {
    if (this.def) return false;
    this.fail(new Error(`indicator "${this.id}" is not in the catalog (GET /api/v1/kpis)`));
    return true;
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

  // fitRows leaves whole rows (this.rows, in this.ol) out from the end
  // until the list fits, saying in this.more how many are not listed, with
  // extra more left out before: a list on a wall does not scroll. It says
  // whether the list fits.
  fitRows(what, extra = 0) {
    let shown = this.rows.length;
    const over = () => this.body.scrollHeight > this.body.clientHeight + 1 || this.ol.scrollHeight > this.ol.clientHeight + 1;
    const more = () => {
      const left = this.rows.length - shown + extra;
      this.more.hidden = left <= 0;
      this.more.replaceChildren(bi('', `+${formatInt(left)} ${what} khác`, `+${left} more`, 1));
    };
    if (extra) more();
    while (shown > 1 && over()) {
      this.rows[--shown].remove();
      more();
    }
    setData(this.el, 'shown', String(shown));
    return !over();
  }

  changed() {
    this.board.schedule(this);
  }

  destroy() {
    for (const u of this.unlisten) u();
    this.unlisten = [];
  }
}
