// How the built-in page writes its figures and times: an indicator's value
// as the catalog entry (GET /api/v1/kpis) says, whether a figure calls for
// attention, and clock texts in the server's zone. Pure: no DOM, no clock
// (now is passed in), so that cmd/iocd/testdata/pageunit/unit_test.js
// checks it as it is.

import { formatValue, unitText, indicatorName, zoned, timeText } from '../wall/text.js';

const ON_TIME_WARNING = 0.9; // on-time rate below this is shown as a warning
const PM25_WARNING = 55.5; // µg/m³: "unhealthy" from here, as the default alarm rule says

// format writes an indicator's figure for a table of many: ratios as
// percentages with one decimal, other decimals without trailing zeros.
// def is the catalog entry (undefined for an indicator it does not list).
export function format(def, v) {
  return formatValue(def, v, true);
}

// isWarning tells whether a figure needs an operator's eye: anything
// open, offline or critical at all, an on-time rate under 90%, PM2.5 at
// an unhealthy level.
export function isWarning(id, v) {
  if (typeof v !== 'number') return false;
  switch (id) {
    case 'dossiers_overdue': case 'alarms_open': case 'cameras_offline': case 'sensors_offline': case 'camera_events_critical':
      return v > 0;
    case 'on_time_rate': return v < ON_TIME_WARNING;
    case 'pm25_max': case 'pm25_avg': return v >= PM25_WARNING;
  }
  return false;
}

// kpiName is an indicator's Vietnamese name with its unit, as a map
// choice or a tooltip says it: "PM2.5 cao nhất (µg/m³)".
export function kpiName(def, id) {
  const [vi] = indicatorName(def, id);
  const [unit] = unitText(def);
  return unit ? `${vi} (${unit})` : vi;
}

// asOfTime reads an RFC 3339 time in milliseconds, 0 when it is none; Go
// writes up to nine fraction digits, which Date.parse does not promise to read.
export function asOfTime(s) {
  if (typeof s !== 'string') return 0;
  const t = Date.parse(s.replace(/(\.\d{3})\d+/, '$1'));
  return isNaN(t) ? 0 : t;
}

const p2 = (n) => String(n).padStart(2, '0');

// clockText is "14:05:09", or with the date "14:05:09 31/12/2025", at
// offset minutes east of UTC (null: the browser's zone); '' for a time it
// cannot read.
export function clockText(iso, offset, withDate) {
  const t = asOfTime(iso);
  if (!t) return '';
  const off = offset === null || offset === undefined ? -new Date(t).getTimezoneOffset() : offset;
  const hms = timeText(t, off);
  if (!withDate) return hms;
  const z = zoned(t, off);
  return `${hms} ${p2(z.d)}/${p2(z.mo)}/${z.y}`;
}

// asOfText is the header's "as of": the server's wall time as it wrote it
// (its offset is in the string), so that the screen agrees with the
// server's "today" wherever the browser is.
export function asOfText(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(s);
  return m ? `${m[4]}:${m[5]}:${m[6]} ${m[3]}/${m[2]}/${m[1]}` : s;
}
