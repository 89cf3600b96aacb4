package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/maptile"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/feed"
	"github.com/openioc/ioc/geo"
)

// fakeDevices serves a fixed set of devices, filtered as the registry
// filters them.
type fakeDevices struct {
	h     *geo.Hierarchy
	views []device.View
	fail  error
}

func (f *fakeDevices) Device(id string) (device.Device, bool) {
	for _, v := range f.views {
		if v.ID == id {
			return v.Device, true
		}
	}
	return device.Device{}, false
}

func (f *fakeDevices) Views(_ context.Context, areas []string, kind string) ([]device.View, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	var out []device.View
	for _, v := range f.views {
		in := areas == nil
		for _, a := range areas {
			in = in || f.h.Contains(a, v.AreaCode)
		}
		if in && (kind == "" || v.Kind == kind) {
			out = append(out, v)
		}
	}
	return out, nil
}

func (f *fakeDevices) Put(context.Context, device.Device) (device.Device, bool, error) {
	return device.Device{}, false, errors.New("not used by the GIS routes")
}

func (f *fakeDevices) Snapshot(context.Context, string) (device.Map, error) {
	return device.Map{}, errors.New("not used by the GIS routes")
}

type fakeEvent struct {
	lon, lat float64
	area     string
	critical bool
	at       time.Time
}

type densityCall struct {
	areas []string
	bound orb.Bound
	size  float64
	from  time.Time
}

// fakeEvents counts its events as the feed's query does.
type fakeEvents struct {
	h      *geo.Hierarchy
	events []fakeEvent
	fail   error

	mu    sync.Mutex
	calls []densityCall
}

func (f *fakeEvents) Snapshot(context.Context, string) (feed.Message, error) {
	return feed.Message{}, errors.New("not used by the GIS routes")
}

func (f *fakeEvents) Density(_ context.Context, areas []string, bound orb.Bound, size float64, from time.Time) ([]feed.Cell, error) {
	f.mu.Lock()
	f.calls = append(f.calls, densityCall{areas, bound, size, from})
	f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	type key struct{ x, y int64 }
	cells := map[key]*feed.Cell{}
	var order []key
	for _, e := range f.events {
		in := areas == nil
		for _, a := range areas {
			in = in || f.h.Contains(a, e.area)
		}
		if !in || e.at.Before(from) || e.lon < bound.Min[0] || e.lon >= bound.Max[0] || e.lat < bound.Min[1] || e.lat >= bound.Max[1] {
			continue
		}
		k := key{int64(math.Floor(e.lon / size)), int64(math.Floor(e.lat / size))}
		c := cells[k]
		if c == nil {
			c = &feed.Cell{Lon: float64(k.x) * size, Lat: float64(k.y) * size, Size: size}
			cells[k] = c
			order = append(order, k)
		}
		c.Events++
		if e.critical {
			c.Critical++
		}
	}
	out := make([]feed.Cell, 0, len(order))
	for _, k := range order {
		out = append(out, *cells[k])
	}
	return out, nil
}

func (f *fakeEvents) lastCall(t *testing.T) densityCall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("Density was not called")
	}
	return f.calls[len(f.calls)-1]
}

// The devices: three cameras and a sensor in Ho Chi Minh City (79), a
// camera and a sensor in Hanoi (01). saiGon is the ward of the first
// camera and of the HCMC sensor.
const saiGon = "26740"

var seen = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func liveDevices(t *testing.T, h *geo.Hierarchy) []device.View {
	t.Helper()
	at := func(id, kind string, lon, lat float64, province, status string, latest map[string]device.Latest) device.View {
		units := h.Locate(orb.Point{lon, lat})
		if len(units) != 2 || units[0].Code != province {
			t.Fatalf("device %s at %v, %v: located in %v, want a commune of %s", id, lon, lat, units, province)
		}
		v := device.View{Device: device.Device{ID: id, Kind: kind, Name: "Device " + id, Lat: lat, Lon: lon, Hierarchy: h.Name(), AreaCode: units[1].Code},
			Status: status, Latest: latest}
		if status == "online" {
			v.LastSeen = &seen
		}
		return v
	}
	return []device.View{
		at("cam-hcmc-1", device.Camera, 106.7, 10.78, "79", "online", nil),
		at("cam-hcmc-2", device.Camera, 106.66, 10.76, "79", "offline", nil),
		at("cam-hcmc-3", device.Camera, 106.65, 10.98, "79", "online", nil),
		at("cam-hanoi-1", device.Camera, 105.85, 21.03, "01", "online", nil),
		at("sensor-hcmc-1", device.Sensor, 106.701, 10.781, "79", "online", map[string]device.Latest{
			"pm25":        {Value: 42.5, ObservedAt: seen.Add(-time.Minute)},
			"water_level": {Value: 1.25, ObservedAt: seen.Add(-2 * time.Minute)},
		}),
		at("sensor-hanoi-1", device.Sensor, 105.84, 21.02, "01", "offline", nil),
	}
}

// liveEvents: today, three events (one critical) in Sai Gon ward and two in
// An Khanh, a cell east; one in Hanoi; and one eight days old in Sai Gon.
func liveEvents(now time.Time) []fakeEvent {
	return []fakeEvent{
		{106.7005, 10.7805, saiGon, true, now}, {106.7006, 10.7806, saiGon, false, now}, {106.7007, 10.7807, saiGon, false, now},
		{106.7105, 10.7805, "27094", false, now}, {106.7106, 10.7806, "27094", false, now},
		{105.85, 21.03, "00070", false, now},
		{106.7005, 10.7805, saiGon, false, now.Add(-8 * 24 * time.Hour)},
	}
}

func newLiveServer(t *testing.T) (*Server, *fakeDevices, *fakeEvents) {
	t.Helper()
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	devs := &fakeDevices{h: h, views: liveDevices(t, h)}
	evs := &fakeEvents{h: h, events: liveEvents(time.Now())}
	s, err := New(Config{}, Deps{
		Geo: reg, KPIs: &fakeFigures{reg: reg, h: h}, Auth: auth.NewVerifier(gisAdmin, gisSecret),
		Devices: devs, Events: evs,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, devs, evs
}

// ids lists the feature ids of a collection, in order.
func ids(fc featureCollection) []string {
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
	hcmc, ward := viewer(t, "79"), viewer(t, saiGon)
	fc := func(target, token string) featureCollection {
		t.Helper()
		return decodeFC(t, get(t, s, target, token))
	}
	const cams = "/api/v1/layers/cameras.geojson"
	wantIDs(t, "admin, cameras", ids(fc(cams, gisAdmin)), "cam-hanoi-1", "cam-hcmc-1", "cam-hcmc-2", "cam-hcmc-3")
	wantIDs(t, "province token, cameras", ids(fc(cams, hcmc)), "cam-hcmc-1", "cam-hcmc-2", "cam-hcmc-3")
	wantIDs(t, "ward token, cameras", ids(fc(cams+"?access_token="+url.QueryEscape(ward), "")), "cam-hcmc-1")
	wantIDs(t, "province token, sensors", ids(fc("/api/v1/layers/sensors.geojson", hcmc)), "sensor-hcmc-1")
	wantIDs(t, "admin, online cameras", ids(fc(cams+"?status=online", gisAdmin)), "cam-hanoi-1", "cam-hcmc-1", "cam-hcmc-3")
	wantIDs(t, "province token, offline cameras", ids(fc(cams+"?status=offline", hcmc)), "cam-hcmc-2")
	wantIDs(t, "admin, cameras in a bbox", ids(fc(cams+"?bbox=106.6,10.7,106.8,10.9", gisAdmin)), "cam-hcmc-1", "cam-hcmc-2")
	wantIDs(t, "admin, cameras under 01", ids(fc(cams+"?parent=01", gisAdmin)), "cam-hanoi-1")
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
		"id": "cam-hcmc-1", "kind": "camera", "name": "Device cam-hcmc-1", "area_code": saiGon, "area_name": "Sài Gòn",
		"status": "online", "last_seen": "2026-11-22T09:00:00Z",
	}
	if !mapsEqual(f.Properties, want) {
		t.Errorf("camera properties: got %v, want %v", f.Properties, want)
	}

	sensor := fc("/api/v1/layers/sensors.geojson?parent=79", gisAdmin).Features[0].Properties
	for k, v := range map[string]any{
		"pm25": 42.5, "pm25_observed_at": "2026-11-22T08:59:00Z", "water_level": 1.25, "water_level_observed_at": "2026-11-22T08:58:00Z",
		"status": "online", "kind": "sensor",
	} {
		if sensor[k] != v {
			t.Errorf("sensor property %s: got %v, want %v", k, sensor[k], v)
		}
	}
	offline := fc("/api/v1/layers/sensors.geojson?parent=01", gisAdmin).Features[0].Properties
	if v, ok := offline["last_seen"]; !ok || v != nil {
		t.Errorf("a device that never reported: got last_seen %v (present %v), want null", v, ok)
	}

	f2 := func(target string, code int, mention string) {
		t.Helper()
		wantError(t, get(t, s, target, gisAdmin), code, mention)
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
	fc := decodeFC(t, get(t, s, density+"?bbox=106.6,10.7,106.8,10.9", gisAdmin))
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
	call := evs.lastCall(t)
	now := time.Now().In(gisLocation)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, gisLocation)
	if call.areas != nil || call.size != 0.01 || !call.from.Equal(midnight) {
		t.Errorf("Density called with areas %v, size %v, from %v; want all areas, 0.01 and local midnight %v", call.areas, call.size, call.from, midnight)
	}
	if b := call.bound; math.Abs(b.Min[0]-106.6) > 1e-9 || math.Abs(b.Min[1]-10.7) > 1e-9 || math.Abs(b.Max[0]-106.81) > 1e-9 || math.Abs(b.Max[1]-10.91) > 1e-9 {
		t.Errorf("Density bound: got %v, want the bbox widened to whole cells (106.6,10.7 to 106.81,10.91)", b)
	}

	month := decodeFC(t, get(t, s, density+"?bbox=106.6,10.7,106.8,10.9&window=30d&cell=0.1", gisAdmin))
	if len(month.Features) != 1 || month.Features[0].Properties["events"] != 6.0 || month.Features[0].Properties["cell_size"] != 0.1 || month.Features[0].Properties["window"] != "30d" {
		t.Errorf("30 days in 0.1° cells: got %v, want one cell of 6 events", month.Features)
	}

	// A ward's token needs no bbox: its ward is small, and it sees its events only.
	ward := decodeFC(t, get(t, s, density, viewer(t, saiGon)))
	if wantIDs(t, "ward token, cells", ids(ward), "106.7,10.78"); len(ward.Features) == 1 && ward.Features[0].Properties["events"] != 3.0 {
		t.Errorf("ward token: got %v events, want 3", ward.Features[0].Properties["events"])
	}
	if call := evs.lastCall(t); !slices.Equal(call.areas, []string{saiGon}) {
		t.Errorf("ward token: Density read areas %v, want [%s]", call.areas, saiGon)
	}
	if got := decodeFC(t, get(t, s, density+"?cell=0.05", viewer(t, "79"))); len(got.Features) != 1 || got.Features[0].Properties["events"] != 5.0 {
		t.Errorf("province token, whole province at 0.05°: got %v, want one cell of 5 events", got.Features)
	}

	f := func(target, token string, code int, mention string) {
		t.Helper()
		wantError(t, get(t, s, target, token), code, mention)
	}
	f(density+"?bbox=106.6,10.7,106.8,10.9&cell=0.0005", gisAdmin, 400, "from 0.001 to 1")
	f(density+"?bbox=106.6,10.7,106.8,10.9&cell=2", gisAdmin, 400, "from 0.001 to 1")
	f(density+"?bbox=106.6,10.7,106.8,10.9&cell=wide", gisAdmin, 400, "cell")
	f(density+"?cell=0.01", gisAdmin, 400, "pass a bbox")
	f(density+"?bbox=100,5,110,15&cell=0.001", gisAdmin, 400, "250000")
	f(density+"?bbox=106.6,10.7,106.8,10.9&window=1y", gisAdmin, 400, "window")
	f(density+"?bbox=106.6,10.7,106.8,10.9&status=online", gisAdmin, 400, "status")
	f("/api/v1/layers/vn-2025.commune.density.geojson", gisAdmin, 404, "vn-2025.commune.density")
}

func TestLiveLayersUnavailable(t *testing.T) {
	s, devs, evs := newLiveServer(t)
	devs.fail = errors.New("clickhouse: connection refused")
	evs.fail = devs.fail
	for _, target := range []string{
		"/api/v1/layers/cameras.geojson", "/api/v1/layers/camera-events.density.geojson?bbox=106.6,10.7,106.8,10.9",
		"/api/v1/layers", tilePath("sensors", hcmcTile), "/ogc/collections/cameras/items",
	} {
		r := get(t, s, target, gisAdmin)
		wantError(t, r, 503, "retry")
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", target)
		}
	}

	// Without devices or events the layers are absent and say why.
	plain, _ := newGISServer(t)
	wantError(t, get(t, plain, "/api/v1/layers/cameras.geojson", gisAdmin), 404, "device registry")
	wantError(t, get(t, plain, "/tiles/camera-events.density/10/815/481.mvt", gisAdmin), 404, "camera events")
	wantError(t, get(t, plain, "/ogc/collections/sensors/items", gisAdmin), 404, "device registry")
}

func TestLiveTiles(t *testing.T) {
	s, _, evs := newLiveServer(t)
	r := get(t, s, tilePath("cameras", hcmcTile), gisAdmin, "Accept-Encoding", "gzip")
	if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-cache") {
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
	ward := decodeTile(t, get(t, s, tilePath("cameras", hcmcTile)+"?status=online", viewer(t, saiGon)))
	if len(ward.Features) != 1 || ward.Features[0].Properties["id"] != "cam-hcmc-1" {
		t.Errorf("ward token, online cameras: got %d features, want cam-hcmc-1 only", len(ward.Features))
	}
	if r := get(t, s, tilePath("cameras", hcmcTile), viewer(t, "01")); r.code != http.StatusNoContent {
		t.Errorf("Hanoi token over HCMC: got %d, want 204", r.code)
	}
	sensors := decodeTile(t, get(t, s, tilePath("sensors", hcmcTile), gisAdmin))
	if len(sensors.Features) != 1 || sensors.Features[0].Properties["pm25"] != 42.5 || sensors.Features[0].Properties["water_level"] != 1.25 {
		t.Errorf("sensor tile: got %v, want sensor-hcmc-1 with its readings", sensors.Features)
	}

	dl := decodeTile(t, get(t, s, tilePath("camera-events.density", hcmcTile), gisAdmin))
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
	if call := evs.lastCall(t); call.size != size || !call.bound.Contains(geo.TileBound(hcmcTile).Min) || !call.bound.Contains(geo.TileBound(hcmcTile).Max) {
		t.Errorf("density tile read %v in cells of %v, want the tile's bound in cells of %v", call.bound, call.size, size)
	}
	if r := get(t, s, tilePath("camera-events.density", maptile.At(orb.Point{-150, 0}, 10)), gisAdmin); r.code != http.StatusNoContent {
		t.Errorf("ocean density tile: got %d, want 204", r.code)
	}
	wantError(t, get(t, s, tilePath("camera-events.density", hcmcTile)+"?cell=0.01", gisAdmin), 400, "unknown query parameter cell")
	wantError(t, get(t, s, tilePath("cameras", hcmcTile)+"?status=maybe", gisAdmin), 400, "status")

	var tj tileJSONBody
	r = get(t, s, "/tiles/cameras.json?status=online&access_token="+gisAdmin, "")
	if err := json.Unmarshal(r.body, &tj); err != nil || r.code != 200 || len(tj.Tiles) != 1 ||
		tj.Tiles[0] != "http://example.com/tiles/cameras/{z}/{x}/{y}.mvt?status=online" || // no token without IOC_PUBLIC_URL
		tj.VectorLayers[0].ID != "cameras" || tj.VectorLayers[0].Fields["status"] != "String" {
		t.Errorf("camera TileJSON: got %d %s, %v", r.code, r.body, err)
	}
	r = get(t, s, "/tiles/camera-events.density.json?window=7d", viewer(t, "79"))
	if err := json.Unmarshal(r.body, &tj); err != nil || r.code != 200 || tj.Tiles[0] != "http://example.com/tiles/camera-events.density/{z}/{x}/{y}.mvt?window=7d" ||
		tj.VectorLayers[0].Fields["events"] != "Number" || !(orb.Bound{Min: orb.Point{tj.Bounds[0], tj.Bounds[1]}, Max: orb.Point{tj.Bounds[2], tj.Bounds[3]}}).Contains(orb.Point{106.7, 10.78}) {
		t.Errorf("density TileJSON: got %d %s, %v", r.code, r.body, err)
	}
}

func TestLiveCatalogAndOGC(t *testing.T) {
	s, _, _ := newLiveServer(t)
	catalog := func(token string) map[string]layerInfo {
		t.Helper()
		r := get(t, s, "/api/v1/layers", token)
		var cat layerCatalog
		if err := json.Unmarshal(r.body, &cat); err != nil || r.code != 200 {
			t.Fatalf("catalog: got %d %s", r.code, r.body)
		}
		out := map[string]layerInfo{}
		for _, l := range cat.Layers {
			out[l.ID] = l
		}
		return out
	}
	admin, ward := catalog(gisAdmin), catalog(viewer(t, saiGon))
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

	var cols struct{ Collections []ogcCollectionBody }
	if r := get(t, s, "/ogc/collections", gisAdmin); json.Unmarshal(r.body, &cols) != nil || r.code != 200 {
		t.Fatalf("collections: got %d %s", r.code, r.body)
	}
	found := map[string]bool{}
	for _, c := range cols.Collections {
		found[c.ID] = true
		if c.Extent.Spatial.CRS != crs84 || len(c.Extent.Spatial.BBox) != 1 || c.Links[1].Href != "http://example.com/ogc/collections/"+c.ID+"/items" {
			t.Errorf("collection %s: got %+v", c.ID, c)
		}
	}
	if len(found) != 9 || !found["cameras"] || !found["sensors"] || !found["camera-events.density"] {
		t.Errorf("collections: got %v, want the six boundary ones and cameras, sensors, camera-events.density", found)
	}

	page := decodeFC(t, get(t, s, "/ogc/collections/cameras/items?limit=2&offset=1&access_token="+gisAdmin, ""))
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
	cells := decodeFC(t, get(t, s, "/ogc/collections/camera-events.density/items?bbox=106.6,10.7,0,106.8,10.9,100&limit=1&window=7d", gisAdmin))
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
		Links      []ogcLink
	}
	r := get(t, s, "/ogc/collections/sensors/items/sensor-hcmc-1", viewer(t, "79"))
	if err := json.Unmarshal(r.body, &feat); err != nil || r.code != 200 || feat.Type != "Feature" || feat.ID != "sensor-hcmc-1" ||
		feat.Geometry.Type != "Point" || feat.Properties["pm25"] != 42.5 || len(feat.Links) != 2 {
		t.Errorf("one sensor: got %d %s", r.code, r.body)
	}
	f := func(target, token string, code int, mention string) {
		t.Helper()
		wantError(t, get(t, s, target, token), code, mention)
	}
	f("/ogc/collections/cameras/items/cam-hanoi-1", viewer(t, "79"), 404, "cam-hanoi-1")
	f("/ogc/collections/cameras/items/sensor-hcmc-1", gisAdmin, 404, "sensor-hcmc-1")
	f("/ogc/collections/cameras/items/nope", gisAdmin, 404, "nope")
	f("/ogc/collections/camera-events.density/items/106.7,10.78", gisAdmin, 404, "/items")
	f("/ogc/collections/camera-events.density/items?cell=0.01", gisAdmin, 400, "bbox")
	f("/ogc/collections/cameras/items?limit=0", gisAdmin, 400, "limit")
	f("/ogc/collections/cameras/items?f=html", gisAdmin, 400, "f")
}

// TestGDALReadsCameras opens the cameras collection with GDAL's OAPIF
// driver, as desktop GIS would.
func TestGDALReadsCameras(t *testing.T) {
	needGDAL(t)
	s, _, _ := newLiveServer(t)
	src := "OAPIF:" + serveGIS(t, s) + "/ogc?access_token=" + gisAdmin
	summary := gdal(t, ogrinfo, "-ro", "-al", "-so", src, "cameras")
	if !strings.Contains(summary, "Layer name: cameras") || !strings.Contains(summary, "Feature Count: 4") || !strings.Contains(summary, "Point") {
		t.Errorf("ogrinfo summary of cameras: want a Point layer with Feature Count: 4:\n%.2000s", summary)
	}
	full := gdal(t, ogrinfo, "-ro", "-al", src, "cameras")
	if !strings.Contains(full, "POINT (106.7 10.78)") || !strings.Contains(full, "status (String) = offline") {
		t.Errorf("ogrinfo features of cameras: want cam-hcmc-1's point and statuses:\n%.2000s", full)
	}
}
