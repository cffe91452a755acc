// Sites first: one card per site with its reachability (unreachable and stale
// never in the healthy colour), when it was last heard, poll latency, certificate
// expiry and data sources.

import { api } from './api.js';
import { h, replace, pill, errorBox } from './dom.js';
import { siteStatus, ago, time, sinceIso } from './format.js';
import { shown } from './live.js';

function certLine(iso) {
  if (!iso) return h('span', { class: 'muted', text: 'not read yet' });
  const days = -sinceIso(iso) / 86400;
  if (days < 0) return pill({ cls: 'st-bad', icon: '✗', word: `expired ${time(iso)}` });
  if (days < 14) return pill({ cls: 'st-stale', icon: '⚠', word: `${time(iso)} (in ${Math.floor(days)} d)` });
  return h('span', {}, `${time(iso)} (in ${Math.floor(days)} d)`);
}

function card(s, sources) {
  const st = siteStatus(s);
  return h('article', { class: `card ${st.cls === 'st-bad' ? 'is-bad' : st.cls === 'st-stale' ? 'is-stale' : ''}`, 'data-site': s.name, 'data-state': st.cls },
    h('h2', {}, h('span', { text: s.name }), pill(st)),
    h('dl', {},
      h('dt', { text: 'Last heard' }), h('dd', { 'data-field': 'heard' }, ago(s.seen_seconds_ago)),
      h('dt', { text: 'Poll latency' }), h('dd', {}, s.latency_ms == null ? '—' : `${s.latency_ms} ms`),
      h('dt', { text: 'Failures in a row' }), h('dd', {}, String(s.consecutive_failures)),
      h('dt', { text: 'Certificate expires' }), h('dd', {}, certLine(s.certificate_not_after)),
      h('dt', { text: 'Data sources' }), h('dd', {}, sources.length
        ? h('ul', {}, sources.map((d) => h('li', {}, h('code', { text: d.id }), ` ${d.kind} — ${d.description}`)))
        : h('span', { class: 'muted', text: 'none known yet' })),
      h('dt', { text: 'URL' }), h('dd', {}, h('code', { text: s.url })),
      s.last_error ? [h('dt', { text: 'Last error' }), h('dd', { class: 'error', 'data-field': 'error' }, s.last_error)] : null));
}

export async function render(main) {
  const grid = h('div', { class: 'grid', id: 'sites-grid' });
  const err = h('div');
  async function refresh() {
    try {
      const [sites, sources] = await Promise.all([api('/api/v1/sites'), api('/api/v1/data_sources')]);
      replace(grid, sites.map((s) => card(s, sources.filter((d) => d.site === s.name))));
      replace(err);
      shown();
    } catch (e) { replace(err, errorBox(e)); }
  }
  replace(main, h('h1', { text: 'Sites' }), err, grid);
  document.title = 'Sites · Meridian';
  await refresh();
  return { refresh };
}
