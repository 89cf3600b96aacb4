// Package gis serves the deployment's map layers to browser maps and desktop
// GIS: boundary layers and indicator layers per hierarchy level, the live
// layers of cameras, sensors and camera-event density, each as GeoJSON,
// Mapbox vector tiles with a TileJSON document, and OGC API – Features
// collections, and the catalog that lists them. Every layer is cut to the
// token's area scope.
//
// It owns the layers, their encodings and their caches (encoded boundary
// tiles; one reading of a level's figures shared by a map view's tiles).
// It reads figures, devices and camera events through the small interfaces
// below, and takes from the HTTP server it is registered on (package api)
// the authentication of its routes and the base of its links; refusals are
// fiber errors and answer.StorageError, which that server's error handler
// answers.
//
// Concurrency: a Server is safe for concurrent use once New returns: the
// layers are fixed then, and the caches lock. Register is called once,
// before the app serves.
package gis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/paulmach/orb"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/answer"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/feed"
	"github.com/openioc/ioc/geo"
)

// Config tunes the layers. Zero fields take the defaults.
type Config struct {
	// RequestTimeout bounds reading figures, devices or camera events for
	// one request; default 30s.
	RequestTimeout time.Duration
}

// Figures is how the layers read indicators.
type Figures interface {
	// Hierarchy is the deployment's hierarchy, whose units tokens name.
	Hierarchy() *geo.Hierarchy
	// Location is the deployment's time zone, where the today window starts.
	Location() *time.Location
	Snapshot(ctx context.Context, hierarchy, code string, w aggregate.Window) (aggregate.Snapshot, error)
	LevelSnapshots(ctx context.Context, hierarchy, level, parent string, w aggregate.Window) ([]aggregate.Snapshot, error)
}

// Devices is how the point layers read cameras and sensors.
type Devices interface {
	Device(id string) (device.Device, bool)
	Views(ctx context.Context, areas []string, kind string) ([]device.View, error)
}

// Events is how the density layer counts camera events.
type Events interface {
	// Density counts events since from in squares of size degrees over
	// bound, for the subtrees of areas (all when nil).
	Density(ctx context.Context, areas []string, bound orb.Bound, size float64, from time.Time) ([]feed.Cell, error)
}

// Access is the authentication of the server the routes are registered on.
type Access interface {
	// Readers are the handlers that run before a route: they admit a
	// request whose token may read, taken from the Authorization header
	// or, with queryToken, also from ?access_token=.
	Readers(queryToken bool) []fiber.Handler
	// Principal is who a request the Readers admitted acts for.
	Principal(c *fiber.Ctx) auth.Principal
}

// Links builds the absolute links the layers carry.
type Links interface {
	// Href is a link to path on the server with query q, which it may
	// change (the caller's access_token is kept or dropped by its rule).
	Href(c *fiber.Ctx, path string, q url.Values) string
}

// Deps are what the layers are built from.
type Deps struct {
	Geo     *geo.Registry
	Figures Figures
	// Devices feed the cameras and sensors layers, Events the camera-event
	// density layer; nil leaves those layers out.
	Devices Devices
	Events  Events
	Access  Access
	Links   Links
	// Indicators lists the catalog the indicator layers carry, the
	// datasets' indicators included; nil: aggregate.Catalog.
	Indicators func() []aggregate.Definition
}

// QueryParams declares the query parameters of each route Register adds,
// keyed by method and path as registered: the server refuses any other
// (api's query checker), and its test checks them against
// docs/openapi.yaml. A route that takes access_token is one whose
// operation allows the queryToken scheme.
func QueryParams() map[string][]string {
	return map[string][]string{
		"GET /api/v1/layers":                 nil,
		"GET /api/v1/layers/:layer":          {"access_token", "bbox", "zoom", "parent", "kpi", "window", "status", "cell"},
		"GET /tiles/:file":                   {"access_token", "kpi", "window", "status", "parent"},
		"GET /tiles/:layer/:z/:x/:y":         {"access_token", "kpi", "window", "status", "parent"},
		"GET /ogc":                           {"access_token", "f"},
		"GET /ogc/conformance":               {"access_token", "f"},
		"GET /ogc/collections":               {"access_token", "f"},
		"GET /ogc/collections/:collectionId": {"access_token", "f"},
		"GET /ogc/collections/:collectionId/items": {"access_token", "f", "limit", "offset", "bbox",
			"kpi", "window", "status", "cell", "parent", "code", "name"},
		"GET /ogc/collections/:collectionId/schema":           {"access_token", "f"},
		"GET /ogc/collections/:collectionId/queryables":       {"access_token", "f"},
		"GET /ogc/collections/:collectionId/items/:featureId": {"access_token", "f", "kpi", "window"},
	}
}

// Register adds the routes: the catalog, GeoJSON, vector tiles with their
// TileJSON, and OGC API – Features.
func (g *Server) Register(app fiber.Router) {
	route := func(path string, queryToken bool, h fiber.Handler) {
		app.Get(path, append(slices.Clip(g.d.Access.Readers(queryToken)), h)...)
	}
	// Map libraries and desktop GIS fetch tiles and features without a way
	// to set headers: every route but the catalog, which the API's own
	// clients read, also takes ?access_token=.
	route("/api/v1/layers", false, g.catalog)
	route("/api/v1/layers/:layer", true, g.geojson)
	route("/tiles/:file", true, g.tileJSON)
	route("/tiles/:layer/:z/:x/:y", true, g.tile)
	route("/ogc", true, g.ogcLanding)
	route("/ogc/conformance", true, g.ogcConformance)
	route("/ogc/collections", true, g.ogcCollections)
	route("/ogc/collections/:collectionId", true, g.ogcCollection)
	route("/ogc/collections/:collectionId/schema", true, g.ogcSchema)
	route("/ogc/collections/:collectionId/queryables", true, g.ogcQueryables)
	route("/ogc/collections/:collectionId/items", true, g.ogcItems)
	route("/ogc/collections/:collectionId/items/:featureId", true, g.ogcItem)
}

const (
	indicatorSuffix = ".kpi"
	// tileMaxZoom is the deepest zoom TileJSON advertises: its tiles are
	// within a metre or so of the carried boundaries, and clients overzoom
	// them rather than fetch more tiles.
	tileMaxZoom = 14
	// snapshotTTL is how long tiles share one reading of a level's figures:
	// a map view asks for a dozen tiles at once.
	snapshotTTL = 10 * time.Second
	// snapshotCacheEntries bounds the readings kept: one per level, window
	// and scope in use.
	snapshotCacheEntries = 256
)

// Server serves the layers: they are known from the registry and the
// dependencies when it is built, and it holds what is cached for them.
type Server struct {
	cfg    Config
	d      Deps
	layers []*layer
	byID   map[string]*layer
	tiles  *tileCache
	snaps  *snapshotCache

	// live are the layers of devices and camera events (points.go), after
	// the boundary layers in the catalog; allBound is the extent of the
	// deployment's hierarchy, which bounds them.
	live       []*liveLayer
	liveByID   map[string]*liveLayer
	allBound   orb.Bound
	allBoundOK bool
}

// layer is one hierarchy level with boundaries, drawn either as plain
// boundaries or with each unit's indicators.
type layer struct {
	id         string
	h          *geo.Hierarchy
	level      string
	indicators bool
	finest     bool // the hierarchy's finest level with boundaries
	current    bool // of the deployment's hierarchy, whose units tokens name
	geom       *geo.LayerGeometry
	count      int
	bound      orb.Bound
}

func (l *layer) kind() string {
	if l.indicators {
		return "indicators"
	}
	return "boundaries"
}

func (l *layer) title() string {
	if l.indicators {
		return fmt.Sprintf("Indicators by %s (%s)", l.level, l.h.Name())
	}
	return fmt.Sprintf("%s boundaries (%s)", capitalize(l.level), l.h.Name())
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// New builds the layers: a boundary and an indicator layer for each level
// of each hierarchy that has boundaries, and the live layers the
// dependencies feed.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Geo == nil || d.Figures == nil || d.Access == nil || d.Links == nil {
		return nil, errors.New("gis layers need geography, figures, the server's access and its links")
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	g := &Server{cfg: cfg, d: d, byID: map[string]*layer{}, tiles: newTileCache(tileCacheBytes, tileCacheEntries), snaps: newSnapshotCache(snapshotTTL, snapshotCacheEntries)}
	current := d.Figures.Hierarchy().Name()
	for _, name := range d.Geo.Names() {
		h, _ := d.Geo.Hierarchy(name)
		levels := h.GeometryLevels()
		if len(levels) == 0 {
			continue
		}
		lg := geo.NewLayerGeometry(h, 0)
		for i, lvl := range levels {
			units := h.Select(lvl, "")
			var b orb.Bound
			for j, u := range units {
				ub, _ := h.Bound(u.Code)
				if j == 0 {
					b = ub
				} else {
					b = b.Union(ub)
				}
			}
			for _, ind := range []bool{false, true} {
				l := &layer{id: name + "." + lvl, h: h, level: lvl, indicators: ind, finest: i == len(levels)-1, geom: lg, count: len(units), bound: b,
					current: name == current}
				if ind {
					l.id += indicatorSuffix
				}
				g.layers = append(g.layers, l)
				g.byID[l.id] = l
			}
		}
	}
	g.addLiveLayers()
	return g, nil
}

// layerByID finds a layer, saying why when there is none.
func (g *Server) layerByID(id string) (*layer, error) {
	if l, ok := g.byID[id]; ok {
		return l, nil
	}
	if msg, ok := notServed(id); ok {
		return nil, fiber.NewError(fiber.StatusNotFound, msg)
	}
	base := strings.TrimSuffix(id, indicatorSuffix)
	name, _, _ := strings.Cut(base, ".")
	h, ok := g.d.Geo.Hierarchy(name)
	switch {
	case !ok:
		return nil, fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("unknown layer %q: no hierarchy %q; layers are listed at GET /api/v1/layers", id, name))
	case len(h.GeometryLevels()) == 0:
		return nil, fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("unknown layer %q: hierarchy %s carries no boundaries", id, name))
	default:
		return nil, fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("unknown layer %q: %s has boundaries for %s; layer ids are {hierarchy}.{level} or {hierarchy}.{level}.kpi",
			id, name, strings.Join(h.GeometryLevels(), ", ")))
	}
}

// lookup finds a boundary or indicator layer, or else a live one.
func (g *Server) lookup(id string) (*layer, *liveLayer, error) {
	if ll, ok := g.liveByID[id]; ok {
		return nil, ll, nil
	}
	l, err := g.layerByID(id)
	return l, nil, err
}

// visible reports whether p may see unit code; every layer is cut to the
// token's scope.
func visible(p auth.Principal, h *geo.Hierarchy, code string) bool { return p.MayRead(h, code) }

// extent is what the principal sees of a layer: its number of features and
// their bounds, or the whole layer's bounds when it sees none, so clients
// still get a place to look at.
func (g *Server) extent(p auth.Principal, l *layer) (int, orb.Bound) {
	if p.Unrestricted() {
		return l.count, l.bound
	}
	n := 0
	var b orb.Bound
	for _, u := range l.h.Select(l.level, "") {
		if !visible(p, l.h, u.Code) {
			continue
		}
		ub, _ := l.h.Bound(u.Code)
		if n == 0 {
			b = ub
		} else {
			b = b.Union(ub)
		}
		n++
	}
	if n == 0 {
		return 0, l.bound
	}
	return n, b
}

// selectUnits lists the units of a layer the principal sees, ordered by
// code: under parent when not empty, and whose area meets bbox when given.
func (g *Server) selectUnits(p auth.Principal, l *layer, parent string, bbox *orb.Bound) []geo.Unit {
	var units []geo.Unit
	if bbox != nil {
		for _, code := range l.geom.Intersecting(l.level, *bbox) {
			if parent != "" && (code == parent || !l.h.Contains(parent, code)) {
				continue
			}
			if !visible(p, l.h, code) {
				continue
			}
			if full, _ := l.h.Geometry(code); !geo.IntersectsBound(full, *bbox) {
				continue
			}
			u, _ := l.h.Unit(code)
			units = append(units, u)
		}
		return units
	}
	for _, u := range l.h.Select(l.level, parent) {
		if visible(p, l.h, u.Code) {
			units = append(units, u)
		}
	}
	return units
}

// unitParent reads ?parent= of a boundary or indicator layer: a unit of
// its hierarchy, whose descendants are kept.
func unitParent(c *fiber.Ctx, l *layer) (string, error) {
	parent := strings.Clone(c.Query("parent"))
	if parent != "" {
		if _, ok := l.h.Unit(parent); !ok {
			return "", fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("unknown parent %q in %s; list units with GET /api/v1/areas?hierarchy=%s", parent, l.h.Name(), l.h.Name()))
		}
	}
	return parent, nil
}

// noTileParent refuses ?parent= on the tiles of boundary and indicator
// layers, which are cut to the token's areas only.
func noTileParent(c *fiber.Ctx, l *layer) error {
	if c.Query("parent") != "" {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("parent applies to the tiles of the live layers; tiles of %s hold every unit your token sees (its GeoJSON and OGC items take parent)", l.id))
	}
	return nil
}

// unitProperties are the properties every feature carries; empty optional
// names are null, as GIS clients expect of missing values.
func unitProperties(h *geo.Hierarchy, u geo.Unit) map[string]any {
	opt := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	return map[string]any{
		"code": u.Code, "name": u.Name, "name_en": opt(u.NameEn), "full_name": opt(u.FullName),
		"full_name_en": opt(u.FullNameEn), "level": u.Level, "parent": opt(u.Parent), "hierarchy": h.Name(),
	}
}

// kpiQuery is what an indicator layer request asks for: the window and the
// indicators (nil: all of them, all).
type kpiQuery struct {
	w   aggregate.Window
	ids []string
	all []string
}

// indicators are those of the catalog, the datasets' included.
func (g *Server) indicators() []aggregate.Definition {
	if g.d.Indicators != nil {
		return g.d.Indicators()
	}
	return aggregate.Catalog()
}

// catalogIDs are the ids of the catalog's indicators, in its order.
func (g *Server) catalogIDs() []string {
	cat := g.indicators()
	ids := make([]string, len(cat))
	for i, d := range cat {
		ids[i] = d.ID
	}
	return ids
}

// parseKPIQuery reads ?window= and ?kpi=, which only indicator layers take.
func (g *Server) parseKPIQuery(c *fiber.Ctx, l *layer) (kpiQuery, error) {
	// The routes take the parameters of every kind of layer; those of the
	// live layers mean nothing here, and are refused rather than ignored.
	if c.Query("status") != "" {
		return kpiQuery{}, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("status applies to the %s and %s layers only; %s draws units", camerasLayer, sensorsLayer, l.id))
	}
	if c.Query("cell") != "" {
		return kpiQuery{}, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("cell applies to %s only; %s draws units", densityLayer, l.id))
	}
	rawKPI, rawWindow := c.Query("kpi"), c.Query("window")
	if !l.indicators {
		for _, p := range [][2]string{{"kpi", rawKPI}, {"window", rawWindow}} {
			if p[1] != "" {
				return kpiQuery{}, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s applies to indicator layers only; use %s%s", p[0], l.id, indicatorSuffix))
			}
		}
		return kpiQuery{}, nil
	}
	w, err := aggregate.ParseWindow(rawWindow)
	if err != nil {
		return kpiQuery{}, fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	q := kpiQuery{w: w, all: g.catalogIDs()}
	if rawKPI == "" {
		return q, nil
	}
	known := q.all
	for _, id := range strings.Split(rawKPI, ",") {
		id = strings.TrimSpace(id)
		if !slices.Contains(known, id) {
			return kpiQuery{}, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("unknown kpi %q; known: %s", id, strings.Join(known, ", ")))
		}
		if !slices.Contains(q.ids, id) {
			q.ids = append(q.ids, id)
		}
	}
	return q, nil
}

// kpiIDs are the indicator properties a layer's features carry.
func (q kpiQuery) kpiIDs() []string {
	if q.ids != nil {
		return q.ids
	}
	return q.all
}

// addKPIs flattens a unit's snapshot into its properties. A unit the
// figures do not cover keeps every indicator property, as null.
func (q kpiQuery) addKPIs(props map[string]any, snap aggregate.Snapshot, ok bool) {
	props["window"] = string(q.w)
	props["as_of"] = nil
	if ok && !snap.AsOf.IsZero() {
		props["as_of"] = snap.AsOf.Format(time.RFC3339)
	}
	for _, id := range q.kpiIDs() {
		props[id] = nil
		if ok {
			if v, found := snap.KPIs[id]; found {
				props[id] = v
			}
		}
	}
	if ok && q.ids == nil {
		for id, v := range snap.KPIs {
			if _, set := props[id]; !set {
				props[id] = v
			}
		}
	}
}

// snapshotParent narrows a level's figures to what the principal can see
// when its scope is one unit above the level: a province's desk reads its
// communes, not the country's.
func snapshotParent(p auth.Principal, l *layer, parent string) string {
	// A token's areas are units of the current hierarchy: in another, the
	// same code may be another unit, so nothing is narrowed there.
	if parent != "" || p.Unrestricted() || len(p.Areas) != 1 || !l.current {
		return parent
	}
	u, ok := l.h.Unit(p.Areas[0])
	if !ok || slices.Index(l.h.Levels(), u.Level) >= slices.Index(l.h.Levels(), l.level) {
		return ""
	}
	return u.Code
}

// readSnapshots reads the figures of a layer's units, by code.
func (g *Server) readSnapshots(c *fiber.Ctx, l *layer, parent string, w aggregate.Window) (map[string]aggregate.Snapshot, error) {
	ctx, cancel := context.WithTimeout(c.UserContext(), g.cfg.RequestTimeout)
	defer cancel()
	snaps, err := g.d.Figures.LevelSnapshots(ctx, l.h.Name(), l.level, snapshotParent(g.d.Access.Principal(c), l, parent), w)
	if err != nil {
		return nil, answer.FiguresError(err)
	}
	return byArea(snaps), nil
}

func byArea(snaps []aggregate.Snapshot) map[string]aggregate.Snapshot {
	out := make(map[string]aggregate.Snapshot, len(snaps))
	for _, s := range snaps {
		out[s.Area] = s
	}
	return out
}

// appendFeatures writes units as comma-separated GeoJSON features, with
// geometry for zoom (full detail below 0) and, on indicator layers, their
// figures from snaps.
func appendFeatures(b []byte, l *layer, units []geo.Unit, zoom int, q kpiQuery, snaps map[string]aggregate.Snapshot) ([]byte, error) {
	var err error
	for i, u := range units {
		if i > 0 {
			b = append(b, ',')
		}
		mp, _ := l.geom.Geometry(u.Code, zoom)
		props := unitProperties(l.h, u)
		if l.indicators {
			snap, ok := snaps[u.Code]
			q.addKPIs(props, snap, ok)
		}
		if b, err = appendFeature(b, u.Code, mp, props, nil); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// optionalBBox reads ?bbox= when given; nil means no bbox.
func optionalBBox(c *fiber.Ctx, allowHeights bool) (*orb.Bound, error) {
	raw := c.Query("bbox")
	if raw == "" {
		return nil, nil
	}
	b, err := parseBBox(raw, allowHeights)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// parseBBox reads minLon,minLat,maxLon,maxLat; OGC clients may send six
// numbers, heights included, which heights lets through and drops.
func parseBBox(raw string, heights bool) (orb.Bound, error) {
	bad := func(why string) (orb.Bound, error) {
		return orb.Bound{}, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("bbox %q %s; want minLon,minLat,maxLon,maxLat in degrees", raw, why))
	}
	parts := strings.Split(raw, ",")
	if len(parts) != 4 && !(heights && len(parts) == 6) {
		return bad(fmt.Sprintf("has %d numbers", len(parts)))
	}
	v := make([]float64, len(parts))
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return bad(fmt.Sprintf("has %q, which is not a number", p))
		}
		v[i] = f
	}
	if len(v) == 6 {
		v = []float64{v[0], v[1], v[3], v[4]}
	}
	switch {
	case v[0] < -180 || v[2] > 180 || v[1] < -90 || v[3] > 90 || v[2] < -180 || v[0] > 180 || v[3] < -90 || v[1] > 90:
		return bad("is out of range (longitude -180..180, latitude -90..90)")
	case v[0] > v[2] || v[1] > v[3]:
		return bad("has a minimum above its maximum")
	}
	return orb.Bound{Min: orb.Point{v[0], v[1]}, Max: orb.Point{v[2], v[3]}}, nil
}

// parseZoom reads a zoom level parameter, name being how the request
// calls it.
func parseZoom(name, raw string) (int, error) {
	z, err := strconv.Atoi(raw)
	if err != nil || z < 0 || z > geo.MaxZoom {
		return 0, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s %q must be an integer from 0 to %d", name, raw, geo.MaxZoom))
	}
	return z, nil
}

// snapshotCache shares a reading of a level's figures between the tiles of
// one map view: one query to storage, not one per tile.
//
// Concurrency: safe for concurrent use.
type snapshotCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[snapshotKey]*snapshotEntry
}

type snapshotKey struct {
	hierarchy, level, parent string
	w                        aggregate.Window
}

type snapshotEntry struct {
	done  chan struct{} // closed once snaps and err are set
	at    time.Time
	snaps map[string]aggregate.Snapshot
	err   error
}

func newSnapshotCache(ttl time.Duration, max int) *snapshotCache {
	return &snapshotCache{ttl: ttl, max: max, entries: map[snapshotKey]*snapshotEntry{}}
}

// get returns the figures for k, read by load when no fresh reading is
// cached or under way. load runs on a context that outlives ctx, so one
// client leaving does not fail the others waiting for the same reading.
func (sc *snapshotCache) get(ctx context.Context, k snapshotKey, timeout time.Duration, load func(context.Context) ([]aggregate.Snapshot, error)) (map[string]aggregate.Snapshot, error) {
	sc.mu.Lock()
	e := sc.entries[k]
	if e != nil {
		select {
		case <-e.done:
			if e.err != nil || time.Since(e.at) > sc.ttl {
				e = nil
			}
		default:
		}
	}
	if e == nil {
		e = &snapshotEntry{done: make(chan struct{})}
		sc.evictLocked()
		sc.entries[k] = e
		sc.mu.Unlock()
		sc.fill(ctx, e, timeout, load)
		return e.snaps, e.err
	}
	sc.mu.Unlock()
	select {
	case <-e.done:
		return e.snaps, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for figures: %w", ctx.Err())
	}
}

// fill runs load for e and releases its waiters, whatever load does.
func (sc *snapshotCache) fill(ctx context.Context, e *snapshotEntry, timeout time.Duration, load func(context.Context) ([]aggregate.Snapshot, error)) {
	e.err = errors.New("reading figures was interrupted")
	defer func() {
		e.at = time.Now()
		close(e.done)
	}()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	snaps, err := load(lctx)
	e.snaps, e.err = byArea(snaps), err
}

// evictLocked makes room for one entry: stale and failed readings go
// first, then the oldest.
func (sc *snapshotCache) evictLocked() {
	if len(sc.entries) < sc.max {
		return
	}
	var oldest snapshotKey
	var oldestAt time.Time
	found := false
	for k, e := range sc.entries {
		select {
		case <-e.done:
		default:
			continue // a reading under way has waiters
		}
		if e.err != nil || time.Since(e.at) > sc.ttl {
			delete(sc.entries, k)
			continue
		}
		if !found || e.at.Before(oldestAt) {
			oldest, oldestAt, found = k, e.at, true
		}
	}
	if len(sc.entries) >= sc.max && found {
		delete(sc.entries, oldest)
	}
}
