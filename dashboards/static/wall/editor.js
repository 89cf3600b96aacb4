// The dashboard editor (/wall/editor.html?dashboard=ID, for admins): the
// grid with its widgets to add, move, resize and configure (options from
// the indicator catalog), previews at 1920×1080 and 3840×2160 drawn by the
// wall's own board code with live figures, and a save with PUT
// /api/v1/dashboards/{id} that shows the server's field errors where the
// fields are. It writes the same JSON the wall reads. Below, the screens
// panel (screens.js) commands the wall's screens and issues kiosk links.
//
// The previews are not iframes: the page's policy forbids framing
// (frame-ancestors 'none'). A board sizes everything in --u, a hundredth
// of its screen's height, so a box of 1920×1080 CSS pixels with --u at
// 10.8px, scaled down, is what a 1080p screen shows, and one of 3840×2160
// what a 4K screen shows.

import { Api, ApiError, takeToken, roleOf, enc } from './api.js';
import { Live } from './socket.js';
import { Board } from './board.js';
import { h } from './dom.js';
import { checkGrid, freeSpot, clampBox, cellAt, WIDGET_TYPES, ID_RE } from './layout.js';
import { offsetOf, WINDOWS, SEVERITIES, indicatorName } from './text.js';
import { ScreensPanel } from './screens.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const THEMES = ['wall', 'dark', 'light'];
const PREVIEW_DELAY = 500; // ms of quiet before the previews are drawn again
const SIZES = { kpi: [4, 2], map: [10, 8], ranking: [6, 5], series: [10, 3], alarms: [6, 5], events: [6, 3], scoreboard: [6, 8], feeds: [8, 5], clock: [4, 1], header: [12, 1], text: [4, 2] };
const TYPE_NAMES = {
  kpi: 'Chỉ số (KPI tile)', map: 'Bản đồ (map)', ranking: 'Xếp hạng (ranking)', series: 'Biểu đồ (series)', alarms: 'Cảnh báo (alarms)',
  events: 'Sự kiện camera (camera events)', scoreboard: 'Bộ chỉ số 766 (scoreboard)',
  feeds: 'Dữ liệu các sở (department data feeds)', clock: 'Đồng hồ (clock)', header: 'Tiêu đề (header)', text: 'Văn bản (text)',
};
// The severities, least first, as a minimum is chosen.
const SEVERITY = Object.keys(SEVERITIES).sort((a, b) => SEVERITIES[b].rank - SEVERITIES[a].rank);
// The options each type takes, as the spec lists them: [name, kind, …].
const OPTIONS = {
  kpi: [['indicator', 'indicator'], ['compare', 'enum', ['previous_period', 'year_ago', 'none']], ['sparkline', 'bool'], ['thresholds', 'thresholds'], ['title', 'text2']],
  map: [['indicator', 'indicator'], ['legend', 'enum', ['fitted', 'fixed']], ['thresholds', 'thresholds'], ['ramp', 'enum', ['viridis', 'cividis']],
    ['layers', 'set', ['devices', 'alarms']], ['drilldown', 'drilldown'], ['title', 'text2']],
  ranking: [['indicator', 'indicator'], ['order', 'enum', ['top', 'bottom']], ['n', 'int', 1, 50], ['page_seconds', 'int', 3, 600], ['title', 'text2']],
  series: [['indicators', 'indicators'], ['step', 'enum', ['hour', 'day', 'week', 'month']], ['days', 'int', 1, 400], ['title', 'text2']],
  alarms: [['min_severity', 'enum', SEVERITY], ['acknowledge', 'bool'], ['title', 'text2']],
  events: [['min_severity', 'enum', SEVERITY], ['title', 'text2']],
  scoreboard: [['group', 'group'], ['title', 'text2']],
  feeds: [['only_late', 'bool'], ['title', 'text2']],
  clock: [],
  header: [['text', 'text2']],
  text: [['text', 'text2'], ['title', 'text2']],
};
const DEFAULTS = {
  kpi: { indicator: 'dossiers_received', compare: 'previous_period', sparkline: true },
  map: { indicator: 'online_rate', legend: 'fitted', layers: ['devices', 'alarms'] },
  ranking: { indicator: 'dossiers_received', order: 'top', n: 10, page_seconds: 10 },
  series: { indicators: ['dossiers_received'], step: 'day', days: 30 },
  alarms: { min_severity: 'warning', acknowledge: true },
  events: { min_severity: 'info' },
  scoreboard: {},
  feeds: {},
  clock: {},
  header: {},
  text: { text: { vi: 'Văn bản', en: 'Text' } },
};

const ed = {
  def: null,
  sel: -1, // the selected widget's index
  svc: null,
  catalog: null,
  previews: [], // {box, screen, board, w, h}
  previewTimer: 0,
  server: [], // the server's field errors from the last save
  saved: '', // JSON as last loaded or saved
};

// ---- the document -------------------------------------------------------------

function template(id) {
  return {
    id, title: { vi: 'Bảng điều khiển mới', en: 'New dashboard' }, area: params.get('area') || '79', window: 'today', theme: 'wall',
    grid: { columns: 24, rows: 12 },
    widgets: [{ id: 'head', type: 'header', x: 0, y: 0, w: 20, h: 1 }, { id: 'clock', type: 'clock', x: 20, y: 0, w: 4, h: 1 }],
  };
}

function widgets() { return ed.def.widgets; }

function newID(type) {
  const used = new Set(widgets().map((w) => w.id));
  for (let i = 1; ; i++) if (!used.has(`${type}-${i}`)) return `${type}-${i}`;
}

// changed redraws what shows the document, and the previews a moment later.
function changed(opts) {
  ed.server = [];
  drawFields();
  drawCanvas();
  if (!opts || opts.props !== false) drawProps();
  drawJSON();
  drawErrors();
  clearTimeout(ed.previewTimer);
  ed.previewTimer = setTimeout(drawPreviews, PREVIEW_DELAY);
  $('ed-status').textContent = JSON.stringify(ed.def) === ed.saved ? '' : 'Chưa lưu (not saved)';
}

// ---- top bar ------------------------------------------------------------------

function drawFields() {
  const d = ed.def;
  setValue($('ed-id'), d.id || '');
  setValue($('ed-title-vi'), (d.title && d.title.vi) || '');
  setValue($('ed-title-en'), (d.title && d.title.en) || '');
  setValue($('ed-area'), d.area || '');
  setValue($('ed-window'), d.window || 'today');
  setValue($('ed-theme'), d.theme || 'wall');
  setValue($('ed-cols'), String(d.grid.columns));
  setValue($('ed-rows'), String(d.grid.rows));
  $('ed-remove').disabled = ed.sel < 0;
}

function setValue(el, v) {
  if (document.activeElement !== el && el.value !== v) el.value = v;
}

function bindFields() {
  for (const [k, label] of Object.entries(WINDOWS)) $('ed-window').append(h('option', { value: k }, `${label[0]} (${k})`));
  for (const t of THEMES) $('ed-theme').append(h('option', { value: t }, t));
  for (const t of WIDGET_TYPES) $('ed-add-type').append(h('option', { value: t }, TYPE_NAMES[t] || t));
  const on = (id, f) => $(id).addEventListener('input', () => { f($(id).value); changed(); });
  on('ed-id', (v) => { ed.def.id = v.trim(); });
  on('ed-title-vi', (v) => { ed.def.title = Object.assign({}, ed.def.title, { vi: v }); });
  on('ed-title-en', (v) => { ed.def.title = Object.assign({}, ed.def.title, { en: v }); });
  on('ed-area', (v) => { ed.def.area = v.trim(); });
  on('ed-window', (v) => { ed.def.window = v; });
  on('ed-theme', (v) => { ed.def.theme = v; });
  on('ed-cols', (v) => { if (+v >= 1) ed.def.grid = { columns: Math.floor(+v), rows: ed.def.grid.rows }; });
  on('ed-rows', (v) => { if (+v >= 1) ed.def.grid = { columns: ed.def.grid.columns, rows: Math.floor(+v) }; });
  $('ed-add').addEventListener('click', () => add($('ed-add-type').value));
  $('ed-remove').addEventListener('click', () => remove(ed.sel));
  $('ed-save').addEventListener('click', save);
  $('ed-json-apply').addEventListener('click', applyJSON);
}

function add(type) {
  const [w, hh] = SIZES[type] || [4, 2];
  const grid = ed.def.grid;
  let spot = null;
  // The size it wants, else smaller, down to one cell.
  for (let s = 0; !spot && (w - s >= 1 || hh - s >= 1); s++) {
    spot = freeSpot(grid, widgets(), Math.max(1, w - s), Math.max(1, hh - s));
    if (spot) { spot.w = Math.max(1, w - s); spot.h = Math.max(1, hh - s); }
  }
  if (!spot) {
    $('ed-status').textContent = 'Lưới đã kín: thu nhỏ hoặc xoá một widget (the grid is full: shrink or remove a widget)';
    return;
  }
  widgets().push({ id: newID(type), type, x: spot.x, y: spot.y, w: spot.w, h: spot.h, options: JSON.parse(JSON.stringify(DEFAULTS[type] || {})) });
  ed.sel = widgets().length - 1;
  changed();
}

function remove(i) {
  if (i < 0 || i >= widgets().length) return;
  widgets().splice(i, 1);
  ed.sel = Math.min(i, widgets().length - 1);
  changed();
}

// ---- the grid -------------------------------------------------------------------

function drawCanvas() {
  const c = $('ed-canvas');
  const g = ed.def.grid;
  c.style.setProperty('--cols', String(g.columns));
  c.style.setProperty('--rows', String(g.rows));
  const local = checkGrid(ed.def);
  const bad = new Set(local.map((p) => (/^widgets\[(\d+)\]/.exec(p.path) || [])[1]).filter(Boolean).map(Number));
  const boxes = widgets().map((w, i) => {
    const box = h('div', { class: 'ed-box', data: { index: i, widget: w.id, type: w.type }, role: 'button', 'aria-pressed': String(i === ed.sel) },
      h('span', { class: 'ed-box-label' }, `${w.id} · ${w.type}`),
      h('span', { class: 'ed-handle', data: { handle: 'resize' }, 'aria-hidden': 'true' }));
    box.style.left = `${(w.x / g.columns) * 100}%`;
    box.style.top = `${(w.y / g.rows) * 100}%`;
    box.style.width = `${(w.w / g.columns) * 100}%`;
    box.style.height = `${(w.h / g.rows) * 100}%`;
    box.classList.toggle('selected', i === ed.sel);
    box.classList.toggle('invalid', bad.has(i) || ed.server.some((e) => e.path.startsWith(`widgets[${i}]`)));
    return box;
  });
  c.replaceChildren(...boxes);
}

// The pointer moves or resizes the widget it took, cell by cell.
function bindCanvas() {
  const c = $('ed-canvas');
  let drag = null;
  c.addEventListener('pointerdown', (ev) => {
    const box = ev.target.closest('.ed-box');
    if (!box) return;
    ev.preventDefault();
    const i = Number(box.dataset.index);
    ed.sel = i;
    const r = c.getBoundingClientRect();
    const w = widgets()[i];
    drag = { i, mode: ev.target.dataset.handle === 'resize' ? 'resize' : 'move', start: cellAt(ed.def.grid, r.width, r.height, ev.clientX - r.left, ev.clientY - r.top), orig: { x: w.x, y: w.y, w: w.w, h: w.h } };
    c.setPointerCapture(ev.pointerId);
    c.focus();
    changed();
  });
  c.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    const r = c.getBoundingClientRect();
    const at = cellAt(ed.def.grid, r.width, r.height, ev.clientX - r.left, ev.clientY - r.top);
    const dx = at.x - drag.start.x;
    const dy = at.y - drag.start.y;
    const o = drag.orig;
    const b = drag.mode === 'move' ? { x: o.x + dx, y: o.y + dy, w: o.w, h: o.h } : { x: o.x, y: o.y, w: Math.min(o.w + dx, ed.def.grid.columns - o.x), h: Math.min(o.h + dy, ed.def.grid.rows - o.y) };
    const nb = clampBox(ed.def.grid, b);
    const w = widgets()[drag.i];
    if (nb.x !== w.x || nb.y !== w.y || nb.w !== w.w || nb.h !== w.h) {
      Object.assign(w, nb);
      changed({ props: false });
      drawProps();
    }
  });
  const end = () => { drag = null; };
  c.addEventListener('pointerup', end);
  c.addEventListener('pointercancel', end);
  c.addEventListener('keydown', (ev) => {
    const w = widgets()[ed.sel];
    if (!w) return;
    const d = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[ev.key];
    if (ev.key === 'Delete' || ev.key === 'Backspace') {
      ev.preventDefault();
      remove(ed.sel);
      return;
    }
    if (!d) return;
    ev.preventDefault();
    const b = ev.shiftKey ? { x: w.x, y: w.y, w: w.w + d[0], h: w.h + d[1] } : { x: w.x + d[0], y: w.y + d[1], w: w.w, h: w.h };
    Object.assign(w, clampBox(ed.def.grid, b));
    changed();
  });
}

// ---- the selected widget's properties -----------------------------------------

function drawProps() {
  const p = $('ed-props');
  const w = widgets()[ed.sel];
  if (!w) {
    p.replaceChildren(h('p', { class: 'ed-hint' }, 'Chọn một widget trên lưới (pick a widget on the grid).'));
    return;
  }
  const i = ed.sel;
  const path = (k) => `widgets[${i}].${k}`;
  const rows = [h('h2', {}, `${TYPE_NAMES[w.type] || w.type}`)];
  rows.push(field('Mã (id)', input(path('id'), w.id, (v) => { w.id = v.trim(); })));
  const type = h('select', { data: { path: path('type') } }, ...WIDGET_TYPES.map((t) => h('option', { value: t, selected: t === w.type }, TYPE_NAMES[t] || t)));
  type.addEventListener('change', () => { w.type = type.value; w.options = JSON.parse(JSON.stringify(DEFAULTS[w.type] || {})); changed(); });
  rows.push(field('Loại (type)', type));
  const pos = h('div', { class: 'ed-pos' });
  for (const k of ['x', 'y', 'w', 'h']) {
    const el = h('input', { type: 'number', min: k === 'w' || k === 'h' ? 1 : 0, value: String(w[k]), data: { path: path(k) }, 'aria-label': k });
    el.addEventListener('change', () => { Object.assign(w, clampBox(ed.def.grid, Object.assign({}, w, { [k]: Number(el.value) }))); changed(); });
    pos.append(h('label', {}, k, el));
  }
  rows.push(field('Vị trí, cỡ (x, y, w, h: ô lưới)', pos));
  w.options = w.options && typeof w.options === 'object' ? w.options : {};
  for (const spec of OPTIONS[w.type] || []) rows.push(optionField(w, i, spec));
  p.replaceChildren(...rows);
  markServerErrors();
}

function field(label, control) {
  return h('div', { class: 'ed-field' }, h('label', {}, label), control, h('p', { class: 'ed-field-error', role: 'alert' }));
}

function input(path, value, set, attrs) {
  const el = h('input', Object.assign({ value: value === undefined || value === null ? '' : String(value), data: { path } }, attrs || {}));
  el.addEventListener('change', () => { set(el.value); changed(); });
  return el;
}

function indicatorSelect(path, value, set, filter) {
  const list = ed.catalog.list.filter(filter || (() => true));
  const el = h('select', { data: { path } });
  if (value && !ed.catalog.byId.has(value)) el.append(h('option', { value, selected: true }, `${value} (không có trong danh mục · not in the catalog)`));
  for (const d of list) {
    const [vi, en] = indicatorName(d, d.id);
    el.append(h('option', { value: d.id, selected: d.id === value }, `${vi}${en ? ' · ' + en : ''} (${d.id})`));
  }
  el.addEventListener('change', () => { set(el.value); changed(); });
  return el;
}

function optionField(w, i, [name, kind, a, b]) {
  const o = w.options;
  const path = `widgets[${i}].options.${name}`;
  const set = (v) => {
    if (v === undefined || v === '' || (Array.isArray(v) && !v.length)) delete o[name];
    else o[name] = v;
  };
  let control;
  switch (kind) {
    case 'indicator':
      control = indicatorSelect(path, o[name], set, (d) => d.kind !== 'breakdown');
      break;
    case 'indicators': {
      control = h('select', { multiple: true, size: 6, data: { path } });
      const have = Array.isArray(o[name]) ? o[name] : [];
      for (const d of ed.catalog.list.filter((x) => x.history)) {
        const [vi] = indicatorName(d, d.id);
        control.append(h('option', { value: d.id, selected: have.includes(d.id) }, `${vi} (${d.id})`));
      }
      control.addEventListener('change', () => { set(Array.from(control.selectedOptions).map((x) => x.value)); changed(); });
      break;
    }
    case 'enum':
      control = h('select', { data: { path } }, h('option', { value: '' }, '—'), ...a.map((v) => h('option', { value: v, selected: v === o[name] }, v)));
      control.addEventListener('change', () => { set(control.value || undefined); changed(); });
      break;
    case 'bool':
      control = h('input', { type: 'checkbox', checked: o[name] === true, data: { path } });
      control.addEventListener('change', () => { set(control.checked); changed(); });
      break;
    case 'int':
      control = input(path, o[name], (v) => set(v === '' ? undefined : Number(v)), { type: 'number', min: a, max: b });
      break;
    case 'set': {
      control = h('span', { class: 'ed-set', data: { path } });
      for (const v of a) {
        const cb = h('input', { type: 'checkbox', checked: Array.isArray(o[name]) && o[name].includes(v), value: v });
        cb.addEventListener('change', () => { set(Array.from(control.querySelectorAll('input:checked')).map((x) => x.value)); changed(); });
        control.append(h('label', {}, cb, v));
      }
      break;
    }
    case 'thresholds': {
      // "0.9 good, 0.7 warn": value and colour (good, warn, bad, neutral, info).
      const text = Array.isArray(o[name]) ? o[name].map((t) => `${t.value} ${t.color}`).join(', ') : '';
      control = input(path, text, (v) => {
        const list = v.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
          const [val, color] = s.split(/\s+/);
          return { value: Number(val), color: color || 'neutral' };
        });
        set(list.length ? list : undefined);
      }, { placeholder: '0.9 good, 0.7 warn' });
      break;
    }
    case 'drilldown': {
      const dd = () => (o[name] && typeof o[name] === 'object' ? o[name] : {});
      const put = (k, v) => {
        const next = Object.assign({ mode: 'click' }, dd(), { [k]: v });
        if (v === undefined || v === '') delete next[k];
        if (next.mode !== 'timed') delete next.seconds;
        set(next.dashboard ? next : undefined);
      };
      const mode = h('select', { data: { path: `${path}.mode` } }, ...['click', 'timed'].map((m) => h('option', { value: m, selected: (dd().mode || 'click') === m }, m)));
      mode.addEventListener('change', () => { put('mode', mode.value); changed(); });
      control = h('span', { class: 'ed-text2' },
        input(`${path}.dashboard`, dd().dashboard, (v) => put('dashboard', v.trim()), { placeholder: 'ops-district', spellcheck: 'false' }),
        mode,
        input(`${path}.seconds`, dd().seconds, (v) => put('seconds', v === '' ? undefined : Number(v)), { type: 'number', min: 5, max: 600, placeholder: '20 s' }));
      break;
    }
    case 'group': {
      control = h('select', { data: { path } }, h('option', { value: '' }, 'tất cả (all)'),
        ...ed.catalog.groups.map((g) => h('option', { value: g.id, selected: g.id === o[name] }, `${g.name_vi} (${g.id})`)));
      control.addEventListener('change', () => { set(control.value || undefined); changed(); });
      break;
    }
    case 'text2': {
      const t = o[name] && typeof o[name] === 'object' ? o[name] : {};
      const upd = (lang) => (v) => {
        const next = Object.assign({}, o[name] && typeof o[name] === 'object' ? o[name] : {}, { [lang]: v });
        if (!next.vi && !next.en) set(undefined);
        else set(next);
      };
      control = h('span', { class: 'ed-text2' }, input(`${path}.vi`, t.vi, upd('vi'), { placeholder: 'tiếng Việt' }), input(`${path}.en`, t.en, upd('en'), { placeholder: 'English', lang: 'en' }));
      break;
    }
    default:
      control = h('span');
  }
  return field(name, control);
}

// ---- errors -------------------------------------------------------------------

function drawErrors() {
  const local = checkGrid(ed.def);
  if (ed.def.id && !ID_RE.test(ed.def.id)) local.unshift({ path: 'id', error: 'id must be lower-case letters, digits and dashes, e.g. "ops-79"' });
  const items = ed.server.map((e) => errorItem(e, 'server')).concat(local.map((e) => errorItem(e, 'local')));
  $('ed-errors').replaceChildren(...items);
  markServerErrors();
}

function errorItem(e, from) {
  const li = h('li', { class: 'ed-error', data: { errorPath: e.path, from } },
    h('code', {}, e.path || '(document)'), ' ', e.error, from === 'local' ? h('span', { class: 'ed-local' }, ' (kiểm tra trên trang · checked here)') : null);
  li.addEventListener('click', () => focusPath(e.path));
  return li;
}

// focusPath selects the widget a path names and puts the cursor in its field.
function focusPath(path) {
  const m = /^widgets\[(\d+)\]/.exec(path || '');
  if (m && Number(m[1]) !== ed.sel && widgets()[Number(m[1])]) {
    ed.sel = Number(m[1]);
    drawCanvas();
    drawProps();
  }
  const el = document.querySelector(`[data-path="${CSS.escape(path)}"]`);
  if (el) el.focus();
}

function markServerErrors() {
  for (const el of document.querySelectorAll('[aria-invalid="true"]')) {
    el.removeAttribute('aria-invalid');
    const f = el.closest('.ed-field');
    if (f) f.querySelector('.ed-field-error').textContent = '';
  }
  for (const e of ed.server) {
    const el = document.querySelector(`[data-path="${CSS.escape(e.path)}"]`);
    if (!el) continue;
    el.setAttribute('aria-invalid', 'true');
    el.title = e.error;
    const f = el.closest('.ed-field');
    if (f) f.querySelector('.ed-field-error').textContent = e.error;
  }
}

// ---- JSON -------------------------------------------------------------------------

function drawJSON() {
  const t = $('ed-json');
  if (document.activeElement !== t) t.value = JSON.stringify(ed.def, null, 2);
}

function applyJSON() {
  let d;
  try {
    d = JSON.parse($('ed-json').value);
  } catch (e) {
    $('ed-status').textContent = `JSON không hợp lệ (invalid JSON): ${e.message}`;
    return;
  }
  if (!d || typeof d !== 'object' || !d.grid || !Array.isArray(d.widgets)) {
    $('ed-status').textContent = 'Cần một bảng điều khiển: {"id", "grid", "widgets", …} (a dashboard document is needed)';
    return;
  }
  ed.def = d;
  ed.sel = Math.min(ed.sel, d.widgets.length - 1);
  changed();
}

// ---- previews -----------------------------------------------------------------

function setupPreviews() {
  ed.previews = [[$('ed-p1080'), 1920, 1080], [$('ed-p2160'), 3840, 2160]].map(([box, w, hh]) => {
    const screen = h('div', { class: 'ed-screen', data: { width: w, height: hh } });
    screen.style.width = w + 'px';
    screen.style.height = hh + 'px';
    screen.style.setProperty('--u', hh / 100 + 'px');
    box.append(screen);
    return { box, screen, w, h: hh, board: null };
  });
  const fit = () => {
    for (const p of ed.previews) {
      const k = p.box.clientWidth / p.w;
      p.screen.style.transform = `scale(${k})`;
      p.box.style.height = p.h * k + 'px';
    }
  };
  addEventListener('resize', fit);
  fit();
}

// drawPreviews draws the document as it is on both screens, each with the
// wall's own code; the new boards start before the old go, so the topics
// they share stay subscribed.
function drawPreviews() {
  const def = JSON.parse(JSON.stringify(ed.def));
  const area = def.area && def.area !== '$area' ? def.area : params.get('area') || '79';
  $('ed-preview-area').textContent = `· ${area}`;
  for (const p of ed.previews) {
    const old = p.board;
    const board = new Board(p.screen, { svc: ed.svc, def, area, window: def.window || 'today', onDrill: () => {} });
    p.board = board;
    try {
      board.start();
    } catch (e) {
      console.error(e);
    }
    if (old) old.destroy();
  }
}

// ---- load and save ------------------------------------------------------------------

function documentOf(r) {
  if (r && Array.isArray(r.widgets)) return r;
  for (const k of ['body', 'document', 'dashboard']) if (r && r[k] && Array.isArray(r[k].widgets)) return r[k];
  return null;
}

async function load(id) {
  try {
    ed.def = documentOf(await ed.svc.api.get('/api/v1/dashboards/' + enc(id)));
    if (!ed.def) throw new ApiError(0, 'the answer holds no dashboard');
    $('ed-status').textContent = '';
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) {
      message('Không tải được bảng điều khiển (cannot load the dashboard)', e.message);
      return false;
    }
    ed.def = template(id);
    ed.saved = '';
    changed();
    $('ed-status').textContent = `Bảng mới "${id}" (new dashboard, not saved yet)`;
    return true;
  }
  ed.def.widgets = Array.isArray(ed.def.widgets) ? ed.def.widgets : [];
  ed.saved = JSON.stringify(ed.def);
  changed();
  return true;
}

async function save() {
  const id = ed.def.id;
  if (!id || !ID_RE.test(id)) {
    ed.server = [{ path: 'id', error: 'id must be lower-case letters, digits and dashes, e.g. "ops-79"' }];
    drawErrors();
    return;
  }
  $('ed-save').disabled = true;
  $('ed-status').textContent = 'Đang lưu… (saving)';
  try {
    // The server stores the definition with its defaults filled in: the
    // editor goes on from what it stored, so that it shows what screens
    // show.
    await ed.svc.api.put('/api/v1/dashboards/' + enc(id), ed.def);
    const stored = documentOf(await ed.svc.api.get('/api/v1/dashboards/' + enc(id)));
    if (stored && stored.id === id) ed.def = stored;
    ed.saved = JSON.stringify(ed.def);
    ed.server = [];
    changed();
    drawErrors();
    drawCanvas();
    $('ed-status').textContent = 'Đã lưu (saved)';
    document.documentElement.dataset.saved = String(Date.now());
    if (params.get('dashboard') !== id) history.replaceState(null, '', `?dashboard=${enc(id)}`);
  } catch (e) {
    const fields = e.body && Array.isArray(e.body.fields) ? e.body.fields.filter((f) => f && typeof f.path === 'string') : [];
    ed.server = fields.length ? fields : [{ path: '', error: e.message }];
    if (e.status === 403) ed.server = [{ path: '', error: `${e.message} (lưu cần mã quản trị · saving needs an admin token)` }];
    drawErrors();
    drawCanvas();
    $('ed-status').textContent = `Chưa lưu được (not saved): ${e.message}`;
    document.documentElement.dataset.saveError = String(e.status);
  } finally {
    $('ed-save').disabled = false;
  }
}

function message(title, text) {
  const el = $('message');
  el.replaceChildren(h('h1', {}, title), h('p', {}, text || ''));
  el.hidden = false;
}

async function start() {
  const token = takeToken();
  if (!token) {
    message('Chưa có mã truy cập (no access token)', 'Mở trang với ?access_token=<mã quản trị> (open the page with an admin token).');
    return;
  }
  const api = new Api(token);
  const live = new Live(token, {});
  const clock = {
    offset: null,
    learn(s) { const o = offsetOf(s); if (o !== null) this.offset = o; },
    offsetOr() { return this.offset === null ? -new Date().getTimezoneOffset() : this.offset; },
    now() { return Date.now(); },
  };
  const names = new Map();
  const areaName = (code, then) => {
    if (!code) return '';
    if (typeof names.get(code) === 'string') return names.get(code);
    if (!names.has(code)) {
      names.set(code, null);
      api.get('/api/v1/areas/' + enc(code)).then((u) => { names.set(code, u.name || code); if (then) then(); }, () => names.set(code, code));
    }
    return '';
  };
  ed.svc = { api, live, clock, role: roleOf(token), areaName, connection: () => live.state, catalog: null };
  if (ed.svc.role !== 'admin') $('ed-status').textContent = 'Mã này không phải mã quản trị: xem được, không lưu được (this token may look, not save)';
  // The screens are commanded from here too; the panel stands alone, so
  // it works whatever becomes of the dashboard below.
  ed.screens = new ScreensPanel($('ed-screens'), ed.svc);
  ed.screens.start();
  try {
    const cat = await api.get('/api/v1/kpis');
    ed.catalog = { byId: new Map((cat.kpis || []).map((d) => [d.id, d])), list: cat.kpis || [], groups: cat.groups || [], windows: cat.windows || [] };
    ed.svc.catalog = ed.catalog;
  } catch (e) {
    message('Không tải được danh mục chỉ số (cannot load the indicator catalog)', e.message);
    return;
  }
  bindFields();
  bindCanvas();
  setupPreviews();
  const id = (params.get('dashboard') || '').trim() || 'new-dashboard';
  if (await load(id)) document.documentElement.dataset.loaded = 'true';
}

window.IOCEditor = ed; // for the tests and the console
start();
