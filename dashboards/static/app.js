// The built-in IOC page: one unit's live dossier indicators and those of the
// units under it (a province and its communes). It reads a snapshot over
// REST, then follows the live websocket. Plain ES2017, nothing loaded from
// outside: control rooms are often air-gapped.
'use strict';

(() => {
  const TOKEN_KEY = 'ioc.access_token';
  const WINDOWS = ['today', '24h', '7d', '30d'];
  const COLUMNS = ['dossiers_received', 'online_rate', 'dossiers_resolved', 'on_time_rate', 'dossiers_overdue'];
  const RATES = new Set(['online_rate', 'on_time_rate']);
  const ON_TIME_WARNING = 0.9; // on-time rate below this is shown as a warning
  const MAX_BACKOFF = 30000;
  const RESORT_DELAY = 1000; // live re-sorting at most this often, so rows do not jitter

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
    sort: { key: 'name', dir: 1 },
    filter: '',
    loadGen: 0, // discards answers to a load that a newer one replaced
    loadTimer: 0,
    loadAttempt: 0,
    fatal: false,
  };
  const live = { ws: null, attempt: 0, timer: 0, retries: new Map() };
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

  async function api(path) {
    let resp;
    try {
      resp = await fetch(path, {
        headers: { Authorization: 'Bearer ' + state.token, Accept: 'application/json' },
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
      renderProvince(own);
      renderRows(kids.children || []);
      $('content').hidden = false;
      $('content').classList.remove('loading');
      state.topics = new Set([topicOf(state.area, win)].concat((kids.children || []).map((k) => topicOf(k.area, win))));
      live.retries.clear();
      if (live.ws && live.ws.readyState === WebSocket.OPEN) {
        for (const t of state.topics) send('subscribe', t);
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
    const ws = live.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ op, topic }));
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
      reconnectLater(false, 0);
      return;
    }
    live.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      setConnection('connected');
      for (const t of state.topics) send('subscribe', t);
    };
    ws.onmessage = (ev) => {
      live.attempt = 0; // the server talks to us: start the backoff again from 1s
      onMessage(ev.data);
    };
    ws.onclose = (ev) => {
      if (live.ws !== ws) return;
      live.ws = null;
      reconnectLater(opened, ev.code);
    };
  }

  function reconnectLater(opened, code) {
    if (state.fatal) return;
    const delay = backoff(live.attempt++);
    setConnection('reconnecting', delay, code);
    live.timer = setTimeout(connect, delay);
    // A refused handshake may be an expired token: ask REST, which says why.
    if (!opened) checkAccess();
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
    if (m.type === 'error') {
      topicRefused(m.topic, m.error);
      return;
    }
    if ((m.type === 'snapshot' || m.type === 'update') && m.data && m.data.window === state.window) {
      apply(m.data, true);
    }
  }

  // topicRefused shows why a subscription failed and retries it a few times:
  // the page only subscribes to units REST already let it read, so a refusal
  // is most likely storage being briefly unavailable.
  function topicRefused(topic, error) {
    showNotice(`Không theo dõi trực tiếp được ${topic || ''}: ${error || 'lỗi không rõ'}`);
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
        text = delay ? `Mất kết nối · thử lại sau ${Math.round(delay / 1000)} giây` : 'Đang kết nối lại…';
        title = 'Reconnecting' + (code === 1001 ? ' (the server is restarting)' : '');
        break;
      case 'offline': text = 'Ngắt kết nối'; title = 'Disconnected'; break;
    }
    el.textContent = text;
    el.title = title;
  }

  // ---- rendering ------------------------------------------------------------

  function format(id, v) {
    if (v === null || v === undefined || (typeof v === 'number' && !isFinite(v))) return '—';
    return RATES.has(id) ? pctFmt.format(v) : intFmt.format(v);
  }

  function isWarning(id, v) {
    if (typeof v !== 'number') return false;
    if (id === 'dossiers_overdue') return v > 0;
    if (id === 'on_time_rate') return v < ON_TIME_WARNING;
    return false;
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
      for (const id of COLUMNS) {
        const td = document.createElement('td');
        td.dataset.kpi = id;
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
  }

  // ---- window selector ------------------------------------------------------

  function setWindow(win) {
    if (!WINDOWS.includes(win) || win === state.window) return;
    for (const t of state.topics) send('unsubscribe', t);
    state.topics = new Set();
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
