package geo

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/paulmach/orb"
)

// boundaries are the shapes of a hierarchy's units, with what is derived
// from them on first use.
type boundaries struct {
	shapes map[string]orb.MultiPolygon
	bounds map[string]orb.Bound
	levels []string // levels that have shapes, from the top down

	indexOnce sync.Once
	index     map[string]*Index // level → index over its units
}

// WithShapes returns a copy of h that carries boundaries. Every shape must
// name a unit of h, be made of closed rings of at least four positions
// inside the WGS 84 range, and appear once; a level that has any shape
// must have one for every unit.
func (h *Hierarchy) WithShapes(shapes []Shape) (*Hierarchy, error) {
	b := &boundaries{shapes: make(map[string]orb.MultiPolygon, len(shapes)), bounds: make(map[string]orb.Bound, len(shapes))}
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for _, s := range shapes {
		u, ok := h.units[s.Code]
		switch {
		case !ok:
			report("shape %q names no unit of %s", s.Code, h.name)
			continue
		case b.shapes[s.Code] != nil:
			report("unit %s has more than one shape", s.Code)
			continue
		}
		if err := checkGeometry(s.Geom); err != nil {
			report("unit %s: %v", s.Code, err)
			continue
		}
		b.shapes[s.Code] = s.Geom
		b.bounds[s.Code] = s.Geom.Bound()
		if !slices.Contains(b.levels, u.Level) {
			b.levels = append(b.levels, u.Level)
		}
	}
	slices.SortFunc(b.levels, func(x, y string) int { return slices.Index(h.levels, x) - slices.Index(h.levels, y) })
	for _, l := range b.levels {
		var missing []string
		for code, u := range h.units {
			if u.Level == l && b.shapes[code] == nil {
				missing = append(missing, code)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			report("%d %s units have no geometry: %s", len(missing), l, strings.Join(missing[:min(len(missing), 10)], ", "))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("hierarchy %s: invalid boundaries:\n  %s", h.name, strings.Join(problems, "\n  "))
	}
	c := *h
	c.geom = b
	return &c, nil
}

func checkGeometry(mp orb.MultiPolygon) error {
	if len(mp) == 0 {
		return fmt.Errorf("empty geometry")
	}
	for i, poly := range mp {
		if len(poly) == 0 {
			return fmt.Errorf("polygon %d has no rings", i)
		}
		for j, ring := range poly {
			if len(ring) < 4 {
				return fmt.Errorf("polygon %d ring %d has %d positions, want at least 4", i, j, len(ring))
			}
			if ring[0] != ring[len(ring)-1] {
				return fmt.Errorf("polygon %d ring %d is not closed: it starts at %v and ends at %v", i, j, ring[0], ring[len(ring)-1])
			}
			for _, p := range ring {
				if math.IsNaN(p[0]) || math.IsNaN(p[1]) || p[0] < -180 || p[0] > 180 || p[1] < -90 || p[1] > 90 {
					return fmt.Errorf("polygon %d ring %d has position %v outside longitude -180..180, latitude -90..90", i, j, p)
				}
			}
		}
	}
	return nil
}

// Geometry returns the boundary of unit code, if the hierarchy carries one.
// The geometry is shared: callers must not modify it.
func (h *Hierarchy) Geometry(code string) (orb.MultiPolygon, bool) {
	if h.geom == nil {
		return nil, false
	}
	g, ok := h.geom.shapes[code]
	return g, ok
}

// Bound returns the bounding box of unit code's boundary.
func (h *Hierarchy) Bound(code string) (orb.Bound, bool) {
	if h.geom == nil {
		return orb.Bound{}, false
	}
	b, ok := h.geom.bounds[code]
	return b, ok
}

// GeometryLevels lists the levels whose units have boundaries, from the top
// down.
func (h *Hierarchy) GeometryLevels() []string {
	if h.geom == nil {
		return nil
	}
	return slices.Clone(h.geom.levels)
}

// HasGeometry reports whether the units of level have boundaries.
func (h *Hierarchy) HasGeometry(level string) bool {
	return h.geom != nil && slices.Contains(h.geom.levels, level)
}

// Prepare builds the spatial index Locate uses, once; Locate builds it on
// first use otherwise. It takes about half a second for Vietnam's communes,
// which a server would rather spend at start than on a request.
func (h *Hierarchy) Prepare() {
	if h.geom == nil {
		return
	}
	h.geom.indexOnce.Do(func() {
		h.geom.index = make(map[string]*Index, len(h.geom.levels))
		for _, l := range h.geom.levels {
			var shapes []Shape
			for code, g := range h.geom.shapes {
				if h.units[code].Level == l {
					shapes = append(shapes, Shape{Code: code, Geom: g})
				}
			}
			h.geom.index[l] = NewIndex(shapes)
		}
	})
}

// Locate returns the units containing p, from the top level down: the
// chain of the finest unit with a boundary that contains p, or, where no
// unit of that level does (a gap between simplified boundaries), of the
// finest coarser one. It returns nil outside every unit.
func (h *Hierarchy) Locate(p orb.Point) []Unit {
	if h.geom == nil {
		return nil
	}
	h.Prepare()
	for i := len(h.geom.levels) - 1; i >= 0; i-- {
		code, ok := h.geom.index[h.geom.levels[i]].Locate(p)
		if !ok {
			continue
		}
		chain := h.Ancestors(code)
		slices.Reverse(chain)
		return append(chain, *h.units[code])
	}
	return nil
}

// LevelIndex returns the spatial index over the units of level, building it
// on first use; nil when the level has no boundaries.
func (h *Hierarchy) LevelIndex(level string) *Index {
	if !h.HasGeometry(level) {
		return nil
	}
	h.Locate(orb.Point{}) // builds every level's index once
	return h.geom.index[level]
}
