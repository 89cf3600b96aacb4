package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
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
