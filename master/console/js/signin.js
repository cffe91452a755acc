// Sign-in with a bearer token. In dev mode (the quickstart) the master offers its
// token at /console/dev-token, on loopback only; elsewhere that call is a 404 and
// nothing is offered.

import { api, token, ApiError } from './api.js';
import { h, replace, errorBox } from './dom.js';

export async function signIn(main, onDone, why) {
  let offered = null;
  try {
    const r = await fetch('/console/dev-token', { cache: 'no-store', credentials: 'omit' });
    if (r.ok) offered = (await r.json()).token;
  } catch (_) { /* no offer */ }
  const box = h('textarea', { id: 'token', name: 'token', required: true, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'token-help' });
  const msg = h('div', { id: 'signin-msg' });
  if (why) replace(msg, h('p', { class: 'notice', role: 'status' }, why));
  const form = h('form', { class: 'signin stack', id: 'signin', on: { submit: async (e) => {
    e.preventDefault();
    const t = box.value.trim();
    if (!t) return;
    token.set(t);
    try {
      const me = await api('/api/v1/whoami', { quiet401: true });
      box.value = '';
      onDone(me);
    } catch (err) {
      token.clear();
      replace(msg, errorBox(err instanceof ApiError && err.status === 401
        ? { message: `The master refused this token: ${err.message}` } : err));
    }
  } } },
  h('h1', { text: 'Sign in to the Meridian ops console' }),
  h('label', { for: 'token', text: 'Bearer token (JWT)' }),
  box,
  h('p', { id: 'token-help', class: 'muted' },
    'The token is kept in this tab only (sessionStorage) and sent in the Authorization header; it is never put in an address. ',
    'Mint one with ', h('code', { text: 'meridian-master token --role viewer' }), '.'),
  offered ? h('p', { class: 'notice' }, 'Dev mode: this master was started by the quickstart and offers its admin token. ',
    h('button', { type: 'button', id: 'use-dev-token', on: { click: () => { box.value = offered; form.requestSubmit(); } } }, 'Use the dev token')) : null,
  h('div', { class: 'row' }, h('button', { type: 'submit', id: 'signin-submit' }, 'Sign in')),
  msg);
  replace(main, form);
  box.focus();
}
