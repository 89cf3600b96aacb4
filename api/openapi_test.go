package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/paulmach/orb"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/alarm"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/dataset"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/feed"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/report"
	"github.com/openioc/ioc/versioned"
)

// noFigures stands in for the aggregator: route registration reads nothing.
type noFigures struct{ h *geo.Hierarchy }

func (n noFigures) Hierarchy() *geo.Hierarchy { return n.h }
func (noFigures) Location() *time.Location    { return time.UTC }
func (noFigures) Snapshot(context.Context, string, string, aggregate.Window) (aggregate.Snapshot, error) {
	return aggregate.Snapshot{}, nil
}
func (noFigures) ChildSnapshots(context.Context, string, string, aggregate.Window) ([]aggregate.Snapshot, error) {
	return nil, nil
}
func (noFigures) MapSnapshot(context.Context, string, string, aggregate.Window) (aggregate.MapSnapshot, error) {
	return aggregate.MapSnapshot{}, nil
}
func (noFigures) LevelSnapshots(context.Context, string, string, string, aggregate.Window) ([]aggregate.Snapshot, error) {
	return nil, nil
}

// docServer builds a server with every optional part given, so that it
// registers all its routes; it reads nothing while doing so.
func docServer(t *testing.T) *Server {
	t.Helper()
	units, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := units.Hierarchy("vn-2025")
	screens, _ := testScreens(t, h, nil)
	s, err := New(Config{}, Deps{
		Geo: units, KPIs: noFigures{h}, Auth: auth.NewVerifier("", []byte("x")),
		Devices: noDevices{}, Alarms: noAlarms{}, Events: noEvents{}, Reports: noReports{},
		Documents: noDocuments{}, Datasets: noDatasets{},
		Screens: screens, Kiosks: auth.NewKiosks([]byte("x"), auth.NewMemoryKioskLinks(), nil),
		Ingest: stubIngest{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// servedDocument reads the OpenAPI document the way a client does: from
// GET /api/v1/openapi.json, without a token.
func servedDocument(t *testing.T, s *Server) map[string]any {
	t.Helper()
	resp, err := s.App().Test(httptest.NewRequest(fiber.MethodGet, "/api/v1/openapi.json", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != fiber.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get(fiber.HeaderContentType); !strings.HasPrefix(ct, fiber.MIMEApplicationJSON) {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if cc := resp.Header.Get(fiber.HeaderCacheControl); cc != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", cc)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("the served document is not JSON: %v", err)
	}
	if v := doc["openapi"]; v != "3.1.0" {
		t.Fatalf("openapi = %v, want 3.1.0", v)
	}
	return doc
}

// TestEveryRouteIsDocumented keeps docs/openapi.yaml and the server in step:
// every route the server registers is documented and every documented path
// exists. The document is read as served, at /api/v1/openapi.json.
func TestEveryRouteIsDocumented(t *testing.T) {
	s := docServer(t)
	param := regexp.MustCompile(`:(\w+)`)
	served := map[string]bool{}
	for _, r := range s.App().GetRoutes(true) {
		if r.Method == fiber.MethodHead || r.Path == "/" {
			continue
		}
		served[param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	served["/metrics"] = true // registered only when a gatherer is given
	paths, _ := servedDocument(t, s)["paths"].(map[string]any)
	documented := map[string]bool{}
	for p := range paths {
		documented[p] = true
	}
	for _, p := range slices.Sorted(maps.Keys(served)) {
		if !documented[p] {
			t.Errorf("route %s is served but not in docs/openapi.yaml", p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(documented)) {
		if !served[p] {
			t.Errorf("path %s is documented but not served", p)
		}
	}
	if !documented["/api/v1/areas/{code}/kpis"] || !documented["/api/v1/openapi.json"] {
		t.Errorf("read no paths from /api/v1/openapi.json")
	}
}

// TestOpenAPIDocumentIsConsistent checks what a client generator relies on:
// every $ref points at something in the document, every operation has a
// response, and every parameter of a path template is declared (in the
// path, required) for each of its operations.
func TestOpenAPIDocumentIsConsistent(t *testing.T) {
	doc := servedDocument(t, docServer(t))

	var refs func(v any, at string)
	refs = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k != "$ref" {
					refs(e, at+"/"+pointerEscape.Replace(k))
					continue
				}
				ref, _ := e.(string)
				if !strings.HasPrefix(ref, "#/components/") {
					t.Errorf("%s: $ref %q does not point into #/components/", at, ref)
				} else if _, ok := resolve(doc, ref); !ok {
					t.Errorf("%s: $ref %q names nothing", at, ref)
				}
			}
		case []any:
			for i, e := range v {
				refs(e, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	refs(doc, "#")

	paths, _ := doc["paths"].(map[string]any)
	if len(paths) == 0 {
		t.Fatal("the document has no paths")
	}
	template := regexp.MustCompile(`\{([^{}]+)\}`)
	methods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		item, _ := paths[p].(map[string]any)
		var inTemplate []string
		for _, m := range template.FindAllStringSubmatch(p, -1) {
			inTemplate = append(inTemplate, m[1])
		}
		atPath := pathParameters(t, doc, item["parameters"], p)
		operations := 0
		for _, method := range methods {
			op, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			operations++
			where := strings.ToUpper(method) + " " + p
			if responses, _ := op["responses"].(map[string]any); len(responses) == 0 {
				t.Errorf("%s has no responses", where)
			}
			declared := maps.Clone(atPath)
			maps.Copy(declared, pathParameters(t, doc, op["parameters"], where))
			for _, name := range inTemplate {
				required, ok := declared[name]
				switch {
				case !ok:
					t.Errorf("%s: path parameter {%s} is not declared", where, name)
				case !required:
					t.Errorf("%s: path parameter {%s} is not required: true", where, name)
				}
			}
			for name := range declared {
				if !slices.Contains(inTemplate, name) {
					t.Errorf("%s: declares path parameter %q, which is not in the path", where, name)
				}
			}
		}
		if operations == 0 {
			t.Errorf("%s has no operations", p)
		}
	}
}

// TestOpenAPIJSONConversion covers the YAML that does not map plainly onto
// JSON: unquoted numeric or boolean keys, dates, aliases and merge keys, and
// what JSON cannot carry.
func TestOpenAPIJSONConversion(t *testing.T) {
	got, err := openAPIJSON([]byte(`
responses:
  200: {description: ok}
  "404": &e {x: [1, 2.5, null, true, 0x1F, "7"]}
flags: {true: on, 3: three}
when: 2026-11-22
base: &b {a: 1, b: 2}
derived: {<<: *b, b: 3, e: *e}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"base":{"a":1,"b":2},"derived":{"a":1,"b":3,"e":{"x":[1,2.5,null,true,31,"7"]}},` +
		`"flags":{"3":"three","true":"on"},"responses":{"200":{"description":"ok"},"404":{"x":[1,2.5,null,true,31,"7"]}},"when":"2026-11-22"}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{"x: .inf\n", "x: 1\nx: 2\n", "[1]: x\n"} {
		if _, err := openAPIJSON([]byte(bad)); err == nil {
			t.Errorf("%q converted to JSON", bad)
		}
	}
}

// pathParameters returns the names of the in: path parameters of a
// parameters list, $refs resolved, with whether each is required.
func pathParameters(t *testing.T, doc map[string]any, list any, where string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	params, _ := list.([]any)
	for i, p := range params {
		param, _ := p.(map[string]any)
		if ref, ok := param["$ref"].(string); ok {
			target, _ := resolve(doc, ref)
			param, _ = target.(map[string]any)
		}
		if param == nil {
			t.Errorf("%s: parameter %d is not an object", where, i)
			continue
		}
		if param["in"] == "path" {
			name, _ := param["name"].(string)
			out[name] = param["required"] == true
		}
	}
	return out
}

var pointerEscape = strings.NewReplacer("~", "~0", "/", "~1")

// resolve follows a local JSON pointer ("#/components/schemas/Error").
func resolve(doc map[string]any, ref string) (any, bool) {
	pointer, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var v any = doc
	for _, token := range strings.Split(pointer, "/") {
		token = strings.NewReplacer("~1", "/", "~0", "~").Replace(token)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[token]; !ok {
			return nil, false
		}
	}
	return v, true
}

// noDevices, noAlarms and noEvents stand in for the operations side: only
// the routes they enable matter here.
type (
	noDevices struct{}
	noAlarms  struct{}
	noEvents  struct{}
)

func (noDevices) Device(string) (device.Device, bool) { return device.Device{}, false }
func (noDevices) Views(context.Context, []string, string) ([]device.View, error) {
	return nil, nil
}
func (noDevices) Put(_ context.Context, d device.Device) (device.Device, bool, error) {
	return d, false, nil
}
func (noDevices) Snapshot(context.Context, string) (device.Map, error) { return device.Map{}, nil }
func (noAlarms) List(context.Context, alarm.Query) ([]alarm.Alarm, error) {
	return nil, nil
}
func (noAlarms) Get(context.Context, string) (alarm.Alarm, error) { return alarm.Alarm{}, nil }
func (noAlarms) Acknowledge(context.Context, string, string, string) (alarm.Alarm, error) {
	return alarm.Alarm{}, nil
}
func (noAlarms) Resolve(context.Context, string, string, string) (alarm.Alarm, error) {
	return alarm.Alarm{}, nil
}
func (noAlarms) Snapshot(context.Context, string) (alarm.TopicMessage, error) {
	return alarm.TopicMessage{}, nil
}
func (noAlarms) Rules(context.Context) ([]alarm.Rule, error) { return nil, nil }
func (noAlarms) PutRule(_ context.Context, r alarm.Rule, _ string) (alarm.Rule, bool, error) {
	return r, false, nil
}
func (noAlarms) DeleteRule(context.Context, string, string) error       { return nil }
func (noEvents) Snapshot(context.Context, string) (feed.Message, error) { return feed.Message{}, nil }
func (noEvents) Density(context.Context, []string, orb.Bound, float64, time.Time) ([]feed.Cell, error) {
	return nil, nil
}

// noDocuments stands in for the store of the wall's documents: only its
// routes matter here.
type noDocuments struct{}

func (noDocuments) Get(context.Context, string, string) (versioned.Document, error) {
	return versioned.Document{}, versioned.ErrNotFound
}
func (noDocuments) Version(context.Context, string, string, uint32) (versioned.Document, error) {
	return versioned.Document{}, versioned.ErrNotFound
}
func (noDocuments) Versions(context.Context, string, string) ([]versioned.Document, error) {
	return nil, nil
}
func (noDocuments) List(context.Context, string) ([]versioned.Document, error) { return nil, nil }
func (noDocuments) Write(context.Context, func(versioned.Latest) ([]versioned.Write, error)) ([]versioned.Document, error) {
	return nil, nil
}

// noDatasets stands in for the datasets: only their routes matter here.
type noDatasets struct{}

func (noDatasets) Load(context.Context) error                   { return nil }
func (noDatasets) Get(string) (dataset.Definition, bool)        { return dataset.Definition{}, false }
func (noDatasets) List() []dataset.Definition                   { return nil }
func (noDatasets) Catalog() []aggregate.Definition              { return nil }
func (noDatasets) Operand(string) bool                          { return false }
func (noDatasets) Record(context.Context, dataset.Upload) error { return nil }
func (noDatasets) Put(context.Context, dataset.Definition, []dataset.Row, dataset.Upload) (dataset.Upload, error) {
	return dataset.Upload{}, nil
}
func (noDatasets) Current(context.Context, dataset.Definition, []string, time.Time, time.Time) ([]dataset.Value, error) {
	return nil, nil
}
func (noDatasets) History(context.Context, string, string, time.Time) ([]dataset.Version, error) {
	return nil, nil
}
func (noDatasets) Uploads(context.Context, string, int) ([]dataset.Upload, error) { return nil, nil }
func (noDatasets) Health(context.Context, dataset.Hierarchy, time.Time) ([]dataset.Health, error) {
	return nil, nil
}

// noReports stands in for the report engine: only its routes matter here.
type noReports struct{}

func (noReports) Location() *time.Location { return time.UTC }
func (noReports) Relationship(context.Context, report.RelationshipQuery) (report.Relationship, error) {
	return report.Relationship{}, nil
}
func (noReports) Series(context.Context, report.SeriesQuery) (report.Series, error) {
	return report.Series{}, nil
}
func (noReports) Ranking(context.Context, report.RankingQuery) (report.Ranking, error) {
	return report.Ranking{}, nil
}
func (noReports) Scoreboard(context.Context, string, report.Period) (report.Scoreboard, error) {
	return report.Scoreboard{}, nil
}
func (noReports) Close(context.Context, report.Period, string, string, bool) (report.Closed, error) {
	return report.Closed{}, nil
}
func (noReports) Reopen(context.Context, report.Period, string, string) (report.PeriodRecord, error) {
	return report.PeriodRecord{}, nil
}
func (noReports) Periods(context.Context) ([]report.PeriodRecord, error) { return nil, nil }
func (noReports) Figures(context.Context, string, string, time.Time) (report.ClosedFigures, error) {
	return report.ClosedFigures{}, nil
}
