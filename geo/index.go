package geo

import (
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/paulmach/orb"
)

// Index answers which of a set of shapes contains a point. A shape contains
// p when one of its polygons does by the crossing-number rule over all of
// the polygon's rings, so rings after the first are holes: an edge a–b
// counts when (a.y > p.y) != (b.y > p.y) and p lies left of where the edge
// crosses p.y. Under this half-open rule a point on a border that two
// shapes share edge for edge belongs to exactly one of them. Where shapes
// overlap, the lowest code wins. The answers are those of testing every
// shape in turn, only faster.
//
// An Index is immutable and safe for concurrent use.
type Index struct {
	codes []string // by shape id; ids follow code order, so the lowest id wins

	// A quadtree over the square [minX, maxX) × [minY, maxY), addressed by
	// coordBits-bit integer coordinates. Its nodes down to depth topBits
	// are copied into grid, so that a lookup starts there.
	minX, minY, maxX, maxY, scale float64
	topBits                       uint
	grid                          []uint32
	nodes                         []uint32 // tag | payload
	lists                         []uint32 // per candidate leaf: n, n ids, fallback id+1 (0: none)

	// Each shape's non-horizontal edges are bucketed by horizontal bands,
	// so the exact test only looks at edges that can cross the ray at p.y.
	pts    []orb.Point // every ring, closed; edge i runs from pts[i] to pts[i-1]
	bands  []bands     // by shape id
	starts []uint32    // band → its first entry in refs; bands are consecutive
	refs   []uint32    // edge i, with newPolygon set where a band enters a polygon
}

type bands struct {
	y0, inv float64 // band of y: (y - y0) * inv
	first   uint32  // in starts
	n       uint32
}

const (
	coordBits = 30
	// A cell with more than leafEdges edges is split. Candidate leaves are
	// no wider than the shapes' area over perimeter (a quarter of a
	// square's side) over listWidth, which leaves a few percent of lookups
	// to the exact test, yet no narrower than listEdges average edges,
	// which bounds their number by the edges'. Where many edges meet,
	// cells go at most finer levels deeper.
	leafEdges = 6
	listWidth = 8
	listEdges = 2
	finer     = 7
	maxDepth  = coordBits - 4
	topMax    = 10 // the grid has at most 4^topMax cells
	bandEdges = 4  // edges per band, on average over a shape

	tagMask     = 3 << 30
	payloadMask = 1<<30 - 1
	tagEmpty    = 0 << 30
	tagFull     = 1 << 30 // payload: shape id
	tagList     = 2 << 30 // payload: offset in lists
	tagInner    = 3 << 30 // payload: first of four children, ordered y bit, x bit

	newPolygon = 1 << 31
	none       = math.MaxUint32
)

// NewIndex builds an index over shapes. The shapes are not kept.
func NewIndex(shapes []Shape) *Index {
	order := make([]int, len(shapes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(shapes[a].Code, shapes[b].Code) })
	ix := &Index{codes: make([]string, len(shapes)), bands: make([]bands, len(shapes)), starts: []uint32{0}}
	b := &builder{ix: ix, bound: orb.Bound{Min: orb.Point{math.Inf(1), math.Inf(1)}, Max: orb.Point{math.Inf(-1), math.Inf(-1)}}}
	n := 0
	for _, s := range shapes {
		for _, p := range s.Geom {
			for _, r := range p {
				n += len(r) + 1 // and a closing position
			}
		}
	}
	ix.pts = make([]orb.Point, 0, n)
	ix.refs = make([]uint32, 0, 2*n) // most edges are in one band or two
	edges := make([]uint32, 0, n)    // all edges, shape by shape, for the quadtree
	var items []item
	for id, i := range order {
		ix.codes[id] = shapes[i].Code
		lo := len(edges)
		edges = b.addShape(uint32(id), shapes[i].Geom, edges)
		if len(edges) > lo {
			items = append(items, item{id: uint32(id), lo: lo, hi: len(edges)})
		}
	}
	if len(items) == 0 {
		return ix // maxX == minX: Locate finds nothing
	}
	bound := b.bound
	side := max(bound.Max[0]-bound.Min[0], bound.Max[1]-bound.Min[1])
	// Cells are tested against edges with this margin, far above the
	// rounding in mapping a point to its cell or in the crossing test.
	b.eps = 1e-9 * max(1, side)
	side += 4 * b.eps
	ix.minX, ix.minY = bound.Min[0]-2*b.eps, bound.Min[1]-2*b.eps
	ix.maxX, ix.maxY = ix.minX+side, ix.minY+side
	ix.scale = (1 << coordBits) / side
	width := max(b.area/b.perimeter/listWidth, listEdges*b.perimeter/float64(len(edges)))
	for b.listDepth < maxDepth-finer && side/float64(uint64(1)<<b.listDepth) > width {
		b.listDepth++
	}

	b.edges = make([][4][]uint32, b.listDepth+finer+1)
	b.items = make([][4][]item, b.listDepth+finer+1)
	b.edges[0][0] = edges
	// Sized as the communes of vn-2025 need, to spare the copies of growth.
	ix.nodes = append(make([]uint32, 0, 2*len(edges)), 0)
	ix.lists = make([]uint32, 0, 5*len(edges)/2)
	b.build(0, 0, 0, 0, 0, items, none)

	for ix.topBits < topMax && 1<<(2*(ix.topBits+1)) <= len(ix.nodes) {
		ix.topBits++
	}
	ix.grid = make([]uint32, 1<<(2*ix.topBits))
	ix.flatten(ix.nodes[0], 0, 0, 0)
	ix.nodes, ix.lists, ix.refs = trim(ix.nodes), trim(ix.lists), trim(ix.refs)
	return ix
}

// trim drops the spare room of a slice sized by an estimate.
func trim(s []uint32) []uint32 {
	if cap(s)-len(s) > len(s)/4 {
		return slices.Clone(s)
	}
	return s
}

// Len is the number of shapes.
func (ix *Index) Len() int { return len(ix.codes) }

// Locate returns the code of the shape containing p; where several do, the
// lowest code.
func (ix *Index) Locate(p orb.Point) (string, bool) {
	x, y := p[0], p[1]
	if !(x >= ix.minX && x < ix.maxX && y >= ix.minY && y < ix.maxY) {
		return "", false
	}
	cx, cy := ix.cell(x, ix.minX), ix.cell(y, ix.minY)
	bit := coordBits - ix.topBits
	n := ix.grid[(cy>>bit)<<ix.topBits|cx>>bit]
	for n&tagMask == tagInner {
		bit--
		n = ix.nodes[n&payloadMask+(cy>>bit&1)<<1+(cx>>bit&1)]
	}
	switch n & tagMask {
	case tagFull:
		return ix.codes[n&payloadMask], true
	case tagList:
		l := ix.lists[n&payloadMask:]
		c := l[0]
		for _, id := range l[1 : 1+c] {
			if ix.contains(id, x, y) {
				return ix.codes[id], true
			}
		}
		if fb := l[1+c]; fb != 0 {
			return ix.codes[fb-1], true
		}
	}
	return "", false
}

// cell maps a coordinate to its integer cell coordinate, given the
// quadtree's lower bound along that axis.
func (ix *Index) cell(v, lo float64) uint32 {
	f := (v - lo) * ix.scale
	switch {
	case !(f >= 0):
		return 0
	case f >= 1<<coordBits:
		return 1<<coordBits - 1
	}
	return uint32(f)
}

// contains is the crossing test of shape id over the edges of p.y's band.
func (ix *Index) contains(id uint32, x, y float64) bool {
	b := &ix.bands[id]
	k := b.first + band(y, b)
	in := false
	for _, e := range ix.refs[ix.starts[k]:ix.starts[k+1]] {
		if e&newPolygon != 0 && in {
			return true
		}
		i := e &^ newPolygon
		if crosses(ix.pts[i], ix.pts[i-1], x, y) {
			in = !in
		}
	}
	return in
}

// band is monotonic in y, so an edge filed from the band of its lower end
// to that of its upper end is in the band of every y it can cross.
func band(y float64, b *bands) uint32 {
	f := (y - b.y0) * b.inv
	switch {
	case !(f >= 0):
		return 0
	case f >= float64(b.n):
		return b.n - 1
	}
	return uint32(f)
}

// crosses is the one crossing test of both the index and the naive scan,
// so that they round alike for points on an edge.
func crosses(a, b orb.Point, x, y float64) bool {
	return (a[1] > y) != (b[1] > y) && x < (b[0]-a[0])*(y-a[1])/(b[1]-a[1])+a[0]
}

type item struct {
	id     uint32
	lo, hi int // in builder.edges at the cell's depth and quadrant
}

type builder struct {
	ix        *Index
	eps       float64
	listDepth uint // candidate leaves are this deep or deeper
	// Over every edge, as addShape finds them: orb's bounds of a polygon
	// are those of its first ring only.
	bound           orb.Bound
	area, perimeter float64
	edges           [][4][]uint32 // by depth and quadrant: the edges of the cells being built
	items           [][4][]item

	bandEdges []bandEdge
	counts    []uint32
	last      []int32
}

type bandEdge struct {
	i      uint32
	poly   int32
	lo, hi float64
}

// addShape appends the shape's rings to pts and files its edges in bands.
// It returns edges with the shape's non-degenerate edges appended.
func (b *builder) addShape(id uint32, g orb.MultiPolygon, edges []uint32) []uint32 {
	ix := b.ix
	be := b.bandEdges[:0]
	y0, y1 := math.Inf(1), math.Inf(-1)
	for pi, poly := range g {
		a := 0.0
		for j, r := range poly {
			if len(r) == 0 {
				continue
			}
			base := len(ix.pts)
			ix.pts = append(ix.pts, r...)
			if r[0] != r[len(r)-1] {
				ix.pts = append(ix.pts, r[0])
			}
			ra := 0.0
			for i := base + 1; i < len(ix.pts); i++ {
				p, q := ix.pts[i], ix.pts[i-1]
				if p == q {
					continue
				}
				edges = append(edges, uint32(i))
				ra += (q[0] - p[0]) * (q[1] + p[1])
				b.perimeter += math.Hypot(p[0]-q[0], p[1]-q[1])
				b.bound = b.bound.Extend(p).Extend(q)
				if p[1] != q[1] { // a horizontal edge never counts
					lo, hi := min(p[1], q[1]), max(p[1], q[1])
					be = append(be, bandEdge{i: uint32(i), poly: int32(pi), lo: lo, hi: hi})
					y0, y1 = min(y0, lo), max(y1, hi)
				}
			}
			if j == 0 {
				a += math.Abs(ra) / 2
			} else {
				a -= math.Abs(ra) / 2
			}
		}
		b.area += max(a, 0)
	}
	b.bandEdges = be
	bs := bands{first: uint32(len(ix.starts) - 1), n: uint32(max(1, len(be)/bandEdges))}
	if len(be) > 0 {
		bs.y0, bs.inv = y0, float64(bs.n)/(y1-y0)
	}
	ix.bands[id] = bs
	b.counts = slices.Grow(b.counts[:0], int(bs.n))[:bs.n]
	clear(b.counts)
	for _, e := range be {
		for k := band(e.lo, &bs); k <= band(e.hi, &bs); k++ {
			b.counts[k]++
		}
	}
	at := len(ix.refs)
	for _, c := range b.counts {
		at += int(c)
		ix.starts = append(ix.starts, uint32(at))
	}
	ix.refs = slices.Grow(ix.refs, at-len(ix.refs))[:at]
	// Bands fill in edge order, so a polygon's edges stay together in each.
	for k := range b.counts {
		b.counts[k] = ix.starts[bs.first+uint32(k)]
	}
	b.last = slices.Grow(b.last[:0], int(bs.n))[:bs.n]
	for k := range b.last {
		b.last[k] = -1
	}
	for _, e := range be {
		for k := band(e.lo, &bs); k <= band(e.hi, &bs); k++ {
			r := e.i
			if b.last[k] != e.poly {
				r |= newPolygon
				b.last[k] = e.poly
			}
			ix.refs[b.counts[k]] = r
			b.counts[k]++
		}
	}
	return edges
}

// build fills node, the cell of size 2^(coordBits-depth) at (cx, cy),
// from items, the shapes with edges in it in id order, and fb, the lowest
// shape that covers it (none if none does).
func (b *builder) build(node int, depth uint, cx, cy, quadrant uint32, items []item, fb uint32) {
	ix := b.ix
	if len(items) == 0 {
		if fb == none {
			ix.nodes[node] = tagEmpty
		} else {
			ix.nodes[node] = tagFull | fb
		}
		return
	}
	total := 0
	for _, it := range items {
		total += it.hi - it.lo
	}
	if total <= leafEdges && depth >= b.listDepth || depth == b.listDepth+finer {
		ix.nodes[node] = tagList | uint32(len(ix.lists))
		ix.lists = append(ix.lists, uint32(len(items)))
		for _, it := range items {
			ix.lists = append(ix.lists, it.id)
		}
		ix.lists = append(ix.lists, fb+1) // none+1 wraps to 0
		return
	}
	first := len(ix.nodes)
	ix.nodes = append(ix.nodes, 0, 0, 0, 0)
	ix.nodes[node] = tagInner | uint32(first)
	half := uint32(1) << (coordBits - depth - 1)
	// Child q spans xs[q&1]..xs[q&1+1] by ys[q>>1]..ys[q>>1+1], with the
	// margin.
	var xs, ys [3]float64
	for k := range uint32(3) {
		xs[k] = ix.minX + float64(cx+k*half)/ix.scale
		ys[k] = ix.minY + float64(cy+k*half)/ix.scale
	}
	eps := b.eps
	edges, ce, ci := b.edges[depth][quadrant], &b.edges[depth+1], &b.items[depth+1]
	cfb := [4]uint32{fb, fb, fb, fb}
	for q := range 4 {
		ce[q], ci[q] = ce[q][:0], ci[q][:0]
	}
	for _, it := range items {
		var lo [4]int
		open := 0 // children where the item can still matter
		for q := range 4 {
			lo[q] = len(ce[q])
			if it.id < cfb[q] {
				open |= 1 << q
			}
		}
		if open == 0 {
			break
		}
		for _, i := range edges[it.lo:it.hi] {
			p, r := ix.pts[i], ix.pts[i-1]
			// The edge meets the cell; its bounds narrow down the children
			// it can meet, most often to one.
			m := open
			if min(p[0], r[0]) > xs[1]+eps {
				m &^= 0b0101
			}
			if max(p[0], r[0]) < xs[1]-eps {
				m &^= 0b1010
			}
			if min(p[1], r[1]) > ys[1]+eps {
				m &^= 0b0011
			}
			if max(p[1], r[1]) < ys[1]-eps {
				m &^= 0b1100
			}
			if m&(m-1) == 0 {
				if m != 0 {
					q := bits.TrailingZeros(uint(m))
					ce[q] = append(ce[q], i)
				}
				continue
			}
			for q := range 4 {
				if m&(1<<q) != 0 && segmentMeetsBox(p, r, xs[q&1]-eps, ys[q>>1]-eps, xs[q&1+1]+eps, ys[q>>1+1]+eps) {
					ce[q] = append(ce[q], i)
				}
			}
		}
		for q := range 4 {
			switch {
			case open&(1<<q) == 0:
			case len(ce[q]) > lo[q]:
				ci[q] = append(ci[q], item{id: it.id, lo: lo[q], hi: len(ce[q])})
			case ix.contains(it.id, (xs[q&1]+xs[q&1+1])/2, (ys[q>>1]+ys[q>>1+1])/2):
				cfb[q] = it.id // every later item has a higher id
			}
		}
	}
	for q := range uint32(4) {
		b.build(first+int(q), depth+1, cx+q&1*half, cy+q>>1*half, q, ci[q], cfb[q])
	}
}

func segmentMeetsBox(a, b orb.Point, x0, y0, x1, y1 float64) bool {
	if max(a[0], b[0]) < x0 || min(a[0], b[0]) > x1 || max(a[1], b[1]) < y0 || min(a[1], b[1]) > y1 {
		return false
	}
	dx, dy := b[0]-a[0], b[1]-a[1]
	s0 := dx*(y0-a[1]) - dy*(x0-a[0])
	s1 := dx*(y0-a[1]) - dy*(x1-a[0])
	s2 := dx*(y1-a[1]) - dy*(x0-a[0])
	s3 := dx*(y1-a[1]) - dy*(x1-a[0])
	return !(s0 > 0 && s1 > 0 && s2 > 0 && s3 > 0 || s0 < 0 && s1 < 0 && s2 < 0 && s3 < 0)
}

// flatten copies node n, at depth level and cell (gx, gy) of that depth,
// into the grid.
func (ix *Index) flatten(n uint32, level uint, gx, gy uint32) {
	if level == ix.topBits || n&tagMask != tagInner {
		s := ix.topBits - level
		for y := gy << s; y < (gy+1)<<s; y++ {
			row := ix.grid[y<<ix.topBits:]
			for x := gx << s; x < (gx+1)<<s; x++ {
				row[x] = n
			}
		}
		return
	}
	first := n & payloadMask
	for q := range uint32(4) {
		ix.flatten(ix.nodes[first+q], level+1, gx<<1|q&1, gy<<1|q>>1)
	}
}

// locateNaive tests every ring of every shape; it is the reference Index
// must agree with.
func locateNaive(shapes []Shape, p orb.Point) (string, bool) {
	best, found := "", false
	for _, s := range shapes {
		if polygonsContain(s.Geom, p) && (!found || s.Code < best) {
			best, found = s.Code, true
		}
	}
	return best, found
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
		if crosses(r[i], r[j], p[0], p[1]) {
			in = !in
		}
	}
	return in
}
