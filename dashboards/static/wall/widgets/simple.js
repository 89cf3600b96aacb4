// The widgets that hold no figures: the clock (in the deployment's zone,
// learnt from the figures' as_of), the header (the dashboard's title, the
// area, the window, how fresh the figures are and the connection) and
// free text.

import { Widget } from './base.js';
import { h, bi, setBi, setText, setData } from '../dom.js';
import { pick, timeText, dateText, WINDOWS } from '../text.js';

export class Clock extends Widget {
  constructor(board, spec) { super(board, spec, { title: false }); }

  init() {
    this.time = h('div', { class: 'clock-time' });
    this.date = bi('clock-date', '', '', 1);
    this.date.dataset.optional = '2';
    this.body.append(this.time, this.date);
    // The deployment's zone comes with the first figures; until then (or
    // if they never come) the browser's.
    this.listen('figures', (snap) => {
      if (snap) this.svc.clock.learn(snap.as_of);
      this.zoned = true;
      this.changed();
    });
    this.board.after(3000, () => { this.zoned = true; this.changed(); });
    this.board.every(1000, () => { if (this.zoned) this.changed(); });
  }

  render() {
    if (!this.zoned) return;
    const c = this.svc.clock;
    const now = c.now();
    setText(this.time, timeText(now, c.offsetOr()));
    const [vi, en] = dateText(now, c.offsetOr());
    setBi(this.date, vi, en);
    this.paint();
  }
}

export class Header extends Widget {
  constructor(board, spec) { super(board, spec, { title: false }); }

  get onUnit() { return true; }

  init() {
    const [vi, en] = pick(this.o.text || this.board.def.title);
    this.title = bi('header-title', vi, en, 2);
    this.area = h('span', { class: 'header-area' });
    const [wvi, wen] = WINDOWS[this.board.window] || [this.board.window, ''];
    this.win = bi('header-window', wvi, wen, 1);
    this.asOf = h('span', { class: 'header-asof', data: { optional: 3 } });
    this.conn = h('span', { class: 'header-conn', data: { state: '' } });
    this.body.append(h('div', { class: 'header-main' }, this.title), h('div', { class: 'header-side' }, this.area, this.win, this.asOf, this.conn));
    this.listen('figures', (snap) => {
      if (!snap) return;
      this.svc.clock.learn(snap.as_of);
      this.as = snap.as_of;
      this.changed();
    });
    this.board.every(5000, () => this.changed());
    this.changed();
  }

  render() {
    const u = this.board.unit;
    setText(this.area, u && u.name ? u.name : this.board.area);
    const c = this.svc.clock;
    const t = Date.parse(this.as || '');
    setText(this.asOf, isFinite(t) ? `Số liệu lúc ${timeText(t, c.offsetOr())}` : '');
    this.asOf.title = 'figures as of';
    const st = this.svc.connection ? this.svc.connection() : '';
    setData(this.conn, 'state', st);
    setText(this.conn, { connected: '● Trực tiếp', connecting: '○ Đang kết nối', reconnecting: '○ Mất kết nối', offline: '○ Ngắt kết nối' }[st] || '');
    this.conn.title = { connected: 'live', connecting: 'connecting', reconnecting: 'reconnecting', offline: 'offline' }[st] || '';
    this.paint();
  }
}

export class Text extends Widget {
  constructor(board, spec) { super(board, spec, { title: !!spec.options && !!spec.options.title }); }

  init() {
    const [tvi, ten] = pick(this.o.title);
    if (this.titleEl) this.setTitle(tvi, ten);
    const [vi, en] = pick(this.o.text);
    this.body.append(bi('text-body', vi, en, 1));
    this.changed();
  }

  render() { this.paint(); }
}
