// The alarm takeover view of a kiosk screen: when the screen's state
// carries a takeover, the whole screen shows the alarm — the map zoomed
// to the device, the rule, the value, the time, the camera or sensor —
// over the dashboard (which keeps running underneath and shows again when
// the takeover ends), with a chime when the wall's definition asks for
// one (WebAudio, made here: nothing is fetched).

import { h, svg, bi, setText } from './dom.js';
import { SEVERITIES, alarmText, deviceName, reading, timeText, ageText, dateText, formatInt } from './text.js';
import { buildGeometry } from './geo.js';
import { enc } from './api.js';

const TONE = { critical: 'bad', warning: 'warn', info: 'info' };
const ZOOM_MARGIN = 1.6; // the unit's box, widened this much each way

export class Takeover {
  constructor(el, svc) {
    this.el = el;
    this.svc = svc;
    this.key = '';
    this.walls = new Map(); // wall id → its definition's takeover settings (or null)
    this.timer = 0;
    // view holds the shown alarm's parts that load or tick later; hide
    // lets them go, so that a wall that was taken over keeps no detached
    // map or list until the next alarm.
    this.view = null;
  }

  // set shows takeover t ({alarm, until}) or, with null, ends it.
  set(t, st) {
    if (!t || !t.alarm || typeof t.alarm !== 'object') {
      this.hide();
      return;
    }
    const a = t.alarm;
    const key = `${a.id}|${a.state}|${a.acknowledged_by || ''}`;
    if (key === this.key) return;
    const fresh = !this.key.startsWith(a.id + '|');
    this.key = key;
    this.draw(a, t, st);
    if (fresh) this.chime(st && st.wall);
  }

  hide() {
    this.key = '';
    clearInterval(this.timer);
    this.el.hidden = true;
    this.el.replaceChildren();
    this.view = null;
    document.documentElement.dataset.takeover = '';
  }

  draw(a, t, st) {
    const svc = this.svc;
    const off = svc.clock.offsetOr();
    const text = alarmText(a);
    const sev = SEVERITIES[a.severity] || { vi: a.severity, en: a.severity };
    const opened = Date.parse(a.opened_at);
    const [dvi, den] = deviceName(a.device_id, a.device_name, a.device_kind);
    const kind = String(a.message || '').split(' ')[0];
    const r = reading(kind, a.value);
    const limit = reading(kind, a.threshold);
    const value = a.rule_kind === 'threshold' ? `${r.value} (ngưỡng ${limit.value})` :
      a.rule_kind === 'event_count' ? `${formatInt(a.value)} sự kiện (giới hạn ${formatInt(a.threshold)})` : '';
    const v = { age: bi('takeover-age', '', '', 1), device: h('dl', { class: 'takeover-device' }), mapBox: h('div', { class: 'takeover-map' }), place: null };
    const tick = () => {
      const [vi, en] = ageText(opened, svc.clock.now());
      v.age.firstChild.textContent = vi;
      v.age.lastChild.textContent = en;
    };
    tick();
    clearInterval(this.timer);
    this.timer = setInterval(tick, 5000);
    const head = h('header', { class: 'takeover-head', data: { tone: TONE[a.severity] || 'neutral' } },
      h('span', { class: 'takeover-sev' }, `${sev.vi.toUpperCase()} · ${sev.en.toUpperCase()}`),
      bi('takeover-rule', text.rule[0], text.rule[1], false));
    const facts = h('div', { class: 'takeover-facts' },
      bi('takeover-msg', text.message[0], text.message[1], false),
      value ? h('p', { class: 'takeover-value' }, value) : null,
      h('p', { class: 'takeover-time' }, isFinite(opened) ? `${timeText(opened, off)} · ${dateText(opened, off)[0]}` : ''),
      v.age,
      bi('takeover-where', [dvi, svc.areaName(a.area_code, () => this.redrawPlace(v, a))].filter(Boolean).join(' · '), den, 1),
      a.state === 'acknowledged' ? bi('takeover-acked', `Đã xác nhận bởi ${a.acknowledged_by || '?'}`, 'acknowledged', 1) : null,
      v.device);
    v.place = facts.querySelector('.takeover-where');
    this.view = v;
    this.el.replaceChildren(head, h('div', { class: 'takeover-main' }, v.mapBox, facts));
    this.el.dataset.alarm = a.id;
    this.el.dataset.severity = a.severity || '';
    this.el.dataset.state = a.state || '';
    this.el.hidden = false;
    document.documentElement.dataset.takeover = a.id;
    this.loadDevice(a);
    this.loadMap(a);
  }

  redrawPlace(v, a) {
    if (v !== this.view) return;
    const [dvi] = deviceName(a.device_id, a.device_name, a.device_kind);
    setText(v.place.firstChild, [dvi, this.svc.areaName(a.area_code)].filter(Boolean).join(' · '));
  }

  async loadDevice(a) {
    const v = this.view;
    try {
      const d = await this.svc.api.get('/api/v1/devices/' + enc(a.device_id));
      if (v !== this.view) return;
      const rows = [];
      const add = (vi, en, v) => { if (v) rows.push(h('dt', {}, bi('', vi, en, 1)), h('dd', {}, v)); };
      add('Thiết bị', 'device', d.name || d.id);
      add('Loại', 'kind', d.kind === 'camera' ? 'Camera' : d.kind === 'sensor' ? 'Cảm biến (sensor)' : d.kind);
      add('Trạng thái', 'status', d.status === 'online' ? 'đang hoạt động (online)' : 'mất kết nối (offline)');
      if (d.last_seen) add('Lần cuối', 'last seen', timeText(Date.parse(d.last_seen), this.svc.clock.offsetOr()));
      for (const [k, v] of Object.entries(d.latest && typeof d.latest === 'object' ? d.latest : {})) {
        const r = reading(k, v && v.value);
        add(r.vi, r.en, r.value);
      }
      v.device.replaceChildren(...rows);
    } catch (e) {
      /* the alarm carries what matters; details are a help */
    }
  }

  // loadMap draws the alarm's unit and its neighbours, zoomed to the unit,
  // the device marked.
  async loadMap(a) {
    const v = this.view;
    try {
      const unit = await this.svc.api.get('/api/v1/areas/' + enc(a.area_code));
      const parent = unit.ancestors && unit.ancestors.length ? unit.ancestors[unit.ancestors.length - 1].code : '';
      const fc = await this.svc.api.get(`/api/v1/layers/${enc(unit.hierarchy + '.' + unit.level)}.geojson?${parent ? 'parent=' + enc(parent) + '&' : ''}zoom=13`, 'application/geo+json');
      if (v !== this.view) return;
      const g = buildGeometry(fc);
      const u = g.units.get(a.area_code);
      const box = u ? u.box : [0, 0, g.w, g.h];
      const cx = (box[0] + box[2]) / 2;
      const cy = (box[1] + box[3]) / 2;
      const half = (Math.max(box[2] - box[0], box[3] - box[1]) / 2) * ZOOM_MARGIN + 2;
      const s = svg('svg', { class: 'takeover-svg', viewBox: `${(cx - half).toFixed(1)} ${(cy - half).toFixed(1)} ${(2 * half).toFixed(1)} ${(2 * half).toFixed(1)}`, preserveAspectRatio: 'xMidYMid meet', 'aria-hidden': 'true' });
      for (const [code, x] of g.units) s.append(svg('path', { d: x.d, class: code === a.area_code ? 'here' : '', 'data-area': code }));
      if (isFinite(a.lat) && isFinite(a.lon) && !(a.lat === 0 && a.lon === 0)) {
        const [x, y] = g.point(a.lon, a.lat, a.area_code);
        const r = half / 30;
        s.append(svg('circle', { class: 'takeover-pulse', cx: x.toFixed(1), cy: y.toFixed(1), r: (r * 2.4).toFixed(2) }),
          svg('circle', { class: 'takeover-dot', cx: x.toFixed(1), cy: y.toFixed(1), r: r.toFixed(2), 'data-device': a.device_id }));
      }
      v.mapBox.replaceChildren(s);
      this.el.dataset.map = a.area_code;
    } catch (e) {
      if (v === this.view) v.mapBox.replaceChildren(h('p', { class: 'w-empty' }, bi('', 'Không tải được bản đồ', `map unavailable: ${e.message}`, 1)));
    }
  }

  // chime plays three rising pairs of tones when the wall asks for it.
  async chime(wallID) {
    let wall = null;
    if (wallID) {
      if (!this.walls.has(wallID)) {
        try {
          const r = await this.svc.api.get('/api/v1/walls/' + enc(wallID));
          const d = r && r.takeover ? r : r && r.body ? r.body : r && r.document ? r.document : null;
          this.walls.set(wallID, d && d.takeover ? d.takeover : null);
        } catch (e) {
          this.walls.set(wallID, null);
        }
      }
      wall = this.walls.get(wallID);
    }
    if (!wall || wall.chime !== true) {
      this.el.dataset.chime = 'off';
      return;
    }
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      this.audio = this.audio || new Ctx();
      const ctx = this.audio;
      // Without a gesture resume() stays pending (autoplay policy): ask,
      // but do not wait for it.
      if (ctx.state === 'suspended') ctx.resume().catch(() => {});
      const t0 = ctx.currentTime + 0.05;
      for (let i = 0; i < 3; i++) {
        for (const [j, f] of [[0, 660], [1, 880]]) {
          const at = t0 + i * 0.9 + j * 0.3;
          const o = ctx.createOscillator();
          const g = ctx.createGain();
          o.frequency.value = f;
          g.gain.setValueAtTime(0.0001, at);
          g.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
          g.gain.exponentialRampToValueAtTime(0.0001, at + 0.25);
          o.connect(g).connect(ctx.destination);
          o.start(at);
          o.stop(at + 0.26);
        }
      }
      // Browsers let a page sound only after a gesture, unless the kiosk
      // runs with --autoplay-policy=no-user-gesture-required.
      this.el.dataset.chime = ctx.state === 'running' ? 'played' : 'blocked';
      ctx.onstatechange = () => { if (ctx.state === 'running' && this.el.dataset.chime === 'blocked') this.el.dataset.chime = 'played'; };
    } catch (e) {
      this.el.dataset.chime = 'failed';
    }
  }
}
