package geo

import "github.com/paulmach/orb"

// Index answers which of a set of non-overlapping shapes contains a point.
type Index struct {
	shapes []Shape
}

// NewIndex builds an index over shapes.
func NewIndex(shapes []Shape) *Index { return &Index{shapes: shapes} }

// Locate returns the code of the shape containing p.
func (ix *Index) Locate(p orb.Point) (string, bool) {
	for _, s := range ix.shapes {
		if s.Geom.Bound().Contains(p) && polygonsContain(s.Geom, p) {
			return s.Code, true
		}
	}
	return "", false
}

func polygonsContain(mp orb.MultiPolygon, p orb.Point) bool {
	for _, poly := range mp {
		in := false
		for _, ring := range poly {
			if ringContains(ring, p) {
				in = !in
			}
		}
		if in {
			return true
		}
	}
	return false
}

func ringContains(r orb.Ring, p orb.Point) bool {
	in := false
	for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
		a, b := r[i], r[j]
		if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0]-a[0])*(p[1]-a[1])/(b[1]-a[1])+a[0] {
			in = !in
		}
	}
	return in
}
