// Department data feeds: how live each dataset the departments send is
// (GET /api/v1/datasets/health), the late ones first, then the least
// complete, so that a leader sees whose figures on the wall are old
// before reading them. Names come from the definitions (GET
// /api/v1/datasets). As many rows as the box holds, the rest on pages
// that turn, as a ranking's do: a wall has no one to scroll.

import { Widget } from './base.js';
import { h, bi, setText, setData } from '../dom.js';
import { decFmt, formatInt, isNum, NONE } from '../text.js';
import { compareFeeds, feedState, paginate, pageAt, rowsThatFit } from '../layout.js';

// A feed turns late when a day ends, and uploads come any time: a minute
// is soon enough for a wall, and the answer is a few counts per dataset.
const REFRESH = 60 * 1000;
const PAGE_SECONDS = 10;
const TONE = { late: 'bad', incomplete: 'warn', on_time: 'good' };
const MARK = { late: '✕', incomplete: '!', on_time: '✓' };

export class Feeds extends Widget {
  init() {
    this.onlyLate = this.o.only_late === true;
    if (this.onlyLate) this.setTitle('Dữ liệu các sở trễ hạn, chưa đủ', 'Department data feeds, late or incomplete');
    else this.setTitle('Dữ liệu các sở', 'Department data feeds');
    // After setTitle, which writes the title's first and last child.
    this.count = h('span', { class: 'feed-count' });
    this.titleEl.prepend(this.count);
    this.feeds = null;
    this.names = null; // dataset id → [vi, en]
    this.metrics = null; // a row's height and the list's, measured once per size
    this.started = performance.now();
    this.list = h('ol', { class: 'feed-list' });
    this.pager = h('div', { class: 'rank-pager feed-pager', data: { optional: 3 } });
    this.body.append(this.list, this.pager);
    this.fetch();
    this.board.every(REFRESH, () => this.fetch());
    this.board.every(PAGE_SECONDS * 1000, () => this.changed());
  }

  async fetch() {
    try {
      const r = await this.svc.api.get('/api/v1/datasets/health');
      const list = Array.isArray(r && r.datasets) ? r.datasets.filter((f) => f && typeof f.dataset === 'string') : [];
      // The names change only with a definition: read again when a
      // dataset is new to the widget.
      if (!this.names || list.some((f) => !this.names.has(f.dataset))) await this.fetchNames();
      this.feeds = list;
      this.changed();
    } catch (e) {
      if (!this.feeds) this.fail(e);
    }
  }

  // fetchNames reads the datasets' names from their definitions; a feed
  // whose definition cannot be read is named by its id meanwhile.
  async fetchNames() {
    const names = new Map();
    try {
      const r = await this.svc.api.get('/api/v1/datasets');
      for (const it of Array.isArray(r && r.datasets) ? r.datasets : []) {
        const d = it && it.document;
        const id = (it && it.id) || (d && d.id);
        if (typeof id !== 'string' || !d) continue;
        const vi = typeof d.name_vi === 'string' && d.name_vi ? d.name_vi : id;
        const en = typeof d.name_en === 'string' && d.name_en !== vi ? d.name_en : '';
        names.set(id, [vi, en]);
      }
    } catch (e) {
      if (this.names) return; // keep the names known
    }
    this.names = names;
  }

  row(f) {
    const state = feedState(f);
    const [vi, en] = (this.names && this.names.get(f.dataset)) || [f.dataset, ''];
    const c = isNum(f.completeness) ? Math.max(0, Math.min(1, f.completeness)) : null;
    const latest = typeof f.latest_period === 'string' ? f.latest_period : '';
    const due = typeof f.due === 'string' ? f.due : '';
    // The figures (the period due, units reported of those expected)
    // read the same in either language: only the Vietnamese carries them.
    let says;
    switch (state) {
      case 'late':
        says = [`Trễ hạn${due ? ' · kỳ ' + due : ''}`, 'late'];
        break;
      case 'incomplete':
        says = [`Chưa đủ · ${formatInt(f.reported || 0)}/${formatInt(f.expected || 0)}`, 'incomplete'];
        break;
      default:
        says = ['Đúng hạn', 'on time'];
    }
    // Short of room, the English of the second line goes first: its
    // period reads the same in Vietnamese.
    const top = h('div', { class: 'feed-top' },
      bi('feed-name', vi, en, 2),
      h('span', { class: 'feed-state', data: { tone: TONE[state] } },
        h('span', { class: 'feed-mark', 'aria-hidden': 'true' }, MARK[state]), bi('', says[0], says[1], 2)));
    const meta = bi('feed-meta', [f.department, latest ? `kỳ ${latest}` : 'chưa có số liệu'].filter(Boolean).join(' · '),
      latest ? `latest ${latest}` : 'no data yet', 1);
    // The bar repeats the percentage: a narrow box leaves it out.
    const bar = h('span', { class: 'feed-bar', 'aria-hidden': 'true', data: { none: String(c === null), optional: 3 } });
    bar.style.setProperty('--share', String(c === null ? 0 : c));
    const pct = h('span', { class: 'feed-pct' }, c === null ? NONE : decFmt(1, true).format(c * 100) + '%');
    const bottom = h('div', { class: 'feed-bottom' }, meta, bar, pct);
    const u = f.last_upload;
    if (u && (u.error || u.refused > 0)) {
      // What the department should look at: its last upload or run.
      const [wvi, wen] = u.error ? ['Lần nhận cuối bị lỗi', 'last run failed'] : [`${formatInt(u.refused)} dòng bị từ chối`, `${u.refused} rows refused`];
      const warn = bi('feed-warn', wvi, wen, 1);
      warn.dataset.optional = '3';
      bottom.append(warn);
    }
    return h('li', {
      class: 'feed',
      data: {
        dataset: f.dataset, state, late: String(!!f.late), completeness: c === null ? '' : String(c), latest, due,
        reported: String(f.reported || 0), expected: String(f.expected || 0),
      },
    }, top, bottom);
  }

  // clipBoxes: a name or a line too long for its row hides the English
  // first, as anywhere on the wall.
  clipBoxes() {
    return [this.body, this.list, ...this.list.querySelectorAll('.feed-name, .feed-meta')];
  }

  // measure learns, once per size, how high a row is and how much of the
  // list shows with the pager and without it.
  measure(sample) {
    this.list.replaceChildren(this.row(sample));
    const rowH = this.list.firstChild.offsetHeight; // layout size: a preview scales the screen
    const gap = parseFloat(getComputedStyle(this.list).rowGap) || 0;
    this.pager.hidden = false;
    setText(this.pager, '1/1'); // measured with its text: it takes a line
    this.metrics = { rowH, gap, list: this.list.clientHeight, pager: this.pager.offsetHeight };
  }

  render() {
    if (!this.feeds) return;
    const all = this.feeds.slice().sort(compareFeeds);
    const states = all.map(feedState);
    const late = states.filter((s) => s === 'late').length;
    const short = states.filter((s) => s === 'incomplete').length;
    const items = this.onlyLate ? all.filter((f, i) => states[i] !== 'on_time') : all;
    setText(this.count, late ? `${formatInt(late)} trễ hạn` : '');
    setData(this.el, 'count', String(all.length));
    setData(this.el, 'late', String(late));
    setData(this.el, 'incomplete', String(short));
    setData(this.el, 'items', items.map((f) => `${f.dataset}=${feedState(f)}`).join(','));
    // A failure before the first answer replaced the list.
    if (this.list.parentNode !== this.body) this.body.replaceChildren(this.list, this.pager);
    if (!items.length) {
      const [vi, en] = all.length ? ['Mọi bộ dữ liệu đều đúng hạn và đủ', 'Every dataset on time and complete'] : ['Chưa có bộ dữ liệu nào', 'No datasets defined'];
      this.list.replaceChildren(h('li', { class: 'w-empty feed-none' }, bi('', vi, en, 1)));
      this.pager.hidden = true;
      this.pager.dataset.empty = 'true';
      setData(this.el, 'page', '1');
      setData(this.el, 'pages', '1');
      this.paint();
      return;
    }
    if (!this.metrics) this.measure(items[0]);
    // However many feeds there are now: a list grown past one page needs
    // the pager's line.
    const m = this.metrics;
    const perPage = rowsThatFit(m.list + m.pager, m.rowH, m.gap) >= items.length ? items.length : Math.max(1, rowsThatFit(m.list, m.rowH, m.gap));
    const pages = paginate(items, perPage);
    const page = pageAt(pages.length, (performance.now() - this.started) / 1000, PAGE_SECONDS);
    this.list.replaceChildren(...pages[page].map((f) => this.row(f)));
    this.pager.dataset.empty = String(pages.length < 2);
    this.pager.hidden = pages.length < 2;
    setText(this.pager, pages.length > 1 ? `${page + 1}/${pages.length}` : '');
    setData(this.el, 'page', String(page + 1));
    setData(this.el, 'pages', String(pages.length));
    this.paint();
  }

  resize() { this.metrics = null; }
}
