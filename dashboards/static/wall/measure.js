// The wall's measurement hook, which `iocbench wall` (cmd/iocbench) reads
// through the DevTools protocol: opened with ?measure=1, the page keeps in
// window.__iocMeasure
//
//   samples  one [topic, version, as_of, received, painted] per update of a
//            kpi/ or map/ topic that the page applied: received is
//            Date.now() when the message had been handed to the widgets
//            (they redraw in the microtask that follows), painted is
//            Date.now() once the frame showing the change was rendered (a
//            requestAnimationFrame callback, then a task posted from it,
//            which runs after that frame's style, layout and paint);
//   views    one [at, dashboard, takeover] per change of what the page
//            shows (the root's data-dashboard and data-takeover), so that
//            a reader can count rotations and takeovers;
//   dropped  samples and views left out because nobody read them: each
//            list keeps at most LIMIT entries.
//
// The reader empties the lists as it reads them (splice), so that the
// measurement does not itself grow the heap it measures. Without
// ?measure=1, measure is null: the socket pays one test per message and
// nothing here runs.

const LIMIT = 20000;

export const measure = new URLSearchParams(location.search).get('measure') === '1' ? start() : null;

function start() {
  const m = { samples: [], views: [], dropped: 0 };
  window.__iocMeasure = m;
  const keep = (list, entry) => {
    if (list.length >= LIMIT) {
      m.dropped++;
      return;
    }
    list.push(entry);
  };

  // One frame callback and one posted task however many updates a frame
  // carries.
  let pending = [];
  const after = new MessageChannel();
  after.port1.onmessage = () => {
    const painted = Date.now();
    for (const p of pending) {
      p.push(painted);
      keep(m.samples, p);
    }
    pending = [];
  };

  const root = document.documentElement;
  let last = '';
  const view = () => {
    const d = root.dataset.dashboard || '';
    const t = root.dataset.takeover || '';
    if (d + '\n' + t === last) return;
    last = d + '\n' + t;
    keep(m.views, [Date.now(), d, t]);
  };
  new MutationObserver(view).observe(root, { attributes: true, attributeFilter: ['data-dashboard', 'data-takeover'] });

  return {
    // applied is told of every update the socket handed to its watchers.
    applied(topic, version, data) {
      if (!/^(kpi|map)\//.test(topic) || !data || typeof data.as_of !== 'string') return;
      if (!pending.length) requestAnimationFrame(() => after.port2.postMessage(0));
      pending.push([topic, version || '', data.as_of, Date.now()]);
    },
  };
}
