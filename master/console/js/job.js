// One job: per-site progress (tasks and objects) with each site's freshness and
// plain errors, findings per classifier as a chart and per data source with its
// sensitivity, the findings table, cancel with confirmation, and a link to compare
// with an earlier run.

import { api } from './api.js';
import { h, replace, pill, errorBox } from './dom.js';
import { jobStatus, partStatus, levelStatus, pct, num, ago, time, FINAL } from './format.js';
import { shown } from './live.js';
import { href } from './route.js';
import { confirmDialog } from './bulk.js';
import { findingsTable } from './findings.js';

function siteCard(s) {
  const st = partStatus({ ...s, status_age_seconds: s.status_age_seconds });
  const objPct = s.objects.discovered ? s.objects.processed / s.objects.discovered : 0;
  return h('article', { class: `card ${st.cls === 'st-bad' ? 'is-bad' : st.cls === 'st-stale' ? 'is-stale' : ''}`, 'data-site': s.site, 'data-state': st.cls },
    h('h3', {}, pill(st)),
    h('dl', {},
      h('dt', { text: 'Tasks' }), h('dd', {}, h('progress', { max: '1', value: String(s.progress), 'aria-label': `${s.site} tasks` }), ` ${pct(s.progress)} of ${num(s.tasks_total)}`),
      h('dt', { text: 'Objects' }), h('dd', {}, h('progress', { max: '1', value: String(objPct), 'aria-label': `${s.site} objects` }), ` ${num(s.objects.processed)} / ${num(s.objects.discovered)}`),
      h('dt', { text: 'Findings' }), h('dd', {}, num(s.findings.total)),
      h('dt', { text: 'Last heard' }), h('dd', { 'data-field': 'heard' }, ago(s.status_age_seconds), s.stale ? ' — stale' : ''),
      h('dt', { text: 'Data sources' }), h('dd', {}, s.data_sources.join(', '))),
    s.error ? h('p', { class: 'error', 'data-field': 'error' },
      s.site_reachability === 'UNREACHABLE' ? `Site unreachable: ${s.error}` : s.error) : null);
}

function chart(byClassifier) {
  const entries = Object.entries(byClassifier).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return h('p', { class: 'muted', text: 'No findings yet.' });
  const max = Math.max(...entries.map(([, n]) => n));
  return h('div', { class: 'chart' },
    entries.map(([c, n]) => {
      const bar = h('div', { class: 'bar' });
      // CSSOM, not an inline style attribute: allowed by the policy.
      bar.style.width = `${Math.max(1, (100 * n) / max)}%`;
      return [h('span', {}, h('code', { text: c })), h('div', { class: 'bar-track', 'aria-hidden': 'true' }, bar),
        h('span', { class: 'num' }, num(n))];
    }));
}

function sources(byDs) {
  const rows = Object.entries(byDs);
  if (!rows.length) return h('p', { class: 'muted', text: 'No data source has findings yet.' });
  return h('div', { class: 'table-wrap' }, h('table', { id: 'by-source' },
    h('thead', {}, h('tr', {}, h('th', { text: 'Data source' }), h('th', { text: 'Sensitivity' }), h('th', { class: 'num', text: 'Findings' }),
      h('th', { class: 'num', text: 'Objects with findings' }), h('th', { text: 'Classifiers' }))),
    h('tbody', {}, rows.map(([ds, s]) => h('tr', {},
      h('td', {}, h('code', { text: ds })), h('td', {}, pill(levelStatus(s.level))), h('td', { class: 'num' }, num(s.findings)),
      h('td', { class: 'num' }, num(s.objects_with_findings)),
      h('td', {}, Object.entries(s.by_classifier).map(([c, n]) => `${c} ${n}`).join(', ')))))));
}

export async function render(main, { id, params }, ctx) {
  const head = h('div');
  const sitesEl = h('div', { class: 'sites-progress', id: 'site-parts' });
  const chartEl = h('div', { id: 'classifier-chart' });
  const sourcesEl = h('div');
  const err = h('div');
  const actions = h('div', { class: 'row', id: 'job-actions' });
  let view = await api(`/api/v1/jobs/${encodeURIComponent(id)}`);
  const findings = findingsTable(id, params, () => view);

  async function cancel() {
    if (!(await confirmDialog(`Cancel job “${view.name}” at every site?`))) return;
    try {
      view = await api(`/api/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
      paint();
    } catch (e) { replace(err, errorBox(e)); }
  }

  function paint() {
    const st = jobStatus(view.state);
    replace(head,
      h('div', { class: 'row' }, h('h1', { text: view.name }), h('span', { id: 'job-state' }, pill(st)),
        view.stale ? pill({ cls: 'st-stale', icon: '⚠', word: `stale: ${view.stale_sites.join(', ')}` }) : null),
      h('dl', { class: 'facts' },
        h('dt', { text: 'Job id' }), h('dd', {}, h('code', { text: view.job_id })),
        h('dt', { text: 'Created' }), h('dd', {}, time(view.created_at)),
        h('dt', { text: 'Objects' }), h('dd', {}, `${num(view.objects.processed)} processed of ${num(view.objects.discovered)} discovered`),
        h('dt', { text: 'Findings' }), h('dd', { id: 'findings-total' }, num(view.findings.total)),
        h('dt', { text: 'Options' }), h('dd', {}, h('code', { text: JSON.stringify(view.request.options || {}) }))));
    replace(actions,
      ctx.can('jobs:cancel') && !FINAL.includes(view.state) && view.state !== 'CANCELLING'
        ? h('button', { type: 'button', class: 'danger', id: 'cancel-job', on: { click: cancel } }, 'Cancel job…') : null,
      h('a', { class: 'button', href: href(['jobs', id, 'compare']), id: 'compare-link' }, 'Compare with an earlier run'),
      h('a', { class: 'button', href: '#/jobs', text: '← Jobs' }));
    replace(sitesEl, view.sites.map(siteCard));
    replace(chartEl, chart(view.findings.by_classifier));
    replace(sourcesEl, sources(view.findings.by_data_source));
    findings.facets();
  }

  let findingsFinal = false;

  async function refresh() {
    try {
      view = await api(`/api/v1/jobs/${encodeURIComponent(id)}`);
      replace(err);
      paint();
      // Findings change until the job is final; read them once more when it becomes
      // final (the last read may predate the last findings), then no more.
      if (!findingsFinal) {
        const final = FINAL.includes(view.state);
        await findings.load();
        findingsFinal = final;
      }
      shown();
    } catch (e) { replace(err, errorBox(e)); }
  }

  replace(main, head, actions, err,
    h('h2', { text: 'Sites' }), sitesEl,
    h('h2', { text: 'Findings per classifier' }), chartEl,
    h('h2', { text: 'Findings per data source' }), sourcesEl,
    h('h2', { text: 'Findings' }), findings.el);
  document.title = `${view.name} · Meridian`;
  paint();
  findingsFinal = FINAL.includes(view.state);
  await findings.load();
  return { refresh };
}
