// The built-in page's table of units: which indicators are columns, in
// which group of columns, in what order; how rows sort and how the
// filter matches names. Names, kinds and units come from the catalog
// (GET /api/v1/kpis); what is here is the table's own layout. Pure: no
// DOM, so that cmd/iocd/testdata/pageunit/unit_test.js checks it as it is.

// COLUMN_GROUPS are the groups of columns the page shows one at a time
// (the #columns selector), each [id, Vietnamese name, columns], a column
// [indicator id, short header]. A snapshot's other numeric indicators
// follow in the group 'other'.
export const COLUMN_GROUPS = [
  ['dossiers', 'Hồ sơ', [
    ['dossiers_received', 'Tiếp nhận'], ['online_rate', 'Trực tuyến'], ['dossiers_resolved', 'Đã giải quyết'],
    ['on_time_rate', 'Đúng hạn'], ['dossiers_overdue', 'Quá hạn'], ['avg_resolution_days', 'TG giải quyết (ngày)'],
    ['online_payment_rate', 'Thanh toán TT'], ['e_result_rate', 'Kết quả điện tử'], ['digitization_rate', 'Số hóa'],
    ['data_reuse_rate', 'Tái sử dụng']]],
  ['devices', 'Cảnh báo, thiết bị', [
    ['alarms_open', 'Cảnh báo'], ['cameras_online', 'Camera hoạt động'], ['cameras_offline', 'Camera mất kết nối'],
    ['sensors_online', 'Cảm biến hoạt động'], ['sensors_offline', 'Cảm biến mất kết nối']]],
  ['environment', 'Camera, môi trường', [
    ['camera_events', 'Sự kiện camera'], ['camera_events_critical', 'Sự kiện nghiêm trọng'], ['pm25_max', 'PM2.5 cao nhất'],
    ['pm25_avg', 'PM2.5 trung bình'], ['water_level_max', 'Mực nước cao nhất']]],
];
export const OTHER = 'other';
export const GROUP_NAMES = Object.fromEntries(COLUMN_GROUPS.map(([g, name]) => [g, name]).concat([[OTHER, 'Khác']]));
// COLUMN_SETS are the choices of the #columns selector: a group, or all.
export const COLUMN_SETS = COLUMN_GROUPS.map(([g]) => g).concat(['all']);

const LAID_OUT = new Map();
for (const [g, , cols] of COLUMN_GROUPS) for (const [id, short] of cols) LAID_OUT.set(id, { group: g, short });

// Figures the tiles show beside another, not columns of their own.
const DETAILS = new Set(['dossiers_online', 'dossiers_on_time', 'records_approximate']);

// DEFAULT_COLUMNS are the table's columns before a snapshot says which there are.
export const DEFAULT_COLUMNS = COLUMN_GROUPS[0][2].map(([id]) => id);

export function groupOf(id) {
  const c = LAID_OUT.get(id);
  return c ? c.group : OTHER;
}

// shortName is a column's header: the layout's, else the catalog's name.
export function shortName(id, def) {
  const c = LAID_OUT.get(id);
  if (c) return c.short;
  return def && def.name_vi ? def.name_vi : id;
}

// columnsOf lists the indicators of kpis (a snapshot's) that are columns
// and map choices: those of the layout that it has, in its order, then any
// other number it carries. Breakdowns (objects) can be neither a column
// nor a colour.
export function columnsOf(kpis) {
  const k = kpis || {};
  const has = (id) => Object.prototype.hasOwnProperty.call(k, id);
  const cols = Array.from(LAID_OUT.keys()).filter(has);
  for (const id of Object.keys(k)) {
    const v = k[id];
    if (LAID_OUT.has(id) || DETAILS.has(id) || (v !== null && typeof v !== 'number')) continue;
    cols.push(id);
  }
  return cols.length ? cols : DEFAULT_COLUMNS.slice();
}

// fold makes search diacritic- and case-insensitive: "sai gon" finds "Sài Gòn".
export function fold(s) {
  return String(s).normalize('NFD').replace(/[\u0300-\u036f]/g, '')
    .replace(/đ/g, 'd').replace(/Đ/g, 'D').toLowerCase().replace(/\s+/g, ' ').trim();
}

// compareRows orders rows {code, snap} by sort {key, dir}: by name (in
// Vietnamese order, then code), or by a figure, rows without one always
// last, ties by name.
export function compareRows(a, b, sort) {
  const { key, dir } = sort;
  const byName = () => (a.snap.name || '').localeCompare(b.snap.name || '', 'vi') || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0);
  if (key === 'name') return dir * byName();
  const va = (a.snap.kpis || {})[key];
  const vb = (b.snap.kpis || {})[key];
  const na = typeof va !== 'number';
  const nb = typeof vb !== 'number';
  if (na || nb) return na && nb ? byName() : na ? 1 : -1;
  return dir * (va - vb) || byName();
}
