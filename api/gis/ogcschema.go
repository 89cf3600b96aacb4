package gis

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/answer"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
)

// What GIS clients read to type a collection's fields before they see its
// features: a feature's indicators are null wherever a unit has no figures
// yet, so the first page alone makes GDAL and QGIS type every rate a
// String. Each collection links
//
//   - its schema (rel describedBy, application/schema+json): a JSON Schema
//     of its GeoJSON features, whose properties GDAL's OAPIF driver reads
//     for field types;
//   - its queryables (OGC API Features Part 3): the properties that filter
//     /items as query parameters (code and name of units, status of
//     devices), with their types.
const (
	typeSchema     = "application/schema+json"
	relQueryables  = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
	confQueryables = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables"
	confQueryParam = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters"
	jsonSchema2020 = "https://json-schema.org/draft/2020-12/schema"
)

// schemaProp is one property of a schema, in the order clients list
// fields.
type schemaProp struct {
	name, typ, format, title string
	enum                     []string
}

func (p schemaProp) object() map[string]any {
	o := map[string]any{"type": p.typ}
	if p.format != "" {
		o["format"] = p.format
	}
	if p.title != "" {
		o["title"] = p.title
	}
	if p.enum != nil {
		o["enum"] = p.enum
	}
	return o
}

// appendProps writes props as a JSON object, in their order.
func appendProps(b []byte, props []schemaProp) ([]byte, error) {
	b = append(b, '{')
	for i, p := range props {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, p.name)
		b = append(b, ':')
		v, err := answer.MarshalJSON(p.object())
		if err != nil {
			return nil, fmt.Errorf("encode schema of %s: %w", p.name, err)
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// kpiSchemaType is the JSON type of an indicator's value: counts are
// integers, breakdowns objects (counts by key), the rest numbers.
func kpiSchemaType(d aggregate.Definition) string {
	switch d.Kind {
	case "count":
		return "integer"
	case "breakdown":
		return "object"
	}
	return "number"
}

// unitSchemaProps are the properties of a boundary or indicator layer's
// features, as unitProperties and kpiQuery.addKPIs write them.
func unitSchemaProps(l *layer, catalog []aggregate.Definition) []schemaProp {
	props := []schemaProp{
		{name: "code", typ: "string", title: "Unit code"}, {name: "name", typ: "string", title: "Name"},
		{name: "name_en", typ: "string"}, {name: "full_name", typ: "string"}, {name: "full_name_en", typ: "string"},
		{name: "level", typ: "string"}, {name: "parent", typ: "string", title: "Parent unit code"},
		{name: "hierarchy", typ: "string"},
	}
	if !l.indicators {
		return props
	}
	props = append(props, schemaProp{name: "window", typ: "string", enum: windowNames()},
		schemaProp{name: "as_of", typ: "string", format: "date-time"})
	for _, d := range catalog {
		props = append(props, schemaProp{name: d.ID, typ: kpiSchemaType(d), title: d.NameEn + " (" + d.Unit + ")"})
	}
	return props
}

func windowNames() []string {
	out := make([]string, len(aggregate.Windows))
	for i, w := range aggregate.Windows {
		out[i] = string(w)
	}
	return out
}

// liveSchemaProps are the properties of a live layer's features.
func liveSchemaProps(l *liveLayer) []schemaProp {
	if l.kind == densityKind {
		return []schemaProp{
			{name: "events", typ: "integer", title: "Camera events"}, {name: "critical", typ: "integer", title: "Critical camera events"},
			{name: "cell_size", typ: "number", title: "Cell size (degrees)"},
			{name: "window", typ: "string", enum: windowNames()}, {name: "since", typ: "string", format: "date-time"},
		}
	}
	return []schemaProp{
		{name: "id", typ: "string"}, {name: "kind", typ: "string", enum: device.Kinds}, {name: "name", typ: "string"},
		{name: "area_code", typ: "string"}, {name: "area_name", typ: "string"},
		{name: "status", typ: "string", enum: []string{"online", "offline"}},
		{name: "last_seen", typ: "string", format: "date-time"},
	}
}

// queryableProps are the properties that filter a collection's items.
func queryableProps(l *layer, ll *liveLayer) []schemaProp {
	switch {
	case l != nil:
		return []schemaProp{{name: "code", typ: "string", title: "Unit code"}, {name: "name", typ: "string", title: "Name"}}
	case ll.kind == pointsKind:
		return []schemaProp{{name: "status", typ: "string", enum: []string{"online", "offline"}}}
	}
	return nil
}

// collectionLinks are the links every collection document carries.
func (g *Server) collectionLinks(c *fiber.Ctx, id string) []ogcLink {
	path := ogcLandingAt + "/collections/" + id
	return []ogcLink{
		{Href: g.d.Links.Href(c, path, nil), Rel: "self", Type: typeJSON, Title: "This collection"},
		{Href: g.d.Links.Href(c, path+"/items", nil), Rel: "items", Type: typeGeoJSON, Title: "Features"},
		{Href: g.d.Links.Href(c, path+"/schema", nil), Rel: "describedBy", Type: typeSchema, Title: "JSON Schema of the features"},
		{Href: g.d.Links.Href(c, path+"/queryables", nil), Rel: relQueryables, Type: typeSchema, Title: "Properties that filter the items"},
	}
}

// ogcSchema answers the JSON Schema of a collection's GeoJSON features.
func (g *Server) ogcSchema(c *fiber.Ctx) error {
	l, ll, err := g.lookup(c.Params("collectionId"))
	if err != nil {
		return err
	}
	if err := ogcFormat(c); err != nil {
		return err
	}
	var id, title, geometry string
	var props []schemaProp
	additional := "false"
	if l != nil {
		id, title, geometry, props = l.id, l.title(), "MultiPolygon", unitSchemaProps(l, g.indicators())
	} else {
		id, title, props = ll.id, ll.title(), liveSchemaProps(ll)
		geometry = "Point"
		if ll.kind == densityKind {
			geometry = "Polygon"
		}
		if ll.device == device.Sensor {
			// Each latest reading adds {kind} and {kind}_observed_at.
			additional = `{"type":["number","string"]}`
		}
	}
	b := make([]byte, 0, 4096)
	b = append(b, `{"$schema":"`+jsonSchema2020+`","$id":`...)
	b = strconv.AppendQuote(b, g.d.Links.Href(c, ogcLandingAt+"/collections/"+id+"/schema", nil))
	b = append(b, `,"title":`...)
	b = strconv.AppendQuote(b, title+": features")
	b = append(b, `,"type":"object","required":["type","id","geometry","properties"],"properties":{"type":{"type":"string","enum":["Feature"]},"id":{"type":"string"},"geometry":{"type":"object","properties":{"type":{"type":"string","enum":["`+geometry+`"]},"coordinates":{"type":"array"}}},"properties":{"type":"object","properties":`...)
	if b, err = appendProps(b, props); err != nil {
		return err
	}
	b = append(b, `,"additionalProperties":`+additional+`}}}`...)
	return sendSchema(c, b)
}

// ogcQueryables answers a collection's queryables (Part 3).
func (g *Server) ogcQueryables(c *fiber.Ctx) error {
	l, ll, err := g.lookup(c.Params("collectionId"))
	if err != nil {
		return err
	}
	if err := ogcFormat(c); err != nil {
		return err
	}
	id, title := "", ""
	if l != nil {
		id, title = l.id, l.title()
	} else {
		id, title = ll.id, ll.title()
	}
	b := make([]byte, 0, 1024)
	b = append(b, `{"$schema":"`+jsonSchema2020+`","$id":`...)
	b = strconv.AppendQuote(b, g.d.Links.Href(c, ogcLandingAt+"/collections/"+id+"/queryables", nil))
	b = append(b, `,"title":`...)
	b = strconv.AppendQuote(b, title+": queryables")
	b = append(b, `,"type":"object","properties":`...)
	if b, err = appendProps(b, queryableProps(l, ll)); err != nil {
		return err
	}
	b = append(b, `,"additionalProperties":false}`...)
	return sendSchema(c, b)
}

func sendSchema(c *fiber.Ctx, b []byte) error {
	c.Set(fiber.HeaderContentType, typeSchema)
	c.Status(fiber.StatusOK)
	return c.Send(b)
}

// unitFilter reads the queryables of a unit collection, ?code= and ?name=,
// each an exact match; nil when neither is given.
func unitFilter(c *fiber.Ctx) func(geo.Unit) bool {
	code, name := c.Query("code"), c.Query("name")
	if code == "" && name == "" {
		return nil
	}
	code, name = string([]byte(code)), string([]byte(name))
	return func(u geo.Unit) bool {
		return (code == "" || u.Code == code) && (name == "" || u.Name == name)
	}
}

// filterUnits keeps the units keep accepts.
func filterUnits(units []geo.Unit, keep func(geo.Unit) bool) []geo.Unit {
	if keep == nil {
		return units
	}
	return slices.DeleteFunc(units, func(u geo.Unit) bool { return !keep(u) })
}
