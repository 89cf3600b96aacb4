// The built-in IOC page: one unit's live indicators and those of the units
// under it (a province and its communes), its open alarms, its cameras and
// sensors on the map, and a ticker of camera events. It reads a snapshot
// over REST, then follows the live websocket (protocol v2: resumes each
// topic after a reconnect; the decisions are in live.js). Plain ES2017,
// nothing loaded from outside: control rooms are often air-gapped.
'use strict';

(() => {
  const L = window.IOCLive;
  const TOKEN_KEY = 'ioc.access_token';
  const WINDOWS = ['today', '24h', '7d', '30d'];
  const RATES = new Set(['online_rate', 'on_time_rate', 'online_payment_rate', 'e_result_rate', 'digitization_rate', 'data_reuse_rate']);
  const ON_TIME_WARNING = 0.9; // on-time rate below this is shown as a warning
  const PM25_WARNING = 55.5; // µg/m³: "unhealthy" from here, as the default alarm rule says
  const MAX_BACKOFF = 30000;
  const BACKOFF_BASE = 1000; // the first reconnect waits up to this long
  const MAX_PLANNED = 5 * 60 * 1000; // at most this long for a server's reconnect after_ms
  // Close codes of the live socket (docs/asyncapi.yaml).
  const CLOSE_REVOKED = 4401; // the token was revoked: do not come back with it
  const CLOSE_SLOW = 4008; // the page read too slowly: back off, then resume
  const CLOSE_RATE = 4029; // the page sent too many messages: back off
  const RESORT_DELAY = 1000; // live re-sorting at most this often, so rows do not jitter
  const NONE = '–'; // an indicator without a figure (null)
  // The indicators shown as table columns and map choices, in order, by
  // group. A snapshot's other numeric indicators follow under their id;
  // those that are not numbers (camera_events_by_type) are left out.
  const KPI_DEFS = [
    { id: 'dossiers_received', group: 'dossiers', short: 'Tiếp nhận', name: 'Hồ sơ tiếp nhận', en: 'Dossiers received' },
    { id: 'online_rate', group: 'dossiers', short: 'Trực tuyến', name: 'Tỷ lệ trực tuyến', en: 'Online submission rate' },
    { id: 'dossiers_resolved', group: 'dossiers', short: 'Đã giải quyết', name: 'Hồ sơ đã giải quyết', en: 'Dossiers resolved' },
    { id: 'on_time_rate', group: 'dossiers', short: 'Đúng hạn', name: 'Tỷ lệ đúng hạn', en: 'On-time resolution rate' },
    { id: 'dossiers_overdue', group: 'dossiers', short: 'Quá hạn', name: 'Quá hạn', en: 'Dossiers overdue (now)' },
    { id: 'avg_resolution_days', group: 'dossiers', short: 'TG giải quyết (ngày)', name: 'Thời gian giải quyết trung bình (ngày)', en: 'Average resolution time (days)', digits: 1 },
    { id: 'online_payment_rate', group: 'dossiers', short: 'Thanh toán TT', name: 'Tỷ lệ thanh toán trực tuyến', en: 'Online payment rate' },
    { id: 'e_result_rate', group: 'dossiers', short: 'Kết quả điện tử', name: 'Tỷ lệ cấp kết quả điện tử', en: 'Electronic result rate' },
    { id: 'digitization_rate', group: 'dossiers', short: 'Số hóa', name: 'Tỷ lệ số hóa hồ sơ', en: 'Digitization rate' },
    { id: 'data_reuse_rate', group: 'dossiers', short: 'Tái sử dụng', name: 'Tỷ lệ tái sử dụng dữ liệu số hóa', en: 'Data reuse rate' },
    { id: 'alarms_open', group: 'devices', short: 'Cảnh báo', name: 'Cảnh báo đang mở', en: 'Open alarms (now)' },
    { id: 'cameras_online', group: 'devices', short: 'Camera hoạt động', name: 'Camera hoạt động', en: 'Cameras online (now)' },
    { id: 'cameras_offline', group: 'devices', short: 'Camera mất kết nối', name: 'Camera mất kết nối', en: 'Cameras offline (now)' },
    { id: 'sensors_online', group: 'devices', short: 'Cảm biến hoạt động', name: 'Cảm biến hoạt động', en: 'Sensors online (now)' },
    { id: 'sensors_offline', group: 'devices', short: 'Cảm biến mất kết nối', name: 'Cảm biến mất kết nối', en: 'Sensors offline (now)' },
    { id: 'camera_events', group: 'environment', short: 'Sự kiện camera', name: 'Sự kiện camera', en: 'Camera events' },
    { id: 'camera_events_critical', group: 'environment', short: 'Sự kiện nghiêm trọng', name: 'Sự kiện camera nghiêm trọng', en: 'Critical camera events' },
    { id: 'pm25_max', group: 'environment', short: 'PM2.5 cao nhất', name: 'PM2.5 cao nhất (µg/m³)', en: 'PM2.5, highest reading (µg/m³)', digits: 1 },
    { id: 'pm25_avg', group: 'environment', short: 'PM2.5 trung bình', name: 'PM2.5 trung bình (µg/m³)', en: 'PM2.5, mean of readings (µg/m³)', digits: 1 },
    { id: 'water_level_max', group: 'environment', short: 'Mực nước cao nhất', name: 'Mực nước cao nhất (m)', en: 'Water level, highest reading (m)', digits: 2 },
  ];
  const KPI_BY_ID = new Map(KPI_DEFS.map((d) => [d.id, d]));
  // Figures the tiles show beside another, not columns of their own.
  const KPI_DETAILS = new Set(['dossiers_online', 'dossiers_on_time', 'records_approximate']);
  const KPI_GROUPS = { dossiers: 'Hồ sơ', devices: 'Cảnh báo, thiết bị', environment: 'Camera, môi trường', other: 'Khác' };
  const COLUMN_SETS = ['dossiers', 'devices', 'environment', 'all'];
  // The table's columns before the first snapshot says which there are.
  const DEFAULT_COLUMNS = KPI_DEFS.filter((d) => d.group === 'dossiers').map((d) => d.id);
  // ColorBrewer YlGnBu, safe for colour-blind readers; lighter = lower. Its
  // darkest step is left out: it vanishes into the dark page.
  const RAMP = ['#ffffd9', '#edf8b1', '#c7e9b4', '#7fcdbb', '#41b6c4', '#1d91c0', '#225ea8', '#253494'];
  const RAMP_RGB = RAMP.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
  const NO_DATA_FILL = 'url(#map-nodata)';
  // A province's communes lose no visible detail at web-map zoom 11, even
  // on a wall screen; the server simplifies the shapes to match.
  const MAP_ZOOM = 11;
  const MAP_SIZE = 1000; // viewBox units along the longer side
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const intFmt = new Intl.NumberFormat('vi-VN');
  const pctFmt = new Intl.NumberFormat('vi-VN', { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 });

  const params = new URLSearchParams(location.search);
  const state = {
    token: '',
    area: (params.get('area') || '79').trim(),
    window: WINDOWS.includes(params.get('window')) ? params.get('window') : 'today',
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
  // held: topic → what the page applied of it (live.js's step says what
  // that is): a state topic's version and state, a stream topic's epoch
  // and offset. It outlives the socket, so that a reconnect resumes every
  // topic with since instead of taking every snapshot again; a topic
  // unsubscribed is forgotten. resyncing: map/ topics asked again after a
  // delta the page could not apply, until the answer comes. after: the
  // delay a server's reconnect message asked for, taken by the next
  // reconnect.
  const live = { ws: null, attempt: 0, timer: 0, retries: new Map(), held: new Map(), resyncing: new Set(), after: null };
  let resortTimer = 0;

  // ---- token ----------------------------------------------------------------

  // takeToken moves ?access_token= into sessionStorage and out of the visible
  // URL (and so out of the history, screenshots and over-the-shoulder views).
  function takeToken() {
    const url = new URL(location.href);
    let tok = url.searchParams.get('access_token') || '';
    if (tok) {
      try { sessionStorage.setItem(TOKEN_KEY, tok); } catch (e) { /* private mode: keep it in memory */ }
      url.searchParams.delete('access_token');
      history.replaceState(history.state, '', url.pathname + url.search + url.hash);
    } else {
      try { tok = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { tok = ''; }
    }
    return tok;
  }

  function forgetToken() {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
  }

  // ---- REST -----------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, accept) {
    let resp;
    try {
      resp = await fetch(path, {
        headers: { Authorization: 'Bearer ' + state.token, Accept: accept || 'application/json' },
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'không kết nối được tới máy chủ (cannot reach the server)');
    }
    let body = null;
    try { body = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      const msg = body && typeof body.error === 'string' ? body.error : `HTTP ${resp.status} ${resp.statusText}`;
      throw new ApiError(resp.status, msg);
    }
    if (body === null) throw new ApiError(resp.status, 'máy chủ không trả về JSON (the server did not answer JSON)');
    return body;
  }

  // post sends an action; the answer is JSON either way.
  async function post(path, body) {
    let resp;
    try {
      resp = await fetch(path, {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + state.token, Accept: 'application/json', 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'không kết nối được tới máy chủ (cannot reach the server)');
    }
    let answer = null;
    try { answer = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      const msg = answer && typeof answer.error === 'string' ? answer.error : `HTTP ${resp.status} ${resp.statusText}`;
      throw new ApiError(resp.status, msg);
    }
    return answer;
  }

  function areaPath(suffix) {
    return '/api/v1/areas/' + encodeURIComponent(state.area) + suffix;
  }

  // load fetches the unit, its figures and its children's for the current
  // window, renders them and (re)subscribes to their live topics.
  async function load() {
    clearTimeout(state.loadTimer);
    const gen = ++state.loadGen;
    const win = state.window;
    const q = '?window=' + encodeURIComponent(win);
    try {
      const [unit, own, kids] = await Promise.all([
        state.unit ? Promise.resolve(state.unit) : api(areaPath('')),
        api(areaPath('/kpis' + q)),
        api(areaPath('/children/kpis' + q)),
      ]);
      if (gen !== state.loadGen || state.fatal) return;
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
      live.retries.clear();
      if (live.ws && live.ws.readyState === WebSocket.OPEN) {
        subscribeAll();
      } else if (!live.ws && !live.timer) {
        connect();
      }
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
    const delay = backoff(state.loadAttempt++);
    const text = `${msg} — thử lại sau ${Math.round(delay / 1000)} giây (retrying)`;
    if ($('content').hidden) showMessage(`Không tải được số liệu${status ? ' (HTTP ' + status + ')' : ''}`, text);
    else showNotice(text);
    state.loadTimer = setTimeout(load, delay);
  }

  function backoff(attempt) {
    return Math.min(MAX_BACKOFF, 1000 * Math.pow(2, attempt));
  }

  // ---- websocket ------------------------------------------------------------

  function topicOf(code, win) {
    return win === 'today' ? 'kpi/' + code : 'kpi/' + code + '/' + win;
  }

  function send(op, topic) {
    // What a later subscription brings is news again.
    if (op === 'unsubscribe') {
      live.held.delete(topic);
      live.resyncing.delete(topic);
    }
    const msg = op === 'subscribe' ? L.subscribeOp(topic, live.held.get(topic)) : { op, topic };
    const ws = live.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  // subscribeAll (re)subscribes every wanted topic, alarms and devices
  // first; each says what the page holds of it, so that an unchanged topic
  // costs the server a `current` and no snapshot.
  function subscribeAll() {
    for (const t of L.orderTopics(state.topics)) send('subscribe', t);
  }

  // resync asks again for a map/ topic whose delta did not fit what the
  // page holds; the deltas that follow are ignored until the answer (a
  // snapshot) comes. Unsubscribe first: a subscription the server already
  // has would otherwise be left as it is.
  function resync(topic) {
    if (live.resyncing.has(topic)) return;
    const ws = live.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return; // the reconnect resumes it
    live.resyncing.add(topic);
    ws.send(JSON.stringify({ op: 'unsubscribe', topic }));
    ws.send(JSON.stringify(L.subscribeOp(topic, live.held.get(topic))));
  }

  function connect() {
    clearTimeout(live.timer);
    live.timer = 0;
    if (state.fatal) return;
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
      '/api/v1/live?access_token=' + encodeURIComponent(state.token);
    setConnection(live.attempt ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      reconnectLater(false, false, 0);
      return;
    }
    live.ws = ws;
    let opened = false;
    let heard = false;
    ws.onopen = () => {
      opened = true;
      live.resyncing.clear(); // a new connection answers each subscription afresh
      setConnection('connected');
      subscribeAll();
    };
    ws.onmessage = (ev) => {
      heard = true;
      if (live.ws === ws) onMessage(ev.data);
    };
    ws.onclose = (ev) => {
      if (live.ws !== ws) return;
      live.ws = null;
      reconnectLater(opened, heard, ev.code, ev.reason);
    };
  }

  // reconnectLater decides what a closed socket means: a revoked token
  // ends the page; anything else reconnects after the delay a reconnect
  // message asked for, else after a jittered back-off, so that thousands
  // of screens that lost the server together do not return together.
  function reconnectLater(opened, heard, code, reason) {
    if (state.fatal) return;
    if (code === CLOSE_REVOKED) {
      revoked(reason);
      return;
    }
    // The server talked to us: the next try starts from the shortest wait,
    // unless it closed because the page was too slow or too chatty.
    if (heard && code !== CLOSE_SLOW && code !== CLOSE_RATE) live.attempt = 0;
    let delay = live.after;
    live.after = null;
    const planned = delay !== null;
    if (!planned) delay = L.backoffDelay(live.attempt++, BACKOFF_BASE, MAX_BACKOFF, Math.random);
    setConnection('reconnecting', delay, planned ? 1001 : code);
    live.timer = setTimeout(connect, delay);
    // A refused handshake may be an expired token: ask REST, which says why.
    if (!opened) checkAccess();
  }

  // reconnectPlanned takes a server's reconnect message, sent before it shuts down:
  // leave now and come back after the delay it chose for this socket.
  function reconnectPlanned(afterMs) {
    const ws = live.ws;
    if (!ws) return;
    live.after = L.plannedDelay(afterMs, MAX_PLANNED);
    ws.close(1000);
  }

  function revoked(reason) {
    forgetToken();
    fatal('Mã truy cập đã bị thu hồi (the access token was revoked)', reason || 'token revoked',
      'Xin mã truy cập mới và mở lại trang với ?access_token=…, hoặc tạo mã bằng: iocd token --role viewer --area ' + state.area +
      ' (Ask for a new token and open the page again with it.)');
  }

  async function checkAccess() {
    try {
      await api(areaPath(''));
    } catch (e) {
      if (!state.fatal && e instanceof ApiError && (e.status === 401 || e.status === 403)) loadFailed(e);
    }
  }

  function onMessage(raw) {
    let m;
    try { m = JSON.parse(raw); } catch (e) { return; }
    if (!m || typeof m !== 'object') return;
    if (m.type === 'reconnect') {
      reconnectPlanned(m.after_ms);
      return;
    }
    if (m.type === 'error') {
      // The server keeps trying and the subscription stays: nothing to do.
      if (m.retrying) { console.warn(m.topic, m.error); return; }
      topicRefused(m.topic, m.error);
      return;
    }
    // What is still in flight for a topic the page left is of no use.
    if (typeof m.topic !== 'string' || !state.topics.has(m.topic)) return;
    const r = L.step(live.held.get(m.topic), m);
    live.held.set(m.topic, r.held);
    switch (r.act) {
      case 'resync':
        resync(m.topic);
        return;
      case 'snapshot': case 'update':
        live.resyncing.delete(m.topic);
        break;
      case 'current':
        live.resyncing.delete(m.topic);
        return; // what the page shows is the newest
      default:
        return;
    }
    const data = r.data;
    if (!data || typeof data !== 'object') return;
    // A part that fails on odd data must not take the rest of the page down.
    const part = (f) => {
      try { f(data, r.act === 'snapshot'); } catch (e) { console.error(m.topic, e); }
    };
    if (m.topic === alarmsTopic()) { part(applyAlarms); return; }
    if (m.topic === devicesTopic()) { part(applyDevices); return; }
    if (m.topic === eventsTopic()) { part(applyEvents); return; }
    if (data.window === state.window) {
      if (m.topic.startsWith('map/')) applyMap(data);
      else apply(data, true);
    }
  }

  // topicRefused shows why a subscription failed and retries it a few times:
  // the page only subscribes to units REST already let it read, so a refusal
  // is most likely storage being briefly unavailable.
  //
  // Alarms, devices and events are parts a node may not serve at all (one
  // without devices): their part of the page is left out, quietly.
  function topicRefused(topic, error) {
    const ops = opsPart(topic);
    live.held.delete(topic);
    live.resyncing.delete(topic);
    if (ops) {
      ops.off();
      // Refusals that another try will not change.
      if (/not served|does not cover|unknown/.test(error || '')) return;
    } else {
      showNotice(`Không theo dõi trực tiếp được ${topic || ''}: ${error || 'lỗi không rõ'}`);
    }
    if (!topic || !state.topics.has(topic)) return;
    const n = (live.retries.get(topic) || 0) + 1;
    live.retries.set(topic, n);
    if (n > 5) return;
    setTimeout(() => { if (state.topics.has(topic)) send('subscribe', topic); }, backoff(n + 1));
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
      case 'offline': text = 'Ngắt kết nối'; title = 'Disconnected'; break;
    }
    el.textContent = text;
    el.title = title;
  }

  // ---- rendering ------------------------------------------------------------

  function format(id, v) {
    if (typeof v !== 'number' || !isFinite(v)) return NONE;
    if (RATES.has(id)) return pctFmt.format(v);
    const d = KPI_BY_ID.get(id);
    return d && d.digits ? decFmt(d.digits).format(v) : intFmt.format(v);
  }

  const decFmts = {};
  function decFmt(digits) {
    return decFmts[digits] || (decFmts[digits] = new Intl.NumberFormat('vi-VN', { maximumFractionDigits: digits }));
  }

  function isWarning(id, v) {
    if (typeof v !== 'number') return false;
    switch (id) {
      case 'dossiers_overdue': case 'alarms_open': case 'cameras_offline': case 'sensors_offline': case 'camera_events_critical':
        return v > 0;
      case 'on_time_rate': return v < ON_TIME_WARNING;
      case 'pm25_max': case 'pm25_avg': return v >= PM25_WARNING;
    }
    return false;
  }

  function kpiName(id) {
    const d = KPI_BY_ID.get(id);
    return d ? d.name : id;
  }

  // setupColumns settles the indicators the table and the map show: those
  // of the catalogue the snapshot has, then any other number it carries.
  // Breakdowns (objects) cannot be a column or a colour.
  function setupColumns(own, children) {
    const kpis = (own && own.kpis) || (children[0] && children[0].kpis) || {};
    const cols = [];
    for (const d of KPI_DEFS) if (Object.prototype.hasOwnProperty.call(kpis, d.id)) cols.push(d.id);
    for (const id of Object.keys(kpis)) {
      const v = kpis[id];
      if (KPI_BY_ID.has(id) || KPI_DETAILS.has(id) || (v !== null && typeof v !== 'number')) continue;
      cols.push(id);
    }
    if (!cols.length) cols.push(...DEFAULT_COLUMNS);
    const changed = cols.join() !== state.columns.join() || !$('communes').tHead.rows[0].cells[1];
    state.columns = cols;
    if (!changed) return;
    const head = $('communes').tHead.rows[0];
    while (head.cells.length > 1) head.deleteCell(1);
    for (const id of cols) {
      const d = KPI_BY_ID.get(id);
      const th = document.createElement('th');
      th.dataset.sort = id;
      th.dataset.group = d ? d.group : 'other';
      th.className = 'num';
      th.title = d ? d.en : id;
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = d ? d.short : id;
      th.append(b);
      head.append(th);
    }
    if (state.sort.key !== 'name' && !cols.includes(state.sort.key)) state.sort = { key: 'name', dir: 1 };
    // The map's choices: the same indicators, by group.
    const sel = $('map-kpi');
    const groups = new Map();
    for (const id of cols) {
      const d = KPI_BY_ID.get(id);
      const g = d ? d.group : 'other';
      if (!groups.has(g)) {
        const og = document.createElement('optgroup');
        og.label = KPI_GROUPS[g] || g;
        groups.set(g, og);
      }
      const o = document.createElement('option');
      o.value = id;
      o.textContent = kpiName(id);
      o.title = d ? d.en : id;
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
    const text = format(id, v);
    if (el.textContent !== text) {
      el.textContent = text;
      if (flash) highlight(el);
    }
    el.classList.toggle('warn', isWarning(id, v));
    if (RATES.has(id)) el.style.setProperty('--p', typeof v === 'number' ? Math.max(0, Math.min(1, v)) : 0);
  }

  // highlight lights a cell up at once, then lets the CSS transition fade it.
  function highlight(el) {
    el.classList.add('flash');
    clearTimeout(el.flashTimer);
    el.flashTimer = setTimeout(() => el.classList.remove('flash'), 700);
  }

  // asOfTime compares as_of values; Go writes up to nine fraction digits.
  function asOfTime(s) {
    if (typeof s !== 'string') return 0;
    const t = Date.parse(s.replace(/(\.\d{3})\d+/, '$1'));
    return isNaN(t) ? 0 : t;
  }

  // showAsOf prints the server's wall time (its offset is in the string), so
  // the screen agrees with the server's "today" wherever the browser is.
  function showAsOf(s) {
    if (asOfTime(s) <= asOfTime(state.asOf)) return;
    state.asOf = s;
    const el = $('as-of');
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(s);
    el.textContent = m ? `${m[4]}:${m[5]}:${m[6]} ${m[3]}/${m[2]}/${m[1]}` : s;
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
    if (u.children) parts.push(intFmt.format(u.children) + ' đơn vị trực thuộc');
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
        const d = KPI_BY_ID.get(id);
        const td = document.createElement('td');
        td.dataset.kpi = id;
        td.dataset.group = d ? d.group : 'other';
        td.className = RATES.has(id) ? 'num rate' : 'num';
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

  function compareRows(a, b) {
    const { key, dir } = state.sort;
    const byName = () => (a.snap.name || '').localeCompare(b.snap.name || '', 'vi') || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0);
    if (key === 'name') return dir * byName();
    const va = (a.snap.kpis || {})[key];
    const vb = (b.snap.kpis || {})[key];
    const na = typeof va !== 'number';
    const nb = typeof vb !== 'number';
    if (na || nb) return na && nb ? byName() : na ? 1 : -1; // no figure: always last
    return dir * (va - vb) || byName();
  }

  function sortRows() {
    clearTimeout(resortTimer);
    resortTimer = 0;
    const rows = Array.from(state.rows.values()).sort(compareRows);
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

  // fold makes search diacritic- and case-insensitive: "sai gon" finds "Sài Gòn".
  function fold(s) {
    return String(s).normalize('NFD').replace(/[\u0300-\u036f]/g, '')
      .replace(/đ/g, 'd').replace(/Đ/g, 'D').toLowerCase().replace(/\s+/g, ' ').trim();
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
    $('count').textContent = q ? `${intFmt.format(shown)} / ${intFmt.format(total)} đơn vị` : `${intFmt.format(total)} đơn vị`;
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
    projs: new Map(), // code → the projection its shape was drawn with
    mainProj: null,
    insets: [], // [{proj, rings}]: units drawn in an inset, for placing devices
    devLayer: null, // {rings, marks}: SVG groups of the device markers
    marks: new Map(), // device id → {el, ring, title, key}
    resize: null, // ResizeObserver keeping the markers' size on screen
  };

  function mapTopicOf(code, win) {
    return win === 'today' ? 'map/' + code : 'map/' + code + '/' + win;
  }

  function svgEl(name, attrs) {
    const el = document.createElementNS(SVG_NS, name);
    for (const k of Object.keys(attrs || {})) el.setAttribute(k, attrs[k]);
    return el;
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
      const fc = await api(url, 'application/geo+json');
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
      if (state.topics.delete(t)) send('unsubscribe', t);
    }
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
    map.projs.clear();
    map.insets = [];
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

  function rings(geometry) {
    if (!geometry || !Array.isArray(geometry.coordinates)) return [];
    if (geometry.type === 'Polygon') return geometry.coordinates;
    if (geometry.type === 'MultiPolygon') return [].concat(...geometry.coordinates.filter(Array.isArray));
    return [];
  }

  function buildMap(fc) {
    const shapes = new Map(); // code → {code, name, rings: [[lon, lat, lon, lat, …]], b: [x0, y0, x1, y1]}
    for (const f of fc && Array.isArray(fc.features) ? fc.features : []) {
      if (!f || typeof f !== 'object') continue;
      const props = f.properties || {};
      const code = String(f.id !== undefined && f.id !== null ? f.id : props.code || '');
      if (!code) continue;
      const out = [];
      for (const ring of rings(f.geometry)) {
        if (!Array.isArray(ring)) continue;
        const pts = [];
        for (const p of ring) {
          if (!Array.isArray(p)) continue;
          const lon = +p[0];
          const lat = +p[1];
          if (isFinite(lon) && isFinite(lat)) pts.push(lon, lat);
        }
        if (pts.length >= 6) out.push(pts);
      }
      if (!out.length) continue;
      const sh = shapes.get(code);
      if (sh) sh.rings.push(...out); // a unit sent in pieces
      else shapes.set(code, { code, name: props.name || props.full_name || code, rings: out });
    }
    if (!shapes.size) throw new Error('lớp bản đồ không có hình nào (the layer has no shapes)');
    for (const sh of shapes.values()) sh.b = ringBounds(sh.rings);

    const lay = layout(Array.from(shapes.values()));
    map.mainProj = lay.proj;
    for (const sh of shapes.values()) {
      map.projs.set(sh.code, sh.proj);
      if (sh.proj !== lay.proj) map.insets.push({ proj: sh.proj, rings: sh.rings });
    }
    const pad = 4;
    const svg = svgEl('svg', {
      viewBox: `${-pad} ${-pad} ${(lay.w + 2 * pad).toFixed(1)} ${(lay.h + 2 * pad).toFixed(1)}`,
      role: 'group',
      'aria-roledescription': 'bản đồ',
    });
    const defs = svgEl('defs');
    const pat = svgEl('pattern', { id: 'map-nodata', patternUnits: 'userSpaceOnUse', width: 6, height: 6, patternTransform: 'rotate(45)' });
    pat.append(svgEl('rect', { width: 6, height: 6, fill: '#1a2740' }), svgEl('rect', { width: 2, height: 6, fill: '#50617f' }));
    defs.append(pat);
    const frames = svgEl('g', { class: 'insets', 'aria-hidden': 'true' });
    for (const r of lay.frames) frames.append(svgEl('rect', { x: r.x.toFixed(1), y: r.y.toFixed(1), width: r.w.toFixed(1), height: r.h.toFixed(1), rx: 4 }));
    const units = svgEl('g', { class: 'units' });
    for (const [code, sh] of shapes) {
      let d = '';
      for (const r of sh.xy) {
        let ring = '';
        let prev = '';
        let n = 0;
        for (let i = 0; i < r.length; i += 2) {
          const pt = r[i].toFixed(1) + ',' + r[i + 1].toFixed(1);
          if (pt === prev) continue; // vertices closer than the drawing's precision
          ring += (n ? ' ' : 'M') + pt;
          prev = pt;
          n++;
        }
        if (n >= 3) d += ring + 'Z';
      }
      if (!d) continue;
      const el = svgEl('path', {
        d, 'data-area': code, 'data-value': '', fill: NO_DATA_FILL, tabindex: '-1', role: 'button', 'aria-pressed': String(code === state.selected),
      });
      units.append(el);
      map.paths.set(code, { el, d, name: sh.name, raw: '', fill: NO_DATA_FILL, label: '' });
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
    svg.append(defs, frames, units, overlay, devRings, devMarks);

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
    const vbWidth = lay.w + 2 * pad;
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

  function ringBounds(rs) {
    const b = [Infinity, Infinity, -Infinity, -Infinity];
    for (const r of rs) {
      for (let i = 0; i < r.length; i += 2) {
        if (r[i] < b[0]) b[0] = r[i];
        if (r[i] > b[2]) b[2] = r[i];
        if (r[i + 1] < b[1]) b[1] = r[i + 1];
        if (r[i + 1] > b[3]) b[3] = r[i + 1];
      }
    }
    return b;
  }

  function unionBounds(list) {
    const b = [Infinity, Infinity, -Infinity, -Infinity];
    for (const u of list) {
      b[0] = Math.min(b[0], u.b[0]);
      b[1] = Math.min(b[1], u.b[1]);
      b[2] = Math.max(b[2], u.b[2]);
      b[3] = Math.max(b[3], u.b[3]);
    }
    return b;
  }

  // fit projects bounds b into a square of side size, no larger than
  // maxScale: equirectangular with longitude shrunk by cos(latitude), true
  // enough in shape at a province's scale and needing no library.
  function fit(b, size, maxScale) {
    const k = Math.cos(((b[1] + b[3]) / 2) * Math.PI / 180);
    const s = Math.min(maxScale || Infinity, size / Math.max((b[2] - b[0]) * k, b[3] - b[1], 1e-9));
    return { x0: b[0], y1: b[3], k, s, ox: 0, oy: 0, w: (b[2] - b[0]) * k * s, h: (b[3] - b[1]) * s };
  }

  function project(sh) {
    const p = sh.proj;
    sh.xy = sh.rings.map((r) => {
      const out = new Array(r.length);
      for (let i = 0; i < r.length; i += 2) {
        out[i] = p.ox + (r[i] - p.x0) * p.k * p.s;
        out[i + 1] = p.oy + (p.y1 - r[i + 1]) * p.s;
      }
      return out;
    });
    return sh.xy;
  }

  // farOff finds the units lying apart from the main body, along either
  // axis. Hồ Chí Minh's Côn Đảo lies far out at sea: fitted together, the
  // mainland would get a third of the map.
  function farOff(units) {
    const out = new Set();
    for (const axis of [0, 1]) {
      const sizes = units.map((u) => u.b[axis + 2] - u.b[axis]).sort((a, b) => a - b);
      const tol = 2 * sizes[sizes.length >> 1]; // neighbours nearer than this are one body
      const groups = [];
      let end = -Infinity;
      for (const u of units.slice().sort((a, b) => a.b[axis] - b.b[axis])) {
        if (!groups.length || u.b[axis] > end + tol) groups.push([]);
        groups[groups.length - 1].push(u);
        end = Math.max(end, u.b[axis + 2]);
      }
      const main = groups.reduce((a, g) => (g.length > a.length ? g : a));
      if (main.length * 2 < units.length) continue;
      for (const g of groups) if (g !== main) for (const u of g) out.add(u.code);
    }
    if (out.size === 0 || out.size * 2 >= units.length) return new Set();
    const area = (b) => (b[2] - b[0]) * (b[3] - b[1]);
    const main = units.filter((u) => !out.has(u.code));
    // Not worth an inset unless it gives the main body much more room.
    return area(unionBounds(main)) < 0.6 * area(unionBounds(units)) ? out : new Set();
  }

  // layout gives every unit a projection: one for the main body, one per
  // inset of far-off units, drawn in an empty corner or else below.
  function layout(units) {
    const far = farOff(units);
    const main = units.filter((u) => !far.has(u.code));
    const mb = unionBounds(main);
    const proj = fit(mb, MAP_SIZE);
    for (const u of main) { u.proj = proj; project(u); }
    const frames = [];
    let w = proj.w;
    let h = proj.h;
    if (!far.size) return { w, h, frames, proj };

    // Far-off units near one another share an inset.
    const span = Math.max(mb[2] - mb[0], mb[3] - mb[1]);
    const gap = (a, b) => Math.max(a.b[0] - b.b[2], b.b[0] - a.b[2], a.b[1] - b.b[3], b.b[1] - a.b[3], 0);
    const groups = [];
    for (const u of units.filter((x) => far.has(x.code))) {
      const near = groups.filter((g) => g.some((v) => gap(u, v) < span / 2));
      const merged = [u].concat(...near);
      for (const g of near) groups.splice(groups.indexOf(g), 1);
      groups.push(merged);
    }

    const pad = 8;
    const place = (g, x, y, gp) => {
      gp.ox = x + pad;
      gp.oy = y + pad;
      for (const u of g) { u.proj = gp; project(u); }
      frames.push({ x, y, w: gp.w + 2 * pad, h: gp.h + 2 * pad });
    };
    if (groups.length === 1) {
      const g = groups[0];
      const gb = unionBounds(g);
      const south = gb[1] + gb[3] < mb[1] + mb[3];
      const west = gb[0] + gb[2] < mb[0] + mb[2];
      const corners = [[west, south], [!west, south], [west, !south], [!west, !south]];
      // Nearest its true direction first, then smaller.
      for (const [left, bottom] of corners) {
        for (const frac of [0.36, 0.3, 0.24]) {
          const gp = fit(gb, frac * Math.min(w, h) - 2 * pad, proj.s);
          const fw = gp.w + 2 * pad;
          const fh = gp.h + 2 * pad;
          const x = left ? 0 : w - fw;
          const y = bottom ? h - fh : 0;
          if (isEmpty(main, x, y, fw, fh)) {
            place(g, x, y, gp);
            return { w, h, frames, proj };
          }
        }
      }
    }
    // No room inside: a row of insets under the map.
    let x = 0;
    const y = h + 12;
    let rowH = 0;
    for (const g of groups) {
      const gp = fit(unionBounds(g), 0.25 * Math.min(w, h) - 2 * pad, proj.s);
      place(g, x, y, gp);
      x += gp.w + 2 * pad + 12;
      rowH = Math.max(rowH, gp.h + 2 * pad);
    }
    return { w: Math.max(w, x - 12), h: y + rowH, frames, proj };
  }

  // isEmpty tells whether a rectangle of the drawing, with a margin, holds
  // no part of the units: no vertex inside, and no sample point inside a ring.
  function isEmpty(units, x, y, w, h) {
    const m = 6;
    for (const u of units) {
      for (const r of u.xy) {
        for (let i = 0; i < r.length; i += 2) {
          if (r[i] > x - m && r[i] < x + w + m && r[i + 1] > y - m && r[i + 1] < y + h + m) return false;
        }
      }
    }
    for (let i = 0; i <= 4; i++) {
      for (let j = 0; j <= 4; j++) {
        const px = x + (w * i) / 4;
        const py = y + (h * j) / 4;
        for (const u of units) for (const r of u.xy) if (inRing(r, px, py)) return false;
      }
    }
    return true;
  }

  function inRing(r, px, py) {
    let inside = false;
    for (let i = 0, j = r.length - 2; i < r.length; j = i, i += 2) {
      if ((r[i + 1] > py) !== (r[j + 1] > py) && px < ((r[j] - r[i]) * (py - r[i + 1])) / (r[j + 1] - r[i + 1]) + r[i]) inside = !inside;
    }
    return inside;
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

  function rampColour(t) {
    const x = Math.max(0, Math.min(1, t)) * (RAMP_RGB.length - 1);
    const i = Math.min(Math.floor(x), RAMP_RGB.length - 2);
    const f = x - i;
    const a = RAMP_RGB[i];
    const b = RAMP_RGB[i + 1];
    return '#' + a.map((v, j) => Math.round(v + (b[j] - v) * f).toString(16).padStart(2, '0')).join('');
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
    const label = kpiName(id);
    let lo = Infinity;
    let hi = -Infinity;
    let n = 0;
    for (const code of Object.keys(map.children)) {
      const v = mapValue(code);
      if (v === null) continue;
      n++;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    // Rates on a fixed 0–100% scale, so colours mean the same from one day to
    // the next; counts from zero to the largest.
    const max = RATES.has(id) ? 1 : Math.max(1, hi);
    for (const [code, p] of map.paths) {
      const v = mapValue(code);
      const raw = v === null ? '' : String(v);
      const fill = v === null ? NO_DATA_FILL : rampColour(v / max);
      const text = `${mapName(code)} (${code}): ${label} ${v === null ? 'không có số liệu' : format(id, v)}`;
      if (p.raw !== raw) { p.el.setAttribute('data-value', raw); p.raw = raw; }
      if (p.fill !== fill) { p.el.setAttribute('fill', fill); p.fill = fill; }
      if (p.label !== text) { p.el.setAttribute('aria-label', text); p.label = text; }
    }
    const svg = $('map').querySelector('svg');
    if (svg) svg.setAttribute('aria-label', `${$('map-title').textContent} theo ${label.toLowerCase()}; phím mũi tên để chuyển, Enter để chọn`);
    $('legend-min').textContent = format(id, 0);
    $('legend-max').textContent = format(id, max);
    $('legend-range').textContent = n ?
      `thấp nhất ${format(id, lo)} · cao nhất ${format(id, hi)} · ${intFmt.format(n)}/${intFmt.format(Object.keys(map.children).length)} đơn vị có số liệu` :
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
    line.textContent = `${kpiName(map.kpi)}: ${v === null ? 'không có số liệu' : format(map.kpi, v)}`;
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
  function alarmsTopic() { return 'alarms/' + state.area; }
  function devicesTopic() { return 'devices/' + state.area; }
  function eventsTopic() { return 'events/' + state.area; }

  // opsPart tells which of those parts a topic feeds; null for figures.
  function opsPart(topic) {
    if (topic === alarmsTopic()) return { off: alarmsOff };
    if (topic === devicesTopic()) return { off: devicesOff };
    if (topic === eventsTopic()) return { off: eventsOff };
    return null;
  }

  const SEVERITIES = {
    critical: { rank: 0, label: 'Nghiêm trọng', en: 'Critical' },
    warning: { rank: 1, label: 'Cảnh báo', en: 'Warning' },
    info: { rank: 2, label: 'Thông tin', en: 'Info' },
  };
  const sevRank = (s) => (SEVERITIES[s] ? SEVERITIES[s].rank : 3);
  const sevLabel = (s) => (SEVERITIES[s] ? SEVERITIES[s].label : s || '');

  const EVENT_TYPES = {
    traffic_violation: 'Vi phạm giao thông', congestion: 'Ùn tắc giao thông', accident: 'Tai nạn', wrong_way: 'Đi ngược chiều',
    illegal_parking: 'Đỗ xe sai quy định', plate_read: 'Nhận dạng biển số', crowd: 'Tụ tập đông người', intrusion: 'Xâm nhập',
    line_crossing: 'Vượt vạch', loitering: 'Lảng vảng', abandoned_object: 'Vật thể bỏ quên', fight: 'Ẩu đả', fire: 'Cháy',
    smoke: 'Khói', flooding: 'Ngập nước', motion: 'Chuyển động', video_loss: 'Mất tín hiệu video', tamper: 'Phá hoại camera',
  };
  const eventLabel = (t) => EVENT_TYPES[t] || String(t || '').replace(/_/g, ' ');

  const READINGS = {
    pm25: ['PM2.5', 'µg/m³', 1], pm10: ['PM10', 'µg/m³', 1], no2: ['NO₂', 'µg/m³', 1], o3: ['O₃', 'µg/m³', 1], so2: ['SO₂', 'µg/m³', 1],
    co: ['CO', 'mg/m³', 2], aqi: ['AQI', '', 0], temperature: ['Nhiệt độ', '°C', 1], humidity: ['Độ ẩm', '%', 0],
    water_level: ['Mực nước', 'm', 2], water_flow: ['Lưu lượng', 'm³/s', 2], rainfall: ['Lượng mưa', 'mm', 1],
    noise: ['Tiếng ồn', 'dB', 0], wind_speed: ['Gió', 'm/s', 1],
  };

  // The server's clock and zone: ages count from the server's now, and
  // times read as on the server, as the as-of time in the header does.
  const clock = { skew: 0, offset: null }; // ms server − browser; minutes east of UTC

  // learnOffset takes the zone of an indicator snapshot's as_of, which the
  // server writes in the deployment's time zone.
  function learnOffset(s) {
    if (typeof s !== 'string') return;
    const m = /([+-])(\d{2}):(\d{2})$/.exec(s);
    if (m) clock.offset = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
    else if (/Z$/.test(s)) clock.offset = 0;
  }

  function learnSkew(s) {
    const t = asOfTime(s);
    if (!t) return;
    const skew = t - Date.now();
    // as_of is whole seconds and a moment old on arrival: only a real gap counts.
    clock.skew = Math.abs(skew) > 5000 ? skew : 0;
  }

  const p2 = (n) => String(n).padStart(2, '0');

  // clockText is "14:05:09", or with the date "14:05:09 31/12/2025".
  function clockText(iso, withDate) {
    const t = asOfTime(iso);
    if (!t) return '';
    const off = clock.offset === null ? -new Date(t).getTimezoneOffset() : clock.offset;
    const d = new Date(t + off * 60000);
    const hms = `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
    return withDate ? `${hms} ${p2(d.getUTCDate())}/${p2(d.getUTCMonth() + 1)}/${d.getUTCFullYear()}` : hms;
  }

  // ageText is how long ago: "vừa xong" (just now), "12 phút", "3 giờ 5 phút", "2 ngày".
  function ageText(iso) {
    const t = asOfTime(iso);
    if (!t) return '';
    const min = Math.max(0, Math.floor((Date.now() + clock.skew - t) / 60000));
    if (min < 1) return 'vừa xong';
    if (min < 60) return `${min} phút`;
    const h = Math.floor(min / 60);
    if (h < 24) return min % 60 ? `${h} giờ ${min % 60} phút` : `${h} giờ`;
    return `${Math.floor(h / 24)} ngày`;
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

  function deviceLabel(id, name, kind) {
    const k = kind === 'camera' ? 'Camera' : kind === 'sensor' ? 'Cảm biến' : '';
    const n = name && name !== id ? `${name} (${id})` : id || '';
    return k ? `${k} ${n}` : n;
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function setAttr(el, name, value) {
    if (value === null || value === undefined) {
      if (el.hasAttribute(name)) el.removeAttribute(name);
    } else if (el.getAttribute(name) !== String(value)) {
      el.setAttribute(name, value);
    }
  }

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
    const parts = String(tok).split('.');
    if (parts.length !== 3) return true; // not a JWT (the admin token)
    try {
      let b = parts[1].replace(/-/g, '+').replace(/_/g, '/');
      while (b.length % 4) b += '=';
      const role = JSON.parse(atob(b)).role;
      return typeof role !== 'string' || role === 'operator' || role === 'admin';
    } catch (e) {
      return true;
    }
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

  // Most severe first; of those, the ones nobody has taken in hand; then the newest.
  function compareAlarms(a, b) {
    return sevRank(a.severity) - sevRank(b.severity) ||
      (a.state === 'open' ? 0 : 1) - (b.state === 'open' ? 0 : 1) ||
      asOfTime(b.opened_at) - asOfTime(a.opened_at) ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
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
    setText($('alarm-count'), list.length ? `${intFmt.format(list.length)}${crit ? ` · ${intFmt.format(crit)} nghiêm trọng` : ''}` : '');
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
    setText(r.age, ageText(a.opened_at));
    r.age.title = `Mở lúc ${clockText(a.opened_at, true)} (opened at)`;
    setText(r.rule, a.rule_name || a.rule_id || '');
    r.rule.title = a.rule_id || '';
    const place = areaName(a.area_code);
    setText(r.where, [deviceLabel(a.device_id, a.device_name, a.device_kind), place].filter(Boolean).join(' · '));
    setText(r.msg, a.message || '');
    r.msg.hidden = !a.message;
    if (a.state === 'acknowledged') {
      const by = a.acknowledged_by || '?';
      const at = a.acknowledged_at ? ` lúc ${clockText(a.acknowledged_at)}` : '';
      setText(r.ack, `Đã xác nhận bởi ${by}${at}${a.ack_note ? ' — ' + a.ack_note : ''}`);
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
    for (const r of alarms.rows.values()) if (r.a) setText(r.age, ageText(r.a.opened_at));
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
      done = await post('/api/v1/alarms/' + encodeURIComponent(id) + '/' + action, { note: '' });
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

  const DEVICE_R = 7; // in the map's units: MAP_SIZE along its longer side
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

  // devicePoint projects a device as the map drew its unit: a unit in an
  // inset has a projection of its own.
  function devicePoint(d) {
    const lat = Number(d.lat);
    const lon = Number(d.lon);
    if (!isFinite(lat) || !isFinite(lon) || (lat === 0 && lon === 0)) return null;
    let p = map.projs.get(d.area_code);
    if (!p) {
      for (const ins of map.insets) {
        if (ins.rings.some((r) => inRing(r, lon, lat))) {
          p = ins.proj;
          break;
        }
      }
    }
    p = p || map.mainProj;
    if (!p) return null;
    return [(p.ox + (lon - p.x0) * p.k * p.s).toFixed(1), (p.oy + (p.y1 - lat) * p.s).toFixed(1)];
  }

  function deviceText(d, status, alarmed) {
    const lines = [deviceLabel(d.id, d.name, d.kind)];
    let st = status === 'online' ? 'đang hoạt động (online)' : 'mất kết nối (offline)';
    if (d.last_seen) st += ` · lần cuối ${clockText(d.last_seen, true)}`;
    const place = areaName(d.area_code);
    lines.push(place ? `${st} · ${place}` : st);
    const latest = d.latest && typeof d.latest === 'object' ? d.latest : {};
    for (const kind of Object.keys(latest).sort()) {
      const r = latest[kind];
      if (!r || typeof r.value !== 'number') continue;
      const [label, unit, digits] = READINGS[kind] || [kind, '', 2];
      lines.push(`${label}: ${decFmt(digits).format(r.value)}${unit ? ' ' + unit : ''}${r.observed_at ? ' (' + clockText(r.observed_at) + ')' : ''}`);
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
    const listed = [];
    const ids = new Set();
    for (const e of d.events) {
      if (!e || typeof e !== 'object' || typeof e.event_id !== 'string' || ids.has(e.event_id)) continue;
      ids.add(e.event_id);
      listed.push({ id: e.event_id, e });
    }
    const folded = Number(d.folded) > 0 ? Math.floor(Number(d.folded)) : 0;
    const fresh = listed.concat(folded ? [{ more: folded }] : []);
    let entries;
    if (snapshot) {
      entries = fresh;
    } else {
      const old = ticker.entries.filter((x) => !x.id || !ids.has(x.id));
      entries = fresh.concat(old);
    }
    // Counts side by side are one count.
    const merged = [];
    for (const x of entries) {
      const last = merged[merged.length - 1];
      if (x.more && last && last.more) merged[merged.length - 1] = { more: last.more + x.more };
      else merged.push(x);
    }
    ticker.entries = merged.slice(0, TICKER_MAX);
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
    setText(more, folded ? `+${intFmt.format(folded)} sự kiện khác` : '');
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
    t.textContent = clockText(e.occurred_at);
    t.title = clockText(e.occurred_at, true);
    const type = document.createElement('span');
    type.className = 'ev-type';
    type.textContent = eventLabel(e.type);
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
    for (const t of state.topics) {
      if (opsPart(t)) kept.add(t);
      else send('unsubscribe', t);
    }
    state.topics = kept;
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
    const h = document.createElement('h2');
    h.textContent = title;
    const parts = [h];
    for (const s of [text, hint]) {
      if (!s) continue;
      const p = document.createElement('p');
      p.textContent = s;
      parts.push(p);
    }
    el.replaceChildren(...parts);
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
    clearTimeout(live.timer);
    if (live.ws) {
      const ws = live.ws;
      live.ws = null;
      ws.close(1000);
    }
    setConnection('offline');
    $('content').hidden = true;
    hideNotice();
    showMessage(title, text, hint);
  }

  function noToken() {
    const el = $('message');
    const h = document.createElement('h2');
    h.textContent = 'Chưa có mã truy cập (no access token)';
    const p1 = document.createElement('p');
    p1.append('Hãy mở trang bằng đường dẫn mà lệnh ');
    const mk = document.createElement('code');
    mk.textContent = 'make run';
    p1.append(mk, ' in ra, có dạng:');
    const ex = document.createElement('pre');
    ex.textContent = `${location.origin}/?access_token=<JWT>&area=${state.area}`;
    const p2 = document.createElement('p');
    p2.append('hoặc thêm ');
    const q = document.createElement('code');
    q.textContent = '?access_token=…';
    p2.append(q, ' vào địa chỉ trang. Tạo mã xem bằng ');
    const cmd = document.createElement('code');
    cmd.textContent = `iocd token --role viewer --area ${state.area}`;
    p2.append(cmd, '.');
    const p3 = document.createElement('p');
    p3.className = 'en';
    p3.textContent = 'Open this page with the URL printed by make run, or add ?access_token=… to the address.';
    el.replaceChildren(h, p1, ex, p2, p3);
    el.hidden = false;
    setConnection('offline');
  }

  // ---- start ----------------------------------------------------------------

  function start() {
    state.token = takeToken();
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
    $('legend-ramp').style.backgroundImage = 'linear-gradient(90deg, ' + RAMP.join(', ') + ')';
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
})();
