package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openioc/ioc/api/auth"
)

// TestDepartmentDataInSnapshotsLiveTopicsAndMaps: the shipped population
// dataset, fed by a CSV upload, appears in the province's snapshot, on its
// live topic and in the map layers (GeoJSON and OGC), each figure equal to
// hand computation: the latest year's residents (a commune that did not
// report it keeps its earlier year), the people per household summed
// before dividing, and dossiers per 1,000 residents from the window's
// dossiers.
func TestDepartmentDataInSnapshotsLiveTopicsAndMaps(t *testing.T) {
	runsBesideOthers(t)
	cfg := testConfig(t)
	cfg.DatasetsDir = filepath.Join("..", "..", "deploy", "datasets")
	n := startNode(t, cfg)
	waitLive(t, n)

	ws := n.live(adminToken)
	ws.send("subscribe", "kpi/79/24h")
	first := ws.next(10 * time.Second)
	if s := first.snapshot(t); s.Area != "79" || !hasNull(s.KPIs, "population.residents") {
		t.Fatalf("before any upload: got %s, want the province's snapshot with population.residents null", first.Data)
	}

	// 3 dossiers received in Bến Thành (26740), 1 in Sài Gòn (26743).
	code, r := n.ingest(event("p1", "P1", "26740", "received", "online", time.Hour), event("p2", "P2", "26740", "received", "online", time.Hour),
		event("p3", "P3", "26740", "received", "online", time.Hour), event("p4", "P4", "26743", "received", "online", time.Hour))
	if code != 202 || r.Accepted != 4 {
		t.Fatalf("ingest: %d %+v", code, r)
	}
	csv := "\ufeffMã xã,Năm,Dân số,Số hộ\n26740,2024,10000,4000\n26740,2025,12000,4800\n26743,2024,8000,2000\n"
	var up struct{ Stored, Refused int }
	posted := time.Now()
	if code := n.post("/api/v1/datasets/population/values", adminToken, "text/csv", []byte(csv), &up); code != 200 || up.Stored != 3 {
		t.Fatalf("upload: status %d, %+v; want 3 rows stored", code, up)
	}

	// Hand computation for the province over 24h: residents 12000 (26740's
	// 2025) + 8000 (26743's 2024, still its latest); households 4800 + 2000;
	// 4 dossiers per 20000 residents.
	want := map[string]float64{"population.residents": 20000, "population.households": 6800,
		"population.people_per_household": 2.9412, "population.dossiers_per_1000": 0.2, "dossiers_received": 4}
	live := ws.until(30*time.Second, func(m wsMessage) bool {
		return m.Topic == "kpi/79/24h" && matches(m.snapshot(t).KPIs, want)
	})
	t.Logf("the upload reached the screen %s after it was answered", time.Since(posted).Round(time.Millisecond))
	if live.Type != "update" {
		t.Errorf("the live topic: got a %s, want an update", live.Type)
	}
	if s := n.kpis("79", "24h"); !matches(s.KPIs, want) {
		t.Errorf("the province's snapshot: got %v, want %v", s.KPIs, want)
	}
	// Today's window holds the same department figures: they are the
	// latest year's whatever the window.
	if s := n.kpis("79", "30d"); s.KPIs["population.residents"] != 20000.0 {
		t.Errorf("over 30 days: residents %v, want 20000", s.KPIs["population.residents"])
	}

	// The map layer of the communes: each commune's own figures.
	perCommune := map[string]map[string]float64{
		"26740": {"population.residents": 12000, "population.people_per_household": 2.5, "population.dossiers_per_1000": 0.25},
		"26743": {"population.residents": 8000, "population.people_per_household": 4, "population.dossiers_per_1000": 0.125},
	}
	var fc struct {
		Features []struct {
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	kpis := "population.residents,population.people_per_household,population.dossiers_per_1000"
	if code := n.get("/api/v1/layers/vn-2025.commune.kpi.geojson?parent=79&window=24h&kpi="+kpis, adminToken, &fc); code != 200 {
		t.Fatalf("the commune layer: status %d", code)
	}
	checkFeatures(t, "GeoJSON layer", fc.Features, perCommune)
	fc.Features = nil
	if code := n.get("/ogc/collections/vn-2025.commune.kpi/items?parent=79&window=24h&limit=1000&kpi="+kpis, adminToken, &fc); code != 200 {
		t.Fatalf("the OGC items: status %d", code)
	}
	checkFeatures(t, "OGC items", fc.Features, perCommune)

	// The catalog serves them as live indicators, and a wall may show them.
	var cat struct {
		KPIs []struct {
			ID   string `json:"id"`
			Live bool   `json:"live"`
		} `json:"kpis"`
	}
	if code := n.get("/api/v1/kpis", adminToken, &cat); code != 200 {
		t.Fatalf("catalog: status %d", code)
	}
	live2 := map[string]bool{}
	for _, k := range cat.KPIs {
		live2[k.ID] = k.Live
	}
	if !live2["population.residents"] || !live2["population.dossiers_per_1000"] {
		t.Errorf("the catalog does not mark the dataset's indicators live: %v", live2)
	}
	dash := `{"title":{"vi":"Dân số","en":"Population"},"area":"79","grid":{"columns":4,"rows":2},"widgets":[` +
		`{"id":"res","type":"kpi","x":0,"y":0,"w":2,"h":1,"options":{"indicator":"population.residents"}},` +
		`{"id":"map","type":"map","x":2,"y":0,"w":2,"h":2,"options":{"indicator":"population.dossiers_per_1000"}}]}`
	resp := n.do("PUT", "/api/v1/dashboards/population", adminToken, "application/json", []byte(dash))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 201 {
		t.Errorf("a dashboard of the dataset's indicators: status %d: %s", resp.StatusCode, body)
	}
}

// hasNull says whether m holds id, as null.
func hasNull(m map[string]any, id string) bool {
	v, ok := m[id]
	return ok && v == nil
}

// matches says whether m holds every figure of want.
func matches(m map[string]any, want map[string]float64) bool {
	for id, w := range want {
		v, ok := m[id].(float64)
		if !ok || v != w {
			return false
		}
	}
	return true
}

// checkFeatures checks the features of the units in want carry its
// figures.
func checkFeatures(t *testing.T, what string, features []struct {
	Properties map[string]any `json:"properties"`
}, want map[string]map[string]float64) {
	t.Helper()
	seen := 0
	for _, f := range features {
		code, _ := f.Properties["code"].(string)
		if w, ok := want[code]; ok {
			seen++
			if !matches(f.Properties, w) {
				t.Errorf("%s: %s has %v, want %v", what, code, f.Properties, w)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("%s: %d of the %d communes found among %d features", what, seen, len(want), len(features))
	}
}

// TestWallDepartmentsDashboard: make run's department data dashboard
// (deploy/walls, stored through the import) over the shipped datasets,
// fed by CSV: in Chromium at 1080p and 4K every figure equals the API's,
// nothing scrolls or is cut off, and no script fails.
func TestWallDepartmentsDashboard(t *testing.T) {
	browser := newBrowser(t)
	cfg := testConfig(t)
	cfg.DatasetsDir = filepath.Join("..", "..", "deploy", "datasets")
	n := startNode(t, cfg)
	dir := artifacts(t)
	var kids struct {
		Children []snapshot `json:"children"`
	}
	if code := n.get("/api/v1/areas/79/children/kpis", adminToken, &kids); code != 200 || len(kids.Children) < 10 {
		t.Fatalf("children of 79: status %d, %d children", code, len(kids.Children))
	}
	// Every commune's census and schools of last year, its enterprises of
	// the last two months: values whatever the day the test runs.
	now := time.Now().In(hcm)
	year := now.Year() - 1
	months := []time.Time{time.Date(now.Year(), now.Month()-2, 1, 0, 0, 0, 0, hcm), time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, hcm)}
	var pop, schools, firms strings.Builder
	pop.WriteString("Mã xã,Năm,Dân số,Số hộ\n")
	schools.WriteString("Mã xã,Năm học,Học sinh,Giáo viên,Trường\n")
	firms.WriteString("Mã xã,Tháng,Thành lập mới,Giải thể\n")
	for i, k := range kids.Children {
		fmt.Fprintf(&pop, "%s,%d,%d,%d\n", k.Area, year, 20000+137*i, 6000+41*i)
		fmt.Fprintf(&schools, "%s,%d,%d,%d,%d\n", k.Area, year, 2000+13*i, 90+i%7, 3+i%4)
		for j, m := range months {
			fmt.Fprintf(&firms, "%s,%s,%d,%d\n", k.Area, m.Format("2006-01"), 5+(i+j)%9, (i*j)%3)
		}
	}
	for id, csv := range map[string]string{"population": pop.String(), "enrolment": schools.String(), "enterprises": firms.String()} {
		var up struct{ Stored, Refused int }
		if code := n.post("/api/v1/datasets/"+id+"/values", adminToken, "text/csv", []byte(csv), &up); code != 200 || up.Refused != 0 {
			t.Fatalf("upload to %s: status %d, %+v", id, code, up)
		}
	}
	// The node holding the live figures reads the datasets again within a
	// second or two of an upload: the page is compared with the API once
	// the API has them.
	eventually(t, 30*time.Second, func() (bool, string) {
		k := n.kpis("79", "today").KPIs
		return k["enrolment.pupils_per_teacher"] != nil && k["enterprises.registered"] != nil && k["population.residents"] != nil,
			fmt.Sprintf("the province's snapshot lacks the uploaded figures: %v", k)
	})
	wall, err := os.ReadFile(filepath.Join("..", "..", "deploy", "walls", "departments-79.json"))
	if err != nil {
		t.Fatal(err)
	}
	if code := n.post("/api/v1/dashboards/import", adminToken, "application/json", wall, nil); code != 200 {
		t.Fatalf("import deploy/walls/departments-79.json: status %d", code)
	}
	w := &wallAPI{t: t, n: n, base: n.base}
	def := w.doc("dashboards/departments-79")
	cat := catalogOf(t, n)
	viewer := issueToken(t, auth.Viewer, "79")
	for _, vp := range []struct{ w, h int64 }{{1920, 1080}, {3840, 2160}} {
		t.Run(fmt.Sprintf("%dx%d", vp.w, vp.h), func(t *testing.T) {
			tab := openTab(t, browser, fmt.Sprintf("%s/wall/?dashboard=departments-79&area=79&access_token=%s", w.base, viewer), chromedp.EmulateViewport(vp.w, vp.h))
			tab.await(30*time.Second, "first full render", `document.documentElement.dataset.firstRender`)
			checkWallValues(t, tab, n, cat, def, "79", "today")
			// People per household is a number of people, not a share.
			tab.expectEqual("people per household has no percent sign",
				orMissing(`document.querySelector('.board [data-widget="household"]')`, `.querySelector('.kpi-value').textContent.includes('%')`), "false")
			// Pupils per teacher past the dataset's critical 25: the tile takes
			// the catalog's thresholds, having none of its own.
			tab.expectEqual("pupils per teacher's tone", orMissing(`document.querySelector('.board [data-widget="pupils"]')`, ".dataset.tone"), "bad")
			r := tab.layout()
			for what, list := range map[string][]string{"scrolling": r.Scroll, "widgets outside the viewport": r.Outside,
				"content cut off": r.Clipped, "text under 2% of the height": r.Small} {
				if len(list) > 0 {
					t.Errorf("%s: %q", what, list)
				}
			}
			tab.noExceptions()
			saveScreenshot(t, tab, filepath.Join(dir, fmt.Sprintf("departments-79-%dx%d.png", vp.w, vp.h)), "")
		})
	}
}
