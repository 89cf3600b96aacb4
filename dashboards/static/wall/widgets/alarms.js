// Alarm list: the area's alarms not yet resolved, most severe first, then
// those nobody has taken in hand, then the newest; in Vietnamese composed
// from the alarm's fields, with the server's English. Operators (and
// admins) acknowledge with the alarm ack route. It is the board's safety
// widget: nothing else paints before it.

import { Widget } from './base.js';
import { h, bi, setText, setData } from '../dom.js';
import { compareAlarms } from '../layout.js';
import { SEVERITIES, atLeast, alarmText, deviceName, ageText, timeText, formatInt } from '../text.js';
import { enc } from '../api.js';

const TONE = { critical: 'bad', warning: 'warn', info: 'info' };
const MARK = { critical: '✕', warning: '!', info: 'i' };

export class Alarms extends Widget {
  get safety() { return true; }

  init() {
    this.min = this.o.min_severity;
    const sev = SEVERITIES[this.min];
    this.setTitle('Cảnh báo đang mở', 'Open alarms' + (sev && this.min !== 'info' ? `, ${sev.en.toLowerCase()} and above` : ''));
    const role = this.svc.role;
    this.mayAck = this.o.acknowledge === true && (role === 'operator' || role === 'admin');
    this.list = null;
    this.busy = new Set();
    this.errors = new Map();
    this.count = h('span', { class: 'alarm-count' });
    this.titleEl.prepend(this.count);
    this.ol = h('ol', { class: 'alarm-list' });
    this.more = h('p', { class: 'alarm-more' });
    this.body.append(this.ol, this.more);
    this.ol.addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-action="ack"]');
      const li = b && b.closest('li[data-alarm]');
      if (li) this.ack(li.dataset.alarm);
    });
    this.listen('alarms', (d, info) => {
      if (!d) {
        if (!this.list) this.fail(new Error(info.error));
        return;
      }
      if (d.area !== this.board.area || !Array.isArray(d.open)) return;
      this.svc.clock.learn(d.as_of);
      this.list = d.open.filter((a) => a && typeof a.id === 'string' && a.state !== 'resolved');
      this.changed();
    });
    this.board.every(15000, () => this.changed()); // ages
  }

  async ack(id) {
    if (this.busy.has(id)) return;
    this.busy.add(id);
    this.errors.delete(id);
    this.changed();
    try {
      const a = await this.svc.api.post(`/api/v1/alarms/${enc(id)}/ack`, { note: '' });
      if (a && a.id === id && this.list) {
        const i = this.list.findIndex((x) => x.id === id);
        if (i >= 0) this.list[i] = a;
      }
    } catch (e) {
      if (e.status === 403) this.mayAck = false;
      else this.errors.set(id, e.status === 409 ? 'Cảnh báo đã được xử lý (already handled)' : `Không gửi được (could not send): ${e.message}`);
    }
    this.busy.delete(id);
    this.changed();
  }

  row(a) {
    const t = alarmText(a);
    const [dvi, den] = deviceName(a.device_id, a.device_name, a.device_kind);
    const now = this.svc.clock.now();
    const opened = Date.parse(a.opened_at);
    const [age, ageEn] = ageText(opened, now);
    const place = this.svc.areaName(a.area_code, () => this.changed());
    const badge = h('span', { class: 'sev-badge', data: { tone: TONE[a.severity] || 'neutral' } },
      h('span', { class: 'sev-mark', 'aria-hidden': 'true' }, MARK[a.severity] || ''), (SEVERITIES[a.severity] || { vi: a.severity }).vi);
    const when = bi('alarm-when', `${age} · ${isFinite(opened) ? timeText(opened, this.svc.clock.offsetOr(), false) : ''}`, ageEn, 1);
    const head = h('div', { class: 'alarm-head' }, badge, when);
    const rule = bi('alarm-rule', t.rule[0], t.rule[1], 1);
    const where = bi('alarm-where', [dvi, place].filter(Boolean).join(' · '), den !== dvi ? den : '', 2);
    const msg = bi('alarm-msg', t.message[0], t.message[1], 1);
    msg.dataset.optional = '4';
    const li = h('li', { class: 'alarm', data: { alarm: a.id, severity: a.severity || '', state: a.state || '', device: a.device_id || '' } }, head, rule, where, msg);
    if (a.state === 'acknowledged') {
      li.append(bi('alarm-acked', `Đã xác nhận bởi ${a.acknowledged_by || '?'}`, `acknowledged by ${a.acknowledged_by || '?'}`, 1));
    } else if (this.mayAck) {
      const b = h('button', { type: 'button', class: 'alarm-ack', data: { action: 'ack' } }, 'Xác nhận');
      b.title = 'Acknowledge';
      b.disabled = this.busy.has(a.id);
      li.append(b);
    }
    if (this.errors.has(a.id)) li.append(h('p', { class: 'alarm-error', role: 'status' }, this.errors.get(a.id)));
    return li;
  }

  clipBoxes() {
    return [this.body, this.ol];
  }

  render() {
    if (!this.list) return;
    const list = this.list.filter((a) => atLeast(a.severity, this.min)).sort(compareAlarms);
    const crit = list.filter((a) => a.severity === 'critical').length;
    setText(this.count, list.length ? `${formatInt(list.length)}${crit ? ' (' + formatInt(crit) + ' nghiêm trọng)' : ''}` : '');
    setData(this.el, 'count', String(list.length));
    setData(this.el, 'critical', String(crit));
    if (!list.length) {
      this.ol.replaceChildren(h('li', { class: 'w-empty alarm-none' }, bi('', 'Không có cảnh báo đang mở', 'No open alarms', 1)));
      this.more.hidden = true;
      this.paint();
      return;
    }
    this.rows = list.map((a) => this.row(a));
    this.ol.replaceChildren(...this.rows);
    this.more.hidden = true;
    this.paint();
  }

  // fit leaves out the least of each row, then whole rows from the end,
  // saying how many are not listed: a list on a wall does not scroll.
  fit() {
    super.fit();
    if (!this.rows) return;
    const fits = this.fitRows('cảnh báo');
    this.el.dataset.fits = String(fits && !(this.el.scrollHeight > this.el.clientHeight + 1));
  }
}
