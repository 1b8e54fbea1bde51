// Tiny DOM helpers: elements are built with createElement and textContent only (never
// innerHTML), so data from the API can never become markup; no inline styles (strict CSP).

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, props, children) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// h('button', { class: 'btn', onclick: fn, 'data-testid': 'x' }, 'Label')
export const h = (tag, props, ...children) => build(document.createElement(tag), props, children);

// The same for SVG elements.
export const s = (tag, props, ...children) => build(document.createElementNS(SVG_NS, tag), props, children);

export const $ = (sel, root = document) => root.querySelector(sel);

export function replace(el, ...children) {
  el.replaceChildren();
  return build(el, null, children);
}
