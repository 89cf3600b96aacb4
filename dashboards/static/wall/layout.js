// The wall's arithmetic: where widgets sit on the grid and on which screen
// of a spanned wall, how large text is, how many rows fit and which page
// of a ranking shows, in which order alarms and the departments' feeds
// are listed, what a series request covers to compare a window
// with the one before, and how step figures add up. Pure: no DOM, no
// clock (now is passed in), so that cmd/iocd/testdata/wall/unit_test.js
// checks it as it is.

import { sevRank } from './text.js';

export const WIDGET_TYPES = ['kpi', 'map', 'ranking', 'series', 'alarms', 'events', 'scoreboard', 'feeds', 'clock', 'header', 'text'];
export const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

const isInt = (v) => typeof v === 'number' && Number.isInteger(v);

// checkGrid lists what is wrong with the placement of a dashboard's
// widgets, each {path, error}: positions outside the grid, overlaps,
// duplicate ids, unknown types. The server checks the same and more on
// save; the page and the editor use it to say what they cannot draw.
export function checkGrid(def) {
  const out = [];
  const g = def && def.grid;
  if (!g || !isInt(g.columns) || !isInt(g.rows) || g.columns < 1 || g.rows < 1) {
    out.push({ path: 'grid', error: 'grid needs whole columns and rows, at least 1 each, e.g. {"columns": 24, "rows": 12}' });
    return out;
  }
  const widgets = Array.isArray(def.widgets) ? def.widgets : [];
  const ids = new Map();
  widgets.forEach((w, i) => {
    const p = `widgets[${i}]`;
    if (!w || typeof w !== 'object') {
      out.push({ path: p, error: 'a widget is an object with id, type, x, y, w and h' });
      return;
    }
    if (typeof w.id !== 'string' || !ID_RE.test(w.id)) out.push({ path: p + '.id', error: 'id must be lower-case letters, digits and dashes, e.g. "map-1"' });
    else if (ids.has(w.id)) out.push({ path: p + '.id', error: `id "${w.id}" is already used by widgets[${ids.get(w.id)}]; give each widget its own` });
    else ids.set(w.id, i);
    if (!WIDGET_TYPES.includes(w.type)) out.push({ path: p + '.type', error: `type must be one of ${WIDGET_TYPES.join(', ')}` });
    for (const k of ['x', 'y']) if (!isInt(w[k]) || w[k] < 0) out.push({ path: `${p}.${k}`, error: `${k} must be a whole number from 0` });
    for (const k of ['w', 'h']) if (!isInt(w[k]) || w[k] < 1) out.push({ path: `${p}.${k}`, error: `${k} must be a whole number from 1` });
    if (isInt(w.x) && isInt(w.w) && w.x + w.w > g.columns) out.push({ path: p + '.w', error: `x + w is ${w.x + w.w}, past the grid's ${g.columns} columns: move it left or make it narrower` });
    if (isInt(w.y) && isInt(w.h) && w.y + w.h > g.rows) out.push({ path: p + '.h', error: `y + h is ${w.y + w.h}, past the grid's ${g.rows} rows: move it up or make it shorter` });
  });
  for (let i = 0; i < widgets.length; i++) {
    for (let j = i + 1; j < widgets.length; j++) {
      if (overlap(widgets[i], widgets[j])) {
        out.push({ path: `widgets[${j}]`, error: `overlaps widgets[${i}] ("${widgets[i].id}"): move one of them` });
      }
    }
  }
  return out;
}

// overlap tells whether two placed widgets share a cell.
export function overlap(a, b) {
  if (!a || !b) return false;
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

// gridArea is a widget's CSS grid lines: "row / column / row-end / column-end".
export function gridArea(w) {
  return `${w.y + 1} / ${w.x + 1} / ${w.y + w.h + 1} / ${w.x + w.w + 1}`;
}

// partFrame says how a screen shows its part of a dashboard spanning a
// wall of part.columns × part.rows screens: the whole grid is laid out
// over the wall's size (scale × the screen's) and moved by (dx, dy)
// screens, so that widgets crossing screens line up at the joins. Without
// a part (or a 1×1 wall) the frame is the screen itself.
export function partFrame(part) {
  const ok = part && isInt(part.columns) && isInt(part.rows) && part.columns >= 1 && part.rows >= 1 &&
    isInt(part.col) && isInt(part.row) && part.col >= 0 && part.row >= 0 && part.col < part.columns && part.row < part.rows;
  if (!ok) return { scaleX: 1, scaleY: 1, dx: 0, dy: 0, spanned: false };
  return { scaleX: part.columns, scaleY: part.rows, dx: -part.col, dy: -part.row, spanned: part.columns * part.rows > 1 };
}

// widgetsInPart lists the widgets of def that show on the screen of part:
// those whose cells reach into the screen's share of the grid.
export function widgetsInPart(def, part) {
  const f = partFrame(part);
  const ws = Array.isArray(def.widgets) ? def.widgets : [];
  if (!f.spanned) return ws.slice();
  const g = def.grid;
  const x0 = (part.col * g.columns) / part.columns;
  const x1 = ((part.col + 1) * g.columns) / part.columns;
  const y0 = (part.row * g.rows) / part.rows;
  const y1 = ((part.row + 1) * g.rows) / part.rows;
  return ws.filter((w) => w.x < x1 && w.x + w.w > x0 && w.y < y1 && w.y + w.h > y0);
}

// Type sizes, in hundredths of the screen's height (CSS --u). On the wall
// theme, read from 5 m on a 55-inch panel: any text at least 2, a KPI
// value at least 6 (issue 15). The desk themes are for a monitor at arm's
// length.
export const FONT_SIZES = {
  wall: { small: 2.0, text: 2.3, title: 2.6, header: 4.2, kpi: 6.6, hero: 9 },
  dark: { small: 1.5, text: 1.7, title: 2.0, header: 3.2, kpi: 5.0, hero: 7 },
  light: { small: 1.5, text: 1.7, title: 2.0, header: 3.2, kpi: 5.0, hero: 7 },
};

export function fontSizes(theme) {
  return FONT_SIZES[theme] || FONT_SIZES.wall;
}

// rowsThatFit is how many rows of rowHeight, gap apart, fit in available.
export function rowsThatFit(available, rowHeight, gap) {
  if (!(available > 0) || !(rowHeight > 0)) return 0;
  const g = gap > 0 ? gap : 0;
  return Math.max(0, Math.floor((available + g + 0.5) / (rowHeight + g)));
}

// paginate splits items into pages of perPage (at least one page, perhaps empty).
export function paginate(items, perPage) {
  const list = Array.isArray(items) ? items : [];
  const n = Math.max(1, Math.floor(perPage) || 1);
  const pages = [];
  for (let i = 0; i < list.length; i += n) pages.push(list.slice(i, i + n));
  if (!pages.length) pages.push([]);
  return pages;
}

// pageAt is the page showing elapsed seconds after paging started, each
// page pageSeconds long, cycling.
export function pageAt(pageCount, elapsedSeconds, pageSeconds) {
  if (!(pageCount > 1) || !(pageSeconds > 0) || !(elapsedSeconds > 0)) return 0;
  return Math.floor(elapsedSeconds / pageSeconds) % pageCount;
}

// rank orders children {area, name, value} for a ranking: 'top' highest
// first, 'bottom' lowest first; units without a figure last; ties by area
// code, as the ranking API breaks them. It returns the first n with their
// rank (1-based).
export function rank(items, order, n) {
  const sign = order === 'bottom' ? 1 : -1;
  const has = (v) => typeof v === 'number' && isFinite(v);
  const list = (items || []).slice().sort((a, b) => {
    const av = has(a.value);
    const bv = has(b.value);
    if (av !== bv) return av ? -1 : 1;
    if (av && a.value !== b.value) return sign * (a.value - b.value);
    return a.area < b.area ? -1 : a.area > b.area ? 1 : 0;
  });
  return list.slice(0, n > 0 ? n : list.length).map((x, i) => Object.assign({ rank: i + 1 }, x));
}

// compareAlarms orders alarms not yet resolved: most severe first; of
// those, the ones nobody has taken in hand; then the newest.
export function compareAlarms(a, b) {
  return sevRank(a.severity) - sevRank(b.severity) ||
    (a.state === 'open' ? 0 : 1) - (b.state === 'open' ? 0 : 1) ||
    (Date.parse(b.opened_at) || 0) - (Date.parse(a.opened_at) || 0) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

// feedState says how a department's dataset stands, from its entry of
// GET /api/v1/datasets/health: 'late' when the period due has not come,
// 'incomplete' when its latest period lacks units, else 'on_time'. A
// dataset of points has no completeness: it is never incomplete.
export function feedState(f) {
  if (!f || f.late) return 'late';
  return typeof f.completeness === 'number' && f.completeness < 1 ? 'incomplete' : 'on_time';
}

// compareFeeds orders the feeds for the wall: the late ones first, then
// the least complete (those without completeness count as complete), then
// by id, so that the list does not reshuffle between refreshes.
export function compareFeeds(a, b) {
  const c = (f) => (typeof f.completeness === 'number' && isFinite(f.completeness) ? f.completeness : 1);
  return (a.late ? 0 : 1) - (b.late ? 0 : 1) || c(a) - c(b) ||
    (a.dataset < b.dataset ? -1 : a.dataset > b.dataset ? 1 : 0);
}

// ---- periods and series --------------------------------------------------

const HOUR = 3600e3;
const DAY = 24 * HOUR;
const p2 = (n) => String(n).padStart(2, '0');

// localMidnight is the start of the local day holding t, the zone offset
// minutes east of UTC.
export function localMidnight(t, offset) {
  const shifted = t + offset * 60000;
  return shifted - (((shifted % DAY) + DAY) % DAY) - offset * 60000;
}

// rfc3339 writes t in the zone of offset, as the API reads it.
export function rfc3339(t, offset) {
  const d = new Date(t + offset * 60000);
  const sign = offset < 0 ? '-' : '+';
  const o = Math.abs(offset);
  return `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}T${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}` +
    `${sign}${p2(Math.floor(o / 60))}:${p2(o % 60)}`;
}

// localDate is the local date of t: "2026-11-22".
export function localDate(t, offset) {
  return rfc3339(t, offset).slice(0, 10);
}

// windowStart is where a live window begins (aggregate.Window.Start).
export function windowStart(win, now, offset) {
  switch (win) {
    case '24h': return Math.floor((now - DAY) / 60000) * 60000;
    case '7d': return Math.floor((now - 7 * DAY) / 60000) * 60000;
    case '30d': return Math.floor((now - 30 * DAY) / 60000) * 60000;
  }
  return localMidnight(now, offset);
}

// comparePlan is what a KPI tile asks the series API for to draw its
// sparkline over the window and compare it with the window before, in one
// request: the step, the range (from, to), the window now [cur0, now) and
// the window before, ending as long after its start as now does
// [prev0, prev1). "The day before" at 10:00 is yesterday until 10:00, not
// all of yesterday, so that a morning does not always look like a fall.
// Steps are hours, or days for 30d (an hourly series is capped at 31
// days); a step counts in a window when it starts inside it.
// compare 'year_ago' asks the current window with compare=year_ago
// instead (the API pairs each step with the same step a year earlier).
export function comparePlan(win, compare, now, offset) {
  const cur0 = windowStart(win, now, offset);
  const span = win === 'today' ? DAY : now - cur0;
  const step = win === '30d' ? 'day' : 'hour';
  if (compare === 'year_ago') {
    return { step, from: rfc3339(cur0, offset), to: rfc3339(now, offset), compare: 'year_ago', cur0, now };
  }
  const plan = { step, to: rfc3339(now, offset), cur0, now };
  if (compare === 'previous_period') {
    plan.prev0 = cur0 - span;
    plan.prev1 = now - span;
    plan.from = rfc3339(plan.prev0, offset);
  } else {
    plan.from = rfc3339(cur0, offset);
  }
  return plan;
}

// splitPlan sorts a series' points by the plan: current (for the
// sparkline and, without live figures, the value) and previous.
export function splitPlan(plan, points) {
  const cur = [];
  const prev = [];
  const stepMs = plan.step === 'day' ? DAY : HOUR;
  for (const p of points || []) {
    const t = Date.parse(p.t);
    if (!isFinite(t)) continue;
    // A step counts where it starts, except the first one, which the API
    // widened back to a whole step: it holds the window's start.
    if (t + stepMs > plan.cur0 && t < plan.now) cur.push(p);
    else if (plan.prev0 !== undefined && t + stepMs > plan.prev0 && t < plan.prev1) prev.push(p);
  }
  if (plan.compare === 'year_ago') {
    for (const p of cur) if (p.previous) prev.push(p.previous);
  }
  return { cur, prev };
}

const round = (v, d) => Math.round(v * Math.pow(10, d)) / Math.pow(10, d);
const num = (v) => (typeof v === 'number' && isFinite(v) ? v : null);

// combine adds up step figures of an indicator of kind into one figure
// over their steps, as the server would over the whole range: counts sum;
// ratios, means and durations divide the summed numerators by the summed
// denominators (never an average of rates); maxima take the largest.
// null when nothing adds up to a figure.
export function combine(points, kind) {
  let n = 0;
  let d = 0;
  let any = false;
  let max = null;
  for (const p of points || []) {
    if (!p) continue;
    const v = num(p.value);
    const nu = num(p.numerator);
    const de = num(p.denominator);
    if (kind === 'max') {
      if (v !== null && (max === null || v > max)) max = v;
      continue;
    }
    if (kind === 'count') {
      const c = nu !== null ? nu : v;
      if (c !== null) { n += c; any = true; }
      continue;
    }
    if (nu !== null && de !== null) { n += nu; d += de; any = true; }
  }
  switch (kind) {
    case 'max': return max;
    case 'count': return any ? n : 0;
    case 'ratio': return any && d > 0 ? round(n / d, 4) : null;
    case 'mean': case 'duration': return any && d > 0 ? round(n / d, 2) : null;
  }
  return any && d > 0 ? n / d : null;
}

// seriesRange is the from/to of a series widget: days whole local days
// ending today, by step.
export function seriesRange(days, now, offset) {
  const d = Math.max(1, Math.floor(days) || 1);
  const today = localMidnight(now, offset);
  return { from: localDate(today - (d - 1) * DAY, offset), to: localDate(today, offset) };
}

// linePath draws values (nulls break the line) into a box of w × h, the
// y axis from lo (bottom) to hi (top): an SVG path.
export function linePath(values, w, h, lo, hi) {
  const n = values.length;
  if (!n) return '';
  const span = hi - lo || 1;
  const dx = n > 1 ? w / (n - 1) : 0;
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (typeof v !== 'number' || !isFinite(v)) { pen = false; return; }
    const x = (n > 1 ? i * dx : w / 2).toFixed(1);
    const y = (h - ((v - lo) / span) * h).toFixed(1);
    d += (pen ? 'L' : 'M') + x + ',' + y;
    pen = true;
  });
  return d;
}

// extent is [min, max] of the numbers in lists, widened to include zero
// for counts (a bar of zero means nothing happened); [0, 1] when none.
export function extent(lists, fromZero) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const l of lists) for (const v of l) if (typeof v === 'number' && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (lo === Infinity) return [0, 1];
  if (fromZero) lo = Math.min(0, lo);
  if (hi === lo) hi = lo + 1;
  return [lo, hi];
}

// ---- editor --------------------------------------------------------------

// freeSpot finds the first place (row by row) where a w × h widget fits
// without overlapping any of widgets; null when the grid is full.
export function freeSpot(grid, widgets, w, h) {
  for (let y = 0; y + h <= grid.rows; y++) {
    for (let x = 0; x + w <= grid.columns; x++) {
      const c = { x, y, w, h };
      if (!widgets.some((o) => overlap(o, c))) return { x, y };
    }
  }
  return null;
}

// clampBox keeps a box inside the grid, at least one cell.
export function clampBox(grid, b) {
  const w = Math.max(1, Math.min(grid.columns, Math.round(b.w)));
  const h = Math.max(1, Math.min(grid.rows, Math.round(b.h)));
  const x = Math.max(0, Math.min(grid.columns - w, Math.round(b.x)));
  const y = Math.max(0, Math.min(grid.rows - h, Math.round(b.y)));
  return { x, y, w, h };
}

// cellAt converts a point in a grid of width × height px into a cell.
export function cellAt(grid, width, height, px, py) {
  return {
    x: Math.max(0, Math.min(grid.columns - 1, Math.floor((px / width) * grid.columns))),
    y: Math.max(0, Math.min(grid.rows - 1, Math.floor((py / height) * grid.rows))),
  };
}
