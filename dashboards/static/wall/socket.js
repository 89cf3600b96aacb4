// The live connection of the wall and the built-in page (protocol v2,
// docs/asyncapi.yaml): widgets (and the page's parts) watch topics, the
// connection subscribes to each once, safety topics first, and hands every
// applied message to the topic's watchers. Which messages apply, the map
// delta's merge, the since of a resumed topic and the reconnect delays are
// live.js's (window.IOCLive). A reconnect resumes every topic with since;
// a close with 4401 (the token was revoked) ends the connection for good.
// With ?measure=1, every update of a figure is also told to measure.js.

import { measure } from './measure.js';

const L = window.IOCLive;
const BACKOFF_BASE = 1000;
const MAX_BACKOFF = 30000;
const MAX_PLANNED = 5 * 60 * 1000;
export const CLOSE_REVOKED = 4401;
const CLOSE_SLOW = 4008;
const CLOSE_RATE = 4029;
// Refusals another try will not change.
const FINAL = /not served|does not cover|unknown area|no child units/;

// order lists topics to subscribe: a kiosk's screen/ state first (it
// carries the alarm takeover and what to show), then live.js's order,
// safety topics before figures.
function order(topics) {
  const list = Array.from(topics);
  const screen = (t) => L.kindOf(t) === 'screen';
  return list.filter(screen).concat(L.orderTopics(list.filter((t) => !screen(t))));
}

export class Live {
  // onState(state, {delay, code}) is told of 'connecting', 'connected',
  // 'reconnecting' and 'offline'; onRevoked(reason) of a 4401 close.
  constructor(token, { onState, onRevoked, random } = {}) {
    this.token = token;
    this.onState = onState || (() => {});
    this.onRevoked = onRevoked || (() => {});
    this.random = random || Math.random;
    this.watchers = new Map(); // topic → Set of {data, error}
    this.held = new Map(); // topic → what the page applied (live.js's held)
    this.latest = new Map(); // topic → the data last applied, for late watchers
    this.resyncing = new Set();
    this.retries = new Map();
    this.pending = new Set(); // topics to subscribe at the next flush
    this.flushQueued = false;
    this.ws = null;
    this.timer = 0;
    this.attempt = 0;
    this.after = null;
    this.closed = false;
    this.state = 'offline';
    this.lastHeard = 0; // Date.now() of the last message
    this.downSince = 0; // Date.now() when the connection was lost; 0 while up
  }

  // watch calls onData(data, act, topic) with the topic's data now (if
  // held) and with every message applied after, and onError(error) with a
  // refusal. It returns a function that stops watching; the topic is left
  // when no one watches it.
  watch(topic, onData, onError) {
    let set = this.watchers.get(topic);
    const w = { data: onData, error: onError || (() => {}) };
    if (!set) {
      set = new Set();
      this.watchers.set(topic, set);
      this.pending.add(topic);
      this.queueFlush();
    }
    set.add(w);
    if (this.latest.has(topic)) {
      const d = this.latest.get(topic);
      queueMicrotask(() => { if (set.has(w)) safe(() => w.data(d, 'snapshot', topic)); });
    }
    return () => {
      if (!set.delete(w) || set.size) return;
      this.watchers.delete(topic);
      this.pending.delete(topic);
      this.held.delete(topic);
      this.latest.delete(topic);
      this.resyncing.delete(topic);
      this.retries.delete(topic);
      this.send({ op: 'unsubscribe', topic });
    };
  }

  topics() { return Array.from(this.watchers.keys()); }

  queueFlush() {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      if (!this.ws && !this.timer && !this.closed) { this.connect(); return; }
      if (!this.isOpen()) return; // the open subscribes everything
      for (const t of order(this.pending)) this.subscribe(t);
      this.pending.clear();
    });
  }

  isOpen() { return this.ws && this.ws.readyState === WebSocket.OPEN; }

  send(msg) {
    if (this.isOpen()) this.ws.send(JSON.stringify(msg));
  }

  subscribe(topic) {
    this.send(L.subscribeOp(topic, this.held.get(topic)));
  }

  setState(st, info) {
    this.state = st;
    if (st === 'connected') this.downSince = 0;
    else if (!this.downSince) this.downSince = Date.now();
    this.onState(st, info || {});
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = 0;
    if (this.closed) return;
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
      '/api/v1/live?access_token=' + encodeURIComponent(this.token);
    this.setState(this.attempt ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      this.reconnectLater(false, 0, '');
      return;
    }
    this.ws = ws;
    let heard = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.resyncing.clear(); // a new connection answers each subscription afresh
      this.setState('connected');
      this.pending.clear();
      for (const t of order(this.watchers.keys())) this.subscribe(t);
    };
    ws.onmessage = (ev) => {
      heard = true;
      if (this.ws === ws) this.onMessage(ev.data);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.reconnectLater(heard, ev.code, ev.reason);
    };
  }

  // reconnectLater: a revoked token ends the connection; anything else
  // comes back after the delay a reconnect message asked for, else after
  // a jittered back-off, so that thousands of screens that lost the
  // server together do not return in the same second.
  reconnectLater(heard, code, reason) {
    if (this.closed) return;
    if (code === CLOSE_REVOKED) {
      this.close();
      this.setState('offline', { code });
      this.onRevoked(reason || 'token revoked');
      return;
    }
    if (heard && code !== CLOSE_SLOW && code !== CLOSE_RATE) this.attempt = 0;
    let delay = this.after;
    this.after = null;
    const planned = delay !== null;
    if (!planned) delay = L.backoffDelay(this.attempt++, BACKOFF_BASE, MAX_BACKOFF, this.random);
    else this.attempt++;
    this.setState('reconnecting', { delay, code: planned ? 1001 : code });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  onMessage(raw) {
    let m;
    try { m = JSON.parse(raw); } catch (e) { return; }
    if (!m || typeof m !== 'object') return;
    this.lastHeard = Date.now();
    if (m.type === 'reconnect') {
      // The server shuts down: leave now, come back after its delay.
      this.after = L.plannedDelay(m.after_ms, MAX_PLANNED);
      if (this.ws) this.ws.close(1000);
      return;
    }
    if (m.type === 'error') {
      if (m.retrying) return; // the server keeps trying; the subscription stays
      this.refused(m.topic, m.error);
      return;
    }
    const set = this.watchers.get(m.topic);
    if (typeof m.topic !== 'string' || !set) return; // in flight for a topic left
    const r = L.step(this.held.get(m.topic), m);
    this.held.set(m.topic, r.held);
    switch (r.act) {
      case 'resync':
        this.resync(m.topic);
        return;
      case 'snapshot': case 'update':
        this.resyncing.delete(m.topic);
        this.retries.delete(m.topic);
        break;
      case 'current':
        this.resyncing.delete(m.topic);
        return;
      default:
        return;
    }
    if (!r.data || typeof r.data !== 'object') return;
    this.latest.set(m.topic, r.data);
    for (const w of Array.from(set)) safe(() => w.data(r.data, r.act, m.topic));
    if (measure && r.act === 'update') measure.applied(m.topic, m.version, r.data);
  }

  // resync asks again for a map/ topic whose delta did not fit what is
  // held; unsubscribe first, or the server keeps the subscription as it is.
  resync(topic) {
    if (this.resyncing.has(topic) || !this.isOpen()) return;
    this.resyncing.add(topic);
    this.send({ op: 'unsubscribe', topic });
    this.subscribe(topic);
  }

  refused(topic, error) {
    const set = this.watchers.get(topic);
    if (!set) return;
    this.held.delete(topic);
    this.resyncing.delete(topic);
    for (const w of Array.from(set)) safe(() => w.error(error || 'refused'));
    if (FINAL.test(error || '')) return;
    const n = (this.retries.get(topic) || 0) + 1;
    this.retries.set(topic, n);
    const delay = L.backoffDelay(n, BACKOFF_BASE, MAX_BACKOFF, this.random);
    setTimeout(() => { if (this.watchers.has(topic)) this.subscribe(topic); }, delay);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
  }
}

function safe(f) {
  try { f(); } catch (e) { console.error(e); }
}
