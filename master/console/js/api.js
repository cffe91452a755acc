// Calls to the master's user API with the signed-in token. The token lives in
// sessionStorage only (gone with the tab), is sent as a header, and never appears
// in a URL or in the console's own messages.

const KEY = 'meridian.token';
const listeners = new Set();
const conn = { ok: true, lastOk: null, lastError: null };

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, message, details, requestId) {
    super(message);
    this.status = status;
    this.details = details;
    this.requestId = requestId;
  }
}

/** Called with the connection state whenever a call succeeds or cannot reach the master. */
export function onConnection(fn) { listeners.add(fn); fn(conn); }
export function connection() { return conn; }

function mark(ok, why) {
  conn.ok = ok;
  if (ok) conn.lastOk = Date.now(); else conn.lastError = why;
  listeners.forEach((fn) => fn(conn));
}

let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

/** JSON call; `raw: true` answers the Response (for exports). */
export async function api(path, { method = 'GET', body, accept, raw, signal, quiet401 } = {}) {
  const headers = { Accept: accept || 'application/json' };
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, signal, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    mark(false, 'the master cannot be reached');
    throw new ApiError(0, 'The master cannot be reached; what is shown may be out of date.');
  }
  mark(true);
  if (!resp.ok) {
    let msg = `HTTP ${resp.status}`;
    let details;
    let rid = resp.headers.get('x-request-id');
    try {
      const env = await resp.json();
      if (env && env.error) {
        msg = env.error.message || msg;
        details = env.error.details;
        rid = env.error.request_id || rid;
      }
    } catch (_) { /* not an envelope */ }
    if (resp.status === 401 && !quiet401) onUnauthorized(msg);
    throw new ApiError(resp.status, msg, details, rid);
  }
  if (raw) return resp;
  return resp.status === 204 ? null : resp.json();
}

export const q = (params) => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x)); else u.append(k, v);
  }
  const s = u.toString();
  return s ? `?${s}` : '';
};
