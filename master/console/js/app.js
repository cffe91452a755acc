// The console's entry: theme and time-zone choices, sign-in and sign-out, the
// "who am I" panel, keyboard shortcuts, and which view the address shows.

import { api, token, whenUnauthorized } from './api.js';
import { h, replace, errorBox } from './dom.js';
import { setUtc, useUtc } from './format.js';
import * as live from './live.js';
import { current, go } from './route.js';
import { signIn } from './signin.js';
import * as sites from './sites.js';
import * as jobs from './jobs.js';
import * as job from './job.js';
import * as compare from './compare.js';
import * as newjob from './newjob.js';

const main = document.getElementById('main');
const ctx = { me: null, can: (p) => !!ctx.me && ctx.me.permissions.includes(p) };
let view = null;
let seq = 0;

function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  localStorage.setItem('meridian.theme', t);
  const b = document.getElementById('theme');
  b.textContent = t === 'dark' ? 'Light theme' : 'Dark theme';
  b.setAttribute('aria-pressed', String(t === 'dark'));
}

function applyTz() {
  const b = document.getElementById('tz');
  b.textContent = useUtc() ? 'Times: UTC' : 'Times: local';
}

function signedIn(me) {
  ctx.me = me;
  document.getElementById('nav').hidden = false;
  document.getElementById('tools').hidden = false;
  document.querySelectorAll('[data-needs]').forEach((el) => { el.hidden = !ctx.can(el.dataset.needs); });
  show();
}

function signedOut(why) {
  token.clear();
  ctx.me = null;
  if (view && view.dispose) view.dispose();
  view = null;
  live.setRefresher(null);
  document.getElementById('nav').hidden = true;
  document.getElementById('tools').hidden = true;
  signIn(main, signedIn, why);
}

async function show() {
  if (!ctx.me) return;
  const mine = ++seq;
  if (view && view.dispose) view.dispose();
  view = null;
  const { parts, params } = current();
  const [top, id, sub] = parts;
  document.querySelectorAll('[data-nav]').forEach((a) => {
    if (a.dataset.nav === (top === 'jobs' && id ? 'jobs' : top)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  let mod;
  if (top === 'sites') mod = sites;
  else if (top === 'new') mod = newjob;
  else if (top === 'jobs' && id && sub === 'compare') mod = compare;
  else if (top === 'jobs' && id) mod = job;
  else if (top === 'jobs' || !top) mod = jobs;
  if (!mod) { replace(main, h('h1', { text: 'Not found' }), h('p', {}, h('a', { href: '#/jobs', text: 'Jobs' }))); return; }
  try {
    const v = await mod.render(main, { id, params }, ctx);
    if (mine !== seq) { if (v && v.dispose) v.dispose(); return; }
    view = v;
    live.setRefresher(v && v.refresh ? v.refresh : null);
    live.shown();
  } catch (err) {
    if (mine === seq) replace(main, errorBox(err));
  }
}

function whoami() {
  const d = document.getElementById('whoami');
  const me = ctx.me;
  replace(document.getElementById('whoami-body'),
    h('dt', { text: 'Subject' }), h('dd', { id: 'who-subject', text: me.subject }),
    h('dt', { text: 'Roles' }), h('dd', { id: 'who-roles', text: me.roles.join(', ') || 'none' }),
    h('dt', { text: 'May' }), h('dd', { id: 'who-perms', text: me.permissions.join(', ') || 'nothing' }),
    h('dt', { text: 'Issuer' }), h('dd', { text: me.issuer }),
    h('dt', { text: 'Token expires' }), h('dd', { text: me.expires_at }),
    h('dt', { text: 'Enforced by' }), h('dd', { text: 'the master: the console only hides what it would refuse' }));
  d.showModal();
}

let pendingG = false;
function keys(e) {
  if ((e.target instanceof Element && e.target.closest('input, textarea, select')) || e.ctrlKey || e.metaKey || e.altKey) return;
  if (document.querySelector('dialog[open]')) return;
  const k = e.key;
  if (pendingG) {
    pendingG = false;
    if (k === 's') { go(['sites']); e.preventDefault(); }
    if (k === 'j') { go(['jobs']); e.preventDefault(); }
    return;
  }
  if (!ctx.me && k !== '?') return;
  switch (k) {
    case '?': document.getElementById('shortcuts').showModal(); break;
    case 'g': pendingG = true; setTimeout(() => { pendingG = false; }, 1500); break;
    case 'n': if (ctx.can('jobs:create')) go(['new']); break;
    case 'r': live.refreshNow().then(live.shown); break;
    case 'f': document.getElementById('freeze').click(); break;
    case 't': document.getElementById('tz').click(); break;
    case 'd': document.getElementById('theme').click(); break;
    case '/': { const n = document.getElementById('f-name'); if (n) n.focus(); break; }
    default: return;
  }
  e.preventDefault();
}

function boot() {
  const dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  applyTheme(localStorage.getItem('meridian.theme') || (dark ? 'dark' : 'light'));
  applyTz();
  document.getElementById('theme').addEventListener('click', () =>
    applyTheme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark'));
  document.getElementById('tz').addEventListener('click', () => { setUtc(!useUtc()); applyTz(); show(); });
  const sel = document.getElementById('refresh');
  sel.value = String(live.every());
  sel.addEventListener('change', () => live.setEvery(Number(sel.value)));
  const fr = document.getElementById('freeze');
  fr.addEventListener('click', () => {
    const on = fr.getAttribute('aria-pressed') !== 'true';
    fr.setAttribute('aria-pressed', String(on));
    fr.textContent = on ? 'Unfreeze' : 'Freeze';
    live.setFrozen(on);
  });
  document.getElementById('me').addEventListener('click', whoami);
  document.getElementById('signout').addEventListener('click', () => signedOut('Signed out.'));
  document.addEventListener('keydown', keys);
  window.addEventListener('hashchange', show);
  whenUnauthorized((why) => signedOut(`Signed out: ${why}`));
  live.start();
  if (!token.get()) { signedOut(); return; }
  checkToken();
}

/** Signs in with the kept token; while the master does not answer, the token is kept
 * and the check repeated (a 401 signs out through `whenUnauthorized`). */
function checkToken() {
  api('/api/v1/whoami').then(signedIn, (err) => {
    if (err.status === 401) return;
    replace(main, h('p', { role: 'alert', class: 'error',
      text: `The master did not answer (${err.message}); trying again in 5 s.` }));
    setTimeout(checkToken, 5000);
  });
}

boot();
