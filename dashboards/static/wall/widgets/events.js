// Camera-event ticker: the newest camera events of the area at or above a
// severity, newest first, as many as the box holds, with how many more
// arrived. Live from events/ (a stream: each message applies once).

import { Widget } from './base.js';
import { h, bi, setData } from '../dom.js';
import { atLeast, eventType, timeText } from '../text.js';

const KEEP = 50; // events held; the box shows what fits

export class Events extends Widget {
  init() {
    this.min = this.o.min_severity;
    this.setTitle('Sự kiện camera', 'Camera events');
    this.entries = null; // newest first
    this.folded = 0;
    this.ol = h('ol', { class: 'event-list' });
    this.more = h('p', { class: 'event-more' });
    this.more.hidden = true;
    this.body.append(this.ol, this.more);
    this.listen('events', (d, info) => {
      if (!d) {
        if (!this.entries) this.fail(new Error(info.error));
        return;
      }
      if (d.area !== this.board.area || !Array.isArray(d.events)) return;
      this.svc.clock.learn(d.as_of);
      const fresh = d.events.filter((e) => e && typeof e.event_id === 'string');
      const folded = Number(d.folded) > 0 ? Math.floor(Number(d.folded)) : 0;
      if (info.act === 'snapshot' || !this.entries) {
        this.entries = fresh;
        this.folded = folded;
      } else {
        const ids = new Set(fresh.map((e) => e.event_id));
        this.entries = fresh.concat(this.entries.filter((e) => !ids.has(e.event_id)));
        this.folded += folded;
      }
      this.entries = this.entries.slice(0, KEEP);
      this.changed();
    });
  }

  clipBoxes() {
    return [this.body, this.ol];
  }

  render() {
    if (!this.entries) return;
    const off = this.svc.clock.offsetOr();
    const list = this.entries.filter((e) => atLeast(e.severity || 'info', this.min));
    this.rows = list.map((e) => {
      const [tvi, ten] = eventType(e.type);
      const at = Date.parse(e.occurred_at);
      const place = e.area_name || this.svc.areaName(e.area_code, () => this.changed());
      return h('li', { class: 'event', data: { event: e.event_id, type: String(e.type || ''), severity: String(e.severity || 'info') } },
        h('time', { class: 'event-time', datetime: String(e.occurred_at || '') }, isFinite(at) ? timeText(at, off) : ''),
        bi('event-type', tvi, ten, 1),
        h('span', { class: 'event-place', data: { optional: 2 } }, place || ''));
    });
    if (!this.rows.length) this.rows = [h('li', { class: 'w-empty' }, bi('', 'Chưa có sự kiện', 'No events yet', 1))];
    this.ol.replaceChildren(...this.rows);
    this.more.hidden = true;
    setData(this.el, 'count', String(list.length));
    this.paint();
  }

  fit() {
    super.fit();
    if (!this.rows) return;
    this.fitRows('sự kiện', this.folded);
  }
}
