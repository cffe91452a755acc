// Times, ages and the words and icons of every state. Times follow the UTC/local
// choice; ages come from the master's clock where it gives them.

const prefs = { utc: localStorage.getItem('meridian.tz') !== 'local' };

export function useUtc() { return prefs.utc; }
export function setUtc(on) {
  prefs.utc = on;
  localStorage.setItem('meridian.tz', on ? 'utc' : 'local');
}

const pad = (n) => String(n).padStart(2, '0');

export function time(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  if (prefs.utc) {
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
  }
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

/** The value of a datetime-local input for an RFC 3339 instant, in the chosen zone. */
export function toInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return prefs.utc
    ? `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
    : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** RFC 3339 (UTC) of a datetime-local input's value read in the chosen zone. */
export function fromInput(v) {
  if (!v) return '';
  const d = prefs.utc ? new Date(`${v}:00Z`) : new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace('.000Z', 'Z');
}

export function ago(seconds) {
  if (seconds === null || seconds === undefined) return 'never';
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function sinceIso(iso) {
  const t = new Date(iso).getTime();
  return Number.isNaN(t) ? null : (Date.now() - t) / 1000;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '—';
  const s = Math.round(seconds);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export const pct = (x) => `${Math.round((x || 0) * 100)} %`;
export const num = (n) => (n ?? 0).toLocaleString('en-US');

const JOB = {
  PENDING: ['st-none', '◌', 'Pending'],
  RUNNING: ['st-run', '▶', 'Running'],
  CANCELLING: ['st-stale', '⏹', 'Cancelling'],
  COMPLETED: ['st-ok', '✓', 'Completed'],
  PARTIALLY_COMPLETED: ['st-stale', '◐', 'Partially completed'],
  FAILED: ['st-bad', '✗', 'Failed'],
  CANCELLED: ['st-none', '⊘', 'Cancelled'],
  DISPATCHING: ['st-none', '↗', 'Dispatching'],
  REJECTED: ['st-bad', '✗', 'Rejected'],
  SKIPPED: ['st-none', '⊘', 'Skipped'],
};

export const JOB_STATES = ['PENDING', 'RUNNING', 'CANCELLING', 'COMPLETED', 'PARTIALLY_COMPLETED', 'FAILED', 'CANCELLED'];
export const FINAL = ['COMPLETED', 'PARTIALLY_COMPLETED', 'FAILED', 'CANCELLED'];

export function jobStatus(state) {
  const [cls, icon, word] = JOB[state] || ['st-none', '?', state || 'Unknown'];
  return { cls, icon, word };
}

/** A site on its own: unreachable and stale never look healthy. */
export function siteStatus(s) {
  const heard = `last heard ${ago(s.seen_seconds_ago)}`;
  if (s.reachability === 'UNREACHABLE') return { cls: 'st-bad', icon: '✗', word: 'Unreachable', title: heard };
  if (s.stale) return { cls: 'st-stale', icon: '⚠', word: `Stale · ${heard}`, title: heard };
  if (s.reachability === 'REACHABLE') return { cls: 'st-ok', icon: '✓', word: 'Reachable', title: heard };
  return { cls: 'st-none', icon: '?', word: 'Not heard from yet', title: heard };
}

/** A site's part of a job: its state, and how fresh that state is. */
export function partStatus(p) {
  const base = jobStatus(p.state);
  const heard = ago(p.status_age_seconds);
  if (p.site_reachability === 'UNREACHABLE') {
    return { cls: 'st-bad', icon: '✗', word: `${p.site}: ${base.word} · unreachable, ${heard}`, title: p.error || '' };
  }
  if (p.stale) {
    return { cls: 'st-stale', icon: '⚠', word: `${p.site}: ${base.word} · stale, ${heard}`, title: p.error || '' };
  }
  return { ...base, word: `${p.site}: ${base.word}` };
}

export function levelStatus(level) {
  switch (level) {
    case 'HIGH': return { cls: 'st-bad', icon: '▲', word: 'High' };
    case 'MEDIUM': return { cls: 'st-stale', icon: '◆', word: 'Medium' };
    case 'LOW': return { cls: 'st-run', icon: '▼', word: 'Low' };
    default: return { cls: 'st-none', icon: '–', word: level ? level[0] + level.slice(1).toLowerCase() : 'None' };
  }
}
