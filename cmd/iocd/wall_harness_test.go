package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The wall page's tests run against a real node: wallAPI stores the test's
// documents (testdata/wall, and dashboards/defaults) in it with PUT, so the
// page always asks the real paths.
type wallAPI struct {
	t    *testing.T
	n    *node
	base string
	docs map[string][]byte // "dashboards/ops-79" → the document the test stored
}

// wallDocs reads the test's documents: testdata/wall/*.json (a dashboard
// each, or {"kind": …, "document": …} for a wall or a screen), then
// dashboards/defaults/*.json, which win on the same id.
func wallDocs(t *testing.T) map[string][]byte {
	t.Helper()
	docs := map[string][]byte{}
	for _, dir := range []string{"testdata/wall", "../../dashboards/defaults"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var head struct {
				ID       string          `json:"id"`
				Kind     string          `json:"kind"`
				Document json.RawMessage `json:"document"`
				Widgets  json.RawMessage `json:"widgets"`
			}
			if err := json.Unmarshal(b, &head); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kind := "dashboards"
			if head.Kind != "" {
				kind, b = head.Kind+"s", head.Document
				if err := json.Unmarshal(b, &head); err != nil {
					t.Fatalf("%s: document: %v", f, err)
				}
			} else if head.Widgets == nil {
				continue // a playlist, an export file: not the page's
			}
			docs[kind+"/"+head.ID] = b
		}
	}
	return docs
}

func startWallAPI(t *testing.T, n *node) *wallAPI {
	t.Helper()
	w := &wallAPI{t: t, n: n, base: n.base, docs: wallDocs(t)}
	for key, doc := range w.docs {
		w.store(key, doc)
	}
	return w
}

// doc returns a stored document, decoded, as the node serves it.
func (w *wallAPI) doc(key string) map[string]any {
	w.t.Helper()
	resp := w.n.do("GET", "/api/v1/"+key, adminToken, "", nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		w.t.Fatalf("no document %s: %d %s", key, resp.StatusCode, b)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		w.t.Fatal(err)
	}
	if body, ok := d["body"].(map[string]any); ok && d["widgets"] == nil {
		return body
	}
	return d
}

// dashboards lists the ids of the dashboards the page is tested with.
func (w *wallAPI) dashboards() []string {
	var ids []string
	for key := range w.docs {
		if id, ok := strings.CutPrefix(key, "dashboards/"); ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// await evaluates expr in the page until it is truthy and returns its
// value: the page polls itself (every 50 ms), so the test neither sleeps
// nor floods the browser with calls. After d it fails with what expr
// last gave.
func (tb *tab) await(d time.Duration, what, expr string) string {
	tb.t.Helper()
	return tb.poll(d, what, expr, nil)
}

// awaitEqual waits until expr gives want (as String() writes it).
func (tb *tab) awaitEqual(d time.Duration, what, expr, want string) {
	tb.t.Helper()
	tb.poll(d, what, expr, &want)
}

func (tb *tab) poll(d time.Duration, what, expr string, want *string) string {
	tb.t.Helper()
	w := "null"
	if want != nil {
		b, _ := json.Marshal(*want)
		w = string(b)
	}
	js := fmt.Sprintf(`new Promise((resolve) => {
		const end = performance.now() + %d, want = %s;
		let last = '(never evaluated)';
		const check = () => {
			let v, ok = false;
			try {
				v = (%s);
				last = v === undefined ? '(undefined)' : String(v);
				ok = want === null ? (v !== undefined && v !== null && v !== false && v !== '') : String(v) === want;
			} catch (e) { last = 'threw ' + e; }
			if (ok) { resolve(JSON.stringify({ok: true, v: String(v)})); return; }
			if (performance.now() > end) { resolve(JSON.stringify({ok: false, v: last})); return; }
			setTimeout(check, 50);
		};
		check();
	})`, d.Milliseconds(), w, expr)
	ctx, cancel := context.WithTimeout(tb.ctx, d+15*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, func(p *runtime.EvaluateParams) { p.AwaitPromise = ptrTrue() }))
	if err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
	var r struct {
		OK bool   `json:"ok"`
		V  string `json:"v"`
	}
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		tb.t.Fatalf("%s: %q: %v", what, raw, err)
	}
	if !r.OK {
		if want != nil {
			tb.t.Fatalf("%s: got %q, want %q (waited %s)", what, r.V, *want, d)
		}
		tb.t.Fatalf("%s: not within %s (last %q)", what, d, r.V)
	}
	return r.V
}

// artifacts is where the wall's screenshots go: $IOC_ARTIFACTS/wall, else
// var/test-artifacts/wall at the top of the repository.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("IOC_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "var", "test-artifacts")
	}
	dir, _ = filepath.Abs(filepath.Join(dir, "wall"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// seedWall gives province 79 figures to show: dossiers over a third of
// its communes (received, resolved on time and late, overdue), readings
// that open a critical alarm on a water gauge, and camera events.
func seedWall(t *testing.T, n *node) (alarmDevice string) {
	t.Helper()
	var kids struct {
		Children []snapshot `json:"children"`
	}
	if code := n.get("/api/v1/areas/79/children/kpis", adminToken, &kids); code != 200 {
		t.Fatalf("children of 79: status %d", code)
	}
	events := spreadDossiers(kids.Children, "w", func(i int) bool { return i%3 != 0 })
	if code, r := n.ingest(events...); code != 202 || r.Rejected != 0 {
		t.Fatalf("ingest for the wall: got %d %+v", code, r)
	}
	now := time.Now().Truncate(time.Second)
	const tdLat, tdLon = 10.8494, 106.7537
	if code, r := n.readings(adminToken,
		map[string]any{"sensor_id": "WL-W1", "kind": "water_level", "value": 1.7, "unit": "m", "alert_level": 1.5,
			"lat": nhLat, "lon": nhLon, "observed_at": stamp(now)},
		map[string]any{"sensor_id": "AQ-W2", "kind": "pm25", "value": 41.5, "unit": "ug/m3",
			"lat": tdLat, "lon": tdLon, "observed_at": stamp(now)},
	); code != 202 || r.Accepted != 2 {
		t.Fatalf("readings: got %d %+v, want 202 with 2 accepted", code, r)
	}
	const camLat, camLon = 10.7546, 106.6636
	cameraEvents(t, n,
		map[string]any{"event_id": "wc1", "camera_id": "CAM-W1", "type": "congestion", "severity": "warning", "lat": camLat, "lon": camLon, "occurred_at": stamp(now)},
		map[string]any{"event_id": "wc2", "camera_id": "CAM-W1", "type": "traffic_violation", "severity": "info", "lat": camLat, "lon": camLon, "occurred_at": stamp(now.Add(time.Second))},
		map[string]any{"event_id": "wc3", "camera_id": "CAM-W2", "type": "fire", "severity": "critical", "lat": tdLat, "lon": tdLon, "occurred_at": stamp(now.Add(2 * time.Second))})
	want := 0
	for _, e := range events {
		if e["status"] == "received" {
			want++
		}
	}
	// Settled: every dossier counted, the alarm open, the events counted.
	eventually(t, 30*time.Second, func() (bool, string) {
		s := n.kpis("79", "today")
		var list struct {
			Alarms []alarmJSON `json:"alarms"`
		}
		n.get("/api/v1/alarms?state=active&area=79", adminToken, &list)
		got := fmt.Sprint(s.KPIs["dossiers_received"])
		return got == fmt.Sprint(want) && len(list.Alarms) == 1 && fmt.Sprint(s.KPIs["camera_events"]) == "3" && fmt.Sprint(s.KPIs["alarms_open"]) == "1",
			fmt.Sprintf("received %s of %d, %d alarms, %v camera events, %v alarms open", got, want, len(list.Alarms), s.KPIs["camera_events"], s.KPIs["alarms_open"])
	})
	return "WL-W1"
}

// layoutReport is what wallLayout finds wrong in the page as shown.
type layoutReport struct {
	Width, Height int
	Widgets       int
	Scroll        []string
	Outside       []string
	Clipped       []string
	Small         []string
	KPISmall      []string `json:"kpiSmall"`
	KPIs          int
	SmallestText  float64 `json:"smallestText"`
	SmallestKPI   float64 `json:"smallestKPI"`
}

// widestFigures gives every KPI tile of the board the widest figure its
// indicator can show (a whole rate, a count of six digits, three digits
// of a measure with its decimals) and holds it there, so that the layout
// can be measured as it would be at the hour that figure comes; it
// returns how many tiles it set.
const widestFigures = `(() => {
	const wide = (d) => d.kind === 'ratio' ? 1 : d.kind === 'count' || d.kind === 'breakdown' ? 999999 : d.unit === 'm' ? 999.99 : 999.9;
	let n = 0;
	for (const w of window.IOCWall.page.board.widgets) {
		if (w.spec.type !== 'kpi' || !w.def) continue;
		w.def = Object.assign({}, w.def, {live: false});
		w.fetchSeries = () => {};
		w.value = wide(w.def);
		w.haveValue = w.seriesDone = true;
		w.valueEl.dataset.widest = String(w.value);
		w.changed();
		n++;
	}
	return String(n);
})()`

// wallLayout measures the page: no scrolling, every widget inside the
// viewport, no content cut off in any box (no element whose content
// overflows a box that hides it, no text outside its widget), any text at
// least 2% of the viewport's height and a KPI value at least 6%.
const wallLayout = `(() => {
	const W = innerWidth, H = innerHeight;
	const out = {width: W, height: H, widgets: 0, scroll: [], outside: [], clipped: [], small: [], kpiSmall: [], kpis: 0, smallestText: 1e9, smallestKPI: 1e9};
	for (const el of [document.documentElement, document.body]) {
		if (el.scrollWidth > W || el.scrollHeight > H) out.scroll.push(el.tagName + ' ' + el.scrollWidth + '×' + el.scrollHeight);
	}
	const name = (w, el) => w.dataset.widget + ' ' + el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
	for (const w of document.querySelectorAll('.board .widget')) {
		out.widgets++;
		const r = w.getBoundingClientRect();
		if (r.left < -0.5 || r.top < -0.5 || r.right > W + 0.5 || r.bottom > H + 0.5) out.outside.push(w.dataset.widget + ' ' + JSON.stringify([r.left, r.top, r.right, r.bottom]));
		for (const el of [w, ...w.querySelectorAll('*')]) {
			if (el instanceof SVGElement || el.closest('[hidden]')) continue;
			const cs = getComputedStyle(el);
			if (cs.display === 'none' || cs.visibility === 'hidden') continue;
			if ((cs.overflowX !== 'visible' || cs.overflowY !== 'visible') && (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1)) {
				out.clipped.push(name(w, el) + ' holds ' + el.scrollWidth + '×' + el.scrollHeight + ' in ' + el.clientWidth + '×' + el.clientHeight);
			}
			if (!Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
			const er = el.getBoundingClientRect();
			if (er.width === 0 || er.height === 0) continue;
			if (er.left < r.left - 1 || er.right > r.right + 1 || er.top < r.top - 1 || er.bottom > r.bottom + 1) out.clipped.push(name(w, el) + ' text outside its widget');
			const fs = parseFloat(cs.fontSize);
			out.smallestText = Math.min(out.smallestText, fs / H);
			if (fs < 0.02 * H - 0.01) out.small.push(name(w, el) + ' ' + fs.toFixed(1) + 'px: ' + el.textContent.trim().slice(0, 30));
		}
		for (const v of w.querySelectorAll('.kpi-value')) {
			if (v.closest('[hidden]')) continue;
			out.kpis++;
			const fs = parseFloat(getComputedStyle(v).fontSize);
			out.smallestKPI = Math.min(out.smallestKPI, fs / H);
			if (fs < 0.06 * H - 0.01) out.kpiSmall.push(w.dataset.widget + ' ' + fs.toFixed(1) + 'px');
		}
	}
	return JSON.stringify(out);
})()`

func (tb *tab) layout() layoutReport {
	tb.t.Helper()
	var r layoutReport
	if err := json.Unmarshal([]byte(tb.value(wallLayout)), &r); err != nil {
		tb.t.Fatal(err)
	}
	return r
}

// jsonValue writes v as the page writes a figure in data-value: the
// number as JavaScript's String() does, empty for null.
func jsonValue(v any) string {
	if v == nil {
		return ""
	}
	f, ok := v.(float64)
	if !ok {
		return fmt.Sprint(v)
	}
	b, _ := json.Marshal(f)
	return string(bytes.TrimSpace(b))
}

func ptrTrue() *bool { b := true; return &b }

// store saves a document in the node.
func (w *wallAPI) store(key string, doc []byte) {
	w.t.Helper()
	resp := w.n.do("PUT", "/api/v1/"+key, adminToken, "application/json", doc)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		w.t.Fatalf("store %s in the node: %d %s", key, resp.StatusCode, b)
	}
}
