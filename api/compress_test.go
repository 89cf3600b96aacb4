package api

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/paulmach/orb/encoding/mvt"

	"github.com/openioc/ioc/api/internal/apitest"
)

// TestCompression: JSON and GeoJSON answers are compressed as
// Accept-Encoding allows; gzip tiles are sent as they are, not twice.
func TestCompression(t *testing.T) {
	s, _ := newGISServer(t)
	for _, target := range []string{
		"/ogc/collections/vn-2025.commune/items?limit=100",
		"/api/v1/layers/vn-2025.province.geojson?zoom=6",
		"/api/v1/areas?level=commune",
	} {
		plain := apitest.Get(t, s, target, apitest.Admin)
		r := apitest.Get(t, s, target, apitest.Admin, "Accept-Encoding", "gzip")
		if r.Code != http.StatusOK || r.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(r.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("%s: got %d, Content-Encoding %q, Vary %q; want gzip", target, r.Code, r.Header.Get("Content-Encoding"), r.Header.Get("Vary"))
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(r.Body))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Body)*2 > len(body) || len(body) != len(plain.Body) {
			t.Errorf("%s: %d bytes gzip for %d plain (uncompressed answer %d)", target, len(r.Body), len(body), len(plain.Body))
		}
	}
	tile := apitest.Get(t, s, apitest.TilePath("vn-2025.commune", apitest.HCMCTile), apitest.Admin, "Accept-Encoding", "gzip, br")
	zr, err := gzip.NewReader(bytes.NewReader(tile.Body))
	if err != nil || tile.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("tile: Content-Encoding %q, %v", tile.Header.Get("Content-Encoding"), err)
	}
	raw, _ := io.ReadAll(zr)
	if _, err := mvt.Unmarshal(raw); err != nil {
		t.Errorf("tile: gzip once, then not a vector tile: %v", err)
	}
	if plain := apitest.Get(t, s, apitest.TilePath("vn-2025.commune", apitest.HCMCTile), apitest.Admin, "Accept-Encoding", "br"); plain.Header.Get("Content-Encoding") != "" {
		t.Errorf("plain tile: got Content-Encoding %q, want none (its ETag names the plain bytes)", plain.Header.Get("Content-Encoding"))
	}
}
