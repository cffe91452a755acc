// Bulk cancel: the selection, or every job matching the current filter. The count
// comes first (a dry run for a filter), more than 10 jobs need the count typed
// back, and each job's outcome is listed afterwards.

import { api } from './api.js';
import { h, replace, errorBox } from './dom.js';

const TYPED_ABOVE = 10;

/** Asks for confirmation; resolves true when confirmed. */
export function confirmDialog(text, typed) {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  const box = document.getElementById('confirm-typed');
  const input = document.getElementById('confirm-input');
  const ok = document.getElementById('confirm-ok');
  box.hidden = !typed;
  input.value = '';
  input.required = !!typed;
  document.getElementById('confirm-label').textContent = typed ? `Type ${typed} to confirm` : '';
  ok.disabled = !!typed;
  input.oninput = () => { ok.disabled = input.value.trim() !== typed; };
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok' && (!typed || input.value.trim() === typed)), { once: true });
    d.returnValue = '';
    d.showModal();
    (typed ? input : ok).focus();
  });
}

function hasFilter(f) {
  return f.state.length || f.site || f.name || f.created_after || f.created_before;
}

function apiFilter(f) {
  const out = {};
  if (f.state.length) out.state = f.state;
  for (const k of ['site', 'name', 'created_after', 'created_before']) if (f[k]) out[k] = f[k];
  return out;
}

export function bulkBar({ filter, selected, refresh }) {
  const result = h('div', { id: 'bulk-result', 'aria-live': 'polite' });
  const sel = h('button', { type: 'button', id: 'cancel-selected', class: 'danger', disabled: true }, 'Cancel selected');
  const byFilter = h('button', { type: 'button', id: 'cancel-matching', class: 'danger', disabled: !hasFilter(filter),
    title: hasFilter(filter) ? '' : 'Set a filter first: cancelling every job is not offered' }, 'Cancel all matching the filter…');

  async function run(body, count) {
    const typed = count > TYPED_ABOVE ? String(count) : null;
    if (!(await confirmDialog(`Cancel ${count} job(s)? Jobs already finished are left as they are.`, typed))) return;
    try {
      const ans = await api('/api/v1/jobs/cancel', { method: 'POST', body });
      const n = (o) => ans.results.filter((r) => r.outcome === o).length;
      replace(result, h('div', { class: 'notice', role: 'status' },
        h('p', {}, `Cancel requested for ${n('cancelled')} job(s); ${n('already_final')} already finished; ${n('not_found')} not found.`,
          ans.remaining ? ` ${ans.remaining} matching job(s) remain: run it again.` : ''),
        h('details', {}, h('summary', { text: 'Each job' }),
          h('ul', { id: 'bulk-outcomes' }, ans.results.map((r) => h('li', { 'data-outcome': r.outcome }, h('code', { text: r.job_id }), ` ${r.outcome.replace('_', ' ')}`))))));
      selected.clear();
      await refresh();
    } catch (e) { replace(result, errorBox(e)); }
  }

  sel.addEventListener('click', () => run({ ids: [...selected] }, selected.size));
  byFilter.addEventListener('click', async () => {
    try {
      const dry = await api('/api/v1/jobs/cancel', { method: 'POST', body: { filter: apiFilter(filter), dry_run: true } });
      if (!dry.matched) { replace(result, h('p', { class: 'notice', role: 'status' }, 'No job left to cancel matches this filter.')); return; }
      // The server cancels only if the filter still matches the count confirmed.
      await run({ filter: apiFilter(filter), expected: dry.matched }, dry.matched);
    } catch (e) { replace(result, errorBox(e)); }
  });
  const el = h('div', { class: 'bulk' }, h('div', { class: 'row' }, sel, byFilter), result);
  return {
    el,
    update() {
      sel.disabled = selected.size === 0;
      sel.textContent = selected.size ? `Cancel selected (${selected.size})` : 'Cancel selected';
    },
  };
}
