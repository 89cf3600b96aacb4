// A board is one dashboard drawn for one area: its grid sized to the
// screen (or to the whole wall when a dashboard spans several screens,
// moved so that this screen shows its part), its widgets, and the feeds
// they share. A feed is one kind of figure of the area (its indicators,
// its children's, its alarms, devices and camera events): read once over
// REST so that the first paint does not wait for the socket, then
// followed on its live topic. However many children an area has, a board
// watches at most six topics: kpi/, map/, alarms/, devices/, events/ and
// the day's kpi/ for a series extended live.
//
// Safety first: while a board has an alarm list that has not painted,
// no other widget paints (they fetch meanwhile), so the alarms are the
// first thing a leader sees. When every widget has painted, the board
// marks 'wall-rendered' on the page's performance timeline.
//
// Ownership: the board owns its widgets, their timers and their watches;
// destroy() ends them all, so that a wall rotating for weeks holds no
// more than the board it shows.

import { gridArea, partFrame, widgetsInPart, checkGrid, fontSizes } from './layout.js';
import { h } from './dom.js';
import { query, enc } from './api.js';
import { create as createWidget } from './widgets/index.js';

export class Board {
  // opts: {svc, def, area, window, part, onDrill(dashboard, area, {returnAfter}), unit}
  // svc: {api, live, catalog, clock, role}
  constructor(root, opts) {
    this.root = root;
    this.svc = opts.svc;
    this.def = opts.def;
    this.area = opts.area;
    this.window = opts.window || opts.def.window || 'today';
    this.part = opts.part || null;
    this.onDrill = opts.onDrill || (() => {});
    this.unit = null;
    this.feeds = new Map();
    this.widgets = [];
    this.timers = new Set();
    this.dirty = new Set();
    this.flushQueued = false;
    this.safetyLeft = 0; // alarm widgets not yet painted
    this.deferred = new Set(); // widgets waiting for the alarms to paint
    this.unpainted = new Set();
    this.destroyed = false;
    this.ready = new Promise((resolve) => { this.resolveReady = resolve; });
    this.onResize = () => this.resize();
  }

  get theme() { return ['wall', 'dark', 'light'].includes(this.def.theme) ? this.def.theme : 'wall'; }
  get catalog() { return this.svc.catalog; }

  // topic is the name of the area's topic of kind, over the board's window
  // when withWindow (live.js's grammar).
  topic(kind, withWindow) {
    return window.IOCLive.topic(kind, this.area, withWindow ? this.window : undefined);
  }

  // start draws the board; ready resolves once every widget has painted.
  start() {
    const def = this.def;
    const el = h('div', { class: 'board', data: { theme: this.theme, dashboard: def.id || '', area: this.area, window: this.window } });
    const sizes = fontSizes(this.theme);
    for (const [k, v] of Object.entries(sizes)) el.style.setProperty('--fs-' + k, `calc(var(--u) * ${v})`);
    const grid = h('div', { class: 'grid' });
    grid.style.gridTemplateColumns = `repeat(${def.grid.columns}, minmax(0, 1fr))`;
    grid.style.gridTemplateRows = `repeat(${def.grid.rows}, minmax(0, 1fr))`;
    const f = partFrame(this.part);
    el.style.setProperty('--span-x', String(f.scaleX));
    el.style.setProperty('--span-y', String(f.scaleY));
    el.style.setProperty('--shift-x', String(f.dx));
    el.style.setProperty('--shift-y', String(f.dy));
    el.classList.toggle('spanned', f.spanned);
    this.probe = h('div', { class: 'u-probe', 'aria-hidden': 'true' });
    el.append(grid, this.probe);
    this.el = el;
    this.grid = grid;
    const problems = checkGrid(def);
    if (problems.length) el.dataset.problems = problems.map((p) => p.path + ': ' + p.error).join('; ');

    // Alarm lists first, in the DOM and in time; on a spanned wall only
    // the widgets that reach this screen.
    const shown = widgetsInPart(def, this.part);
    const order = shown.filter((w) => w.type === 'alarms').concat(shown.filter((w) => w.type !== 'alarms'));
    for (const spec of order) {
      let w;
      try {
        w = createWidget(this, spec);
      } catch (e) {
        console.error(spec.id, e);
        continue;
      }
      w.el.style.gridArea = gridArea(spec);
      w.el.style.order = String(spec.y * def.grid.columns + spec.x);
      grid.append(w.el);
      this.widgets.push(w);
      this.unpainted.add(w);
      if (w.safety) this.safetyLeft++;
    }
    this.root.append(el);
    addEventListener('resize', this.onResize);
    if (!this.widgets.length) this.finish();
    for (const w of this.widgets) {
      try { w.init(); } catch (e) { console.error(w.spec.id, e); w.fail(e); }
    }
    this.svc.api.get('/api/v1/areas/' + enc(this.area)).then((u) => {
      if (this.destroyed) return;
      this.unit = u;
      for (const w of this.widgets) if (w.onUnit) this.schedule(w);
    }, () => { /* the header names the area by its code */ });
    return this.ready;
  }

  // ---- rendering --------------------------------------------------------

  // schedule asks for w to be drawn again: once per task however many
  // messages arrived, and not before the alarms have painted.
  schedule(w) {
    if (this.destroyed) return;
    if (!w.safety && this.safetyLeft > 0) {
      this.deferred.add(w);
      return;
    }
    this.dirty.add(w);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  flush() {
    this.flushQueued = false;
    if (this.destroyed) return;
    const list = Array.from(this.dirty);
    this.dirty.clear();
    for (const w of list) {
      try {
        w.render();
        w.fit();
      } catch (e) {
        console.error(w.spec.id, e);
      }
    }
  }

  // painted is told by a widget that it shows its first figures (or why
  // it cannot).
  painted(w) {
    if (!this.unpainted.delete(w)) return;
    w.el.dataset.painted = performance.now().toFixed(1);
    if (w.safety && --this.safetyLeft === 0) {
      for (const d of this.deferred) this.schedule(d);
      this.deferred.clear();
    }
    if (this.unpainted.size === 0) this.finish();
  }

  finish() {
    if (this.finished) return;
    this.finished = true;
    this.el.dataset.rendered = 'true';
    this.resolveReady();
  }

  // unitPx is --u in CSS pixels: a hundredth of the screen's height.
  unitPx() {
    const px = this.probe ? parseFloat(getComputedStyle(this.probe).fontSize) : 0;
    return px > 0 ? px / 10 : window.innerHeight / 100;
  }

  resize() {
    for (const w of this.widgets) {
      if (w.resize) w.resize();
      this.schedule(w);
    }
  }

  // ---- feeds ------------------------------------------------------------

  // feed returns the shared feed of kind: 'figures' (the area's
  // indicators over the window), 'today' (over today, for series),
  // 'children', 'alarms', 'devices' or 'events'.
  feed(kind) {
    let f = this.feeds.get(kind);
    if (f) return f;
    const api = this.svc.api;
    const a = enc(this.area);
    const w = enc(this.window);
    switch (kind) {
      case 'figures':
        f = new Feed(this, this.topic('kpi', true), () => api.get(`/api/v1/areas/${a}/kpis?window=${w}`));
        break;
      case 'today':
        f = this.window === 'today' ? this.feed('figures') : new Feed(this, this.topic('kpi', false), () => api.get(`/api/v1/areas/${a}/kpis?window=today`));
        break;
      case 'children':
        f = new Feed(this, this.topic('map', true), () => api.get(`/api/v1/areas/${a}/children/kpis?window=${w}`).then((r) => childrenOf(r, this)));
        break;
      case 'alarms':
        f = new Feed(this, this.topic('alarms', false), () => api.get('/api/v1/alarms' + query({ state: 'active', area: this.area }))
          .then((r) => ({ area: this.area, as_of: '', open: Array.isArray(r.alarms) ? r.alarms : [] })));
        break;
      case 'devices':
        f = new Feed(this, this.topic('devices', false), () => api.get('/api/v1/devices' + query({ area: this.area }))
          .then((r) => ({ area: this.area, as_of: '', devices: Array.isArray(r.devices) ? r.devices : [] })));
        break;
      case 'events':
        f = new Feed(this, this.topic('events', false), null, true);
        break;
      default:
        throw new Error('unknown feed ' + kind);
    }
    this.feeds.set(kind, f);
    return f;
  }

  // ---- timers -------------------------------------------------------------

  every(ms, fn) {
    const id = setInterval(() => { if (!this.destroyed) fn(); }, ms);
    this.timers.add(() => clearInterval(id));
  }

  after(ms, fn) {
    const id = setTimeout(() => { if (!this.destroyed) fn(); }, ms);
    this.timers.add(() => clearTimeout(id));
  }

  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    removeEventListener('resize', this.onResize);
    for (const stop of this.timers) stop();
    this.timers.clear();
    for (const f of this.feeds.values()) f.stop();
    this.feeds.clear();
    for (const w of this.widgets) {
      try { if (w.destroy) w.destroy(); } catch (e) { console.error(e); }
    }
    this.widgets = [];
    if (this.el) this.el.remove();
    this.resolveReady();
  }
}

// childrenOf turns GET …/children/kpis into the shape of a map/ message.
function childrenOf(r, board) {
  const children = {};
  let asOf = '';
  for (const k of Array.isArray(r.children) ? r.children : []) {
    if (!k || typeof k.area !== 'string') continue;
    children[k.area] = { name: k.name || k.area, kpis: k.kpis || {} };
    if (k.as_of > asOf) asOf = k.as_of;
  }
  return { area: board.area, window: board.window, as_of: asOf, children, child_level: '' };
}

// Feed is one kind of figure of a board's area: the REST answer until
// the live topic speaks, then every message of the topic. Listeners get
// (data, {live, act}) for figures and (null, {error}) when neither
// source can give any.
class Feed {
  constructor(board, topic, rest, stream) {
    this.board = board;
    this.topic = topic;
    this.stream = !!stream;
    this.listeners = new Set();
    this.data = null;
    this.live = false;
    this.error = '';
    this.liveError = '';
    this.unwatch = board.svc.live ? board.svc.live.watch(topic, (d, act) => this.take(d, act, true), (e) => this.fail(e, true)) : null;
    if (rest) {
      rest().then((d) => { if (!this.live) this.take(d, 'snapshot', false); }, (e) => this.fail(e && e.message ? e.message : String(e), false));
    } else if (!board.svc.live) {
      queueMicrotask(() => this.fail('no live connection', true));
    }
  }

  take(d, act, live) {
    if (!d || typeof d !== 'object') return;
    this.live = this.live || live;
    this.data = d;
    this.error = '';
    for (const l of Array.from(this.listeners)) l(d, { live, act });
  }

  fail(error, live) {
    if (live) this.liveError = error;
    // Figures already shown stay; a feed with nothing says why.
    if (this.data && !this.stream) return;
    if (this.data && this.stream && !live) return;
    this.error = error;
    for (const l of Array.from(this.listeners)) l(null, { error, live });
  }

  listen(fn) {
    this.listeners.add(fn);
    if (this.data) queueMicrotask(() => { if (this.listeners.has(fn)) fn(this.data, { live: this.live, act: 'snapshot' }); });
    else if (this.error) queueMicrotask(() => { if (this.listeners.has(fn)) fn(null, { error: this.error }); });
    return () => this.listeners.delete(fn);
  }

  stop() {
    if (this.unwatch) this.unwatch();
    this.listeners.clear();
  }
}
