// The wall page: /wall/?dashboard=ops-79&area=79 shows a dashboard of
// GET /api/v1/dashboards/{id} for an area; /wall/?screen=s1 (a kiosk)
// follows the screen's state topic screen/{id}, which the server
// publishes: what to show now (dashboard, area, window, the part of a
// spanned wall), an alarm to take the screen over with, a name to flash,
// and when to reload. The token comes in ?access_token= once and is kept
// for the tab. Native ES modules, nothing fetched from outside.
//
// Timeline: performance marks 'wall-rendered' when the first dashboard
// has painted every widget, and the measure 'wall-first-render' runs
// from the HTML's arrival to it (the product's target is 3 s).

import { Api, ApiError, takeToken, forgetToken, roleOf, enc } from './api.js';
import { Live } from './socket.js';
import { Board } from './board.js';
import { Takeover } from './takeover.js';
import { h, bi } from './dom.js';
import { offsetOf, timeText } from './text.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
// The badge shows once the connection has been down this long (?stale=
// seconds overrides it, at least 1).
const STALE_AFTER = Math.max(1, Number(params.get('stale')) || 30) * 1000;
const SWAP_WAIT = 5000; // longest a new dashboard paints off screen before it replaces the old

const page = {
  svc: null,
  board: null, // the board shown (or about to be)
  boards: new Set(), // every board alive: the one shown, and those painting to replace it
  target: null, // what the board shows: {dashboard, area, window, part}
  gen: 0,
  fatal: false,
  screen: (params.get('screen') || '').trim(),
  screenState: null,
  stateTarget: null, // what the screen state last asked for
  firstState: null, // reload and build of the first screen state: a change reloads
  measured: false,
};

// clock: the deployment's zone (minutes east of UTC), learnt from the
// figures' as_of, which the server writes in it.
const clock = {
  offset: null,
  learn(asOf) {
    const o = offsetOf(asOf);
    if (o !== null) this.offset = o;
  },
  offsetOr() { return this.offset === null ? -new Date().getTimezoneOffset() : this.offset; },
  now() { return Date.now(); },
};

// areaName names a unit from its code, asking the API once per code;
// then calls back so the asker can redraw.
const names = new Map();
function areaName(code, then) {
  if (!code) return '';
  const known = names.get(code);
  if (typeof known === 'string') return known;
  if (!known) {
    const waiting = new Set();
    names.set(code, waiting);
    page.svc.api.get('/api/v1/areas/' + enc(code)).then((u) => {
      names.set(code, u && u.name ? u.name : code);
      for (const f of waiting) f();
    }, () => names.set(code, code));
  }
  const w = names.get(code);
  if (w instanceof Set && then) w.add(then);
  return '';
}

// ---- messages ---------------------------------------------------------------

function message(title, text, hint, kind) {
  const el = $('message');
  const parts = [h('h1', {}, title)];
  for (const s of [text, hint]) if (s) parts.push(h('p', {}, s));
  el.replaceChildren(...parts);
  el.dataset.kind = kind || 'info';
  el.hidden = false;
}

function hideMessage() { $('message').hidden = true; }

// fatal stops the page: it cannot show anything with this token.
function fatal(title, text, hint) {
  page.fatal = true;
  if (page.svc && page.svc.live) page.svc.live.close();
  for (const b of page.boards) b.destroy();
  page.boards.clear();
  page.board = null;
  if (page.takeover) page.takeover.hide();
  $('stage').replaceChildren();
  $('stale').hidden = true;
  document.documentElement.dataset.state = 'blank';
  message(title, text, hint, 'fatal');
}

function refused(e, what) {
  const status = e instanceof ApiError ? e.status : 0;
  if (status === 401) {
    forgetToken();
    fatal('Mã truy cập không hợp lệ hoặc đã hết hạn', e.message,
      'Mở lại trang bằng đường dẫn có ?access_token=… mới (the access token was refused: open the page with a fresh one).');
    return true;
  }
  if (status === 403) {
    fatal(`Mã truy cập này không được xem ${what}`, e.message, 'Dùng mã có quyền xem đơn vị này (use a token that covers this area).');
    return true;
  }
  return false;
}

// ---- showing a dashboard ------------------------------------------------------

// (rev is the dashboard document's revision in a screen's state: an
// admin's edit changes it, and the screen draws the new definition.)
function sameTarget(a, b) {
  return !!a && !!b && a.dashboard === b.dashboard && a.area === b.area && a.window === b.window &&
    (a.rev || '') === (b.rev || '') && JSON.stringify(a.part || null) === JSON.stringify(b.part || null);
}

// documentOf takes a dashboard from the API's answer (the document, or a
// stored version wrapping it).
function documentOf(r) {
  if (r && Array.isArray(r.widgets)) return r;
  for (const k of ['body', 'document', 'dashboard']) if (r && r[k] && Array.isArray(r[k].widgets)) return r[k];
  return null;
}

// show loads a dashboard and replaces the board once the new one has
// painted (a wall never goes blank between two dashboards).
async function show(t) {
  if (page.fatal) return;
  const gen = ++page.gen;
  page.target = t;
  let def;
  try {
    def = documentOf(await page.svc.api.get('/api/v1/dashboards/' + enc(t.dashboard)));
    if (!def) throw new ApiError(0, 'the answer holds no widgets');
  } catch (e) {
    if (gen !== page.gen || refused(e, `bảng điều khiển ${t.dashboard}`)) return;
    const status = e instanceof ApiError ? e.status : 0;
    if (status === 404) {
      message(`Không có bảng điều khiển "${t.dashboard}"`, e.message,
        'Kiểm tra ?dashboard= (GET /api/v1/dashboards lists them) — no such dashboard.', 'error');
      return;
    }
    message('Không tải được bảng điều khiển (cannot load the dashboard)', `${e.message} — thử lại sau 5 giây (retrying in 5 s)`, '', 'error');
    setTimeout(() => { if (gen === page.gen) show(t); }, 5000);
    return;
  }
  if (gen !== page.gen) return;
  const area = t.area || (def.area && def.area !== '$area' ? def.area : '');
  if (!area) {
    message(`Bảng "${t.dashboard}" cần một đơn vị (this dashboard needs an area)`, 'Thêm &area=… vào địa chỉ, ví dụ &area=79.', '', 'error');
    return;
  }
  const stage = $('stage');
  const holder = h('div', { class: 'holder' });
  // Painted under the one showing, laid out but unseen: widgets measure
  // what fits in their boxes.
  if (page.board) holder.classList.add('pending');
  stage.append(holder);
  const board = new Board(holder, {
    svc: page.svc, def, area, window: t.window || def.window || 'today', part: t.part || null,
    onDrill: (dashboard, child, opts) => drill(dashboard, child, opts),
  });
  const old = page.board;
  page.board = board;
  page.boards.add(board);
  const ready = board.start();
  hideMessage();
  document.documentElement.dataset.dashboard = def.id || t.dashboard;
  document.documentElement.dataset.area = area;
  document.title = `${(def.title && (def.title.vi || def.title.en)) || def.id} · IOC`;
  if (old) {
    await Promise.race([ready, new Promise((r) => setTimeout(r, SWAP_WAIT))]);
    if (page.board !== board) return; // replaced meanwhile: the newer one clears up
    holder.classList.remove('pending');
    board.resize(); // measured unseen; measure again as shown
  }
  // Every other board goes, with its timers and topics: a wall that
  // rotates for weeks holds one.
  for (const b of page.boards) if (b !== board) b.destroy();
  page.boards = new Set([board]);
  for (const el of Array.from(stage.children)) if (el !== holder) el.remove();
  await ready;
  if (page.board !== board) return;
  if (!page.measured) {
    page.measured = true;
    performance.mark('wall-rendered');
    const nav = performance.getEntriesByType('navigation')[0];
    const m = performance.measure('wall-first-render', { start: nav ? nav.responseEnd : 0, end: 'wall-rendered' });
    document.documentElement.dataset.firstRender = m.duration.toFixed(0);
  }
  document.documentElement.dataset.rendered = String(page.gen);
}

// drill opens a child's own dashboard from a map click, Back returns; a
// timed drill-down (returnAfter seconds) comes back by itself.
function drill(dashboard, area, opts) {
  clearTimeout(page.returnTimer);
  const prev = page.target;
  if (opts && opts.returnAfter > 0) {
    const t = { dashboard, area, window: '' };
    show(t);
    page.returnTimer = setTimeout(() => { if (page.target === t) show(prev); }, opts.returnAfter * 1000);
    return;
  }
  history.pushState({ dashboard, area, window: '' }, '', `?${page.screen ? 'screen=' + enc(page.screen) + '&' : ''}dashboard=${enc(dashboard)}&area=${enc(area)}`);
  page.back = prev;
  $('back').hidden = false;
  show({ dashboard, area, window: '' });
}

addEventListener('popstate', (ev) => {
  clearTimeout(page.returnTimer);
  const s = ev.state;
  if (s && s.dashboard) {
    show(s);
    return;
  }
  $('back').hidden = true;
  if (page.screen && page.screenState) followScreen(page.screenState, true);
  else if (page.home) show(page.home);
});

// ---- kiosk: the screen's state --------------------------------------------------

function followScreen(st, force) {
  if (!st || typeof st !== 'object') return;
  page.screenState = st;
  // Reload when told to, or when the server runs another build than the
  // one the page first met.
  if (!page.firstState) {
    page.firstState = { reload: st.reload, build: st.build };
  } else if (st.reload !== page.firstState.reload || (st.build && page.firstState.build && st.build !== page.firstState.build)) {
    document.documentElement.dataset.state = 'reloading';
    location.reload();
    return;
  }
  reportSeen();
  if (page.takeover) page.takeover.set(st.takeover || null, st);
  identify(st.identify_until);
  if (!st.dashboard) {
    message(`Màn hình ${page.screen} chưa được gán bảng điều khiển`, 'No dashboard is assigned to this screen yet: assign one with POST /api/v1/screens/{id}/command.', '', 'info');
    return;
  }
  const t = { dashboard: st.dashboard, area: st.area || '', window: st.window || '', part: st.part || null, rev: st.dashboard_rev || '' };
  // A hand drilling in is left alone until Back, or until the server
  // moves the screen on.
  if (!force && sameTarget(t, page.stateTarget)) return;
  page.stateTarget = t;
  clearTimeout(page.returnTimer);
  $('back').hidden = true;
  if (!sameTarget(t, page.target)) show(t);
}

let identifyTimer = 0;
function identify(until) {
  clearTimeout(identifyTimer);
  const end = Date.parse(until || '');
  const el = $('identify');
  if (!isFinite(end) || end <= clock.now()) {
    el.hidden = true;
    return;
  }
  const title = page.screenTitle ? [page.screenTitle.vi || '', page.screenTitle.en || ''] : ['', ''];
  el.replaceChildren(h('div', { class: 'identify-name' }, page.screen), bi('identify-title', title[0] || 'Nhận diện màn hình', title[1] || 'identify screen', 1));
  el.hidden = false;
  identifyTimer = setTimeout(() => { el.hidden = true; }, end - clock.now());
}

function watchScreen() {
  message(`Màn hình ${page.screen}: đang chờ máy chủ…`, 'Waiting for the server to say what this screen shows.', '', 'info');
  const name = window.IOCLive.topic('screen', page.screen);
  page.svc.live.watch(name, (st) => followScreen(st, false), (err) => {
    if (!page.screenState) message(`Máy chủ chưa cho biết màn hình ${page.screen} hiển thị gì`, err, 'The page keeps asking (' + name + ').', 'error');
  });
  // The screen's name, for identify; the wall's takeover settings (chime).
  page.svc.api.get('/api/v1/screens/' + enc(page.screen)).then((s) => {
    const d = documentOf(s) || s;
    if (d && d.title) page.screenTitle = d.title;
  }, () => { /* a name to flash is a nicety */ });
}

// reportSeen tells the server, for GET /api/v1/screens, that this screen
// is alive, which build it runs and which state version it shows: when
// the state changes (after the handler that applied it) and every minute.
// A report that fails is not retried: the next one says the same.
const SEEN_EVERY = 60000;
function reportSeen() {
  clearTimeout(page.seenTimer);
  page.seenTimer = setTimeout(reportSeen, SEEN_EVERY);
  queueMicrotask(() => {
    if (!page.screen || !page.firstState || page.fatal) return;
    const held = page.svc.live.held.get(window.IOCLive.topic('screen', page.screen));
    const version = held && typeof held.version === 'string' ? held.version : '';
    if (version === page.seenVersion && page.seenAt && clock.now() - page.seenAt < SEEN_EVERY / 2) return;
    page.seenVersion = version;
    page.seenAt = clock.now();
    page.svc.api.post('/api/v1/screens/' + enc(page.screen) + '/seen', { build: page.firstState.build || '', version }).catch(() => {});
  });
}

// ---- staleness ---------------------------------------------------------------

function checkStale() {
  const live = page.svc && page.svc.live;
  const el = $('stale');
  if (!live || page.fatal) return;
  const down = live.downSince;
  const stale = down > 0 && clock.now() - down >= STALE_AFTER;
  if (stale) {
    const since = live.lastHeard || down;
    const at = timeText(since, clock.offsetOr());
    el.replaceChildren(h('span', { class: 'stale-vi' }, `Số liệu cũ từ ${at}`), h('span', { class: 'stale-en', lang: 'en' }, `stale since ${at}`));
    el.dataset.since = new Date(since).toISOString();
  }
  el.hidden = !stale;
  document.documentElement.dataset.stale = String(stale);
}

// ---- start ------------------------------------------------------------------

async function start() {
  performance.mark('wall-start');
  const token = takeToken();
  if (!token) {
    fatal('Chưa có mã truy cập (no access token)',
      `Mở trang với ?access_token=…, ví dụ ${location.origin}/wall/?dashboard=ops-79&area=79&access_token=<JWT>`,
      'Tạo mã xem bằng: iocd token --role viewer --area 79 (a kiosk gets its URL from its screen\'s token).');
    return;
  }
  const api = new Api(token);
  const live = new Live(token, {
    onState: (st) => {
      document.documentElement.dataset.connection = st;
      if (page.board) for (const w of page.board.widgets) if (w.spec.type === 'header') page.board.schedule(w);
    },
    onRevoked: (reason) => {
      forgetToken();
      fatal('Màn hình đã bị thu hồi quyền truy cập', `${reason} (this screen's token was revoked)`,
        'Quản trị viên cấp mã mới cho màn hình này (an admin issues this screen a new token).');
    },
  });
  page.svc = { api, live, clock, role: roleOf(token), areaName, connection: () => live.state, catalog: null };
  page.takeover = new Takeover($('takeover'), page.svc);
  $('back').addEventListener('click', () => history.back());
  setInterval(checkStale, 1000);

  let cat;
  try {
    cat = await api.get('/api/v1/kpis');
  } catch (e) {
    if (!refused(e, 'số liệu')) {
      message('Không tải được danh mục chỉ số (cannot load the indicator catalog)', `${e.message} — thử lại (retrying)`, '', 'error');
      setTimeout(start, 5000);
    }
    return;
  }
  page.svc.catalog = { byId: new Map((cat.kpis || []).map((d) => [d.id, d])), list: cat.kpis || [], groups: cat.groups || [], windows: cat.windows || [] };

  if (page.screen) {
    watchScreen();
    return;
  }
  const dashboard = (params.get('dashboard') || '').trim();
  if (!dashboard) {
    message('Chưa chọn bảng điều khiển (no dashboard chosen)', 'Thêm ?dashboard=<id>&area=<mã đơn vị> vào địa chỉ, hoặc ?screen=<id> cho màn hình kiosk.',
      'Add ?dashboard=<id>&area=<unit code>, or ?screen=<id> for a kiosk screen.', 'error');
    return;
  }
  page.home = { dashboard, area: (params.get('area') || '').trim(), window: (params.get('window') || '').trim() };
  show(page.home);
}

window.IOCWall = { page, clock }; // for the tests and the console
start();
