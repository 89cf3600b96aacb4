package geo

import (
	"fmt"
	"math"
	"slices"

	"github.com/paulmach/orb"
)

// Validity of boundaries, in the sense of the OGC simple-features rules a
// GIS client checks: every ring closed with at least four positions, no
// ring crossing or touching itself, and the rings of one polygon meeting
// at single points at most. Positions are compared on the 1e-6 degree grid
// the carried data is stored on (shapes.go), with exact integer
// arithmetic, so that a verdict does not depend on rounding.

// gridScale is the number of grid steps in a degree.
const gridScale = 1e6

type gridPoint [2]int64

func toGrid(p orb.Point) gridPoint {
	return gridPoint{int64(math.Round(p[0] * gridScale)), int64(math.Round(p[1] * gridScale))}
}

// Problem is why a boundary is invalid, and where.
type Problem struct {
	Polygon, Ring int       // indexes in the MultiPolygon
	At            orb.Point // a position of the problem
	What          string
}

func (p Problem) Error() string {
	return fmt.Sprintf("polygon %d ring %d: %s near %v", p.Polygon, p.Ring, p.What, p.At)
}

// Validate returns the first problem of mp, or nil when it is valid.
func Validate(mp orb.MultiPolygon) error {
	if err := checkGeometry(mp); err != nil {
		return err
	}
	for i, poly := range mp {
		if p, ok := polygonProblem(poly); ok {
			p.Polygon = i
			return p
		}
	}
	return nil
}

// segment is an edge of a ring on the grid; n is its position in the ring
// and of the ring's edges.
type segment struct {
	a, b        gridPoint
	ring, n, of int
}

func (s segment) minX() int64 { return min(s.a[0], s.b[0]) }
func (s segment) maxX() int64 { return max(s.a[0], s.b[0]) }

// orient is the sign of the turn a → b → c.
func orient(a, b, c gridPoint) int {
	v := (b[0]-a[0])*(c[1]-a[1]) - (b[1]-a[1])*(c[0]-a[0])
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// onSegment reports whether c, collinear with a and b, lies between them.
func onSegment(a, b, c gridPoint) bool {
	return min(a[0], b[0]) <= c[0] && c[0] <= max(a[0], b[0]) && min(a[1], b[1]) <= c[1] && c[1] <= max(a[1], b[1])
}

// meeting classifies how two segments meet: not at all, at exactly one
// shared point that is an endpoint of one of them (a touch), or otherwise
// (a proper crossing, or an overlap along a line).
type meeting int

const (
	apart meeting = iota
	touch
	cross
)

func meet(s, t segment) (meeting, gridPoint) {
	o1, o2 := orient(s.a, s.b, t.a), orient(s.a, s.b, t.b)
	o3, o4 := orient(t.a, t.b, s.a), orient(t.a, t.b, s.b)
	if o1 == 0 && o2 == 0 { // collinear
		var shared []gridPoint
		for _, p := range []gridPoint{t.a, t.b} {
			if onSegment(s.a, s.b, p) && !slices.Contains(shared, p) {
				shared = append(shared, p)
			}
		}
		for _, p := range []gridPoint{s.a, s.b} {
			if onSegment(t.a, t.b, p) && !slices.Contains(shared, p) {
				shared = append(shared, p)
			}
		}
		switch len(shared) {
		case 0:
			return apart, gridPoint{}
		case 1:
			return touch, shared[0]
		}
		return cross, shared[0]
	}
	if o1*o2 > 0 || o3*o4 > 0 {
		return apart, gridPoint{}
	}
	switch { // they meet at one point: an endpoint of one of them, or inside both
	case o1 == 0:
		return touch, t.a
	case o2 == 0:
		return touch, t.b
	case o3 == 0:
		return touch, s.a
	case o4 == 0:
		return touch, s.b
	}
	return cross, s.a
}

// polygonProblem finds a ring of poly that crosses or touches itself, or
// two of its rings that cross, by a sweep over the edges sorted by x.
func polygonProblem(poly orb.Polygon) (Problem, bool) {
	var segs []segment
	for r, ring := range poly {
		start := len(segs)
		for i := 0; i+1 < len(ring); i++ {
			a, b := toGrid(ring[i]), toGrid(ring[i+1])
			if a != b { // repeated positions are allowed
				segs = append(segs, segment{a: a, b: b, ring: r, n: len(segs) - start})
			}
		}
		if len(segs)-start < 3 {
			return Problem{Ring: r, At: ring[0], What: "ring collapses to fewer than three distinct edges"}, true
		}
		for i := start; i < len(segs); i++ {
			segs[i].of = len(segs) - start
		}
	}
	slices.SortFunc(segs, func(x, y segment) int { return int(min(max(x.minX()-y.minX(), -1), 1)) })
	var active []segment
	for _, s := range segs {
		keep := active[:0]
		for _, t := range active {
			if t.maxX() >= s.minX() {
				keep = append(keep, t)
			}
		}
		active = keep
		for _, t := range active {
			if max(s.a[1], s.b[1]) < min(t.a[1], t.b[1]) || max(t.a[1], t.b[1]) < min(s.a[1], s.b[1]) {
				continue
			}
			m, at := meet(s, t)
			if m == apart {
				continue
			}
			p := orb.Point{float64(at[0]) / gridScale, float64(at[1]) / gridScale}
			if s.ring != t.ring {
				if m == cross {
					return Problem{Ring: max(s.ring, t.ring), At: p, What: fmt.Sprintf("ring crosses ring %d", min(s.ring, t.ring))}, true
				}
				continue // rings may touch at a point
			}
			gap := (s.n - t.n + s.of) % s.of
			adjacent := gap == 1 || gap == s.of-1
			if adjacent && m == touch && (at == s.a || at == s.b) && (at == t.a || at == t.b) {
				continue // consecutive edges share their common position
			}
			return Problem{Ring: s.ring, At: p, What: "ring intersects itself"}, true
		}
		active = append(active, s)
	}
	return Problem{}, false
}

// Repair returns mp made valid, and whether it had to change it: each ring
// that crosses or touches itself is cut at those points into simple loops
// (re-noding), as a buffer(0) would. A loop turning the same way as its
// ring's largest keeps that ring's role; a loop of an outer ring turning
// the other way is a hole where it lies inside a kept outer loop, else a
// lobe of its own (the other half of a bow-tie); loops without area are
// dropped. Positions move to the 1e-6 degree grid only where a crossing
// adds one. mp is left as it is.
func Repair(mp orb.MultiPolygon) (orb.MultiPolygon, bool) {
	if Validate(mp) == nil {
		return mp, false
	}
	out := mp
	for range 8 { // each pass removes the problems it sees; rounding may leave a new one
		var next orb.MultiPolygon
		for _, poly := range out {
			if _, bad := polygonProblem(poly); bad {
				next = append(next, repairPolygon(poly)...)
			} else {
				next = append(next, poly)
			}
		}
		out = next
		if Validate(out) == nil {
			break
		}
	}
	return out, true
}

// repairPolygon re-nodes the rings of poly and rebuilds its polygons.
func repairPolygon(poly orb.Polygon) []orb.Polygon {
	if len(poly) == 0 {
		return nil
	}
	var shells []orb.Ring
	var holes []orb.Ring
	outer := loops(poly[0])
	sign := 0.0
	for _, l := range outer {
		if a := signedRingArea(l); math.Abs(a) > math.Abs(sign) {
			sign = a
		}
	}
	var reversed []orb.Ring
	for _, l := range outer {
		if signedRingArea(l)*sign > 0 {
			shells = append(shells, l)
		} else {
			reversed = append(reversed, l)
		}
	}
	for _, l := range reversed {
		inside := false
		for _, s := range shells {
			if ringContains(s, interiorPoint(l)) {
				inside = true
				break
			}
		}
		if inside {
			holes = append(holes, l)
		} else {
			r := slices.Clone(l)
			slices.Reverse(r)
			shells = append(shells, r)
		}
	}
	for _, h := range poly[1:] {
		holes = append(holes, loops(h)...)
	}
	out := make([]orb.Polygon, len(shells))
	for i, s := range shells {
		out[i] = orb.Polygon{s}
	}
	for _, h := range holes {
		p := interiorPoint(h)
		for i, s := range shells {
			if ringContains(s, p) {
				out[i] = append(out[i], h)
				break
			}
		}
	}
	return out
}

// loops cuts ring at the points where it crosses or touches itself into
// closed loops with area, in grid coordinates.
func loops(ring orb.Ring) []orb.Ring {
	pts := noded(ring)
	var out []orb.Ring
	var stack []gridPoint
	seen := map[gridPoint]int{}
	emit := func(l []gridPoint) {
		r := make(orb.Ring, 0, len(l)+1)
		for _, p := range l {
			r = append(r, orb.Point{float64(p[0]) / gridScale, float64(p[1]) / gridScale})
		}
		r = append(r, r[0])
		if len(r) >= 4 && signedRingArea(r) != 0 {
			out = append(out, r)
		}
	}
	for _, p := range pts[:len(pts)-1] {
		if len(stack) > 0 && stack[len(stack)-1] == p {
			continue
		}
		if j, ok := seen[p]; ok {
			emit(stack[j:])
			for _, q := range stack[j+1:] {
				delete(seen, q)
			}
			stack = stack[:j+1]
			continue
		}
		seen[p] = len(stack)
		stack = append(stack, p)
	}
	emit(stack)
	return out
}

// noded is ring on the grid with every point where two of its edges meet
// added to both edges, so that the ring meets itself only at positions.
func noded(ring orb.Ring) []gridPoint {
	pts := make([]gridPoint, len(ring))
	for i, p := range ring {
		pts[i] = toGrid(p)
	}
	extra := make([][]gridPoint, len(pts)) // points to add inside edge i
	for i := 0; i+1 < len(pts); i++ {
		s := segment{a: pts[i], b: pts[i+1]}
		if s.a == s.b {
			continue
		}
		for j := i + 2; j+1 < len(pts); j++ {
			t := segment{a: pts[j], b: pts[j+1]}
			if t.a == t.b || i == 0 && j+2 == len(pts) || s.maxX() < t.minX() || t.maxX() < s.minX() {
				continue
			}
			m, _ := meet(s, t)
			if m == apart {
				continue
			}
			for _, p := range meetPoints(s, t) {
				extra[i] = append(extra[i], p)
				extra[j] = append(extra[j], p)
			}
		}
	}
	var out []gridPoint
	for i := 0; i+1 < len(pts); i++ {
		out = append(out, pts[i])
		a := pts[i]
		add := extra[i]
		slices.SortFunc(add, func(p, q gridPoint) int { return cmpDist(a, p, q) })
		for _, p := range add {
			if p != out[len(out)-1] && p != pts[i+1] {
				out = append(out, p)
			}
		}
	}
	return append(out, pts[len(pts)-1])
}

// meetPoints are where s and t meet, on the grid: the ends of their
// overlap when collinear, else their one common point.
func meetPoints(s, t segment) []gridPoint {
	if orient(s.a, s.b, t.a) == 0 && orient(s.a, s.b, t.b) == 0 {
		var out []gridPoint
		for _, p := range []gridPoint{t.a, t.b} {
			if onSegment(s.a, s.b, p) {
				out = append(out, p)
			}
		}
		for _, p := range []gridPoint{s.a, s.b} {
			if onSegment(t.a, t.b, p) {
				out = append(out, p)
			}
		}
		return out
	}
	ax, ay := float64(s.a[0]), float64(s.a[1])
	dx, dy := float64(s.b[0])-ax, float64(s.b[1])-ay
	ex, ey := float64(t.b[0]-t.a[0]), float64(t.b[1]-t.a[1])
	den := dx*ey - dy*ex
	if den == 0 {
		return nil
	}
	u := ((float64(t.a[0])-ax)*ey - (float64(t.a[1])-ay)*ex) / den
	return []gridPoint{{int64(math.Round(ax + u*dx)), int64(math.Round(ay + u*dy))}}
}

func cmpDist(a, p, q gridPoint) int {
	d := func(x gridPoint) int64 { return (x[0]-a[0])*(x[0]-a[0]) + (x[1]-a[1])*(x[1]-a[1]) }
	switch dp, dq := d(p), d(q); {
	case dp < dq:
		return -1
	case dp > dq:
		return 1
	}
	return 0
}

// interiorPoint is a point inside a simple ring: the midpoint of a short
// step from the middle of an edge towards its inside.
func interiorPoint(ring orb.Ring) orb.Point {
	side := 1.0
	if signedRingArea(ring) < 0 {
		side = -1
	}
	for i := 0; i+1 < len(ring); i++ {
		a, b := ring[i], ring[i+1]
		dx, dy := b[0]-a[0], b[1]-a[1]
		l := math.Hypot(dx, dy)
		if l == 0 {
			continue
		}
		m := orb.Point{(a[0] + b[0]) / 2, (a[1] + b[1]) / 2}
		for _, step := range []float64{1e-7, 1e-8, 1e-9} {
			p := orb.Point{m[0] - side*dy/l*step, m[1] + side*dx/l*step}
			if ringContains(ring, p) {
				return p
			}
		}
	}
	return ring[0]
}
