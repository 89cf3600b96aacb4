// Colours of the wall, safe for colour-blind viewers and computed here
// (nothing is fetched): the viridis and cividis ramps, the scale a map
// legend fits to its figures or to fixed thresholds, and the tones of
// thresholds (good, warn, bad) from the Okabe–Ito palette. Pure: no DOM.

// viridis(t) for t in [0, 1]: a degree-6 polynomial fit of matplotlib's
// viridis (within about 1/100 of the published table on each channel).
const VIRIDIS = [
  [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
  [0.1050930431085774, 1.404613529898575, 1.384590162594685],
  [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
  [-4.634230498983486, -5.799100973351585, -19.33244095627987],
  [6.228269936347081, 14.17993336680509, 56.69055260068105],
  [4.776384997670288, -13.74514537774601, -65.35303263337234],
  [-5.435455855934631, 4.645852612178535, 26.3124352495832],
];

const clamp01 = (x) => (x < 0 ? 0 : x > 1 ? 1 : x);

export function viridis(t) {
  const x = clamp01(t);
  return [0, 1, 2].map((c) => {
    let v = 0;
    for (let i = VIRIDIS.length - 1; i >= 0; i--) v = v * x + VIRIDIS[i][c];
    return clamp01(v);
  });
}

// OKLab, to interpolate with even steps of lightness.
const toLinear = (c) => (c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4));
const fromLinear = (c) => (c <= 0.0031308 ? 12.92 * c : 1.055 * Math.pow(c, 1 / 2.4) - 0.055);

export function rgbToOklab(rgb) {
  const [r, g, b] = rgb.map(toLinear);
  const l = Math.cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
  const m = Math.cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
  const s = Math.cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
  return [
    0.2104542553 * l + 0.793617785 * m - 0.0040720468 * s,
    1.9779984951 * l - 2.428592205 * m + 0.4505937099 * s,
    0.0259040371 * l + 0.7827717662 * m - 0.808675766 * s,
  ];
}

export function oklabToRgb(lab) {
  const [L, a, b] = lab;
  const l = Math.pow(L + 0.3963377774 * a + 0.2158037573 * b, 3);
  const m = Math.pow(L - 0.1055613458 * a - 0.0638541728 * b, 3);
  const s = Math.pow(L - 0.0894841775 * a - 1.291485548 * b, 3);
  return [
    4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s,
    -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s,
    -0.0041960863 * l - 0.7034186147 * m + 1.707614701 * s,
  ].map((c) => clamp01(fromLinear(c)));
}

// cividis(t): matplotlib's cividis is a blue-to-yellow ramp whose
// lightness grows evenly and that reads the same to viewers with
// red–green colour blindness. Here it is computed through its published
// colours at 0, ½ and 1 (about #00204d, #7c7b78, #fee837), interpolated in
// OKLab, which keeps lightness even between them.
const CIVIDIS = [[0x00, 0x20, 0x4d], [0x7c, 0x7b, 0x78], [0xfe, 0xe8, 0x37]].map((c) => rgbToOklab(c.map((v) => v / 255)));

export function cividis(t) {
  const x = clamp01(t);
  const [a, b, f] = x < 0.5 ? [CIVIDIS[0], CIVIDIS[1], x * 2] : [CIVIDIS[1], CIVIDIS[2], (x - 0.5) * 2];
  return oklabToRgb([0, 1, 2].map((i) => a[i] + (b[i] - a[i]) * f));
}

export const RAMPS = { viridis, cividis };

export function hex(rgb) {
  return '#' + rgb.map((c) => Math.round(clamp01(c) * 255).toString(16).padStart(2, '0')).join('');
}

// relativeLuminance and contrast follow WCAG 2.
export function relativeLuminance(rgb) {
  const [r, g, b] = rgb.map(toLinear);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a, b) {
  const [x, y] = [relativeLuminance(a), relativeLuminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

// On a dark wall the darkest end of a ramp would vanish into the
// background: a ramp starts at RAMP_FLOOR instead of 0.
export const RAMP_FLOOR = 0.18;

// rampColour is the colour of position t in [0, 1] of ramp name.
export function rampColour(name, t, floor) {
  const f = RAMPS[name] || viridis;
  const lo = floor === undefined ? RAMP_FLOOR : floor;
  return hex(f(lo + (1 - lo) * clamp01(t)));
}

// Tones of thresholds and changes: Okabe–Ito sky blue, yellow and
// orange, distinct for every common colour blindness and each shown with
// a mark of its own (✓, !, ✕), so that colour is never the only cue.
export const TONES = {
  good: { colour: '#56b4e9', mark: '✓' },
  warn: { colour: '#f0e442', mark: '!' },
  bad: { colour: '#ff8c3a', mark: '✕' },
  neutral: { colour: '#d8dee9', mark: '' },
  info: { colour: '#cc79a7', mark: 'i' },
};

// thresholdTone says which tone value v takes under thresholds (each
// {value, color}, in any order): that of the greatest threshold value at
// or below v; below them all, 'bad' when higher is better, 'good' when
// lower is better, none otherwise. null when there are no thresholds or
// no value.
// catalogThresholds turns the thresholds an indicator's catalog entry
// gives ({warning, critical}, crossed downwards where higher is better,
// upwards otherwise) into a tile's list: the tone a value takes from the
// first threshold at or below it, and the direction's below them all.
export function catalogThresholds(def) {
  const th = def && def.thresholds;
  if (!th) return null;
  const list = [];
  const add = (value, color) => { if (typeof value === 'number') list.push({ value, color }); };
  if (def.direction === 'higher_is_better') {
    add(th.warning, 'good');
    add(th.critical, 'warn');
  } else {
    add(th.critical, 'bad');
    add(th.warning, 'warn');
  }
  return list.length ? list : null;
}

export function thresholdTone(thresholds, v, direction) {
  if (!Array.isArray(thresholds) || thresholds.length === 0 || typeof v !== 'number' || !isFinite(v)) return null;
  let best = null;
  for (const th of thresholds) {
    if (!th || typeof th.value !== 'number') continue;
    if (th.value <= v && (best === null || th.value > best.value)) best = th;
  }
  if (best) return TONES[best.color] ? best.color : 'neutral';
  if (direction === 'higher_is_better') return 'bad';
  if (direction === 'lower_is_better') return 'good';
  return null;
}

// niceStep is a round step (1, 2 or 5 × 10^n) near span/count.
export function niceStep(span, count) {
  if (!(span > 0) || !(count > 0)) return 1;
  const raw = span / count;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

// legendScale decides how a map colours values of an indicator:
//   mode 'fitted' — continuous over the figures' own range (rounded out to
//     nice numbers), so that differences among the children show;
//   mode 'fixed' — with thresholds, classes between them (one colour per
//     class); without, ratios over 0–100% and other figures from 0 to their
//     largest, so colours mean the same from one day to the next.
// values are the children's figures (nulls ignored); def the catalog
// entry. It returns {kind: 'continuous', min, max, colour(v)} or {kind:
// 'classes', breaks, colours, colour(v)}; colour(null) is null.
export function legendScale(values, opts) {
  const o = opts || {};
  const ramp = o.ramp || 'viridis';
  const nums = (values || []).filter((v) => typeof v === 'number' && isFinite(v));
  const th = Array.isArray(o.thresholds) ? o.thresholds.filter((t) => t && typeof t.value === 'number').map((t) => t.value) : [];
  if (o.mode === 'fixed' && th.length) {
    const breaks = Array.from(new Set(th)).sort((a, b) => a - b);
    const n = breaks.length + 1;
    const colours = [];
    for (let i = 0; i < n; i++) colours.push(rampColour(ramp, n === 1 ? 1 : i / (n - 1)));
    const classOf = (v) => {
      let i = 0;
      while (i < breaks.length && v >= breaks[i]) i++;
      return i;
    };
    return { kind: 'classes', breaks, colours, classOf, colour: (v) => (typeof v === 'number' && isFinite(v) ? colours[classOf(v)] : null) };
  }
  let min;
  let max;
  if (o.mode === 'fixed') {
    min = 0;
    max = o.ratio ? 1 : Math.max(1, ...nums);
  } else if (!nums.length) {
    min = 0;
    max = o.ratio ? 1 : 1;
  } else {
    min = Math.min(...nums);
    max = Math.max(...nums);
    if (max === min) {
      // One value, or all equal: centre it.
      const pad = o.ratio ? 0.05 : Math.max(1, Math.abs(max) * 0.1);
      min -= pad;
      max += pad;
    }
    const step = niceStep(max - min, 5);
    min = Math.floor(min / step) * step;
    max = Math.ceil(max / step) * step;
    if (o.ratio) {
      min = Math.max(0, min);
      max = Math.min(1, max);
    }
    if (nums.every((v) => v >= 0)) min = Math.max(0, min);
  }
  const span = max - min || 1;
  return {
    kind: 'continuous', min, max,
    colour: (v) => (typeof v === 'number' && isFinite(v) ? rampColour(ramp, (v - min) / span) : null),
  };
}
