// Small DOM helpers of the wall: elements, bilingual labels, and fitting
// a widget's content to its box by leaving out what matters least.
// Nothing here sets a style attribute: the page runs under a
// Content-Security-Policy without 'unsafe-inline' (CSSOM properties are
// allowed, style="" is not).

export const SVG_NS = 'http://www.w3.org/2000/svg';

// h makes an element: h('div', {class: 'x', data: {a: '1'}}, child, 'text').
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  for (const c of children) if (c) el.append(c);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'data') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function setText(el, text) {
  const t = String(text);
  if (el.textContent !== t) el.textContent = t;
}

// mapSvg starts the SVG of a map that wall/geo.js's buildGeometry drew:
// the viewBox with pad around the drawing, in defs the hatched pattern of
// units without a figure (hatch: {id, size, stripe, colours: [ground,
// stripe]}), and a group (class frameClass) framing each inset. attrs are
// the svg's own; the caller appends the units and its layers.
export function mapSvg(geom, pad, hatch, frameClass, attrs) {
  const s = svg('svg', Object.assign({
    viewBox: `${-pad} ${-pad} ${(geom.w + 2 * pad).toFixed(1)} ${(geom.h + 2 * pad).toFixed(1)}`,
  }, attrs));
  const pat = svg('pattern', { id: hatch.id, patternUnits: 'userSpaceOnUse', width: hatch.size, height: hatch.size, patternTransform: 'rotate(45)' },
    svg('rect', { width: hatch.size, height: hatch.size, fill: hatch.colours[0] }),
    svg('rect', { width: hatch.stripe, height: hatch.size, fill: hatch.colours[1] }));
  const frames = svg('g', { class: frameClass, 'aria-hidden': 'true' });
  for (const r of geom.frames) frames.append(svg('rect', { x: r.x.toFixed(1), y: r.y.toFixed(1), width: r.w.toFixed(1), height: r.h.toFixed(1), rx: 4 }));
  s.append(svg('defs', {}, pat), frames);
  return s;
}

// setAttr sets an attribute when it changed; null or undefined removes it.
export function setAttr(el, name, value) {
  if (value === null || value === undefined) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== String(value)) {
    el.setAttribute(name, value);
  }
}

export function setData(el, key, value) {
  const v = value === null || value === undefined ? '' : String(value);
  if (el.dataset[key] !== v) el.dataset[key] = v;
}

// bi makes a bilingual label: the Vietnamese text, then the English one
// (lang="en", optional: the first thing left out when space runs short).
export function bi(cls, vi, en, optional) {
  const el = h('span', { class: 'bi ' + (cls || '') });
  const v = h('span', { class: 'vi', lang: 'vi' });
  const e = h('span', { class: 'en', lang: 'en' });
  if (optional !== false) e.dataset.optional = String(optional || 1);
  el.append(v, e);
  setBi(el, vi, en);
  return el;
}

export function setBi(el, vi, en) {
  setText(el.firstChild, vi || '');
  setText(el.lastChild, en || '');
  el.lastChild.hidden = !en;
  el.lastChild.dataset.empty = String(!en);
}

// overflows tells whether el's content does not fit its box.
export function overflows(el) {
  return el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1;
}

// fitOptional shows every [data-optional] part of el, then leaves them
// out one rank at a time (1 first) while the content of el or of any of
// boxes (el's inner boxes that hide their overflow) does not fit. It
// returns whether everything fits.
export function fitOptional(el, boxes) {
  const all = [el].concat(boxes || []);
  const over = () => all.some(overflows);
  const parts = Array.from(el.querySelectorAll('[data-optional]'));
  for (const p of parts) if (p.dataset.empty !== 'true') hide(p, false);
  if (!over()) return true;
  const ranks = Array.from(new Set(parts.map((p) => Number(p.dataset.optional) || 1))).sort((a, b) => a - b);
  for (const r of ranks) {
    for (const p of parts) if ((Number(p.dataset.optional) || 1) === r) hide(p, true);
    if (!over()) return true;
  }
  return false;
}

// hide sets the hidden attribute, which SVG elements have no property for.
export function hide(el, on) {
  el.toggleAttribute('hidden', !!on);
}
