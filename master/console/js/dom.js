// Building DOM nodes without HTML strings: text is always text, so nothing a site or
// a job name says can become markup (and the CSP forbids inline code anyway).

/** h('a', {href: '#/x', class: 'c', on: {click: fn}}, 'text', child) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (k === 'selected') el.selected = !!v;
    else if (k === 'disabled') el.disabled = !!v;
    else if (k === 'hidden') el.hidden = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/** A status shown as icon + words; `cls` only repeats them in colour. */
export function pill({ cls, icon, word, title }) {
  return h('span', { class: `pill ${cls}`, title: title || undefined },
    h('span', { 'aria-hidden': 'true', text: icon }), word);
}

export function errorBox(err) {
  const rid = err && err.requestId ? ` (request ${err.requestId})` : '';
  return h('p', { class: 'error', role: 'alert' }, `${err.message || err}${rid}`);
}
