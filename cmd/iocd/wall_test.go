package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/dashboards"
)

// Every dashboard of the tests (testdata/wall, and dashboards/defaults
// when the package ships some), loaded in Chromium at 1920×1080 and at
// 3840×2160 against a node with figures: nothing scrolls, every widget
// lies inside the viewport and nothing in it is cut off, any text is at
// least 2% of the screen's height and a KPI value at least 6%, the
// figures are those the REST API answers for the same indicators, the
// alarm list is subscribed and painted before anything else, the page
// watches a bounded number of topics. The page's own measure of its first
// full render is logged; its target (3 s) is judged by make bench-wall, on
// an idle machine, not here. Screenshots are saved in the directory the
// test prints.
func TestWallDashboards(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, testConfig(t))
	device := seedWall(t, n)
	w := startWallAPI(t, n)
	dir := artifacts(t)
	t.Logf("screenshots in %s", dir)
	commune := n.communeAt(nhLat, nhLon) // where the alarm is: the district dashboard's area
	viewer := issueToken(t, auth.Viewer, "79")
	cat := catalogOf(t, n)

	for _, id := range w.dashboards() {
		def := w.doc("dashboards/" + id)
		area, _ := def["area"].(string)
		if area == "$area" || area == "" {
			area = commune
		}
		win, _ := def["window"].(string)
		if win == "" {
			win = "today"
		}
		for _, vp := range []struct{ w, h int64 }{{1920, 1080}, {3840, 2160}} {
			t.Run(fmt.Sprintf("%s at %dx%d", id, vp.w, vp.h), func(t *testing.T) {
				tab := openTab(t, browser, fmt.Sprintf("%s/wall/?dashboard=%s&area=%s&access_token=%s", w.base, id, area, viewer),
					chromedp.EmulateViewport(vp.w, vp.h), recordSockets)
				ms := tab.await(30*time.Second, "first full render", `document.documentElement.dataset.firstRender`)
				checkWallValues(t, tab, n, cat, def, area, win)

				r := tab.layout()
				if r.Width != int(vp.w) || r.Height != int(vp.h) {
					t.Fatalf("viewport: got %d×%d, want %d×%d", r.Width, r.Height, vp.w, vp.h)
				}
				widgets, _ := def["widgets"].([]any)
				if r.Widgets != len(widgets) {
					t.Errorf("widgets drawn: got %d, want the definition's %d", r.Widgets, len(widgets))
				}
				for what, list := range map[string][]string{"scrolling": r.Scroll, "widgets outside the viewport": r.Outside,
					"content cut off": r.Clipped, "text under 2% of the height": r.Small, "KPI values under 6% of the height": r.KPISmall} {
					if len(list) > 0 {
						t.Errorf("%s: %q", what, list)
					}
				}
				t.Logf("smallest text %.2f%% of the height, smallest KPI value %.2f%% (%d tiles); first full render %s ms",
					100*r.SmallestText, 100*r.SmallestKPI, r.KPIs, ms)
				// The figures of the hour fit; so must the widest a tile can
				// be given, whatever the hour: 100,0% with its mark just after
				// midnight, when few dossiers make every rate whole.
				if k := atoi(t, tab.value(widestFigures)); k > 0 {
					tab.awaitEqual(5*time.Second, "widest figures drawn", `Array.from(document.querySelectorAll('.board .w-kpi .kpi-value')).every(v => v.dataset.widest === v.dataset.value)`, "true")
					r := tab.layout()
					for what, list := range map[string][]string{"content cut off": r.Clipped, "KPI values under 6% of the height": r.KPISmall} {
						if len(list) > 0 {
							t.Errorf("with the widest figures: %s: %q", what, list)
						}
					}
				}

				// Safety first: the alarms topic is asked first and its list
				// painted before any other widget.
				tab.expectEqual("first subscription", `window.__sockets[0].__sent.find(m => m.op === 'subscribe').topic`, "alarms/"+area)
				if hasWidget(def, "alarms") {
					tab.expectEqual("alarm list painted first", `(() => {
						const ws = Array.from(document.querySelectorAll('.board .widget'));
						const a = Math.max(...ws.filter(w => w.dataset.type === 'alarms').map(w => +w.dataset.painted));
						const late = ws.filter(w => w.dataset.type !== 'alarms' && +w.dataset.painted < a).map(w => w.dataset.widget);
						return late.length ? 'painted before the alarms: ' + late.join(', ') : 'yes';
					})()`, "yes")
				}
				topics := tab.value(`String(new Set(window.__sockets[0].__sent.filter(m => m.op === 'subscribe').map(m => m.topic)).size)`)
				if k := atoi(t, topics); k > 6 {
					t.Errorf("topics subscribed: got %d, want at most 6 whatever the number of children", k)
				}
				if hasWidget(def, "alarms") {
					tab.expectEqual("alarm of "+device+" listed", fmt.Sprintf(`String(!!document.querySelector('.w-alarms li[data-device="%s"][data-severity="critical"]'))`, device), "true")
				}
				tab.noExceptions()
				saveScreenshot(t, tab, filepath.Join(dir, fmt.Sprintf("%s-%dx%d.png", id, vp.w, vp.h)), "")
			})
		}
	}
}

type catalogEntry struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Live    bool   `json:"live"`
	History bool   `json:"history"`
}

func catalogOf(t *testing.T, n *node) map[string]catalogEntry {
	t.Helper()
	var c struct {
		KPIs []catalogEntry `json:"kpis"`
	}
	if code := n.get("/api/v1/kpis", adminToken, &c); code != 200 {
		t.Fatalf("catalog: %d", code)
	}
	out := map[string]catalogEntry{}
	for _, k := range c.KPIs {
		out[k.ID] = k
	}
	return out
}

func hasWidget(def map[string]any, typ string) bool {
	widgets, _ := def["widgets"].([]any)
	for _, w := range widgets {
		if m, _ := w.(map[string]any); m["type"] == typ {
			return true
		}
	}
	return false
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var v int
	if _, err := fmt.Sscan(s, &v); err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return v
}

// checkWallValues compares each widget's figures with what the REST API
// answers for the same indicators, area and window.
func checkWallValues(t *testing.T, tab *tab, n *node, cat map[string]catalogEntry, def map[string]any, area, win string) {
	t.Helper()
	snap := n.kpis(area, win)
	var kids struct {
		Children []snapshot `json:"children"`
	}
	n.get("/api/v1/areas/"+area+"/children/kpis?window="+win, adminToken, &kids)
	widgets, _ := def["widgets"].([]any)
	for _, raw := range widgets {
		wd, _ := raw.(map[string]any)
		id, _ := wd["id"].(string)
		opts, _ := wd["options"].(map[string]any)
		ind, _ := opts["indicator"].(string)
		sel := fmt.Sprintf(`document.querySelector('.board [data-widget="%s"]')`, id)
		if title, ok := opts["title"].(map[string]any); ok {
			vi, _ := json.Marshal(title["vi"])
			tab.awaitEqual(15*time.Second, "the own title of "+id, orMissing(sel, `.querySelector('.w-title').textContent.includes(`+string(vi)+`)`), "true")
		}
		switch wd["type"] {
		case "kpi":
			k := cat[ind]
			var want string
			switch {
			case k.Live && k.Kind != "breakdown":
				want = jsonValue(snap.KPIs[ind])
			case !k.Live && k.History:
				want = historyValue(t, n, ind, area, k.Kind)
			default:
				continue
			}
			tab.awaitEqual(15*time.Second, "KPI "+id+" ("+ind+")", orMissing(sel, `.querySelector('.kpi-value').dataset.value`), want)
		case "map":
			want := map[string]string{}
			for _, c := range kids.Children {
				want[c.Area] = jsonValue(c.KPIs[ind])
			}
			b, _ := json.Marshal(want)
			if ramp, _ := opts["ramp"].(string); opts["legend"] != "fixed" {
				tab.awaitEqual(15*time.Second, "map "+id+"'s ramp", orMissing(sel, `.dataset.ramp`), cmp.Or(ramp, "viridis"))
			}
			tab.awaitEqual(15*time.Second, "map "+id+" ("+ind+")", fmt.Sprintf(`((w, want) => {
				if (!w) return '(missing)';
				const paths = Array.from(w.querySelectorAll('path[data-area]'));
				const bad = paths.filter(p => (want[p.dataset.area] ?? '(none)') !== p.dataset.value).map(p => p.dataset.area + '=' + p.dataset.value + ' want ' + want[p.dataset.area]);
				if (paths.length !== Object.keys(want).length) return paths.length + ' units drawn of ' + Object.keys(want).length;
				return bad.length ? bad.slice(0, 4).join('; ') : 'ok';
			})(%s, %s)`, sel, b), "ok")
		case "ranking":
			if !cat[ind].Live {
				continue
			}
			nTop := 10
			if v, ok := opts["n"].(float64); ok {
				nTop = int(v)
			}
			tab.awaitEqual(15*time.Second, "ranking "+id+" ("+ind+")", orMissing(sel, `.dataset.items`), rankingOf(kids.Children, ind, opts["order"] == "bottom", nTop))
		case "scoreboard":
			var sb struct {
				Total struct {
					Points float64 `json:"points"`
				} `json:"total"`
			}
			if code := n.get("/api/v1/scoreboard?area="+area, adminToken, &sb); code != 200 {
				t.Fatalf("scoreboard: %d", code)
			}
			tab.awaitEqual(15*time.Second, "scoreboard "+id, orMissing(sel, `.dataset.points`), jsonValue(sb.Total.Points))
		case "series":
			inds, _ := opts["indicators"].([]any)
			step, _ := opts["step"].(string)
			days := 30.0
			if v, ok := opts["days"].(float64); ok {
				days = v
			}
			if step == "hour" {
				days = math.Min(days, 31)
			}
			today := time.Now().In(hcm)
			from := today.AddDate(0, 0, -int(days)+1).Format("2006-01-02")
			for _, x := range inds {
				ind, _ := x.(string)
				var s struct {
					Points []struct {
						Value *float64 `json:"value"`
					} `json:"points"`
				}
				to := today.Format("2006-01-02")
				if step == "hour" {
					to = strings.ReplaceAll(today.Format(time.RFC3339), "+", "%2B")
				}
				path := fmt.Sprintf("/api/v1/kpis/%s/series?area=%s&step=%s&from=%s&to=%s", ind, area, step, from, to)
				if code := n.get(path, adminToken, &s); code != 200 || len(s.Points) == 0 {
					t.Fatalf("GET %s: %d with %d points", path, code, len(s.Points))
				}
				var last any
				if v := s.Points[len(s.Points)-1].Value; v != nil {
					last = *v
				}
				tab.awaitEqual(15*time.Second, "series "+id+" ("+ind+"), last point", orMissing(sel, fmt.Sprintf(`.querySelector('[data-indicator="%s"].series-item').dataset.last`, ind)), jsonValue(last))
				tab.expectEqual("series "+id+" ("+ind+"), points", orMissing(sel, fmt.Sprintf(`.querySelector('[data-indicator="%s"].series-item').dataset.points`, ind)),
					fmt.Sprint(countNonNull(s.Points)))
			}
		}
	}
}

func countNonNull(ps []struct {
	Value *float64 `json:"value"`
}) int {
	n := 0
	for _, p := range ps {
		if p.Value != nil {
			n++
		}
	}
	return n
}

// historyValue is an indicator kept only as history over today, added up
// from its hourly series as the server adds up a range: numerators over
// denominators.
func historyValue(t *testing.T, n *node, ind, area, kind string) string {
	t.Helper()
	now := time.Now().In(hcm)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, hcm)
	var s struct {
		Points []struct {
			Value       *float64 `json:"value"`
			Numerator   *float64 `json:"numerator"`
			Denominator *float64 `json:"denominator"`
		} `json:"points"`
	}
	path := fmt.Sprintf("/api/v1/kpis/%s/series?area=%s&step=hour&from=%s&to=%s", ind, area,
		strings.ReplaceAll(midnight.Format(time.RFC3339), "+", "%2B"), strings.ReplaceAll(now.Format(time.RFC3339), "+", "%2B"))
	if code := n.get(path, adminToken, &s); code != 200 {
		t.Fatalf("GET %s: %d", path, code)
	}
	var num, den float64
	for _, p := range s.Points {
		if p.Numerator != nil && p.Denominator != nil {
			num += *p.Numerator
			den += *p.Denominator
		}
	}
	if kind != "ratio" || den == 0 {
		if kind == "ratio" {
			return ""
		}
		return jsonValue(num)
	}
	return jsonValue(math.Round(num/den*1e4) / 1e4)
}

// rankingOf ranks children by an indicator as the page's ranking does:
// highest first (lowest with bottom), units without a figure last, ties
// by code; "area=value,…" of the first n.
func rankingOf(kids []snapshot, ind string, bottom bool, n int) string {
	type item struct {
		area string
		v    *float64
	}
	var items []item
	for _, c := range kids {
		it := item{area: c.Area}
		if f, ok := c.KPIs[ind].(float64); ok {
			it.v = &f
		}
		items = append(items, it)
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if (a.v == nil) != (b.v == nil) {
			return a.v != nil
		}
		if a.v != nil && *a.v != *b.v {
			if bottom {
				return *a.v < *b.v
			}
			return *a.v > *b.v
		}
		return a.area < b.area
	})
	var parts []string
	for i, it := range items {
		if i >= n {
			break
		}
		v := ""
		if it.v != nil {
			v = jsonValue(*it.v)
		}
		parts = append(parts, it.area+"="+v)
	}
	return strings.Join(parts, ",")
}

// The node serves the wall page at /wall/ under the page's security
// policy, sends /wall on to it with its query, and has its files checked
// again on every load (a screen that reloads for a new build gets the new
// modules); the single-unit page keeps its five-minute cache.
func TestWallServed(t *testing.T) {
	n := startNode(t, testConfig(t))
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(n.base + "/wall?screen=s1&x=%C3%A1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/wall/?screen=s1&x=%C3%A1" {
		t.Errorf("GET /wall: got %d to %q, want 301 to /wall/?screen=s1&x=%%C3%%A1", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, want := range map[string]string{"/wall/": "text/html", "/wall/?dashboard=ops-79&area=79": "text/html",
		"/wall/main.js": "javascript", "/wall/widgets/map.js": "javascript", "/wall/wall.css": "text/css", "/wall/editor.html": "text/html", "/wall/editor.js": "javascript"} {
		resp := n.do("GET", path, "", "", nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), want) || len(body) == 0 {
			t.Errorf("GET %s: got %d %q, want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), want)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", path, got)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy %q, want the page's", path, csp)
		}
	}
	// The built-in page imports the wall's modules: its own files are
	// checked again on every load too, or a cached one could meet new
	// modules after a deploy.
	for _, path := range []string{"/", "/app.js", "/page/table.js", "/live.js"} {
		resp = n.do("GET", path, "", "", nil)
		resp.Body.Close()
		if got := resp.Header.Get("Cache-Control"); resp.StatusCode != 200 || got != "no-cache" {
			t.Errorf("GET %s: got %d, Cache-Control %q; want 200, no-cache", path, resp.StatusCode, got)
		}
	}
}

// The wall's pure modules (grid placement and spanning, type sizes,
// paging, periods and how step figures add up, colour ramps and tones for
// colour-blind viewers, words and alarm texts, GeoJSON to SVG), run by a
// test page in Chromium next to the page's own modules; the page lists
// each failed check.
func TestWallFunctions(t *testing.T) {
	if checks := runUnitPage(t, "testdata/wallunit", map[string]http.Handler{"/wall/": http.FileServer(dashboards.Assets())}); checks < 150 {
		t.Errorf("checks run: got %d, want the test page's 190 or so", checks)
	}
}
