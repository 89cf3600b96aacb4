package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/paulmach/orb/encoding/mvt"
)

// TestOGCPagingBounds: paging parameters a client could overflow the page
// arithmetic with are refused with their range, not answered with a 500.
func TestOGCPagingBounds(t *testing.T) {
	s, _, _ := newLiveServer(t)
	for _, collection := range []string{"vn-2025.commune", "cameras", "camera-events.density"} {
		base := "/ogc/collections/" + collection + "/items?"
		if collection == "camera-events.density" {
			base += "bbox=106.6,10.7,106.8,10.9&"
		}
		wantError(t, get(t, s, base+"offset=9223372036854775807", gisAdmin), http.StatusBadRequest, "offset")
		r := get(t, s, base+"offset=9223372036854775807", gisAdmin)
		if !strings.Contains(string(r.body), "0 to 2147483647") {
			t.Errorf("%s: the refusal %s does not give offset's range", collection, r.body)
		}
		wantError(t, get(t, s, base+"offset=-1", gisAdmin), http.StatusBadRequest, "offset")
		wantError(t, get(t, s, base+"limit=-9223372036854775808", gisAdmin), http.StatusBadRequest, "1 to 1000")
		// Larger than the cap, even past int64: served as the cap.
		for _, limit := range []string{"9223372036854775807", "99999999999999999999999"} {
			fc := decodeFC(t, get(t, s, base+"limit="+limit+"&offset=2147483647", gisAdmin))
			if *fc.NumberReturned != 0 {
				t.Errorf("%s: limit %s past the end: got %d features", collection, limit, *fc.NumberReturned)
			}
		}
	}
}

// TestCompression: JSON and GeoJSON answers are compressed as
// Accept-Encoding allows; gzip tiles are sent as they are, not twice.
func TestCompression(t *testing.T) {
	s, _ := newGISServer(t)
	for _, target := range []string{
		"/ogc/collections/vn-2025.commune/items?limit=100",
		"/api/v1/layers/vn-2025.province.geojson?zoom=6",
		"/api/v1/areas?level=commune",
	} {
		plain := get(t, s, target, gisAdmin)
		r := get(t, s, target, gisAdmin, "Accept-Encoding", "gzip")
		if r.code != http.StatusOK || r.header.Get("Content-Encoding") != "gzip" || !strings.Contains(r.header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("%s: got %d, Content-Encoding %q, Vary %q; want gzip", target, r.code, r.header.Get("Content-Encoding"), r.header.Get("Vary"))
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.body)*2 > len(body) || len(body) != len(plain.body) {
			t.Errorf("%s: %d bytes gzip for %d plain (uncompressed answer %d)", target, len(r.body), len(body), len(plain.body))
		}
	}
	tile := get(t, s, tilePath("vn-2025.commune", hcmcTile), gisAdmin, "Accept-Encoding", "gzip, br")
	zr, err := gzip.NewReader(bytes.NewReader(tile.body))
	if err != nil || tile.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("tile: Content-Encoding %q, %v", tile.header.Get("Content-Encoding"), err)
	}
	raw, _ := io.ReadAll(zr)
	if _, err := mvt.Unmarshal(raw); err != nil {
		t.Errorf("tile: gzip once, then not a vector tile: %v", err)
	}
	if plain := get(t, s, tilePath("vn-2025.commune", hcmcTile), gisAdmin, "Accept-Encoding", "br"); plain.header.Get("Content-Encoding") != "" {
		t.Errorf("plain tile: got Content-Encoding %q, want none (its ETag names the plain bytes)", plain.header.Get("Content-Encoding"))
	}
}

// TestTileJSONFieldTypes: the declared types are those the tiles carry;
// a breakdown is its JSON text in a tile.
func TestTileJSONFieldTypes(t *testing.T) {
	s, _ := newGISServer(t)
	r := get(t, s, "/tiles/vn-2025.commune.kpi.json", gisAdmin)
	var tj tileJSONBody
	if err := json.Unmarshal(r.body, &tj); err != nil || len(tj.VectorLayers) != 1 {
		t.Fatalf("TileJSON: %d %.300s, %v", r.code, r.body, err)
	}
	fields := tj.VectorLayers[0].Fields
	tile := decodeTile(t, get(t, s, tilePath("vn-2025.commune.kpi", hcmcTile), gisAdmin))
	checked := 0
	for _, f := range tile.Features {
		for name, v := range f.Properties {
			want := "String"
			switch v.(type) {
			case float64, int64, uint64:
				want = "Number"
			case bool:
				want = "Boolean"
			}
			if fields[name] != want {
				t.Errorf("%s: TileJSON declares %q, the tile carries %T (%v)", name, fields[name], v, v)
			}
			checked++
		}
	}
	if checked == 0 || fields["camera_events_by_type"] != "String" || fields["online_rate"] != "Number" || fields["dossiers_received"] != "Number" {
		t.Errorf("checked %d values; fields %v", checked, fields)
	}
}

// TestDensityWithoutBBox: the density collection answers /items without
// parameters, as OGC API Features requires, in cells coarse enough for the
// whole extent; every event of the window is counted.
func TestDensityWithoutBBox(t *testing.T) {
	s, _, evs := newLiveServer(t)
	for _, target := range []string{"/ogc/collections/camera-events.density/items?limit=1000", "/api/v1/layers/camera-events.density.geojson"} {
		fc := decodeFC(t, get(t, s, target, gisAdmin))
		events := 0.0
		for _, f := range fc.Features {
			events += f.Properties["events"].(float64)
			if f.Properties["cell_size"] != 0.05 {
				t.Errorf("%s: cell_size %v, want 0.05 (the finest that holds Vietnam in 250,000 cells)", target, f.Properties["cell_size"])
			}
		}
		if events != 6 {
			t.Errorf("%s: %v events, want the 6 of today", target, events)
		}
		if call := evs.lastCall(t); call.size != 0.05 {
			t.Errorf("%s: read cells of %v", target, call.size)
		}
	}
}

// TestOGCSchemaAndQueryables: the landing page links the API description;
// collections link a typed schema of their features and their queryables,
// which filter the items.
func TestOGCSchemaAndQueryables(t *testing.T) {
	s, _, _ := newLiveServer(t)
	var landing ogcLandingBody
	if r := get(t, s, "/ogc", gisAdmin); json.Unmarshal(r.body, &landing) != nil {
		t.Fatalf("landing: %s", r.body)
	}
	found := false
	for _, l := range landing.Links {
		found = found || l.Rel == "service-desc" && l.Href == "http://example.com/api/v1/openapi.json"
	}
	if !found {
		t.Errorf("landing links %+v lack service-desc", landing.Links)
	}
	var col ogcCollectionBody
	if r := get(t, s, "/ogc/collections/vn-2025.commune.kpi", gisAdmin); json.Unmarshal(r.body, &col) != nil {
		t.Fatalf("collection: %s", r.body)
	}
	rels := map[string]ogcLink{}
	for _, l := range col.Links {
		rels[l.Rel] = l
	}
	if rels["describedBy"].Type != typeSchema || rels[relQueryables].Href != "http://example.com/ogc/collections/vn-2025.commune.kpi/queryables" {
		t.Errorf("collection links: %+v", col.Links)
	}
	schemaOf := func(target string) map[string]any {
		t.Helper()
		r := get(t, s, target, gisAdmin)
		var doc map[string]any
		if r.code != http.StatusOK || r.header.Get("Content-Type") != typeSchema || json.Unmarshal(r.body, &doc) != nil {
			t.Fatalf("%s: %d %s %.300s", target, r.code, r.header.Get("Content-Type"), r.body)
		}
		return doc
	}
	props := schemaOf("/ogc/collections/vn-2025.commune.kpi/schema")["properties"].(map[string]any)["properties"].(map[string]any)["properties"].(map[string]any)
	for name, typ := range map[string]string{"code": "string", "online_rate": "number", "dossiers_received": "integer", "camera_events_by_type": "object", "as_of": "string"} {
		if p, _ := props[name].(map[string]any); p == nil || p["type"] != typ {
			t.Errorf("schema of %s: %v, want type %s", name, props[name], typ)
		}
	}
	q := schemaOf("/ogc/collections/vn-2025.commune/queryables")["properties"].(map[string]any)
	if len(q) != 2 || q["code"] == nil || q["name"] == nil {
		t.Errorf("queryables of communes: %v", q)
	}
	if q := schemaOf("/ogc/collections/cameras/queryables")["properties"].(map[string]any); len(q) != 1 || q["status"] == nil {
		t.Errorf("queryables of cameras: %v", q)
	}
	schemaOf("/ogc/collections/camera-events.density/schema")

	one := decodeFC(t, get(t, s, "/ogc/collections/vn-2025.commune/items?code=26740", gisAdmin))
	if *one.NumberMatched != 1 || one.Features[0].ID != "26740" {
		t.Errorf("code=26740: got %v", ids(one))
	}
	named := decodeFC(t, get(t, s, "/ogc/collections/vn-2025.commune/items?name="+url.QueryEscape("Sài Gòn"), gisAdmin))
	if *named.NumberMatched != 1 || named.Features[0].ID != "26740" {
		t.Errorf("name=Sài Gòn: got %v", ids(named))
	}
	wantError(t, get(t, s, "/ogc/collections/cameras/items?code=cam-hcmc-1", gisAdmin), 400, "code and name filter")
}
