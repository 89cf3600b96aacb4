package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/openioc/ioc/api/auth"
)

// chromiumPath is Debian's chromium package.
const chromiumPath = "/usr/bin/chromium"

// The built-in page, in a real headless Chromium against a real node: it
// lists the province's communes and maps them, follows the live websocket
// across a restart, and explains what is wrong when it cannot show anything.
//
// Set IOC_DASHBOARD_SCREENSHOT=/path/to/file.png to also save a screenshot
// of the page with some figures in it.
func TestDashboardInChromium(t *testing.T) {
	browser := newBrowser(t)
	cfg := testConfig(t)
	n := startNode(t, cfg)

	t.Run("no token", func(t *testing.T) {
		tab := openTab(t, browser, n.base+"/?area=79")
		tab.waitMatch(30*time.Second, "message", visibleMessage, "a message that mentions access_token",
			func(got string) bool {
				return strings.Contains(got, "access_token") && strings.Contains(got, "make run")
			})
		tab.expectEqual("table hidden", `String(document.getElementById('content').hidden)`, "true")
		tab.noExceptions()
	})

	t.Run("token for another area", func(t *testing.T) {
		tab := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "26740")+"&area=79")
		tab.waitMatch(30*time.Second, "message", visibleMessage, `a message that contains "does not cover"`,
			func(got string) bool { return strings.Contains(got, "does not cover") })
		tab.expectEqual("table hidden", `String(document.getElementById('content').hidden)`, "true")
		tab.expectEqual("connection state", `document.getElementById('connection').dataset.state`, "offline")
		tab.expectEqual("token left in location.href", `String(location.href.includes('access_token'))`, "false")
		tab.noExceptions()
	})

	t.Run("commune token on its own commune", func(t *testing.T) {
		tab := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "26740")+"&area=26740")
		tab.waitEqual(30*time.Second, "connection state", `document.getElementById('connection').dataset.state`, "connected")
		tab.expectEqual("heading", `document.getElementById('area-name').textContent`, "Phường Sài Gòn")
		tab.expectEqual("ancestors", `document.getElementById('ancestors').textContent`, "Hồ Chí Minh")
		tab.expectEqual("received", provinceCell("dossiers_received"), "0")
		tab.expectEqual("rows", `String(document.querySelectorAll('#communes tr[data-area]').length)`, "0")
		tab.expectEqual("empty-table note shown", `String(!document.getElementById('empty').hidden)`, "true")
		tab.expectEqual("map hidden", mapHidden, "true")
		tab.expectEqual("units on the map", mapUnits, "0")
		tab.noExceptions()
	})

	t.Run("map geometry unavailable", func(t *testing.T) {
		tab := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "79")+"&area=79", blockURLs("*://*:*/api/v1/layers/*"))
		tab.waitEqual(30*time.Second, "commune rows", `String(document.querySelectorAll('#communes tr[data-area]').length)`, "168")
		tab.waitEqual(30*time.Second, "connection state", `document.getElementById('connection').dataset.state`, "connected")
		tab.waitMatch(30*time.Second, "notice", visibleNotice, "a notice that the map is unavailable",
			func(got string) bool { return strings.Contains(got, "bản đồ") })
		tab.expectEqual("map hidden", mapHidden, "true")
		tab.noExceptions()
	})

	// The live path, end to end.
	tab := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "79")+"&area=79")
	tab.waitEqual(30*time.Second, "commune rows", `String(document.querySelectorAll('#communes tr[data-area]').length)`, "168")
	tab.waitEqual(30*time.Second, "units on the map", mapUnits, "168")
	tab.waitEqual(30*time.Second, "connection state", `document.getElementById('connection').dataset.state`, "connected")
	tab.expectEqual("URL after the token was taken out of it", `location.pathname + location.search`, "/?area=79")
	tab.expectEqual("token left in location.href", `String(location.href.includes('access_token'))`, "false")
	tab.expectEqual("heading", `document.getElementById('area-name').textContent`, "Thành phố Hồ Chí Minh")
	tab.expectEqual("window selector", `document.getElementById('window').value`, "today")
	tab.expectEqual("received in 26740 before ingest", communeCell("26740", "dossiers_received"), "0")
	tab.expectEqual("online rate in 26740 before ingest", communeCell("26740", "online_rate"), "—")
	tab.expectEqual("province received before ingest", provinceCell("dossiers_received"), "0")
	tab.expectEqual("map shown", mapHidden, "false")
	tab.expectEqual("map indicator", `document.getElementById('map-kpi').value`, "online_rate")
	tab.expectEqual("online rate of 26740 on the map before ingest", mapValue("26740"), "")
	tab.expectEqual("fill of 26740 before ingest", mapFill("26740"), noDataFill)

	if code, r := n.ingest(event("p1", "d1", "26740", "received", "online", 0)); code != 202 || r.Accepted != 1 {
		t.Fatalf("ingest: got %d %+v, want 202 with 1 accepted", code, r)
	}
	// The page never polls REST: only the websocket can bring these.
	tab.waitEqual(15*time.Second, "received in 26740 after ingest", communeCell("26740", "dossiers_received"), "1")
	tab.waitEqual(15*time.Second, "province received after ingest", provinceCell("dossiers_received"), "1")
	tab.expectEqual("online rate in 26740 after ingest", communeCell("26740", "online_rate"), "100,0%")
	tab.expectEqual("received in 26743", communeCell("26743", "dossiers_received"), "0")

	// The map recolours from map/79, which carries every commune's figures.
	tab.waitEqual(15*time.Second, "online rate of 26740 on the map after ingest", mapValue("26740"), "1")
	tab.waitMatch(15*time.Second, "fill of 26740 after ingest", mapFill("26740"), "a colour, not the no-data fill",
		func(got string) bool { return got != "" && got != noDataFill })
	tab.expectEqual("online rate of 26743 on the map", mapValue("26743"), "")
	tab.do("show received on the map", chromedp.Evaluate[chromedp.Void](
		`(s => { s.value = 'dossiers_received'; s.dispatchEvent(new Event('change')); })(document.getElementById('map-kpi'))`))
	tab.waitEqual(15*time.Second, "received in 26740 on the map", mapValue("26740"), "1")
	tab.expectEqual("received in 26743 on the map", mapValue("26743"), "0")
	tab.expectEqual("legend maximum", `document.getElementById('legend-max').textContent`, "1")
	if a, b := tab.value(mapFill("26740")), tab.value(mapFill("26743")); a == b || a == noDataFill || b == noDataFill {
		t.Errorf("fills of 26740 (1 received) and 26743 (none): got %q and %q, want two different colours", a, b)
	}

	// Pointing at a commune names it; clicking it picks its row.
	x, y := tab.pointIn("26740")
	tab.do("point at 26740 on the map", chromedp.MouseEvent(chromedp.MouseMoved, x, y))
	tab.waitMatch(5*time.Second, "map tooltip", mapTip, `the name and figure of 26740`,
		func(got string) bool {
			return strings.Contains(got, "Sài Gòn") && strings.Contains(got, "Hồ sơ tiếp nhận: 1")
		})
	tab.do("click 26740 on the map", chromedp.MouseClickXY(x, y))
	tab.waitEqual(5*time.Second, "row of 26740 picked", `String(document.querySelector('#communes tr[data-area="26740"]').classList.contains('selected'))`, "true")
	tab.expectEqual("26740 pressed on the map", `document.querySelector('#map path[data-area="26740"]').getAttribute('aria-pressed')`, "true")
	// From the keyboard: one unit in the tab order, arrows move, Enter picks.
	tab.do("focus the map and move on", chromedp.Evaluate[chromedp.Void](`document.querySelector('#map path[tabindex="0"]').focus()`),
		chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(kb.Enter))
	tab.expectEqual("units in the tab order", `String(document.querySelectorAll('#map path[tabindex="0"]').length)`, "1")
	tab.expectEqual("row picked from the keyboard",
		`(a => a && a !== '26740' && document.querySelector('#communes tr[data-area="' + a + '"]').classList.contains('selected') ? 'picked' : 'not picked: ' + a)(document.activeElement.dataset.area)`, "picked")

	// Sorting by received puts the only commune with a dossier first.
	tab.do("sort by received", chromedp.Click(chromedp.CSS(`#communes th[data-sort="dossiers_received"] button`)))
	tab.waitEqual(30*time.Second, "first row sorted by received", `document.querySelector('#communes tbody tr').dataset.area`, "26740")
	// The filter ignores diacritics: "sai gon" finds Sài Gòn.
	tab.do("type in the filter", chromedp.SendKeys(chromedp.CSS(`#filter`), "sai gon"))
	tab.waitEqual(30*time.Second, "rows shown by the filter",
		`Array.from(document.querySelectorAll('#communes tr[data-area]')).filter(r => !r.hidden).map(r => r.dataset.area).join(',')`, "26740")

	// A restart closes the websocket with 1001; the page reconnects to
	// the node that comes back on the same address and subscribes again.
	n.stop()
	tab.waitEqual(30*time.Second, "connection state while the node is down", `document.getElementById('connection').dataset.state`, "reconnecting")
	cfg.HTTPAddr = strings.TrimPrefix(n.base, "http://")
	n = startNode(t, cfg)
	tab.waitEqual(30*time.Second, "connection state after the restart", `document.getElementById('connection').dataset.state`, "connected")
	if code, r := n.ingest(event("p2", "d2", "26740", "received", "in_person", 0)); code != 202 || r.Accepted != 1 {
		t.Fatalf("ingest after the restart: got %d %+v, want 202 with 1 accepted", code, r)
	}
	tab.waitEqual(15*time.Second, "received in 26740 after the restart", communeCell("26740", "dossiers_received"), "2")
	tab.waitEqual(15*time.Second, "province received after the restart", provinceCell("dossiers_received"), "2")
	tab.expectEqual("online rate in 26740 after the restart", communeCell("26740", "online_rate"), "50,0%")
	tab.waitEqual(15*time.Second, "received in 26740 on the map after the restart", mapValue("26740"), "2")

	// Another window: the page refetches, follows kpi/{code}/24h instead,
	// and keeps the choice in the URL.
	tab.do("choose the 24h window", chromedp.Evaluate[chromedp.Void](
		`(s => { s.value = '24h'; s.dispatchEvent(new Event('change')); })(document.getElementById('window'))`))
	tab.waitEqual(30*time.Second, "URL after choosing 24h", `location.pathname + location.search`, "/?area=79&window=24h")
	if code, r := n.ingest(event("p3", "d3", "26740", "received", "online", time.Minute)); code != 202 || r.Accepted != 1 {
		t.Fatalf("ingest in the 24h window: got %d %+v, want 202 with 1 accepted", code, r)
	}
	tab.waitEqual(15*time.Second, "received in 26740 over 24h", communeCell("26740", "dossiers_received"), "3")
	tab.waitEqual(15*time.Second, "province received over 24h", provinceCell("dossiers_received"), "3")
	tab.expectEqual("commune rows over 24h", `String(document.querySelectorAll('#communes tr[data-area]').length)`, "168")
	tab.waitEqual(15*time.Second, "received in 26740 on the map over 24h", mapValue("26740"), "3")
	tab.expectEqual("units on the map over 24h", mapUnits, "168")
	tab.noExceptions()

	if path := os.Getenv("IOC_DASHBOARD_SCREENSHOT"); path != "" {
		screenshot(t, n, tab, path)
	}
}

func communeCell(area, kpi string) string {
	return fmt.Sprintf(`(document.querySelector('#communes tr[data-area="%s"] [data-kpi="%s"]') || {textContent: '(no such cell)'}).textContent`, area, kpi)
}

func provinceCell(kpi string) string {
	return fmt.Sprintf(`(document.querySelector('#province-summary [data-kpi="%s"]') || {textContent: '(no such cell)'}).textContent`, kpi)
}

// noDataFill is the map's fill for a unit whose figure is null.
const noDataFill = "url(#map-nodata)"

const (
	mapUnits  = `String(document.querySelectorAll('#map path[data-area]').length)`
	mapHidden = `String(document.getElementById('map').closest('[hidden]') !== null)`
	mapTip    = `(t => !t || t.hidden ? '(no tooltip)' : t.textContent)(document.querySelector('#map .map-tip'))`
)

// mapValue is the raw figure a commune is coloured by, "" for none.
func mapValue(area string) string {
	return fmt.Sprintf(`(p => p ? p.dataset.value : '(no such unit)')(document.querySelector('#map path[data-area="%s"]'))`, area)
}

func mapFill(area string) string {
	return fmt.Sprintf(`(p => p ? p.getAttribute('fill') : '(no such unit)')(document.querySelector('#map path[data-area="%s"]'))`, area)
}

const visibleMessage = `(m => m.hidden ? '(no message shown)' : m.textContent)(document.getElementById('message'))`

const visibleNotice = `(m => m.hidden ? '(no notice shown)' : m.textContent)(document.getElementById('notice'))`

// newBrowser starts a headless Chromium with a profile of its own, closed
// when the test ends. Each openTab is a tab of it.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("this test drives a real browser: install Debian's chromium package (apt-get install chromium) so that %s exists: %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1600, 1000),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	logf := quietAfterTest(t)
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	// Cleanups run last first: the browser exits before its profile
	// directory is removed.
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first action starts the browser, bound to the context it is given:
	// a context with a deadline would end the browser with it.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start %s: %v (is Debian's chromium package installed and working?)", chromiumPath, err)
	}
	return browser
}

// quietAfterTest logs to t until the test has ended; the browser's
// goroutines may still say something while they stop.
func quietAfterTest(t *testing.T) func(string, ...any) {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { // registered first: runs after the browser is closed
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("chromium: "+format, args...)
		}
	}
}

type tab struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	exceptions []string // uncaught JavaScript exceptions
}

// openTab opens url in a new tab, closed when the test ends, after running
// before in it. A new tab has an empty sessionStorage, so no token carries
// over from another tab.
func openTab(t *testing.T, browser context.Context, url string, before ...chromedp.Action[chromedp.Void]) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil && e.ExceptionDetails.Exception.Description != "" {
				msg = e.ExceptionDetails.Exception.Description
			}
			tb.mu.Lock()
			tb.exceptions = append(tb.exceptions, msg)
			tb.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	tb.do("navigate to "+redactToken(url), append(before, chromedp.Navigate(url))...)
	return tb
}

// blockURLs makes the tab's requests matching pattern fail, as they would
// with the network down.
func blockURLs(pattern string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.SetBlockedURLs, network.SetBlockedURLsParams{
			URLPatterns: []*network.BlockPattern{{URLPattern: pattern, Block: true}},
		})
		return err
	})
}

func redactToken(url string) string {
	if i := strings.Index(url, "access_token="); i >= 0 {
		j := strings.IndexByte(url[i:], '&')
		if j < 0 {
			return url[:i] + "access_token=…"
		}
		return url[:i] + "access_token=…" + url[i+j:]
	}
	return url
}

func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

func (tb *tab) eval(expr string) (string, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](expr))
}

// waitMatch evaluates expr until match accepts its value; after d it fails
// with the last value.
func (tb *tab) waitMatch(d time.Duration, what, expr, want string, match func(string) bool) {
	tb.t.Helper()
	deadline := time.Now().Add(d)
	for {
		got, err := tb.eval(expr)
		if err == nil && match(got) {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				tb.t.Fatalf("%s: %v; want %s", what, err, want)
			}
			tb.t.Fatalf("%s: got %q, want %s", what, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (tb *tab) waitEqual(d time.Duration, what, expr, want string) {
	tb.t.Helper()
	tb.waitMatch(d, what, expr, fmt.Sprintf("%q", want), func(got string) bool { return got == want })
}

// value evaluates expr once.
func (tb *tab) value(expr string) string {
	tb.t.Helper()
	got, err := tb.eval(expr)
	if err != nil {
		tb.t.Fatalf("%s: %v", expr, err)
	}
	return got
}

// pointIn finds a point of the viewport where the pointer lands on the
// commune's shape, not a neighbour's: shapes are rarely convex.
func (tb *tab) pointIn(area string) (x, y float64) {
	tb.t.Helper()
	got := tb.value(fmt.Sprintf(`(p => {
		if (!p) return '';
		p.scrollIntoView({block: 'nearest'});
		const b = p.getBBox(), m = p.getScreenCTM();
		for (let i = 1; i < 16; i++) for (let j = 1; j < 16; j++) {
			const pt = new DOMPoint(b.x + b.width * i / 16, b.y + b.height * j / 16);
			if (!p.isPointInFill(pt)) continue;
			const s = pt.matrixTransform(m);
			if (document.elementFromPoint(s.x, s.y) === p) return s.x + ' ' + s.y;
		}
		return '';
	})(document.querySelector('#map path[data-area="%s"]'))`, area))
	if _, err := fmt.Sscan(got, &x, &y); err != nil {
		tb.t.Fatalf("no point of the viewport lands on %s on the map (got %q)", area, got)
	}
	return x, y
}

// expectEqual checks expr once: for what must already hold.
func (tb *tab) expectEqual(what, expr, want string) {
	tb.t.Helper()
	got, err := tb.eval(expr)
	if err != nil {
		tb.t.Errorf("%s: %v; want %q", what, err, want)
	} else if got != want {
		tb.t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func (tb *tab) noExceptions() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.exceptions) > 0 {
		tb.t.Errorf("uncaught JavaScript exceptions: got %q, want none", tb.exceptions)
	}
}

// screenshot fills the province with varied figures and saves the page,
// pointing at a commune on the map.
func screenshot(t *testing.T, n *node, tb *tab, path string) {
	t.Helper()
	var kids struct {
		Children []snapshot `json:"children"`
	}
	if code := n.get("/api/v1/areas/79/children/kpis", adminToken, &kids); code != 200 {
		t.Fatalf("children of 79: status %d", code)
	}
	var events []map[string]any
	for i, k := range kids.Children {
		if i%3 == 2 {
			continue
		}
		for j := 0; j < 1+(i*7)%9; j++ {
			id := fmt.Sprintf("s-%s-%d", k.Area, j)
			channel := "online"
			if (i+j)%4 == 0 {
				channel = "in_person"
			}
			events = append(events, event(id+"-r", id, k.Area, "received", channel, time.Duration(j+1)*time.Minute))
			switch {
			case j%3 == 0:
				events = append(events, event(id+"-z", id, k.Area, "resolved", channel, time.Duration(j)*time.Second))
			case j%3 == 1 && i%5 == 0:
				late := event(id+"-z", id, k.Area, "resolved", channel, time.Duration(j)*time.Second)
				late["due_at"] = time.Now().Add(-time.Hour).In(hcm).Format(time.RFC3339)
				events = append(events, late)
			case i%11 == 0:
				over := event(id+"-p", id, k.Area, "processing", channel, time.Duration(j)*time.Second)
				over["due_at"] = time.Now().Add(-time.Minute).In(hcm).Format(time.RFC3339)
				events = append(events, over)
			}
		}
	}
	if code, r := n.ingest(events...); code != 202 || r.Rejected != 0 {
		t.Fatalf("ingest for the screenshot: got %d %+v", code, r)
	}
	want := fmt.Sprint(n.kpis("79", "today").KPIs["dossiers_received"])
	tb.waitEqual(30*time.Second, "province received", "("+provinceCell("dossiers_received")+").replaceAll('.', '')", want)
	tb.do("clear the filter", chromedp.Evaluate[chromedp.Void](
		`(f => { f.value = ''; f.dispatchEvent(new Event('input')); window.scrollTo(0, 0); })(document.getElementById('filter'))`))
	x, y := tb.pointIn("26740")
	tb.do("point at 26740 on the map", chromedp.MouseEvent(chromedp.MouseMoved, x, y))
	time.Sleep(2 * time.Second) // let the highlights fade
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved a screenshot to %s", path)
}
