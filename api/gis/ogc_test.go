package gis_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/openioc/ioc/api/gis"
	"github.com/openioc/ioc/api/internal/apitest"
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
		apitest.WantError(t, apitest.Get(t, s, base+"offset=9223372036854775807", apitest.Admin), http.StatusBadRequest, "offset")
		r := apitest.Get(t, s, base+"offset=9223372036854775807", apitest.Admin)
		if !strings.Contains(string(r.Body), "0 to 2147483647") {
			t.Errorf("%s: the refusal %s does not give offset's range", collection, r.Body)
		}
		apitest.WantError(t, apitest.Get(t, s, base+"offset=-1", apitest.Admin), http.StatusBadRequest, "offset")
		apitest.WantError(t, apitest.Get(t, s, base+"limit=-9223372036854775808", apitest.Admin), http.StatusBadRequest, "1 to 1000")
		// Larger than the cap, even past int64: served as the cap.
		for _, limit := range []string{"9223372036854775807", "99999999999999999999999"} {
			fc := apitest.DecodeFC(t, apitest.Get(t, s, base+"limit="+limit+"&offset=2147483647", apitest.Admin))
			if *fc.NumberReturned != 0 {
				t.Errorf("%s: limit %s past the end: got %d features", collection, limit, *fc.NumberReturned)
			}
		}
	}
}

// TestTileJSONFieldTypes: the declared types are those the tiles carry;
// a breakdown is its JSON text in a tile.
func TestTileJSONFieldTypes(t *testing.T) {
	s, _ := newGISServer(t)
	r := apitest.Get(t, s, "/tiles/vn-2025.commune.kpi.json", apitest.Admin)
	var tj gis.TileJSONBody
	if err := json.Unmarshal(r.Body, &tj); err != nil || len(tj.VectorLayers) != 1 {
		t.Fatalf("TileJSON: %d %.300s, %v", r.Code, r.Body, err)
	}
	fields := tj.VectorLayers[0].Fields
	tile := decodeTile(t, apitest.Get(t, s, apitest.TilePath("vn-2025.commune.kpi", apitest.HCMCTile), apitest.Admin))
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
		fc := apitest.DecodeFC(t, apitest.Get(t, s, target, apitest.Admin))
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
		if call := evs.LastCall(t); call.Size != 0.05 {
			t.Errorf("%s: read cells of %v", target, call.Size)
		}
	}
}

// TestOGCSchemaAndQueryables: the landing page links the API description;
// collections link a typed schema of their features and their queryables,
// which filter the items.
func TestOGCSchemaAndQueryables(t *testing.T) {
	s, _, _ := newLiveServer(t)
	var landing gis.OGCLandingBody
	if r := apitest.Get(t, s, "/ogc", apitest.Admin); json.Unmarshal(r.Body, &landing) != nil {
		t.Fatalf("landing: %s", r.Body)
	}
	found := false
	for _, l := range landing.Links {
		found = found || l.Rel == "service-desc" && l.Href == "http://example.com/api/v1/openapi.json"
	}
	if !found {
		t.Errorf("landing links %+v lack service-desc", landing.Links)
	}
	var col gis.OGCCollectionBody
	if r := apitest.Get(t, s, "/ogc/collections/vn-2025.commune.kpi", apitest.Admin); json.Unmarshal(r.Body, &col) != nil {
		t.Fatalf("collection: %s", r.Body)
	}
	rels := map[string]gis.OGCLink{}
	for _, l := range col.Links {
		rels[l.Rel] = l
	}
	if rels["describedBy"].Type != gis.TypeSchema || rels[gis.RelQueryables].Href != "http://example.com/ogc/collections/vn-2025.commune.kpi/queryables" {
		t.Errorf("collection links: %+v", col.Links)
	}
	schemaOf := func(target string) map[string]any {
		t.Helper()
		r := apitest.Get(t, s, target, apitest.Admin)
		var doc map[string]any
		if r.Code != http.StatusOK || r.Header.Get("Content-Type") != gis.TypeSchema || json.Unmarshal(r.Body, &doc) != nil {
			t.Fatalf("%s: %d %s %.300s", target, r.Code, r.Header.Get("Content-Type"), r.Body)
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

	one := apitest.DecodeFC(t, apitest.Get(t, s, "/ogc/collections/vn-2025.commune/items?code=26740", apitest.Admin))
	if *one.NumberMatched != 1 || one.Features[0].ID != "26740" {
		t.Errorf("code=26740: got %v", ids(one))
	}
	named := apitest.DecodeFC(t, apitest.Get(t, s, "/ogc/collections/vn-2025.commune/items?name="+url.QueryEscape("Sài Gòn"), apitest.Admin))
	if *named.NumberMatched != 1 || named.Features[0].ID != "26740" {
		t.Errorf("name=Sài Gòn: got %v", ids(named))
	}
	apitest.WantError(t, apitest.Get(t, s, "/ogc/collections/cameras/items?code=cam-hcmc-1", apitest.Admin), 400, "code and name filter")
}
