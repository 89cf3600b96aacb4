// The editor's screens panel: every screen of GET /api/v1/screens with
// its wall, what it shows, its state's version, when its page last
// reported and with which build; per screen the commands of POST
// /api/v1/screens/{id}/command (show a dashboard, play a playlist or its
// own schedule again, reload, identify); and, for admins, a new kiosk
// link (POST /api/v1/screens/{id}/tokens) shown with its QR code, and its
// revocation (POST /api/v1/tokens/{id}/revoke).
//
// The list is read every REFRESH ms, and again SOON after a command or a
// message on a screen's topic screen/{id} (its state changed). Every
// refusal shows the server's own message.
//
// The QR code is the server's SVG, shown as an <img> from a data: URL:
// the page's policy allows data: images, and an image runs no script
// whatever it holds.

import { ApiError, enc } from './api.js';
import { h } from './dom.js';
import { pick, ageText, timeText, zoned, WINDOWS } from './text.js';

const REFRESH = 15000;
const SOON = 300;

// bi is a label in Vietnamese with the English beside it, as the editor
// writes them.
function bi(vi, en) {
  return h('span', { class: 'sc-bi' }, vi, ' ', h('span', { lang: 'en' }, en));
}

// why is the server's message of a refusal, with the token it takes when
// the token was refused (need: which).
function why(e, need) {
  if (!(e instanceof ApiError)) return String(e && e.message ? e.message : e);
  if (e.status === 0) return e.message;
  if (e.status === 403) return `${e.message} (${need || 'cần mã điều hành hoặc quản trị · needs an operator or admin token'})`;
  return `${e.message} (HTTP ${e.status})`;
}

const ADMIN = 'cần mã quản trị · needs an admin token';

export class ScreensPanel {
  // root holds #sc-list and #sc-status; svc is the editor's (api, live,
  // clock, role).
  constructor(root, svc) {
    this.root = root;
    this.svc = svc;
    this.cards = new Map(); // screen id → card
    this.dashboards = []; // [{id, label}]
    this.playlists = [];
    this.timer = 0;
    this.soonTimer = 0;
    this.loading = null;
    this.again = false;
    this.wantDocuments = false;
  }

  async start() {
    this.root.querySelector('#sc-refresh').addEventListener('click', () => this.refresh(true));
    await this.refresh(true);
  }

  soon() {
    clearTimeout(this.soonTimer);
    this.soonTimer = setTimeout(() => this.refresh(false), SOON);
  }

  // refresh reads the screens (and, when documents, the dashboards and
  // playlists to choose from) and draws them. One read at a time: asked
  // during one, it reads once more after it.
  refresh(documents) {
    if (documents) this.wantDocuments = true;
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    clearTimeout(this.timer);
    const docs = this.wantDocuments;
    this.wantDocuments = false;
    this.loading = this.load(docs).finally(() => {
      this.loading = null;
      if (this.again) {
        this.again = false;
        this.refresh(false);
      } else {
        this.timer = setTimeout(() => this.refresh(false), REFRESH);
      }
    });
    return this.loading;
  }

  async load(documents) {
    const status = this.root.querySelector('#sc-status');
    const api = this.svc.api;
    let problem = '';
    if (documents) {
      try {
        const [d, p] = await Promise.all([api.get('/api/v1/dashboards'), api.get('/api/v1/playlists')]);
        this.dashboards = listed(d.dashboards);
        this.playlists = listed(p.playlists);
      } catch (e) {
        problem = ` · Không đọc được bảng điều khiển, danh sách phát (cannot read the dashboards and playlists): ${why(e)}`;
        this.root.dataset.error = String(e.status || 0);
      }
    }
    let list;
    try {
      list = await api.get('/api/v1/screens');
    } catch (e) {
      status.textContent = `Không đọc được danh sách màn hình (cannot list the screens): ${why(e)}${problem}`;
      this.root.dataset.error = String(e.status || 0);
      return;
    }
    const screens = Array.isArray(list.screens) ? list.screens : [];
    const seen = new Set();
    const ul = this.root.querySelector('#sc-list');
    for (const [i, l] of screens.entries()) {
      seen.add(l.id);
      let c = this.cards.get(l.id);
      if (!c) {
        c = this.card(l.id);
        this.cards.set(l.id, c);
        c.choices(this.dashboards, this.playlists);
      } else if (documents) {
        c.choices(this.dashboards, this.playlists);
      }
      c.update(l, this.svc.clock);
      // In the server's order, moving only what is out of place: a card
      // moved loses the focus of the field someone is typing in.
      if (ul.children[i] !== c.el) ul.insertBefore(c.el, ul.children[i] || null);
    }
    for (const [id, c] of this.cards) {
      if (seen.has(id)) continue;
      c.unwatch();
      c.el.remove();
      this.cards.delete(id);
    }
    status.textContent = screens.length
      ? `${screens.length} màn hình, đọc lúc ${timeText(Date.now(), this.svc.clock.offsetOr())} (${screens.length} screens, read at that time)`
      : 'Chưa có màn hình nào: tạo bằng PUT /api/v1/screens/{id} (no screens yet)';
    status.textContent += problem;
    if (!problem) delete this.root.dataset.error;
    this.root.dataset.loaded = String(Date.now());
  }

  card(id) {
    const admin = this.svc.role === 'admin';
    const dash = h('select', { data: { field: 'dashboard' }, 'aria-label': `bảng điều khiển cho ${id} (dashboard for ${id})` });
    const play = h('select', { data: { field: 'playlist' }, 'aria-label': `danh sách phát cho ${id} (playlist for ${id})` });
    const button = (op, vi, en) => h('button', { type: 'button', data: { op } }, vi, ' ', h('span', { lang: 'en' }, en));
    const showB = button('show', 'Chiếu', 'show');
    const playB = button('play', 'Phát', 'play');
    const reloadB = button('reload', 'Tải lại', 'reload');
    const identifyB = button('identify', 'Nhận diện', 'identify');
    const kioskB = admin ? button('kiosk', 'Liên kết kiosk mới', 'new kiosk link') : null;
    const f = {
      name: h('strong', { class: 'sc-name' }),
      wall: h('dd', { class: 'sc-wall' }),
      shows: h('dd', { class: 'sc-shows' }),
      version: h('dd', { class: 'sc-version' }),
      seen: h('dd', { class: 'sc-seen' }),
      build: h('dd', { class: 'sc-build' }),
      status: h('output', { class: 'sc-status', role: 'status' }),
      links: h('div', { class: 'sc-links' }),
    };
    const el = h('li', { class: 'sc-screen', data: { screen: id } },
      h('div', { class: 'sc-head' }, f.name),
      h('dl', { class: 'sc-facts' },
        h('dt', {}, bi('Tường', 'wall')), f.wall,
        h('dt', {}, bi('Đang chiếu', 'showing')), f.shows,
        h('dt', {}, bi('Phiên bản trạng thái', 'state version')), f.version,
        h('dt', {}, bi('Báo lần cuối', 'last seen')), f.seen,
        h('dt', {}, bi('Bản dựng', 'build')), f.build),
      h('div', { class: 'sc-actions' },
        h('span', { class: 'sc-group' }, dash, showB),
        h('span', { class: 'sc-group' }, play, playB),
        h('span', { class: 'sc-group' }, reloadB, identifyB, kioskB)),
      f.status,
      f.links);
    const panel = this;
    const c = {
      el,
      stop: null,
      choices(dashboards, playlists) {
        fill(dash, [['', '— chọn bảng điều khiển (choose a dashboard) —']].concat(dashboards.map((d) => [d.id, d.label])));
        fill(play, [['', 'Lịch riêng của màn hình (its own schedule)']].concat(playlists.map((p) => [p.id, p.label])));
        showB.disabled = !dash.value;
      },
      update(l, clock) {
        const st = l.state || {};
        const [vi, en] = pick(l.title);
        f.name.replaceChildren(vi || id, en ? h('span', { lang: 'en' }, ' ' + en) : '', ' · ', h('code', {}, id));
        f.wall.textContent = l.wall || '—';
        f.shows.replaceChildren(...shows(st, panel.dashboards, panel.playlists));
        f.version.replaceChildren(h('code', {}, l.version || '—'),
          l.page_version && l.page_version !== l.version ? bi(` · trang đang chiếu ${l.page_version}`, `the page shows ${l.page_version}`) : '');
        if (l.last_seen) {
          const at = Date.parse(l.last_seen);
          const [avi, aen] = ageText(at, Date.now());
          f.seen.replaceChildren(`${timeText(at, clock.offsetOr())} · `, bi(avi, aen));
        } else {
          f.seen.replaceChildren(bi('chưa báo', 'never reported'));
        }
        f.build.replaceChildren(l.page_build || '—',
          l.page_outdated ? h('span', { class: 'sc-outdated' }, ' ', bi(`cũ: máy chủ chạy ${st.build || '?'}`, 'outdated')) : '');
        el.dataset.dashboard = st.dashboard || '';
        el.dataset.playlist = st.playlist || '';
        el.dataset.version = l.version || '';
        el.dataset.override = String(!!st.override);
        el.dataset.takeover = String(!!st.takeover);
        el.dataset.lastSeen = l.last_seen || '';
        if (!c.stop && panel.svc.live) {
          // The screen's own topic: a change of what it shows is read at once.
          c.stop = panel.svc.live.watch(window.IOCLive.topic('screen', id), () => panel.soon(), () => {});
        }
      },
      unwatch() {
        if (c.stop) c.stop();
        c.stop = null;
      },
    };
    const status = (kind, ...text) => {
      f.status.dataset.kind = kind;
      f.status.replaceChildren(...text);
      el.dataset.result = kind;
    };
    const command = async (body, vi, en) => {
      status('pending', 'Đang gửi… (sending)');
      try {
        const r = await this.svc.api.post('/api/v1/screens/' + enc(id) + '/command', body);
        const others = (r.screens || []).filter((s) => s !== id);
        status('ok', bi(`Đã gửi: ${vi}`, `sent: ${en}`), others.length ? bi(` · cả tường: ${others.join(', ')}`, 'the whole wall') : '');
        el.dataset.sent = JSON.stringify(body);
        this.soon();
      } catch (e) {
        status('error', bi('Không gửi được', 'not sent'), ': ', why(e));
      }
    };
    dash.addEventListener('change', () => { showB.disabled = !dash.value; });
    showB.addEventListener('click', () => dash.value && command({ op: 'show', dashboard: dash.value }, `chiếu ${dash.value}`, `show ${dash.value}`));
    playB.addEventListener('click', () => (play.value
      ? command({ op: 'play', playlist: play.value }, `phát ${play.value}`, `play ${play.value}`)
      : command({ op: 'play' }, 'về lịch riêng', 'back to its own schedule')));
    reloadB.addEventListener('click', () => command({ op: 'reload' }, 'tải lại', 'reload'));
    identifyB.addEventListener('click', () => command({ op: 'identify' }, 'nhận diện', 'identify'));
    if (kioskB) {
      kioskB.addEventListener('click', async () => {
        kioskB.disabled = true;
        status('pending', 'Đang tạo liên kết… (issuing a link)');
        try {
          const kt = await this.svc.api.post('/api/v1/screens/' + enc(id) + '/tokens', {});
          f.links.prepend(this.linkBox(kt));
          status('ok', bi('Đã tạo liên kết kiosk', 'kiosk link issued'));
        } catch (e) {
          status('error', bi('Không tạo được liên kết', 'no link issued'), ': ', why(e, ADMIN));
        } finally {
          kioskB.disabled = false;
        }
      });
    }
    return c;
  }

  // linkBox shows an issued kiosk link: the QR code to scan, the link to
  // type, when it expires, and its revocation.
  linkBox(kt) {
    const offset = this.svc.clock.offsetOr();
    const exp = Date.parse(kt.expires_at);
    const z = zoned(exp, offset);
    const expires = Number.isNaN(exp) ? String(kt.expires_at) : `${z.y}-${pad(z.mo)}-${pad(z.d)} ${timeText(exp, offset, false)}`;
    const link = h('input', { class: 'sc-link', readonly: true, value: kt.url, size: Math.min(60, String(kt.url).length), spellcheck: 'false', 'aria-label': 'liên kết kiosk (kiosk link)' });
    link.addEventListener('focus', () => link.select());
    const qr = kt.qr_svg
      ? h('img', { class: 'sc-qr', src: 'data:image/svg+xml,' + encodeURIComponent(kt.qr_svg), alt: `Mã QR của ${kt.url} (QR code of the kiosk link)` })
      : h('p', { class: 'sc-noqr' }, bi('Không có mã QR: liên kết quá dài', 'no QR code: the link is too long'));
    const reason = h('input', { class: 'sc-reason', placeholder: 'lý do, ví dụ: thay máy (reason, e.g. PC replaced)', size: 30, 'aria-label': 'lý do thu hồi (reason to revoke)' });
    const revoke = h('button', { type: 'button', data: { op: 'revoke' } }, 'Thu hồi ', h('span', { lang: 'en' }, 'revoke'));
    const out = h('output', { class: 'sc-link-status', role: 'status' });
    const box = h('div', { class: 'sc-kiosk', data: { tokenId: kt.id, link: kt.url } },
      qr,
      h('div', { class: 'sc-kiosk-text' },
        h('p', {}, bi(`Liên kết kiosk của ${kt.screen}: mở hoặc quét trên máy của màn hình`, 'kiosk link: open or scan it on the screen\'s PC')),
        link,
        h('p', { class: 'sc-hint' }, bi('Hết hạn', 'expires'), ` ${expires} · `, bi('mã token', 'token id'), ` ${kt.id}`),
        h('p', { class: 'sc-hint' }, bi('Giữ kín: liên kết và mã QR thay cho mã token.', 'Keep them secret: the link and its QR code stand for the token.')),
        h('p', { class: 'sc-revoke' }, reason, ' ', revoke),
        out));
    revoke.addEventListener('click', async () => {
      revoke.disabled = true;
      out.dataset.kind = 'pending';
      out.textContent = 'Đang thu hồi… (revoking)';
      try {
        await this.svc.api.post('/api/v1/tokens/' + enc(kt.id) + '/revoke', { reason: reason.value });
        box.dataset.revoked = 'true';
        qr.remove();
        link.disabled = true;
        reason.disabled = true;
        out.dataset.kind = 'ok';
        out.replaceChildren(bi('Đã thu hồi: màn hình dùng liên kết này sẽ tắt trong vài giây', 'revoked: its screen goes blank within seconds'));
      } catch (e) {
        revoke.disabled = false;
        out.dataset.kind = 'error';
        out.replaceChildren(bi('Không thu hồi được', 'not revoked'), ': ', why(e, ADMIN));
      }
    });
    return box;
  }
}

// listed turns a GET /api/v1/{kind} answer's items into [{id, label}].
function listed(items) {
  return (Array.isArray(items) ? items : []).map((it) => {
    const doc = it.document || it.body || {};
    const [vi, en] = pick(doc.title);
    return { id: it.id, label: vi ? `${vi}${en ? ' · ' + en : ''} (${it.id})` : it.id };
  }).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const pad = (n) => String(n).padStart(2, '0');

function fill(select, options) {
  const keep = select.value;
  select.replaceChildren(...options.map(([v, label]) => h('option', { value: v }, label)));
  if (options.some(([v]) => v === keep)) select.value = keep;
}

// shows says what a screen's state has it show: the dashboard, its area
// and window, the playlist's step, a command in force, an alarm takeover,
// its part of a spanned dashboard.
function shows(st, dashboards, playlists) {
  const out = [];
  if (!st.dashboard) return [bi('chưa có bảng điều khiển', 'no dashboard')];
  const d = dashboards.find((x) => x.id === st.dashboard);
  out.push(h('code', { class: 'sc-dashboard' }, st.dashboard));
  if (d && d.label !== d.id) out.push(' ', h('span', { class: 'sc-title' }, d.label.replace(/ \([^)]*\)$/, '')));
  const w = WINDOWS[st.window];
  out.push(` · ${st.area || ''} · ${w ? w[0] : st.window || ''}`);
  if (st.playlist) {
    const p = playlists.find((x) => x.id === st.playlist);
    out.push(' · ', bi(`danh sách ${p ? p.label : st.playlist}, bước ${(st.step || 0) + 1}/${st.steps || 1}`, 'playlist step'));
  }
  if (st.part && st.part.columns * st.part.rows > 1) out.push(' · ', bi(`phần cột ${st.part.col + 1}, hàng ${st.part.row + 1} của ${st.part.columns}×${st.part.rows}`, 'part of a spanned dashboard'));
  if (st.override) out.push(' · ', h('strong', {}, bi('theo lệnh', 'by command')));
  if (st.takeover) out.push(' · ', h('strong', { class: 'sc-alarm' }, bi('CẢNH BÁO đang chiếm màn hình', 'alarm takeover')));
  return out;
}
