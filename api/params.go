package api

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/api/gis"
)

// apiQueryParams declares, for every route of this package, the query
// parameters it takes, keyed by method and path as the route is registered;
// the GIS layers declare theirs (gis.QueryParams). checkQuery refuses
// any other parameter, so that a misspelt one (steps=hour on a series) is
// reported instead of silently answered with the default. The same table is
// checked against docs/openapi.yaml (TestQueryParamsMatchOpenAPI): a route
// that takes access_token is one whose operation allows the queryToken
// scheme; the others are its in: query parameters.
//
// A route missing here is not checked; TestQueryParamsMatchOpenAPI fails
// for it, so a new route is declared when it is documented.
var apiQueryParams = map[string][]string{
	"GET /healthz":                    nil,
	"GET /readyz":                     nil,
	"GET /metrics":                    nil,
	"GET /api/v1/openapi.json":        nil,
	"GET /api/v1/live":                {"access_token"},
	"GET /api/v1/kpis":                {"format"},
	"GET /api/v1/areas":               {"format", "level", "parent", "hierarchy"},
	"GET /api/v1/areas/:code":         {"hierarchy"},
	"GET /api/v1/geo/lookup":          {"lat", "lon", "hierarchy"},
	"GET /api/v1/devices":             {"format", "area", "kind", "status"},
	"GET /api/v1/devices/:id":         nil,
	"PUT /api/v1/devices/:id":         nil,
	"GET /api/v1/alarms":              {"format", "area", "state", "from", "to", "limit"},
	"GET /api/v1/alarms/:id":          nil,
	"GET /api/v1/rules":               nil,
	"PUT /api/v1/rules/:id":           nil,
	"DELETE /api/v1/rules/:id":        nil,
	"GET /api/v1/scoreboard":          {"area", "period", "format"},
	"GET /api/v1/periods":             {"format"},
	"POST /api/v1/alarms/:id/ack":     nil,
	"POST /api/v1/alarms/:id/resolve": nil,
	"GET /api/v1/tokens/revoked":      nil,
	"POST /api/v1/tokens/:jti/revoke": nil,

	"GET /api/v1/dashboards/export":       nil,
	"POST /api/v1/dashboards/import":      nil,
	"GET /api/v1/dashboards":              nil,
	"GET /api/v1/dashboards/:id":          {"version"},
	"GET /api/v1/dashboards/:id/versions": nil,
	"PUT /api/v1/dashboards/:id":          nil,
	"DELETE /api/v1/dashboards/:id":       nil,
	"GET /api/v1/playlists":               nil,
	"GET /api/v1/playlists/:id":           {"version"},
	"GET /api/v1/playlists/:id/versions":  nil,
	"PUT /api/v1/playlists/:id":           nil,
	"DELETE /api/v1/playlists/:id":        nil,
	"GET /api/v1/walls":                   nil,
	"GET /api/v1/walls/:id":               {"version"},
	"GET /api/v1/walls/:id/versions":      nil,
	"PUT /api/v1/walls/:id":               nil,
	"DELETE /api/v1/walls/:id":            nil,
	"GET /api/v1/screens":                 nil,
	"GET /api/v1/screens/:id":             {"version"},
	"GET /api/v1/screens/:id/versions":    nil,
	"PUT /api/v1/screens/:id":             nil,
	"DELETE /api/v1/screens/:id":          nil,
	"POST /api/v1/screens/:id/command":    nil,
	"POST /api/v1/screens/:id/seen":       nil,
	"POST /api/v1/screens/:id/tokens":     nil,
	"GET /k/:code":                        nil,

	"GET /api/v1/datasets":              nil,
	"GET /api/v1/datasets/health":       nil,
	"GET /api/v1/datasets/:id":          {"version"},
	"GET /api/v1/datasets/:id/versions": nil,
	"PUT /api/v1/datasets/:id":          nil,
	"DELETE /api/v1/datasets/:id":       nil,
	"POST /api/v1/datasets/:id/values":  {"format"},
	"GET /api/v1/datasets/:id/values":   {"format", "area", "from", "to"},
	"GET /api/v1/datasets/:id/history":  {"unit", "period"},
	"GET /api/v1/datasets/:id/uploads":  {"limit"},
	// How a dataset's connector ran.
	"GET /api/v1/datasets/:id/connector": nil,

	"GET /api/v1/areas/:code/kpis":          {"window", "hierarchy"},
	"GET /api/v1/areas/:code/children/kpis": {"format", "window", "hierarchy"},
	"GET /api/v1/areas/:code/lineage":       {"hierarchy"},

	"GET /api/v1/kpis/:id/series":         {"area", "from", "to", "step", "compare", "by", "format", "explain"},
	"GET /api/v1/kpis/:id/ranking":        {"parent", "level", "from", "to", "order", "limit", "compare", "by", "format", "explain"},
	"GET /api/v1/analysis/relationship":   {"x", "y", "parent", "level", "from", "to", "outliers", "format", "zoom"},
	"GET /api/v1/periods/:period":         {"area", "closed_at", "format"},
	"POST /api/v1/periods/:period/close":  {"force"},
	"POST /api/v1/periods/:period/reopen": nil,

	"POST /api/v1/ingest/dossiers":        nil,
	"POST /api/v1/ingest/camera-events":   nil,
	"POST /api/v1/ingest/sensor-readings": nil,
	"POST /api/v1/ingest/ngsi-ld":         nil,
	"POST /api/v1/ingest/camera-xml":      nil,
	"POST /api/v1/ingest/feedback":        nil,
}

// queryParams declares the query parameters of every route the server
// registers: its own and the GIS layers'.
var queryParams = func() map[string][]string {
	all := maps.Clone(apiQueryParams)
	maps.Copy(all, gis.QueryParams())
	return all
}()

// queryRoute is a declared route, split for matching.
type queryRoute struct {
	method   string
	segments []string // ":name" matches any one segment
	pattern  string   // the path as OpenAPI writes it, for messages
	params   []string // sorted
}

// queryChecker matches a request to its declared route and refuses query
// parameters the route does not take.
//
// Concurrency: immutable once built, safe for concurrent use.
type queryChecker struct {
	routes []queryRoute
}

func newQueryChecker(decl map[string][]string) *queryChecker {
	qc := &queryChecker{}
	for key, params := range decl {
		method, path, _ := strings.Cut(key, " ")
		segs := splitPath(path)
		pattern := make([]string, len(segs))
		for i, s := range segs {
			if name, ok := strings.CutPrefix(s, ":"); ok {
				s = "{" + name + "}"
			}
			pattern[i] = s
		}
		ps := slices.Clone(params)
		slices.Sort(ps)
		qc.routes = append(qc.routes, queryRoute{method: method, segments: segs, pattern: "/" + strings.Join(pattern, "/"), params: ps})
	}
	return qc
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// match finds the declared route of method and path: the one with the
// most literal segments among those that fit, as the router prefers a
// literal segment to a parameter.
func (qc *queryChecker) match(method, path string) (queryRoute, bool) {
	if method == fiber.MethodHead {
		method = fiber.MethodGet
	}
	segs := splitPath(path)
	best, bestLiterals := -1, -1
	for i, r := range qc.routes {
		if r.method != method || len(r.segments) != len(segs) {
			continue
		}
		literals, ok := 0, true
		for j, s := range r.segments {
			if strings.HasPrefix(s, ":") {
				continue
			}
			if !strings.EqualFold(s, segs[j]) { // routing is case-insensitive
				ok = false
				break
			}
			literals++
		}
		if ok && literals > bestLiterals {
			best, bestLiterals = i, literals
		}
	}
	if best < 0 {
		return queryRoute{}, false
	}
	return qc.routes[best], true
}

// handler is the middleware: it answers 400 naming every parameter the
// route does not take, and every parameter given twice with different
// values, with what the route takes.
func (qc *queryChecker) handler(c *fiber.Ctx) error {
	args := c.Request().URI().QueryArgs()
	if args.Len() == 0 {
		return c.Next()
	}
	r, ok := qc.match(c.Method(), c.Path())
	if !ok {
		return c.Next() // no such route: the router answers 404 or 405
	}
	var unknown, repeated []string
	seen := map[string]string{}
	args.VisitAll(func(k, v []byte) {
		name := string(k)
		if name == "" {
			return
		}
		if first, dup := seen[name]; dup {
			if first != string(v) && !slices.Contains(repeated, name) {
				repeated = append(repeated, name)
			}
			return
		}
		seen[name] = string(v)
		if _, found := slices.BinarySearch(r.params, name); !found {
			unknown = append(unknown, name)
		}
	})
	if len(unknown) == 0 && len(repeated) == 0 {
		return c.Next()
	}
	takes := "takes no query parameters"
	if len(r.params) > 0 {
		takes = "takes " + strings.Join(r.params, ", ")
	}
	var msg string
	switch {
	case len(unknown) == 1:
		msg = "unknown query parameter " + unknown[0]
	case len(unknown) > 1:
		msg = "unknown query parameters " + strings.Join(unknown, ", ")
	default:
		msg = "query parameter " + strings.Join(repeated, ", ") + " given more than once with different values; give each once"
	}
	return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s: %s %s %s (GET /api/v1/openapi.json describes them)",
		msg, r.method, r.pattern, takes))
}
