// Tests of dashboards/static/live.js, the pure parts of the page's live
// protocol, its topic names checked against the server's examples
// (topics.json, served from topic/testdata). Each failed check is listed in
// #result as JSON, which TestDashboardLiveProtocolFunctions reads:
// {"checks": n, "failures": […], "topics": rows checked}.
'use strict';

(() => {
  const failures = [];
  let checks = 0;
  // canon writes a value with its keys sorted, so that equal values are
  // equal strings.
  const canon = (v) => JSON.stringify(v, (k, x) => (x && typeof x === 'object' && !Array.isArray(x)
    ? Object.keys(x).sort().reduce((o, key) => { o[key] = x[key]; return o; }, {}) : x));
  const eq = (what, got, want) => {
    checks++;
    if (canon(got) !== canon(want)) failures.push(`${what}: got ${canon(got)}, want ${canon(want)}`);
  };
  const run = (name, f) => {
    try { f(); } catch (e) { failures.push(`${name}: threw ${e && e.stack ? e.stack : e}`); }
  };

  const L = window.IOCLive;
  if (!L) {
    document.getElementById('result').textContent = JSON.stringify({ checks: 0, failures: ['window.IOCLive is not defined: live.js did not load'] });
    return;
  }
  const v = (n) => '00000190a1b2c3d4' + String(n).padStart(8, '0'); // versions of one lease
  const fixed = (x) => () => x;

  run('backoffDelay', () => {
    eq('attempt 0, random 0', L.backoffDelay(0, 1000, 30000, fixed(0)), 0);
    eq('attempt 0, random 0.5', L.backoffDelay(0, 1000, 30000, fixed(0.5)), 500);
    eq('attempt 3, random 0.5', L.backoffDelay(3, 1000, 30000, fixed(0.5)), 4000);
    eq('attempt 10 stays under the cap', L.backoffDelay(10, 1000, 30000, fixed(0.999999)), 29999);
    eq('attempt 5000 (2^n overflows)', L.backoffDelay(5000, 1000, 30000, fixed(0.5)), 15000);
    eq('negative attempt counts as 0', L.backoffDelay(-3, 1000, 30000, fixed(0.5)), 500);
    // Full jitter: anywhere from 0 to the ceiling, so screens spread out.
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i <= 100; i++) {
      const d = L.backoffDelay(2, 1000, 30000, fixed(i / 101));
      lo = Math.min(lo, d);
      hi = Math.max(hi, d);
    }
    eq('attempt 2 spans [0, 4000)', [lo, hi < 4000, hi > 3900], [0, true, true]);
  });

  run('plannedDelay', () => {
    eq('after_ms 1234', L.plannedDelay(1234, 300000), 1234);
    eq('after_ms 0', L.plannedDelay(0, 300000), 0);
    eq('after_ms above the cap', L.plannedDelay(1e9, 300000), 300000);
    eq('after_ms missing', L.plannedDelay(undefined, 300000), null);
    eq('after_ms negative', L.plannedDelay(-5, 300000), null);
    eq('after_ms a string', L.plannedDelay('100', 300000), null);
    eq('after_ms NaN', L.plannedDelay(NaN, 300000), null);
  });

  run('step on a state topic', () => {
    const d1 = { n: 1 };
    let r = L.step(undefined, { type: 'snapshot', topic: 'kpi/79', version: v(5), data: d1 });
    eq('first snapshot', [r.act, r.data, r.held.version], ['snapshot', d1, v(5)]);
    const held = r.held;
    eq('newer update', L.step(held, { type: 'update', topic: 'kpi/79', version: v(6), data: { n: 2 } }).act, 'update');
    eq('newer update: held version', L.step(held, { type: 'update', topic: 'kpi/79', version: v(6), data: { n: 2 } }).held.version, v(6));
    eq('same version again', L.step(held, { type: 'update', topic: 'kpi/79', version: v(5), data: { n: 9 } }), { act: 'skip', held });
    eq('older update', L.step(held, { type: 'update', topic: 'kpi/79', version: v(4), data: { n: 9 } }).act, 'skip');
    eq('update of an overtaken lease', L.step(held, { type: 'update', topic: 'kpi/79', version: '00000190a1b2c3d3ffffffff', data: {} }).act, 'skip');
    eq('update of a newer lease', L.step(held, { type: 'update', topic: 'kpi/79', version: '00000190a1b2c3d500000000', data: {} }).act, 'update');
    // The version sequence restarted (the bus lost its data): a snapshot
    // is taken whatever its version, and what follows compares with it.
    r = L.step(held, { type: 'snapshot', topic: 'kpi/79', version: v(1), data: { n: 3 } });
    eq('lower snapshot taken', [r.act, r.held.version], ['snapshot', v(1)]);
    eq('update after the lower snapshot', L.step(r.held, { type: 'update', topic: 'kpi/79', version: v(2), data: {} }).act, 'update');
    eq('snapshot of the same version', L.step(held, { type: 'snapshot', topic: 'kpi/79', version: v(5), data: d1 }).act, 'snapshot');
    eq('current keeps what is held', L.step(held, { type: 'current', topic: 'kpi/79', version: v(5) }), { act: 'current', held });
    eq('update with nothing held', L.step(undefined, { type: 'update', topic: 'kpi/79', version: v(1), data: {} }).act, 'update');
    // Today's server: seq on every message, ignored.
    eq('seq ignored', L.step(held, { type: 'update', topic: 'kpi/79', version: v(7), seq: 2, data: {} }).act, 'update');
    eq('unknown type', L.step(held, { type: 'hello', topic: 'kpi/79', version: v(9) }).act, 'skip');
  });

  run('step on a stream topic', () => {
    const E = '00000000000000aa';
    const F = '00000000000000bb';
    let r = L.step(undefined, { type: 'snapshot', topic: 'events/79', epoch: E, offset: 10, data: {} });
    eq('snapshot', [r.act, r.held], ['snapshot', { epoch: E, offset: 10 }]);
    const held = r.held;
    r = L.step(held, { type: 'update', topic: 'events/79', epoch: E, offset: 11, data: {} });
    eq('next offset', [r.act, r.held], ['update', { epoch: E, offset: 11 }]);
    eq('the same offset again', L.step(r.held, { type: 'update', topic: 'events/79', epoch: E, offset: 11, data: {} }).act, 'skip');
    eq('an older offset', L.step(r.held, { type: 'update', topic: 'events/79', epoch: E, offset: 3, data: {} }).act, 'skip');
    eq('a later offset', L.step(r.held, { type: 'update', topic: 'events/79', epoch: E, offset: 13, data: {} }).held, { epoch: E, offset: 13 });
    // Another epoch: the bus lost its history; take it and count from it.
    r = L.step(r.held, { type: 'update', topic: 'events/79', epoch: F, offset: 1, data: {} });
    eq('another epoch', [r.act, r.held], ['update', { epoch: F, offset: 1 }]);
    eq('the old epoch after the new one', L.step(r.held, { type: 'update', topic: 'events/79', epoch: E, offset: 12, data: {} }).act, 'update');
    r = L.step(held, { type: 'snapshot', topic: 'events/79', epoch: F, offset: 5, gap: true, data: {} });
    eq('snapshot with a gap', [r.act, r.held], ['snapshot', { epoch: F, offset: 5 }]);
    eq('offset 0', L.step(undefined, { type: 'update', topic: 'events/79', epoch: E, offset: 0, data: {} }).held, { epoch: E, offset: 0 });
    // Today's server: no epoch or offset; every message applies.
    r = L.step(undefined, { type: 'snapshot', topic: 'events/79', seq: 1, data: {} });
    eq('unpositioned snapshot', [r.act, r.held], ['snapshot', {}]);
    eq('unpositioned update', L.step(r.held, { type: 'update', topic: 'events/79', seq: 2, data: {} }).act, 'update');
    eq('unpositioned update again', L.step(r.held, { type: 'update', topic: 'events/79', seq: 2, data: {} }).act, 'update');
  });

  const s1 = {
    area: '79', hierarchy: 'vn-2025', level: 'province', name: 'Hồ Chí Minh', window: 'today', as_of: '2026-11-22T09:15:04+07:00', child_level: 'commune',
    children: {
      26740: { name: 'Sài Gòn', kpis: { dossiers_received: 5, online_rate: 0.5 } },
      26743: { name: 'Tân Định', kpis: { dossiers_received: 3, online_rate: 0.25, pm25_max: 12 } },
      26746: { name: 'Bến Thành', kpis: { dossiers_received: 0, online_rate: null } },
    },
  };

  run('mergeDelta', () => {
    const before = canon(s1);
    const got = L.mergeDelta(s1, { as_of: '2026-11-22T09:15:09+07:00', children: { 26743: { name: 'Tân Định', kpis: { dossiers_received: 4 } } } });
    eq('merged', got, Object.assign({}, s1, {
      as_of: '2026-11-22T09:15:09+07:00',
      children: Object.assign({}, s1.children, { 26743: { name: 'Tân Định', kpis: { dossiers_received: 4 } } }),
    }));
    eq('a child is replaced whole, not merged field by field', 'pm25_max' in got.children['26743'].kpis, false);
    eq('the held state is left alone', canon(s1), before);
    eq('a delta without children keeps them', L.mergeDelta(s1, { as_of: 'x' }).children, s1.children);
    eq('a new child', Object.keys(L.mergeDelta(s1, { children: { 26749: { name: 'N', kpis: {} } } }).children).sort(), ['26740', '26743', '26746', '26749']);
    eq('held without children', L.mergeDelta({ area: '79' }, { children: { 1: { kpis: {} } } }), { area: '79', children: { 1: { kpis: {} } } });
    // The rule's promise: the held snapshot with the delta equals the next
    // snapshot, when the delta lists the children that changed.
    const s2 = JSON.parse(JSON.stringify(s1));
    s2.as_of = '2026-11-22T09:16:00+07:00';
    s2.children['26740'].kpis.dossiers_received = 6;
    s2.children['26746'] = { name: 'Bến Thành', kpis: { dossiers_received: 1, online_rate: 1 } };
    const delta = { as_of: s2.as_of, children: {} };
    for (const c of Object.keys(s2.children)) if (canon(s2.children[c]) !== canon(s1.children[c])) delta.children[c] = s2.children[c];
    eq('changed children', Object.keys(delta.children).sort(), ['26740', '26746']);
    eq('snapshot + delta = next snapshot', L.mergeDelta(s1, delta), s2);
  });

  run('step on a map delta', () => {
    const held = L.step(undefined, { type: 'snapshot', topic: 'map/79', version: v(1), data: s1 }).held;
    const delta = { as_of: 'later', children: { 26740: { name: 'Sài Gòn', kpis: { dossiers_received: 6 } } } };
    let r = L.step(held, { type: 'delta', topic: 'map/79', version: v(2), base: v(1), data: delta });
    eq('delta on its base', [r.act, r.held.version, r.data.as_of, r.data.children['26740'].kpis.dossiers_received, r.data.children['26743'].kpis.dossiers_received],
      ['update', v(2), 'later', 6, 3]);
    eq('the merged state is held for the next delta', r.held.data, r.data);
    const r2 = L.step(r.held, { type: 'delta', topic: 'map/79', version: v(3), base: v(2), data: { children: { 26743: { name: 'Tân Định', kpis: {} } } } });
    eq('a second delta', [r2.act, r2.data.children['26740'].kpis.dossiers_received, r2.data.children['26743'].kpis], ['update', 6, {}]);
    eq('a delta against another base', L.step(held, { type: 'delta', topic: 'map/79', version: v(4), base: v(3), data: delta }), { act: 'resync', held });
    eq('a delta with nothing held', L.step(undefined, { type: 'delta', topic: 'map/79', version: v(4), base: v(3), data: delta }).act, 'resync');
    eq('a delta with a version but no state held', L.step({ version: v(1) }, { type: 'delta', topic: 'map/79', version: v(2), base: v(1), data: delta }).act, 'resync');
    eq('a delta a snapshot overtook', L.step(r.held, { type: 'delta', topic: 'map/79', version: v(2), base: v(1), data: delta }).act, 'skip');
    eq('a delta older than held', L.step(r2.held, { type: 'delta', topic: 'map/79', version: v(2), base: v(1), data: delta }).act, 'skip');
    eq('a delta without base', L.step(held, { type: 'delta', topic: 'map/79', version: v(2), data: delta }).act, 'skip');
    eq('a delta without data', L.step(held, { type: 'delta', topic: 'map/79', version: v(2), base: v(1) }).act, 'skip');
  });

  run('subscribeOp', () => {
    eq('nothing held', L.subscribeOp('kpi/79', undefined), { op: 'subscribe', topic: 'kpi/79' });
    eq('nothing to resume from', L.subscribeOp('events/79', {}), { op: 'subscribe', topic: 'events/79' });
    eq('a state topic', L.subscribeOp('kpi/79', { version: v(5), data: {} }), { op: 'subscribe', topic: 'kpi/79', since: v(5) });
    eq('a stream topic', L.subscribeOp('events/79', { epoch: '00000000000000aa', offset: 123 }), { op: 'subscribe', topic: 'events/79', since: '00000000000000aa:123' });
    eq('a stream topic at offset 0', L.sinceOf({ epoch: '00000000000000aa', offset: 0 }), '00000000000000aa:0');
  });

  run('orderTopics', () => {
    const topics = ['kpi/79', 'kpi/26740', 'map/79', 'events/79', 'devices/79', 'alarms/79', 'kpi/26743', 'other/1'];
    const want = ['alarms/79', 'devices/79', 'events/79', 'map/79', 'kpi/79', 'kpi/26740', 'kpi/26743', 'other/1'];
    eq('array', L.orderTopics(topics), want);
    eq('set', L.orderTopics(new Set(topics)), want);
    eq('windows', L.orderTopics(['kpi/79/24h', 'map/79/24h', 'alarms/79']), ['alarms/79', 'map/79/24h', 'kpi/79/24h']);
  });

  // The topic grammar against the server's own examples
  // (topic/testdata/topics.json, which topic's Go tests read too); topics
  // says how many rows were checked, for the Go side to compare.
  let topics = 0;
  fetch('topics.json').then((r) => {
    if (!r.ok) throw new Error('GET topics.json: ' + r.status);
    return r.json();
  }).then((doc) => run('topics', () => {
    for (const row of doc.topics) {
      topics++;
      const got = L.parseTopic(row.name);
      if (row.error) {
        eq(`parseTopic(${JSON.stringify(row.name)}) is refused`, got, null);
        continue;
      }
      const want = { kind: row.kind };
      for (const k of ['area', 'screen', 'window']) if (row[k]) want[k] = row[k];
      eq(`parseTopic(${JSON.stringify(row.name)})`, got, want);
      eq(`topic of ${JSON.stringify(row.name)}`, L.topic(row.kind, row.area || row.screen, row.window), row.canonical);
      eq(`parseTopic(${JSON.stringify(row.canonical)})`, L.parseTopic(row.canonical), want);
      eq(`kindOf(${JSON.stringify(row.name)})`, L.kindOf(row.name), row.kind);
    }
    for (const row of doc.kinds) {
      topics++;
      eq(`kindOf(${JSON.stringify(row.name)})`, L.kindOf(row.name), row.kind);
    }
  })).catch((e) => failures.push(`topics: ${e && e.stack ? e.stack : e}`)).then(() => {
    document.getElementById('result').textContent = JSON.stringify({ checks, failures, topics });
  });
})();
