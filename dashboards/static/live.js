// The pure parts of the live protocol (v2, docs/asyncapi.yaml) that the
// built-in page and the wall speak: the grammar of topic names, whether a
// message applies given what the page holds of its topic, the merge of a
// map delta, the order of subscriptions, what a resumed subscription says
// it holds, and the reconnect delay. Nothing here
// touches the DOM, the socket or the clock, so a test page can run it as it
// is (cmd/iocd/testdata/live/live_test.html). Loaded as a classic script
// before the pages' modules, which read it from window.IOCLive (the wall's
// socket.js, which the built-in page uses too). Plain ES2017, nothing
// loaded from outside.
'use strict';

(() => {
  // Topic names: the server's grammar (package topic), tested against the
  // same examples (topic/testdata/topics.json). kpi/{area}[/{window}] and
  // map/{area}[/{window}] (today when the window is left out),
  // alarms/{area}, devices/{area}, events/{area}, screen/{id}, and the
  // internal topics no page is sent (internal/…).
  const TODAY = 'today';
  const WINDOWS = [TODAY, '24h', '7d', '30d'];
  const WINDOWED = ['kpi', 'map'];
  const BY_AREA = ['kpi', 'map', 'alarms', 'devices', 'events'];
  const LIVE = BY_AREA.concat(['screen']);
  const SEEN = 'internal/screens/seen';
  const FIXED = ['internal/aggregate/dirty', 'internal/aggregate/delta', 'internal/aggregate/term',
    'internal/auth/revoked', 'internal/screens/command'];

  // topic is the name of the topic of kind about id (a unit's code, or a
  // screen's id), over window win for kpi and map (today when not given): the
  // one name the server knows it by.
  function topic(kind, id, win) {
    if (WINDOWED.includes(kind)) return !win || win === TODAY ? kind + '/' + id : kind + '/' + id + '/' + win;
    if (BY_AREA.includes(kind) || kind === 'screen' || kind === SEEN) return kind + '/' + id;
    return kind;
  }

  // parseTopic reads a name: {kind, area, window} for kpi and map,
  // {kind, area} for alarms, devices and events, {kind, screen} for screen
  // (and the internal seen topics), {kind} for the other internal ones;
  // null for a name the grammar refuses.
  function parseTopic(name) {
    if (typeof name !== 'string') return null;
    if (name.startsWith('internal/')) {
      if (FIXED.includes(name)) return { kind: name };
      const id = name.startsWith(SEEN + '/') ? name.slice(SEEN.length + 1) : '';
      return id !== '' && !id.includes('/') ? { kind: SEEN, screen: id } : null;
    }
    const parts = name.split('/');
    const kind = parts[0];
    if (kind === 'screen' && parts.length > 1) return parts.length === 2 && parts[1] !== '' ? { kind, screen: parts[1] } : null;
    const windowed = WINDOWED.includes(kind);
    if (!BY_AREA.includes(kind) || parts.length < 2 || parts.length > 3 || parts[1] === '' || (!windowed && parts.length === 3)) return null;
    if (!windowed) return { kind, area: parts[1] };
    if (parts.length === 3 && !WINDOWS.includes(parts[2])) return null;
    return { kind, area: parts[1], window: parts.length === 3 ? parts[2] : TODAY };
  }

  // kindOf is the kind a name starts with, without reading the rest (as
  // the server's router does): 'internal' for an internal name it does not
  // know, '' for any other.
  function kindOf(name) {
    if (typeof name !== 'string') return '';
    if (name.startsWith('internal/')) {
      if (FIXED.includes(name)) return name;
      return name.startsWith(SEEN + '/') ? SEEN : 'internal';
    }
    const slash = name.indexOf('/');
    const head = slash < 0 ? '' : name.slice(0, slash);
    return LIVE.includes(head) ? head : '';
  }

  // What the page holds of a topic (held): for a state topic {version,
  // data}, the version and whole state it last applied (data is what a map
  // delta merges into); for a stream topic {epoch, offset}, the position of
  // the last message it applied. undefined (or {}) when it holds nothing.

  const isVersion = (v) => typeof v === 'string' && v !== '';
  const isPosition = (m) => isVersion(m.epoch) && typeof m.offset === 'number' && isFinite(m.offset);

  // heldOf is what a message that the page applies leaves it holding.
  // Versions are fixed-width hexadecimal strings: they compare as strings.
  function heldOf(m, data) {
    if (isPosition(m)) return { epoch: m.epoch, offset: m.offset };
    if (isVersion(m.version)) return { version: m.version, data };
    return {}; // today's server sends an events/ message without either
  }

  const SKIP = 'skip';

  // step decides what to do with message m (parsed, of a topic the page
  // wants) when the page holds held of its topic. It returns {act, data,
  // held}: act is
  //   'snapshot' — show data as the topic's whole state, forgetting what was
  //                shown (a snapshot is always taken, even with a version
  //                lower than held: the version sequence restarted);
  //   'update'   — show data as the topic's new state (for a delta, data is
  //                the held state with the delta merged in);
  //   'current'  — the resumed subscription holds the newest: keep what is shown;
  //   'resync'   — a delta against a version the page does not hold: ignore
  //                it and subscribe again with since;
  //   'skip'     — ignore it (older, or already applied);
  // and held is what the page holds of the topic afterwards. Fields it does
  // not know (today's server's seq) are ignored.
  function step(held, m) {
    const h = held || {};
    const skip = { act: SKIP, held: h };
    switch (m.type) {
      case 'snapshot':
        return { act: 'snapshot', data: m.data, held: heldOf(m, m.data) };
      case 'update':
        if (isPosition(m)) {
          // Offsets of an epoch grow by one per message; another epoch
          // means the bus lost its history: take it and count from it.
          if (h.epoch === m.epoch && typeof h.offset === 'number' && m.offset <= h.offset) return skip;
          return { act: 'update', data: m.data, held: heldOf(m, m.data) };
        }
        if (isVersion(m.version)) {
          if (isVersion(h.version) && m.version <= h.version) return skip;
          return { act: 'update', data: m.data, held: heldOf(m, m.data) };
        }
        return { act: 'update', data: m.data, held: h };
      case 'delta': {
        if (!isVersion(m.version) || !isVersion(m.base) || !m.data || typeof m.data !== 'object') return skip;
        // Not newer than what is held (a snapshot overtook it): nothing missed.
        if (isVersion(h.version) && m.version <= h.version) return skip;
        if (h.version !== m.base || !h.data || typeof h.data !== 'object') return { act: 'resync', held: h };
        const data = mergeDelta(h.data, m.data);
        return { act: 'update', data, held: { version: m.version, data } };
      }
      case 'current':
        return { act: 'current', held: h };
    }
    return skip;
  }

  // mergeDelta applies a map/ delta to the state of its base version, as
  // the protocol's merge rule says: every top-level field of the delta but
  // children replaces the held one; each entry of the delta's children
  // replaces the held child of that code whole; other children stay. The
  // result equals the next full snapshot. held is not changed: the page may
  // still show it.
  function mergeDelta(held, delta) {
    const out = Object.assign({}, held);
    for (const k of Object.keys(delta)) if (k !== 'children') out[k] = delta[k];
    const kids = Object.assign({}, held.children && typeof held.children === 'object' ? held.children : {});
    if (delta.children && typeof delta.children === 'object') Object.assign(kids, delta.children);
    out.children = kids;
    return out;
  }

  // sinceOf is what a resumed subscription says the page holds: the
  // version of a state topic, epoch:offset of a stream topic; undefined
  // when it holds nothing to resume from (the server sends a snapshot).
  function sinceOf(held) {
    if (!held) return undefined;
    if (isPosition(held)) return held.epoch + ':' + held.offset;
    if (isVersion(held.version)) return held.version;
    return undefined;
  }

  // subscribeOp is the subscribe message for topic name.
  function subscribeOp(name, held) {
    const op = { op: 'subscribe', topic: name };
    const since = sinceOf(held);
    if (since !== undefined) op.since = since;
    return op;
  }

  // Safety first: an operator must see alarms and devices before figures,
  // and the server fills snapshots in the order asked. The map, one
  // message for every child, comes before the figures of each.
  const RANKS = ['alarms', 'devices', 'events', 'map', 'kpi'];
  function rank(name) {
    const r = RANKS.indexOf(kindOf(name));
    return r < 0 ? RANKS.length : r;
  }

  // orderTopics lists topics in the order to subscribe to them: by kind,
  // safety topics first, otherwise as given.
  function orderTopics(topics) {
    return Array.from(topics).map((t, i) => [rank(t), i, t]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
  }

  // backoffDelay is the wait in milliseconds before reconnect attempt
  // number attempt (from 0), with full jitter: random(0, min(cap,
  // base·2^attempt)). The jitter spreads thousands of screens that lost
  // the server together over the whole interval instead of bringing them
  // back in the same second. random is Math.random or a test's.
  function backoffDelay(attempt, base, cap, random) {
    const ceiling = Math.min(cap, base * Math.pow(2, Math.max(0, attempt)));
    return Math.floor(random() * ceiling);
  }

  // plannedDelay is the wait the server asked for in a reconnect message,
  // or null when after_ms is not a usable number; at most cap.
  function plannedDelay(afterMs, cap) {
    if (typeof afterMs !== 'number' || !isFinite(afterMs) || afterMs < 0) return null;
    return Math.min(Math.floor(afterMs), cap);
  }

  window.IOCLive = Object.freeze({ topic, parseTopic, kindOf, step, mergeDelta, sinceOf, subscribeOp, orderTopics, backoffDelay, plannedDelay });
})();
