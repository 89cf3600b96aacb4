package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/memory"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/openioc/ioc/internal/headless"
)

// One screen of iocbench wall: a headless Chromium process of its own
// (its own profile directory) showing the kiosk page of one screen at
// 1920×1080, and what the benchmark read of it.

const (
	wallWidth, wallHeight = 1920, 1080
	// cdpTimeout bounds one exchange with a browser; a forced collection
	// of a page's heap takes milliseconds.
	cdpTimeout = time.Minute
)

type wallScreen struct {
	id      string
	tab     context.Context // the browser's one tab; ending it ends the browser
	stop    func()
	pid     int    // the browser process, root of its process tree
	logFile string // the browser's output

	firstRender string       // the page's wall-first-render, ms
	first       pageView     // what it showed when the measurement began
	early       []pageView   // what it showed before
	samples     []pageSample // over the measurement
	views       []pageView
	dropped     int
	heap        []heapPoint
	cpu         time.Duration // the browser's process tree, over the measurement
	processes   int           // in the tree at the end
}

// openScreen starts a browser for screen id and opens url in it. The
// browser is stopped by screen.stop, or when ctx ends.
func openScreen(ctx context.Context, chromium, dir, id, url string) (*wallScreen, error) {
	profile := filepath.Join(dir, "chromium-"+id)
	if err := os.MkdirAll(profile, 0o755); err != nil {
		return nil, err
	}
	logFile := filepath.Join(dir, "chromium-"+id+".log")
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// The browser tests' flags (cmd/iocd), and the autoplay policy the
	// README asks of kiosk browsers, for the takeover chime.
	opts := append(headless.Options(chromium, profile, wallWidth, wallHeight),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"), chromedp.CombinedOutput(out))
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	logf := func(format string, args ...any) { fmt.Fprintf(out, "chromedp: "+format+"\n", args...) }
	tab, cancelTab := chromedp.NewContext(alloc, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	s := &wallScreen{id: id, tab: tab, logFile: logFile}
	s.stop = func() {
		cancelTab()
		cancelAlloc()
		out.Close()
	}
	// The first action starts the browser, bound to the context it is
	// given: no deadline here, or the browser would end with it.
	if err := chromedp.Do(tab); err != nil {
		s.stop()
		return nil, fmt.Errorf("start %s for screen %s: %w (is Debian's chromium package installed? see %s)", chromium, id, err, logFile)
	}
	if p := chromedp.FromContext(tab).Browser.Process(); p != nil {
		s.pid = p.Pid
	}
	nav, cancel := context.WithTimeout(tab, cdpTimeout)
	defer cancel()
	if err := chromedp.Do(nav, chromedp.EmulateViewport(wallWidth, wallHeight), chromedp.Navigate(url)); err != nil {
		s.stop()
		return nil, fmt.Errorf("screen %s: open the wall page: %w", id, err)
	}
	return s, nil
}

func (s *wallScreen) eval(expr string) (string, error) {
	ctx, cancel := context.WithTimeout(s.tab, cdpTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](expr))
}

// waitRendered waits until the page has painted its first dashboard, and
// says why not when it shows a message instead.
func (s *wallScreen) waitRendered(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	const state = `JSON.stringify((r => ({rendered: r.dataset.rendered || '', first: r.dataset.firstRender || '', state: r.dataset.state || '',
		message: (m => m && !m.hidden ? m.innerText : '')(document.getElementById('message'))}))(document.documentElement))`
	var last struct{ Rendered, First, State, Message string }
	for {
		got, err := s.eval(state)
		if err == nil {
			err = json.Unmarshal([]byte(got), &last)
		}
		switch {
		case err != nil:
			return fmt.Errorf("screen %s: read the page: %w", s.id, err)
		case last.Rendered != "":
			s.firstRender = last.First
			return nil
		case last.State == "blank":
			return fmt.Errorf("screen %s: the page stopped: %s", s.id, strings.Join(strings.Fields(last.Message), " "))
		case time.Now().After(deadline):
			return fmt.Errorf("screen %s: no dashboard painted after %s (the page says %q); see %s", s.id, limit,
				strings.Join(strings.Fields(last.Message), " "), s.logFile)
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// drainExpr reads what the page's measurement hook (dashboards/static/
// wall/measure.js) holds and empties it, with what the page shows now.
const drainExpr = `(() => {
	const m = window.__iocMeasure, r = document.documentElement;
	if (!m) return 'null';
	const out = JSON.stringify({samples: m.samples, views: m.views, dropped: m.dropped,
		dashboard: r.dataset.dashboard || '', takeover: r.dataset.takeover || ''});
	m.samples.length = 0;
	m.views.length = 0;
	m.dropped = 0;
	return out;
})()`

// drained is what one read of the measurement hook gave.
type drained struct {
	samples []pageSample
	views   []pageView
	dropped int
	now     pageView // what the page shows as it is read
}

// parseDrained decodes drainExpr's answer.
func parseDrained(raw string) (drained, error) {
	var d drained
	if raw == "null" {
		return d, fmt.Errorf("the page has no measurement hook: it must be opened with ?measure=1 and serve dashboards/static/wall/measure.js")
	}
	var v struct {
		Samples             [][5]any `json:"samples"`
		Views               [][3]any `json:"views"`
		Dropped             int      `json:"dropped"`
		Dashboard, Takeover string
	}
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return d, fmt.Errorf("read the measurement hook: %w", err)
	}
	str := func(a any) string { s, _ := a.(string); return s }
	num := func(a any) (int64, bool) { f, ok := a.(float64); return int64(f), ok }
	for _, s := range v.Samples {
		rec, ok1 := num(s[3])
		painted, ok2 := num(s[4])
		if !ok1 || !ok2 || str(s[0]) == "" {
			return d, fmt.Errorf("read the measurement hook: sample %v is not [topic, version, as_of, received, painted]", s)
		}
		d.samples = append(d.samples, pageSample{topic: str(s[0]), version: str(s[1]), asOf: str(s[2]), received: rec, painted: painted})
	}
	for _, w := range v.Views {
		at, ok := num(w[0])
		if !ok {
			return d, fmt.Errorf("read the measurement hook: view %v is not [at, dashboard, takeover]", w)
		}
		d.views = append(d.views, pageView{at: at, dashboard: str(w[1]), takeover: str(w[2])})
	}
	d.dropped = v.Dropped
	d.now = pageView{at: time.Now().UnixMilli(), dashboard: v.Dashboard, takeover: v.Takeover}
	return d, nil
}

func (s *wallScreen) drain() (drained, error) {
	raw, err := s.eval(drainExpr)
	if err != nil {
		return drained{}, fmt.Errorf("screen %s: read the measurement hook: %w", s.id, err)
	}
	d, err := parseDrained(raw)
	if err != nil {
		return d, fmt.Errorf("screen %s: %w", s.id, err)
	}
	return d, nil
}

// collect keeps what a read of the hook gave.
func (s *wallScreen) collect(d drained) {
	s.samples = append(s.samples, d.samples...)
	s.views = append(s.views, d.views...)
	s.dropped += d.dropped
}

// viewExpr says what the page shows, and how many boards it holds: a
// board replacing another paints unseen beside it, for up to 5 s.
const viewExpr = `(r => JSON.stringify({boards: window.IOCWall ? window.IOCWall.page.boards.size : 0,
	dashboard: r.dataset.dashboard || '', takeover: r.dataset.takeover || ''}))(document.documentElement)`

type viewState struct {
	Boards              int
	Dashboard, Takeover string
}

func (v viewState) view() string {
	if v.Takeover != "" {
		return v.Dashboard + " + takeover"
	}
	return v.Dashboard
}

func (s *wallScreen) viewNow() (viewState, error) {
	var v viewState
	raw, err := s.eval(viewExpr)
	if err == nil {
		err = json.Unmarshal([]byte(raw), &v)
	}
	if err != nil {
		return v, fmt.Errorf("screen %s: read what the page shows: %w", s.id, err)
	}
	return v, nil
}

// readHeap forces a full collection in the page, then reads its JS heap,
// the split of its heap snapshot and the renderer's DOM nodes, while the
// page holds one board and shows the same thing throughout, so that
// readings of a view compare. It writes the snapshot into dir unless dir
// is empty.
func (s *wallScreen) readHeap(ctx context.Context, at time.Duration, dir string) (heapPoint, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		before, err := s.viewNow()
		if err != nil {
			return heapPoint{}, err
		}
		if before.Boards > 1 && time.Now().Before(deadline) {
			if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
				return heapPoint{}, err
			}
			continue
		}
		p, err := s.readCounters()
		if err != nil {
			return p, err
		}
		after, err := s.viewNow()
		if err != nil {
			return heapPoint{}, err
		}
		if after != before && time.Now().Before(deadline) {
			continue // the page moved on meanwhile
		}
		p.at, p.view = at, before.view()
		path := ""
		if dir != "" {
			path = filepath.Join(dir, fmt.Sprintf("%s-%05d-%s.heapsnapshot", s.id, int(at.Seconds()), strings.ReplaceAll(p.view, "/", "_")))
		}
		data, err := s.snapshot(path)
		if err != nil {
			return p, err
		}
		if p.objects, p.code, _, err = snapshotSizes(data); err != nil {
			return p, fmt.Errorf("screen %s: %w", s.id, err)
		}
		return p, nil
	}
}

// snapshot takes the page's heap snapshot and writes it to path unless
// path is empty: DevTools' Memory panel loads it, and compares two of the
// same dashboard.
func (s *wallScreen) snapshot(path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(s.tab, cdpTimeout)
	defer cancel()
	// The snapshot comes as events before the command's answer, which
	// chromedp hands over in order, from its own goroutine.
	var mu sync.Mutex
	var buf bytes.Buffer
	if err := chromedp.Listen(ctx, func(ev any) {
		if c, ok := ev.(*heapprofiler.EventAddHeapSnapshotChunk); ok {
			mu.Lock()
			defer mu.Unlock()
			buf.WriteString(c.Chunk)
		}
	}); err != nil {
		return nil, fmt.Errorf("screen %s: heap snapshot: %w", s.id, err)
	}
	if _, err := chromedp.Call(ctx, heapprofiler.TakeHeapSnapshot, heapprofiler.TakeHeapSnapshotParams{}); err != nil {
		return nil, fmt.Errorf("screen %s: take a heap snapshot: %w", s.id, err)
	}
	mu.Lock()
	defer mu.Unlock()
	data := bytes.Clone(buf.Bytes())
	if path != "" {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, fmt.Errorf("screen %s: write the heap snapshot: %w", s.id, err)
		}
	}
	return data, nil
}

func (s *wallScreen) readCounters() (heapPoint, error) {
	ctx, cancel := context.WithTimeout(s.tab, cdpTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
		return heapPoint{}, fmt.Errorf("screen %s: collect garbage: %w", s.id, err)
	}
	h, err := chromedp.Call(ctx, runtime.GetHeapUsage, cdp.Empty{})
	if err != nil {
		return heapPoint{}, fmt.Errorf("screen %s: read the heap: %w", s.id, err)
	}
	dc, err := chromedp.Call(ctx, memory.GetDOMCounters, cdp.Empty{})
	if err != nil {
		return heapPoint{}, fmt.Errorf("screen %s: count DOM nodes: %w", s.id, err)
	}
	return heapPoint{used: h.UsedSize, nodes: dc.Nodes}, nil
}

// treeCPU is the CPU time of the browser's whole process tree: the
// browser, its zygote, renderer, GPU and utility processes.
func (s *wallScreen) treeCPU(procs map[int]procStat) (time.Duration, int) {
	return treeCPU(procs, s.pid)
}
