package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// square is a closed GeoJSON ring around (lon, lat) with side d degrees.
func square(lon, lat, d float64) string {
	return fmt.Sprintf("[[%v,%v],[%v,%v],[%v,%v],[%v,%v],[%v,%v]]", lon, lat, lon+d, lat, lon+d, lat+d, lon, lat+d, lon, lat)
}

func feature(code, level, parent, name, rings string) string {
	geom := `null`
	if rings != "" {
		geom = `{"type":"Polygon","coordinates":[` + rings + `]}`
	}
	return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"level":%q,"parent":%q,"name":%q},"geometry":%s}`, code, level, parent, name, geom)
}

func collection(features ...string) string {
	return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A city with two districts side by side, west and east.
var demoCity = collection(
	feature("C1", "city", "", "Demo City", square(100, 10, 2)),
	feature("D1", "district", "C1", "West", `[[100,10],[101,10],[101,12],[100,12],[100,10]]`),
	feature("D2", "district", "C1", "East", `[[101,10],[102,10],[102,12],[101,12],[101,10]]`),
)

func TestImportUnitsRefusesBadData(t *testing.T) {
	dir := t.TempDir()
	f := func(name, geojson string, extra []string, want string) {
		t.Helper()
		path := writeFile(t, dir, name+".geojson", geojson)
		args := append([]string{"--geo-dir", filepath.Join(dir, "geo"), "--name", "demo", "--levels", "city,district", "--boundaries", path}, extra...)
		err := importUnits(args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "geo", "demo.json")); err == nil {
			t.Errorf("%s: a refused import left a manifest behind", name)
		}
	}
	f("unclosed", collection(feature("C1", "city", "", "X", "[[100,10],[101,10],[101,11],[100,11]]")), nil, "is not closed")
	f("out of range", collection(feature("C1", "city", "", "X", square(179.5, 10, 1))), nil, "outside longitude -180..180")
	f("duplicate", collection(feature("C1", "city", "", "X", square(100, 10, 1)), feature("C1", "city", "", "Y", square(102, 10, 1))), nil, `duplicate code "C1"`)
	f("missing parent", collection(feature("C1", "city", "", "X", square(100, 10, 1)), feature("D1", "district", "C9", "Y", square(100, 10, 1))), nil, `names parent "C9", which does not exist`)
	f("no geometry", collection(feature("C1", "city", "", "X", square(100, 10, 1)), feature("D1", "district", "C1", "Y", "")), nil, "(D1) has no geometry")
	f("unit without a shape", demoCity, []string{"--units", writeFile(t, dir, "units.csv", "code,level,parent,name\nC1,city,,Demo\nD1,district,C1,West\nD2,district,C1,East\nD3,district,C1,North\n")},
		"1 district units have no geometry: D3")
	f("bad level", demoCity, []string{"--levels", "city,ward"}, `has level "district", want one of [city ward]`)
	f("crosswalk to nowhere", demoCity, []string{"--crosswalk-from", "vn-2025", "--crosswalk", writeFile(t, dir, "cw.csv", "level,old,new,kind\ncommune,26740,D9,full\n")},
		"names D9, which is not a unit of demo")
	f("not geojson", `{"type":"Feature"`, nil, "not a GeoJSON FeatureCollection")
}

// An imported hierarchy is served after a restart: areas, point lookups
// and figures of records filed under it.
func TestImportedHierarchyIsServed(t *testing.T) {
	runsBesideOthers(t)
	dir := t.TempDir()
	geoDir := filepath.Join(dir, "geo")
	var out bytes.Buffer
	err := importUnits([]string{"--geo-dir", geoDir, "--name", "demo-2026", "--levels", "city,district", "--valid-from", "2026-07-01",
		"--boundaries", writeFile(t, dir, "demo.geojson", demoCity)}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "3 units, 1 city, 2 district") {
		t.Errorf("summary: got %q", got)
	}
	cfg := testConfig(t)
	cfg.GeoDir = geoDir
	n := startNode(t, cfg)
	var areas struct{ Count int }
	if code := n.get("/api/v1/areas?hierarchy=demo-2026&level=district", adminToken, &areas); code != 200 || areas.Count != 2 {
		t.Errorf("areas: got %d %+v, want 2 districts", code, areas)
	}
	var look struct{ Units []struct{ Code string } }
	if code := n.get("/api/v1/geo/lookup?hierarchy=demo-2026&lat=11&lon=101.5", adminToken, &look); code != 200 || len(look.Units) != 2 || look.Units[1].Code != "D2" {
		t.Errorf("lookup: got %d %+v, want C1 then D2", code, look)
	}
	e := event("x1", "dx", "D1", "received", "online", 0)
	e["hierarchy"] = "demo-2026"
	if code, r := n.ingest(e); code != 202 || r.Accepted != 1 {
		t.Fatalf("ingest: got %d %+v", code, r)
	}
	var s snapshot
	if code := n.get("/api/v1/areas/C1/kpis?hierarchy=demo-2026", adminToken, &s); code != 200 || num(s.KPIs["dossiers_received"]) != 1 {
		t.Errorf("city figures: got %d %v, want 1 received", code, s.KPIs)
	}
}
