// A new job: data sources grouped by site from the catalog (each site with its
// reachability), options, and the master's validation errors next to their fields.

import { api } from './api.js';
import { h, replace, pill, errorBox } from './dom.js';
import { siteStatus } from './format.js';
import { go } from './route.js';

const FIELDS = ['name', 'data_sources', 'classifiers', 'ocr', 'tables', 'max_objects', 'max_file_size_mb', 'priority'];

function tri(name, label) {
  return h('label', { class: 'block' }, label, h('select', { name, id: `nj-${name}` },
    h('option', { value: '', text: 'the site’s default' }), h('option', { value: 'true', text: 'on' }), h('option', { value: 'false', text: 'off' })));
}

function numberField(name, label, min, max, help) {
  return h('label', { class: 'block' }, label,
    h('input', { type: 'number', name, id: `nj-${name}`, min: String(min), max: String(max), inputmode: 'numeric', 'aria-describedby': `err-${name} help-${name}` }),
    h('span', { class: 'muted', id: `help-${name}`, text: help }));
}

export async function render(main, _route, ctx) {
  if (!ctx.can('jobs:create')) {
    replace(main, h('h1', { text: 'New job' }), h('p', { class: 'notice', text: 'Your token does not allow creating jobs (the operator role is needed).' }));
    return {};
  }
  const [catalog, sites] = await Promise.all([api('/api/v1/data_sources'), api('/api/v1/sites')]);
  const top = h('div', { id: 'nj-errors' });
  const errs = Object.fromEntries(FIELDS.map((f) => [f, h('span', { class: 'field-error', id: `err-${f}`, role: 'alert' })]));
  const groups = sites.map((s) => {
    const mine = catalog.filter((d) => d.site === s.name);
    return h('fieldset', { 'data-site': s.name }, h('legend', {}, `${s.name} `, pill(siteStatus(s))),
      mine.length ? mine.map((d) => h('label', { class: 'inline' },
        h('input', { type: 'checkbox', name: 'ds', value: d.id, 'data-ds': d.id }), h('code', { text: d.id }), ` ${d.kind} — ${d.description}`))
        : h('span', { class: 'muted', text: 'no data source known yet' }));
  });
  const form = h('form', { class: 'stack', id: 'new-job', novalidate: true, on: { submit: async (e) => {
    e.preventDefault();
    Object.values(errs).forEach((el) => { el.textContent = ''; });
    replace(top);
    const fd = new FormData(form);
    const options = {};
    const cls = fd.get('classifiers').split(',').map((c) => c.trim()).filter(Boolean);
    if (cls.length) options.classifiers = cls;
    for (const k of ['ocr', 'tables']) if (fd.get(k)) options[k] = fd.get(k) === 'true';
    for (const k of ['max_objects', 'max_file_size_mb']) if (fd.get(k)) options[k] = Number(fd.get(k));
    const body = { name: fd.get('name'), data_sources: fd.getAll('ds'), options };
    if (fd.get('priority')) body.priority = Number(fd.get('priority'));
    try {
      const view = await api('/api/v1/jobs', { method: 'POST', body });
      go(['jobs', view.job_id]);
    } catch (err) {
      const field = err.details && err.details.field;
      const slot = field && (errs[field] || errs[String(field).replace(/^options\./, '')]);
      if (slot) { slot.textContent = err.message; const input = form.querySelector(`[name="${field === 'data_sources' ? 'ds' : field}"]`); if (input) input.focus(); }
      else replace(top, errorBox(err));
    }
  } } },
  h('h1', { text: 'New job' }), top,
  h('label', { class: 'block' }, 'Name', h('input', { name: 'name', id: 'nj-name', required: true, maxlength: '200', 'aria-describedby': 'err-name' }), errs.name),
  h('fieldset', {}, h('legend', { text: 'Data sources, by site' }), groups, errs.data_sources),
  h('fieldset', {}, h('legend', { text: 'Options' }),
    h('label', { class: 'block' }, 'Classifiers (comma-separated; all built-in ones when empty)',
      h('input', { name: 'classifiers', id: 'nj-classifiers', placeholder: 'email, card_number', 'aria-describedby': 'err-classifiers' }), errs.classifiers),
    tri('ocr', 'OCR of images'), errs.ocr,
    tri('tables', 'Tables and images inside documents'), errs.tables,
    numberField('max_objects', 'Sampling: at most this many objects per data source', 1, 100000000, 'empty: every object'), errs.max_objects,
    numberField('max_file_size_mb', 'Skip files larger than (MB)', 1, 1048576, 'empty: the data source’s own limit'), errs.max_file_size_mb,
    numberField('priority', 'Priority', 1, 100, '1 to 100; empty: 1'), errs.priority),
  h('div', { class: 'row' }, h('button', { type: 'submit', id: 'nj-submit' }, 'Create job'), h('a', { class: 'button', href: '#/jobs', text: 'Cancel' })));
  replace(main, form);
  document.title = 'New job · Meridian';
  return {};
}
