// The built-in page's ticker of camera events: what an events/ message
// leaves the strip holding. Pure: no DOM, so that
// cmd/iocd/testdata/pageunit/unit_test.js checks it as it is.

// mergeEvents takes an events/ message d into entries, newest first: a
// snapshot lists the newest events, an update those that arrived since the
// last message; d.folded counts those left out, older than those listed.
// An entry is {id, e} for an event, {more: n} for n left out; the strip
// keeps a count with the events it came with, and lets it go when they
// leave. Counts side by side are one count. At most max entries.
export function mergeEvents(entries, d, snapshot, max) {
  const listed = [];
  const ids = new Set();
  for (const e of Array.isArray(d.events) ? d.events : []) {
    if (!e || typeof e !== 'object' || typeof e.event_id !== 'string' || ids.has(e.event_id)) continue;
    ids.add(e.event_id);
    listed.push({ id: e.event_id, e });
  }
  const folded = Number(d.folded) > 0 ? Math.floor(Number(d.folded)) : 0;
  const fresh = listed.concat(folded ? [{ more: folded }] : []);
  const all = snapshot ? fresh : fresh.concat(entries.filter((x) => !x.id || !ids.has(x.id)));
  const merged = [];
  for (const x of all) {
    const last = merged[merged.length - 1];
    if (x.more && last && last.more) merged[merged.length - 1] = { more: last.more + x.more };
    else merged.push(x);
  }
  return merged.slice(0, max);
}
