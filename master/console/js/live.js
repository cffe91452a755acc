// Live updates by polling what the master already has: a refresh rate the user
// picks (off included), paused while the tab is hidden, a freeze that keeps rows
// still, and a line saying whether the master answers and how old the data is.

import { connection, onConnection } from './api.js';
import { ago } from './format.js';
import { replace, h } from './dom.js';

// The rates the refresh menu offers; anything else stored (an old version's value, a
// hand edit) would be NaN or 0 ms to setTimeout and refresh without pause.
const RATES = [0, 2, 5, 15, 60];
const stored = Number(localStorage.getItem('meridian.refresh') ?? 5);

const state = {
  every: RATES.includes(stored) ? stored : 5,
  frozen: false,
  timer: null,
  refresh: null,
  shownAt: null,
};

export function frozen() { return state.frozen; }

/** The current view's refresh function (replaced on each navigation). */
export function setRefresher(fn) { state.refresh = fn; schedule(); }

/** Views call this when what they show was read from the master. */
export function shown() { state.shownAt = Date.now(); paint(); }

export function setEvery(seconds) {
  state.every = RATES.includes(seconds) ? seconds : 5;
  localStorage.setItem('meridian.refresh', String(state.every));
  schedule();
  paint();
}
export function every() { return state.every; }

export function setFrozen(on) { state.frozen = on; schedule(); paint(); }

export async function refreshNow() {
  if (!state.refresh) return;
  try { await state.refresh(); } catch (_) { /* the view shows its own error */ }
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = null;
  if (!state.refresh || state.every <= 0 || state.frozen || document.hidden) return;
  state.timer = setTimeout(async () => {
    await refreshNow();
    schedule();
  }, state.every * 1000);
}

function paint() {
  const el = document.getElementById('conn');
  if (!el) return;
  const c = connection();
  const age = state.shownAt ? ago((Date.now() - state.shownAt) / 1000) : 'not yet';
  const parts = [];
  if (!c.ok) {
    parts.push(h('span', { class: 'pill st-bad', 'data-conn': 'down' },
      h('span', { 'aria-hidden': 'true', text: '✗' }), 'Disconnected from the master'));
  } else {
    parts.push(h('span', { class: 'pill st-ok', 'data-conn': 'up' },
      h('span', { 'aria-hidden': 'true', text: '✓' }), 'Connected'));
  }
  parts.push(' ', h('span', { id: 'data-age' }, `data from ${age}`));
  if (state.frozen) parts.push(' ', h('span', { class: 'pill st-stale' }, h('span', { 'aria-hidden': 'true', text: '❄' }), 'Frozen'));
  else if (document.hidden) parts.push(' · paused while hidden');
  else if (state.every <= 0) parts.push(' · auto-refresh off');
  replace(el, ...parts);
}

export function start() {
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshNow(); schedule(); paint(); });
  onConnection(paint);
  // The age line ticks every second; it only rewrites one short text node.
  setInterval(() => {
    const a = document.getElementById('data-age');
    if (a && state.shownAt) a.textContent = `data from ${ago((Date.now() - state.shownAt) / 1000)}`;
  }, 1000);
  paint();
}
