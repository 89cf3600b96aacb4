package dashboards_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/dashboards"
	"github.com/openioc/ioc/report"
	"github.com/openioc/ioc/severity"
	"github.com/openioc/ioc/topic"
)

var update = flag.Bool("update", false, "rewrite the golden error lists under testdata/")

// catalog is testdata/catalog.json: the server's indicators (the api
// package's tests keep it equal to aggregate's catalog), a few units of
// province 79 and the scoreboard groups.
type catalog struct {
	Indicators map[string]dashboards.Indicator `json:"indicators"`
	Groups     []string                        `json:"groups"`
	Areas      map[string]dashboards.Area      `json:"areas"`
}

func (c catalog) Indicator(id string) (dashboards.Indicator, bool) {
	i, ok := c.Indicators[id]
	return i, ok
}
func (c catalog) Area(code string) (dashboards.Area, bool) { a, ok := c.Areas[code]; return a, ok }
func (c catalog) ScoreboardGroup(id string) bool           { return slices.Contains(c.Groups, id) }
func (c catalog) ScorePeriod(name string) error {
	_, err := report.ParsePeriod(name, time.Now(), time.UTC)
	return err
}

// stored stands for the documents a server holds.
type stored map[dashboards.Kind][]string

func (s stored) Has(k dashboards.Kind, id string) bool { return slices.Contains(s[k], id) }

func testChecks(t *testing.T) dashboards.Checks {
	t.Helper()
	b, err := os.ReadFile("testdata/catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	var c catalog
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return dashboards.Checks{Catalog: c, Documents: stored{
		dashboards.KindDashboard: {"ops-79", "ops-district"},
		dashboards.KindPlaylist:  {"pl-79"},
		dashboards.KindWall:      {"wall-79"},
	}}
}

// testCase is one document of testdata/invalid.json or semantic.json.
type testCase struct {
	Name     string          `json:"name"`
	Kind     string          `json:"kind"` // a kind, or export
	Document json.RawMessage `json:"document"`
}

func readCases(t *testing.T, file string) []testCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var cs []testCase
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return cs
}

// validate runs a case through the package as the server does: an export
// as an import, a document as a PUT.
func validate(c testCase, checks dashboards.Checks) error {
	if c.Kind == "export" {
		srcs, err := dashboards.ParseExport("", c.Document)
		if err != nil {
			return err
		}
		_, err = dashboards.ValidateSet(srcs, checks)
		return err
	}
	_, err := dashboards.Validate(dashboards.Kind(c.Kind), c.Document, checks)
	return err
}

// TestRefusals checks every refused document against the golden list of
// its errors: each with its JSON path and a message that says how to fix
// it. Run with -update to rewrite the lists, and read the diff.
func TestRefusals(t *testing.T) {
	checks := testChecks(t)
	for _, file := range []string{"invalid", "semantic"} {
		t.Run(file, func(t *testing.T) {
			var got strings.Builder
			for _, c := range readCases(t, file+".json") {
				err := validate(c, checks)
				var inv *dashboards.InvalidError
				if !errors.As(err, &inv) {
					t.Errorf("%s: got %v, want the document refused", c.Name, err)
					continue
				}
				fmt.Fprintf(&got, "== %s\n", c.Name)
				for _, f := range inv.Fields {
					fmt.Fprintf(&got, "%s\n", f)
					if f.Error == "" || !strings.ContainsAny(f.Error, ":(") && !strings.Contains(f.Error, " not ") {
						t.Errorf("%s: %q says what is wrong but not how to fix it", c.Name, f)
					}
				}
			}
			golden := filepath.Join("testdata", file+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./dashboards -run TestRefusals -update to write it)", err)
			}
			if got.String() != string(want) {
				t.Errorf("errors differ from %s (rerun with -update and read the diff):\n%s", golden, diffLines(string(want), got.String()))
			}
		})
	}
}

// diffLines lists the lines only one side has.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// TestEveryErrorAtOnce: a document with many faults gets all of them back,
// not the first one only.
func TestEveryErrorAtOnce(t *testing.T) {
	body := `{"id":"Bad Id","title":{"vi":"x"},"area":"99999","window":"week","grid":{"columns":24,"rows":12},
	 "widgets":[{"id":"a","type":"kpi","x":0,"y":0,"w":4,"h":2,"options":{"indicator":"overdue"}},
	            {"id":"a","type":"map","x":2,"y":1,"w":30,"h":2,"options":{"indicator":"online_rate","legend":"fixed"}}]}`
	_, err := dashboards.Validate(dashboards.KindDashboard, []byte(body), testChecks(t))
	var inv *dashboards.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("got %v, want an InvalidError", err)
	}
	var paths []string
	for _, f := range inv.Fields {
		paths = append(paths, f.Path)
	}
	want := []string{"id", "title.en", "area", "window", "widgets[0].options.indicator", "widgets[1].id", "widgets[1].w",
		"widgets[1].options.thresholds"}
	if !slices.Equal(paths, want) {
		t.Errorf("paths %q, want %q:\n%v", paths, want, err)
	}
}

// TestDefaults: the shipped documents are valid together, are the ones
// the README lists, and use only indicators of the catalog.
func TestDefaults(t *testing.T) {
	srcs, err := dashboards.ReadDir(dashboards.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	checks := testChecks(t)
	checks.Documents = stored{} // a fresh store: the defaults refer to one another only
	docs, err := dashboards.ValidateSet(srcs, checks)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, string(d.Kind)+" "+d.ID)
	}
	slices.Sort(got)
	want := []string{"dashboard dossiers-79", "dashboard env-79", "dashboard ops-79", "dashboard ops-district",
		"playlist pl-79", "playlist pl-79-communes", "screen desk", "screen s1", "screen s2", "screen s3", "screen s4", "screen s5", "screen s6",
		"wall desk-79", "wall wall-79"}
	if !slices.Equal(got, want) {
		t.Errorf("defaults %q, want %q", got, want)
	}
	for _, d := range docs {
		if d.Kind != dashboards.KindWall {
			continue
		}
		// The 3×2 wall spreads each dashboard over six screens; the
		// desk, which make run prints the link of, shows them whole; an
		// alarm takes the first screen of each.
		w := d.Value.(*dashboards.Wall)
		switch {
		case w.ID == "wall-79" && (w.Columns != 3 || w.Rows != 2 || len(w.Screens) != 6 || !w.Span || w.Takeover == nil || !slices.Equal(w.Takeover.Screens, []string{"s1"})):
			t.Errorf("wall %+v, want 3×2 screens s1…s6 spanned, with takeover on s1", w)
		case w.ID == "desk-79" && (w.Columns != 1 || w.Rows != 1 || w.Span || w.Playlist != "pl-79" || w.Takeover == nil || !slices.Equal(w.Takeover.Screens, []string{"desk"})):
			t.Errorf("wall %+v, want the desk's screen alone, playing pl-79, with takeover", w)
		}
	}
}

// TestCanonical: a stored document carries its defaults, and validating
// it again changes nothing, so that saving the same thing twice is seen
// as unchanged.
func TestCanonical(t *testing.T) {
	body := `{"id":"d1","title":{"vi":"Bảng","en":"Board"},"area":"$area","grid":{"columns":12,"rows":12},"widgets":[
	  {"id":"k","type":"kpi","x":0,"y":0,"w":4.0,"h":2,"options":{"indicator":"online_rate","title":{"vi":"Trực tuyến","en":"Online"}}},
	  {"id":"r","type":"ranking","x":4,"y":0,"w":4,"h":6,"options":{"indicator":"dossiers_overdue"}},
	  {"id":"s","type":"series","x":0,"y":2,"w":4,"h":4,"options":{"indicators":["online_rate"]}},
	  {"id":"a","type":"alarms","x":8,"y":0,"w":4,"h":3},
	  {"id":"e","type":"events","x":8,"y":3,"w":4,"h":2},
	  {"id":"c","type":"clock","x":8,"y":5,"w":4,"h":1},
	  {"id":"m","type":"map","x":0,"y":6,"w":6,"h":6,"options":{"indicator":"online_rate"}},
	  {"id":"m2","type":"map","x":6,"y":6,"w":3,"h":6,"options":{"indicator":"online_rate","ramp":"cividis"}},
	  {"id":"sb","type":"scoreboard","x":9,"y":6,"w":3,"h":6,"options":{"period":"2026-Q3"}}]}`
	d, err := dashboards.Validate(dashboards.KindDashboard, []byte(body), testChecks(t))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"d1","title":{"vi":"Bảng","en":"Board"},"area":"$area","window":"today","theme":"wall","grid":{"columns":12,"rows":12},"widgets":[` +
		`{"id":"k","type":"kpi","x":0,"y":0,"w":4,"h":2,"options":{"indicator":"online_rate","compare":"none","title":{"vi":"Trực tuyến","en":"Online"}}},` +
		`{"id":"r","type":"ranking","x":4,"y":0,"w":4,"h":6,"options":{"indicator":"dossiers_overdue","order":"top","n":10,"page_seconds":10}},` +
		`{"id":"s","type":"series","x":0,"y":2,"w":4,"h":4,"options":{"indicators":["online_rate"],"step":"day","days":30}},` +
		`{"id":"a","type":"alarms","x":8,"y":0,"w":4,"h":3,"options":{"min_severity":"warning"}},` +
		`{"id":"e","type":"events","x":8,"y":3,"w":4,"h":2,"options":{"min_severity":"info"}},` +
		`{"id":"c","type":"clock","x":8,"y":5,"w":4,"h":1},` +
		`{"id":"m","type":"map","x":0,"y":6,"w":6,"h":6,"options":{"indicator":"online_rate","legend":"fitted","ramp":"viridis"}},` +
		`{"id":"m2","type":"map","x":6,"y":6,"w":3,"h":6,"options":{"indicator":"online_rate","legend":"fitted","ramp":"cividis"}},` +
		`{"id":"sb","type":"scoreboard","x":9,"y":6,"w":3,"h":6,"options":{"group":"all","period":"2026-Q3"}}]}`
	if string(d.Body) != want {
		t.Errorf("canonical\n%s\nwant\n%s", d.Body, want)
	}
	again, err := dashboards.Validate(dashboards.KindDashboard, d.Body, testChecks(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Body) != string(d.Body) {
		t.Errorf("validating the canonical form changed it:\n%s\n%s", d.Body, again.Body)
	}
	w, err := dashboards.Validate(dashboards.KindWall, []byte(`{"id":"w","title":{"vi":"T","en":"W"},"columns":1,"rows":1,
	  "screens":[{"screen":"s1","col":0,"row":0}],"dashboard":"ops-79","takeover":{"screens":["s1"]}}`), testChecks(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(w.Body); !strings.Contains(got, `"span":false,"takeover":{"min_severity":"critical","screens":["s1"],"timeout_seconds":300,"chime":false}`) {
		t.Errorf("wall %s: want the takeover's defaults filled in", got)
	}
}

// TestFeedsWidget: a feeds widget takes only_late (true or false) and a
// title, and nothing else; a stored one keeps only_late only when true.
func TestFeedsWidget(t *testing.T) {
	doc := func(options string) string {
		return `{"id":"d1","title":{"vi":"Bảng","en":"Board"},"area":"79","grid":{"columns":12,"rows":12},"widgets":[` +
			`{"id":"f","type":"feeds","x":0,"y":0,"w":6,"h":6` + options + `}]}`
	}
	for options, want := range map[string]string{
		``:                               `{"id":"f","type":"feeds","x":0,"y":0,"w":6,"h":6}`,
		`,"options":{"only_late":false}`: `{"id":"f","type":"feeds","x":0,"y":0,"w":6,"h":6,"options":{}}`,
		`,"options":{"only_late":true,"title":{"vi":"Dữ liệu trễ","en":"Late feeds"}}`: `{"id":"f","type":"feeds","x":0,"y":0,"w":6,"h":6,` +
			`"options":{"only_late":true,"title":{"vi":"Dữ liệu trễ","en":"Late feeds"}}}`,
	} {
		d, err := dashboards.Validate(dashboards.KindDashboard, []byte(doc(options)), testChecks(t))
		if err != nil {
			t.Errorf("options %s: %v", options, err)
			continue
		}
		if got := string(d.Body); !strings.Contains(got, `"widgets":[`+want+`]`) {
			t.Errorf("options %s: stored %s, want the widget %s", options, got, want)
		}
	}
	for options, want := range map[string]string{
		`,"options":{"only_late":"yes"}`:      `widgets[0].options.only_late: must be true or false, not a string: true lists only the datasets that are late or incomplete, false (the default) every one`,
		`,"options":{"only_late":1}`:          `widgets[0].options.only_late: must be true or false, not a number: true lists only the datasets that are late or incomplete, false (the default) every one`,
		`,"options":{"dataset":"population"}`: `widgets[0].options.dataset: unknown field: a feeds widget's options takes only_late, title`,
	} {
		_, err := dashboards.Validate(dashboards.KindDashboard, []byte(doc(options)), testChecks(t))
		if err == nil || err.Error() != want {
			t.Errorf("options %s: got %v, want %s", options, err, want)
		}
	}
}

// TestSetResolvesItsOwnReferences: documents imported together may refer
// to one another, in any order, even in a cycle of drill-downs.
func TestSetResolvesItsOwnReferences(t *testing.T) {
	body := `{"screens":[{"id":"x1","title":{"vi":"a","en":"a"},"areas":["79"],"wall":"w"}],
	 "walls":[{"id":"w","title":{"vi":"a","en":"a"},"columns":1,"rows":1,"screens":[{"screen":"x1","col":0,"row":0}],"playlist":"p"}],
	 "playlists":[{"id":"p","title":{"vi":"a","en":"a"},"items":[{"dashboard":"a"},{"dashboard":"b","area":"26734"}]}],
	 "dashboards":[
	  {"id":"a","title":{"vi":"a","en":"a"},"area":"79","grid":{"columns":1,"rows":1},"widgets":[{"id":"m","type":"map","x":0,"y":0,"w":1,"h":1,"options":{"indicator":"online_rate","drilldown":{"dashboard":"b"}}}]},
	  {"id":"b","title":{"vi":"b","en":"b"},"area":"$area","grid":{"columns":1,"rows":1},"widgets":[{"id":"m","type":"map","x":0,"y":0,"w":1,"h":1,"options":{"indicator":"online_rate","drilldown":{"dashboard":"a"}}}]}]}`
	srcs, err := dashboards.ParseExport("set.json", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	checks := testChecks(t)
	checks.Documents = stored{}
	docs, err := dashboards.ValidateSet(srcs, checks)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 5 {
		t.Fatalf("%d documents, want 5", len(docs))
	}
	var refs []string
	for _, d := range docs {
		for _, r := range d.Refs {
			refs = append(refs, fmt.Sprintf("%s %s %s→%s %s", d.Kind, d.ID, r.Path, r.Kind, r.ID))
		}
	}
	want := []string{"dashboard a widgets[0].options.drilldown.dashboard→dashboard b", "dashboard b widgets[0].options.drilldown.dashboard→dashboard a",
		"playlist p items[0].dashboard→dashboard a", "playlist p items[1].dashboard→dashboard b", "wall w playlist→playlist p", "screen x1 wall→wall w"}
	if !slices.Equal(refs, want) {
		t.Errorf("references\n%q\nwant\n%q", refs, want)
	}
}

// TestFolder: a folder may mix single documents and exports; a broken
// file is named in its errors.
func TestFolder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.json", `{"id":"p","title":{"vi":"a","en":"a"},"items":[{"dashboard":"ops-79"}]}`)
	write("b.json", `{"screens":[{"id":"x1","title":{"vi":"a","en":"a"},"areas":["79"]}]}`)
	write("notes.txt", `not a document`)
	srcs, err := dashboards.ReadDir(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 || srcs[0].Kind != dashboards.KindPlaylist || srcs[1].Kind != dashboards.KindScreen || srcs[1].File != "b.json" {
		t.Fatalf("sources %+v", srcs)
	}
	write("c.json", `{"id":"q","title":{"vi":"a","en":"a"}}`)
	write("d.json", `{"id":"r","title":{"vi":"a","en":"a"},"items":[{"dashboard":"ops-79","seconds":1}]}`)
	if _, err := dashboards.ReadDir(os.DirFS(dir)); err == nil || !strings.Contains(err.Error(), "c.json: cannot tell which kind of document") {
		t.Errorf("got %v, want c.json named as of no kind", err)
	}
	os.Remove(filepath.Join(dir, "c.json"))
	srcs, err = dashboards.ReadDir(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	_, err = dashboards.ValidateSet(srcs, testChecks(t))
	if err == nil || !strings.Contains(err.Error(), "d.json: items[0].seconds: 1 is out of range") {
		t.Errorf("got %v, want d.json's error with its file and path", err)
	}
}

// TestVocabularyAgreesWithItsOwners: dashboards, a leaf, keeps its own
// copy of the windows and severities; they must be the live topics' and
// the one scale of alarms and camera events.
func TestVocabularyAgreesWithItsOwners(t *testing.T) {
	if !slices.Equal(dashboards.Windows, topic.Windows) {
		t.Errorf("dashboards.Windows %v, want topic.Windows %v", dashboards.Windows, topic.Windows)
	}
	if !slices.Equal(dashboards.Severities, severity.Levels) {
		t.Errorf("dashboards.Severities %v, want severity.Levels %v", dashboards.Severities, severity.Levels)
	}
}
