package gis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/answer"
)

// OGC API – Features, Part 1: Core, in GeoJSON, so desktop GIS opens the
// layers as a feature service.
const (
	crs84       = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
	confCore    = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
	confGeoJSON = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"
	typeJSON    = "application/json"
	typeGeoJSON = "application/geo+json"
	typeOpenAPI = "application/vnd.oai.openapi+json;version=3.1"
	ogcPageSize = 100
	ogcMaxLimit = 1000 // a page of communes at full detail is a few MB
	// ogcMaxOffset bounds offset far beyond any collection, so that
	// offset+limit cannot overflow whatever a client sends.
	ogcMaxOffset = math.MaxInt32
	ogcLandingAt = "/ogc"
)

type ogcLink struct {
	Href  string `json:"href"`
	Rel   string `json:"rel"`
	Type  string `json:"type,omitempty"`
	Title string `json:"title,omitempty"`
}

// ogcFormat accepts f=json, which is what the API answers anyway.
func ogcFormat(c *fiber.Ctx) error {
	if f := c.Query("f"); f != "" && f != "json" {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("f %q is not served: this API answers JSON and GeoJSON only (f=json)", f))
	}
	return nil
}

type ogcLandingBody struct {
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Links       []ogcLink `json:"links"`
}

func (g *Server) ogcLanding(c *fiber.Ctx) error {
	if err := ogcFormat(c); err != nil {
		return err
	}
	desc := "Boundaries of administrative units and their indicators, one collection per hierarchy level."
	if len(g.live) > 0 {
		ids := make([]string, len(g.live))
		for i, l := range g.live {
			ids[i] = l.id
		}
		desc += " Live collections: " + strings.Join(ids, ", ") + "."
	}
	c.Status(fiber.StatusOK)
	return c.JSON(ogcLandingBody{
		Title:       "iocd administrative units",
		Description: desc,
		Links: []ogcLink{
			{Href: g.d.Links.Href(c, ogcLandingAt, nil), Rel: "self", Type: typeJSON, Title: "This document"},
			{Href: g.d.Links.Href(c, ogcLandingAt+"/conformance", nil), Rel: "conformance", Type: typeJSON, Title: "Conformance classes"},
			{Href: g.d.Links.Href(c, ogcLandingAt+"/collections", nil), Rel: "data", Type: typeJSON, Title: "Collections"},
			// The API description declares limit's default and maximum,
			// from which GDAL (3.8 and later) and QGIS choose their page size.
			{Href: g.d.Links.Href(c, "/api/v1/openapi.json", nil), Rel: "service-desc", Type: typeOpenAPI, Title: "The API description (OpenAPI 3.1)"},
		},
	})
}

func (g *Server) ogcConformance(c *fiber.Ctx) error {
	if err := ogcFormat(c); err != nil {
		return err
	}
	c.Status(fiber.StatusOK)
	return c.JSON(map[string][]string{"conformsTo": {confCore, confGeoJSON, confQueryables, confQueryParam}})
}

type ogcSpatial struct {
	BBox [][4]float64 `json:"bbox"`
	CRS  string       `json:"crs"`
}

type ogcCollectionBody struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	ItemType    string `json:"itemType"`
	Extent      struct {
		Spatial ogcSpatial `json:"spatial"`
	} `json:"extent"`
	CRS   []string  `json:"crs"`
	Links []ogcLink `json:"links"`
}

func (g *Server) collection(c *fiber.Ctx, l *layer) ogcCollectionBody {
	_, b := g.extent(g.d.Access.Principal(c), l)
	desc := fmt.Sprintf("The %s units of %s; feature id and code are the unit code.", l.level, l.h.Name())
	if l.indicators {
		desc += " Each carries its indicators for the window asked with ?window= (today, 24h, 7d, 30d; default today); ?kpi= picks indicators."
	}
	out := ogcCollectionBody{
		ID: l.id, Title: l.title(), Description: desc, ItemType: "feature", CRS: []string{crs84},
		Links: g.collectionLinks(c, l.id),
	}
	out.Extent.Spatial = ogcSpatial{BBox: [][4]float64{bbox4(b)}, CRS: crs84}
	return out
}

func (g *Server) ogcCollections(c *fiber.Ctx) error {
	if err := ogcFormat(c); err != nil {
		return err
	}
	out := struct {
		Links       []ogcLink           `json:"links"`
		Collections []ogcCollectionBody `json:"collections"`
	}{
		Links:       []ogcLink{{Href: g.d.Links.Href(c, ogcLandingAt+"/collections", nil), Rel: "self", Type: typeJSON, Title: "This document"}},
		Collections: make([]ogcCollectionBody, 0, len(g.layers)),
	}
	for _, l := range g.layers {
		out.Collections = append(out.Collections, g.collection(c, l))
	}
	for _, l := range g.live {
		out.Collections = append(out.Collections, g.liveCollection(c, l))
	}
	c.Status(fiber.StatusOK)
	return c.JSON(out)
}

func (g *Server) ogcCollection(c *fiber.Ctx) error {
	l, ll, err := g.lookup(c.Params("collectionId"))
	if err != nil {
		return err
	}
	if err := ogcFormat(c); err != nil {
		return err
	}
	c.Status(fiber.StatusOK)
	if ll != nil {
		return c.JSON(g.liveCollection(c, ll))
	}
	return c.JSON(g.collection(c, l))
}

// ogcPage reads limit and offset. A limit above ogcMaxLimit is lowered to
// it, as the standard has servers cap rather than refuse; anything that is
// not a whole number in range is refused with the range.
func ogcPage(c *fiber.Ctx) (limit, offset int, err error) {
	limit, offset = ogcPageSize, 0
	if raw := c.Query("limit"); raw != "" {
		v, err := strconv.ParseInt(raw, 10, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) || v < 1 {
			return 0, 0, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("limit %q must be a whole number from 1 to %d (larger ones are served as %d; default %d)", raw, ogcMaxLimit, ogcMaxLimit, ogcPageSize))
		}
		limit = int(min(v, ogcMaxLimit)) // ParseInt saturates at MaxInt64 on ErrRange
	}
	if raw := c.Query("offset"); raw != "" {
		v, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || v < 0 || v > ogcMaxOffset {
			return 0, 0, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("offset %q must be a whole number from 0 to %d (default 0)", raw, ogcMaxOffset))
		}
		offset = int(v)
	}
	return limit, offset, nil
}

// pageBounds are the indexes [lo, hi) of the page at offset of n items,
// limit at most; empty past the end.
func pageBounds(n, offset, limit int) (lo, hi int) {
	lo = min(offset, n)
	return lo, lo + min(limit, n-lo)
}

// ogcItems answers a page of a collection's features, ordered by code.
func (g *Server) ogcItems(c *fiber.Ctx) error {
	l, ll, err := g.lookup(c.Params("collectionId"))
	if err != nil {
		return err
	}
	if err := ogcFormat(c); err != nil {
		return err
	}
	limit, offset, err := ogcPage(c)
	if err != nil {
		return err
	}
	if ll != nil {
		return g.liveItems(c, ll, limit, offset)
	}
	bbox, err := optionalBBox(c, true)
	if err != nil {
		return err
	}
	q, err := g.parseKPIQuery(c, l)
	if err != nil {
		return err
	}
	parent, err := unitParent(c, l)
	if err != nil {
		return err
	}
	units := filterUnits(g.selectUnits(g.d.Access.Principal(c), l, parent, bbox), unitFilter(c))
	lo, hi := pageBounds(len(units), offset, limit)
	page := units[lo:hi]
	var snaps map[string]aggregate.Snapshot
	if l.indicators && len(page) > 0 {
		if snaps, err = g.readSnapshots(c, l, parent, q.w); err != nil {
			return err
		}
	}
	return g.sendItems(c, l.id, limit, offset, len(units), len(page), func(b []byte) ([]byte, error) {
		return appendFeatures(b, l, page, -1, q, snaps)
	})
}

// sendItems answers a page of matched features of collection id, which
// appendPage writes, with links to it and the pages around it.
func (g *Server) sendItems(c *fiber.Ctx, id string, limit, offset, matched, returned int, appendPage func([]byte) ([]byte, error)) error {
	path := ogcLandingAt + "/collections/" + id + "/items"
	at := func(off, lim int) string {
		v := requestQuery(c)
		v.Set("offset", strconv.Itoa(off))
		v.Set("limit", strconv.Itoa(lim))
		return g.d.Links.Href(c, path, v)
	}
	links := []ogcLink{
		{Href: g.d.Links.Href(c, path, requestQuery(c)), Rel: "self", Type: typeGeoJSON, Title: "This page"},
		{Href: g.d.Links.Href(c, ogcLandingAt+"/collections/"+id, nil), Rel: "collection", Type: typeJSON, Title: "The collection"},
	}
	if offset+returned < matched {
		// The next page is the largest a page holds, whatever this one
		// asked: a client that follows next reads the whole collection, and
		// GDAL before 3.8 asks for 10 features unless told otherwise, which
		// is 333 requests for the communes instead of 4.
		links = append(links, ogcLink{Href: at(offset+returned, ogcMaxLimit), Rel: "next", Type: typeGeoJSON, Title: "Next page"})
	}
	if offset > 0 {
		links = append(links, ogcLink{Href: at(max(offset-limit, 0), limit), Rel: "prev", Type: typeGeoJSON, Title: "Previous page"})
	}
	lj, err := answer.MarshalJSON(links)
	if err != nil {
		return fmt.Errorf("encode links: %w", err)
	}

	b := make([]byte, 0, 64<<10)
	b = append(b, `{"type":"FeatureCollection","numberMatched":`...)
	b = strconv.AppendInt(b, int64(matched), 10)
	b = append(b, `,"numberReturned":`...)
	b = strconv.AppendInt(b, int64(returned), 10)
	b = append(b, `,"timeStamp":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","links":`...)
	b = append(b, lj...)
	b = append(b, `,"features":[`...)
	if b, err = appendPage(b); err != nil {
		return err
	}
	b = append(b, "]}"...)
	c.Set(fiber.HeaderContentType, typeGeoJSON)
	c.Status(fiber.StatusOK)
	return c.Send(b)
}

// requestQuery is a copy of the request's query parameters.
func requestQuery(c *fiber.Ctx) url.Values {
	v := url.Values{}
	c.Request().URI().QueryArgs().VisitAll(func(k, val []byte) { v.Add(string(k), string(val)) })
	return v
}

// ogcItem answers one feature of a collection.
func (g *Server) ogcItem(c *fiber.Ctx) error {
	l, ll, err := g.lookup(c.Params("collectionId"))
	if err != nil {
		return err
	}
	if err := ogcFormat(c); err != nil {
		return err
	}
	if ll != nil {
		return g.liveItem(c, ll)
	}
	code := c.Params("featureId")
	u, ok := l.h.Unit(code)
	if !ok || u.Level != l.level {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no feature %q in collection %s; feature ids are %s unit codes", code, l.id, l.level))
	}
	p := g.d.Access.Principal(c)
	if !visible(p, l.h, code) {
		return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("your token does not cover area %s (it covers %s)", code, strings.Join(p.Areas, ", ")))
	}
	q, err := g.parseKPIQuery(c, l)
	if err != nil {
		return err
	}
	props := unitProperties(l.h, u)
	if l.indicators {
		ctx, cancel := context.WithTimeout(c.UserContext(), g.cfg.RequestTimeout)
		snap, err := g.d.Figures.Snapshot(ctx, l.h.Name(), code, q.w)
		cancel()
		if err != nil {
			return answer.FiguresError(err)
		}
		q.addKPIs(props, snap, true)
	}
	path := ogcLandingAt + "/collections/" + l.id
	links := []ogcLink{
		{Href: g.d.Links.Href(c, path+"/items/"+url.PathEscape(code), requestQuery(c)), Rel: "self", Type: typeGeoJSON, Title: "This feature"},
		{Href: g.d.Links.Href(c, path, nil), Rel: "collection", Type: typeJSON, Title: "The collection"},
	}
	mp, _ := l.h.Geometry(code)
	b, err := appendFeature(make([]byte, 0, 16<<10), code, mp, props, links)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, typeGeoJSON)
	c.Status(fiber.StatusOK)
	return c.Send(b)
}
