// GeoJSON to SVG for the maps of the wall and of the built-in page
// (app.js): an equirectangular projection with longitude shrunk by the
// cosine of the latitude (true enough at a province's scale, no library),
// and units far from the main body (Hồ Chí Minh's Côn Đảo, out at sea)
// drawn in an inset instead of shrinking the mainland to a third. Pure:
// it returns path data and a projection; the widget makes the elements.

export const MAP_SIZE = 1000; // viewBox units along the longer side

function rings(geometry) {
  if (!geometry || !Array.isArray(geometry.coordinates)) return [];
  if (geometry.type === 'Polygon') return geometry.coordinates;
  if (geometry.type === 'MultiPolygon') return [].concat(...geometry.coordinates.filter(Array.isArray));
  return [];
}

function ringBounds(rs) {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  for (const r of rs) {
    for (let i = 0; i < r.length; i += 2) {
      if (r[i] < b[0]) b[0] = r[i];
      if (r[i] > b[2]) b[2] = r[i];
      if (r[i + 1] < b[1]) b[1] = r[i + 1];
      if (r[i + 1] > b[3]) b[3] = r[i + 1];
    }
  }
  return b;
}

function unionBounds(list) {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  for (const u of list) {
    b[0] = Math.min(b[0], u.b[0]);
    b[1] = Math.min(b[1], u.b[1]);
    b[2] = Math.max(b[2], u.b[2]);
    b[3] = Math.max(b[3], u.b[3]);
  }
  return b;
}

// fit projects bounds b into a box of side size, at most maxScale.
export function fit(b, size, maxScale) {
  const k = Math.cos(((b[1] + b[3]) / 2) * Math.PI / 180);
  const s = Math.min(maxScale || Infinity, size / Math.max((b[2] - b[0]) * k, b[3] - b[1], 1e-9));
  return { x0: b[0], y1: b[3], k, s, ox: 0, oy: 0, w: (b[2] - b[0]) * k * s, h: (b[3] - b[1]) * s };
}

export function projectPoint(p, lon, lat) {
  return [p.ox + (lon - p.x0) * p.k * p.s, p.oy + (p.y1 - lat) * p.s];
}

function project(u) {
  const p = u.proj;
  u.xy = u.rings.map((r) => {
    const out = new Array(r.length);
    for (let i = 0; i < r.length; i += 2) {
      out[i] = p.ox + (r[i] - p.x0) * p.k * p.s;
      out[i + 1] = p.oy + (p.y1 - r[i + 1]) * p.s;
    }
    return out;
  });
}

// farOff finds the units lying apart from the main body along either axis.
function farOff(units) {
  const out = new Set();
  for (const axis of [0, 1]) {
    const sizes = units.map((u) => u.b[axis + 2] - u.b[axis]).sort((a, b) => a - b);
    const tol = 2 * sizes[sizes.length >> 1];
    const groups = [];
    let end = -Infinity;
    for (const u of units.slice().sort((a, b) => a.b[axis] - b.b[axis])) {
      if (!groups.length || u.b[axis] > end + tol) groups.push([]);
      groups[groups.length - 1].push(u);
      end = Math.max(end, u.b[axis + 2]);
    }
    const main = groups.reduce((a, g) => (g.length > a.length ? g : a));
    if (main.length * 2 < units.length) continue;
    for (const g of groups) if (g !== main) for (const u of g) out.add(u.code);
  }
  if (out.size === 0 || out.size * 2 >= units.length) return new Set();
  const area = (b) => (b[2] - b[0]) * (b[3] - b[1]);
  const main = units.filter((u) => !out.has(u.code));
  return area(unionBounds(main)) < 0.6 * area(unionBounds(units)) ? out : new Set();
}

export function inRing(r, px, py) {
  let inside = false;
  for (let i = 0, j = r.length - 2; i < r.length; j = i, i += 2) {
    if ((r[i + 1] > py) !== (r[j + 1] > py) && px < ((r[j] - r[i]) * (py - r[i + 1])) / (r[j + 1] - r[i + 1]) + r[i]) inside = !inside;
  }
  return inside;
}

function isEmpty(units, x, y, w, h) {
  const m = 6;
  for (const u of units) {
    for (const r of u.xy) {
      for (let i = 0; i < r.length; i += 2) {
        if (r[i] > x - m && r[i] < x + w + m && r[i + 1] > y - m && r[i + 1] < y + h + m) return false;
      }
    }
  }
  for (let i = 0; i <= 4; i++) {
    for (let j = 0; j <= 4; j++) {
      const px = x + (w * i) / 4;
      const py = y + (h * j) / 4;
      for (const u of units) for (const r of u.xy) if (inRing(r, px, py)) return false;
    }
  }
  return true;
}

function layout(units) {
  const far = farOff(units);
  const main = units.filter((u) => !far.has(u.code));
  const mb = unionBounds(main);
  const proj = fit(mb, MAP_SIZE);
  for (const u of main) { u.proj = proj; project(u); }
  const frames = [];
  const w = proj.w;
  const h = proj.h;
  if (!far.size) return { w, h, frames, proj };
  const span = Math.max(mb[2] - mb[0], mb[3] - mb[1]);
  const gap = (a, b) => Math.max(a.b[0] - b.b[2], b.b[0] - a.b[2], a.b[1] - b.b[3], b.b[1] - a.b[3], 0);
  const groups = [];
  for (const u of units.filter((x) => far.has(x.code))) {
    const near = groups.filter((g) => g.some((v) => gap(u, v) < span / 2));
    const merged = [u].concat(...near);
    for (const g of near) groups.splice(groups.indexOf(g), 1);
    groups.push(merged);
  }
  const pad = 8;
  const place = (g, x, y, gp) => {
    gp.ox = x + pad;
    gp.oy = y + pad;
    for (const u of g) { u.proj = gp; project(u); }
    frames.push({ x, y, w: gp.w + 2 * pad, h: gp.h + 2 * pad });
  };
  if (groups.length === 1) {
    const g = groups[0];
    const gb = unionBounds(g);
    const south = gb[1] + gb[3] < mb[1] + mb[3];
    const west = gb[0] + gb[2] < mb[0] + mb[2];
    for (const [left, bottom] of [[west, south], [!west, south], [west, !south], [!west, !south]]) {
      for (const frac of [0.36, 0.3, 0.24]) {
        const gp = fit(gb, frac * Math.min(w, h) - 2 * pad, proj.s);
        const fw = gp.w + 2 * pad;
        const fh = gp.h + 2 * pad;
        const x = left ? 0 : w - fw;
        const y = bottom ? h - fh : 0;
        if (isEmpty(main, x, y, fw, fh)) {
          place(g, x, y, gp);
          return { w, h, frames, proj };
        }
      }
    }
  }
  let x = 0;
  const y = h + 12;
  let rowH = 0;
  for (const g of groups) {
    const gp = fit(unionBounds(g), 0.25 * Math.min(w, h) - 2 * pad, proj.s);
    place(g, x, y, gp);
    x += gp.w + 2 * pad + 12;
    rowH = Math.max(rowH, gp.h + 2 * pad);
  }
  return { w: Math.max(w, x - 12), h: y + rowH, frames, proj };
}

// buildGeometry turns a FeatureCollection of units into drawable shapes:
// {units: Map code → {code, name, d, box: [x0, y0, x1, y1], rings, proj},
// w, h, frames, proj, point(lon, lat, code)}. point places a device as
// its unit was drawn (a unit in an inset has its own projection).
export function buildGeometry(fc) {
  const shapes = new Map();
  for (const f of fc && Array.isArray(fc.features) ? fc.features : []) {
    if (!f || typeof f !== 'object') continue;
    const props = f.properties || {};
    const code = String(f.id !== undefined && f.id !== null ? f.id : props.code || '');
    if (!code) continue;
    const out = [];
    for (const ring of rings(f.geometry)) {
      if (!Array.isArray(ring)) continue;
      const pts = [];
      for (const p of ring) {
        if (!Array.isArray(p)) continue;
        const lon = +p[0];
        const lat = +p[1];
        if (isFinite(lon) && isFinite(lat)) pts.push(lon, lat);
      }
      if (pts.length >= 6) out.push(pts);
    }
    if (!out.length) continue;
    const sh = shapes.get(code);
    if (sh) sh.rings.push(...out);
    else shapes.set(code, { code, name: props.name || props.full_name || code, rings: out });
  }
  if (!shapes.size) throw new Error('lớp bản đồ không có hình nào (the layer has no shapes)');
  for (const sh of shapes.values()) sh.b = ringBounds(sh.rings);
  const lay = layout(Array.from(shapes.values()));
  const units = new Map();
  for (const [code, sh] of shapes) {
    let d = '';
    const box = [Infinity, Infinity, -Infinity, -Infinity];
    for (const r of sh.xy) {
      let ring = '';
      let prev = '';
      let n = 0;
      for (let i = 0; i < r.length; i += 2) {
        const pt = r[i].toFixed(1) + ',' + r[i + 1].toFixed(1);
        if (r[i] < box[0]) box[0] = r[i];
        if (r[i] > box[2]) box[2] = r[i];
        if (r[i + 1] < box[1]) box[1] = r[i + 1];
        if (r[i + 1] > box[3]) box[3] = r[i + 1];
        if (pt === prev) continue;
        ring += (n ? ' ' : 'M') + pt;
        prev = pt;
        n++;
      }
      if (n >= 3) d += ring + 'Z';
    }
    if (d) units.set(code, { code, name: sh.name, d, box, rings: sh.rings, proj: sh.proj });
  }
  const point = (lon, lat, code) => {
    let p = code && units.has(code) ? units.get(code).proj : null;
    if (!p) {
      for (const u of units.values()) {
        if (u.proj !== lay.proj && u.rings.some((r) => inRing(r, lon, lat))) { p = u.proj; break; }
      }
    }
    return projectPoint(p || lay.proj, lon, lat);
  };
  return { units, w: lay.w, h: lay.h, frames: lay.frames, proj: lay.proj, point };
}

// unitAt finds the unit whose shape holds (lon, lat), or ''.
export function unitAt(geom, lon, lat) {
  for (const u of geom.units.values()) if (u.rings.some((r) => inRing(r, lon, lat))) return u.code;
  return '';
}
