package geo

import (
	"container/list"
	"math"
	"slices"
	"sync"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/simplify"
)

// MaxZoom is the deepest web-map zoom a layer is drawn at.
const MaxZoom = 22

// FullDetailZoom is the first zoom drawn with the boundaries as carried:
// half a pixel there is about a metre, below what the carried boundaries,
// simplified at build time, resolve.
const FullDetailZoom = 16

// DefaultGeometryCacheVertices bounds what a LayerGeometry keeps of
// simplified boundaries: about 64 MiB of positions.
const DefaultGeometryCacheVertices = 4 << 20

// Tolerance is the Douglas–Peucker tolerance, in degrees, that keeps a
// simplified boundary within half a pixel of a 256-pixel tile at zoom z.
func Tolerance(z int) float64 {
	return 360 / (256 * math.Exp2(float64(z))) / 2
}

// Simplify returns a simplified copy of mp for a map at zoom z; mp is left
// as it is. Holes and polygons that collapse below a pixel are dropped; the
// result is nil when the whole boundary does.
func Simplify(mp orb.MultiPolygon, z int) orb.MultiPolygon {
	s := simplify.DouglasPeucker(Tolerance(z))
	out := make(orb.MultiPolygon, 0, len(mp))
	for _, poly := range mp {
		var p orb.Polygon
		for i, ring := range poly {
			// The simplifier works in place; the boundary is shared.
			r := s.Ring(slices.Clone(ring))
			if len(r) < 4 || signedRingArea(r) == 0 {
				if i == 0 {
					break // without its exterior the polygon is gone, holes too
				}
				continue
			}
			p = append(p, r)
		}
		if len(p) > 0 {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// signedRingArea is the ring's signed area by the surveyor's formula, in the
// square of its coordinates' unit.
func signedRingArea(r orb.Ring) float64 {
	var a float64
	for i := 0; i+1 < len(r); i++ {
		a += r[i][0]*r[i+1][1] - r[i+1][0]*r[i][1]
	}
	return a / 2
}

func vertexCount(mp orb.MultiPolygon) int {
	n := 0
	for _, p := range mp {
		for _, r := range p {
			n += len(r)
		}
	}
	return n
}

// LayerGeometry serves a hierarchy's boundaries drawn for a map zoom. What
// it simplifies is computed on first use and kept, within a bound, because
// every tile and page of a layer at one zoom asks for the same shapes.
//
// Concurrency: safe for concurrent use.
type LayerGeometry struct {
	h *Hierarchy

	indexOnce sync.Once
	byLevel   map[string][]unitBox // units with boundaries, by level, ordered by code

	mu    sync.Mutex
	cache *lru[zoomKey, orb.MultiPolygon]
}

type unitBox struct {
	code  string
	bound orb.Bound
}

type zoomKey struct {
	code string
	z    int
}

// NewLayerGeometry serves h's boundaries, keeping simplified shapes of at
// most maxVertices positions in all (DefaultGeometryCacheVertices when not
// positive).
func NewLayerGeometry(h *Hierarchy, maxVertices int) *LayerGeometry {
	if maxVertices <= 0 {
		maxVertices = DefaultGeometryCacheVertices
	}
	return &LayerGeometry{h: h, cache: newLRU[zoomKey, orb.MultiPolygon](maxVertices, 1<<17)}
}

// Geometry returns unit code's boundary drawn for zoom z: simplified below
// FullDetailZoom, as carried from there on or when z is negative. A unit
// smaller than a pixel is drawn as its bounding box rather than vanishing,
// so a choropleth still shows it. The geometry is shared: callers must not
// modify it.
func (g *LayerGeometry) Geometry(code string, z int) (orb.MultiPolygon, bool) {
	full, ok := g.h.Geometry(code)
	if !ok || z < 0 || z >= FullDetailZoom {
		return full, ok
	}
	k := zoomKey{code, z}
	g.mu.Lock()
	mp, hit := g.cache.get(k)
	g.mu.Unlock()
	if hit {
		return mp, true
	}
	mp = Simplify(full, z)
	if mp == nil {
		b, _ := g.h.Bound(code)
		mp = orb.MultiPolygon{b.ToPolygon()}
	}
	// An entry costs its positions plus a little for its bookkeeping.
	n := vertexCount(mp)
	if n == vertexCount(full) {
		mp, n = full, 0 // nothing dropped: share the carried shape
	}
	g.mu.Lock()
	g.cache.add(k, mp, n+8)
	g.mu.Unlock()
	return mp, true
}

// Intersecting returns the codes of the units of level whose bounding box
// intersects b, ordered by code. An empty level answers nil.
func (g *LayerGeometry) Intersecting(level string, b orb.Bound) []string {
	g.indexOnce.Do(g.buildIndex)
	var out []string
	for _, u := range g.byLevel[level] {
		if u.bound.Intersects(b) {
			out = append(out, u.code)
		}
	}
	return out
}

func (g *LayerGeometry) buildIndex() {
	g.byLevel = make(map[string][]unitBox)
	for _, l := range g.h.GeometryLevels() {
		units := g.h.Select(l, "")
		list := make([]unitBox, 0, len(units))
		for _, u := range units {
			b, _ := g.h.Bound(u.Code)
			list = append(list, unitBox{u.Code, b})
		}
		g.byLevel[l] = list // Select orders by code
	}
}

// lru keeps the most recently used values within a total cost and a
// number of entries. It does no locking of its own.
type lru[K comparable, V any] struct {
	maxCost, maxEntries int
	cost                int
	order               *list.List // front: most recent
	items               map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

func newLRU[K comparable, V any](maxCost, maxEntries int) *lru[K, V] {
	return &lru[K, V]{maxCost: maxCost, maxEntries: maxEntries, order: list.New(), items: make(map[K]*list.Element)}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	e, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry[K, V]).val, true
}

// add stores v unless its cost alone exceeds the bound, evicting the least
// recently used entries to make room.
func (c *lru[K, V]) add(k K, v V, cost int) {
	if cost > c.maxCost {
		return
	}
	if e, ok := c.items[k]; ok {
		c.cost -= e.Value.(*lruEntry[K, V]).cost
		c.order.Remove(e)
		delete(c.items, k)
	}
	for c.order.Len() > 0 && (c.cost+cost > c.maxCost || c.order.Len() >= c.maxEntries) {
		old := c.order.Back()
		ent := old.Value.(*lruEntry[K, V])
		c.cost -= ent.cost
		c.order.Remove(old)
		delete(c.items, ent.key)
	}
	c.items[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v, cost: cost})
	c.cost += cost
}

func (c *lru[K, V]) len() int { return c.order.Len() }
