package gis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/maptile"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/gis"
	"github.com/openioc/ioc/api/internal/apitest"
	"github.com/openioc/ioc/geo"
)

const ogrinfo = "/usr/bin/ogrinfo"

// newGISServer is an API server with the GIS layers of the built-in
// geography, its figures those of apitest.Figures.
func newGISServer(t *testing.T) (*api.Server, *apitest.Figures) {
	t.Helper()
	reg, h := apitest.Vn2025(t)
	figs := &apitest.Figures{Reg: reg, H: h}
	s, err := api.New(api.Config{}, api.Deps{
		Geo: reg, KPIs: figs, Auth: auth.NewVerifier(apitest.Admin, apitest.Secret),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, figs
}

// positions counts the coordinate pairs of a GeoJSON MultiPolygon.
func positions(t *testing.T, raw json.RawMessage) int {
	t.Helper()
	var g struct {
		Type        string           `json:"type"`
		Coordinates [][][][2]float64 `json:"coordinates"`
	}
	if err := json.Unmarshal(raw, &g); err != nil || g.Type != "MultiPolygon" {
		t.Fatalf("geometry %.100s: type %q, %v; want a MultiPolygon", raw, g.Type, err)
	}
	n := 0
	for _, p := range g.Coordinates {
		for _, r := range p {
			n += len(r)
		}
	}
	return n
}

func TestLayerCatalog(t *testing.T) {
	s, _ := newGISServer(t)
	f := func(token string, want map[string]int) {
		t.Helper()
		r := apitest.Get(t, s, "/api/v1/layers", token)
		if r.Code != http.StatusOK {
			t.Fatalf("got %d %s, want 200", r.Code, r.Body)
		}
		var cat gis.LayerCatalog
		if err := json.Unmarshal(r.Body, &cat); err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, l := range cat.Layers {
			if l.Features == nil {
				t.Fatalf("layer %s: features is null, want a count", l.ID)
			}
			got[l.ID] = *l.Features
			wantKind := "boundaries"
			if strings.HasSuffix(l.ID, ".kpi") {
				wantKind = "indicators"
			}
			if l.Kind != wantKind || l.ID != l.Hierarchy+"."+l.Level && l.ID != l.Hierarchy+"."+l.Level+".kpi" {
				t.Errorf("layer %s: kind %q, hierarchy %q, level %q; want kind %q and an id of hierarchy.level", l.ID, l.Kind, l.Hierarchy, l.Level, wantKind)
			}
			if l.Links.GeoJSON != "http://example.com/api/v1/layers/"+l.ID+".geojson" ||
				l.Links.TileJSON != "http://example.com/tiles/"+l.ID+".json" || l.Links.OGC != "http://example.com/ogc/collections/"+l.ID {
				t.Errorf("layer %s links: got %+v, want absolute links to its GeoJSON, TileJSON and collection", l.ID, l.Links)
			}
			if l.Bounds[0] >= l.Bounds[2] || l.Bounds[1] >= l.Bounds[3] || l.MaxZoom != gis.TileMaxZoom {
				t.Errorf("layer %s: bounds %v, maxzoom %d; want a box and maxzoom %d", l.ID, l.Bounds, l.MaxZoom, gis.TileMaxZoom)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("layers and feature counts: got %v, want %v", got, want)
		}
	}
	f(apitest.Admin, map[string]int{
		"jp-2021.municipality": 111, "jp-2021.municipality.kpi": 111,
		"vn-2025.commune": 3321, "vn-2025.commune.kpi": 3321, "vn-2025.province": 34, "vn-2025.province.kpi": 34,
	})
	f(apitest.Viewer(t, "79"), map[string]int{
		"jp-2021.municipality": 0, "jp-2021.municipality.kpi": 0,
		"vn-2025.commune": 168, "vn-2025.commune.kpi": 168, "vn-2025.province": 1, "vn-2025.province.kpi": 1,
	})
	if r := apitest.Get(t, s, "/api/v1/layers", ""); r.Code != http.StatusUnauthorized {
		t.Errorf("catalog without a token: got %d, want 401", r.Code)
	}
}

func TestGeoJSONLayer(t *testing.T) {
	s, _ := newGISServer(t)
	fc := apitest.DecodeFC(t, apitest.Get(t, s, "/api/v1/layers/vn-2025.commune.geojson?parent=79&zoom=10", apitest.Admin))
	if got, want := len(fc.Features), 168; got != want {
		t.Fatalf("communes of 79: got %d, want %d", got, want)
	}
	simplified := 0
	for _, f := range fc.Features {
		p := f.Properties
		if f.ID != p["code"] || p["level"] != "commune" || p["parent"] != "79" || p["hierarchy"] != "vn-2025" || p["name"] == "" || p["full_name"] == nil {
			t.Fatalf("feature %s: got properties %v, want code = id, level commune, parent 79, hierarchy vn-2025 and names", f.ID, p)
		}
		simplified += positions(t, f.Geometry)
	}
	full := 0
	for _, f := range apitest.DecodeFC(t, apitest.Get(t, s, "/api/v1/layers/vn-2025.commune.geojson?parent=79", apitest.Admin)).Features {
		full += positions(t, f.Geometry)
	}
	if simplified == 0 || simplified >= full {
		t.Errorf("positions at zoom 10: got %d, want fewer than the %d at full detail", simplified, full)
	}

	// Map clients that cannot set headers pass the token in the URL; the
	// catalog, read by the API's own clients, takes the header only.
	if got := apitest.DecodeFC(t, apitest.Get(t, s, "/api/v1/layers/vn-2025.commune.geojson?parent=79&zoom=10&access_token="+apitest.Admin, "")); len(got.Features) != 168 {
		t.Errorf("token in the URL: got %d features, want 168", len(got.Features))
	}
	apitest.WantError(t, apitest.Get(t, s, "/api/v1/layers?access_token="+apitest.Admin, ""), http.StatusBadRequest, "unknown query parameter access_token")

	provinces := apitest.DecodeFC(t, apitest.Get(t, s, "/api/v1/layers/vn-2025.province.geojson", apitest.Admin))
	if got, want := len(provinces.Features), 34; got != want {
		t.Errorf("provinces without bbox (not the finest level: no cap): got %d, want %d", got, want)
	}
	if p := provinces.Features[0].Properties; p["parent"] != nil {
		t.Errorf("a province's parent: got %v, want null", p["parent"])
	}
}

func TestGeoJSONIndicators(t *testing.T) {
	s, _ := newGISServer(t)
	f := func(query string, w aggregate.Window, wantKPIs []string) {
		t.Helper()
		fc := apitest.DecodeFC(t, apitest.Get(t, s, "/api/v1/layers/vn-2025.commune.kpi.geojson?parent=79&zoom=8"+query, apitest.Admin))
		if len(fc.Features) != 168 {
			t.Fatalf("%s: got %d features, want 168", query, len(fc.Features))
		}
		for _, ft := range fc.Features {
			p := ft.Properties
			if got, want := p["online_rate"], apitest.WantOnlineRate(ft.ID, w); got != want {
				t.Fatalf("%s: online_rate of %s: got %v, want %v", query, ft.ID, got, want)
			}
			if p["window"] != string(w) || p["as_of"] != "2026-11-22T09:15:04Z" || p["code"] != ft.ID {
				t.Fatalf("%s: feature %s: got window %v, as_of %v, code %v", query, ft.ID, p["window"], p["as_of"], p["code"])
			}
			for _, d := range aggregate.Catalog() {
				v, present := p[d.ID]
				want := false
				for _, k := range wantKPIs {
					want = want || k == d.ID
				}
				if present != want {
					t.Fatalf("%s: feature %s: kpi %s present %v, want %v", query, ft.ID, d.ID, present, want)
				}
				if d.ID == "on_time_rate" && present && v != nil {
					t.Fatalf("%s: on_time_rate with nothing resolved: got %v, want null", query, v)
				}
			}
		}
	}
	var all []string
	for _, d := range aggregate.Catalog() {
		all = append(all, d.ID)
	}
	f("", aggregate.Today, all)
	f("&window=7d", aggregate.Last7, all)
	f("&kpi=online_rate,on_time_rate", aggregate.Today, []string{"online_rate", "on_time_rate"})
}

func TestGeoJSONBBoxCap(t *testing.T) {
	s, _ := newGISServer(t)
	f := func(query string, code int, mention string) {
		t.Helper()
		r := apitest.Get(t, s, "/api/v1/layers/vn-2025.commune.geojson"+query, apitest.Admin)
		if code != http.StatusOK {
			apitest.WantError(t, r, code, mention)
			return
		}
		if r.Code != code {
			t.Errorf("%s: got %d %.200s, want %d", query, r.Code, r.Body, code)
		}
	}
	f("", 400, "parent=")
	f("?zoom=11", 400, "bbox=")
	f("?bbox=105,9,108,12", 400, "bbox covers 9.0 square degrees")
	f("?zoom=14&bbox=105,9,108,12", 400, "bbox")
	f("?bbox=106,10,108,12", 200, "")
	f("?zoom=12&bbox=106.6,10.7,106.8,10.9", 200, "")
	f("?parent=01", 200, "")

	whole := apitest.DecodeFC(t, apitest.Get(t, s, "/api/v1/layers/vn-2025.commune.geojson?zoom=10", apitest.Admin))
	if got, want := len(whole.Features), 3321; got != want {
		t.Errorf("every commune at zoom 10: got %d, want %d", got, want)
	}
	// The bbox test is on the boundaries, not their boxes: everything
	// returned meets the box, and a ward inside it is returned.
	box := orb.Bound{Min: orb.Point{106.69, 10.77}, Max: orb.Point{106.71, 10.79}}
	fc := apitest.DecodeFC(t, apitest.Get(t, s, "/api/v1/layers/vn-2025.commune.geojson?bbox=106.69,10.77,106.71,10.79", apitest.Admin))
	h := vn2025Units(t)
	found := false
	for _, ft := range fc.Features {
		mp, _ := h.Geometry(ft.ID)
		if !geo.IntersectsBound(mp, box) {
			t.Errorf("commune %s returned for a bbox it does not meet", ft.ID)
		}
		found = found || ft.ID == "26740"
	}
	if !found || len(fc.Features) == 0 {
		t.Errorf("bbox over Sài Gòn ward: got %d features without 26740", len(fc.Features))
	}
}

func vn2025Units(t *testing.T) *geo.Hierarchy {
	t.Helper()
	reg, _ := geo.Builtin()
	h, _ := reg.Hierarchy("vn-2025")
	return h
}

func TestGeoJSONRefusals(t *testing.T) {
	s, figs := newGISServer(t)
	f := func(path string, code int, mention string) {
		t.Helper()
		apitest.WantError(t, apitest.Get(t, s, path, apitest.Admin), code, mention)
	}
	const c = "/api/v1/layers/vn-2025.commune.geojson?parent=79&"
	const k = "/api/v1/layers/vn-2025.commune.kpi.geojson?parent=79&"
	f(c+"bbox=1,2,3", 400, "bbox")
	f(c+"bbox=1,2,3,4,5,6", 400, "bbox")
	f(c+"bbox=a,2,3,4", 400, "bbox")
	f(c+"bbox=NaN,2,3,4", 400, "bbox")
	f(c+"bbox=10,10,5,5", 400, "bbox")
	f(c+"bbox=-200,0,0,1", 400, "bbox")
	f(c+"bbox=0,-91,1,1", 400, "bbox")
	f(c+"zoom=23", 400, "zoom")
	f(c+"zoom=-1", 400, "zoom")
	f(c+"zoom=ten", 400, "zoom")
	f(k+"window=1y", 400, "window")
	f(k+"kpi=online_rate,nope", 400, "kpi")
	f(c+"kpi=online_rate", 400, "kpi")
	f(c+"window=7d", 400, "window")
	f("/api/v1/layers/vn-2025.commune.geojson?parent=99999", 404, "parent")
	f("/api/v1/layers/vn-2025.ward.geojson", 404, "vn-2025.ward")
	f("/api/v1/layers/vn-2024.commune.geojson", 404, "carries no boundaries")
	f("/api/v1/layers/jp-2021.prefecture.geojson", 404, "municipality")
	f("/api/v1/layers/xx-1999.commune.geojson", 404, "no hierarchy")
	f("/api/v1/layers/vn-2025.commune", 404, ".geojson")

	figs.Fail = errors.New("clickhouse: connection refused")
	r := apitest.Get(t, s, k+"zoom=8", apitest.Admin)
	apitest.WantError(t, r, 503, "retry")
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func decodeTile(t *testing.T, r apitest.Reply) *mvt.Layer {
	t.Helper()
	if r.Code != http.StatusOK {
		t.Fatalf("got %d %.200s, want 200", r.Code, r.Body)
	}
	var layers mvt.Layers
	var err error
	if r.Header.Get("Content-Encoding") == "gzip" {
		layers, err = mvt.UnmarshalGzipped(r.Body)
	} else {
		layers, err = mvt.Unmarshal(r.Body)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("got %d layers, want 1", len(layers))
	}
	return layers[0]
}

func TestTiles(t *testing.T) {
	s, _ := newGISServer(t)
	path := apitest.TilePath("vn-2025.commune", apitest.HCMCTile)

	plain := apitest.Get(t, s, path, apitest.Admin)
	if ce := plain.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("without Accept-Encoding: got Content-Encoding %q, want none", ce)
	}
	if ct := plain.Header.Get("Content-Type"); ct != "application/vnd.mapbox-vector-tile" {
		t.Errorf("Content-Type: got %q", ct)
	}
	if cc := plain.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=86400") {
		t.Errorf("boundary tile Cache-Control: got %q, want a long max-age", cc)
	}
	l := decodeTile(t, plain)
	if l.Name != "vn-2025.commune" || len(l.Features) == 0 {
		t.Fatalf("got layer %q with %d features, want vn-2025.commune with communes", l.Name, len(l.Features))
	}
	codes := map[any]bool{}
	for _, f := range l.Features {
		codes[f.Properties["code"]] = true
		if f.Properties["level"] != "commune" || f.Properties["hierarchy"] != "vn-2025" {
			t.Fatalf("feature properties: got %v", f.Properties)
		}
	}
	if !codes["26740"] {
		t.Errorf("tile over central HCMC: got codes %v, want 26740 among them", codes)
	}

	gz := apitest.Get(t, s, path, apitest.Admin, "Accept-Encoding", "br, gzip;q=0.8")
	if gz.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("with gzip accepted: got Content-Encoding %q, want gzip", gz.Header.Get("Content-Encoding"))
	}
	if got := decodeTile(t, gz); len(got.Features) != len(l.Features) {
		t.Errorf("gzip tile: got %d features, want %d", len(got.Features), len(l.Features))
	}
	if r := apitest.Get(t, s, path, apitest.Admin, "Accept-Encoding", "gzip;q=0"); r.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0: got a gzip body, want identity")
	}

	tag := gz.Header.Get("ETag")
	if len(tag) < 3 || tag[0] != '"' || tag == plain.Header.Get("ETag") {
		t.Fatalf("ETag: got %q for gzip and %q for identity, want two distinct strong tags", tag, plain.Header.Get("ETag"))
	}
	if r := apitest.Get(t, s, path, apitest.Admin, "Accept-Encoding", "gzip", "If-None-Match", `"other", `+tag); r.Code != http.StatusNotModified || len(r.Body) != 0 {
		t.Errorf("If-None-Match with the tag: got %d and %d bytes, want 304 and none", r.Code, len(r.Body))
	}
	if r := apitest.Get(t, s, path, apitest.Admin, "Accept-Encoding", "gzip", "If-None-Match", `"other"`); r.Code != http.StatusOK {
		t.Errorf("If-None-Match with another tag: got %d, want 200", r.Code)
	}

	ocean := maptile.At(orb.Point{-150, 0}, 10)
	if r := apitest.Get(t, s, apitest.TilePath("vn-2025.commune", ocean), apitest.Admin); r.Code != http.StatusNoContent || len(r.Body) != 0 {
		t.Errorf("ocean tile: got %d with %d bytes, want 204", r.Code, len(r.Body))
	}

	f := func(path string, code int, mention string) {
		t.Helper()
		apitest.WantError(t, apitest.Get(t, s, path, apitest.Admin), code, mention)
	}
	f("/tiles/vn-2025.commune/23/0/0.mvt", 400, "z")
	f("/tiles/vn-2025.commune/x/0/0.mvt", 400, "z")
	f("/tiles/vn-2025.commune/10/1024/0.mvt", 400, "x")
	f("/tiles/vn-2025.commune/10/0/1024.mvt", 400, "y")
	f("/tiles/vn-2025.commune/10/-1/0.mvt", 400, "x")
	f("/tiles/vn-2025.commune/10/0/0.png", 404, ".mvt")
	f("/tiles/vn-2025.nope/10/0/0.mvt", 404, "vn-2025.nope")
	f("/tiles/vn-2024.commune/10/0/0.mvt", 404, "no boundaries")
	f(apitest.TilePath("vn-2025.commune.kpi", apitest.HCMCTile)+"?window=1y", 400, "window")
	f(apitest.TilePath("vn-2025.commune.kpi", apitest.HCMCTile)+"?kpi=nope", 400, "kpi")
}

func TestIndicatorTiles(t *testing.T) {
	s, figs := newGISServer(t)
	path := apitest.TilePath("vn-2025.commune.kpi", apitest.HCMCTile)
	r := apitest.Get(t, s, path+"?window=7d&kpi=online_rate", apitest.Admin)
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=15") {
		t.Errorf("indicator tile Cache-Control: got %q, want max-age=15", cc)
	}
	l := decodeTile(t, r)
	if l.Name != "vn-2025.commune.kpi" || len(l.Features) == 0 {
		t.Fatalf("got layer %q with %d features", l.Name, len(l.Features))
	}
	for _, f := range l.Features {
		code, _ := f.Properties["code"].(string)
		if got, want := f.Properties["online_rate"], apitest.WantOnlineRate(code, aggregate.Last7); got != want {
			t.Fatalf("online_rate of %s: got %v, want %v", code, got, want)
		}
		if _, ok := f.Properties["dossiers_received"]; ok {
			t.Fatalf("kpi=online_rate: feature %s still carries dossiers_received", code)
		}
		if f.Properties["window"] != "7d" {
			t.Fatalf("window: got %v, want 7d", f.Properties["window"])
		}
	}
	// A map view's tiles share one reading of the figures.
	before := figs.Level.Load()
	for _, tt := range apitest.HCMCTile.Children() {
		apitest.Get(t, s, apitest.TilePath("vn-2025.commune.kpi", tt)+"?window=7d", apitest.Admin)
	}
	if got := figs.Level.Load() - before; got != 0 {
		t.Errorf("figures read %d more times for four more tiles in the same window, want 0", got)
	}
	apitest.Get(t, s, path+"?window=30d", apitest.Admin)
	if got := figs.Level.Load() - before; got != 1 {
		t.Errorf("figures read %d times for a new window, want 1", got)
	}
	ocean := apitest.TilePath("vn-2025.commune.kpi", maptile.At(orb.Point{-150, 0}, 10)) + "?window=24h"
	if r := apitest.Get(t, s, ocean, apitest.Admin); r.Code != http.StatusNoContent || figs.Level.Load()-before != 1 {
		t.Errorf("ocean indicator tile: got %d after %d readings of figures, want 204 without reading any", r.Code, figs.Level.Load()-before-1)
	}

	// A failed reading is not kept: the next tile asks storage again.
	figs.Fail = errors.New("clickhouse: timeout")
	apitest.WantError(t, apitest.Get(t, s, path+"?window=24h", apitest.Admin), 503, "retry")
	figs.Fail = nil
	if r := apitest.Get(t, s, path+"?window=24h", apitest.Admin); r.Code != http.StatusOK {
		t.Errorf("after storage recovered: got %d %s, want 200", r.Code, r.Body)
	}
}

func TestTilesConcurrently(t *testing.T) {
	s, _ := newGISServer(t)
	tiles := append(maptile.Tiles{apitest.HCMCTile, apitest.HCMCTile.Parent(), apitest.HCMCTile.Parent().Parent()}, apitest.HCMCTile.Children()...)
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, tt := range tiles {
				layer := "vn-2025.commune"
				if (i+w)%2 == 0 {
					layer += ".kpi"
				}
				req := httptest.NewRequest(http.MethodGet, apitest.TilePath(layer, tt), nil)
				req.Header.Set("Authorization", "Bearer "+apitest.Admin)
				resp, err := s.App().Test(req, -1)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: got %d, want 200", apitest.TilePath(layer, tt), resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
}

func TestTileJSON(t *testing.T) {
	s, _ := newGISServer(t)
	f := func(target, token, wantTiles string) {
		t.Helper()
		r := apitest.Get(t, s, target, token)
		if r.Code != http.StatusOK {
			t.Fatalf("%s: got %d %s", target, r.Code, r.Body)
		}
		var tj gis.TileJSONBody
		if err := json.Unmarshal(r.Body, &tj); err != nil {
			t.Fatal(err)
		}
		if tj.TileJSON != "3.0.0" || len(tj.Tiles) != 1 || tj.Tiles[0] != wantTiles {
			t.Errorf("%s: got tilejson %q, tiles %v; want 3.0.0 and [%s]", target, tj.TileJSON, tj.Tiles, wantTiles)
		}
		if len(tj.VectorLayers) != 1 || tj.VectorLayers[0].Fields["code"] != "String" || tj.MaxZoom != gis.TileMaxZoom {
			t.Errorf("%s: vector_layers %+v, maxzoom %d", target, tj.VectorLayers, tj.MaxZoom)
		}
		b := orb.Bound{Min: orb.Point{tj.Bounds[0], tj.Bounds[1]}, Max: orb.Point{tj.Bounds[2], tj.Bounds[3]}}
		if !b.Contains(orb.Point{106.7, 10.78}) || !b.Contains(orb.Point{tj.Center[0], tj.Center[1]}) {
			t.Errorf("%s: bounds %v and center %v should hold Ho Chi Minh City", target, tj.Bounds, tj.Center)
		}
	}
	f("/tiles/vn-2025.commune.json", apitest.Admin, "http://example.com/tiles/vn-2025.commune/{z}/{x}/{y}.mvt")
	// Without IOC_PUBLIC_URL links never carry the caller's token (links_test.go has the public URL).
	f("/tiles/vn-2025.commune.json?access_token="+apitest.Admin, "", "http://example.com/tiles/vn-2025.commune/{z}/{x}/{y}.mvt")
	f("/tiles/vn-2025.commune.kpi.json?window=7d&kpi=online_rate", apitest.Admin, "http://example.com/tiles/vn-2025.commune.kpi/{z}/{x}/{y}.mvt?kpi=online_rate&window=7d")

	r := apitest.Get(t, s, "/tiles/vn-2025.commune.kpi.json?kpi=online_rate", apitest.Admin)
	var tj gis.TileJSONBody
	if err := json.Unmarshal(r.Body, &tj); err != nil || tj.VectorLayers[0].ID != "vn-2025.commune.kpi" || tj.VectorLayers[0].Fields["online_rate"] != "Number" {
		t.Errorf("indicator TileJSON: got %s, %v", r.Body, err)
	}
	apitest.WantError(t, apitest.Get(t, s, "/tiles/vn-2025.commune.xml", apitest.Admin), 404, ".json")
	apitest.WantError(t, apitest.Get(t, s, "/tiles/vn-2025.ward.json", apitest.Admin), 404, "vn-2025.ward")
	if r := apitest.Get(t, s, "/tiles/vn-2025.commune.json", ""); r.Code != http.StatusUnauthorized {
		t.Errorf("TileJSON without a token: got %d, want 401", r.Code)
	}
}

func TestLayerScope(t *testing.T) {
	s, _ := newGISServer(t)
	ward, hcmc := apitest.Viewer(t, "26740"), apitest.Viewer(t, "79")
	count := func(target, token string) int {
		t.Helper()
		return len(apitest.DecodeFC(t, apitest.Get(t, s, target, token)).Features)
	}
	f := func(what string, got, want int) {
		t.Helper()
		if got != want {
			t.Errorf("%s: got %d, want %d", what, got, want)
		}
	}
	f("ward token, communes of 79", count("/api/v1/layers/vn-2025.commune.geojson?parent=79", ward), 1)
	f("ward token, communes at zoom 10", count("/api/v1/layers/vn-2025.commune.kpi.geojson?zoom=10", ward), 1)
	f("ward token, provinces", count("/api/v1/layers/vn-2025.province.geojson", ward), 0)
	f("province token, communes at zoom 10", count("/api/v1/layers/vn-2025.commune.geojson?zoom=10", hcmc), 168)
	f("province token, provinces", count("/api/v1/layers/vn-2025.province.geojson", hcmc), 1)
	f("province token, Japan", count("/api/v1/layers/jp-2021.municipality.geojson?zoom=8", hcmc), 0)

	items := apitest.DecodeFC(t, apitest.Get(t, s, "/ogc/collections/vn-2025.commune/items?access_token="+url.QueryEscape(ward), ""))
	if items.NumberMatched == nil || *items.NumberMatched != 1 || len(items.Features) != 1 || items.Features[0].ID != "26740" {
		t.Errorf("ward token, OGC items: got numberMatched %v and %d features, want 1 (26740)", items.NumberMatched, len(items.Features))
	}
	if r := apitest.Get(t, s, "/ogc/collections/vn-2025.commune/items/25747", ward); r.Code != http.StatusForbidden {
		t.Errorf("ward token, another ward's feature: got %d, want 403", r.Code)
	}

	l := decodeTile(t, apitest.Get(t, s, apitest.TilePath("vn-2025.commune", apitest.HCMCTile)+"?access_token="+url.QueryEscape(ward), ""))
	if len(l.Features) != 1 || l.Features[0].Properties["code"] != "26740" {
		t.Errorf("ward token, tile: got %d features, want only 26740", len(l.Features))
	}
	// The cache holds the admin's tile too; neither leaks into the other.
	if admin := decodeTile(t, apitest.Get(t, s, apitest.TilePath("vn-2025.commune", apitest.HCMCTile), apitest.Admin)); len(admin.Features) <= 1 {
		t.Errorf("admin tile after the ward's: got %d features, want many", len(admin.Features))
	}
	l = decodeTile(t, apitest.Get(t, s, apitest.TilePath("vn-2025.commune", apitest.HCMCTile), hcmc))
	if len(l.Features) < 2 {
		t.Errorf("province token, tile: got %d features, want the communes of 79 in the tile", len(l.Features))
	}
	for _, ft := range l.Features {
		if !strings.HasPrefix(fmt.Sprint(ft.Properties["parent"]), "79") {
			t.Errorf("province token, tile: got commune %v of %v", ft.Properties["code"], ft.Properties["parent"])
		}
	}
	if r := apitest.Get(t, s, apitest.TilePath("vn-2025.province", apitest.HCMCTile), ward); r.Code != http.StatusNoContent {
		t.Errorf("ward token, province tile: got %d, want 204", r.Code)
	}
}

func TestOGC(t *testing.T) {
	s, _ := newGISServer(t)
	jsonOf := func(target, token string, v any) apitest.Reply {
		t.Helper()
		r := apitest.Get(t, s, target, token)
		if r.Code != http.StatusOK {
			t.Fatalf("%s: got %d %s", target, r.Code, r.Body)
		}
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatal(err)
		}
		return r
	}
	var landing gis.OGCLandingBody
	jsonOf("/ogc?access_token="+apitest.Admin, "", &landing)
	rels := map[string]string{}
	for _, l := range landing.Links {
		rels[l.Rel] = l.Href
	}
	if landing.Title == "" || rels["conformance"] != "http://example.com/ogc/conformance" || rels["data"] != "http://example.com/ogc/collections" {
		t.Errorf("landing page: got %+v, want a title and absolute links without the access token", landing)
	}

	var conf struct{ ConformsTo []string }
	jsonOf("/ogc/conformance?f=json", apitest.Admin, &conf)
	if strings.Join(conf.ConformsTo, " ") != gis.ConfCore+" "+gis.ConfGeoJSON+" "+gis.ConfQueryables+" "+gis.ConfQueryParam {
		t.Errorf("conformsTo: got %v", conf.ConformsTo)
	}

	var cols struct{ Collections []gis.OGCCollectionBody }
	r := jsonOf("/ogc/collections", apitest.Admin, &cols)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("collections Content-Type: got %q", ct)
	}
	ids := map[string]bool{}
	for _, c := range cols.Collections {
		ids[c.ID] = true
		if c.Extent.Spatial.CRS != gis.CRS84 || len(c.Extent.Spatial.BBox) != 1 || c.Links[1].Rel != "items" ||
			c.Links[1].Href != "http://example.com/ogc/collections/"+c.ID+"/items" {
			t.Errorf("collection %s: got %+v", c.ID, c)
		}
	}
	if len(ids) != 6 || !ids["vn-2025.commune"] || !ids["vn-2025.commune.kpi"] || !ids["jp-2021.municipality"] {
		t.Errorf("collections: got %v", ids)
	}
	var one gis.OGCCollectionBody
	jsonOf("/ogc/collections/vn-2025.province", apitest.Admin, &one)
	if one.ID != "vn-2025.province" || one.ItemType != "feature" {
		t.Errorf("collection: got %+v", one)
	}

	page := apitest.DecodeFC(t, apitest.Get(t, s, "/ogc/collections/vn-2025.commune/items?limit=2&offset=4&access_token="+apitest.Admin, ""))
	if *page.NumberMatched != 3321 || *page.NumberReturned != 2 || len(page.Features) != 2 || page.TimeStamp == "" {
		t.Fatalf("page: got matched %d, returned %d, %d features", *page.NumberMatched, *page.NumberReturned, len(page.Features))
	}
	if page.Features[0].ID >= page.Features[1].ID {
		t.Errorf("features not ordered by code: %s, %s", page.Features[0].ID, page.Features[1].ID)
	}
	links := map[string]string{}
	for _, l := range page.Links {
		links[l.Rel] = l.Href
	}
	want := map[string]string{
		"next": "http://example.com/ogc/collections/vn-2025.commune/items?limit=1000&offset=6", // next pages are full ones
		"prev": "http://example.com/ogc/collections/vn-2025.commune/items?limit=2&offset=2",
		"self": "http://example.com/ogc/collections/vn-2025.commune/items?limit=2&offset=4",
	}
	for rel, href := range want {
		if links[rel] != href {
			t.Errorf("%s link: got %q, want %q", rel, links[rel], href)
		}
	}

	capped := apitest.DecodeFC(t, apitest.Get(t, s, "/ogc/collections/vn-2025.commune/items?limit=5000", apitest.Admin))
	if *capped.NumberReturned != gis.OGCMaxLimit {
		t.Errorf("limit=5000: got %d features, want the cap %d", *capped.NumberReturned, gis.OGCMaxLimit)
	}
	last := apitest.DecodeFC(t, apitest.Get(t, s, "/ogc/collections/vn-2025.commune/items?limit=1000&offset=3000", apitest.Admin))
	for _, l := range last.Links {
		if l.Rel == "next" {
			t.Errorf("last page: got a next link %s", l.Href)
		}
	}
	if *last.NumberReturned != 321 {
		t.Errorf("last page: got %d features, want 321", *last.NumberReturned)
	}

	ind := apitest.DecodeFC(t, apitest.Get(t, s, "/ogc/collections/vn-2025.province.kpi/items?bbox=106,10,107,11&window=24h", apitest.Admin))
	if len(ind.Features) == 0 || ind.Features[0].Properties["online_rate"] != apitest.WantOnlineRate(ind.Features[0].ID, aggregate.Last24) {
		t.Errorf("indicator items in a bbox: got %+v", ind.Features)
	}

	heights := apitest.DecodeFC(t, apitest.Get(t, s, "/ogc/collections/vn-2025.province/items?bbox=106,10,0,107,11,100", apitest.Admin))
	if got := len(heights.Features); got == 0 || got != *heights.NumberMatched {
		t.Errorf("bbox with heights: got %d features of %d matched, want the provinces around HCMC", got, *heights.NumberMatched)
	}

	var feat struct {
		Type, ID   string
		Properties map[string]any
		Links      []gis.OGCLink
	}
	r = apitest.Get(t, s, "/ogc/collections/vn-2025.commune.kpi/items/26740", apitest.Admin)
	if r.Code != http.StatusOK || r.Header.Get("Content-Type") != "application/geo+json" {
		t.Fatalf("one feature: got %d %s", r.Code, r.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(r.Body, &feat); err != nil || feat.Type != "Feature" || feat.ID != "26740" ||
		feat.Properties["online_rate"] != apitest.WantOnlineRate("26740", aggregate.Today) || len(feat.Links) != 2 {
		t.Errorf("one feature: got %+v, %v", feat, err)
	}

	f := func(target string, code int, mention string) {
		t.Helper()
		apitest.WantError(t, apitest.Get(t, s, target, apitest.Admin), code, mention)
	}
	f("/ogc/collections/vn-2025.commune/items?limit=0", 400, "limit")
	f("/ogc/collections/vn-2025.commune/items?limit=many", 400, "limit")
	f("/ogc/collections/vn-2025.commune/items?offset=-1", 400, "offset")
	f("/ogc/collections/vn-2025.commune/items?bbox=1,2", 400, "bbox")
	f("/ogc/collections/vn-2025.commune/items?f=html", 400, "f")
	f("/ogc/collections?f=xml", 400, "f")
	f("/ogc/collections/vn-2025.ward/items", 404, "vn-2025.ward")
	f("/ogc/collections/vn-2025.ward", 404, "vn-2025.ward")
	f("/ogc/collections/vn-2025.commune/items/99999", 404, "99999")
	f("/ogc/collections/vn-2025.commune/items/79", 404, "79")
	if r := apitest.Get(t, s, "/ogc/collections", ""); r.Code != http.StatusUnauthorized {
		t.Errorf("collections without a token: got %d, want 401", r.Code)
	}
}

func needGDAL(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(ogrinfo); err != nil {
		t.Fatalf("these tests open the layers with a real GIS client: install Debian's gdal-bin package (make test does) so that %s exists: %v", ogrinfo, err)
	}
}

func gdal(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "GDAL_HTTP_TIMEOUT=60", "CPL_DEBUG=OFF")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// TestGDALReadsOGCFeatures opens the OGC API with GDAL's OAPIF driver, as
// QGIS and ArcGIS users would, with the token in the URL.
func TestGDALReadsOGCFeatures(t *testing.T) {
	needGDAL(t)
	s, _ := newGISServer(t)
	src := "OAPIF:" + apitest.Serve(t, s) + "/ogc?access_token=" + apitest.Admin

	list := gdal(t, ogrinfo, "-ro", "-so", src)
	for _, id := range []string{"vn-2025.commune", "vn-2025.province.kpi", "jp-2021.municipality"} {
		if !strings.Contains(list, id) {
			t.Errorf("ogrinfo lists no %s:\n%s", id, list)
		}
	}
	summary := gdal(t, ogrinfo, "-ro", "-al", "-so", "-oo", "PAGE_SIZE=1000", src, "vn-2025.commune")
	if !strings.Contains(summary, "Feature Count: 3321") {
		t.Errorf("ogrinfo summary of vn-2025.commune lacks Feature Count: 3321:\n%.2000s", summary)
	}
	// A full read follows the next links page by page.
	csv := gdal(t, "ogr2ogr", "-f", "CSV", "/vsistdout/", "-oo", "PAGE_SIZE=1000", src, "vn-2025.commune", "-select", "code")
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	codes := map[string]bool{}
	for _, l := range lines[1:] {
		codes[strings.Trim(l, `"`)] = true
	}
	if len(lines)-1 != 3321 || len(codes) != 3321 || !codes["26740"] {
		t.Errorf("ogr2ogr read %d rows, %d distinct codes (26740 among them: %v); want 3321 distinct", len(lines)-1, len(codes), codes["26740"])
	}
}

// TestGDALReadsTile checks a tile against GDAL's MVT driver, which is
// stricter about the format than the decoder the other tests use.
func TestGDALReadsTile(t *testing.T) {
	needGDAL(t)
	s, _ := newGISServer(t)
	for _, layer := range []string{"vn-2025.commune", "vn-2025.commune.kpi"} {
		r := apitest.Get(t, s, apitest.TilePath(layer, apitest.HCMCTile), apitest.Admin)
		want := decodeTile(t, r)
		file := filepath.Join(t.TempDir(), strconv.Itoa(int(apitest.HCMCTile.Z)), strconv.Itoa(int(apitest.HCMCTile.X)), strconv.Itoa(int(apitest.HCMCTile.Y))+".pbf")
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, r.Body, 0o644); err != nil {
			t.Fatal(err)
		}
		out := gdal(t, ogrinfo, "-ro", "-al", "-so", "-oo", "CLIP=NO", file)
		if !strings.Contains(out, "Layer name: "+layer+"\n") {
			t.Errorf("ogrinfo on the %s tile names no layer %s:\n%.1000s", layer, layer, out)
		}
		if wantCount := fmt.Sprintf("Feature Count: %d\n", len(want.Features)); !strings.Contains(out, wantCount) {
			t.Errorf("ogrinfo on the %s tile: want %q:\n%.1000s", layer, wantCount, out)
		}
		full := gdal(t, ogrinfo, "-ro", "-al", "-oo", "CLIP=NO", file)
		if !strings.Contains(full, "code (String) = 26740") || !strings.Contains(full, "MULTIPOLYGON") && !strings.Contains(full, "POLYGON") {
			t.Errorf("ogrinfo on the %s tile shows no polygon for 26740:\n%.1000s", layer, full)
		}
	}
}
