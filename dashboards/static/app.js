// The built-in IOC page: one unit's live indicators and those of the units
// under it (a province and its communes), its open alarms, its cameras and
// sensors on the map, and a ticker of camera events. It reads a snapshot
// over REST, then follows the live websocket (protocol v2: resumes each
// topic after a reconnect). Native ES modules, nothing loaded from outside
// (control rooms are often air-gapped): the wall's modules hold what the
// two pages share — REST and the token (wall/api.js), the live connection
// (wall/socket.js, over live.js's protocol decisions, loaded before this as
// window.IOCLive), map projection (wall/geo.js), colour ramps
// (wall/ramp.js), words and numbers (wall/text.js) — and page/ the page's
// own pure parts. Indicator names, kinds and units come from the catalog
// (GET /api/v1/kpis).

import { Api, ApiError, takeToken, forgetToken, roleOf, enc } from './wall/api.js';
import { Live, CLOSE_REVOKED } from './wall/socket.js';
import { buildGeometry } from './wall/geo.js';
import { legendScale, rampColour } from './wall/ramp.js';
import { SEVERITIES, sevRank, eventType, reading, deviceName, ageText, offsetOf, formatInt } from './wall/text.js';
import { compareAlarms } from './wall/layout.js';
import { h, svg as svgEl, setText, setAttr, mapSvg } from './wall/dom.js';
import { format, isWarning, kpiName, asOfTime, asOfText, clockText } from './page/figures.js';
import { COLUMN_SETS, DEFAULT_COLUMNS, GROUP_NAMES, columnsOf, groupOf, shortName, fold, compareRows } from './page/table.js';
import { mergeEvents } from './page/ticker.js';

const L = window.IOCLive;
const WINDOWS = ['today', '24h', '7d', '30d'];
const MAX_BACKOFF = 30000;
const CLOSE_SLOW = 4008; // the page read too slowly (docs/asyncapi.yaml)
const RESORT_DELAY = 1000; // live re-sorting at most this often, so rows do not jitter
const RAMP = 'viridis'; // wall/ramp.js's colour-blind-safe ramp
const NO_DATA_FILL = 'url(#map-nodata)';
// A province's communes lose no visible detail at web-map zoom 11, even
// on a wall screen; the server simplifies the shapes to match.
const MAP_ZOOM = 11;

const $ = (id) => document.getElementById(id);

const params = new URLSearchParams(location.search);
const state = {
  token: '',
  area: (params.get('area') || '79').trim(),
  window: WINDOWS.includes(params.get('window')) ? params.get('window') : 'today',
  catalog: null, // indicator id → its entry of GET /api/v1/kpis
  unit: null, // GET /api/v1/areas/{code}
  province: null, // {snap, cells, asOf}: the unit's own figures
  rows: new Map(), // child code → {code, snap, tr, cells, search, asOf}
  topics: new Set(), // live topics wanted for the current window
  asOf: '', // newest as_of shown
  columns: DEFAULT_COLUMNS, // indicator ids shown as columns and map choices
  columnSet: COLUMN_SETS.includes(params.get('columns')) ? params.get('columns') : 'dossiers',
  sort: { key: 'name', dir: 1 },
  filter: '',
  selected: '', // child code picked on the map or in the table
  loadGen: 0, // discards answers to a load that a newer one replaced
  loadTimer: 0,
  loadAttempt: 0,
  fatal: false,
};
let api = null; // wall/api.js's Api with the page's token
let live = null; // wall/socket.js's Live: one subscription per topic, resumed after a reconnect
const watching = new Map(); // topic → the function that stops watching it
let resortTimer = 0;

const def = (id) => (state.catalog ? state.catalog.get(id) : undefined);

// ---- REST -----------------------------------------------------------------

function areaPath(suffix) {
  return '/api/v1/areas/' + enc(state.area) + suffix;
}

// load fetches the catalog (once), the unit, its figures and its
// children's for the current window, renders them and follows their live
// topics.
async function load() {
  clearTimeout(state.loadTimer);
  const gen = ++state.loadGen;
  const win = state.window;
  const q = '?window=' + enc(win);
  try {
    const [cat, unit, own, kids] = await Promise.all([
      state.catalog ? null : api.get('/api/v1/kpis'),
      state.unit ? Promise.resolve(state.unit) : api.get(areaPath('')),
      api.get(areaPath('/kpis' + q)),
      api.get(areaPath('/children/kpis' + q)),
    ]);
    if (gen !== state.loadGen || state.fatal) return;
    if (cat) state.catalog = new Map((cat.kpis || []).map((d) => [d.id, d]));
    state.loadAttempt = 0;
    state.unit = unit;
    hideMessage();
    hideNotice();
    renderHeader();
    state.asOf = '';
    setupColumns(own, kids.children || []);
    renderProvince(own);
    renderRows(kids.children || []);
    const withMap = setupMap(kids.children || []);
    $('content').hidden = false;
    $('content').classList.remove('loading');
    state.topics = new Set([topicOf(state.area, win)].concat((kids.children || []).map((k) => topicOf(k.area, win))));
    if (withMap) state.topics.add(mapTopicOf(state.area, win));
    // Alarms, devices and events take no window: they stay subscribed
    // across a change of window.
    state.topics.add(alarmsTopic());
    state.topics.add(eventsTopic());
    if (withMap) state.topics.add(devicesTopic());
    follow();
  } catch (e) {
    if (gen !== state.loadGen || state.fatal) return;
    loadFailed(e);
  }
}

function loadFailed(e) {
  const status = e instanceof ApiError ? e.status : 0;
  const msg = e && e.message ? e.message : String(e);
  if (status === 401) {
    forgetToken();
    fatal('Mã truy cập không hợp lệ hoặc đã hết hạn', msg,
      'Mở lại trang bằng đường dẫn mới mà lệnh make run in ra, hoặc tạo mã bằng: iocd token --role viewer --area ' + state.area +
      ' (The access token was refused: open the page again with a fresh ?access_token=….)');
    return;
  }
  if (status === 400 || status === 403 || status === 404) {
    fatal(`Không thể hiển thị đơn vị ${state.area} (HTTP ${status})`, msg,
      status === 403 ? 'Mã truy cập này không có quyền xem đơn vị này; dùng ?area= với một đơn vị mà mã cho phép.' : '');
    return;
  }
  // Storage unavailable (503), server restarting, network down: retry.
  const delay = Math.min(MAX_BACKOFF, 1000 * Math.pow(2, state.loadAttempt++));
  const text = `${msg} — thử lại sau ${Math.round(delay / 1000)} giây (retrying)`;
  if ($('content').hidden) showMessage(`Không tải được số liệu${status ? ' (HTTP ' + status + ')' : ''}`, text);
  else showNotice(text);
  state.loadTimer = setTimeout(load, delay);
}

// ---- live -----------------------------------------------------------------

function topicOf(code, win) {
  return L.topic('kpi', code, win);
}

// follow watches exactly the topics of state.topics: the connection
// subscribes a new one (safety topics first) and unsubscribes one no
// longer wanted, which forgets what the page held of it.
function follow() {
  for (const [t, stop] of watching) {
    if (state.topics.has(t)) continue;
    stop();
    watching.delete(t);
  }
  for (const t of state.topics) {
    if (!watching.has(t)) watching.set(t, live.watch(t, (d, act) => onData(t, d, act), (err) => topicRefused(t, err)));
  }
}

// onData shows what a topic's message left the page holding (for a map
// delta, the state with the delta merged in).
function onData(topic, data, act) {
  if (topic === alarmsTopic()) { applyAlarms(data); return; }
  if (topic === devicesTopic()) { applyDevices(data); return; }
  if (topic === eventsTopic()) { applyEvents(data, act === 'snapshot'); return; }
  if (data.window !== state.window) return;
  if (L.kindOf(topic) === 'map') applyMap(data);
  else apply(data, true);
}

// topicRefused shows why a subscription failed (the connection tries it
// again unless another try cannot help). Alarms, devices and events are
// parts a node may not serve at all (one without devices): their part of
// the page is left out, quietly.
function topicRefused(topic, error) {
  const ops = opsPart(topic);
  if (ops) ops.off();
  else showNotice(`Không theo dõi trực tiếp được ${topic || ''}: ${error || 'lỗi không rõ'}`);
}

// opened tells whether the socket that closed last had opened: one
// refused at the handshake may carry an expired token.
let opened = false;

function onLiveState(st, info) {
  setConnection(st, info.delay, info.code);
  if (st === 'connected') {
    opened = true;
  } else if (st === 'reconnecting' && info.delay !== undefined) { // a socket closed
    if (!opened) checkAccess();
    opened = false;
  }
}

function revoked(reason) {
  forgetToken();
  fatal('Mã truy cập đã bị thu hồi (the access token was revoked)', reason || 'token revoked',
    'Xin mã truy cập mới và mở lại trang với ?access_token=…, hoặc tạo mã bằng: iocd token --role viewer --area ' + state.area +
    ' (Ask for a new token and open the page again with it.)');
}

// checkAccess asks REST, which says why, when the socket was refused.
async function checkAccess() {
  try {
    await api.get(areaPath(''));
  } catch (e) {
    if (!state.fatal && e instanceof ApiError && (e.status === 401 || e.status === 403)) loadFailed(e);
  }
}

function setConnection(st, delay, code) {
  const el = $('connection');
  el.dataset.state = st;
  let text = 'Chưa kết nối';
  let title = 'Not connected';
  switch (st) {
    case 'connecting': text = 'Đang kết nối…'; title = 'Connecting'; break;
    case 'connected': text = 'Đã kết nối'; title = 'Connected: figures update live'; break;
    case 'reconnecting':
      text = delay ? `Mất kết nối · thử lại sau ${Math.ceil(delay / 1000)} giây` : 'Đang kết nối lại…';
      title = 'Reconnecting' + (code === 1001 ? ' (the server is restarting)' : code === CLOSE_SLOW ? ' (the page fell behind)' : '');
      break;
    case 'offline': text = 'Ngắt kết nối'; title = code === CLOSE_REVOKED ? 'Disconnected: the token was revoked' : 'Disconnected'; break;
  }
  el.textContent = text;
  el.title = title;
}

// ---- rendering ------------------------------------------------------------

const rate = (id) => { const d = def(id); return !!d && d.kind === 'ratio'; };

// setupColumns settles the indicators the table and the map show
// (page/table.js's columnsOf) and draws their headers and map choices.
function setupColumns(own, children) {
  const kpis = (own && own.kpis) || (children[0] && children[0].kpis) || {};
  const cols = columnsOf(kpis);
  const changed = cols.join() !== state.columns.join() || !$('communes').tHead.rows[0].cells[1];
  state.columns = cols;
  if (!changed) return;
  const head = $('communes').tHead.rows[0];
  while (head.cells.length > 1) head.deleteCell(1);
  for (const id of cols) {
    const d = def(id);
    const th = document.createElement('th');
    th.dataset.sort = id;
    th.dataset.group = groupOf(id);
    th.className = 'num';
    th.title = (d && d.name_en) || id;
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = shortName(id, d);
    th.append(b);
    head.append(th);
  }
  if (state.sort.key !== 'name' && !cols.includes(state.sort.key)) state.sort = { key: 'name', dir: 1 };
  // The map's choices: the same indicators, by group.
  const sel = $('map-kpi');
  const groups = new Map();
  for (const id of cols) {
    const g = groupOf(id);
    if (!groups.has(g)) {
      const og = document.createElement('optgroup');
      og.label = GROUP_NAMES[g] || g;
      groups.set(g, og);
    }
    const d = def(id);
    const o = document.createElement('option');
    o.value = id;
    o.textContent = kpiName(d, id);
    o.title = (d && d.name_en) || id;
    groups.get(g).append(o);
  }
  sel.replaceChildren(...groups.values());
  if (!cols.includes(map.kpi)) map.kpi = cols.includes('online_rate') ? 'online_rate' : cols[0];
  sel.value = map.kpi;
}

function setColumnSet(set) {
  if (!COLUMN_SETS.includes(set)) return;
  state.columnSet = set;
  $('columns').value = set;
  $('communes').dataset.columns = set;
  const url = new URL(location.href);
  if (set === 'dossiers') url.searchParams.delete('columns');
  else url.searchParams.set('columns', set);
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
}

function setCell(el, id, v, flash) {
  const text = format(def(id), v);
  if (el.textContent !== text) {
    el.textContent = text;
    if (flash) highlight(el);
  }
  el.classList.toggle('warn', isWarning(id, v));
  if (rate(id)) el.style.setProperty('--p', typeof v === 'number' ? Math.max(0, Math.min(1, v)) : 0);
}

// highlight lights a cell up at once, then lets the CSS transition fade it.
function highlight(el) {
  el.classList.add('flash');
  clearTimeout(el.flashTimer);
  el.flashTimer = setTimeout(() => el.classList.remove('flash'), 700);
}

// showAsOf prints the server's wall time (its offset is in the string), so
// the screen agrees with the server's "today" wherever the browser is.
function showAsOf(s) {
  if (asOfTime(s) <= asOfTime(state.asOf)) return;
  state.asOf = s;
  const el = $('as-of');
  el.textContent = asOfText(s);
  el.dateTime = s;
}

function renderHeader() {
  const u = state.unit;
  const name = u.full_name || u.name || u.code;
  $('area-name').textContent = name;
  document.title = 'IOC · ' + name;
  const en = u.full_name_en || u.name_en;
  const parts = [];
  if (en) parts.push(en);
  parts.push('mã ' + u.code);
  if (u.children) parts.push(formatInt(u.children) + ' đơn vị trực thuộc');
  $('area-sub').textContent = parts.join(' · ');
  $('ancestors').textContent = (u.ancestors || []).map((a) => a.name).join(' › ');
}

function renderProvince(snap) {
  const cells = {};
  for (const el of $('province-summary').querySelectorAll('[data-kpi]')) cells[el.dataset.kpi] = el;
  // A node older than an indicator has no tile for it.
  const kpis = (snap && snap.kpis) || {};
  for (const tile of $('province-summary').querySelectorAll('[data-tile]')) {
    tile.hidden = !Object.prototype.hasOwnProperty.call(kpis, tile.dataset.tile);
  }
  state.province = { snap: null, cells, asOf: 0 };
  apply(snap, false);
}

function renderRows(children) {
  const tbody = $('communes').tBodies[0];
  state.rows.clear();
  const frag = document.createDocumentFragment();
  for (const snap of children) {
    const tr = document.createElement('tr');
    tr.dataset.area = snap.area;
    if (snap.area === state.selected) tr.classList.add('selected');
    const th = document.createElement('th');
    th.scope = 'row';
    th.className = 'name';
    const nm = document.createElement('span');
    nm.className = 'unit-name';
    const code = document.createElement('span');
    code.className = 'code';
    code.textContent = snap.area;
    th.append(nm, code);
    tr.append(th);
    const cells = {};
    for (const id of state.columns) {
      const td = document.createElement('td');
      td.dataset.kpi = id;
      td.dataset.group = groupOf(id);
      td.className = rate(id) ? 'num rate' : 'num';
      cells[id] = td;
      tr.append(td);
    }
    const row = { code: snap.area, snap: null, tr, cells, nameEl: nm, search: '', asOf: 0 };
    state.rows.set(snap.area, row);
    frag.append(tr);
    apply(snap, false);
  }
  tbody.replaceChildren(frag);
  const first = children[0];
  $('communes').querySelector('th[data-sort="name"] button').textContent =
    first && first.level !== 'commune' ? 'Đơn vị' : 'Phường / xã';
  sortRows();
  applyFilter();
}

// apply shows a snapshot in the row of its area, unless it is older than
// what the row shows.
function apply(snap, flash) {
  if (!snap || typeof snap !== 'object') return;
  const target = snap.area === state.area ? state.province : state.rows.get(snap.area);
  if (!target) return;
  const t = asOfTime(snap.as_of);
  if (t < target.asOf) return;
  const before = target.snap;
  target.asOf = t;
  target.snap = snap;
  const kpis = snap.kpis || {};
  for (const id of Object.keys(target.cells)) setCell(target.cells[id], id, kpis[id], flash);
  if (target.nameEl && (!before || before.name !== snap.name)) {
    target.nameEl.textContent = snap.name || snap.area;
    target.tr.title = snap.name || '';
    target.search = fold(snap.name + ' ' + snap.area);
  }
  showAsOf(snap.as_of);
  learnOffset(snap.as_of);
  if (flash && target !== state.province && state.sort.key !== 'name' &&
      (!before || (before.kpis || {})[state.sort.key] !== kpis[state.sort.key])) {
    scheduleResort();
  }
}

// ---- sorting and filtering ------------------------------------------------

function sortRows() {
  clearTimeout(resortTimer);
  resortTimer = 0;
  const rows = Array.from(state.rows.values()).sort((a, b) => compareRows(a, b, state.sort));
  const tbody = $('communes').tBodies[0];
  let i = 0;
  for (const r of rows) {
    if (tbody.children[i] !== r.tr) tbody.insertBefore(r.tr, tbody.children[i] || null);
    i++;
  }
  for (const th of $('communes').tHead.rows[0].cells) {
    const sorted = th.dataset.sort === state.sort.key;
    th.setAttribute('aria-sort', sorted ? (state.sort.dir > 0 ? 'ascending' : 'descending') : 'none');
  }
}

function scheduleResort() {
  if (!resortTimer) resortTimer = setTimeout(sortRows, RESORT_DELAY);
}

function onSortClick(ev) {
  const th = ev.target.closest('th[data-sort]');
  if (!th) return;
  const key = th.dataset.sort;
  if (state.sort.key === key) state.sort.dir = -state.sort.dir;
  else state.sort = { key, dir: key === 'name' ? 1 : -1 }; // figures: largest first
  sortRows();
}

function applyFilter() {
  const q = state.filter;
  let shown = 0;
  for (const r of state.rows.values()) {
    const hide = q !== '' && !r.search.includes(q);
    if (r.tr.hidden !== hide) r.tr.hidden = hide;
    if (!hide) shown++;
  }
  const total = state.rows.size;
  $('count').textContent = q ? `${formatInt(shown)} / ${formatInt(total)} đơn vị` : `${formatInt(total)} đơn vị`;
  const empty = $('empty');
  if (total === 0) {
    empty.textContent = 'Đơn vị này không có đơn vị trực thuộc. (No units below this one.)';
  } else if (shown === 0) {
    empty.textContent = `Không có đơn vị nào khớp “${$('filter').value.trim()}”. (No match.)`;
  }
  empty.hidden = shown > 0;
  dimMap();
}

// ---- map ------------------------------------------------------------------

// The map of the children: drawn as SVG from the server's GeoJSON once per
// geometry fetch; live messages only change fills.
const map = {
  url: '', // geometry shown or being fetched
  status: '', // loading, ready or failed
  retry: false, // whether a failed fetch is worth another try on the next load
  gen: 0, // discards a fetch that a newer one replaced
  paths: new Map(), // code → {el, d, name, raw, fill, label}
  order: [], // codes by name: the keyboard's order
  overlay: null, // outline paths drawn above the units
  tip: null,
  tipCode: '',
  hoverCode: '',
  focusCode: '', // the one path in the tab order
  kpi: 'online_rate',
  children: {}, // code → {name, kpis}: the latest full state
  asOf: 0,
  geom: null, // wall/geo.js's buildGeometry: the shapes and how devices are placed on them
  devLayer: null, // {rings, marks}: SVG groups of the device markers
  marks: new Map(), // device id → {el, ring, title, key}
  resize: null, // ResizeObserver keeping the markers' size on screen
};

function mapTopicOf(code, win) {
  return L.topic('map', code, win);
}

function showMap(on) {
  $('map-panel').hidden = !on;
  $('board').classList.toggle('with-map', on);
}

// setupMap readies the map of the area's children after a load and says
// whether its live topic is wanted.
function setupMap(children) {
  const first = children[0];
  const hierarchy = state.unit && state.unit.hierarchy;
  if (!first || !first.level || !hierarchy) {
    map.gen++;
    showMap(false);
    return false;
  }
  $('map-title').textContent = first.level === 'commune' ? 'Bản đồ phường, xã' : 'Bản đồ đơn vị trực thuộc';
  // The REST figures colour the map until the live topic's first message.
  map.children = {};
  for (const k of children) map.children[k.area] = { name: k.name, kpis: k.kpis || {} };
  map.asOf = 0;
  const url = '/api/v1/layers/' + encodeURIComponent(hierarchy + '.' + first.level) + '.geojson?parent=' +
    encodeURIComponent(state.area) + '&zoom=' + MAP_ZOOM;
  if (url !== map.url || (map.status === 'failed' && map.retry)) fetchGeometry(url);
  if (map.status === 'failed') return false;
  showMap(true);
  recolour();
  return true;
}

async function fetchGeometry(url) {
  const gen = ++map.gen;
  map.url = url;
  map.status = 'loading';
  clearMap('Đang tải bản đồ… (loading the map)');
  try {
    const fc = await api.get(url, 'application/geo+json');
    if (gen !== map.gen || state.fatal) return;
    buildMap(fc);
  } catch (e) {
    if (gen === map.gen && !state.fatal) mapFailed(e);
    return;
  }
  map.status = 'ready';
  recolour();
  dimMap();
}

// mapFailed hides the map and leaves the rest of the page alone.
function mapFailed(e) {
  const status = e instanceof ApiError ? e.status : 0;
  map.status = 'failed';
  map.retry = status === 0 || status >= 500;
  clearMap('');
  showMap(false);
  for (const t of [mapTopicOf(state.area, state.window), devicesTopic()]) {
    state.topics.delete(t);
  }
  follow();
  const msg = e && e.message ? e.message : String(e);
  showNotice(`Không hiển thị được bản đồ${status ? ' (HTTP ' + status + ')' : ''}: ${msg} (the map is unavailable; the table still updates)`);
}

function clearMap(text) {
  map.paths.clear();
  map.order = [];
  map.overlay = null;
  map.devLayer = null;
  map.marks.clear();
  if (map.resize) map.resize.disconnect();
  map.resize = null;
  map.geom = null;
  $('device-legend').hidden = true;
  map.tip = null;
  map.tipCode = map.hoverCode = map.focusCode = '';
  const parts = [];
  if (text) {
    const p = document.createElement('p');
    p.className = 'map-status';
    p.textContent = text;
    parts.push(p);
  }
  $('map').replaceChildren(...parts);
}

function buildMap(fc) {
  const geom = buildGeometry(fc);
  map.geom = geom;
  const pad = 4;
  const svg = mapSvg(geom, pad, { id: 'map-nodata', size: 6, stripe: 2, colours: ['#1a2740', '#50617f'] }, 'insets',
    { role: 'group', 'aria-roledescription': 'bản đồ' });
  const units = svgEl('g', { class: 'units' });
  for (const [code, u] of geom.units) {
    const d = u.d;
    const el = svgEl('path', {
      d, 'data-area': code, 'data-value': '', fill: NO_DATA_FILL, tabindex: '-1', role: 'button', 'aria-pressed': String(code === state.selected),
    });
    units.append(el);
    map.paths.set(code, { el, d, name: u.name, raw: '', fill: NO_DATA_FILL, label: '' });
  }
  const overlay = svgEl('g', { class: 'overlay', 'aria-hidden': 'true' });
  map.overlay = {
    halo: svgEl('path', { class: 'sel-halo', d: '' }),
    sel: svgEl('path', { class: 'sel', d: '' }),
    hover: svgEl('path', { class: 'hover', d: '' }),
  };
  overlay.append(map.overlay.halo, map.overlay.sel, map.overlay.hover);
  // Devices above the units, their alarm rings under the markers.
  const devRings = svgEl('g', { class: 'device-rings', 'aria-hidden': 'true' });
  const devMarks = svgEl('g', { class: 'devices', role: 'group', 'aria-label': 'Camera và cảm biến (cameras and sensors)' });
  map.devLayer = { rings: devRings, marks: devMarks };
  svg.append(units, overlay, devRings, devMarks);

  map.order = Array.from(map.paths.keys()).sort((a, b) => mapName(a).localeCompare(mapName(b), 'vi') || (a < b ? -1 : 1));
  map.focusCode = map.paths.has(state.selected) ? state.selected : map.order[0];
  map.paths.get(map.focusCode).el.setAttribute('tabindex', '0');

  svg.addEventListener('pointerover', (ev) => {
    const p = ev.target.closest('path[data-area]');
    if (p) setHover(p.dataset.area, ev.clientX, ev.clientY);
  });
  svg.addEventListener('pointermove', (ev) => {
    if (map.tipCode) placeTip(ev.clientX, ev.clientY);
  });
  // Keyboard focus keeps its outline when the pointer leaves; a click's does not.
  svg.addEventListener('pointerleave', () => {
    const a = document.activeElement;
    setHover(a && svg.contains(a) && a.matches(':focus-visible') ? a.dataset.area : '');
  });
  svg.addEventListener('click', (ev) => {
    const p = ev.target.closest('path[data-area]');
    if (!p) return;
    moveFocus(p.dataset.area, false);
    select(p.dataset.area, true);
  });
  svg.addEventListener('focusin', (ev) => {
    const p = ev.target.closest('path[data-area]');
    if (p && p.dataset.area !== map.hoverCode) setHover(p.dataset.area);
  });
  svg.addEventListener('focusout', () => setHover(''));
  svg.addEventListener('keydown', onMapKey);

  const tip = document.createElement('div');
  tip.className = 'map-tip';
  tip.setAttribute('aria-hidden', 'true'); // each path carries the same text as its label
  tip.hidden = true;
  map.tip = tip;
  $('map').replaceChildren(svg, tip);
  drawOverlay();
  drawDevices();
  // Device markers keep a size on screen, in rem, whatever the map's scale.
  const vbWidth = geom.w + 2 * pad;
  const sizeMarks = () => {
    const w = svg.getBoundingClientRect().width;
    if (!w) return;
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    const unit = (vbWidth / w) * rem;
    svg.style.setProperty('--device-r', (0.5 * unit).toFixed(2) + 'px');
    svg.style.setProperty('--device-ring-r', (0.95 * unit).toFixed(2) + 'px');
  };
  sizeMarks();
  if (typeof ResizeObserver === 'function') {
    map.resize = new ResizeObserver(sizeMarks);
    map.resize.observe(svg);
  }
}

function mapName(code) {
  const c = map.children[code];
  const p = map.paths.get(code);
  return (c && c.name) || (p && p.name) || code;
}

function mapValue(code) {
  const c = map.children[code];
  const v = c && c.kpis ? c.kpis[map.kpi] : null;
  return typeof v === 'number' && isFinite(v) ? v : null;
}

// applyMap takes a map/ message: every one carries all the children.
function applyMap(d) {
  if (!d || d.area !== state.area || !d.children || typeof d.children !== 'object') return;
  const t = asOfTime(d.as_of);
  if (t < map.asOf) return;
  map.asOf = t;
  map.children = d.children;
  showAsOf(d.as_of);
  recolour();
}

// recolour sets each path's fill from the chosen indicator, touching only
// what changed, and redraws the legend.
function recolour() {
  const id = map.kpi;
  const d = def(id);
  const label = kpiName(d, id);
  const values = Object.keys(map.children).map(mapValue).filter((v) => v !== null);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  // A fixed scale, so that colours mean the same from one day to the
  // next: rates over 0–100%, other figures from zero to the largest.
  const scale = legendScale(values, { mode: 'fixed', ratio: rate(id), ramp: RAMP });
  for (const [code, p] of map.paths) {
    const v = mapValue(code);
    const raw = v === null ? '' : String(v);
    const fill = scale.colour(v) || NO_DATA_FILL;
    const text = `${mapName(code)} (${code}): ${label} ${v === null ? 'không có số liệu' : format(d, v)}`;
    if (p.raw !== raw) { p.el.setAttribute('data-value', raw); p.raw = raw; }
    if (p.fill !== fill) { p.el.setAttribute('fill', fill); p.fill = fill; }
    if (p.label !== text) { p.el.setAttribute('aria-label', text); p.label = text; }
  }
  const svg = $('map').querySelector('svg');
  if (svg) svg.setAttribute('aria-label', `${$('map-title').textContent} theo ${label.toLowerCase()}; phím mũi tên để chuyển, Enter để chọn`);
  $('legend-min').textContent = format(d, scale.min);
  $('legend-max').textContent = format(d, scale.max);
  $('legend-range').textContent = values.length ?
    `thấp nhất ${format(d, lo)} · cao nhất ${format(d, hi)} · ${formatInt(values.length)}/${formatInt(Object.keys(map.children).length)} đơn vị có số liệu` :
    'chưa đơn vị nào có số liệu';
  if (map.tipCode) fillTip(map.tipCode);
}

// setHover outlines a unit and shows its tooltip, at the pointer or, from
// the keyboard, over the unit.
function setHover(code, x, y) {
  const p = map.paths.get(code);
  map.hoverCode = p ? code : '';
  drawOverlay();
  if (!p || !map.tip) {
    if (map.tip) map.tip.hidden = true;
    map.tipCode = '';
    return;
  }
  map.tipCode = code;
  fillTip(code);
  map.tip.hidden = false;
  if (x === undefined) {
    const r = p.el.getBoundingClientRect();
    placeTip(r.left + r.width / 2, r.top + r.height / 2);
  } else {
    placeTip(x, y);
  }
}

function fillTip(code) {
  const v = mapValue(code);
  const name = document.createElement('strong');
  name.textContent = mapName(code);
  const c = document.createElement('span');
  c.className = 'code';
  c.textContent = code;
  const line = document.createElement('div');
  const d = def(map.kpi);
  line.textContent = `${kpiName(d, map.kpi)}: ${v === null ? 'không có số liệu' : format(d, v)}`;
  map.tip.replaceChildren(name, ' ', c, line);
}

// placeTip keeps the tooltip beside the pointer and inside the map.
function placeTip(cx, cy) {
  const box = $('map').getBoundingClientRect();
  const tip = map.tip;
  const gap = 14;
  let x = cx - box.left + gap;
  let y = cy - box.top + gap;
  if (x + tip.offsetWidth > box.width) x = Math.max(0, cx - box.left - gap - tip.offsetWidth);
  if (y + tip.offsetHeight > box.height) y = Math.max(0, cy - box.top - gap - tip.offsetHeight);
  tip.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
}

function drawOverlay() {
  const o = map.overlay;
  if (!o) return;
  const sel = map.paths.get(state.selected);
  const hov = map.paths.get(map.hoverCode);
  o.halo.setAttribute('d', sel ? sel.d : '');
  o.sel.setAttribute('d', sel ? sel.d : '');
  o.hover.setAttribute('d', hov ? hov.d : '');
}

// select picks a unit on the map and in the table; picking it again lets
// it go.
function select(code, scroll) {
  const prev = state.selected;
  state.selected = code === prev ? '' : code;
  const prevRow = state.rows.get(prev);
  if (prevRow) prevRow.tr.classList.remove('selected');
  const prevPath = map.paths.get(prev);
  if (prevPath) prevPath.el.setAttribute('aria-pressed', 'false');
  const row = state.rows.get(state.selected);
  if (row) {
    if (row.tr.hidden) { // the filter hides it: picking it says "show me"
      $('filter').value = '';
      state.filter = '';
      applyFilter();
    }
    row.tr.classList.add('selected');
    if (scroll) row.tr.scrollIntoView({ block: 'nearest' });
  }
  const path = map.paths.get(state.selected);
  if (path) path.el.setAttribute('aria-pressed', 'true');
  drawOverlay();
}

function moveFocus(code, focus) {
  const p = map.paths.get(code);
  if (!p) return;
  const old = map.paths.get(map.focusCode);
  if (old && old !== p) old.el.setAttribute('tabindex', '-1');
  p.el.setAttribute('tabindex', '0');
  map.focusCode = code;
  if (focus) p.el.focus();
}

function onMapKey(ev) {
  const p = ev.target.closest && ev.target.closest('path[data-area]');
  if (!p) return;
  const code = p.dataset.area;
  const n = map.order.length;
  const i = map.order.indexOf(code);
  switch (ev.key) {
    case 'ArrowRight': case 'ArrowDown': moveFocus(map.order[(i + 1) % n], true); break;
    case 'ArrowLeft': case 'ArrowUp': moveFocus(map.order[(i - 1 + n) % n], true); break;
    case 'Home': moveFocus(map.order[0], true); break;
    case 'End': moveFocus(map.order[n - 1], true); break;
    case 'Enter': case ' ': select(code, true); break;
    case 'Escape':
      if (state.selected) select(state.selected, false);
      setHover('');
      break;
    default: return;
  }
  ev.preventDefault();
}

// dimMap fades the units the table's filter hides.
function dimMap() {
  for (const [code, p] of map.paths) {
    const row = state.rows.get(code);
    p.el.classList.toggle('dim', !!row && row.tr.hidden);
  }
}

// ---- alarms, devices and camera events ------------------------------------

// Each is a live topic of its own that a node may not serve (one without
// devices, say): without it, its part of the page stays hidden and the
// rest carries on.
function alarmsTopic() { return L.topic('alarms', state.area); }
function devicesTopic() { return L.topic('devices', state.area); }
function eventsTopic() { return L.topic('events', state.area); }

// opsPart tells which of those parts a topic feeds; null for figures.
function opsPart(topic) {
  if (topic === alarmsTopic()) return { off: alarmsOff };
  if (topic === devicesTopic()) return { off: devicesOff };
  if (topic === eventsTopic()) return { off: eventsOff };
  return null;
}

const sevLabel = (s) => (SEVERITIES[s] ? SEVERITIES[s].vi : s || '');

// The server's clock and zone: ages count from the server's now, and
// times read as on the server, as the as-of time in the header does.
const clock = { skew: 0, offset: null }; // ms server − browser; minutes east of UTC

// learnOffset takes the zone of an indicator snapshot's as_of, which the
// server writes in the deployment's time zone.
function learnOffset(s) {
  const o = offsetOf(s);
  if (o !== null) clock.offset = o;
}

function learnSkew(s) {
  const t = asOfTime(s);
  if (!t) return;
  const skew = t - Date.now();
  // as_of is whole seconds and a moment old on arrival: only a real gap counts.
  clock.skew = Math.abs(skew) > 5000 ? skew : 0;
}

// at is "14:05:09" (with the date: "14:05:09 31/12/2025") on the server's clock.
const at = (iso, withDate) => clockText(iso, clock.offset, withDate);

// age is how long ago, from the server's now: "vừa xong" (just now), "12 phút trước".
function age(iso) {
  const t = asOfTime(iso);
  return t ? ageText(t, Date.now() + clock.skew)[0] : '';
}

// areaName names a unit from what the page has: the map's figures, the
// table, the map's shapes.
function areaName(code) {
  if (!code) return '';
  if (code === state.area && state.unit) return state.unit.name || code;
  const c = map.children[code];
  if (c && c.name) return c.name;
  const r = state.rows.get(code);
  if (r && r.snap && r.snap.name) return r.snap.name;
  const p = map.paths.get(code);
  return (p && p.name) || code;
}

const deviceLabel = (id, name, kind) => deviceName(id, name, kind)[0];

// ---- alarms ----

const alarms = {
  list: [], // open and acknowledged alarms of the unit's subtree
  rows: new Map(), // id → the row's elements and its alarm
  seen: null, // ids shown so far; null until the first message (nothing flashes then)
  asOf: 0,
  viewOnly: false, // the token may not act: no buttons
  busy: new Set(), // ids with an action under way
  n: 0, // for element ids
};

// mayAct guesses from the token whether it may act on alarms, so a
// viewer's wall screen shows no buttons it cannot use. Only a hint: the
// server decides, and a 403 hides the buttons too.
function mayAct(tok) {
  const role = roleOf(tok);
  return role === '' || role === 'operator' || role === 'admin';
}

// applyAlarms takes an alarms/ message: every one carries all the alarms
// not yet resolved.
function applyAlarms(d) {
  if (d.area !== state.area || !Array.isArray(d.open)) return;
  const t = asOfTime(d.as_of);
  if (t && t < alarms.asOf) return;
  alarms.asOf = t;
  learnSkew(d.as_of);
  alarms.list = d.open.filter((a) => a && typeof a === 'object' && typeof a.id === 'string' && a.state !== 'resolved');
  renderAlarms();
}

// mergeAlarm shows the answer to an action at once; the topic follows.
function mergeAlarm(a) {
  const i = alarms.list.findIndex((x) => x.id === a.id);
  if (a.state === 'resolved') {
    if (i >= 0) alarms.list.splice(i, 1);
  } else if (i >= 0) {
    alarms.list[i] = a;
  } else {
    alarms.list.push(a);
  }
  renderAlarms();
}

function alarmsOff() {
  alarms.list = [];
  alarms.seen = null;
  alarms.asOf = 0;
  for (const r of alarms.rows.values()) r.li.remove();
  alarms.rows.clear();
  $('alarm-panel').hidden = true;
  drawDevices();
}

function renderAlarms() {
  $('alarm-panel').hidden = false;
  const list = alarms.list.slice().sort(compareAlarms);
  const ol = $('alarms');
  const keep = new Set();
  const focused = document.activeElement;
  let lost = -1; // where a focused row was taken out
  let i = 0;
  for (const a of list) {
    keep.add(a.id);
    let r = alarms.rows.get(a.id);
    if (!r) {
      r = alarmRow(a.id);
      alarms.rows.set(a.id, r);
      if (alarms.seen && !alarms.seen.has(a.id)) flashRow(r.li);
    }
    fillAlarm(r, a);
    if (ol.children[i] !== r.li) ol.insertBefore(r.li, ol.children[i] || null);
    i++;
  }
  for (const [id, r] of alarms.rows) {
    if (keep.has(id)) continue;
    if (lost < 0 && focused && r.li.contains(focused)) lost = Array.prototype.indexOf.call(ol.children, r.li);
    r.li.remove();
    alarms.rows.delete(id);
  }
  if (lost >= 0) { // keep the keyboard in the list
    const next = ol.children[Math.min(lost, ol.children.length - 1)];
    const b = next && Array.from(next.querySelectorAll('button')).find((x) => !x.hidden);
    if (b) b.focus();
    else $('alarm-title').focus();
  }
  alarms.seen = keep;
  const crit = list.filter((a) => a.severity === 'critical').length;
  setText($('alarm-count'), list.length ? `${formatInt(list.length)}${crit ? ` · ${formatInt(crit)} nghiêm trọng` : ''}` : '');
  $('alarm-count').dataset.critical = String(crit > 0);
  $('alarms-empty').hidden = list.length > 0;
  $('alarm-view-only').hidden = !alarms.viewOnly;
  drawDevices();
}

function div(cls) {
  const el = document.createElement('div');
  el.className = cls;
  return el;
}

function alarmRow(id) {
  const li = document.createElement('li');
  li.className = 'alarm';
  li.dataset.alarm = id;
  const sev = div('alarm-sev');
  const badge = document.createElement('span');
  badge.className = 'sev-badge';
  const age = document.createElement('span');
  age.className = 'alarm-age';
  sev.append(badge, age);
  const main = div('alarm-main');
  const rule = div('alarm-rule');
  rule.id = 'alarm-' + ++alarms.n;
  const where = div('alarm-where');
  const msg = div('alarm-msg');
  const ack = div('alarm-ack');
  const err = div('alarm-error');
  err.setAttribute('role', 'status');
  main.append(rule, where, msg, ack, err);
  const actions = div('alarm-actions');
  const button = (action, text, title) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.action = action;
    b.textContent = text;
    b.title = title;
    b.setAttribute('aria-describedby', rule.id);
    return b;
  };
  const ackBtn = button('ack', 'Xác nhận', 'Acknowledge: taken in hand');
  const resBtn = button('resolve', 'Giải quyết', 'Resolve: close the alarm');
  actions.append(ackBtn, resBtn);
  li.append(sev, main, actions);
  return { li, badge, age, rule, where, msg, ack, err, ackBtn, resBtn, a: null };
}

function fillAlarm(r, a) {
  if (r.a && r.a.state !== a.state) r.err.textContent = ''; // news overtakes an error
  r.a = a;
  const li = r.li;
  setAttr(li, 'data-severity', a.severity || '');
  setAttr(li, 'data-state', a.state || '');
  setAttr(li, 'data-device', a.device_id || '');
  setText(r.badge, sevLabel(a.severity));
  r.badge.title = SEVERITIES[a.severity] ? SEVERITIES[a.severity].en : '';
  setText(r.age, age(a.opened_at));
  r.age.title = `Mở lúc ${at(a.opened_at, true)} (opened at)`;
  setText(r.rule, a.rule_name || a.rule_id || '');
  r.rule.title = a.rule_id || '';
  const place = areaName(a.area_code);
  setText(r.where, [deviceLabel(a.device_id, a.device_name, a.device_kind), place].filter(Boolean).join(' · '));
  setText(r.msg, a.message || '');
  r.msg.hidden = !a.message;
  if (a.state === 'acknowledged') {
    const by = a.acknowledged_by || '?';
    const when = a.acknowledged_at ? ` lúc ${at(a.acknowledged_at)}` : '';
    setText(r.ack, `Đã xác nhận bởi ${by}${when}${a.ack_note ? ' — ' + a.ack_note : ''}`);
    r.ack.title = `Acknowledged by ${by}`;
    r.ack.hidden = false;
  } else {
    r.ack.hidden = true;
    setText(r.ack, '');
  }
  r.err.hidden = !r.err.textContent;
  const busy = alarms.busy.has(a.id);
  r.ackBtn.hidden = alarms.viewOnly || a.state !== 'open';
  r.resBtn.hidden = alarms.viewOnly;
  r.ackBtn.disabled = r.resBtn.disabled = busy;
  li.setAttribute('aria-busy', String(busy));
}

function flashRow(li) {
  li.classList.add('new');
  setTimeout(() => li.classList.remove('new'), 4000);
}

function tickAges() {
  for (const r of alarms.rows.values()) if (r.a) setText(r.age, age(r.a.opened_at));
}

function onAlarmClick(ev) {
  const b = ev.target.closest('button[data-action]');
  const li = b && b.closest('li[data-alarm]');
  if (li) actOnAlarm(li.dataset.alarm, b.dataset.action === 'ack' ? 'ack' : 'resolve');
}

// actOnAlarm acknowledges or resolves an alarm with the page's token.
async function actOnAlarm(id, action) {
  if (alarms.busy.has(id) || alarms.viewOnly) return;
  alarms.busy.add(id);
  const row = alarms.rows.get(id);
  if (row) {
    row.err.textContent = '';
    fillAlarm(row, row.a);
  }
  let done = null;
  let failure = null;
  try {
    done = await api.post('/api/v1/alarms/' + enc(id) + '/' + action, { note: '' });
  } catch (e) {
    failure = e;
  }
  alarms.busy.delete(id);
  if (state.fatal) return;
  if (done && done.id === id) {
    mergeAlarm(done);
    return;
  }
  const status = failure instanceof ApiError ? failure.status : 0;
  if (status === 401) { // the token expired: say so as a load would
    loadFailed(failure);
    return;
  }
  if (status === 403) {
    alarms.viewOnly = true;
    renderAlarms();
    return;
  }
  const r = alarms.rows.get(id);
  if (!r) return;
  const msg = failure && failure.message ? failure.message : '';
  r.err.textContent = status === 409 ? `Cảnh báo đã được xử lý (already handled): ${msg}` :
    status === 404 ? 'Cảnh báo này không còn (no such alarm)' :
      `Không gửi được, hãy thử lại (could not send): ${msg}`;
  fillAlarm(r, r.a);
}

// ---- devices ----

const DEVICE_R = 7; // in the map's units: wall/geo.js's MAP_SIZE along its longer side
const DEVICE_RING_R = 13;
const devices = { list: [], asOf: 0 };

function applyDevices(d) {
  if (d.area !== state.area || !Array.isArray(d.devices)) return;
  const t = asOfTime(d.as_of);
  if (t && t < devices.asOf) return;
  devices.asOf = t;
  devices.list = d.devices.filter((x) => x && typeof x === 'object' && typeof x.id === 'string');
  drawDevices();
}

function devicesOff() {
  devices.list = [];
  devices.asOf = 0;
  drawDevices();
}

// devicePoint projects a device as the map drew its unit (a unit in an
// inset has a projection of its own).
function devicePoint(d) {
  const lat = Number(d.lat);
  const lon = Number(d.lon);
  if (!map.geom || !isFinite(lat) || !isFinite(lon) || (lat === 0 && lon === 0)) return null;
  return map.geom.point(lon, lat, d.area_code).map((c) => c.toFixed(1));
}

function deviceText(d, status, alarmed) {
  const lines = [deviceLabel(d.id, d.name, d.kind)];
  let st = status === 'online' ? 'đang hoạt động (online)' : 'mất kết nối (offline)';
  if (d.last_seen) st += ` · lần cuối ${at(d.last_seen, true)}`;
  const place = areaName(d.area_code);
  lines.push(place ? `${st} · ${place}` : st);
  const latest = d.latest && typeof d.latest === 'object' ? d.latest : {};
  for (const kind of Object.keys(latest).sort()) {
    const r = latest[kind];
    if (!r || typeof r.value !== 'number') continue;
    const rd = reading(kind, r.value, true);
    lines.push(`${rd.vi}: ${rd.value}${r.observed_at ? ' (' + at(r.observed_at) + ')' : ''}`);
  }
  for (const a of alarmed ? alarmed.alarms : []) {
    lines.push(`⚠ ${sevLabel(a.severity)}: ${a.rule_name || a.rule_id}${a.state === 'acknowledged' ? ' (đã xác nhận)' : ''}`);
  }
  return lines.join('\n');
}

// drawDevices puts the devices on the map, greys the offline ones and
// rings those with an alarm not yet resolved, touching only what changed.
function drawDevices() {
  const layer = map.devLayer;
  if (!layer) return;
  const alarmed = new Map(); // device id → {severity, open, alarms}
  for (const a of alarms.list) {
    const w = alarmed.get(a.device_id);
    if (!w) {
      alarmed.set(a.device_id, { severity: a.severity, open: a.state === 'open', alarms: [a] });
      continue;
    }
    if (sevRank(a.severity) < sevRank(w.severity)) w.severity = a.severity;
    w.open = w.open || a.state === 'open';
    w.alarms.push(a);
  }
  const seen = new Set();
  for (const d of devices.list) {
    const xy = devicePoint(d);
    if (!xy || seen.has(d.id)) continue;
    seen.add(d.id);
    let m = map.marks.get(d.id);
    if (!m) {
      const el = svgEl('circle', { class: 'device', 'data-device': d.id, r: DEVICE_R });
      const title = svgEl('title');
      el.append(title);
      const ring = svgEl('circle', { class: 'device-ring', r: DEVICE_RING_R });
      m = { el, ring, title, key: '' };
      map.marks.set(d.id, m);
      layer.marks.append(el);
    }
    const status = d.status === 'online' ? 'online' : 'offline';
    const kind = d.kind === 'camera' ? 'camera' : 'sensor';
    const w = alarmed.get(d.id);
    const text = deviceText(d, status, w);
    const key = [xy[0], xy[1], status, kind, w ? w.severity + w.open : '', text].join('|');
    if (key === m.key) continue;
    m.key = key;
    setAttr(m.el, 'cx', xy[0]);
    setAttr(m.el, 'cy', xy[1]);
    setAttr(m.el, 'data-status', status);
    setAttr(m.el, 'data-kind', kind);
    setAttr(m.el, 'data-alarm', w ? w.severity : null);
    m.title.textContent = text;
    if (w) {
      setAttr(m.ring, 'cx', xy[0]);
      setAttr(m.ring, 'cy', xy[1]);
      setAttr(m.ring, 'data-severity', w.severity);
      setAttr(m.ring, 'data-state', w.open ? 'open' : 'acknowledged');
      if (!m.ring.parentNode) layer.rings.append(m.ring);
      layer.marks.append(m.el); // alarmed devices on top
    } else {
      m.ring.remove();
    }
  }
  for (const [id, m] of map.marks) {
    if (seen.has(id)) continue;
    m.el.remove();
    m.ring.remove();
    map.marks.delete(id);
  }
  $('device-legend').hidden = map.marks.size === 0;
}

// ---- camera events ----

const TICKER_MAX = 12; // entries shown: a strip, read at a glance
const ticker = { entries: [], items: new Map(), seen: null };

// applyEvents takes an events/ message: a snapshot lists the newest
// events, an update those that arrived since the last message; folded
// counts the ones left out, which are older than those listed. The
// ticker keeps the count with the events it came with, and lets it go
// when they leave the strip.
function applyEvents(d, snapshot) {
  if (d.area !== state.area || !Array.isArray(d.events)) return;
  ticker.entries = mergeEvents(ticker.entries, d, snapshot, TICKER_MAX);
  renderTicker();
}

function eventsOff() {
  ticker.entries = [];
  ticker.seen = null;
  ticker.items.clear();
  $('ticker-list').replaceChildren();
  $('ticker-more').hidden = true;
  $('ticker').hidden = true;
}

function renderTicker() {
  $('ticker').hidden = false;
  const items = new Map();
  const lis = [];
  let n = 0;
  let folded = 0; // events left out of the bursts still listed
  for (const x of ticker.entries) {
    if (x.more) {
      folded += x.more;
      continue;
    }
    let li = ticker.items.get(x.id);
    if (!li) {
      li = eventItem(x.e);
      if (ticker.seen && !ticker.seen.has(x.id)) flashRow(li);
    }
    items.set(x.id, li);
    lis.push(li);
    n++;
  }
  ticker.items = items;
  ticker.seen = new Set(items.keys());
  const ol = $('ticker-list');
  lis.forEach((li, i) => {
    if (ol.children[i] !== li) ol.insertBefore(li, ol.children[i] || null);
  });
  while (ol.children.length > lis.length) ol.lastElementChild.remove();
  $('ticker-empty').hidden = lis.length > 0;
  $('ticker').dataset.count = String(n);
  // At the end of the strip, where it stays in view.
  const more = $('ticker-more');
  more.dataset.folded = String(folded);
  setText(more, folded ? `+${formatInt(folded)} sự kiện khác` : '');
  more.title = folded ? `+${folded} more camera events, not listed` : '';
  more.hidden = !folded;
}

function eventItem(e) {
  const li = document.createElement('li');
  li.className = 'ev';
  li.dataset.event = e.event_id;
  li.dataset.type = String(e.type || '');
  li.dataset.severity = String(e.severity || 'info');
  const t = document.createElement('time');
  t.className = 'ev-time';
  t.dateTime = String(e.occurred_at || '');
  t.textContent = at(e.occurred_at);
  t.title = at(e.occurred_at, true);
  const type = document.createElement('span');
  type.className = 'ev-type';
  type.textContent = eventType(e.type)[0];
  const place = document.createElement('span');
  place.className = 'ev-place';
  place.textContent = e.area_name || areaName(e.area_code);
  li.append(t, ' ', type, ' ', place);
  li.title = [String(e.type || '').replace(/_/g, ' '), SEVERITIES[e.severity] ? SEVERITIES[e.severity].en.toLowerCase() : '',
    e.camera_id ? 'camera ' + e.camera_id : ''].filter(Boolean).join(' · ');
  return li;
}

// ---- window selector ------------------------------------------------------

function setWindow(win) {
  if (!WINDOWS.includes(win) || win === state.window) return;
  // Alarms, devices and events stay: they take no window.
  const kept = new Set();
  for (const t of state.topics) if (opsPart(t)) kept.add(t);
  state.topics = kept;
  follow();
  state.window = win;
  const url = new URL(location.href);
  if (win === 'today') url.searchParams.delete('window');
  else url.searchParams.set('window', win);
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  $('content').classList.add('loading'); // until the new window's figures are in
  load();
}

// ---- messages -------------------------------------------------------------

function showMessage(title, text, hint) {
  const el = $('message');
  el.replaceChildren(h('h2', {}, title), ...[text, hint].filter(Boolean).map((t) => h('p', {}, t)));
  el.hidden = false;
}

function hideMessage() { $('message').hidden = true; }

function showNotice(text) {
  const el = $('notice');
  el.textContent = text;
  el.hidden = false;
}

function hideNotice() { $('notice').hidden = true; }

// fatal stops everything: the page cannot show this unit with this token.
function fatal(title, text, hint) {
  state.fatal = true;
  clearTimeout(state.loadTimer);
  if (live) live.close();
  setConnection('offline');
  $('content').hidden = true;
  hideNotice();
  showMessage(title, text, hint);
}

function noToken() {
  const el = $('message');
  el.replaceChildren(
    h('h2', {}, 'Chưa có mã truy cập (no access token)'),
    h('p', {}, 'Hãy mở trang bằng đường dẫn mà lệnh ', h('code', {}, 'make run'), ' in ra, có dạng:'),
    h('pre', {}, `${location.origin}/?access_token=<JWT>&area=${state.area}`),
    h('p', {}, 'hoặc thêm ', h('code', {}, '?access_token=…'), ' vào địa chỉ trang. Tạo mã xem bằng ',
      h('code', {}, `iocd token --role viewer --area ${state.area}`), '.'),
    h('p', { class: 'en' }, 'Open this page with the URL printed by make run, or add ?access_token=… to the address.'));
  el.hidden = false;
  setConnection('offline');
}

// ---- start ----------------------------------------------------------------

function start() {
  state.token = takeToken();
  api = new Api(state.token);
  live = new Live(state.token, { onState: onLiveState, onRevoked: revoked });
  $('window').value = state.window;
  $('window').addEventListener('change', (ev) => setWindow(ev.target.value));
  $('communes').tHead.addEventListener('click', onSortClick);
  $('communes').tBodies[0].addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr[data-area]');
    if (tr) select(tr.dataset.area, false);
  });
  map.kpi = $('map-kpi').value || 'online_rate';
  $('map-kpi').addEventListener('change', (ev) => {
    if (!state.columns.includes(ev.target.value)) return;
    map.kpi = ev.target.value;
    recolour();
  });
  setColumnSet(state.columnSet);
  $('columns').addEventListener('change', (ev) => setColumnSet(ev.target.value));
  $('alarms').addEventListener('click', onAlarmClick);
  alarms.viewOnly = !mayAct(state.token);
  setInterval(tickAges, 15000);
  const stops = [];
  for (let i = 0; i <= 8; i++) stops.push(rampColour(RAMP, i / 8));
  $('legend-ramp').style.backgroundImage = `linear-gradient(90deg, ${stops.join(', ')})`;
  $('filter').addEventListener('input', (ev) => {
    state.filter = fold(ev.target.value);
    applyFilter();
  });
  if (!state.token) {
    noToken();
    return;
  }
  load();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
