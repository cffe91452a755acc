// Deep links: the view and every filter live in the hash (`#/jobs?state=RUNNING`),
// so a copied address reopens the same view, and Back walks through filters.

export function current() {
  const raw = location.hash.replace(/^#/, '') || '/jobs';
  const [path, query = ''] = raw.split('?');
  // A hand-typed or truncated address may not decode (`%E0`): keep such a part as
  // written, so the page shows "Not found" instead of nothing.
  const parts = path.split('/').filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch (_) { return p; }
  });
  return { parts, params: new URLSearchParams(query) };
}

export function href(parts, params) {
  const p = parts.map(encodeURIComponent).join('/');
  const s = params ? new URLSearchParams(params).toString() : '';
  return `#/${p}${s ? `?${s}` : ''}`;
}

export function go(parts, params) {
  const next = href(parts, params);
  if (location.hash === next) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = next;
}

/** Params without empty values, for building links. */
export function clean(obj) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) { if (v.length) u.set(k, v.join(',')); } else u.set(k, v);
  }
  return u;
}
