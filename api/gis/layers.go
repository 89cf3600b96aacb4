package gis

import (
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/paulmach/orb"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/answer"
)

const (
	// maxFineBBoxArea, in square degrees, bounds a GeoJSON request for the
	// finest level in detail to a few megabytes, about a province's
	// communes; the whole country's are over 30 MB.
	maxFineBBoxArea = 4.0
	// coarseZoom is the deepest zoom at which the finest level may be read
	// whole: simplified for it, Viet Nam's communes are about 9 MB.
	coarseZoom = 10
)

type layerLinks struct {
	GeoJSON  string `json:"geojson"`
	TileJSON string `json:"tilejson"`
	OGC      string `json:"ogc"`
}

type layerInfo struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Hierarchy string `json:"hierarchy"`
	// Level is empty for the live layers, which draw no units.
	Level string `json:"level,omitempty"`
	// Kind is boundaries, indicators, points or density.
	Kind string `json:"kind"`
	// Features is nil for density layers, whose cells depend on the request.
	Features *int               `json:"features"`
	Bounds   [4]float64         `json:"bounds"`
	MinZoom  int                `json:"minzoom"`
	MaxZoom  int                `json:"maxzoom"`
	Links    layerLinks         `json:"links"`
	KPIs     []string           `json:"kpis,omitempty"`
	Windows  []aggregate.Window `json:"windows,omitempty"`
	Statuses []string           `json:"statuses,omitempty"`
	CellSize *cellSizes         `json:"cell_size,omitempty"`
}

type layerCatalog struct {
	Layers []layerInfo `json:"layers"`
}

// catalog lists the layers with what the token sees of each.
func (g *Server) catalog(c *fiber.Ctx) error {
	p := g.d.Access.Principal(c)
	live, err := g.liveCatalog(c)
	if err != nil {
		return err
	}
	out := layerCatalog{Layers: make([]layerInfo, 0, len(g.layers)+len(live))}
	for _, l := range g.layers {
		n, b := g.extent(p, l)
		info := layerInfo{
			ID: l.id, Title: l.title(), Hierarchy: l.h.Name(), Level: l.level, Kind: l.kind(),
			Features: &n, Bounds: bbox4(b), MinZoom: 0, MaxZoom: tileMaxZoom,
			Links: layerLinks{
				GeoJSON:  g.d.Links.Href(c, "/api/v1/layers/"+l.id+".geojson", nil),
				TileJSON: g.d.Links.Href(c, "/tiles/"+l.id+".json", nil),
				OGC:      g.d.Links.Href(c, "/ogc/collections/"+l.id, nil),
			},
		}
		if l.indicators {
			info.KPIs = g.catalogIDs()
			info.Windows = aggregate.Windows
		}
		out.Layers = append(out.Layers, info)
	}
	out.Layers = append(out.Layers, live...)
	c.Status(fiber.StatusOK)
	return c.JSON(out)
}

// bbox4 is a bound as [minLon, minLat, maxLon, maxLat], to the carried
// precision.
func bbox4(b orb.Bound) [4]float64 {
	r := func(v float64) float64 { return math.Round(v*1e6) / 1e6 }
	return [4]float64{r(b.Min[0]), r(b.Min[1]), r(b.Max[0]), r(b.Max[1])}
}

// geojson answers a layer as one GeoJSON FeatureCollection.
func (g *Server) geojson(c *fiber.Ctx) error {
	raw := c.Params("layer")
	id, ok := strings.CutSuffix(raw, ".geojson")
	if !ok {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no layer file %q: ask for {layer}.geojson, e.g. vn-2025.commune.geojson", raw))
	}
	if ll, ok := g.liveByID[id]; ok {
		return g.liveGeoJSON(c, ll)
	}
	l, err := g.layerByID(id)
	if err != nil {
		return err
	}
	zoom := -1
	if raw := c.Query("zoom"); raw != "" {
		if zoom, err = parseZoom("zoom", raw); err != nil {
			return err
		}
	}
	bbox, err := optionalBBox(c, false)
	if err != nil {
		return err
	}
	parent, err := unitParent(c, l)
	if err != nil {
		return err
	}
	q, err := g.parseKPIQuery(c, l)
	if err != nil {
		return err
	}
	if l.finest && parent == "" && (zoom < 0 || zoom > coarseZoom) {
		switch {
		case bbox == nil:
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s has %d features, too many to send at once in detail: pass parent= (a unit code), a bbox= of at most %g square degrees, or zoom=%d or lower",
				l.id, l.count, maxFineBBoxArea, coarseZoom))
		case bboxArea(*bbox) > maxFineBBoxArea:
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("bbox covers %.1f square degrees; %s takes at most %g without parent= (a unit code) or zoom=%d or lower",
				bboxArea(*bbox), l.id, maxFineBBoxArea, coarseZoom))
		}
	}
	units := g.selectUnits(g.d.Access.Principal(c), l, parent, bbox)
	var snaps map[string]aggregate.Snapshot
	if l.indicators && len(units) > 0 {
		if snaps, err = g.readSnapshots(c, l, parent, q.w); err != nil {
			return err
		}
	}
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"type":"FeatureCollection","name":`...)
	b = strconv.AppendQuote(b, l.id)
	b = append(b, `,"features":[`...)
	if b, err = appendFeatures(b, l, units, zoom, q, snaps); err != nil {
		return err
	}
	b = append(b, "]}"...)
	c.Set(fiber.HeaderContentType, "application/geo+json")
	c.Status(fiber.StatusOK)
	return c.Send(b)
}

// FeatureCollection writes the units codes of a boundary layer (id
// "{hierarchy}.{level}") as a GeoJSON FeatureCollection named name, each
// with its unit's properties and those props gives it, geometry
// simplified for zoom (full detail below 0): how answers that are not
// layers, such as a relationship's residuals, are drawn on a map.
func (g *Server) FeatureCollection(id, name string, codes []string, zoom int, props func(code string) map[string]any) ([]byte, error) {
	l, ok := g.byID[id]
	if !ok || l.indicators {
		return nil, fmt.Errorf("there are no boundaries of %s to draw", id)
	}
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"type":"FeatureCollection","name":`...)
	b = strconv.AppendQuote(b, name)
	b = append(b, `,"features":[`...)
	n := 0
	for _, code := range codes {
		u, ok := l.h.Unit(code)
		if !ok || u.Level != l.level {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		mp, _ := l.geom.Geometry(code, zoom)
		p := unitProperties(l.h, u)
		maps.Copy(p, props(code))
		var err error
		if b, err = appendFeature(b, code, mp, p, nil); err != nil {
			return nil, err
		}
	}
	return append(b, "]}"...), nil
}

func bboxArea(b orb.Bound) float64 { return (b.Max[0] - b.Min[0]) * (b.Max[1] - b.Min[1]) }

// appendFeature appends a GeoJSON Feature. Geometry is written by hand:
// through encoding/json a full level's positions cost several times more.
func appendFeature(b []byte, id string, mp orb.MultiPolygon, props map[string]any, links []ogcLink) ([]byte, error) {
	return appendFeatureWith(b, id, func(b []byte) []byte { return appendMultiPolygon(b, mp) }, props, links)
}

// appendFeatureWith appends a GeoJSON Feature whose geometry geom writes.
func appendFeatureWith(b []byte, id string, geom func([]byte) []byte, props map[string]any, links []ogcLink) ([]byte, error) {
	b = append(b, `{"type":"Feature","id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"geometry":`...)
	b = geom(b)
	pj, err := answer.MarshalJSON(props)
	if err != nil {
		return nil, fmt.Errorf("encode properties of %s: %w", id, err)
	}
	b = append(b, `,"properties":`...)
	b = append(b, pj...)
	if links != nil {
		lj, err := answer.MarshalJSON(links)
		if err != nil {
			return nil, fmt.Errorf("encode links of %s: %w", id, err)
		}
		b = append(b, `,"links":`...)
		b = append(b, lj...)
	}
	return append(b, '}'), nil
}

// appendMultiPolygon writes every layer's geometry as a MultiPolygon, so a
// GIS client sees one geometry type per layer.
func appendMultiPolygon(b []byte, mp orb.MultiPolygon) []byte {
	if len(mp) == 0 {
		return append(b, "null"...)
	}
	b = append(b, `{"type":"MultiPolygon","coordinates":[`...)
	for i, poly := range mp {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, ring := range poly {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			for k, pt := range ring {
				if k > 0 {
					b = append(b, ',')
				}
				b = append(b, '[')
				b = strconv.AppendFloat(b, pt[0], 'f', -1, 64)
				b = append(b, ',')
				b = strconv.AppendFloat(b, pt[1], 'f', -1, 64)
				b = append(b, ']')
			}
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	return append(b, "]}"...)
}
