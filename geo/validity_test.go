package geo

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/paulmach/orb"
)

// TestCarriedBoundariesAreValid: every boundary the project carries is
// valid as GIS clients check it (closed rings, none crossing or touching
// itself, rings of a polygon crossing none of the others). Twelve vn-2025
// communes were not before the data was regenerated through Repair.
func TestCarriedBoundariesAreValid(t *testing.T) {
	reg, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range reg.Names() {
		h, _ := reg.Hierarchy(name)
		for _, level := range h.GeometryLevels() {
			for _, u := range h.Select(level, "") {
				g, _ := h.Geometry(u.Code)
				if err := Validate(g); err != nil {
					t.Errorf("%s %s (%s): %v", name, u.Code, u.Name, err)
				}
				checked++
			}
		}
	}
	if checked < 3321+34 {
		t.Errorf("checked %d boundaries, want every vn-2025 one at least", checked)
	}
}

func ring(pts ...float64) orb.Ring {
	r := orb.Ring{}
	for i := 0; i+1 < len(pts); i += 2 {
		r = append(r, orb.Point{pts[i], pts[i+1]})
	}
	return append(r, r[0])
}

func area(mp orb.MultiPolygon) float64 {
	a := 0.0
	for _, p := range mp {
		for i, r := range p {
			if i == 0 {
				a += math.Abs(signedRingArea(r))
			} else {
				a -= math.Abs(signedRingArea(r))
			}
		}
	}
	return a
}

func TestValidateAndRepair(t *testing.T) {
	square := ring(0, 0, 1, 0, 1, 1, 0, 1)
	hole := ring(0.2, 0.2, 0.2, 0.4, 0.4, 0.4, 0.4, 0.2)
	for _, tc := range []struct {
		name    string
		mp      orb.MultiPolygon
		problem string  // "" for valid
		area    float64 // after repair
		polys   int
	}{
		{"square with a hole", orb.MultiPolygon{{square, hole}}, "", 0.96, 1},
		{"repeated position", orb.MultiPolygon{{ring(0, 0, 1, 0, 1, 0, 1, 1, 0, 1)}}, "", 1, 1},
		{"hole touching the shell at a point", orb.MultiPolygon{{square, ring(0, 0.5, 0.5, 0.4, 0.5, 0.6)}}, "", 0.95, 1},
		// A bow-tie: two triangles of area 0.25 meeting at (0.5, 0.5).
		{"bow-tie", orb.MultiPolygon{{ring(0, 0, 1, 1, 1, 0, 0, 1)}}, "intersects itself", 0.5, 2},
		// An outer ring that pinches in to enclose a hole of its own.
		{"self-touching shell", orb.MultiPolygon{{ring(0, 0, 2, 0, 2, 2, 1, 2, 1, 1.5, 1.5, 1, 0.5, 1, 1, 1.5, 1, 2, 0, 2)}}, "intersects itself", 4 - 0.25, 1},
		{"hole crossing the shell", orb.MultiPolygon{{square, ring(0.5, 0.5, 1.5, 0.5, 1.5, 0.6, 0.5, 0.6)}}, "crosses ring 0", -1, 0},
		{"spike back along an edge", orb.MultiPolygon{{ring(0, 0, 1, 0, 1, 1, 1, 0.5, 1, 1.5, 0, 1)}}, "intersects itself", -1, 0},
	} {
		err := Validate(tc.mp)
		switch {
		case tc.problem == "" && err != nil:
			t.Errorf("%s: %v, want valid", tc.name, err)
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.problem)
		}
		fixed, changed := Repair(tc.mp)
		if changed != (tc.problem != "") {
			t.Errorf("%s: Repair changed it: %v", tc.name, changed)
		}
		if tc.area >= 0 {
			if err := Validate(fixed); err != nil {
				t.Errorf("%s: repaired %v is still invalid: %v", tc.name, fixed, err)
			}
			if math.Abs(area(fixed)-tc.area) > 1e-9 || len(fixed) != tc.polys {
				t.Errorf("%s: repaired to %d polygons of area %v, want %d of %v: %v", tc.name, len(fixed), area(fixed), tc.polys, tc.area, fixed)
			}
		}
		if !changed && !slices.EqualFunc(fixed, tc.mp, func(a, b orb.Polygon) bool { return a.Equal(b) }) {
			t.Errorf("%s: a valid boundary was changed", tc.name)
		}
	}
}

// TestImportRepairs: an imported boundary that crosses itself is installed
// valid.
func TestImportRepairs(t *testing.T) {
	shapes, _, err := ReadGeoJSON(strings.NewReader(`{"type":"FeatureCollection","features":[{"type":"Feature",
		"properties":{"code":"1"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}}]}`), "code")
	if err != nil || len(shapes) != 1 {
		t.Fatalf("got %v, %v", shapes, err)
	}
	if err := Validate(shapes[0].Geom); err != nil || len(shapes[0].Geom) != 2 {
		t.Errorf("imported bow-tie: %v, %v; want two valid triangles", shapes[0].Geom, err)
	}
}
