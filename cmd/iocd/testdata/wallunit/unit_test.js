// Tests of the wall's pure modules (dashboards/static/wall: layout.js,
// ramp.js, text.js, geo.js), run in Chromium by TestWallFunctions. Each
// failed check is listed in #result as JSON: {"checks": n, "failures": […]}.

import * as Lay from '/wall/layout.js';
import * as R from '/wall/ramp.js';
import * as T from '/wall/text.js';
import * as G from '/wall/geo.js';

const failures = [];
let checks = 0;
const canon = (v) => JSON.stringify(v, (k, x) => (x && typeof x === 'object' && !Array.isArray(x)
  ? Object.keys(x).sort().reduce((o, key) => { o[key] = x[key]; return o; }, {}) : x));
const eq = (what, got, want) => {
  checks++;
  if (canon(got) !== canon(want)) failures.push(`${what}: got ${canon(got)}, want ${canon(want)}`);
};
const ok = (what, cond, detail) => {
  checks++;
  if (!cond) failures.push(`${what}${detail === undefined ? '' : ': ' + canon(detail)}`);
};
const near = (what, got, want, tol) => ok(what, Math.abs(got - want) <= tol, { got, want, tol });
const run = (name, f) => {
  try { f(); } catch (e) { failures.push(`${name}: threw ${e && e.stack ? e.stack : e}`); }
};

// ---- layout.js: the grid ----------------------------------------------------

const W = (id, x, y, w, h, type) => ({ id, type: type || 'text', x, y, w, h });
const grid = { columns: 24, rows: 12 };

run('checkGrid', () => {
  eq('a valid grid', Lay.checkGrid({ grid, widgets: [W('a', 0, 0, 12, 6), W('b', 12, 0, 12, 6), W('c', 0, 6, 24, 6)] }), []);
  eq('past the columns', Lay.checkGrid({ grid, widgets: [W('a', 20, 0, 5, 1)] }).map((p) => p.path), ['widgets[0].w']);
  eq('past the rows', Lay.checkGrid({ grid, widgets: [W('a', 0, 11, 1, 2)] }).map((p) => p.path), ['widgets[0].h']);
  eq('overlap', Lay.checkGrid({ grid, widgets: [W('a', 0, 0, 4, 4), W('b', 3, 3, 2, 2)] }).map((p) => p.path), ['widgets[1]']);
  eq('touching is no overlap', Lay.checkGrid({ grid, widgets: [W('a', 0, 0, 4, 4), W('b', 4, 0, 2, 2), W('c', 0, 4, 2, 2)] }), []);
  eq('same id twice', Lay.checkGrid({ grid, widgets: [W('a', 0, 0, 1, 1), W('a', 1, 0, 1, 1)] }).map((p) => p.path), ['widgets[1].id']);
  eq('bad id, type, sizes', Lay.checkGrid({ grid, widgets: [{ id: 'A b', type: 'pie', x: -1, y: 0.5, w: 0, h: 1 }] }).map((p) => p.path),
    ['widgets[0].id', 'widgets[0].type', 'widgets[0].x', 'widgets[0].y', 'widgets[0].w']);
  eq('no grid', Lay.checkGrid({ widgets: [] }).map((p) => p.path), ['grid']);
  ok('errors say how to fix', Lay.checkGrid({ grid, widgets: [W('a', 20, 0, 5, 1)] })[0].error.includes('narrower'));
});

run('gridArea', () => {
  eq('lines', Lay.gridArea({ x: 4, y: 1, w: 12, h: 9 }), '2 / 5 / 11 / 17');
});

run('partFrame and widgetsInPart', () => {
  eq('no part', Lay.partFrame(null), { scaleX: 1, scaleY: 1, dx: 0, dy: 0, spanned: false });
  eq('one screen of one', Lay.partFrame({ col: 0, row: 0, columns: 1, rows: 1 }).spanned, false);
  eq('right screen of 3×2', Lay.partFrame({ col: 2, row: 1, columns: 3, rows: 2 }), { scaleX: 3, scaleY: 2, dx: -2, dy: -1, spanned: true });
  eq('a part outside its wall', Lay.partFrame({ col: 3, row: 0, columns: 3, rows: 2 }).spanned, false);
  const def = { grid, widgets: [W('left', 0, 0, 10, 12), W('across', 10, 0, 4, 6), W('right', 14, 0, 10, 12), W('edge', 11, 6, 1, 6)] };
  eq('left of 2×1', Lay.widgetsInPart(def, { col: 0, row: 0, columns: 2, rows: 1 }).map((w) => w.id), ['left', 'across', 'edge']);
  eq('right of 2×1', Lay.widgetsInPart(def, { col: 1, row: 0, columns: 2, rows: 1 }).map((w) => w.id), ['across', 'right']);
  eq('no part: all', Lay.widgetsInPart(def, null).length, 4);
  eq('bottom of 1×2', Lay.widgetsInPart({ grid, widgets: [W('top', 0, 0, 24, 6), W('low', 0, 6, 24, 6)] }, { col: 0, row: 1, columns: 1, rows: 2 }).map((w) => w.id), ['low']);
});

run('fontSizes', () => {
  const wall = Lay.fontSizes('wall');
  ok('wall: every text at least 2% of the height', Object.values(wall).every((v) => v >= 2), wall);
  ok('wall: a KPI value at least 6%', wall.kpi >= 6, wall);
  eq('unknown theme is the wall', Lay.fontSizes('neon'), wall);
  ok('desk themes smaller', Lay.fontSizes('dark').text < wall.text);
});

run('rowsThatFit', () => {
  eq('exact', Lay.rowsThatFit(100, 20, 0), 5);
  eq('with gaps: 4 rows of 20 and 3 gaps of 5 = 95', Lay.rowsThatFit(95, 20, 5), 4);
  eq('one short of a row', Lay.rowsThatFit(94, 20, 5), 3);
  eq('nothing fits', Lay.rowsThatFit(10, 20, 5), 0);
  eq('no height', Lay.rowsThatFit(0, 20, 5), 0);
  eq('no row height', Lay.rowsThatFit(100, 0, 5), 0);
});

run('paginate and pageAt', () => {
  const items = [1, 2, 3, 4, 5, 6, 7];
  eq('pages of 3', Lay.paginate(items, 3), [[1, 2, 3], [4, 5, 6], [7]]);
  eq('empty', Lay.paginate([], 3), [[]]);
  eq('per page 0 counts as 1', Lay.paginate([1, 2], 0), [[1], [2]]);
  eq('at 0 s', Lay.pageAt(3, 0, 10), 0);
  eq('at 9.9 s', Lay.pageAt(3, 9.9, 10), 0);
  eq('at 10 s', Lay.pageAt(3, 10, 10), 1);
  eq('at 25 s', Lay.pageAt(3, 25, 10), 2);
  eq('at 30 s: round again', Lay.pageAt(3, 30, 10), 0);
  eq('one page', Lay.pageAt(1, 99, 10), 0);
});

run('rank', () => {
  const kids = [{ area: 'b', value: 2 }, { area: 'a', value: 2 }, { area: 'c', value: null }, { area: 'd', value: 5 }, { area: 'e', value: 0 }];
  eq('top', Lay.rank(kids, 'top', 10).map((x) => x.area + x.rank), ['d1', 'a2', 'b3', 'e4', 'c5']);
  eq('bottom', Lay.rank(kids, 'bottom', 10).map((x) => x.area), ['e', 'a', 'b', 'd', 'c']);
  eq('first n', Lay.rank(kids, 'top', 2).map((x) => x.area), ['d', 'a']);
});

// ---- layout.js: periods and series -------------------------------------------

const HOUR = 3600e3;
const DAY = 24 * HOUR;
// 2026-11-22 10:30:00 in Hồ Chí Minh (UTC+7) is 03:30 UTC.
const now = Date.UTC(2026, 10, 22, 3, 30, 0);
const VN = 420;

run('local time', () => {
  eq('midnight', new Date(Lay.localMidnight(now, VN)).toISOString(), '2026-11-21T17:00:00.000Z');
  eq('midnight just after it', new Date(Lay.localMidnight(Date.UTC(2026, 10, 21, 17, 0, 1), VN)).toISOString(), '2026-11-21T17:00:00.000Z');
  eq('midnight west of UTC', new Date(Lay.localMidnight(Date.UTC(2026, 10, 22, 3, 0), -300)).toISOString(), '2026-11-21T05:00:00.000Z');
  eq('rfc3339', Lay.rfc3339(now, VN), '2026-11-22T10:30:00+07:00');
  eq('rfc3339 west', Lay.rfc3339(now, -330), '2026-11-21T22:00:00-05:30');
  eq('localDate', Lay.localDate(Date.UTC(2026, 10, 21, 17, 0), VN), '2026-11-22');
  eq('today starts at midnight', Lay.windowStart('today', now, VN), Lay.localMidnight(now, VN));
  eq('24h', Lay.windowStart('24h', now + 30e3, VN), now - DAY);
  eq('7d', Lay.windowStart('7d', now, VN), now - 7 * DAY);
});

run('comparePlan', () => {
  const p = Lay.comparePlan('today', 'previous_period', now, VN);
  eq('today: by hour, from yesterday midnight to now', [p.step, p.from, p.to], ['hour', '2026-11-21T00:00:00+07:00', '2026-11-22T10:30:00+07:00']);
  eq('today: yesterday until the same time', [new Date(p.prev0).toISOString(), new Date(p.prev1).toISOString()], ['2026-11-20T17:00:00.000Z', '2026-11-21T03:30:00.000Z']);
  const w = Lay.comparePlan('7d', 'previous_period', now, VN);
  eq('7d: the 7 days before', [w.step, w.prev0, w.prev1], ['hour', now - 14 * DAY, now - 7 * DAY]);
  eq('30d: by day (hours are capped at 31 days)', Lay.comparePlan('30d', 'previous_period', now, VN).step, 'day');
  const y = Lay.comparePlan('today', 'year_ago', now, VN);
  eq('year ago: the window with compare=year_ago', [y.compare, y.from, y.prev0], ['year_ago', '2026-11-22T00:00:00+07:00', undefined]);
  const n = Lay.comparePlan('24h', 'none', now, VN);
  eq('none: the window only', [n.from, n.prev0], ['2026-11-21T10:30:00+07:00', undefined]);
});

run('splitPlan', () => {
  const p = Lay.comparePlan('today', 'previous_period', now, VN);
  const at = (h) => ({ t: Lay.rfc3339(Lay.localMidnight(now, VN) + h * HOUR, VN), value: h });
  const points = [];
  for (let h = -24; h <= 10; h++) points.push(at(h));
  const { cur, prev } = Lay.splitPlan(p, points);
  eq('today: 00:00 to the hour holding now', cur.map((x) => x.value), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  eq('yesterday: 00:00 to the hour holding 10:30', prev.map((x) => x.value), [-24, -23, -22, -21, -20, -19, -18, -17, -16, -15, -14]);
  const y = Lay.splitPlan(Lay.comparePlan('today', 'year_ago', now, VN), [{ t: at(1).t, value: 5, previous: { value: 3 } }, { t: at(2).t, value: 6 }]);
  eq('year ago: each step\'s previous', [y.cur.length, y.prev.map((x) => x.value)], [2, [3]]);
});

run('combine', () => {
  const pt = (value, numerator, denominator) => ({ value, numerator, denominator });
  eq('counts sum', Lay.combine([pt(2, 2, null), pt(3, 3, null), pt(null, null, null)], 'count'), 5);
  eq('no counts is 0', Lay.combine([], 'count'), 0);
  eq('ratios: numerators over denominators, not a mean of rates', Lay.combine([pt(1, 1, 1), pt(0.5, 50, 100)], 'ratio'), 0.505);
  eq('ratio rounded to 4 places', Lay.combine([pt(null, 1, 3)], 'ratio'), 0.3333);
  eq('ratio of nothing is null', Lay.combine([pt(null, 0, 0)], 'ratio'), null);
  eq('mean', Lay.combine([pt(10, 30, 3), pt(20, 20, 1)], 'mean'), 12.5);
  eq('duration', Lay.combine([pt(2, 4, 2), pt(1, 1, 1)], 'duration'), 1.67);
  eq('max', Lay.combine([pt(3), pt(null), pt(7.5)], 'max'), 7.5);
  eq('max of nothing', Lay.combine([pt(null)], 'max'), null);
});

run('seriesRange and drawing', () => {
  eq('90 days to today', Lay.seriesRange(90, now, VN), { from: '2026-08-25', to: '2026-11-22' });
  eq('1 day', Lay.seriesRange(1, now, VN), { from: '2026-11-22', to: '2026-11-22' });
  eq('a line', Lay.linePath([0, 10, 5], 100, 10, 0, 10), 'M0.0,10.0L50.0,0.0L100.0,5.0');
  eq('a gap breaks the line', Lay.linePath([1, null, 1], 100, 10, 0, 2), 'M0.0,5.0M100.0,5.0');
  eq('extent from zero', Lay.extent([[3, 5], [null, 4]], true), [0, 5]);
  eq('extent of ratios', Lay.extent([[0.4, 0.9]], false), [0.4, 0.9]);
  eq('extent of nothing', Lay.extent([[null]], true), [0, 1]);
  eq('extent of one value', Lay.extent([[2]], false), [2, 3]);
});

run('editor geometry', () => {
  eq('first free spot', Lay.freeSpot({ columns: 4, rows: 4 }, [W('a', 0, 0, 2, 2)], 2, 2), { x: 2, y: 0 });
  eq('full', Lay.freeSpot({ columns: 2, rows: 2 }, [W('a', 0, 0, 2, 2)], 1, 1), null);
  eq('clamp into the grid', Lay.clampBox(grid, { x: 22.4, y: -3, w: 5, h: 30 }), { x: 19, y: 0, w: 5, h: 12 });
  eq('cell under a point', Lay.cellAt(grid, 2400, 1200, 1250, 599), { x: 12, y: 5 });
  eq('cell past the edge', Lay.cellAt(grid, 2400, 1200, 9999, -5), { x: 23, y: 0 });
});

// ---- ramp.js ----------------------------------------------------------------

// Matplotlib's published viridis and cividis at a few points.
const VIRIDIS = [[0, [0.267, 0.005, 0.329]], [0.25, [0.229, 0.322, 0.546]], [0.5, [0.128, 0.567, 0.551]], [0.75, [0.369, 0.789, 0.383]], [1, [0.993, 0.906, 0.144]]];
const CIVIDIS = [[0, [0.0, 0.126, 0.302]], [0.5, [0.486, 0.482, 0.471]], [1, [0.995, 0.910, 0.216]]];

// Machado et al. (2009), severity 1, on linear RGB: what a viewer with
// each colour blindness sees.
const CVD = {
  protanopia: [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
  deuteranopia: [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
  tritanopia: [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
};
const lin = (c) => (c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4));
const gam = (c) => (c <= 0.0031308 ? 12.92 * c : 1.055 * Math.pow(c, 1 / 2.4) - 0.055);
const simulate = (rgb, m) => {
  const l = rgb.map(lin);
  return m.map((row) => Math.max(0, Math.min(1, gam(row[0] * l[0] + row[1] * l[1] + row[2] * l[2]))));
};
const fromHex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16) / 255);
const dist = (a, b) => {
  const [x, y] = [R.rgbToOklab(a), R.rgbToOklab(b)];
  return Math.hypot(x[0] - y[0], x[1] - y[1], x[2] - y[2]);
};

run('viridis and cividis', () => {
  for (const [t, want] of VIRIDIS) want.forEach((c, i) => near(`viridis(${t})[${i}]`, R.viridis(t)[i], c, 0.02));
  for (const [t, want] of CIVIDIS) want.forEach((c, i) => near(`cividis(${t})[${i}]`, R.cividis(t)[i], c, 0.02));
  eq('clamped below', R.viridis(-1), R.viridis(0));
  eq('clamped above', R.cividis(2), R.cividis(1));
  eq('hex', R.hex([1, 0.5, 0]), '#ff8000');
  eq('OKLab round trip', R.oklabToRgb(R.rgbToOklab([0.2, 0.4, 0.6])).map((c) => Math.round(c * 1000) / 1000), [0.2, 0.4, 0.6]);
  // A ramp must read in order for every viewer: lightness grows from end
  // to end, and with each colour blindness too.
  for (const name of ['viridis', 'cividis']) {
    for (const [who, m] of [['everyone', null]].concat(Object.entries(CVD))) {
      let prev = -1;
      let rising = true;
      for (let i = 0; i <= 20; i++) {
        const rgb = fromHex(R.rampColour(name, i / 20, 0));
        const L = R.rgbToOklab(m ? simulate(rgb, m) : rgb)[0];
        if (L <= prev) rising = false;
        prev = L;
      }
      ok(`${name}: lightness rises for ${who}`, rising);
    }
  }
  // The floor keeps the darkest colour off the dark wall's background.
  ok('ramp floor visible on the wall', R.contrast(fromHex(R.rampColour('viridis', 0)), fromHex('#0e1522')) >= 1.5,
    R.contrast(fromHex(R.rampColour('viridis', 0)), fromHex('#0e1522')));
});

run('tones', () => {
  const bg = fromHex('#0e1522');
  for (const t of ['good', 'warn', 'bad']) ok(`${t} readable on the wall`, R.contrast(fromHex(R.TONES[t].colour), bg) >= 4.5, R.contrast(fromHex(R.TONES[t].colour), bg));
  for (const [who, m] of [['everyone', null]].concat(Object.entries(CVD))) {
    const c = ['good', 'warn', 'bad'].map((t) => (m ? simulate(fromHex(R.TONES[t].colour), m) : fromHex(R.TONES[t].colour)));
    ok(`good, warn and bad apart for ${who}`, dist(c[0], c[1]) > 0.08 && dist(c[1], c[2]) > 0.08 && dist(c[0], c[2]) > 0.08,
      [dist(c[0], c[1]), dist(c[1], c[2]), dist(c[0], c[2])].map((x) => x.toFixed(3)));
  }
  ok('each tone has its mark', new Set(['good', 'warn', 'bad'].map((t) => R.TONES[t].mark)).size === 3);
});

run('thresholdTone', () => {
  const th = [{ value: 0.9, color: 'good' }, { value: 0.7, color: 'warn' }];
  eq('above the top', R.thresholdTone(th, 0.95, 'higher_is_better'), 'good');
  eq('at a threshold', R.thresholdTone(th, 0.9, 'higher_is_better'), 'good');
  eq('between', R.thresholdTone(th, 0.8, 'higher_is_better'), 'warn');
  eq('below all, higher is better', R.thresholdTone(th, 0.5, 'higher_is_better'), 'bad');
  const up = [{ value: 0, color: 'good' }, { value: 1, color: 'warn' }, { value: 20, color: 'bad' }];
  eq('ascending, lower is better', [0, 3, 25].map((v) => R.thresholdTone(up, v, 'lower_is_better')), ['good', 'warn', 'bad']);
  eq('below all, lower is better', R.thresholdTone([{ value: 10, color: 'warn' }], 3, 'lower_is_better'), 'good');
  eq('below all, neutral', R.thresholdTone([{ value: 10, color: 'warn' }], 3, 'neutral'), null);
  eq('no thresholds', R.thresholdTone([], 3, 'neutral'), null);
  eq('no value', R.thresholdTone(th, null, 'higher_is_better'), null);
  eq('unknown colour', R.thresholdTone([{ value: 0, color: 'mauve' }], 1, 'neutral'), 'neutral');
});

run('catalogThresholds', () => {
  // Pupils per teacher: lower is better, a warning past 25, critical past 35.
  const crowded = { direction: 'lower_is_better', thresholds: { warning: 25, critical: 35 } };
  eq('lower is better, through the tones', [20, 25, 30, 40].map((v) => R.thresholdTone(R.catalogThresholds(crowded), v, crowded.direction)),
    ['good', 'warn', 'warn', 'bad']);
  // Completeness: higher is better, a warning under 0.9, critical under 0.5.
  const share = { direction: 'higher_is_better', thresholds: { warning: 0.9, critical: 0.5 } };
  eq('higher is better, through the tones', [0.95, 0.9, 0.7, 0.3].map((v) => R.thresholdTone(R.catalogThresholds(share), v, share.direction)),
    ['good', 'good', 'warn', 'bad']);
  eq('only a warning', R.catalogThresholds({ direction: 'neutral', thresholds: { warning: 3 } }), [{ value: 3, color: 'warn' }]);
  eq('none given', R.catalogThresholds({ direction: 'neutral' }), null);
});

run('legendScale', () => {
  const f = R.legendScale([0.42, 0.57, null, 0.91], { mode: 'fitted', ratio: true });
  eq('fitted ratios, rounded out', [f.kind, f.min, f.max], ['continuous', 0.4, 1]);
  eq('lowest and highest colours', [f.colour(0.4), f.colour(1)], [R.rampColour('viridis', 0), R.rampColour('viridis', 1)]);
  eq('null has no colour', f.colour(null), null);
  const c = R.legendScale([3, 7, 12], { mode: 'fitted' });
  eq('fitted counts, rounded out to nice numbers', [c.min, c.max], [2, 12]);
  const one = R.legendScale([5, 5], { mode: 'fitted' });
  ok('all equal: a range around them', one.min < 5 && one.max > 5, one);
  const fx = R.legendScale([0.2, 0.95], { mode: 'fixed', ratio: true });
  eq('fixed ratios: 0–100%', [fx.min, fx.max], [0, 1]);
  const cl = R.legendScale([0.5, 0.8, 0.95], { mode: 'fixed', thresholds: [{ value: 0.9 }, { value: 0.7 }] });
  eq('classes between thresholds', [cl.kind, cl.breaks, cl.colours.length], ['classes', [0.7, 0.9], 3]);
  eq('class of each value', [0.5, 0.7, 0.8, 0.95].map((v) => cl.classOf(v)), [0, 1, 1, 2]);
  eq('cividis when asked', R.legendScale([0, 1], { mode: 'fitted', ramp: 'cividis' }).colour(1), R.rampColour('cividis', 1));
  eq('no figures', [R.legendScale([], { mode: 'fitted' }).min, R.legendScale([], { mode: 'fitted' }).max], [0, 1]);
});

// ---- text.js ----------------------------------------------------------------

run('formats', () => {
  const ratio = { kind: 'ratio', unit: 'ratio', direction: 'higher_is_better' };
  const count = { kind: 'count', unit: 'dossiers', direction: 'neutral' };
  const days = { kind: 'duration', unit: 'days', direction: 'lower_is_better' };
  eq('ratio', T.formatValue(ratio, 0.9854), '98,5%');
  eq('count', T.formatValue(count, 12345), '12.345');
  eq('days', T.formatValue(days, 2.25), '2,3');
  eq('metres', T.formatValue({ kind: 'max', unit: 'm' }, 1.7), '1,70');
  eq('null', T.formatValue(ratio, null), '–');
  eq('metres, up to two decimals', T.formatValue({ kind: 'max', unit: 'm' }, 1.7, true), '1,7');
  eq('a ratio keeps its decimal', T.formatValue(ratio, 1, true), '100,0%');
  // A department's ratio in its own unit is a number, not a share.
  const perHousehold = { kind: 'ratio', unit: 'people', direction: 'neutral' };
  eq('a ratio in people', T.formatValue(perHousehold, 2.9412), '2,9');
  eq('its unit shown', T.unitText(perHousehold), ['people', 'people']);
  eq('its change in people', T.formatChange(perHousehold, 3, 2.5).vi, '+0,5 people');
  const residents = { kind: 'sum', unit: 'people', direction: 'neutral' };
  eq('a department\'s total, whole', T.formatValue(residents, 1509), '1.509');
  // A figure that is not zero never reads "0,0".
  const perThousand = { kind: 'ratio', unit: 'per 1,000 people', direction: 'neutral' };
  eq('a small rate, two significant digits', T.formatValue(perThousand, 0.0042), '0,0042');
  eq('a negative one too', T.formatValue(perThousand, -0.012), '-0,012');
  eq('one that rounds to a decimal, as usual', T.formatValue(perThousand, 0.05), '0,1');
  eq('zero is zero', T.formatValue(perThousand, 0), '0,0');
  eq('a tiny share', T.formatValue(ratio, 0.00012), '0,012%');
  eq('small metres', T.formatValue({ kind: 'max', unit: 'm' }, 0.003), '0,003');
  eq('a department\'s total is a tally', T.isTally(residents), true);
  eq('whose label says what it counts', T.unitText(residents), ['', '']);
  eq('a count written whole up to five digits', T.compactCount(99999), null);
  eq('six digits in thousands', T.compactCount(123456), ['123,5', 'nghìn', 'thousand']);
  eq('just under a million, in thousands', T.compactCount(999949), ['999,9', 'nghìn', 'thousand']);
  eq('what would round to a thousand thousands, in millions', T.compactCount(999950), ['1,00', 'triệu', 'million']);
  eq('no count', T.compactCount(null), null);
  eq('a reading, up to its decimals', T.reading('water_level', 1.7, true).value, '1,7 m');
  eq('a reading, its decimals', T.reading('water_level', 1.7).value, '1,70 m');
  eq('unit', T.unitText(days), ['ngày', 'days']);
  eq('ratio change in points', T.formatChange(ratio, 0.95, 0.927), { vi: '+2,3 điểm %', en: '+2.3 pp', sign: 1 });
  eq('count change in percent', T.formatChange(count, 90, 120), { vi: '−25,0%', en: '−25.0%', sign: -1 });
  eq('count from zero', T.formatChange(count, 1200, 0), { vi: '+1.200', en: '+1,200', sign: 1 });
  eq('no change', T.formatChange(count, 5, 5).sign, 0);
  eq('days change', T.formatChange(days, 2, 2.5), { vi: '−0,5 ngày', en: '−0.5 days', sign: -1 });
  eq('nothing to compare', T.formatChange(ratio, 0.5, null), null);
  eq('good news by direction', [T.changeTone(ratio, 1), T.changeTone(ratio, -1), T.changeTone(days, -1), T.changeTone(count, 1), T.changeTone(days, 0)],
    ['good', 'bad', 'good', 'neutral', 'neutral']);
});

run('words', () => {
  eq('both', T.pick({ vi: 'Tổng quan', en: 'Overview' }), ['Tổng quan', 'Overview']);
  eq('the same twice', T.pick({ vi: 'IOC', en: 'IOC' }), ['IOC', '']);
  eq('English only', T.pick({ en: 'Overview' }), ['Overview', '']);
  eq('a string', T.pick('Ghi chú'), ['Ghi chú', '']);
  eq('severities', ['critical', 'warning', 'info'].map((s) => T.atLeast(s, 'warning')), [true, true, false]);
  eq('any severity', T.atLeast('info', undefined), true);
  eq('event type', T.eventType('congestion'), ['Ùn tắc giao thông', 'Congestion']);
  eq('unknown event type', T.eventType('boat_race'), ['boat race', '']);
  eq('reading', T.reading('water_level', 1.7).value, '1,70 m');
  eq('durations', [T.durationText(30), T.durationText(600), T.durationText(3900), T.durationText(3 * 86400)],
    [['30 giây', '30 s'], ['10 phút', '10 min'], ['1 giờ 5 phút', '1 h 5 min'], ['3 ngày', '3 d']]);
  eq('age', [T.ageText(now - 20e3, now), T.ageText(now - 125e3, now)], [['vừa xong', 'just now'], ['2 phút trước', '2 min ago']]);
  eq('time in the zone', T.timeText(now, VN), '10:30:00');
  eq('date in the zone', T.dateText(now, VN), ['Chủ nhật, 22/11/2026', 'Sunday 2026-11-22']);
  eq('zone of a time', [T.offsetOf('2026-11-22T10:30:00+07:00'), T.offsetOf('2026-11-22T03:30:00Z'), T.offsetOf('2026-11-22T03:30:00-05:30'), T.offsetOf('x')], [420, 0, -330, null]);
});

run('alarm texts', () => {
  const water = T.alarmText({ rule_id: 'water-alert-level', rule_name: 'Water at or above the gauge\'s alert level', rule_kind: 'threshold',
    device_id: 'WL-1', device_kind: 'sensor', value: 1.7, threshold: 1.5, message: 'water_level at WL-1 is 1.7, at or above its alert_level 1.5' });
  eq('rule of a default, in Vietnamese with the English', water.rule, ['Mực nước đạt hoặc vượt mức báo động của trạm đo', 'Water at or above the gauge\'s alert level']);
  eq('threshold message', water.message[0], 'Mực nước tại Cảm biến WL-1 là 1,70 m, đạt hoặc vượt ngưỡng 1,50 m');
  eq('the server\'s English kept', water.message[1], 'water_level at WL-1 is 1.7, at or above its alert_level 1.5');
  const burst = T.alarmText({ rule_id: 'my-rule', rule_name: 'Too many', rule_kind: 'event_count', device_id: 'CAM-1', device_kind: 'camera',
    value: 12, threshold: 10, message: '12 traffic_violation events at CAM-1 within 5m0s (limit 10)' });
  eq('a rule of the API: kind in Vietnamese', burst.rule, ['Nhiều sự kiện camera', 'Too many']);
  eq('event count message', burst.message[0], '12 sự kiện "Vi phạm giao thông" tại Camera CAM-1 (giới hạn 10)');
  const off = T.alarmText({ rule_id: 'device-offline', rule_kind: 'offline', device_id: 'AQ-2', device_kind: 'sensor', device_name: 'Trạm Q1', value: 900, threshold: 600, message: 'sensor AQ-2 has not reported for 15m0s (limit 10m0s)' });
  eq('offline message', off.message[0], 'Cảm biến Trạm Q1 (AQ-2) không gửi dữ liệu trong 15 phút (giới hạn 10 phút)');
  eq('unknown kind keeps the message', T.alarmText({ rule_kind: 'new', message: 'hello' }).message, ['hello', '']);
  const feed = T.alarmText({ rule_id: 'dataset-feed-late', rule_name: 'Department data late or its pull failing', rule_kind: 'dataset_feed',
    device_id: 'dataset:permits', message: 'dataset permits: 2026-10 due, latest 2020-01; its pull failed: connection refused' });
  eq('dataset feed rule', feed.rule, ['Dữ liệu chuyên ngành trễ hạn hoặc lỗi lấy dữ liệu', 'Department data late or its pull failing']);
  eq('dataset feed message', feed.message[0], 'Nguồn dữ liệu "permits": kỳ 2026-10 đã đến hạn, mới nhất là kỳ 2020-01; lỗi khi lấy dữ liệu: connection refused');
});

// ---- geo.js -----------------------------------------------------------------

run('buildGeometry', () => {
  const sq = (x, y, s) => [[[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]];
  const fc = { type: 'FeatureCollection', features: [
    { type: 'Feature', id: 'A', properties: { name: 'An' }, geometry: { type: 'Polygon', coordinates: sq(106.6, 10.7, 0.1) } },
    { type: 'Feature', properties: { code: 'B', name: 'Bình' }, geometry: { type: 'MultiPolygon', coordinates: [sq(106.7, 10.7, 0.1), sq(106.7, 10.8, 0.05)] } },
    { type: 'Feature', id: 'C', geometry: null },
  ] };
  const g = G.buildGeometry(fc);
  eq('units with shapes', Array.from(g.units.keys()), ['A', 'B']);
  ok('the longer side spans the map', Math.abs(Math.max(g.w, g.h) - G.MAP_SIZE) < 1e-6, [g.w, g.h]);
  eq('two rings for B', (g.units.get('B').d.match(/Z/g) || []).length, 2);
  const [x, y] = g.point(106.65, 10.75, 'A');
  const box = g.units.get('A').box;
  ok('a point of A lands in A\'s box', x > box[0] && x < box[2] && y > box[1] && y < box[3], { x, y, box });
  eq('unit at a point', [G.unitAt(g, 106.75, 10.75), G.unitAt(g, 106.72, 10.82), G.unitAt(g, 100, 10)], ['B', 'B', '']);
  let threw = false;
  try { G.buildGeometry({ features: [] }); } catch (e) { threw = true; }
  ok('no shapes is an error', threw);
});

run('compareAlarms', () => {
  const a = (id, severity, state, opened) => ({ id, severity, state, opened_at: opened });
  const list = [a('1', 'warning', 'open', '2025-01-01T10:00:00Z'), a('2', 'critical', 'acknowledged', '2025-01-01T11:00:00Z'),
    a('3', 'critical', 'open', '2025-01-01T09:00:00Z'), a('4', 'critical', 'open', '2025-01-01T12:00:00Z'), a('5', 'warning', 'open', '2025-01-01T10:00:00Z')];
  eq('most severe, then open, then newest, then id', list.sort(Lay.compareAlarms).map((x) => x.id), ['4', '3', '2', '1', '5']);
});

run('feedState and compareFeeds', () => {
  const f = (dataset, late, completeness) => ({ dataset, late, completeness });
  eq('late, whatever its completeness', Lay.feedState(f('a', true, 1)), 'late');
  eq('units missing', Lay.feedState(f('a', false, 0.5)), 'incomplete');
  eq('complete', Lay.feedState(f('a', false, 1)), 'on_time');
  eq('points: no completeness', Lay.feedState(f('a', false, null)), 'on_time');
  const list = [f('ok', false, 1), f('pts', false, null), f('half', false, 0.5), f('none', true, 0), f('stale', true, 0.9), f('a-ok', false, 1)];
  eq('late first, then the least complete, then by id', list.sort(Lay.compareFeeds).map((x) => x.dataset), ['none', 'stale', 'half', 'a-ok', 'ok', 'pts']);
  ok('a type of its own', Lay.WIDGET_TYPES.includes('feeds'));
});

document.getElementById('result').textContent = JSON.stringify({ checks, failures });
