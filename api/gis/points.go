package gis

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/maptile"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/answer"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/feed"
	"github.com/openioc/ioc/geo"
)

// Live layers draw what changes by the minute: cameras and sensors as
// points with their status now, and camera events counted on a grid of
// squares. They are served beside the boundary layers, through the same
// routes, when the server has devices (points) or camera events (density).
const (
	camerasLayer = "cameras"
	sensorsLayer = "sensors"
	densityLayer = "camera-events.density"

	pointsKind  = "points"
	densityKind = "density"

	// Cells of ?cell= degrees: 0.01° is about 1.1 km. Below 0.001° (about
	// 110 m) cells say more about a camera's position than about where
	// events happen; above 1° a province is a handful of cells.
	defaultCellSize = 0.01
	minCellSize     = 0.001
	maxCellSize     = 1.0
	// maxDensityCells bounds the grid one request may span: a few MB of
	// GeoJSON at most, and a GROUP BY ClickHouse answers at once. At the
	// default cell it is 25 square degrees, a large province.
	maxDensityCells = 250_000
	// tileCellsAcross is how many cells span a tile's width: cells shrink
	// as the map zooms in and stay some 16 pixels wide on a 512-pixel tile.
	tileCellsAcross = 32
	// Live tiles change by the minute and depend on the token: browsers
	// revalidate them every time (the ETag answers 304 when unchanged), and
	// the server does not cache them.
	liveTileCacheControl = "private, no-cache"
)

// liveLayer is a layer of devices or of camera-event density, in the
// deployment's hierarchy, whose units scope it.
type liveLayer struct {
	id     string
	kind   string // pointsKind or densityKind
	device string // points: the device kind
	h      *geo.Hierarchy
}

func (l *liveLayer) title() string {
	switch l.id {
	case camerasLayer:
		return "Cameras"
	case sensorsLayer:
		return "Sensors"
	}
	return "Camera event density"
}

func (l *liveLayer) description() string {
	switch l.kind {
	case pointsKind:
		d := fmt.Sprintf("The %ss of %s, one point each; feature id = device id. Properties: id, kind, name, area_code, area_name, status (online or offline), last_seen.", l.device, l.h.Name())
		if l.device == device.Sensor {
			d += " Each latest reading adds its kind (pm25, water_level, …) with the value and {kind}_observed_at."
		}
		return d + " ?status=online|offline keeps one status."
	}
	return fmt.Sprintf("Camera events in squares of ?cell= degrees (default %g, %g to %g; tiles use the tile's width / %d) since the start of ?window= (today, 24h, 7d, 30d; default today). Properties: events, critical, cell_size, window, since.",
		defaultCellSize, minCellSize, maxCellSize, tileCellsAcross)
}

// addLiveLayers adds the layers the server's dependencies feed.
func (g *Server) addLiveLayers() {
	h := g.d.Figures.Hierarchy()
	g.liveByID = map[string]*liveLayer{}
	add := func(l *liveLayer) {
		g.live = append(g.live, l)
		g.liveByID[l.id] = l
	}
	if g.d.Devices != nil {
		add(&liveLayer{id: camerasLayer, kind: pointsKind, device: device.Camera, h: h})
		add(&liveLayer{id: sensorsLayer, kind: pointsKind, device: device.Sensor, h: h})
	}
	if g.d.Events != nil {
		add(&liveLayer{id: densityLayer, kind: densityKind, h: h})
	}
	if levels := h.GeometryLevels(); len(levels) > 0 {
		for _, u := range h.Select(levels[0], "") {
			if b, ok := h.Bound(u.Code); ok {
				g.allBound, g.allBoundOK = unionBound(g.allBound, g.allBoundOK, b), true
			}
		}
	}
}

// notServed explains a live layer id this server does not serve.
func notServed(id string) (string, bool) {
	switch id {
	case camerasLayer, sensorsLayer:
		return fmt.Sprintf("layer %q is not served: this server runs without a device registry", id), true
	case densityLayer:
		return fmt.Sprintf("layer %q is not served: this server runs without camera events", id), true
	}
	return "", false
}

func unionBound(acc orb.Bound, have bool, b orb.Bound) orb.Bound {
	if !have {
		return b
	}
	return acc.Union(b)
}

// liveQuery is what a request asks of a live layer.
type liveQuery struct {
	areas  []string // the subtrees read; nil: every unit
	none   bool     // the token's scope and parent share no unit
	parent string
	bbox   *orb.Bound
	status string           // points: online, offline or "" for both
	w      aggregate.Window // density
	cell   float64          // density, outside tiles
	// cellAsked says cell came from the request; a default cell is made
	// coarser when the grid would be too large (densityBound).
	cellAsked bool
}

// liveRequest says where a live layer is asked for, which decides the
// parameters it takes.
type liveRequest int

const (
	liveGeoJSON liveRequest = iota
	liveOGC
	liveTile
)

// parseLiveQuery reads the parameters of a live layer, refusing those of
// other kinds of layer with where they apply.
func (g *Server) parseLiveQuery(c *fiber.Ctx, l *liveLayer, in liveRequest) (liveQuery, error) {
	bad := func(format string, args ...any) (liveQuery, error) {
		return liveQuery{}, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf(format, args...))
	}
	if c.Query("kpi") != "" {
		return bad("kpi applies to indicator layers only ({hierarchy}.{level}.kpi); %s carries no indicators", l.id)
	}
	if c.Query("code") != "" || c.Query("name") != "" {
		return bad("code and name filter the boundary and indicator collections; %s takes status and parent", l.id)
	}
	var q liveQuery
	switch l.kind {
	case pointsKind:
		if c.Query("window") != "" {
			return bad("window applies to indicator layers and %s; %s shows each device's status now", densityLayer, l.id)
		}
		if c.Query("cell") != "" {
			return bad("cell applies to %s only", densityLayer)
		}
		switch q.status = c.Query("status"); q.status {
		case "", "online", "offline":
		default:
			return bad("status %q is not online or offline; leave it out for both", q.status)
		}
	case densityKind:
		if c.Query("status") != "" {
			return bad("status applies to the %s and %s layers only", camerasLayer, sensorsLayer)
		}
		w, err := aggregate.ParseWindow(c.Query("window"))
		if err != nil {
			return bad("%s", err.Error())
		}
		q.w = w
		raw := c.Query("cell")
		switch {
		case in == liveTile: // tiles take no cell (the route refuses it): theirs is the tile's width / tileCellsAcross
		case raw == "":
			q.cell = defaultCellSize
		default:
			v, err := strconv.ParseFloat(raw, 64)
			if err != nil || math.IsNaN(v) || v < minCellSize || v > maxCellSize {
				return bad("cell %q must be a size in degrees from %g to %g (default %g, about 1.1 km)", raw, minCellSize, maxCellSize, defaultCellSize)
			}
			q.cell, q.cellAsked = v, true
		}
	}
	if in != liveTile {
		if raw := c.Query("zoom"); raw != "" { // geometry is exact at every zoom
			if _, err := parseZoom("zoom", raw); err != nil {
				return liveQuery{}, err
			}
		}
		bbox, err := optionalBBox(c, in == liveOGC)
		if err != nil {
			return liveQuery{}, err
		}
		q.bbox = bbox
	}
	if q.parent = c.Query("parent"); q.parent != "" {
		if _, ok := l.h.Unit(q.parent); !ok {
			return liveQuery{}, fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("unknown parent %q in %s", q.parent, l.h.Name()))
		}
	}
	q.areas, q.none = liveAreas(g.d.Access.Principal(c), l.h, q.parent)
	return q, nil
}

// liveAreas are the subtrees a live layer reads for p: the token's areas,
// narrowed to parent when one is given. nil means every unit; none that p
// sees nothing there.
func liveAreas(p auth.Principal, h *geo.Hierarchy, parent string) (areas []string, none bool) {
	if p.Unrestricted() {
		if parent == "" {
			return nil, false
		}
		return []string{parent}, false
	}
	for _, a := range p.Areas {
		if _, ok := h.Unit(a); !ok {
			continue
		}
		switch {
		case parent == "" || h.Contains(parent, a):
			areas = append(areas, a)
		case h.Contains(a, parent):
			areas = append(areas, parent)
		}
	}
	slices.Sort(areas)
	areas = slices.Compact(areas)
	return areas, len(areas) == 0
}

// areasBound is the bound of the boundaries of the subtrees of areas (the
// whole hierarchy's when nil); a unit without a boundary of its own is
// bounded by its descendants'.
func (g *Server) areasBound(h *geo.Hierarchy, areas []string) (orb.Bound, bool) {
	if areas == nil {
		return g.allBound, g.allBoundOK
	}
	var out orb.Bound
	have := false
	for _, a := range areas {
		if b, ok := h.Bound(a); ok {
			out, have = unionBound(out, have, b), true
			continue
		}
		for _, code := range h.Subtree(a) {
			if b, ok := h.Bound(code); ok {
				out, have = unionBound(out, have, b), true
			}
		}
	}
	return out, have
}

// liveExtent is where a live layer lies for p (narrowed to parent when not
// empty): the bound of the areas it reads, else the hierarchy's, else the
// web map's.
func (g *Server) liveExtent(p auth.Principal, l *liveLayer, parent string) orb.Bound {
	if areas, none := liveAreas(p, l.h, parent); !none {
		if b, ok := g.areasBound(l.h, areas); ok {
			return b
		}
	}
	if g.allBoundOK {
		return g.allBound
	}
	return orb.Bound{Min: orb.Point{-180, -85.051129}, Max: orb.Point{180, 85.051129}}
}

// liveFeature is one feature of a live layer: a device's point or a cell.
type liveFeature struct {
	id    string
	point orb.Point
	cell  *orb.Bound // density cells; nil for points
	props map[string]any
}

// readPoints reads the devices of a points layer q asks for, within reach
// when not nil, ordered by id.
func (g *Server) readPoints(c *fiber.Ctx, l *liveLayer, q liveQuery, reach *orb.Bound) ([]device.View, error) {
	if q.none {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), g.cfg.RequestTimeout)
	defer cancel()
	vs, err := g.d.Devices.Views(ctx, q.areas, l.device)
	if err != nil {
		return nil, answer.Unavailable(err)
	}
	p := g.d.Access.Principal(c)
	out := make([]device.View, 0, len(vs))
	for _, v := range vs {
		pt := orb.Point{v.Lon, v.Lat}
		switch {
		case v.Kind != l.device, !visible(p, l.h, v.AreaCode),
			q.status != "" && v.Status != q.status,
			q.bbox != nil && !q.bbox.Contains(pt),
			reach != nil && !reach.Contains(pt):
			continue
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b device.View) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// pointProperties are a device's feature properties; a sensor's latest
// readings are flattened to {kind} and {kind}_observed_at.
func pointProperties(h *geo.Hierarchy, v device.View) map[string]any {
	props := map[string]any{
		"id": v.ID, "kind": v.Kind, "name": v.Name, "area_code": v.AreaCode, "area_name": nil,
		"status": v.Status, "last_seen": nil,
	}
	if u, ok := h.Unit(v.AreaCode); ok {
		props["area_name"] = u.Name
	}
	if v.LastSeen != nil {
		props["last_seen"] = v.LastSeen.UTC().Format(time.RFC3339)
	}
	kinds := make([]string, 0, len(v.Latest))
	for k := range v.Latest {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		key := k
		if _, taken := props[key]; taken { // a reading must not hide the device's own fields
			key = "reading_" + k
		}
		r := v.Latest[k]
		props[key] = r.Value
		props[key+"_observed_at"] = r.ObservedAt.UTC().Format(time.RFC3339)
	}
	return props
}

// densityBound is the bound a GeoJSON or OGC density request spans: its
// bbox, else the parent's or the token's areas, refused when it holds more
// than maxDensityCells cells. It is widened to whole cells, so that every
// cell returned counts all its events.
func (g *Server) densityBound(c *fiber.Ctx, l *liveLayer, q liveQuery) (orb.Bound, float64, error) {
	var b orb.Bound
	var what string
	if q.bbox != nil {
		b, what = *q.bbox, fmt.Sprintf("bbox covers %.4g square degrees", bboxArea(*q.bbox))
	} else {
		var ok bool
		if b, ok = g.areasBound(l.h, q.areas); !ok {
			return orb.Bound{}, 0, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s needs bbox=minLon,minLat,maxLon,maxLat here: the areas you read carry no boundaries to bound the grid", l.id))
		}
		switch p := g.d.Access.Principal(c); {
		case q.parent != "":
			what = "without bbox the grid spans parent " + q.parent
		case p.Unrestricted():
			what = "without bbox the grid spans all of " + l.h.Name()
		default:
			what = "without bbox the grid spans your token's areas (" + strings.Join(q.areas, ", ") + ")"
		}
		what += fmt.Sprintf(", %.4g square degrees", bboxArea(b))
	}
	cell := q.cell
	if !q.cellAsked {
		// Without cell= the request names no grid: the first coarser cell
		// of coarseCells that keeps it within the limit answers it, so that
		// a client reading the collection whole (OGC API Features requires
		// /items to answer without parameters) gets every event.
		for _, c := range coarseCells {
			if cell = c; bboxArea(b)/(c*c) <= maxDensityCells {
				break
			}
		}
	}
	if n := bboxArea(b) / (cell * cell); n > maxDensityCells {
		least := math.Ceil(math.Sqrt(bboxArea(b)/maxDensityCells)*1e4) / 1e4
		return orb.Bound{}, 0, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf(
			"%s: at cell=%g that is %.0f cells, over the limit of %d; pass a bbox= of at most %.4g square degrees, or cell=%g or larger (or leave cell out for a grid coarse enough)",
			what, cell, math.Ceil(n), maxDensityCells, maxDensityCells*cell*cell, least))
	}
	return alignBound(b, cell), cell, nil
}

// coarseCells are the cells, in degrees, a density request without cell=
// may be answered in, finest first; 1° cells hold the whole earth in
// 64,800 cells, under maxDensityCells.
var coarseCells = []float64{defaultCellSize, 0.02, 0.05, 0.1, 0.2, 0.5, maxCellSize}

// gridIndex is the cell of size holding v; the tolerance keeps a value on
// a grid line, such as 106.8 at 0.01, from falling into the cell before it
// through rounding.
func gridIndex(v, size float64) float64 { return math.Floor(v/size + 1e-9) }

// alignBound widens b to the edges of the cells of size it touches.
func alignBound(b orb.Bound, size float64) orb.Bound {
	return orb.Bound{
		Min: orb.Point{gridIndex(b.Min[0], size) * size, gridIndex(b.Min[1], size) * size},
		Max: orb.Point{(gridIndex(b.Max[0], size) + 1) * size, (gridIndex(b.Max[1], size) + 1) * size},
	}
}

// readCells counts the camera events of q's window in cells of size over
// bound, ordered south to north, then west to east.
func (g *Server) readCells(c *fiber.Ctx, q liveQuery, bound orb.Bound, size float64) ([]feed.Cell, time.Time, error) {
	loc := g.d.Figures.Location()
	if loc == nil {
		loc = time.UTC
	}
	from := q.w.Start(time.Now(), loc)
	if q.none {
		return nil, from, nil
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), g.cfg.RequestTimeout)
	defer cancel()
	cells, err := g.d.Events.Density(ctx, q.areas, bound, size, from)
	if err != nil {
		return nil, from, answer.Unavailable(err)
	}
	cells = slices.Clone(cells)
	slices.SortFunc(cells, func(a, b feed.Cell) int { return cmp.Or(cmp.Compare(a.Lat, b.Lat), cmp.Compare(a.Lon, b.Lon)) })
	return cells, from, nil
}

// cellFeature is a density cell as a feature; its id is its south-west
// corner.
func cellFeature(cell feed.Cell, size float64, w aggregate.Window, from time.Time) liveFeature {
	if cell.Size > 0 {
		size = cell.Size
	}
	r := func(v float64) float64 { return math.Round(v*1e9) / 1e9 }
	x, y := math.Round(cell.Lon/size), math.Round(cell.Lat/size)
	b := orb.Bound{Min: orb.Point{r(x * size), r(y * size)}, Max: orb.Point{r((x + 1) * size), r((y + 1) * size)}}
	id := strconv.FormatFloat(b.Min[0], 'f', -1, 64) + "," + strconv.FormatFloat(b.Min[1], 'f', -1, 64)
	return liveFeature{id: id, cell: &b, props: map[string]any{
		"events": cell.Events, "critical": cell.Critical, "cell_size": size,
		"window": string(w), "since": from.Format(time.RFC3339),
	}}
}

// readLive reads the features of a live layer for a GeoJSON or OGC request.
func (g *Server) readLive(c *fiber.Ctx, l *liveLayer, q liveQuery) ([]liveFeature, error) {
	if l.kind == pointsKind {
		vs, err := g.readPoints(c, l, q, nil)
		if err != nil {
			return nil, err
		}
		out := make([]liveFeature, len(vs))
		for i, v := range vs {
			out[i] = liveFeature{id: v.ID, point: orb.Point{v.Lon, v.Lat}, props: pointProperties(l.h, v)}
		}
		return out, nil
	}
	bound, size, err := g.densityBound(c, l, q)
	if err != nil {
		return nil, err
	}
	cells, from, err := g.readCells(c, q, bound, size)
	if err != nil {
		return nil, err
	}
	out := make([]liveFeature, len(cells))
	for i, cell := range cells {
		out[i] = cellFeature(cell, size, q.w, from)
	}
	return out, nil
}

// appendLiveFeatures writes features as comma-separated GeoJSON features.
func appendLiveFeatures(b []byte, fs []liveFeature) ([]byte, error) {
	var err error
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendLiveFeature(b, f, nil); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func appendLiveFeature(b []byte, f liveFeature, links []ogcLink) ([]byte, error) {
	return appendFeatureWith(b, f.id, func(b []byte) []byte {
		if f.cell != nil {
			return appendCell(b, *f.cell)
		}
		return appendPoint(b, f.point)
	}, f.props, links)
}

func appendPoint(b []byte, p orb.Point) []byte {
	b = append(b, `{"type":"Point","coordinates":[`...)
	b = strconv.AppendFloat(b, p[0], 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, p[1], 'f', -1, 64)
	return append(b, "]}"...)
}

// appendCell writes a cell as a Polygon, its ring counterclockwise as RFC
// 7946 asks.
func appendCell(b []byte, c orb.Bound) []byte {
	b = append(b, `{"type":"Polygon","coordinates":[[`...)
	for i, p := range []orb.Point{c.Min, {c.Max[0], c.Min[1]}, c.Max, {c.Min[0], c.Max[1]}, c.Min} {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendFloat(b, p[0], 'f', -1, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, p[1], 'f', -1, 64)
		b = append(b, ']')
	}
	return append(b, "]]}"...)
}

// liveGeoJSON answers a live layer as one GeoJSON FeatureCollection.
func (g *Server) liveGeoJSON(c *fiber.Ctx, l *liveLayer) error {
	q, err := g.parseLiveQuery(c, l, liveGeoJSON)
	if err != nil {
		return err
	}
	fs, err := g.readLive(c, l, q)
	if err != nil {
		return err
	}
	b := make([]byte, 0, 16<<10)
	b = append(b, `{"type":"FeatureCollection","name":`...)
	b = strconv.AppendQuote(b, l.id)
	b = append(b, `,"features":[`...)
	if b, err = appendLiveFeatures(b, fs); err != nil {
		return err
	}
	b = append(b, "]}"...)
	c.Set(fiber.HeaderContentType, typeGeoJSON)
	c.Set(fiber.HeaderCacheControl, "private, no-cache")
	c.Status(fiber.StatusOK)
	return c.Send(b)
}

// liveTile answers one vector tile of a live layer, read afresh: cells are
// the tile's width / tileCellsAcross and the tile (with its buffer) is the
// area read.
func (g *Server) liveTile(c *fiber.Ctx, l *liveLayer, t maptile.Tile) error {
	q, err := g.parseLiveQuery(c, l, liveTile)
	if err != nil {
		return err
	}
	reach := geo.TileBound(t)
	var body []byte
	switch l.kind {
	case pointsKind:
		vs, err := g.readPoints(c, l, q, &reach)
		if err != nil {
			return err
		}
		if body, err = encodePointTile(l, t, vs); err != nil {
			return fmt.Errorf("encode tile %s/%d/%d/%d: %w", l.id, t.Z, t.X, t.Y, err)
		}
	default:
		size := 360 / float64(uint64(1)<<t.Z) / tileCellsAcross
		cells, from, err := g.readCells(c, q, alignBound(reach, size), size)
		if err != nil {
			return err
		}
		features := make([]geo.Feature, len(cells))
		for i, cell := range cells {
			f := cellFeature(cell, size, q.w, from)
			features[i] = geo.Feature{ID: f.id, Geometry: orb.MultiPolygon{f.cell.ToPolygon()}, Properties: f.props}
		}
		if body, err = geo.EncodeTile(l.id, t, features); err != nil {
			return fmt.Errorf("encode tile %s/%d/%d/%d: %w", l.id, t.Z, t.X, t.Y, err)
		}
	}
	et, err := newEncodedTile(body)
	if err != nil {
		return err
	}
	return sendTile(c, et, liveTileCacheControl)
}

// encodePointTile encodes devices as a Mapbox Vector Tile with one layer of
// points, snapped to the tile's grid; those in the buffer are kept, so that
// a symbol on a tile's edge is drawn whole. Null properties are left out.
func encodePointTile(l *liveLayer, t maptile.Tile, vs []device.View) ([]byte, error) {
	ml := &mvt.Layer{Name: l.id, Version: 2, Extent: geo.TileExtent, Features: make([]*geojson.Feature, 0, len(vs))}
	for _, v := range vs {
		f := geojson.NewFeature(orb.Point{v.Lon, v.Lat})
		f.ID = v.ID
		for k, val := range pointProperties(l.h, v) {
			if val != nil {
				f.Properties[k] = val
			}
		}
		ml.Features = append(ml.Features, f)
	}
	ml.ProjectToTile(t)
	for _, f := range ml.Features {
		p := f.Geometry.(orb.Point)
		f.Geometry = orb.Point{math.Round(p[0]), math.Round(p[1])}
	}
	ml.Clip(orb.Bound{Min: orb.Point{-geo.TileBuffer, -geo.TileBuffer}, Max: orb.Point{geo.TileExtent + geo.TileBuffer, geo.TileExtent + geo.TileBuffer}})
	if len(ml.Features) == 0 {
		return nil, nil
	}
	return mvt.Marshal(mvt.Layers{ml})
}

// liveTileJSON describes a live layer's tiles; the tiles template carries
// the status, window and parent asked for here.
func (g *Server) liveTileJSON(c *fiber.Ctx, l *liveLayer) error {
	q, err := g.parseLiveQuery(c, l, liveTile)
	if err != nil {
		return err
	}
	tq := url.Values{}
	for _, name := range []string{"status", "window", "parent"} {
		if v := c.Query(name); v != "" {
			tq.Set(name, v)
		}
	}
	fields := map[string]string{}
	desc := l.description()
	if l.kind == pointsKind {
		for _, f := range []string{"id", "kind", "name", "area_code", "area_name", "status", "last_seen"} {
			fields[f] = "String"
		}
		if l.device == device.Sensor {
			desc += " Readings are Numbers, their times Strings; a device that never reported has no last_seen."
		}
	} else {
		fields = map[string]string{"events": "Number", "critical": "Number", "cell_size": "Number", "window": "String", "since": "String"}
		desc = fmt.Sprintf("Camera events since the start of the window %s in squares of the tile's width / %d degrees.", q.w, tileCellsAcross)
	}
	b := g.liveExtent(g.d.Access.Principal(c), l, q.parent)
	center := b.Center()
	body := tileJSONBody{
		TileJSON: "3.0.0", Name: l.title(), Description: desc, Version: "1.0.0", Scheme: "xyz",
		Tiles: []string{g.d.Links.Href(c, "/tiles/"+l.id+"/{z}/{x}/{y}.mvt", tq)}, MinZoom: 0, MaxZoom: tileMaxZoom, Bounds: bbox4(b),
		Center:       [3]float64{math.Round(center[0]*1e6) / 1e6, math.Round(center[1]*1e6) / 1e6, float64(fitZoom(b))},
		VectorLayers: []tileJSONLayer{{ID: l.id, Description: desc, Fields: fields, MinZoom: 0, MaxZoom: tileMaxZoom}},
	}
	c.Status(fiber.StatusOK)
	return c.JSON(body)
}

// liveCatalog lists the live layers with what the token sees of each: the
// number of devices it may read (one read of the registry for both point
// layers) and the bound of its areas.
func (g *Server) liveCatalog(c *fiber.Ctx) ([]layerInfo, error) {
	if len(g.live) == 0 {
		return nil, nil
	}
	p := g.d.Access.Principal(c)
	counts := map[string]int{}
	if g.d.Devices != nil {
		h := g.d.Figures.Hierarchy()
		if areas, none := liveAreas(p, h, ""); !none {
			ctx, cancel := context.WithTimeout(c.UserContext(), g.cfg.RequestTimeout)
			vs, err := g.d.Devices.Views(ctx, areas, "")
			cancel()
			if err != nil {
				return nil, answer.Unavailable(err)
			}
			for _, v := range vs {
				if visible(p, h, v.AreaCode) {
					counts[v.Kind]++
				}
			}
		}
	}
	out := make([]layerInfo, 0, len(g.live))
	for _, l := range g.live {
		info := layerInfo{
			ID: l.id, Title: l.title(), Hierarchy: l.h.Name(), Kind: l.kind,
			Bounds: bbox4(g.liveExtent(p, l, "")), MinZoom: 0, MaxZoom: tileMaxZoom,
			Links: layerLinks{
				GeoJSON:  g.d.Links.Href(c, "/api/v1/layers/"+l.id+".geojson", nil),
				TileJSON: g.d.Links.Href(c, "/tiles/"+l.id+".json", nil),
				OGC:      g.d.Links.Href(c, "/ogc/collections/"+l.id, nil),
			},
		}
		if l.kind == pointsKind {
			n := counts[l.device]
			info.Features = &n
			info.Statuses = []string{"online", "offline"}
		} else {
			info.Windows = aggregate.Windows
			info.CellSize = &cellSizes{Default: defaultCellSize, Min: minCellSize, Max: maxCellSize, MaxCells: maxDensityCells}
		}
		out = append(out, info)
	}
	return out, nil
}

// cellSizes are the cell sizes, in degrees, a density layer takes.
type cellSizes struct {
	Default  float64 `json:"default"`
	Min      float64 `json:"min"`
	Max      float64 `json:"max"`
	MaxCells int     `json:"max_cells"`
}

// liveCollection is a live layer as an OGC collection; its extent is the
// bound of the token's areas.
func (g *Server) liveCollection(c *fiber.Ctx, l *liveLayer) ogcCollectionBody {
	out := ogcCollectionBody{
		ID: l.id, Title: l.title(), Description: l.description(), ItemType: "feature", CRS: []string{crs84},
		Links: g.collectionLinks(c, l.id),
	}
	out.Extent.Spatial = ogcSpatial{BBox: [][4]float64{bbox4(g.liveExtent(g.d.Access.Principal(c), l, ""))}, CRS: crs84}
	return out
}

// liveItems answers a page of a live collection's features: devices by id,
// cells south to north.
func (g *Server) liveItems(c *fiber.Ctx, l *liveLayer, limit, offset int) error {
	q, err := g.parseLiveQuery(c, l, liveOGC)
	if err != nil {
		return err
	}
	fs, err := g.readLive(c, l, q)
	if err != nil {
		return err
	}
	lo, hi := pageBounds(len(fs), offset, limit)
	page := fs[lo:hi]
	return g.sendItems(c, l.id, limit, offset, len(fs), len(page), func(b []byte) ([]byte, error) {
		return appendLiveFeatures(b, page)
	})
}

// liveItem answers one device of a points collection. Cells have no
// lasting identity: they are read a page at a time.
func (g *Server) liveItem(c *fiber.Ctx, l *liveLayer) error {
	if l.kind != pointsKind {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("%s has no single features: its cells depend on cell and window; read them from /ogc/collections/%s/items", l.id, l.id))
	}
	if c.Query("kpi") != "" || c.Query("window") != "" || c.Query("cell") != "" {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("a %s feature takes no kpi, window or cell", l.device))
	}
	id := strings.Clone(c.Params("featureId"))
	d, ok := g.d.Devices.Device(id)
	if unescaped, err := url.PathUnescape(id); !ok && err == nil && unescaped != id { // ids may hold spaces and the like
		id = unescaped
		d, ok = g.d.Devices.Device(id)
	}
	if !ok || d.Kind != l.device || !visible(g.d.Access.Principal(c), l.h, d.AreaCode) {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no %s %q in your scope; list them at /ogc/collections/%s/items", l.device, id, l.id))
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), g.cfg.RequestTimeout)
	vs, err := g.d.Devices.Views(ctx, []string{d.AreaCode}, d.Kind)
	cancel()
	if err != nil {
		return answer.Unavailable(err)
	}
	v := device.View{Device: d, Status: "offline"}
	for _, got := range vs {
		if got.ID == id {
			v = got
			break
		}
	}
	path := ogcLandingAt + "/collections/" + l.id
	links := []ogcLink{
		{Href: g.d.Links.Href(c, path+"/items/"+url.PathEscape(id), requestQuery(c)), Rel: "self", Type: typeGeoJSON, Title: "This feature"},
		{Href: g.d.Links.Href(c, path, nil), Rel: "collection", Type: typeJSON, Title: "The collection"},
	}
	b, err := appendLiveFeature(make([]byte, 0, 1024), liveFeature{id: v.ID, point: orb.Point{v.Lon, v.Lat}, props: pointProperties(l.h, v)}, links)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, typeGeoJSON)
	c.Status(fiber.StatusOK)
	return c.Send(b)
}
