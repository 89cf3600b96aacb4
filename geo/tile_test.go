package geo

import (
	"reflect"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/maptile"
)

func square(x, y, d float64) orb.Ring {
	return orb.Ring{{x, y}, {x + d, y}, {x + d, y + d}, {x, y + d}, {x, y}}
}

type window string

func TestEncodeTile(t *testing.T) {
	tile := maptile.At(orb.Point{106.7, 10.78}, 10)
	c := tile.Center()
	rate := 0.5
	var none *float64
	withHole := orb.MultiPolygon{{square(c[0]-0.1, c[1]-0.1, 0.2), square(c[0]-0.05, c[1]-0.05, 0.1)}}
	before := orb.Clone(withHole)
	features := []Feature{
		{ID: "26740", Geometry: withHole, Properties: map[string]any{
			"code": "26740", "rate": &rate, "missing": none, "nil": nil, "window": window("7d"),
			"count": uint64(3), "as_of": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		}},
		{ID: "far", Geometry: orb.MultiPolygon{{square(0, 0, 1)}}},                 // outside the tile
		{ID: "speck", Geometry: orb.MultiPolygon{{square(c[0], c[1], 1e-7)}}},      // below the grid
		{ID: "x1", Geometry: orb.MultiPolygon{{square(c[0]+0.001, c[1], 0.0005)}}}, // a third of a pixel: drawn
	}
	body, err := EncodeTile("vn-2025.commune", tile, features)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(withHole, before) {
		t.Error("EncodeTile modified a feature's geometry")
	}
	layers, err := mvt.Unmarshal(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 || layers[0].Name != "vn-2025.commune" || layers[0].Version != 2 || layers[0].Extent != TileExtent {
		t.Fatalf("got layers %+v, want one named vn-2025.commune, version 2, extent %d", layers, TileExtent)
	}
	fs := layers[0].Features
	if len(fs) != 2 {
		t.Fatalf("got %d features, want 2 (the one far away and the speck dropped)", len(fs))
	}
	f := fs[0]
	if got, want := f.ID, float64(26740); got != want {
		t.Errorf("id: got %v, want %v", got, want)
	}
	poly, ok := f.Geometry.(orb.Polygon)
	if !ok || len(poly) != 2 {
		t.Fatalf("geometry: got %T with %d rings, want a polygon with its hole (exterior and hole wound apart)", f.Geometry, len(poly))
	}
	if signedRingArea(poly[0]) <= 0 || signedRingArea(poly[1]) >= 0 {
		t.Errorf("winding: exterior area %v, hole area %v; want positive then negative in tile coordinates", signedRingArea(poly[0]), signedRingArea(poly[1]))
	}
	wantProps := map[string]any{"code": "26740", "rate": 0.5, "window": "7d", "count": float64(3), "as_of": "2026-01-02T03:04:05Z"}
	if !reflect.DeepEqual(map[string]any(f.Properties), wantProps) {
		t.Errorf("properties: got %v, want %v", f.Properties, wantProps)
	}
	if fs[1].ID != nil {
		t.Errorf("id of a non-numeric code: got %v, want none", fs[1].ID)
	}

	if body, err := EncodeTile("x", tile, features[1:3]); err != nil || body != nil {
		t.Errorf("tile with nothing drawn: got %d bytes, %v; want nil", len(body), err)
	}
}

func TestEncodeTileClipsToBuffer(t *testing.T) {
	tile := maptile.New(3, 3, 3)
	b := tile.Bound()
	// A shape four times the tile, centred on it.
	w, hgt := b.Max[0]-b.Min[0], b.Max[1]-b.Min[1]
	big := orb.MultiPolygon{{orb.Ring{
		{b.Min[0] - w, b.Min[1] - hgt}, {b.Max[0] + w, b.Min[1] - hgt}, {b.Max[0] + w, b.Max[1] + hgt}, {b.Min[0] - w, b.Max[1] + hgt}, {b.Min[0] - w, b.Min[1] - hgt},
	}}}
	body, err := EncodeTile("l", tile, []Feature{{ID: "1", Geometry: big}})
	if err != nil {
		t.Fatal(err)
	}
	layers, err := mvt.Unmarshal(body)
	if err != nil || len(layers) != 1 || len(layers[0].Features) != 1 {
		t.Fatalf("got %v, %v; want one layer with one feature", layers, err)
	}
	got := layers[0].Features[0].Geometry.Bound()
	want := orb.Bound{Min: orb.Point{-TileBuffer, -TileBuffer}, Max: orb.Point{TileExtent + TileBuffer, TileExtent + TileBuffer}}
	if got != want {
		t.Errorf("clipped bound: got %v, want %v", got, want)
	}
}

func TestIntersectsBound(t *testing.T) {
	donut := orb.MultiPolygon{{square(0, 0, 10), square(3, 3, 4)}}
	triangle := orb.MultiPolygon{{orb.Ring{{0, 0}, {10, 0}, {0, 10}, {0, 0}}}}
	box := func(x0, y0, x1, y1 float64) orb.Bound {
		return orb.Bound{Min: orb.Point{x0, y0}, Max: orb.Point{x1, y1}}
	}
	f := func(name string, mp orb.MultiPolygon, b orb.Bound, want bool) {
		t.Helper()
		if got := IntersectsBound(mp, b); got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	f("inside the hole", donut, box(4, 4, 6, 6), false)
	f("across the hole's edge", donut, box(2, 4, 4, 5), true)
	f("inside the area", donut, box(1, 1, 2, 2), true)
	f("around everything", donut, box(-1, -1, 11, 11), true)
	f("outside", donut, box(11, 11, 12, 12), false)
	f("touching an edge", donut, box(10, 1, 11, 2), true)
	f("in the triangle's box but past its diagonal", triangle, box(8, 8, 9, 9), false)
	f("crossing the diagonal", triangle, box(4, 4, 6, 6), true)
	f("a segment through a box without a vertex in it", triangle, box(4.9, -1, 5.1, 20), true)
}
