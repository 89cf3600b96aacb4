package gis_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/maptile"

	"github.com/openioc/ioc/api"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/gis"
	"github.com/openioc/ioc/api/internal/apitest"
	"github.com/openioc/ioc/geo"
)

// newLiveServer is an API server with every GIS layer, the live ones
// reading apitest's devices and events.
func newLiveServer(t *testing.T) (*api.Server, *apitest.Devices, *apitest.Events) {
	t.Helper()
	reg, h := apitest.Vn2025(t)
	devs := &apitest.Devices{H: h, List: apitest.LiveDevices(t, h)}
	evs := &apitest.Events{H: h, List: apitest.LiveEvents(time.Now())}
	s, err := api.New(api.Config{}, api.Deps{
		Geo: reg, KPIs: &apitest.Figures{Reg: reg, H: h}, Auth: auth.NewVerifier(apitest.Admin, apitest.Secret),
		Devices: devs, Events: evs,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, devs, evs
}

// ids lists the feature ids of a collection, in order.
func ids(fc apitest.FeatureCollection) []string {
	out := make([]string, len(fc.Features))
	for i, f := range fc.Features {
		out[i] = f.ID
	}
	return out
}

func wantIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func TestPointLayersGeoJSON(t *testing.T) {
	s, _, _ := newLiveServer(t)
	hcmc, ward := apitest.Viewer(t, "79"), apitest.Viewer(t, apitest.SaiGon)
	fc := func(target, token string) apitest.FeatureCollection {
		t.Helper()
		return apitest.DecodeFC(t, apitest.Get(t, s, target, token))
	}
	const cams = "/api/v1/layers/cameras.geojson"
	wantIDs(t, "admin, cameras", ids(fc(cams, apitest.Admin)), "cam-hanoi-1", "cam-hcmc-1", "cam-hcmc-2", "cam-hcmc-3")
	wantIDs(t, "province token, cameras", ids(fc(cams, hcmc)), "cam-hcmc-1", "cam-hcmc-2", "cam-hcmc-3")
	wantIDs(t, "ward token, cameras", ids(fc(cams+"?access_token="+url.QueryEscape(ward), "")), "cam-hcmc-1")
	wantIDs(t, "province token, sensors", ids(fc("/api/v1/layers/sensors.geojson", hcmc)), "sensor-hcmc-1")
	wantIDs(t, "admin, online cameras", ids(fc(cams+"?status=online", apitest.Admin)), "cam-hanoi-1", "cam-hcmc-1", "cam-hcmc-3")
	wantIDs(t, "province token, offline cameras", ids(fc(cams+"?status=offline", hcmc)), "cam-hcmc-2")
	wantIDs(t, "admin, cameras in a bbox", ids(fc(cams+"?bbox=106.6,10.7,106.8,10.9", apitest.Admin)), "cam-hcmc-1", "cam-hcmc-2")
	wantIDs(t, "admin, cameras under 01", ids(fc(cams+"?parent=01", apitest.Admin)), "cam-hanoi-1")
	wantIDs(t, "province token, cameras under 01", ids(fc(cams+"?parent=01", hcmc)), [](string){}...)
	wantIDs(t, "ward token, cameras under 79", ids(fc(cams+"?parent=79", ward)), "cam-hcmc-1")

	got := fc(cams+"?bbox=106.69,10.77,106.71,10.79", hcmc)
	if len(got.Features) != 1 {
		t.Fatalf("one camera: got %d", len(got.Features))
	}
	f := got.Features[0]
	var g struct {
		Type        string
		Coordinates []float64
	}
	if err := json.Unmarshal(f.Geometry, &g); err != nil || g.Type != "Point" || !slices.Equal(g.Coordinates, []float64{106.7, 10.78}) {
		t.Errorf("camera geometry: got %s, want a Point at 106.7, 10.78", f.Geometry)
	}
	want := map[string]any{
		"id": "cam-hcmc-1", "kind": "camera", "name": "Device cam-hcmc-1", "area_code": apitest.SaiGon, "area_name": "Sài Gòn",
		"status": "online", "last_seen": "2026-11-22T09:00:00Z",
	}
	if !mapsEqual(f.Properties, want) {
		t.Errorf("camera properties: got %v, want %v", f.Properties, want)
	}

	sensor := fc("/api/v1/layers/sensors.geojson?parent=79", apitest.Admin).Features[0].Properties
	for k, v := range map[string]any{
		"pm25": 42.5, "pm25_observed_at": "2026-11-22T08:59:00Z", "water_level": 1.25, "water_level_observed_at": "2026-11-22T08:58:00Z",
		"status": "online", "kind": "sensor",
	} {
		if sensor[k] != v {
			t.Errorf("sensor property %s: got %v, want %v", k, sensor[k], v)
		}
	}
	offline := fc("/api/v1/layers/sensors.geojson?parent=01", apitest.Admin).Features[0].Properties
	if v, ok := offline["last_seen"]; !ok || v != nil {
		t.Errorf("a device that never reported: got last_seen %v (present %v), want null", v, ok)
	}

	f2 := func(target string, code int, mention string) {
		t.Helper()
		apitest.WantError(t, apitest.Get(t, s, target, apitest.Admin), code, mention)
	}
	f2(cams+"?status=broken", 400, "online or offline")
	f2(cams+"?window=7d", 400, "window")
	f2(cams+"?cell=0.1", 400, "cell")
	f2(cams+"?kpi=online_rate", 400, "kpi")
	f2(cams+"?bbox=1,2", 400, "bbox")
	f2(cams+"?parent=99999", 404, "99999")
	f2(cams+"?zoom=40", 400, "zoom")
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestDensityGeoJSON(t *testing.T) {
	s, _, evs := newLiveServer(t)
	const density = "/api/v1/layers/camera-events.density.geojson"
	fc := apitest.DecodeFC(t, apitest.Get(t, s, density+"?bbox=106.6,10.7,106.8,10.9", apitest.Admin))
	wantIDs(t, "cells around central HCMC", ids(fc), "106.7,10.78", "106.71,10.78")
	for i, want := range []struct{ events, critical float64 }{{3, 1}, {2, 0}} {
		p := fc.Features[i].Properties
		if p["events"] != want.events || p["critical"] != want.critical || p["cell_size"] != 0.01 || p["window"] != "today" {
			t.Errorf("cell %s: got %v, want %v events, %v critical, cell_size 0.01, window today", fc.Features[i].ID, p, want.events, want.critical)
		}
	}
	var g struct {
		Type        string
		Coordinates [][][2]float64
	}
	if err := json.Unmarshal(fc.Features[0].Geometry, &g); err != nil || g.Type != "Polygon" ||
		!slices.Equal(g.Coordinates[0], [][2]float64{{106.7, 10.78}, {106.71, 10.78}, {106.71, 10.79}, {106.7, 10.79}, {106.7, 10.78}}) {
		t.Errorf("cell geometry: got %s, want the square 106.7–106.71, 10.78–10.79", fc.Features[0].Geometry)
	}
	call := evs.LastCall(t)
	now := time.Now().In(apitest.Location)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, apitest.Location)
	if call.Areas != nil || call.Size != 0.01 || !call.From.Equal(midnight) {
		t.Errorf("Density called with areas %v, size %v, from %v; want all areas, 0.01 and local midnight %v", call.Areas, call.Size, call.From, midnight)
	}
	if b := call.Bound; math.Abs(b.Min[0]-106.6) > 1e-9 || math.Abs(b.Min[1]-10.7) > 1e-9 || math.Abs(b.Max[0]-106.81) > 1e-9 || math.Abs(b.Max[1]-10.91) > 1e-9 {
		t.Errorf("Density bound: got %v, want the bbox widened to whole cells (106.6,10.7 to 106.81,10.91)", b)
	}

	month := apitest.DecodeFC(t, apitest.Get(t, s, density+"?bbox=106.6,10.7,106.8,10.9&window=30d&cell=0.1", apitest.Admin))
	if len(month.Features) != 1 || month.Features[0].Properties["events"] != 6.0 || month.Features[0].Properties["cell_size"] != 0.1 || month.Features[0].Properties["window"] != "30d" {
		t.Errorf("30 days in 0.1° cells: got %v, want one cell of 6 events", month.Features)
	}

	// A ward's token needs no bbox: its ward is small, and it sees its events only.
	ward := apitest.DecodeFC(t, apitest.Get(t, s, density, apitest.Viewer(t, apitest.SaiGon)))
	if wantIDs(t, "ward token, cells", ids(ward), "106.7,10.78"); len(ward.Features) == 1 && ward.Features[0].Properties["events"] != 3.0 {
		t.Errorf("ward token: got %v events, want 3", ward.Features[0].Properties["events"])
	}
	if call := evs.LastCall(t); !slices.Equal(call.Areas, []string{apitest.SaiGon}) {
		t.Errorf("ward token: Density read areas %v, want [%s]", call.Areas, apitest.SaiGon)
	}
	if got := apitest.DecodeFC(t, apitest.Get(t, s, density+"?cell=0.05", apitest.Viewer(t, "79"))); len(got.Features) != 1 || got.Features[0].Properties["events"] != 5.0 {
		t.Errorf("province token, whole province at 0.05°: got %v, want one cell of 5 events", got.Features)
	}

	f := func(target, token string, code int, mention string) {
		t.Helper()
		apitest.WantError(t, apitest.Get(t, s, target, token), code, mention)
	}
	f(density+"?bbox=106.6,10.7,106.8,10.9&cell=0.0005", apitest.Admin, 400, "from 0.001 to 1")
	f(density+"?bbox=106.6,10.7,106.8,10.9&cell=2", apitest.Admin, 400, "from 0.001 to 1")
	f(density+"?bbox=106.6,10.7,106.8,10.9&cell=wide", apitest.Admin, 400, "cell")
	f(density+"?cell=0.01", apitest.Admin, 400, "pass a bbox")
	f(density+"?bbox=100,5,110,15&cell=0.001", apitest.Admin, 400, "250000")
	f(density+"?bbox=106.6,10.7,106.8,10.9&window=1y", apitest.Admin, 400, "window")
	f(density+"?bbox=106.6,10.7,106.8,10.9&status=online", apitest.Admin, 400, "status")
	f("/api/v1/layers/vn-2025.commune.density.geojson", apitest.Admin, 404, "vn-2025.commune.density")
}

func TestLiveLayersUnavailable(t *testing.T) {
	s, devs, evs := newLiveServer(t)
	devs.Fail = errors.New("clickhouse: connection refused")
	evs.Fail = devs.Fail
	for _, target := range []string{
		"/api/v1/layers/cameras.geojson", "/api/v1/layers/camera-events.density.geojson?bbox=106.6,10.7,106.8,10.9",
		"/api/v1/layers", apitest.TilePath("sensors", apitest.HCMCTile), "/ogc/collections/cameras/items",
	} {
		r := apitest.Get(t, s, target, apitest.Admin)
		apitest.WantError(t, r, 503, "retry")
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", target)
		}
	}

	// Without devices or events the layers are absent and say why.
	plain, _ := newGISServer(t)
	apitest.WantError(t, apitest.Get(t, plain, "/api/v1/layers/cameras.geojson", apitest.Admin), 404, "device registry")
	apitest.WantError(t, apitest.Get(t, plain, "/tiles/camera-events.density/10/815/481.mvt", apitest.Admin), 404, "camera events")
	apitest.WantError(t, apitest.Get(t, plain, "/ogc/collections/sensors/items", apitest.Admin), 404, "device registry")
}

func TestLiveTiles(t *testing.T) {
	s, _, evs := newLiveServer(t)
	r := apitest.Get(t, s, apitest.TilePath("cameras", apitest.HCMCTile), apitest.Admin, "Accept-Encoding", "gzip")
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-cache") {
		t.Errorf("camera tile Cache-Control: got %q, want no-cache", cc)
	}
	l := decodeTile(t, r)
	got := map[string]any{}
	for _, f := range l.Features {
		id, _ := f.Properties["id"].(string)
		got[id] = f.Properties["status"]
		if _, ok := f.Geometry.(orb.Point); !ok {
			t.Errorf("camera %s: got a %s, want a point", id, f.Geometry.GeoJSONType())
		}
	}
	if l.Name != "cameras" || len(got) != 2 || got["cam-hcmc-1"] != "online" || got["cam-hcmc-2"] != "offline" {
		t.Errorf("camera tile over central HCMC: got layer %q with %v, want cam-hcmc-1 online and cam-hcmc-2 offline", l.Name, got)
	}
	ward := decodeTile(t, apitest.Get(t, s, apitest.TilePath("cameras", apitest.HCMCTile)+"?status=online", apitest.Viewer(t, apitest.SaiGon)))
	if len(ward.Features) != 1 || ward.Features[0].Properties["id"] != "cam-hcmc-1" {
		t.Errorf("ward token, online cameras: got %d features, want cam-hcmc-1 only", len(ward.Features))
	}
	if r := apitest.Get(t, s, apitest.TilePath("cameras", apitest.HCMCTile), apitest.Viewer(t, "01")); r.Code != http.StatusNoContent {
		t.Errorf("Hanoi token over HCMC: got %d, want 204", r.Code)
	}
	sensors := decodeTile(t, apitest.Get(t, s, apitest.TilePath("sensors", apitest.HCMCTile), apitest.Admin))
	if len(sensors.Features) != 1 || sensors.Features[0].Properties["pm25"] != 42.5 || sensors.Features[0].Properties["water_level"] != 1.25 {
		t.Errorf("sensor tile: got %v, want sensor-hcmc-1 with its readings", sensors.Features)
	}

	dl := decodeTile(t, apitest.Get(t, s, apitest.TilePath("camera-events.density", apitest.HCMCTile), apitest.Admin))
	size := 360.0 / 1024 / 32
	total := 0.0
	for _, f := range dl.Features {
		if f.Properties["cell_size"] != size || f.Properties["window"] != "today" {
			t.Errorf("density cell: got %v, want cell_size %v (tile width / 32) and window today", f.Properties, size)
		}
		if _, ok := f.Geometry.(orb.Polygon); !ok {
			t.Errorf("density cell: got a %s, want a polygon", f.Geometry.GeoJSONType())
		}
		total += f.Properties["events"].(float64)
	}
	if dl.Name != "camera-events.density" || total != 5 {
		t.Errorf("density tile over central HCMC: got layer %q with %v events, want the 5 of today", dl.Name, total)
	}
	if call := evs.LastCall(t); call.Size != size || !call.Bound.Contains(geo.TileBound(apitest.HCMCTile).Min) || !call.Bound.Contains(geo.TileBound(apitest.HCMCTile).Max) {
		t.Errorf("density tile read %v in cells of %v, want the tile's bound in cells of %v", call.Bound, call.Size, size)
	}
	if r := apitest.Get(t, s, apitest.TilePath("camera-events.density", maptile.At(orb.Point{-150, 0}, 10)), apitest.Admin); r.Code != http.StatusNoContent {
		t.Errorf("ocean density tile: got %d, want 204", r.Code)
	}
	apitest.WantError(t, apitest.Get(t, s, apitest.TilePath("camera-events.density", apitest.HCMCTile)+"?cell=0.01", apitest.Admin), 400, "unknown query parameter cell")
	apitest.WantError(t, apitest.Get(t, s, apitest.TilePath("cameras", apitest.HCMCTile)+"?status=maybe", apitest.Admin), 400, "status")

	var tj gis.TileJSONBody
	r = apitest.Get(t, s, "/tiles/cameras.json?status=online&access_token="+apitest.Admin, "")
	if err := json.Unmarshal(r.Body, &tj); err != nil || r.Code != 200 || len(tj.Tiles) != 1 ||
		tj.Tiles[0] != "http://example.com/tiles/cameras/{z}/{x}/{y}.mvt?status=online" || // no token without IOC_PUBLIC_URL
		tj.VectorLayers[0].ID != "cameras" || tj.VectorLayers[0].Fields["status"] != "String" {
		t.Errorf("camera TileJSON: got %d %s, %v", r.Code, r.Body, err)
	}
	r = apitest.Get(t, s, "/tiles/camera-events.density.json?window=7d", apitest.Viewer(t, "79"))
	if err := json.Unmarshal(r.Body, &tj); err != nil || r.Code != 200 || tj.Tiles[0] != "http://example.com/tiles/camera-events.density/{z}/{x}/{y}.mvt?window=7d" ||
		tj.VectorLayers[0].Fields["events"] != "Number" || !(orb.Bound{Min: orb.Point{tj.Bounds[0], tj.Bounds[1]}, Max: orb.Point{tj.Bounds[2], tj.Bounds[3]}}).Contains(orb.Point{106.7, 10.78}) {
		t.Errorf("density TileJSON: got %d %s, %v", r.Code, r.Body, err)
	}
}

func TestLiveCatalogAndOGC(t *testing.T) {
	s, _, _ := newLiveServer(t)
	catalog := func(token string) map[string]gis.LayerInfo {
		t.Helper()
		r := apitest.Get(t, s, "/api/v1/layers", token)
		var cat gis.LayerCatalog
		if err := json.Unmarshal(r.Body, &cat); err != nil || r.Code != 200 {
			t.Fatalf("catalog: got %d %s", r.Code, r.Body)
		}
		out := map[string]gis.LayerInfo{}
		for _, l := range cat.Layers {
			out[l.ID] = l
		}
		return out
	}
	admin, ward := catalog(apitest.Admin), catalog(apitest.Viewer(t, apitest.SaiGon))
	for id, want := range map[string]struct {
		kind        string
		admin, ward int
	}{"cameras": {"points", 4, 1}, "sensors": {"points", 2, 1}} {
		a, w := admin[id], ward[id]
		if a.Kind != want.kind || a.Features == nil || *a.Features != want.admin || w.Features == nil || *w.Features != want.ward {
			t.Errorf("catalog %s: got kind %q, %v and %v features, want %s with %d (admin) and %d (ward)", id, a.Kind, a.Features, w.Features, want.kind, want.admin, want.ward)
		}
		if a.Links.GeoJSON != "http://example.com/api/v1/layers/"+id+".geojson" || a.Links.OGC != "http://example.com/ogc/collections/"+id {
			t.Errorf("catalog %s links: got %+v", id, a.Links)
		}
	}
	d := admin["camera-events.density"]
	if d.Kind != "density" || d.Features != nil || len(d.Windows) != 4 || d.CellSize == nil || d.CellSize.Default != 0.01 || d.CellSize.Max != 1 {
		t.Errorf("catalog density: got %+v, want kind density, no feature count, the windows and cell sizes", d)
	}
	if wb := ward["cameras"].Bounds; !(orb.Bound{Min: orb.Point{wb[0], wb[1]}, Max: orb.Point{wb[2], wb[3]}}).Contains(orb.Point{106.7, 10.78}) || wb[2]-wb[0] > 0.1 {
		t.Errorf("ward token, camera bounds: got %v, want the ward's", wb)
	}
	if admin["vn-2025.commune"].Features == nil || *admin["vn-2025.commune"].Features != 3321 {
		t.Errorf("the boundary layers are still listed: got %+v", admin["vn-2025.commune"])
	}

	var cols struct{ Collections []gis.OGCCollectionBody }
	if r := apitest.Get(t, s, "/ogc/collections", apitest.Admin); json.Unmarshal(r.Body, &cols) != nil || r.Code != 200 {
		t.Fatalf("collections: got %d %s", r.Code, r.Body)
	}
	found := map[string]bool{}
	for _, c := range cols.Collections {
		found[c.ID] = true
		if c.Extent.Spatial.CRS != gis.CRS84 || len(c.Extent.Spatial.BBox) != 1 || c.Links[1].Href != "http://example.com/ogc/collections/"+c.ID+"/items" {
			t.Errorf("collection %s: got %+v", c.ID, c)
		}
	}
	if len(found) != 9 || !found["cameras"] || !found["sensors"] || !found["camera-events.density"] {
		t.Errorf("collections: got %v, want the six boundary ones and cameras, sensors, camera-events.density", found)
	}

	page := apitest.DecodeFC(t, apitest.Get(t, s, "/ogc/collections/cameras/items?limit=2&offset=1&access_token="+apitest.Admin, ""))
	wantIDs(t, "cameras, second page", ids(page), "cam-hcmc-1", "cam-hcmc-2")
	if *page.NumberMatched != 4 || *page.NumberReturned != 2 {
		t.Errorf("cameras page: matched %d, returned %d; want 4, 2", *page.NumberMatched, *page.NumberReturned)
	}
	links := map[string]string{}
	for _, l := range page.Links {
		links[l.Rel] = l.Href
	}
	if want := "http://example.com/ogc/collections/cameras/items?limit=1000&offset=3"; links["next"] != want {
		t.Errorf("next link: got %q, want %q", links["next"], want)
	}
	if want := "http://example.com/ogc/collections/cameras/items?limit=2&offset=0"; links["prev"] != want {
		t.Errorf("prev link: got %q, want %q", links["prev"], want)
	}
	cells := apitest.DecodeFC(t, apitest.Get(t, s, "/ogc/collections/camera-events.density/items?bbox=106.6,10.7,0,106.8,10.9,100&limit=1&window=7d", apitest.Admin))
	if *cells.NumberMatched != 2 || len(cells.Features) != 1 || cells.Features[0].ID != "106.7,10.78" {
		t.Errorf("density items: got matched %d, %v; want 2 cells, the first 106.7,10.78", *cells.NumberMatched, ids(cells))
	}
	for _, l := range cells.Links {
		if l.Rel == "next" && !strings.Contains(l.Href, "window=7d") {
			t.Errorf("density next link drops the window: %s", l.Href)
		}
	}

	var feat struct {
		Type, ID   string
		Geometry   struct{ Type string }
		Properties map[string]any
		Links      []gis.OGCLink
	}
	r := apitest.Get(t, s, "/ogc/collections/sensors/items/sensor-hcmc-1", apitest.Viewer(t, "79"))
	if err := json.Unmarshal(r.Body, &feat); err != nil || r.Code != 200 || feat.Type != "Feature" || feat.ID != "sensor-hcmc-1" ||
		feat.Geometry.Type != "Point" || feat.Properties["pm25"] != 42.5 || len(feat.Links) != 2 {
		t.Errorf("one sensor: got %d %s", r.Code, r.Body)
	}
	f := func(target, token string, code int, mention string) {
		t.Helper()
		apitest.WantError(t, apitest.Get(t, s, target, token), code, mention)
	}
	f("/ogc/collections/cameras/items/cam-hanoi-1", apitest.Viewer(t, "79"), 404, "cam-hanoi-1")
	f("/ogc/collections/cameras/items/sensor-hcmc-1", apitest.Admin, 404, "sensor-hcmc-1")
	f("/ogc/collections/cameras/items/nope", apitest.Admin, 404, "nope")
	f("/ogc/collections/camera-events.density/items/106.7,10.78", apitest.Admin, 404, "/items")
	f("/ogc/collections/camera-events.density/items?cell=0.01", apitest.Admin, 400, "bbox")
	f("/ogc/collections/cameras/items?limit=0", apitest.Admin, 400, "limit")
	f("/ogc/collections/cameras/items?f=html", apitest.Admin, 400, "f")
}

// TestGDALReadsCameras opens the cameras collection with GDAL's OAPIF
// driver, as desktop GIS would.
func TestGDALReadsCameras(t *testing.T) {
	needGDAL(t)
	s, _, _ := newLiveServer(t)
	src := "OAPIF:" + apitest.Serve(t, s) + "/ogc?access_token=" + apitest.Admin
	summary := gdal(t, ogrinfo, "-ro", "-al", "-so", src, "cameras")
	if !strings.Contains(summary, "Layer name: cameras") || !strings.Contains(summary, "Feature Count: 4") || !strings.Contains(summary, "Point") {
		t.Errorf("ogrinfo summary of cameras: want a Point layer with Feature Count: 4:\n%.2000s", summary)
	}
	full := gdal(t, ogrinfo, "-ro", "-al", src, "cameras")
	if !strings.Contains(full, "POINT (106.7 10.78)") || !strings.Contains(full, "status (String) = offline") {
		t.Errorf("ogrinfo features of cameras: want cam-hcmc-1's point and statuses:\n%.2000s", full)
	}
}
