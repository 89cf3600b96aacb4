// The Decision 766 scoreboard of the area from the scoreboard route: its
// points out of 100, its rank among its siblings, and the points of each
// group (or, with options.group naming one of the catalog's groups, that
// group's indicators).

import { Widget } from './base.js';
import { h, bi, setData } from '../dom.js';
import { decFmt, formatInt, formatValue, isNum, pick } from '../text.js';
import { query } from '../api.js';

const REFRESH = 10 * 60 * 1000;
const LEVELS = { province: ['tỉnh, thành phố', 'provinces'], commune: ['xã, phường', 'communes'], district: ['quận, huyện', 'districts'] };

export class Scoreboard extends Widget {
  init() {
    const groups = this.catalog.groups || [];
    this.group = groups.find((g) => g.id === this.o.group) || null;
    if (this.group) this.setTitle(`Bộ chỉ số 766 · ${this.group.name_vi}`, `Decision 766 index · ${this.group.name_en}`);
    else this.setTitle('Bộ chỉ số 766', 'Decision 766 index');
    this.period = typeof this.o.period === 'string' ? this.o.period : '';
    this.fetch();
    this.board.every(REFRESH, () => this.fetch());
  }

  async fetch() {
    try {
      this.sb = await this.svc.api.get('/api/v1/scoreboard' + query({ area: this.board.area, period: this.period }));
      this.changed();
    } catch (e) {
      if (!this.sb) this.fail(e);
    }
  }

  clipBoxes() {
    return this.listEl ? [this.body, this.listEl] : [this.body];
  }

  render() {
    const sb = this.sb;
    if (!sb) return;
    const pts = decFmt(1);
    const total = h('div', { class: 'score-total', data: { points: String(sb.total.points) } },
      h('span', { class: 'score-points' }, pts.format(sb.total.points)),
      h('span', { class: 'score-max' }, `/ ${formatInt(sb.total.max_points)} điểm`));
    const lv = LEVELS[sb.rank && sb.rank.level] || ['đơn vị', 'units'];
    const rank = sb.rank && sb.rank.of ? bi('score-rank', `Hạng ${sb.rank.position}/${sb.rank.of} ${lv[0]} · ${sb.period}`, `rank ${sb.rank.position} of ${sb.rank.of} ${lv[1]}`, 1) : bi('score-rank', sb.period, '', 1);
    const rows = [];
    if (this.group) {
      const g = (sb.groups || []).find((x) => x.id === this.group.id);
      for (const i of g ? g.indicators : []) {
        const def = this.catalog.byId.get(i.id);
        rows.push(this.row(i.id, [i.name_vi, i.name_en], isNum(i.points) ? i.points : 0, i.max_points,
          i.supported ? formatValue(def || { kind: 'ratio' }, i.value) : 'chưa đo được'));
      }
    } else {
      for (const g of sb.groups || []) rows.push(this.row(g.id, [g.name_vi, g.name_en], g.points, g.max_points, ''));
    }
    this.listEl = h('ol', { class: 'score-groups' }, ...rows);
    this.body.replaceChildren(h('div', { class: 'score-head' }, total, rank), this.listEl);
    setData(this.el, 'points', String(sb.total.points));
    this.paint();
  }

  row(id, names, points, max, extra) {
    const [vi, en] = pick({ vi: names[0], en: names[1] });
    const bar = h('span', { class: 'score-bar', 'aria-hidden': 'true' });
    bar.style.setProperty('--share', String(max > 0 ? Math.max(0, Math.min(1, points / max)) : 0));
    return h('li', { class: 'score-group', data: { group: id, points: String(points) } },
      bi('score-name', vi, en, 1), bar,
      h('span', { class: 'score-value' }, `${decFmt(1).format(points)}/${formatInt(max)}`),
      extra ? h('span', { class: 'score-extra', data: { optional: 2 } }, extra) : null);
  }
}
