// The job list: filters and sort applied by the master, cursor paging (100 a page
// by default, 1,000 at most), one pill per site with its freshness, selection for
// bulk actions. Every filter and the page are in the address.

import { api, q } from './api.js';
import { h, replace, pill, errorBox } from './dom.js';
import { JOB_STATES, jobStatus, partStatus, pct, num, ago, sinceIso, time, toInput, fromInput } from './format.js';
import { frozen, shown } from './live.js';
import { go, clean, href } from './route.js';
import { bulkBar } from './bulk.js';

const SORTS = [['-created_at', 'Newest first'], ['created_at', 'Oldest first'], ['name', 'Name']];
const LIMITS = ['100', '250', '500', '1000'];
/** Job ids per job_summaries call. */
const SUMMARY_IDS = 100;

/** The filter in the address, as the API names it. */
export function filterOf(params) {
  const states = (params.get('state') || '').split(',').filter(Boolean);
  return {
    state: states,
    site: params.get('site') || '',
    name: params.get('name') || '',
    created_after: params.get('after') || '',
    created_before: params.get('before') || '',
  };
}

function filterForm(params, siteNames) {
  const f = filterOf(params);
  const form = h('form', { class: 'filters', id: 'filters', role: 'search', 'aria-label': 'Filter jobs', on: { submit: (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    go(['jobs'], clean({
      state: fd.getAll('state'),
      site: fd.get('site'),
      name: fd.get('name').trim(),
      after: fromInput(fd.get('after')),
      before: fromInput(fd.get('before')),
      sort: fd.get('sort') === '-created_at' ? '' : fd.get('sort'),
      limit: fd.get('limit') === '100' ? '' : fd.get('limit'),
    }));
  } } },
  h('fieldset', {}, h('legend', { text: 'State' }),
    JOB_STATES.map((s) => h('label', {}, h('input', { type: 'checkbox', name: 'state', value: s, checked: f.state.includes(s) }), jobStatus(s).word))),
  h('label', {}, 'Site', h('select', { name: 'site', id: 'f-site' }, h('option', { value: '', text: 'any' }),
    siteNames.map((n) => h('option', { value: n, selected: n === f.site, text: n })))),
  h('label', {}, 'Name (glob: * ?)', h('input', { name: 'name', id: 'f-name', value: f.name, placeholder: 'nightly*' })),
  h('label', {}, 'Created after', h('input', { type: 'datetime-local', name: 'after', id: 'f-after', value: toInput(f.created_after) })),
  h('label', {}, 'Created before', h('input', { type: 'datetime-local', name: 'before', id: 'f-before', value: toInput(f.created_before) })),
  h('label', {}, 'Sort', h('select', { name: 'sort', id: 'f-sort' },
    SORTS.map(([v, t]) => h('option', { value: v, text: t, selected: (params.get('sort') || '-created_at') === v })))),
  h('label', {}, 'Per page', h('select', { name: 'limit', id: 'f-limit' },
    LIMITS.map((v) => h('option', { value: v, text: v, selected: (params.get('limit') || '100') === v })))),
  h('div', { class: 'row' },
    h('button', { type: 'submit', id: 'f-apply' }, 'Apply'),
    h('a', { class: 'button', href: '#/jobs', text: 'Clear' })));
  return form;
}

function row(j, summary, selected, onSelect) {
  const st = jobStatus(j.state);
  const cb = h('input', { type: 'checkbox', 'aria-label': `Select ${j.name}`, checked: selected.has(j.job_id), 'data-select': j.job_id,
    on: { change: (e) => onSelect(j.job_id, e.target.checked) } });
  const parts = summary ? summary.sites : [];
  return h('tr', { 'data-job': j.job_id, class: selected.has(j.job_id) ? 'selected' : '' },
    h('td', {}, cb),
    h('td', {}, h('a', { href: href(['jobs', j.job_id]), text: j.name })),
    h('td', {}, pill(st), j.cancel_requested && j.state !== 'CANCELLED' ? h('span', { class: 'muted' }, ' cancel asked') : null),
    h('td', {}, h('div', { class: 'pills' }, parts.map((p) => pill(partStatus(p))))),
    h('td', { class: 'progress-cell' }, summary
      ? [h('progress', { max: '1', value: String(summary.progress), 'aria-label': `Progress of ${j.name}` }), ' ', pct(summary.progress)]
      : '—'),
    h('td', { class: 'num' }, summary ? num(summary.findings_total) : '—'),
    h('td', { class: 'opt', title: time(j.created_at) }, ago(sinceIso(j.created_at))));
}

export async function render(main, { params }, ctx) {
  const [sites] = await Promise.all([api('/api/v1/sites')]);
  const filter = filterOf(params);
  const limit = params.get('limit') || '100';
  const sort = params.get('sort') || '-created_at';
  const cursor = params.get('cursor') || '';
  const selected = new Set();
  const body = h('tbody', { id: 'jobs-body' });
  const err = h('div');
  const pager = h('div', { class: 'row pager' });
  const count = h('span', { id: 'selected-count', class: 'muted' });
  let page = { items: [] };
  let summaries = new Map();

  const bulk = ctx.can('jobs:cancel') ? bulkBar({ filter, selected, refresh: () => refresh(true) }) : null;
  function onSelect(id, on) {
    if (on) selected.add(id); else selected.delete(id);
    paintRows();
  }
  function paintRows() {
    replace(body, page.items.length
      ? page.items.map((j) => row(j, summaries.get(j.job_id), selected, onSelect))
      : h('tr', {}, h('td', { colspan: '7', class: 'muted', text: 'No job matches this filter.' })));
    count.textContent = selected.size ? `${selected.size} selected` : '';
    if (bulk) bulk.update();
  }
  async function refresh(force) {
    if (frozen() && !force) return;
    try {
      page = await api(`/api/v1/jobs${q({ ...filter, sort, limit, cursor })}`);
      const ids = page.items.map((j) => j.job_id);
      summaries = new Map();
      // 100 ids a call keep each URL near 4 KB: a page of 1,000 in one URL (~40 KB)
      // is refused by proxies in front of the master (ingress-nginx allows 8 KB).
      const calls = [];
      for (let i = 0; i < ids.length; i += SUMMARY_IDS) {
        calls.push(api(`/api/v1/job_summaries${q({ ids: ids.slice(i, i + SUMMARY_IDS).join(',') })}`));
      }
      (await Promise.all(calls)).flat().forEach((l) => summaries.set(l.job_id, l));
      replace(err);
      paintRows();
      const next = page.next_cursor;
      replace(pager,
        cursor ? h('a', { class: 'button', href: href(['jobs'], withCursor(params, '')), text: '⇤ First page' }) : null,
        next ? h('a', { class: 'button', id: 'next-page', href: href(['jobs'], withCursor(params, next)), text: 'Next page →' }) : null,
        h('span', { class: 'muted' }, `${page.items.length} job(s) on this page`));
      shown();
    } catch (e) { replace(err, errorBox(e)); }
  }
  const all = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select every job on this page', on: { change: (e) => {
    page.items.forEach((j) => (e.target.checked ? selected.add(j.job_id) : selected.delete(j.job_id)));
    paintRows();
  } } });
  replace(main,
    h('div', { class: 'row' }, h('h1', { text: 'Jobs' }), ctx.can('jobs:create') ? h('a', { class: 'button', href: '#/new', id: 'new-job' }, '+ New job') : null),
    filterForm(params, sites.map((s) => s.name)),
    bulk ? bulk.el : null, count, err,
    h('div', { class: 'table-wrap' }, h('table', { id: 'jobs' },
      h('caption', { class: 'sr-only', text: 'Jobs matching the filter' }),
      h('thead', {}, h('tr', {}, h('th', {}, all), h('th', { text: 'Name' }), h('th', { text: 'State' }), h('th', { text: 'Sites' }),
        h('th', { text: 'Progress' }), h('th', { class: 'num', text: 'Findings' }), h('th', { class: 'opt', text: 'Age' }))),
      body)),
    pager);
  document.title = 'Jobs · Meridian';
  await refresh(true);
  return { refresh: () => refresh(false) };
}

function withCursor(params, c) {
  const p = new URLSearchParams(params);
  if (c) p.set('cursor', c); else p.delete('cursor');
  return p;
}
