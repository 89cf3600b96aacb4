// REST for the wall and the built-in page: the page's token (taken out of the URL), JSON reads
// shared by every widget that asks the same thing at the same time, and
// writes (acknowledgements, the editor's save) that bring back the
// server's field errors.

const TOKEN_KEY = 'ioc.access_token'; // one tab's token, whichever page took it

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body || null;
  }
}

// takeToken moves ?access_token= into sessionStorage and out of the
// visible URL (and so out of the history and of screenshots): a reload,
// such as the one a new server build asks for, still has it.
export function takeToken() {
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

export function forgetToken() {
  try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
}

// role reads the role a JWT claims, as a hint for what to offer (buttons
// a viewer could not use); '' for the admin token, which is not a JWT.
// The server decides: a 403 hides the buttons too.
export function roleOf(tok) {
  const parts = String(tok || '').split('.');
  if (parts.length !== 3) return tok ? 'admin' : '';
  try {
    let b = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    while (b.length % 4) b += '=';
    const role = JSON.parse(atob(b)).role;
    return typeof role === 'string' ? role : '';
  } catch (e) {
    return '';
  }
}

export class Api {
  constructor(token) {
    this.token = token;
    this.inflight = new Map(); // path → promise, so that widgets asking alike share one request
  }

  async request(method, path, body, accept) {
    const headers = { Authorization: 'Bearer ' + this.token, Accept: accept || 'application/json' };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'không kết nối được tới máy chủ (cannot reach the server)');
    }
    let answer = null;
    try { answer = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      const msg = answer && typeof answer.error === 'string' ? answer.error : `HTTP ${resp.status} ${resp.statusText}`;
      throw new ApiError(resp.status, msg, answer);
    }
    if (answer === null && method === 'GET') throw new ApiError(resp.status, 'máy chủ không trả về JSON (the server did not answer JSON)');
    return answer;
  }

  // get reads JSON; the same path asked again while the first is in
  // flight gets the same answer.
  get(path, accept) {
    let p = this.inflight.get(path);
    if (!p) {
      p = this.request('GET', path, undefined, accept).finally(() => this.inflight.delete(path));
      this.inflight.set(path, p);
    }
    return p;
  }

  post(path, body) { return this.request('POST', path, body); }
  put(path, body) { return this.request('PUT', path, body); }
}

// query writes parameters, leaving out empty ones.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;
