// Choropleth map of the area's children for any indicator of the catalog,
// drawn in SVG from the GeoJSON layer the API serves (as the built-in page
// does), coloured live from map/ (one topic carries every child), with a
// legend fitted to the figures or fixed by thresholds, devices and open
// alarms as layers, and a click on a child opening the definition's
// drill-down dashboard for it.

import { Widget } from './base.js';
import { h, svg, bi, setData, mapSvg } from '../dom.js';
import { formatValue, isNum, isShare, sevRank } from '../text.js';
import { legendScale } from '../ramp.js';
import { buildGeometry } from '../geo.js';
import { rank } from '../layout.js';
import { enc } from '../api.js';

const MAP_ZOOM = 11; // the server simplifies shapes for this web-map zoom
let serial = 0;

export class MapWidget extends Widget {
  init() {
    this.id = this.o.indicator;
    this.def = this.indicator(this.id);
    const [vi, en] = this.indicatorTitle(this.id);
    this.setTitle(vi, en);
    if (this.notInCatalog()) return;
    const layers = Array.isArray(this.o.layers) ? this.o.layers : [];
    this.showDevices = layers.includes('devices');
    this.showAlarms = layers.includes('alarms');
    // Drill-down into a child's own dashboard: on a click, and with mode
    // timed also by itself every seconds, worst child first, for as long,
    // then back (a wall nobody touches still shows its communes in turn).
    const dd = this.o.drilldown && typeof this.o.drilldown === 'object' ? this.o.drilldown : null;
    this.drill = dd && typeof dd.dashboard === 'string' ? dd.dashboard : '';
    if (this.drill && dd.mode === 'timed') {
      this.drillSeconds = Math.max(5, Math.min(600, Number(dd.seconds) || 20));
      this.board.after(this.drillSeconds * 1000, () => this.drillNext());
    }
    this.children = null;
    this.devices = [];
    this.alarms = [];
    this.geom = null;
    this.paths = new Map();
    this.marks = new Map();
    this.serial = ++serial;

    this.mapEl = h('div', { class: 'map-box' });
    this.legend = h('div', { class: 'map-legend', data: { optional: 2 } });
    this.body.append(this.mapEl, this.legend);
    this.listen('children', (d, info) => {
      if (!d) {
        if (!this.children) this.fail(new Error(info.error));
        return;
      }
      if (d.area !== this.board.area || !d.children || typeof d.children !== 'object') return;
      this.children = d.children;
      if (d.child_level) this.childLevel = d.child_level;
      if (!this.geomAsked) this.loadGeometry(d);
      this.changed();
    });
    if (this.showDevices) this.listen('devices', (d) => { if (d && Array.isArray(d.devices)) { this.devices = d.devices; this.changed(); } });
    if (this.showAlarms) this.listen('alarms', (d) => { if (d && Array.isArray(d.open)) { this.alarms = d.open; this.changed(); } });
  }

  async loadGeometry(first) {
    this.geomAsked = true;
    try {
      const unit = await this.svc.api.get('/api/v1/areas/' + enc(this.board.area));
      let level = first.child_level || this.childLevel;
      if (!level) {
        // The REST answer names each child's level.
        const kids = await this.svc.api.get(`/api/v1/areas/${enc(this.board.area)}/children/kpis?window=${enc(this.board.window)}`);
        level = kids.children && kids.children[0] ? kids.children[0].level : '';
      }
      if (!level || !unit.children) {
        this.mapEl.replaceChildren(h('p', { class: 'w-empty' }, bi('', 'Đơn vị này không có đơn vị trực thuộc', 'This unit has no units under it', 1)));
        this.noChildren = true;
        this.paint();
        return;
      }
      const fc = await this.svc.api.get(`/api/v1/layers/${enc(unit.hierarchy + '.' + level)}.geojson?parent=${enc(this.board.area)}&zoom=${MAP_ZOOM}`, 'application/geo+json');
      if (this.board.destroyed) return;
      this.build(buildGeometry(fc));
      this.changed();
    } catch (e) {
      this.fail(e);
    }
  }

  build(geom) {
    this.geom = geom;
    const pad = 6;
    this.noData = `map-nodata-${this.serial}`;
    const s = mapSvg(geom, pad, { id: this.noData, size: 8, stripe: 2.5, colours: ['#121a28', '#2f3b52'] }, 'map-insets',
      { class: 'map-svg', preserveAspectRatio: 'xMidYMid meet', role: 'group', 'aria-label': 'bản đồ (map)' });
    const units = svg('g', { class: 'map-units' });
    for (const [code, u] of geom.units) {
      const p = svg('path', { d: u.d, 'data-area': code, 'data-value': '', fill: `url(#${this.noData})` });
      p.append(svg('title'));
      units.append(p);
      this.paths.set(code, { el: p, fill: '', raw: null, title: p.firstChild });
    }
    this.rings = svg('g', { class: 'map-rings', 'aria-hidden': 'true' });
    this.devLayer = svg('g', { class: 'map-devices' });
    s.append(units, this.rings, this.devLayer);
    if (this.drill) {
      s.classList.add('drillable');
      s.addEventListener('click', (ev) => {
        const p = ev.target.closest('path[data-area]');
        if (p) this.board.onDrill(this.drill, p.dataset.area);
      });
    }
    this.svgEl = s;
    this.mapEl.replaceChildren(s);
  }

  // drillNext opens the next child's dashboard of the timed turn, which
  // goes on from board to board: the worst by the indicator's direction
  // first, children without a figure last.
  drillNext() {
    if (!this.children) return;
    const order = this.def.direction === 'higher_is_better' ? 'bottom' : 'top';
    const kids = rank(Object.keys(this.children).map((area) => ({ area, value: this.valueOf(area) })), order, 0);
    if (!kids.length) return;
    const turns = this.svc.drillTurns || (this.svc.drillTurns = new Map());
    const key = `${this.board.area}|${this.spec.id}|${this.drill}`;
    const i = (turns.get(key) || 0) % kids.length;
    turns.set(key, i + 1);
    this.board.onDrill(this.drill, kids[i].area, { returnAfter: this.drillSeconds });
  }

  valueOf(code) {
    const c = this.children && this.children[code];
    const v = c && c.kpis ? c.kpis[this.id] : null;
    return isNum(v) ? v : null;
  }

  render() {
    if (!this.geom || !this.children) return;
    const codes = Array.from(this.paths.keys());
    const values = codes.map((c) => this.valueOf(c));
    const scale = legendScale(values, {
      mode: this.o.legend === 'fixed' ? 'fixed' : 'fitted', thresholds: this.o.thresholds,
      ratio: isShare(this.def), ramp: this.o.ramp === 'cividis' ? 'cividis' : 'viridis',
    });
    codes.forEach((code, i) => {
      const p = this.paths.get(code);
      const v = values[i];
      const fill = scale.colour(v) || `url(#${this.noData})`;
      if (p.fill !== fill) { p.el.setAttribute('fill', fill); p.fill = fill; }
      if (p.raw !== v) {
        setData(p.el, 'value', v === null ? '' : String(v));
        p.raw = v;
        const c = this.children[code];
        p.title.textContent = `${(c && c.name) || code}: ${formatValue(this.def, v)}`;
      }
    });
    this.renderLegend(scale, values);
    this.renderLayers();
    setData(this.el, 'units', String(this.paths.size));
    setData(this.el, 'ramp', scale.kind === 'continuous' ? (this.o.ramp === 'cividis' ? 'cividis' : 'viridis') : '');
    this.paint();
  }

  renderLegend(scale, values) {
    const d = this.def;
    const n = values.filter((v) => v !== null).length;
    const items = [];
    if (scale.kind === 'continuous') {
      const bar = h('span', { class: 'legend-ramp', 'aria-hidden': 'true' });
      const stops = [];
      for (let i = 0; i <= 8; i++) stops.push(scale.colour(scale.min + ((scale.max - scale.min) * i) / 8));
      bar.style.backgroundImage = `linear-gradient(90deg, ${stops.join(', ')})`;
      items.push(h('span', { class: 'legend-end' }, formatValue(d, scale.min)), bar, h('span', { class: 'legend-end' }, formatValue(d, scale.max)));
    } else {
      scale.colours.forEach((c, i) => {
        const sw = h('span', { class: 'legend-swatch', 'aria-hidden': 'true' });
        sw.style.backgroundColor = c;
        const lo = i === 0 ? null : scale.breaks[i - 1];
        const hi = i < scale.breaks.length ? scale.breaks[i] : null;
        const text = lo === null ? `< ${formatValue(d, hi)}` : hi === null ? `≥ ${formatValue(d, lo)}` : `${formatValue(d, lo)}–${formatValue(d, hi)}`;
        items.push(h('span', { class: 'legend-class' }, sw, text));
      });
    }
    const count = bi('legend-count', `${n}/${values.length} có số liệu`, `${n} of ${values.length} with figures`, 1);
    count.dataset.optional = '1';
    const nodata = h('span', { class: 'legend-class', data: { optional: 1 } }, h('span', { class: 'legend-swatch nodata', 'aria-hidden': 'true' }), bi('', 'không có số liệu', 'no data', 1));
    const key = JSON.stringify([scale.kind, scale.min, scale.max, scale.breaks, n, values.length]);
    if (key === this.legendKey) return;
    this.legendKey = key;
    this.legend.replaceChildren(h('span', { class: 'legend-scale', data: { kind: scale.kind, min: String(scale.min ?? ''), max: String(scale.max ?? '') } }, ...items), nodata, count);
  }

  renderLayers() {
    if (!this.svgEl) return;
    // Markers keep a size on screen whatever the map's scale: the drawing
    // fits its box (unscaled layout size: a preview scales the screen).
    const vbw = this.geom.w + 12;
    const vbh = this.geom.h + 12;
    const fitScale = Math.min(this.mapEl.clientWidth / vbw, this.mapEl.clientHeight / vbh);
    const unitPx = this.board.unitPx();
    const perPx = fitScale > 0 ? 1 / fitScale : 1;
    const r = (0.55 * unitPx * perPx).toFixed(2);
    const ringR = (1.1 * unitPx * perPx).toFixed(2);
    const alarmed = new Map();
    if (this.showAlarms) {
      for (const a of this.alarms) {
        if (!a || a.state === 'resolved') continue;
        const prev = alarmed.get(a.device_id);
        if (!prev || sevRank(a.severity) < sevRank(prev.severity)) alarmed.set(a.device_id, a);
      }
    }
    const seen = new Set();
    const place = (id, lat, lon, area, kind, status, alarm) => {
      if (!isNum(lat) || !isNum(lon) || (lat === 0 && lon === 0)) return;
      seen.add(id);
      let m = this.marks.get(id);
      if (!m) {
        m = { dot: svg('circle', { class: 'device', 'data-device': id }), ring: svg('circle', { class: 'device-ring', 'data-device': id }) };
        m.dot.append(svg('title'));
        this.marks.set(id, m);
      }
      const [x, y] = this.geom.point(lon, lat, area);
      for (const el of [m.dot, m.ring]) { el.setAttribute('cx', x.toFixed(1)); el.setAttribute('cy', y.toFixed(1)); }
      m.dot.setAttribute('r', r);
      m.ring.setAttribute('r', ringR);
      setData(m.dot, 'kind', kind || '');
      setData(m.dot, 'status', status || '');
      m.dot.firstChild.textContent = id;
      if (this.showDevices && !m.dot.parentNode) this.devLayer.append(m.dot);
      if (alarm) {
        setData(m.ring, 'severity', alarm.severity || '');
        setData(m.ring, 'state', alarm.state || '');
        if (!m.ring.parentNode) this.rings.append(m.ring);
      } else if (m.ring.parentNode) {
        m.ring.remove();
      }
    };
    if (this.showDevices) {
      for (const d of this.devices) if (d && typeof d.id === 'string') place(d.id, Number(d.lat), Number(d.lon), d.area_code, d.kind, d.status, alarmed.get(d.id));
    }
    for (const [id, a] of alarmed) if (!seen.has(id)) place(id, Number(a.lat), Number(a.lon), a.area_code, a.device_kind, '', a);
    for (const [id, m] of this.marks) {
      if (seen.has(id)) continue;
      m.dot.remove();
      m.ring.remove();
      this.marks.delete(id);
    }
    setData(this.el, 'devices', String(this.devLayer.childElementCount));
    setData(this.el, 'alarms', String(this.rings.childElementCount));
  }

  resize() { /* markers are sized at each render */ }
}

