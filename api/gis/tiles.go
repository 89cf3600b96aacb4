package gis

import (
	"bytes"
	"compress/gzip"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/maptile"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/answer"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/geo"
)

// MVTContentType is the media type of vector tiles. The server's
// compression leaves such answers alone: a tile sent gzip is encoded
// already, and a plain tile's ETag names its plain bytes.
const MVTContentType = "application/vnd.mapbox-vector-tile"

const (
	// Boundaries do not change while the process runs; figures do. Tiles
	// depend on the token's scope, hence private.
	boundaryTileCacheControl  = "private, max-age=86400"
	indicatorTileCacheControl = "private, max-age=15"
	// The boundary tile cache holds what a province-wide map session
	// revisits, within a fixed amount of memory.
	tileCacheBytes   = 64 << 20
	tileCacheEntries = 8192
)

// encodedTile is a tile ready to send in either encoding; an empty tile
// has no body.
type encodedTile struct {
	plain, gz       []byte
	plainTag, gzTag string
}

func newEncodedTile(plain []byte) (*encodedTile, error) {
	t := &encodedTile{plain: plain}
	if len(plain) == 0 {
		return t, nil
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(plain); err != nil {
		return nil, fmt.Errorf("gzip tile: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip tile: %w", err)
	}
	t.gz = b.Bytes()
	t.plainTag, t.gzTag = etag(t.plain), etag(t.gz)
	return t, nil
}

func (t *encodedTile) size() int { return len(t.plain) + len(t.gz) + 256 }

// etag is a strong validator: a hash of the exact bytes sent.
func etag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

type tileKey struct {
	layer   string
	z, x, y uint32
	scope   string
}

// scopeKey names what a principal sees: tokens with the same areas see the
// same tiles and share cache entries.
func scopeKey(p auth.Principal) string {
	if p.Unrestricted() {
		return "*"
	}
	areas := slices.Clone(p.Areas)
	slices.Sort(areas)
	return strings.Join(areas, ",")
}

// tileCache keeps encoded boundary tiles, least recently used out first,
// within a number of bytes and of tiles.
//
// Concurrency: safe for concurrent use.
type tileCache struct {
	maxBytes, maxEntries int

	mu    sync.Mutex
	bytes int
	order *list.List // of *tileCacheEntry, most recent first
	items map[tileKey]*list.Element
}

type tileCacheEntry struct {
	key  tileKey
	tile *encodedTile
}

func newTileCache(maxBytes, maxEntries int) *tileCache {
	return &tileCache{maxBytes: maxBytes, maxEntries: maxEntries, order: list.New(), items: map[tileKey]*list.Element{}}
}

func (tc *tileCache) get(k tileKey) (*encodedTile, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	e, ok := tc.items[k]
	if !ok {
		return nil, false
	}
	tc.order.MoveToFront(e)
	return e.Value.(*tileCacheEntry).tile, true
}

func (tc *tileCache) add(k tileKey, t *encodedTile) {
	if t.size() > tc.maxBytes {
		return
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if e, ok := tc.items[k]; ok {
		tc.bytes -= e.Value.(*tileCacheEntry).tile.size()
		tc.order.Remove(e)
		delete(tc.items, k)
	}
	for tc.order.Len() > 0 && (tc.bytes+t.size() > tc.maxBytes || tc.order.Len() >= tc.maxEntries) {
		old := tc.order.Back()
		ent := old.Value.(*tileCacheEntry)
		tc.bytes -= ent.tile.size()
		tc.order.Remove(old)
		delete(tc.items, ent.key)
	}
	tc.items[k] = tc.order.PushFront(&tileCacheEntry{key: k, tile: t})
	tc.bytes += t.size()
}

// tileCoord reads one of z, x, y from the path.
func tileCoord(name, raw string, limit uint64) (uint32, error) {
	v, err := strconv.ParseUint(raw, 10, 32)
	if err != nil || v > limit {
		return 0, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s %q must be an integer from 0 to %d", name, raw, limit))
	}
	return uint32(v), nil
}

// tile answers one Mapbox Vector Tile of a layer.
func (g *Server) tile(c *fiber.Ctx) error {
	l, ll, err := g.lookup(c.Params("layer"))
	if err != nil {
		return err
	}
	rawY, ok := strings.CutSuffix(c.Params("y"), ".mvt")
	if !ok {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no tile %q: tiles are /tiles/{layer}/{z}/{x}/{y}.mvt", c.Path()))
	}
	z, err := tileCoord("z", c.Params("z"), geo.MaxZoom)
	if err != nil {
		return err
	}
	last := uint64(1)<<z - 1
	x, err := tileCoord("x", c.Params("x"), last)
	if err != nil {
		return err
	}
	y, err := tileCoord("y", rawY, last)
	if err != nil {
		return err
	}
	if ll != nil {
		return g.liveTile(c, ll, maptile.New(x, y, maptile.Zoom(z)))
	}
	if err := noTileParent(c, l); err != nil {
		return err
	}
	q, err := g.parseKPIQuery(c, l)
	if err != nil {
		return err
	}
	p := g.d.Access.Principal(c)
	t := maptile.New(x, y, maptile.Zoom(z))
	if !l.indicators {
		key := tileKey{l.id, z, x, y, scopeKey(p)}
		et, ok := g.tiles.get(key)
		if !ok {
			if et, err = g.renderTile(l, t, tileUnits(l, t, p), kpiQuery{}, nil); err != nil {
				return err
			}
			g.tiles.add(key, et)
		}
		return sendTile(c, et, boundaryTileCacheControl)
	}
	codes := tileUnits(l, t, p)
	var snaps map[string]aggregate.Snapshot
	if len(codes) > 0 { // an empty tile needs no figures
		parent := snapshotParent(p, l, "")
		ctx, cancel := context.WithTimeout(c.UserContext(), g.cfg.RequestTimeout)
		defer cancel()
		snaps, err = g.snaps.get(ctx, snapshotKey{l.h.Name(), l.level, parent, q.w}, g.cfg.RequestTimeout,
			func(ctx context.Context) ([]aggregate.Snapshot, error) {
				return g.d.Figures.LevelSnapshots(ctx, l.h.Name(), l.level, parent, q.w)
			})
		if err != nil {
			return answer.FiguresError(err)
		}
	}
	et, err := g.renderTile(l, t, codes, q, snaps)
	if err != nil {
		return err
	}
	return sendTile(c, et, indicatorTileCacheControl)
}

// tileUnits lists the units of l whose box reaches t and p may see.
func tileUnits(l *layer, t maptile.Tile, p auth.Principal) []string {
	var codes []string
	for _, code := range l.geom.Intersecting(l.level, geo.TileBound(t)) {
		if visible(p, l.h, code) {
			codes = append(codes, code)
		}
	}
	return codes
}

// renderTile encodes units of l in t, their boundaries simplified for the
// tile's zoom.
func (g *Server) renderTile(l *layer, t maptile.Tile, codes []string, q kpiQuery, snaps map[string]aggregate.Snapshot) (*encodedTile, error) {
	features := make([]geo.Feature, 0, len(codes))
	for _, code := range codes {
		u, _ := l.h.Unit(code)
		mp, _ := l.geom.Geometry(code, int(t.Z))
		props := unitProperties(l.h, u)
		if l.indicators {
			snap, ok := snaps[code]
			q.addKPIs(props, snap, ok)
		}
		features = append(features, geo.Feature{ID: code, Geometry: mp, Properties: props})
	}
	body, err := geo.EncodeTile(l.id, t, features)
	if err != nil {
		return nil, fmt.Errorf("encode tile %s/%d/%d/%d: %w", l.id, t.Z, t.X, t.Y, err)
	}
	return newEncodedTile(body)
}

// sendTile answers with the tile in the encoding the client accepts: 204
// for an empty tile, 304 when the client holds the same bytes.
func sendTile(c *fiber.Ctx, t *encodedTile, cacheControl string) error {
	c.Set(fiber.HeaderCacheControl, cacheControl)
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	if len(t.plain) == 0 {
		c.Status(fiber.StatusNoContent)
		return nil
	}
	body, tag := t.plain, t.plainTag
	if acceptsGzip(c.Get(fiber.HeaderAcceptEncoding)) {
		body, tag = t.gz, t.gzTag
		c.Set(fiber.HeaderContentEncoding, "gzip")
	}
	c.Set(fiber.HeaderETag, tag)
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), tag) {
		c.Status(fiber.StatusNotModified)
		return nil
	}
	c.Set(fiber.HeaderContentType, MVTContentType)
	c.Status(fiber.StatusOK)
	return c.Send(body)
}

// acceptsGzip reads Accept-Encoding: gzip (or x-gzip, or *) with a
// non-zero quality.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "x-gzip" && name != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if q > 0 {
			return true
		}
	}
	return false
}

// etagMatches applies If-None-Match, which compares weakly.
func etagMatches(header, tag string) bool {
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == tag {
			return true
		}
	}
	return false
}

type tileJSONLayer struct {
	ID          string            `json:"id"`
	Description string            `json:"description"`
	Fields      map[string]string `json:"fields"`
	MinZoom     int               `json:"minzoom"`
	MaxZoom     int               `json:"maxzoom"`
}

type tileJSONBody struct {
	TileJSON     string          `json:"tilejson"`
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	Version      string          `json:"version"`
	Scheme       string          `json:"scheme"`
	Tiles        []string        `json:"tiles"`
	MinZoom      int             `json:"minzoom"`
	MaxZoom      int             `json:"maxzoom"`
	Bounds       [4]float64      `json:"bounds"`
	Center       [3]float64      `json:"center"`
	VectorLayers []tileJSONLayer `json:"vector_layers"`
}

// tileJSON describes a layer's tiles for map libraries (TileJSON 3.0.0).
func (g *Server) tileJSON(c *fiber.Ctx) error {
	file := c.Params("file")
	id, ok := strings.CutSuffix(file, ".json")
	if !ok {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no tile set %q: TileJSON is at /tiles/{layer}.json, tiles at /tiles/{layer}/{z}/{x}/{y}.mvt", file))
	}
	if ll, ok := g.liveByID[id]; ok {
		return g.liveTileJSON(c, ll)
	}
	l, err := g.layerByID(id)
	if err != nil {
		return err
	}
	if err := noTileParent(c, l); err != nil {
		return err
	}
	q, err := g.parseKPIQuery(c, l)
	if err != nil {
		return err
	}
	// Tiles of an indicator layer read the window and indicators asked for
	// here.
	tq := url.Values{}
	if l.indicators {
		if v := c.Query("window"); v != "" {
			tq.Set("window", v)
		}
		if q.ids != nil {
			tq.Set("kpi", strings.Join(q.ids, ","))
		}
	}
	_, b := g.extent(g.d.Access.Principal(c), l)
	fields := map[string]string{
		"code": "String", "name": "String", "name_en": "String", "full_name": "String",
		"full_name_en": "String", "level": "String", "parent": "String", "hierarchy": "String",
	}
	desc := fmt.Sprintf("Boundaries of the %s units of %s; id and code are the unit code.", l.level, l.h.Name())
	if l.indicators {
		fields["window"], fields["as_of"] = "String", "String"
		for _, id := range q.kpiIDs() {
			fields[id] = tileFieldType(id)
		}
		desc = fmt.Sprintf("Indicators of the %s units of %s for the window %s; a null indicator is left out of the tile.", l.level, l.h.Name(), q.w)
	}
	tilesURL := g.d.Links.Href(c, "/tiles/"+l.id+"/{z}/{x}/{y}.mvt", tq)
	center := b.Center()
	body := tileJSONBody{
		TileJSON: "3.0.0", Name: l.title(), Description: desc, Version: "1.0.0", Scheme: "xyz",
		Tiles: []string{tilesURL}, MinZoom: 0, MaxZoom: tileMaxZoom, Bounds: bbox4(b),
		Center:       [3]float64{math.Round(center[0]*1e6) / 1e6, math.Round(center[1]*1e6) / 1e6, float64(fitZoom(b))},
		VectorLayers: []tileJSONLayer{{ID: l.id, Description: desc, Fields: fields, MinZoom: 0, MaxZoom: tileMaxZoom}},
	}
	c.Status(fiber.StatusOK)
	return c.JSON(body)
}

// tileFieldType is how a vector tile carries indicator id: a breakdown
// (counts by type) as its JSON text, since tile values are scalars, every
// other indicator as a number.
func tileFieldType(id string) string {
	if d, ok := aggregate.Lookup(id); ok && d.Kind == "breakdown" {
		return "String"
	}
	return "Number"
}

// fitZoom is the zoom at which a bound about fills a 512-pixel view.
func fitZoom(b orb.Bound) int {
	span := max(b.Max[0]-b.Min[0], b.Max[1]-b.Min[1])
	if span <= 0 {
		return tileMaxZoom
	}
	z := int(math.Floor(math.Log2(360 / span)))
	return min(max(z+1, 0), tileMaxZoom)
}
