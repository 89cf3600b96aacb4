package geo

import (
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/paulmach/orb"
)

func vn2025(t testing.TB) *Hierarchy {
	t.Helper()
	r, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, ok := r.Hierarchy("vn-2025")
	if !ok {
		t.Fatal("vn-2025 missing")
	}
	return h
}

func TestTolerance(t *testing.T) {
	f := func(z int, want float64) {
		t.Helper()
		if got := Tolerance(z); math.Abs(got-want) > 1e-15 {
			t.Errorf("Tolerance(%d): got %g, want %g", z, got, want)
		}
	}
	f(0, 360.0/256/2)
	f(1, 360.0/512/2)
	f(10, 360.0/(256*1024)/2)
}

func checkRings(t *testing.T, name string, mp orb.MultiPolygon) {
	t.Helper()
	for i, p := range mp {
		for j, r := range p {
			if len(r) < 4 || r[0] != r[len(r)-1] {
				t.Errorf("%s: polygon %d ring %d has %d positions, closed %v; want a closed ring of at least 4", name, i, j, len(r), r[0] == r[len(r)-1])
			}
		}
	}
}

func TestSimplifyReducesWithoutTouchingInput(t *testing.T) {
	h := vn2025(t)
	full, ok := h.Geometry("26740")
	if !ok {
		t.Fatal("no geometry for 26740")
	}
	before := orb.Clone(full)
	prev := vertexCount(full)
	for _, z := range []int{12, 10, 8} {
		got := Simplify(full, z)
		if got == nil {
			t.Fatalf("zoom %d: got nil, want a shape", z)
		}
		checkRings(t, "26740", got)
		if n := vertexCount(got); n > prev {
			t.Errorf("zoom %d: got %d positions, want at most %d (the next deeper zoom's)", z, n, prev)
		} else {
			prev = n
		}
	}
	if prev >= vertexCount(full) {
		t.Errorf("zoom 8: got %d positions, want fewer than the full %d", prev, vertexCount(full))
	}
	if !reflect.DeepEqual(full, before) {
		t.Error("Simplify modified the shared boundary")
	}
}

func TestSimplifyDropsWhatCollapses(t *testing.T) {
	square := func(x, y, d float64) orb.Ring {
		return orb.Ring{{x, y}, {x + d, y}, {x + d, y + d}, {x, y + d}, {x, y}}
	}
	big := orb.Polygon{square(0, 0, 10), square(4, 4, 1e-4)} // a hole far below a pixel at zoom 5
	tiny := orb.Polygon{square(20, 20, 1e-4)}
	got := Simplify(orb.MultiPolygon{big, tiny}, 5)
	if len(got) != 1 || len(got[0]) != 1 {
		t.Fatalf("got %d polygons (first with %d rings), want the big one without its hole", len(got), len(got[0]))
	}
	if got := Simplify(orb.MultiPolygon{tiny}, 0); got != nil {
		t.Errorf("tiny square at zoom 0: got %v, want nil", got)
	}
}

func TestLayerGeometry(t *testing.T) {
	h := vn2025(t)
	g := NewLayerGeometry(h, 0)
	full, _ := h.Geometry("26740")
	f := func(code string, z int, want orb.MultiPolygon) {
		t.Helper()
		got, ok := g.Geometry(code, z)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Geometry(%s, %d): got %d positions (ok %v), want %d", code, z, vertexCount(got), ok, vertexCount(want))
		}
	}
	f("26740", -1, full)
	f("26740", FullDetailZoom, full)
	f("26740", MaxZoom, full)
	f("26740", 9, Simplify(full, 9))
	f("26740", 9, Simplify(full, 9)) // from the cache
	// A ward far below a pixel at zoom 0 is drawn as its bounding box.
	b, _ := h.Bound("26740")
	f("26740", 0, orb.MultiPolygon{b.ToPolygon()})
	if _, ok := g.Geometry("99999", 5); ok {
		t.Error("Geometry of an unknown code: got ok, want false")
	}

	hcmc, _ := h.Bound("79")
	codes := g.Intersecting("commune", hcmc)
	if !slices.Contains(codes, "26740") || !slices.IsSorted(codes) {
		t.Errorf("Intersecting(commune, HCMC): got %d codes, sorted %v, want 26740 among sorted codes", len(codes), slices.IsSorted(codes))
	}
	if got := g.Intersecting("district", hcmc); got != nil {
		t.Errorf("Intersecting of a level without boundaries: got %v, want nil", got)
	}
}

func TestLayerGeometryConcurrentAndBounded(t *testing.T) {
	h := vn2025(t)
	const budget = 20000
	g := NewLayerGeometry(h, budget)
	codes := h.Select("commune", "79")
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, u := range codes {
				z := 6 + (i+w)%6
				got, ok := g.Geometry(u.Code, z)
				full, _ := h.Geometry(u.Code)
				if want := Simplify(full, z); !ok || want != nil && !reflect.DeepEqual(got, want) {
					t.Errorf("Geometry(%s, %d) under concurrency: got %d positions, want %d", u.Code, z, vertexCount(got), vertexCount(want))
					return
				}
			}
		}()
	}
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cache.cost > budget {
		t.Errorf("cache holds %d positions, want at most %d", g.cache.cost, budget)
	}
}

func TestLRU(t *testing.T) {
	c := newLRU[string, int](10, 3)
	c.add("a", 1, 4)
	c.add("b", 2, 4)
	c.get("a") // b is now the least recently used
	c.add("c", 3, 4)
	f := func(k string, want bool) {
		t.Helper()
		if _, got := c.get(k); got != want {
			t.Errorf("get(%q): got present %v, want %v", k, got, want)
		}
	}
	f("b", false)
	f("a", true)
	f("c", true)
	c.add("huge", 4, 11) // larger than the whole cache: not kept, nothing evicted
	f("huge", false)
	f("a", true)
	c.add("d", 5, 1)
	c.add("e", 6, 1) // four entries would exceed the count bound
	if got, want := c.len(), 3; got != want {
		t.Errorf("len: got %d, want %d", got, want)
	}
}
