package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
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
		case "feeds":
			onlyLate, _ := opts["only_late"].(bool)
			tab.awaitEqual(15*time.Second, "feeds "+id, orMissing(sel, `.dataset.items`), feedItems(t, n, onlyLate))
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

// feedHealth is a dataset's entry of GET /api/v1/datasets/health.
type feedHealth struct {
	Dataset      string   `json:"dataset"`
	Completeness *float64 `json:"completeness"`
	Due          string   `json:"due"`
	Late         bool     `json:"late"`
}

// state is how a feeds widget says the feed stands.
func (f feedHealth) state() string {
	switch {
	case f.Late:
		return "late"
	case f.Completeness != nil && *f.Completeness < 1:
		return "incomplete"
	}
	return "on_time"
}

func feedsHealth(t *testing.T, n *node) []feedHealth {
	t.Helper()
	var hb struct {
		Datasets []feedHealth `json:"datasets"`
	}
	if code := n.get("/api/v1/datasets/health", adminToken, &hb); code != 200 {
		t.Fatalf("feeds' health: status %d", code)
	}
	return hb.Datasets
}

// feedItems lists the datasets as a feeds widget does, from the feeds'
// health: late first, then the least complete (none: complete), then by
// id; "dataset=state,…", with onlyLate those not on time only.
func feedItems(t *testing.T, n *node, onlyLate bool) string {
	t.Helper()
	list := feedsHealth(t, n)
	completeness := func(f feedHealth) float64 {
		if f.Completeness == nil {
			return 1
		}
		return *f.Completeness
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.Late != b.Late {
			return a.Late
		}
		if ca, cb := completeness(a), completeness(b); ca != cb {
			return ca < cb
		}
		return a.Dataset < b.Dataset
	})
	var parts []string
	for _, f := range list {
		if onlyLate && f.state() == "on_time" {
			continue
		}
		parts = append(parts, f.Dataset+"="+f.state())
	}
	return strings.Join(parts, ",")
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

// feedsDatasets are three departments' datasets of province 79's
// communes: one whose values come for every commune, one for a few, one
// that never got any.
var feedsDatasets = map[string]string{
	"population": `{"id": "population", "name_vi": "Dân số", "name_en": "Population", "department": "Cục Thống kê", "grain": "year",
	 "level": "commune", "area": "79", "due_days": 90, "columns": {"unit": "Mã xã", "period": "Năm"},
	 "measures": [{"id": "residents", "name_vi": "Dân số", "name_en": "Residents", "unit": "people", "column": "Dân số", "rollup": "sum", "over_time": "last"}]}`,
	"enrolment": `{"id": "enrolment", "name_vi": "Tuyển sinh", "name_en": "School enrolment", "department": "Sở Giáo dục và Đào tạo", "grain": "year",
	 "level": "commune", "area": "79", "due_days": 120, "columns": {"unit": "Mã xã", "period": "Năm học"},
	 "measures": [{"id": "pupils", "name_vi": "Học sinh", "name_en": "Pupils", "unit": "pupils", "column": "Học sinh", "rollup": "sum", "over_time": "last"}]}`,
	"fines": `{"id": "fines", "name_vi": "Xử phạt giao thông", "name_en": "Traffic fines", "department": "Công an Thành phố", "grain": "month",
	 "level": "commune", "area": "79", "due_days": 10, "columns": {"unit": "Mã xã", "period": "Tháng"},
	 "measures": [{"id": "fines", "name_vi": "Lượt xử phạt", "name_en": "Fines", "unit": "fines", "column": "Lượt xử phạt", "rollup": "sum", "over_time": "sum"}]}`,
}

// feedsDashboard shows the feeds three ways: all of them, only those late
// or incomplete (with a title of its own), and all in a box that holds
// one row, which must turn its pages.
const feedsDashboard = `{"id": "feeds-79", "title": {"vi": "Dữ liệu các sở", "en": "Department data"}, "area": "79",
 "grid": {"columns": 24, "rows": 12}, "widgets": [
  {"id": "head", "type": "header", "x": 0, "y": 0, "w": 20, "h": 1},
  {"id": "clock", "type": "clock", "x": 20, "y": 0, "w": 4, "h": 1},
  {"id": "all", "type": "feeds", "x": 0, "y": 1, "w": 12, "h": 11},
  {"id": "late", "type": "feeds", "x": 12, "y": 1, "w": 12, "h": 8, "options": {"only_late": true, "title": {"vi": "Dữ liệu trễ hạn, chưa đủ", "en": "Late or incomplete"}}},
  {"id": "paged", "type": "feeds", "x": 12, "y": 9, "w": 12, "h": 3}]}`

// A feeds widget lists the departments' datasets from the feeds' health,
// by name, department, latest period and completeness: the one that never
// got values late (with the period due) and first, the one with a few
// communes incomplete, the one with every commune on time; with only_late
// the last is left out, and a box too small for all of them turns its
// pages. At 1920×1080 and 3840×2160 nothing scrolls, is cut off or is
// smaller than the wall's text; screenshots are saved.
func TestWallFeeds(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, testConfig(t))
	dir := artifacts(t)
	var kids struct {
		Children []snapshot `json:"children"`
	}
	if code := n.get("/api/v1/areas/79/children/kpis", adminToken, &kids); code != 200 || len(kids.Children) < 10 {
		t.Fatalf("children of 79: status %d, %d children", code, len(kids.Children))
	}
	for id, def := range feedsDatasets {
		resp := n.do("PUT", "/api/v1/datasets/"+id, adminToken, "application/json", []byte(def))
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("define dataset %s: %d %s", id, resp.StatusCode, b)
		}
	}
	// This year's values: whenever the test runs, the latest period is
	// not older than the one due.
	year := time.Now().In(hcm).Year()
	sender := issueToken(t, auth.Ingest)
	upload := func(id, header string, communes []snapshot) {
		t.Helper()
		var b strings.Builder
		b.WriteString(header + "\n")
		for i, k := range communes {
			fmt.Fprintf(&b, "%s,%d,%d\n", k.Area, year, 1000+17*i)
		}
		resp := n.do("POST", "/api/v1/datasets/"+id+"/values", sender, "text/csv", []byte(b.String()))
		var r struct {
			Stored  int `json:"stored"`
			Refused int `json:"refused"`
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(raw, &r); err != nil || resp.StatusCode != 200 || r.Stored != len(communes) || r.Refused != 0 {
			t.Fatalf("upload to %s: %d %s, want %d rows stored", id, resp.StatusCode, raw, len(communes))
		}
	}
	upload("population", "Mã xã,Năm,Dân số", kids.Children)
	upload("enrolment", "Mã xã,Năm học,Học sinh", kids.Children[:5])
	want := map[string]string{"fines": "late", "enrolment": "incomplete", "population": "on_time"}
	var due string
	eventually(t, 30*time.Second, func() (bool, string) {
		got := map[string]string{}
		for _, f := range feedsHealth(t, n) {
			got[f.Dataset] = f.state()
			if f.Dataset == "fines" {
				due = f.Due
			}
		}
		return maps.Equal(got, want), fmt.Sprintf("feeds %v, want %v", got, want)
	})
	if due == "" {
		t.Fatal("the late feed names no period due")
	}

	w := &wallAPI{t: t, n: n, base: n.base}
	w.store("dashboards/feeds-79", []byte(feedsDashboard))
	def := w.doc("dashboards/feeds-79")
	cat := catalogOf(t, n)
	viewer := issueToken(t, auth.Viewer, "79")
	row := func(widget, dataset string) string {
		return fmt.Sprintf(`document.querySelector('.board [data-widget="%s"] li[data-dataset="%s"]')`, widget, dataset)
	}
	for _, vp := range []struct{ w, h int64 }{{1920, 1080}, {3840, 2160}} {
		t.Run(fmt.Sprintf("%dx%d", vp.w, vp.h), func(t *testing.T) {
			tab := openTab(t, browser, fmt.Sprintf("%s/wall/?dashboard=feeds-79&area=79&access_token=%s", w.base, viewer), chromedp.EmulateViewport(vp.w, vp.h))
			tab.await(30*time.Second, "first full render", `document.documentElement.dataset.firstRender`)
			// The order of every feeds widget, against the health API.
			checkWallValues(t, tab, n, cat, def, "79", "today")
			tab.expectEqual("the late feed listed first", "document.querySelector('.board [data-widget=\"all\"] li.feed').dataset.dataset", "fines")
			for id, state := range want {
				tab.expectEqual("state of "+id, orMissing(row("all", id), ".dataset.state"), state)
			}
			tab.expectEqual("name of fines", orMissing(row("all", "fines"), `.querySelector('.feed-name .vi').textContent`), "Xử phạt giao thông")
			tab.expectEqual("fines: the period due", orMissing(row("all", "fines"), ".dataset.due"), due)
			tab.expectEqual("fines: no values yet", orMissing(row("all", "fines"), `.querySelector('.feed-meta .vi').textContent`), "Công an Thành phố · chưa có số liệu")
			tab.expectEqual("fines says late with the period due", orMissing(row("all", "fines"), `.querySelector('.feed-state .vi').textContent`), "Trễ hạn · kỳ "+due)
			tab.expectEqual("population: complete", orMissing(row("all", "population"), `.querySelector('.feed-pct').textContent`), "100%")
			tab.expectEqual("population: its latest period", orMissing(row("all", "population"), ".dataset.latest"), strconv.Itoa(year))
			tab.expectEqual("enrolment: units reported", orMissing(row("all", "enrolment"), ".dataset.reported + '/' + e.dataset.expected"),
				fmt.Sprintf("5/%d", len(kids.Children)))
			tab.expectEqual("late count in the title", orMissing(`document.querySelector('.board [data-widget="all"] .feed-count')`, ".textContent"), "1 trễ hạn")
			tab.expectEqual("only_late leaves the feed on time out", `String(document.querySelectorAll('.board [data-widget="late"] li[data-dataset]').length)`, "2")
			// The small box: one page at a time, turning by itself.
			paged := `document.querySelector('.board [data-widget="paged"]')`
			pages := atoi(t, tab.value(orMissing(paged, ".dataset.pages")))
			shown := atoi(t, tab.value(`String(document.querySelectorAll('.board [data-widget="paged"] li[data-dataset]').length)`))
			if pages < 2 || shown >= len(want) {
				t.Errorf("the small feeds box: %d pages with %d rows shown, want the 3 feeds over pages", pages, shown)
			}
			tab.awaitEqual(25*time.Second, "the small box's next page", orMissing(paged, ".dataset.page"), "2")

			r := tab.layout()
			for what, list := range map[string][]string{"scrolling": r.Scroll, "widgets outside the viewport": r.Outside,
				"content cut off": r.Clipped, "text under 2% of the height": r.Small} {
				if len(list) > 0 {
					t.Errorf("%s: %q", what, list)
				}
			}
			tab.expectEqual("every feeds widget fits", `Array.from(document.querySelectorAll('.board .w-feeds')).filter(w => w.dataset.fits !== 'true').map(w => w.dataset.widget).join(',')`, "")
			tab.noExceptions()
			saveScreenshot(t, tab, filepath.Join(dir, fmt.Sprintf("feeds-79-%dx%d.png", vp.w, vp.h)), "")
		})
	}
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
