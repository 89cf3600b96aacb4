// Words and numbers of the wall, in Vietnamese first and English second:
// formats by indicator kind, severities, camera-event types, sensor
// readings, and alarm texts composed from the alarm's fields (the server
// writes its messages in English). Pure: no DOM, no clock, no network, so
// that cmd/iocd/testdata/wall/unit_test.js checks it as it is.

const intFmt = new Intl.NumberFormat('vi-VN', { maximumFractionDigits: 0 });
const decFmts = new Map();

export const NONE = '–'; // a figure that is null: nothing to divide by, no reading

// decFmt formats with exactly digits decimals, Vietnamese style (1.234,5);
// upTo drops trailing zeros (1,7 rather than 1,70), as a table of many
// figures reads best.
export function decFmt(digits, upTo) {
  const key = upTo ? -1 - digits : digits;
  let f = decFmts.get(key);
  if (!f) {
    f = new Intl.NumberFormat('vi-VN', { minimumFractionDigits: upTo ? 0 : digits, maximumFractionDigits: digits });
    decFmts.set(key, f);
  }
  return f;
}

export function formatInt(n) {
  return intFmt.format(n);
}

// isNum tells a finite number from null, a string or NaN.
export const isNum = (v) => typeof v === 'number' && isFinite(v);

// digitsOf is how many decimals an indicator shows, from its catalog kind
// and unit: ratios as percentages with one, days and µg/m³ with one,
// metres with two, counts with none.
export function digitsOf(def) {
  if (!def) return 1;
  if (isShare(def)) return 1;
  switch (def.kind) {
    case 'count': case 'breakdown': return 0;
  }
  if (def.unit === 'm') return 2;
  return 1;
}

// isShare says def is a share of a whole (a ratio whose unit is "ratio"),
// shown as a percentage: a department's ratio in its own unit (people per
// household, pupils per teacher) is a plain number.
export function isShare(def) {
  return !!def && def.kind === 'ratio' && (!def.unit || def.unit === 'ratio');
}

// formatValue writes v as the catalog entry def says: "97,5%" for a ratio,
// "1.234" for a count, "12,3" for days or µg/m³; with upTo, decimals other
// than a ratio's drop their trailing zeros ("1,7" m rather than "1,70").
export function formatValue(def, v, upTo) {
  if (!isNum(v)) return NONE;
  if (isShare(def)) return (tiny(v * 100, 1) ?? decFmt(1).format(v * 100)) + '%';
  if (def && def.kind === 'sum') upTo = true; // a department's total: "1.509", not "1.509,0"
  const d = digitsOf(def);
  if (d === 0) return intFmt.format(Math.round(v));
  return tiny(v, d) ?? decFmt(d, upTo).format(v);
}

const tinyFmt = new Intl.NumberFormat('vi-VN', { maximumSignificantDigits: 2 });

// tiny writes v with two significant digits when d decimals would show a
// figure that is not zero as "0,0" (dossiers per 1,000 people in a small
// window, a share of a hundredth of a per cent); null otherwise.
function tiny(v, d) {
  return v !== 0 && Math.abs(v) < 0.5 * 10 ** -d ? tinyFmt.format(v) : null;
}

// isTally says def's figures are totals of things (dossiers, events, a
// department's summed measure): written whole, and compacted when wide.
export function isTally(def) {
  return !!def && (def.kind === 'count' || def.kind === 'breakdown' || def.kind === 'sum');
}

// compactCount writes a count too wide for a tile (100.000 and over) in
// thousands or millions: the number and the word that takes the unit's
// place, in Vietnamese and English ("123,5" "nghìn" "thousand"); null
// for a count written whole. Six digits at the 6% of the screen's height
// a tile's figure keeps do not fit a sixth of a 16:9 screen.
export function compactCount(v) {
  if (!isNum(v) || Math.abs(v) < 1e5) return null;
  if (Math.abs(v) < 999950) return [decFmt(1).format(v / 1e3), 'nghìn', 'thousand'];
  return [decFmt(2).format(v / 1e6), 'triệu', 'million'];
}

// UNITS are the catalog's units as shown next to a figure; counts say
// what they count in the label instead.
const UNITS = { days: ['ngày', 'days'], 'ug/m3': ['µg/m³', 'µg/m³'], m: ['m', 'm'] };

export function unitText(def) {
  if (!def || isShare(def) || isTally(def)) return ['', ''];
  return UNITS[def.unit] || [def.unit || '', def.unit || ''];
}

// formatChange writes a change between two figures of def: percentage
// points for a ratio ("+2,3 điểm %" / "+2.3 pp"), a relative change for a
// count ("+12,5%"), else the difference in the unit. null when either
// figure is missing; {vi, en, sign} otherwise, sign −1, 0 or 1.
export function formatChange(def, now, then) {
  if (!isNum(now) || !isNum(then)) return null;
  const diff = now - then;
  const sign = Math.abs(diff) < 1e-9 ? 0 : diff > 0 ? 1 : -1;
  const plus = sign > 0 ? '+' : sign < 0 ? '−' : '±';
  const abs = Math.abs(diff);
  if (isShare(def)) {
    const pp = decFmt(1).format(abs * 100);
    return { vi: `${plus}${pp} điểm %`, en: `${plus}${pp.replace(',', '.')} pp`, sign };
  }
  if (def && def.kind === 'count') {
    if (then === 0) {
      const n = intFmt.format(Math.round(abs));
      return { vi: `${plus}${n}`, en: `${plus}${n.replace(/\./g, ',')}`, sign };
    }
    const pct = decFmt(1).format((abs / Math.abs(then)) * 100);
    return { vi: `${plus}${pct}%`, en: `${plus}${pct.replace(',', '.')}%`, sign };
  }
  const d = decFmt(digitsOf(def)).format(abs);
  const [uvi, uen] = unitText(def);
  return { vi: `${plus}${d}${uvi ? ' ' + uvi : ''}`, en: `${plus}${d.replace(',', '.')}${uen ? ' ' + uen : ''}`, sign };
}

// changeTone says whether a change is good news by the indicator's
// direction: 'good', 'bad' or 'neutral'.
export function changeTone(def, sign) {
  if (!sign || !def || def.direction === 'neutral') return 'neutral';
  const better = def.direction === 'lower_is_better' ? sign < 0 : sign > 0;
  return better ? 'good' : 'bad';
}

// pick takes a {vi, en} text of a definition (or a plain string) and
// returns [vi, en]; en is '' when it is the same as vi or absent.
export function pick(t) {
  if (typeof t === 'string') return [t, ''];
  if (!t || typeof t !== 'object') return ['', ''];
  const vi = typeof t.vi === 'string' ? t.vi : '';
  const en = typeof t.en === 'string' ? t.en : '';
  if (!vi) return [en, ''];
  return [vi, en === vi ? '' : en];
}

export const WINDOWS = {
  today: ['Hôm nay', 'Today'],
  '24h': ['24 giờ qua', 'Last 24 hours'],
  '7d': ['7 ngày qua', 'Last 7 days'],
  '30d': ['30 ngày qua', 'Last 30 days'],
};

export const SEVERITIES = {
  critical: { rank: 0, vi: 'Nghiêm trọng', en: 'Critical' },
  warning: { rank: 1, vi: 'Cảnh báo', en: 'Warning' },
  info: { rank: 2, vi: 'Thông tin', en: 'Info' },
};

export const sevRank = (s) => (SEVERITIES[s] ? SEVERITIES[s].rank : 3);

// atLeast tells whether severity s is at or above min (an unknown min
// lets everything through).
export function atLeast(s, min) {
  if (!SEVERITIES[min]) return true;
  return sevRank(s) <= sevRank(min);
}

export const EVENT_TYPES = {
  traffic_violation: ['Vi phạm giao thông', 'Traffic violation'], congestion: ['Ùn tắc giao thông', 'Congestion'],
  accident: ['Tai nạn', 'Accident'], wrong_way: ['Đi ngược chiều', 'Wrong way'], illegal_parking: ['Đỗ xe sai quy định', 'Illegal parking'],
  plate_read: ['Nhận dạng biển số', 'Plate read'], crowd: ['Tụ tập đông người', 'Crowd'], intrusion: ['Xâm nhập', 'Intrusion'],
  line_crossing: ['Vượt vạch', 'Line crossing'], loitering: ['Lảng vảng', 'Loitering'], abandoned_object: ['Vật thể bỏ quên', 'Abandoned object'],
  fight: ['Ẩu đả', 'Fight'], fire: ['Cháy', 'Fire'], smoke: ['Khói', 'Smoke'], flooding: ['Ngập nước', 'Flooding'],
  motion: ['Chuyển động', 'Motion'], video_loss: ['Mất tín hiệu video', 'Video loss'], tamper: ['Phá hoại camera', 'Camera tampering'],
};

export function eventType(t) {
  const s = String(t || '');
  return EVENT_TYPES[s] || [s.replace(/_/g, ' '), ''];
}

// READINGS: sensor kind → [vi, en, unit, decimals].
export const READINGS = {
  pm25: ['PM2.5', 'PM2.5', 'µg/m³', 1], pm10: ['PM10', 'PM10', 'µg/m³', 1], no2: ['NO₂', 'NO₂', 'µg/m³', 1],
  o3: ['O₃', 'O₃', 'µg/m³', 1], so2: ['SO₂', 'SO₂', 'µg/m³', 1], co: ['CO', 'CO', 'mg/m³', 2], aqi: ['AQI', 'AQI', '', 0],
  temperature: ['Nhiệt độ', 'Temperature', '°C', 1], humidity: ['Độ ẩm', 'Humidity', '%', 0],
  water_level: ['Mực nước', 'Water level', 'm', 2], water_flow: ['Lưu lượng', 'Water flow', 'm³/s', 2],
  rainfall: ['Lượng mưa', 'Rainfall', 'mm', 1], noise: ['Tiếng ồn', 'Noise', 'dB', 0], wind_speed: ['Gió', 'Wind', 'm/s', 1],
};

// reading writes a sensor's value in its unit; upTo drops trailing zeros,
// as decFmt says.
export function reading(kind, value, upTo) {
  const [vi, en, unit, digits] = READINGS[kind] || [kind, kind, '', 2];
  const v = isNum(value) ? decFmt(digits, upTo).format(value) + (unit ? ' ' + unit : '') : NONE;
  return { vi, en, value: v, unit, digits };
}

// durationText is "12 phút" / "12 min", "3 giờ 5 phút" / "3 h 5 min".
export function durationText(seconds) {
  if (!isNum(seconds) || seconds < 0) return ['', ''];
  const min = Math.floor(seconds / 60);
  if (min < 1) return [`${Math.round(seconds)} giây`, `${Math.round(seconds)} s`];
  if (min < 60) return [`${min} phút`, `${min} min`];
  const h = Math.floor(min / 60);
  if (h < 24) return min % 60 ? [`${h} giờ ${min % 60} phút`, `${h} h ${min % 60} min`] : [`${h} giờ`, `${h} h`];
  const d = Math.floor(h / 24);
  return [`${d} ngày`, `${d} d`];
}

// ageText is how long ago, from now (ms): "vừa xong" / "just now", …
export function ageText(at, now) {
  if (!isNum(at) || !isNum(now)) return ['', ''];
  const s = Math.max(0, (now - at) / 1000);
  if (s < 60) return ['vừa xong', 'just now'];
  const [vi, en] = durationText(s);
  return [`${vi} trước`, `${en} ago`];
}

// The default alarm rules (alarm.DefaultRules) by id: the server names
// them in English only.
const RULES = {
  'pm25-unhealthy': 'PM2.5 ở mức có hại (≥ 55,5 µg/m³ trong 5 phút)',
  'water-alert-level': 'Mực nước đạt hoặc vượt mức báo động của trạm đo',
  'traffic-violations-burst': '10 vi phạm giao thông tại một camera trong 5 phút',
  'device-offline': 'Thiết bị không gửi dữ liệu 10 phút',
  'dataset-feed-late': 'Dữ liệu chuyên ngành trễ hạn hoặc lỗi lấy dữ liệu',
};
const RULE_KINDS = {
  threshold: 'Chỉ số cảm biến vượt ngưỡng',
  event_count: 'Nhiều sự kiện camera',
  offline: 'Thiết bị mất kết nối',
  dataset_feed: 'Nguồn dữ liệu chuyên ngành',
};

// feedText puts the reasons of a dataset_feed alarm into Vietnamese,
// phrase by phrase of the server's English ("dataset permits: 2026-10 due,
// latest 2026-08; its pull failed: …").
function feedText(msgEn) {
  const [head, ...rest] = msgEn.split(': ');
  const id = head.replace(/^dataset /, '');
  const reasons = rest.join(': ')
    .replace(/no values yet, (\S+) due/, 'chưa có dữ liệu, kỳ $1 đã đến hạn')
    .replace(/(\S+) due, latest (\S+)/, 'kỳ $1 đã đến hạn, mới nhất là kỳ $2')
    .replace(/its pull failed: /, 'lỗi khi lấy dữ liệu: ')
    .replace(/(\d+)% of its units reported for (\S+) \(at least (\d+)% expected\)/, '$1% đơn vị đã báo cáo kỳ $2 (cần ít nhất $3%)')
    .replace(/ is live$/, '');
  return reasons ? `Nguồn dữ liệu "${id}": ${reasons}` : `Nguồn dữ liệu "${id}" đã cập nhật`;
}

// deviceText names a device: "Camera HCM-Q1-017" / "Cảm biến AQ-1 (name)".
export function deviceName(id, name, kind) {
  const n = name && name !== id ? `${name} (${id})` : id || '';
  if (kind === 'camera') return [`Camera ${n}`, `Camera ${n}`];
  if (kind === 'sensor') return [`Cảm biến ${n}`, `Sensor ${n}`];
  return [n, n];
}

// alarmText composes an alarm's rule name and message in Vietnamese from
// its fields, with the server's English next to them: {rule: [vi, en],
// message: [vi, en]}. The English message is the server's own.
export function alarmText(a) {
  const ruleEn = String(a.rule_name || a.rule_id || '');
  const ruleVi = RULES[a.rule_id] || RULE_KINDS[a.rule_kind] || ruleEn;
  const msgEn = String(a.message || '');
  const [dvi] = deviceName(a.device_id, a.device_name, a.device_kind);
  let msgVi = '';
  const first = msgEn.split(' ');
  switch (a.rule_kind) {
    case 'threshold': {
      const r = reading(first[0], a.value);
      const limit = reading(first[0], a.threshold);
      msgVi = `${r.vi} tại ${dvi} là ${r.value}, đạt hoặc vượt ngưỡng ${limit.value}`;
      break;
    }
    case 'event_count': {
      const [tvi] = eventType(first[1]);
      msgVi = `${isNum(a.value) ? formatInt(a.value) : NONE} sự kiện "${tvi}" tại ${dvi} (giới hạn ${isNum(a.threshold) ? formatInt(a.threshold) : NONE})`;
      break;
    }
    case 'offline': {
      const [silent] = durationText(a.value);
      const [limit] = durationText(a.threshold);
      msgVi = `${dvi} không gửi dữ liệu trong ${silent} (giới hạn ${limit})`;
      break;
    }
    case 'dataset_feed':
      msgVi = feedText(msgEn);
      break;
    default:
      msgVi = msgEn;
  }
  return { rule: [ruleVi, ruleEn === ruleVi ? '' : ruleEn], message: [msgVi, msgEn === msgVi ? '' : msgEn] };
}

// Clock texts in the deployment's zone, given as minutes east of UTC.
const p2 = (n) => String(n).padStart(2, '0');
const WEEKDAYS = [['Chủ nhật', 'Sunday'], ['Thứ Hai', 'Monday'], ['Thứ Ba', 'Tuesday'], ['Thứ Tư', 'Wednesday'],
  ['Thứ Năm', 'Thursday'], ['Thứ Sáu', 'Friday'], ['Thứ Bảy', 'Saturday']];

// zoned returns the wall-clock fields of instant t (ms) at offset minutes.
export function zoned(t, offset) {
  const d = new Date(t + offset * 60000);
  return { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds(), wd: d.getUTCDay() };
}

export function timeText(t, offset, seconds) {
  const z = zoned(t, offset);
  return `${p2(z.h)}:${p2(z.mi)}` + (seconds === false ? '' : `:${p2(z.s)}`);
}

export function dateText(t, offset) {
  const z = zoned(t, offset);
  const [wvi, wen] = WEEKDAYS[z.wd];
  return [`${wvi}, ${p2(z.d)}/${p2(z.mo)}/${z.y}`, `${wen} ${z.y}-${p2(z.mo)}-${p2(z.d)}`];
}

// offsetOf reads the zone of an RFC 3339 time the server wrote in the
// deployment's zone: minutes east of UTC, or null.
export function offsetOf(s) {
  if (typeof s !== 'string') return null;
  const m = /([+-])(\d{2}):(\d{2})$/.exec(s);
  if (m) return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
  return /Z$/.test(s) ? 0 : null;
}

// indicatorName is an indicator's [vi, en] names from the catalog.
export function indicatorName(def, id) {
  if (!def) return [String(id || ''), ''];
  return [def.name_vi || def.id, def.name_en && def.name_en !== def.name_vi ? def.name_en : ''];
}
