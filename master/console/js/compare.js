// Compare a job with an earlier run of the same definition (same name): findings
// that are new and findings that are resolved, keyed by site, data source, object,
// classifier and location, and how long each site took in each run.

import { api, q } from './api.js';
import { h, replace, pill, errorBox } from './dom.js';
import { jobStatus, time, duration, num } from './format.js';
import { shown } from './live.js';
import { go, href } from './route.js';

/** Most findings read per run; beyond that the comparison says it is partial. */
const MAX_ROWS = 20000;

/** The job's findings as the export streams them, reading no further than MAX_ROWS
 * (the master walks every site's pages as long as the stream is read). */
async function allFindings(id) {
  const resp = await api(`/api/v1/jobs/${encodeURIComponent(id)}/findings?format=jsonl`,
    { raw: true, accept: 'application/x-ndjson' });
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  const rows = [];
  let rest = '';
  let partial = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const lines = (rest + value).split('\n');
    rest = lines.pop();
    for (const l of lines) {
      if (!l) continue;
      if (rows.length === MAX_ROWS) { partial = true; break; }
      rows.push(JSON.parse(l));
    }
    // Cancelling the stream closes the request: the master stops reading sites.
    if (partial) { await reader.cancel(); break; }
  }
  if (!partial && rest) rows.push(JSON.parse(rest));
  return { rows, partial };
}

const key = (f) => [f.site, f.data_source, f.object, f.classifier, f.location].join('\u001f');

function secondsBetween(a, b) {
  if (!a || !b) return null;
  return (new Date(b).getTime() - new Date(a).getTime()) / 1000;
}

function findingRows(list) {
  if (!list.length) return h('p', { class: 'muted', text: 'None.' });
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, ['Site', 'Data source', 'Object', 'Classifier', 'Location', 'Masked sample'].map((t) => h('th', { text: t })))),
    h('tbody', {}, list.slice(0, 200).map((f) => h('tr', {}, h('td', { text: f.site }), h('td', { text: f.data_source }),
      h('td', { text: f.object }), h('td', { text: f.classifier }), h('td', { text: f.location }), h('td', {}, h('code', { text: f.masked_sample })))))),
  list.length > 200 ? h('p', { class: 'muted' }, `First 200 of ${num(list.length)}.`) : null);
}

export async function render(main, { id, params }) {
  const job = await api(`/api/v1/jobs/${encodeURIComponent(id)}`);
  const earlier = await api(`/api/v1/jobs${q({ name: job.name, created_before: job.created_at, limit: 50 })}`);
  const runs = earlier.items.filter((j) => j.name === job.name && j.job_id !== id);
  const withId = params.get('with') || (runs[0] && runs[0].job_id) || '';
  const out = h('div', { id: 'comparison' });
  const picker = h('form', { class: 'filters', on: { submit: (e) => { e.preventDefault(); go(['jobs', id, 'compare'], { with: sel.value }); } } });
  const sel = h('select', { id: 'compare-with', name: 'with' }, runs.map((r) => h('option', { value: r.job_id, selected: r.job_id === withId, text: `${time(r.created_at)} — ${jobStatus(r.state).word}` })));
  replace(picker, h('label', {}, 'Earlier run', sel), h('button', { type: 'submit' }, 'Compare'));
  replace(main, h('h1', {}, 'Compare runs of ', h('a', { href: href(['jobs', id]), text: job.name })),
    runs.length ? picker : h('p', { class: 'notice', text: 'No earlier run of this job (same name) exists.' }), out);
  document.title = `Compare ${job.name} · Meridian`;
  if (!withId) return {};
  try {
    const [now, before, lines] = await Promise.all([allFindings(id), allFindings(withId),
      api(`/api/v1/job_summaries${q({ ids: `${id},${withId}` })}`)]);
    const a = new Map(before.rows.map((f) => [key(f), f]));
    const b = new Map(now.rows.map((f) => [key(f), f]));
    const added = now.rows.filter((f) => !a.has(key(f)));
    const resolved = before.rows.filter((f) => !b.has(key(f)));
    const cur = lines.find((l) => l.job_id === id);
    const old = lines.find((l) => l.job_id === withId);
    const siteNames = [...new Set([...(cur ? cur.sites : []), ...(old ? old.sites : [])].map((s) => s.site))].sort();
    const dur = (line, site) => {
      const p = line && line.sites.find((s) => s.site === site);
      return p ? secondsBetween(p.started_at, p.finished_at) : null;
    };
    replace(out,
      h('p', { id: 'compare-summary' }, pill(jobStatus(job.state)), ` ${num(added.length)} new finding(s), ${num(resolved.length)} resolved, ${num(now.rows.length - added.length)} still present.`),
      now.partial || before.partial ? h('p', { class: 'notice' }, `Only the first ${num(MAX_ROWS)} findings of each run were compared.`) : null,
      h('h2', { text: 'Per-site durations' }),
      h('div', { class: 'table-wrap' }, h('table', { id: 'durations' },
        h('thead', {}, h('tr', {}, h('th', { text: 'Site' }), h('th', { text: 'Earlier run' }), h('th', { text: 'This run' }))),
        h('tbody', {}, siteNames.map((s) => h('tr', {}, h('td', { text: s }), h('td', { text: duration(dur(old, s)) }), h('td', { text: duration(dur(cur, s)) })))))),
      h('h2', { text: 'New findings' }), findingRows(added),
      h('h2', { text: 'Resolved findings' }), findingRows(resolved));
    shown();
  } catch (e) { replace(out, errorBox(e)); }
  return {};
}
