// Tests of the built-in page's pure modules (dashboards/static/page:
// figures.js, table.js, ticker.js), run in Chromium by
// TestDashboardPageFunctions. Each failed check is listed in #result as
// JSON: {"checks": n, "failures": […]}.

import * as F from '/page/figures.js';
import * as T from '/page/table.js';
import * as K from '/page/ticker.js';

const failures = [];
let checks = 0;
const canon = (v) => JSON.stringify(v);
const eq = (what, got, want) => {
  checks++;
  if (canon(got) !== canon(want)) failures.push(`${what}: got ${canon(got)}, want ${canon(want)}`);
};
const run = (name, f) => {
  try { f(); } catch (e) { failures.push(`${name}: threw ${e && e.stack ? e.stack : e}`); }
};

// Catalog entries as GET /api/v1/kpis writes them.
const ratio = { id: 'online_rate', kind: 'ratio', unit: '', name_vi: 'Tỷ lệ hồ sơ trực tuyến', name_en: 'Online submission rate' };
const count = { id: 'dossiers_received', kind: 'count', unit: 'dossiers', name_vi: 'Hồ sơ tiếp nhận', name_en: 'Dossiers received' };
const days = { id: 'avg_resolution_days', kind: 'duration', unit: 'days', name_vi: 'Thời gian giải quyết trung bình' };
const metres = { id: 'water_level_max', kind: 'max', unit: 'm', name_vi: 'Mực nước cao nhất' };
const pm = { id: 'pm25_max', kind: 'max', unit: 'ug/m3', name_vi: 'PM2.5 cao nhất' };

// ---- figures.js ---------------------------------------------------------------

run('format', () => {
  eq('a ratio, one decimal always', F.format(ratio, 1), '100,0%');
  eq('a ratio', F.format(ratio, 0.5), '50,0%');
  eq('a count', F.format(count, 12345), '12.345');
  eq('a count of nothing', F.format(count, 0), '0');
  eq('metres without trailing zeros', F.format(metres, 1.7), '1,7');
  eq('metres to two decimals', F.format(metres, 1.756), '1,76');
  eq('whole metres', F.format(metres, 2), '2');
  eq('days', F.format(days, 2.25), '2,3');
  eq('µg/m³', F.format(pm, 21.5), '21,5');
  eq('null', F.format(ratio, null), '–');
  eq('NaN', F.format(count, NaN), '–');
  eq('an indicator the catalog does not list', F.format(undefined, 3.25), '3,3');
});

run('isWarning', () => {
  eq('overdue dossiers', F.isWarning('dossiers_overdue', 1), true);
  eq('no overdue dossiers', F.isWarning('dossiers_overdue', 0), false);
  eq('an open alarm', F.isWarning('alarms_open', 2), true);
  eq('on time under 90%', F.isWarning('on_time_rate', 0.89), true);
  eq('on time at 90%', F.isWarning('on_time_rate', 0.9), false);
  eq('PM2.5 unhealthy', F.isWarning('pm25_max', 55.5), true);
  eq('PM2.5 moderate', F.isWarning('pm25_avg', 55.4), false);
  eq('no figure', F.isWarning('dossiers_overdue', null), false);
  eq('a neutral count', F.isWarning('dossiers_received', 100), false);
});

run('kpiName', () => {
  eq('a count says no unit', F.kpiName(count, count.id), 'Hồ sơ tiếp nhận');
  eq('a ratio says no unit', F.kpiName(ratio, ratio.id), 'Tỷ lệ hồ sơ trực tuyến');
  eq('µg/m³', F.kpiName(pm, pm.id), 'PM2.5 cao nhất (µg/m³)');
  eq('days', F.kpiName(days, days.id), 'Thời gian giải quyết trung bình (ngày)');
  eq('not in the catalog', F.kpiName(undefined, 'new_thing'), 'new_thing');
});

run('times', () => {
  eq('nine fraction digits', F.asOfTime('2025-12-31T14:05:09.123456789+07:00'), Date.UTC(2025, 11, 31, 7, 5, 9, 123));
  eq('whole seconds', F.asOfTime('2025-12-31T14:05:09Z'), Date.UTC(2025, 11, 31, 14, 5, 9));
  eq('not a time', F.asOfTime('soon'), 0);
  eq('not a string', F.asOfTime(undefined), 0);
  eq('clock at the server', F.clockText('2025-12-31T07:05:09Z', 420), '14:05:09');
  eq('clock with the date', F.clockText('2025-12-31T20:05:09Z', 420, true), '03:05:09 01/01/2026');
  eq('clock of nothing', F.clockText('', 420), '');
  eq('as of, as the server wrote it', F.asOfText('2025-12-31T14:05:09.5+07:00'), '14:05:09 31/12/2025');
  eq('as of, unreadable', F.asOfText('later'), 'later');
});

// ---- table.js -----------------------------------------------------------------

run('columnsOf', () => {
  const kpis = {
    water_level_max: null, alarms_open: 0, dossiers_online: 1, dossiers_received: 3, online_rate: 0.5, records_approximate: 0,
    camera_events_by_type: { congestion: 1 }, new_figure: 2, dossiers_on_time: 1, on_time_rate: null,
  };
  eq('the layout first, in its order, then other numbers; no details, no breakdowns', T.columnsOf(kpis),
    ['dossiers_received', 'online_rate', 'on_time_rate', 'alarms_open', 'water_level_max', 'new_figure']);
  eq('nothing known: the default columns', T.columnsOf({}), T.DEFAULT_COLUMNS);
  eq('the default columns are the dossiers group', T.DEFAULT_COLUMNS.slice(0, 3), ['dossiers_received', 'online_rate', 'dossiers_resolved']);
  eq('column sets', T.COLUMN_SETS, ['dossiers', 'devices', 'environment', 'all']);
  eq('group of a device figure', T.groupOf('cameras_offline'), 'devices');
  eq('group of an environment figure', T.groupOf('pm25_avg'), 'environment');
  eq('group of a figure not laid out', T.groupOf('new_figure'), 'other');
  eq('group names', T.GROUP_NAMES.other, 'Khác');
  eq('short header', T.shortName('online_rate', ratio), 'Trực tuyến');
  eq('header of a figure not laid out', T.shortName('feedback_received', { name_vi: 'Phản ánh' }), 'Phản ánh');
  eq('header of a figure nobody names', T.shortName('x_y', undefined), 'x_y');
});

run('fold', () => {
  eq('diacritics', T.fold('Phường Sài Gòn'), 'phuong sai gon');
  eq('đ', T.fold('Đức  Hòa Đông'), 'duc hoa dong');
  eq('a code', T.fold(' 26740 '), '26740');
});

run('compareRows', () => {
  const row = (code, name, v) => ({ code, snap: { name, kpis: { dossiers_received: v } } });
  const rows = [row('3', 'Bến Thành', 2), row('1', 'An Khánh', null), row('2', 'Sài Gòn', 5), row('4', 'Bàn Cờ', 2)];
  const order = (sort) => rows.slice().sort((a, b) => T.compareRows(a, b, sort)).map((r) => r.code);
  eq('by name, in Vietnamese order', order({ key: 'name', dir: 1 }), ['1', '4', '3', '2']);
  eq('by name, reversed', order({ key: 'name', dir: -1 }), ['2', '3', '4', '1']);
  eq('largest first, ties by name, no figure last', order({ key: 'dossiers_received', dir: -1 }), ['2', '4', '3', '1']);
  eq('smallest first, no figure still last', order({ key: 'dossiers_received', dir: 1 }), ['4', '3', '2', '1']);
});

// ---- ticker.js ----------------------------------------------------------------

run('mergeEvents', () => {
  const ev = (...ids) => ids.map((id) => ({ event_id: id, type: 'congestion' }));
  const ids = (entries) => entries.map((x) => x.id || '+' + x.more);
  let e = K.mergeEvents([], { events: ev('b', 'a') }, true, 12);
  eq('a snapshot', ids(e), ['b', 'a']);
  e = K.mergeEvents(e, { events: ev('c', 'a') }, false, 12);
  eq('an update: newest first, once each', ids(e), ['c', 'a', 'b']);
  e = K.mergeEvents(e, { events: ev('d'), folded: 3 }, false, 12);
  eq('a burst folded after its events', ids(e), ['d', '+3', 'c', 'a', 'b']);
  e = K.mergeEvents(e, { events: [], folded: 2 }, false, 12);
  eq('a count alone', ids(e), ['+2', 'd', '+3', 'c', 'a', 'b']);
  e = K.mergeEvents(e, { events: [], folded: 1 }, false, 12);
  eq('counts side by side are one', ids(e), ['+3', 'd', '+3', 'c', 'a', 'b']);
  e = K.mergeEvents(e, { events: ev('x'), folded: 1 }, true, 12);
  eq('a snapshot forgets', ids(e), ['x', '+1']);
  eq('at most max', ids(K.mergeEvents([], { events: ev('1', '2', '3', '4') }, true, 3)), ['1', '2', '3']);
  eq('odd events left out', ids(K.mergeEvents([], { events: [null, { event_id: 7 }, { event_id: 'ok' }, { event_id: 'ok' }], folded: -2 }, true, 12)), ['ok']);
});

document.getElementById('result').textContent = JSON.stringify({ checks, failures });
