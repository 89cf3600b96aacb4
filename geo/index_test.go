package geo

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/paulmach/orb"
)

func rect(x0, y0, x1, y1 float64) orb.Ring {
	return orb.Ring{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}, {x0, y0}}
}

func poly(rings ...orb.Ring) orb.Polygon { return orb.Polygon(rings) }

// checkIndex compares ix with the naive scan over shapes at p and returns
// the index's answer.
func checkIndex(t *testing.T, ix *Index, shapes []Shape, p orb.Point) (string, bool) {
	t.Helper()
	got, ok := ix.Locate(p)
	want, wok := locateNaive(shapes, p)
	if got != want || ok != wok {
		t.Errorf("Locate(%v): got %q %v, naive scan gives %q %v", p, got, ok, want, wok)
	}
	return got, ok
}

func TestIndexSynthetic(t *testing.T) {
	type probe struct {
		p    orb.Point
		want string // "" for outside every shape
	}
	cases := []struct {
		name   string
		shapes []Shape
		probes []probe
	}{
		{"square with a hole", []Shape{
			{"A", orb.MultiPolygon{poly(rect(0, 0, 10, 10), rect(4, 4, 6, 6))}},
		}, []probe{
			{orb.Point{5, 5}, ""},
			{orb.Point{4.5, 5.9}, ""},
			{orb.Point{2, 2}, "A"},
			{orb.Point{8, 5}, "A"},
			{orb.Point{5, 3.9}, "A"},
			{orb.Point{6, 5}, "A"},   // the hole's right edge belongs to the ring
			{orb.Point{4, 5}, ""},    // its left edge to the hole
			{orb.Point{11, 5}, ""},   // right of everything
			{orb.Point{-1, 5}, ""},   // left of everything
			{orb.Point{5, 10.5}, ""}, // above
		}},
		{"multipolygon with an island", []Shape{
			{"B", orb.MultiPolygon{poly(rect(0, 0, 1, 1)), poly(rect(3, 0, 4, 1))}},
		}, []probe{
			{orb.Point{0.5, 0.5}, "B"},
			{orb.Point{3.5, 0.5}, "B"},
			{orb.Point{2, 0.5}, ""},
			{orb.Point{3.5, 1.5}, ""},
		}},
		{"four squares round a shared vertex", []Shape{
			{"SW", orb.MultiPolygon{poly(rect(0, 0, 1, 1))}},
			{"SE", orb.MultiPolygon{poly(rect(1, 0, 2, 1))}},
			{"NW", orb.MultiPolygon{poly(rect(0, 1, 1, 2))}},
			{"NE", orb.MultiPolygon{poly(rect(1, 1, 2, 2))}},
		}, []probe{
			// Half-open: a square holds its lower and left borders.
			{orb.Point{1, 1}, "NE"},
			{orb.Point{1, 0.5}, "SE"},
			{orb.Point{1, 1.5}, "NE"},
			{orb.Point{0.5, 1}, "NW"},
			{orb.Point{1.5, 1}, "NE"},
			{orb.Point{0, 0}, "SW"},
			{orb.Point{2, 0}, ""},
			{orb.Point{0, 2}, ""},
			{orb.Point{2, 2}, ""},
			{orb.Point{1, 0}, "SE"},
			{orb.Point{1, 2}, ""},
		}},
		{"overlaps go to the lowest code", []Shape{
			{"Z", orb.MultiPolygon{poly(rect(0, 0, 100, 100))}},
			{"B", orb.MultiPolygon{poly(rect(10, 10, 30, 30))}},
			{"A", orb.MultiPolygon{poly(rect(20, 20, 40, 40))}},
			{"C", orb.MultiPolygon{poly(rect(25, 25, 26, 26))}},
		}, []probe{
			{orb.Point{50, 50}, "Z"},
			{orb.Point{15, 15}, "B"},
			{orb.Point{25, 25}, "A"},
			{orb.Point{25.5, 25.5}, "A"},
			{orb.Point{35, 35}, "A"},
			{orb.Point{100, 50}, ""},
			{orb.Point{50, -0.001}, ""},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, shapes := range [][]Shape{c.shapes, reversed(c.shapes)} {
				ix := NewIndex(shapes)
				if got, want := ix.Len(), len(shapes); got != want {
					t.Errorf("Len: got %d, want %d", got, want)
				}
				for _, pr := range c.probes {
					got, ok := checkIndex(t, ix, shapes, pr.p)
					if got != pr.want || ok != (pr.want != "") {
						t.Errorf("Locate(%v): got %q %v, want %q", pr.p, got, ok, pr.want)
					}
				}
			}
		})
	}
}

func reversed(s []Shape) []Shape {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// A slanted border shared by two shapes whose rings run opposite ways:
// every point on it is claimed by exactly one of them, the same one each
// time.
func TestIndexSharedBorder(t *testing.T) {
	shapes := []Shape{
		{"lower", orb.MultiPolygon{poly(orb.Ring{{0, 0}, {3, 0}, {3, 1}, {0, 0}})}},
		{"upper", orb.MultiPolygon{poly(orb.Ring{{0, 0}, {3, 1}, {0, 1}, {0, 0}})}},
	}
	ix := NewIndex(shapes)
	for k := range 16 {
		p := orb.Point{3 * float64(k) / 16, float64(k) / 16}
		n := 0
		for _, s := range shapes {
			if polygonsContain(s.Geom, p) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%v is in %d shapes, want 1", p, n)
		}
		first, ok := checkIndex(t, ix, shapes, p)
		if !ok {
			t.Errorf("Locate(%v): found nothing", p)
		}
		for range 3 {
			if got, _ := ix.Locate(p); got != first {
				t.Errorf("Locate(%v): got %q, then %q", p, first, got)
			}
		}
	}
}

// Points computed to lie on an edge are often off it by a rounding, to
// one side for one orientation of the edge and to the other for the
// other; the index must round as the naive scan does.
func TestIndexPointsOnEdges(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 500 {
		a, b := orb.Point{rng.Float64(), rng.Float64()}, orb.Point{rng.Float64(), rng.Float64()}
		m, n := orb.Point{(a[0] + b[0]) / 2, (a[1] + b[1]) / 2}, orb.Point{b[1] - a[1], a[0] - b[0]}
		shapes := []Shape{
			{"L", orb.MultiPolygon{poly(orb.Ring{a, b, {m[0] - n[0], m[1] - n[1]}, a})}},
			{"R", orb.MultiPolygon{poly(orb.Ring{a, {m[0] + n[0], m[1] + n[1]}, b, a})}},
		}
		ix := NewIndex(shapes)
		for range 8 {
			f := rng.Float64()
			checkIndex(t, ix, shapes, orb.Point{a[0] + f*(b[0]-a[0]), a[1] + f*(b[1]-a[1])})
		}
	}
}

func TestIndexEdgeCases(t *testing.T) {
	f := func(ix *Index, p orb.Point) {
		t.Helper()
		if got, ok := ix.Locate(p); ok {
			t.Errorf("Locate(%v): got %q, want nothing", p, got)
		}
	}
	empty := NewIndex(nil)
	if got := empty.Len(); got != 0 {
		t.Errorf("Len of an empty index: got %d, want 0", got)
	}
	f(empty, orb.Point{0, 0})
	degenerate := NewIndex([]Shape{{"D", orb.MultiPolygon{poly(orb.Ring{{1, 1}, {1, 1}, {1, 1}, {1, 1}})}}, {"E", nil}})
	f(degenerate, orb.Point{1, 1})
	f(degenerate, orb.Point{0, 0})
	sq := NewIndex([]Shape{{"S", orb.MultiPolygon{poly(rect(0, 0, 1, 1))}}})
	f(sq, orb.Point{math.NaN(), 0.5})
	f(sq, orb.Point{0.5, math.Inf(1)})
	f(sq, orb.Point{1e300, 0.5})

	// A hole that encloses its outer ring, as the crossing rule has it.
	inverted := []Shape{{"I", orb.MultiPolygon{poly(rect(4, 4, 6, 6), rect(0, 0, 10, 10))}}}
	iix := NewIndex(inverted)
	for _, p := range []orb.Point{{1, 1}, {5, 5}, {9.5, 0.5}, {11, 5}} {
		checkIndex(t, iix, inverted, p)
	}

	// Rings need not repeat their first position.
	open := []Shape{{"O", orb.MultiPolygon{poly(orb.Ring{{0, 0}, {2, 0}, {2, 2}, {0, 2}})}}}
	oix := NewIndex(open)
	for _, p := range []orb.Point{{1, 1}, {1.99, 1.99}, {2, 1}, {0, 1}, {1, 2}} {
		checkIndex(t, oix, open, p)
	}
}

func TestIndexNoAllocs(t *testing.T) {
	shapes := communes(t)
	ix := NewIndex(shapes)
	pts := randomPoints(rand.New(rand.NewPCG(3, 4)), 1000, vnBounds)
	i := 0
	if n := testing.AllocsPerRun(2000, func() {
		ix.Locate(pts[i%len(pts)])
		i++
	}); n != 0 {
		t.Errorf("Locate allocates %v times per call, want 0", n)
	}
}

func TestIndexConcurrent(t *testing.T) {
	shapes := levelShapes(t, "jp-2021", "municipality")
	ix := NewIndex(shapes)
	pts := randomPoints(rand.New(rand.NewPCG(9, 10)), 2000, kobeBounds)
	want := make([]string, len(pts))
	for i, p := range pts {
		want[i], _ = ix.Locate(p)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range pts {
				i = (i + g*len(pts)/4) % len(pts)
				if got, _ := ix.Locate(pts[i]); got != want[i] {
					t.Errorf("Locate(%v) in goroutine %d: got %q, want %q", pts[i], g, got, want[i])
				}
			}
		})
	}
	wg.Wait()
}

// Random shapes: stars with many spikes, some with holes, overlapping each
// other, probed at random, on their vertices and on edge midpoints.
func TestIndexRandomShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	star := func(cx, cy, r float64, n int, reverse bool) orb.Ring {
		ring := make(orb.Ring, 0, n+1)
		for i := range n {
			a := 2 * math.Pi * float64(i) / float64(n)
			d := r * (0.3 + 0.7*rng.Float64())
			// Snap to a grid so that neighbours share exact positions.
			ring = append(ring, orb.Point{math.Round((cx+d*math.Cos(a))*64) / 64, math.Round((cy+d*math.Sin(a))*64) / 64})
		}
		if reverse {
			slices.Reverse(ring)
		}
		return append(ring, ring[0])
	}
	var shapes []Shape
	for i := range 60 {
		cx, cy := rng.Float64()*10, rng.Float64()*10
		var mp orb.MultiPolygon
		for range 1 + rng.IntN(3) {
			p := orb.Polygon{star(cx, cy, 0.5+rng.Float64()*2, 10+rng.IntN(120), rng.IntN(2) == 0)}
			if rng.IntN(3) == 0 {
				p = append(p, star(cx, cy, 0.2, 12, false))
			}
			mp = append(mp, p)
			cx, cy = cx+rng.Float64()-0.5, cy+rng.Float64()-0.5
		}
		shapes = append(shapes, Shape{Code: string(rune('A'+i%26)) + string(rune('a'+i/26)), Geom: mp})
	}
	ix := NewIndex(shapes)
	for _, p := range randomPoints(rng, 10000, orb.Bound{Min: orb.Point{-3, -3}, Max: orb.Point{13, 13}}) {
		checkIndex(t, ix, shapes, p)
	}
	for _, s := range shapes {
		for _, pl := range s.Geom {
			for _, r := range pl {
				for i := 1; i < len(r); i++ {
					checkIndex(t, ix, shapes, r[i])
					checkIndex(t, ix, shapes, orb.Point{(r[i][0] + r[i-1][0]) / 2, (r[i][1] + r[i-1][1]) / 2})
				}
			}
		}
	}
}

var (
	vnBounds    = orb.Bound{Min: orb.Point{102.14, 8.18}, Max: orb.Point{109.47, 23.39}}
	tokyoBounds = orb.Bound{Min: orb.Point{138.9, 35.5}, Max: orb.Point{139.95, 35.9}}
	kobeBounds  = orb.Bound{Min: orb.Point{134.9, 34.6}, Max: orb.Point{135.3, 34.8}}
)

func randomPoints(rng *rand.Rand, n int, b orb.Bound) []orb.Point {
	out := make([]orb.Point, n)
	for i := range out {
		out[i] = orb.Point{b.Min[0] + rng.Float64()*(b.Max[0]-b.Min[0]), b.Min[1] + rng.Float64()*(b.Max[1]-b.Min[1])}
	}
	return out
}

// borderPoints picks n points near the shapes' borders: most are vertices
// moved by up to 1e-5 degree, a tenth are vertices themselves and a tenth
// lie on edges, as near as floating point gets.
func borderPoints(rng *rand.Rand, n int, shapes []Shape) []orb.Point {
	var rings []orb.Ring
	for _, s := range shapes {
		for _, pl := range s.Geom {
			rings = append(rings, pl...)
		}
	}
	out := make([]orb.Point, n)
	for i := range out {
		r := rings[rng.IntN(len(rings))]
		k := 1 + rng.IntN(len(r)-1)
		p, q := r[k], r[k-1]
		switch i % 10 {
		case 0:
		case 1:
			t := rng.Float64()
			p = orb.Point{p[0] + t*(q[0]-p[0]), p[1] + t*(q[1]-p[1])}
		default:
			p[0] += (rng.Float64()*2 - 1) * 1e-5
			p[1] += (rng.Float64()*2 - 1) * 1e-5
		}
		out[i] = p
	}
	return out
}

func levelShapes(t testing.TB, hierarchy, level string) []Shape {
	t.Helper()
	r, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, ok := r.Hierarchy(hierarchy)
	if !ok {
		t.Fatalf("no hierarchy %s", hierarchy)
	}
	var out []Shape
	for _, u := range h.Select(level, "") {
		g, ok := h.Geometry(u.Code)
		if !ok {
			t.Fatalf("%s %s has no geometry", hierarchy, u.Code)
		}
		out = append(out, Shape{Code: u.Code, Geom: g})
	}
	return out
}

func communes(t testing.TB) []Shape { return levelShapes(t, "vn-2025", "commune") }

// TestIndexAgreesOnRealData compares the index with the naive scan. The
// scan is given only the shapes whose bounding box holds the point, which
// changes nothing but its speed.
func TestIndexAgreesOnRealData(t *testing.T) {
	cases := []struct {
		hierarchy, level string
		bounds           []orb.Bound
		random, border   int
	}{
		{"vn-2025", "commune", []orb.Bound{vnBounds}, 5000, 5000},
		{"vn-2025", "province", []orb.Bound{vnBounds}, 2000, 2000},
		{"jp-2021", "municipality", []orb.Bound{tokyoBounds, kobeBounds}, 2000, 2000},
	}
	for _, c := range cases {
		t.Run(c.hierarchy+"/"+c.level, func(t *testing.T) {
			shapes := levelShapes(t, c.hierarchy, c.level)
			ix := NewIndex(shapes)
			bounds := make([]orb.Bound, len(shapes))
			for i, s := range shapes {
				bounds[i] = s.Geom.Bound().Pad(1e-9)
			}
			rng := rand.New(rand.NewPCG(7, 8))
			var pts []orb.Point
			for _, b := range c.bounds {
				pts = append(pts, randomPoints(rng, c.random, b)...)
			}
			pts = append(pts, borderPoints(rng, c.border, shapes)...)
			var near []Shape
			found, disagree := 0, 0
			for _, p := range pts {
				near = near[:0]
				for i, s := range shapes {
					if bounds[i].Contains(p) {
						near = append(near, s)
					}
				}
				got, ok := ix.Locate(p)
				want, wok := locateNaive(near, p)
				if got != want || ok != wok {
					if disagree++; disagree <= 10 {
						t.Errorf("Locate(%v): got %q %v, naive scan gives %q %v", p, got, ok, want, wok)
					}
				}
				if ok {
					found++
				}
			}
			if disagree > 0 {
				t.Errorf("%d of %d points disagree", disagree, len(pts))
			}
			// Guards against probes that all miss.
			if found < len(pts)/4 {
				t.Errorf("only %d of %d points fall in a shape", found, len(pts))
			}
		})
	}
}

func TestLocateKnownPlaces(t *testing.T) {
	r, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	codes := func(us []Unit) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.Code)
		}
		return out
	}
	f := func(hierarchy string, lat, lon float64, want []string) {
		t.Helper()
		h, _ := r.Hierarchy(hierarchy)
		if got := codes(h.Locate(orb.Point{lon, lat})); !slices.Equal(got, want) {
			t.Errorf("%s: Locate(lat %v, lon %v): got %v, want %v", hierarchy, lat, lon, got, want)
		}
	}
	f("vn-2025", 10.7769, 106.7009, []string{"79", "26740"}) // Sài Gòn, Hồ Chí Minh City
	f("vn-2025", 21.0285, 105.8542, []string{"01", "00070"}) // Hoàn Kiếm, Hà Nội
	f("vn-2025", 12, 112, nil)                               // South China Sea
	f("vn-2025", 0, 0, nil)
	f("jp-2021", 34.69, 135.19, []string{"28", "28110"})     // Chūō-ku, Kobe
	f("jp-2021", 35.6895, 139.6917, []string{"13", "13104"}) // Shinjuku, Tokyo

	h, _ := r.Hierarchy("vn-2025")
	ix := h.LevelIndex("commune")
	if ix == nil || ix.Len() != 3321 {
		t.Fatalf("LevelIndex(commune): got %v, want an index over 3321 communes", ix)
	}
	if got, ok := ix.Locate(orb.Point{106.7009, 10.7769}); got != "26740" || !ok {
		t.Errorf("commune index: got %q %v, want 26740", got, ok)
	}
}
