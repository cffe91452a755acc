// The findings of a job, read from its sites through the master a page at a time:
// facets by site, classifier and data source (applied by the master), masked
// samples only (the sites mask them), and a CSV export of the filtered view.

import { api, q } from './api.js';
import { h, replace, errorBox } from './dom.js';
import { num } from './format.js';
import { go, current } from './route.js';

const FACETS = [['site', 'fsite', 'Site'], ['classifier', 'fclassifier', 'Classifier'], ['data_source', 'fds', 'Data source']];

export function findingsTable(jobId, params, getView) {
  const facetsEl = h('form', { class: 'facets', id: 'facets', 'aria-label': 'Filter findings' });
  const body = h('tbody', { id: 'findings-body' });
  const err = h('div');
  const pager = h('div', { class: 'row pager' });
  const exportMsg = h('span', { id: 'export-msg', role: 'status' });
  const chosen = Object.fromEntries(FACETS.map(([api_, url]) => [api_, params.get(url) || '']));
  const cursor = params.get('fcursor') || '';

  function setParam(changes) {
    const { parts, params: p } = current();
    for (const [k, v] of Object.entries(changes)) { if (v) p.set(k, v); else p.delete(k); }
    go(parts, p);
  }

  function options(kind) {
    const v = getView();
    if (kind === 'site') return v.sites.map((s) => [s.site, s.findings.total]);
    if (kind === 'classifier') return Object.entries(v.findings.by_classifier);
    return Object.entries(v.findings.by_data_source).map(([ds, s]) => [ds, s.findings]);
  }

  function facets() {
    replace(facetsEl, FACETS.map(([kind, url, label]) => h('label', {}, label,
      h('select', { id: `facet-${kind}`, name: url, on: { change: (e) => setParam({ [url]: e.target.value, fcursor: '' }) } },
        h('option', { value: '', text: 'all' }),
        options(kind).map(([k, n]) => h('option', { value: k, selected: chosen[kind] === k, text: `${k} (${num(n)})` }))))),
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'export-csv', on: { click: exportCsv } }, 'Export CSV (this filter)'), exportMsg));
  }

  async function load() {
    try {
      const page = await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/findings${q({ ...chosen, cursor, limit: 100 })}`);
      replace(body, page.items.length ? page.items.map((f) => h('tr', { 'data-finding': f.finding_id },
        h('td', { text: f.site }), h('td', {}, h('code', { text: f.data_source })), h('td', { class: 'opt' }, f.object),
        h('td', { text: f.classifier }), h('td', { class: 'opt', text: f.location }), h('td', { class: 'num', text: num(f.count) }),
        h('td', {}, h('code', { text: f.masked_sample })), h('td', { class: 'num opt', text: f.confidence.toFixed(2) })))
        : h('tr', {}, h('td', { colspan: '8', class: 'muted', text: 'No finding matches.' })));
      replace(pager,
        cursor ? h('button', { type: 'button', on: { click: () => setParam({ fcursor: '' }) } }, '⇤ First page') : null,
        page.next_cursor ? h('button', { type: 'button', id: 'findings-next', on: { click: () => setParam({ fcursor: page.next_cursor }) } }, 'Next page →') : null);
      replace(err);
    } catch (e) { replace(err, errorBox(e)); }
  }

  async function exportCsv() {
    exportMsg.textContent = 'Exporting…';
    try {
      const resp = await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/findings${q({ ...chosen, format: 'csv' })}`, { raw: true, accept: 'text/csv' });
      const blob = await resp.blob();
      const text = await blob.text();
      const rows = Math.max(0, text.split('\n').filter(Boolean).length - 1);
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: `findings-${jobId}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      // The download has its own copy once started; the blob would live until unload.
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      exportMsg.textContent = `Exported ${rows} finding(s).`;
      exportMsg.dataset.rows = String(rows);
    } catch (e) { exportMsg.textContent = `Export failed: ${e.message}`; }
  }

  const el = h('section', { 'aria-label': 'Findings table' }, facetsEl, err,
    h('div', { class: 'table-wrap' }, h('table', { id: 'findings' },
      h('thead', {}, h('tr', {}, ['Site', 'Data source', 'Object', 'Classifier', 'Location', 'Count', 'Masked sample', 'Confidence']
        .map((t, i) => h('th', { class: [2, 4, 7].includes(i) ? 'opt' : (i === 5 ? 'num' : ''), text: t })))),
      body)), pager);
  return { el, load, facets };
}
