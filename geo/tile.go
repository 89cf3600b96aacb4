package geo

import (
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"slices"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/maptile"
)

// TileExtent is the grid of a vector tile. TileBuffer is how far, in grid
// units, geometry runs past the tile's edges: renderers stroke a border
// that runs along a tile seam without a visible gap.
const (
	TileExtent = 4096
	TileBuffer = 64
)

// minRingArea drops rings the tile grid has collapsed: less than a
// sixteenth of a pixel is nothing a renderer can fill.
const minRingArea = 16

// Feature is a unit's boundary with the properties a tile carries for it.
type Feature struct {
	ID         string // the unit code; a numeric one also becomes the MVT feature id
	Geometry   orb.MultiPolygon
	Properties map[string]any
}

// TileBound is the area, in longitude and latitude, whose features reach
// tile t, its buffer included.
func TileBound(t maptile.Tile) orb.Bound {
	return t.Bound(float64(TileBuffer) / TileExtent)
}

// EncodeTile encodes features as a Mapbox Vector Tile (version 2.1) with a
// single layer called layer. Geometry is projected to the tile, clipped to
// its buffer, snapped to the grid and wound as the specification requires
// (exterior rings positive in tile coordinates); features left without
// area are dropped. The features are not modified.
//
// MVT has no null and few value types: nil properties are omitted,
// pointers followed, named strings and numbers stored as their base type,
// encoding.TextMarshaler values (times) as their text and anything else as
// its JSON. EncodeTile returns nil when no feature remains.
func EncodeTile(layer string, t maptile.Tile, features []Feature) ([]byte, error) {
	reach := TileBound(t)
	l := &mvt.Layer{Name: layer, Version: 2, Extent: TileExtent, Features: make([]*geojson.Feature, 0, len(features))}
	for _, f := range features {
		if len(f.Geometry) == 0 || !f.Geometry.Bound().Intersects(reach) {
			continue
		}
		// Projection and clipping work in place; boundaries are shared.
		gf := geojson.NewFeature(orb.Clone(f.Geometry))
		gf.ID = f.ID
		gf.Properties = tileProperties(f.Properties)
		l.Features = append(l.Features, gf)
	}
	l.ProjectToTile(t)
	l.Clip(orb.Bound{Min: orb.Point{-TileBuffer, -TileBuffer}, Max: orb.Point{TileExtent + TileBuffer, TileExtent + TileBuffer}})
	kept := l.Features[:0]
	for _, f := range l.Features {
		if g := tidy(f.Geometry); g != nil {
			f.Geometry = g
			kept = append(kept, f)
		}
	}
	l.Features = kept
	if len(kept) == 0 {
		return nil, nil
	}
	return mvt.Marshal(mvt.Layers{l})
}

// tidy snaps clipped polygons to the grid, drops repeated positions and
// collapsed rings, and winds exterior rings positive and holes negative.
func tidy(g orb.Geometry) orb.Geometry {
	var polys []orb.Polygon
	switch g := g.(type) {
	case orb.Polygon:
		polys = []orb.Polygon{g}
	case orb.MultiPolygon:
		polys = g
	default:
		return nil
	}
	var out orb.MultiPolygon
	for _, p := range polys {
		var np orb.Polygon
		for i, r := range p {
			r = snapRing(r)
			a := signedRingArea(r)
			if len(r) < 4 || math.Abs(a) < minRingArea {
				if i == 0 {
					break
				}
				continue
			}
			if (i == 0) != (a > 0) {
				slices.Reverse(r)
			}
			np = append(np, r)
		}
		if len(np) > 0 {
			out = append(out, np)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

// snapRing rounds a ring to whole grid units, in place, dropping positions that
// repeat the previous one, and keeps it closed.
func snapRing(r orb.Ring) orb.Ring {
	out := r[:0]
	for _, p := range r {
		p = orb.Point{math.Round(p[0]), math.Round(p[1])}
		if len(out) == 0 || p != out[len(out)-1] {
			out = append(out, p)
		}
	}
	if len(out) > 0 && out[0] != out[len(out)-1] {
		out = append(out, out[0])
	}
	return out
}

func tileProperties(props map[string]any) geojson.Properties {
	out := make(geojson.Properties, len(props))
	for k, v := range props {
		if tv, ok := tileValue(v); ok {
			out[k] = tv
		}
	}
	return out
}

func tileValue(v any) (any, bool) {
	rv := reflect.ValueOf(v)
	for rv.IsValid() && (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface) {
		if rv.IsNil() {
			return nil, false
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return nil, false
	}
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), true
	case reflect.Bool:
		return rv.Bool(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rv.Uint(), true
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		return f, true
	}
	if m, ok := rv.Interface().(encoding.TextMarshaler); ok {
		b, err := m.MarshalText()
		return string(b), err == nil
	}
	b, err := json.Marshal(rv.Interface())
	return string(b), err == nil
}

// IntersectsBound reports whether the area of mp meets b, edges included:
// the bbox test of feature queries, exact where comparing bounding boxes
// would also return a unit whose box merely overlaps a corner of b.
func IntersectsBound(mp orb.MultiPolygon, b orb.Bound) bool {
	if !mp.Bound().Intersects(b) {
		return false
	}
	for _, poly := range mp {
		for _, r := range poly {
			for i := 0; i+1 < len(r); i++ {
				if segmentMeetsBound(r[i], r[i+1], b) {
					return true
				}
			}
		}
	}
	// No edge reaches b: b lies wholly inside mp or wholly outside it.
	return multiPolygonContains(mp, b.Center())
}

func segmentMeetsBound(p, q orb.Point, b orb.Bound) bool {
	if b.Contains(p) || b.Contains(q) {
		return true
	}
	if max(p[0], q[0]) < b.Min[0] || min(p[0], q[0]) > b.Max[0] || max(p[1], q[1]) < b.Min[1] || min(p[1], q[1]) > b.Max[1] {
		return false
	}
	// The segment's box overlaps b: it meets b unless all four corners lie
	// strictly on one side of its line.
	side := func(c orb.Point) float64 { return (q[0]-p[0])*(c[1]-p[1]) - (q[1]-p[1])*(c[0]-p[0]) }
	s := [4]float64{side(b.Min), side(b.Max), side(orb.Point{b.Min[0], b.Max[1]}), side(orb.Point{b.Max[0], b.Min[1]})}
	pos, neg := 0, 0
	for _, v := range s {
		if v > 0 {
			pos++
		} else if v < 0 {
			neg++
		}
	}
	return pos < 4 && neg < 4
}

// multiPolygonContains applies the even-odd rule over each polygon's rings,
// holes included.
func multiPolygonContains(mp orb.MultiPolygon, p orb.Point) bool {
	for _, poly := range mp {
		in := false
		for _, r := range poly {
			for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
				a, b := r[i], r[j]
				if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0]-a[0])*(p[1]-a[1])/(b[1]-a[1])+a[0] {
					in = !in
				}
			}
		}
		if in {
			return true
		}
	}
	return false
}
