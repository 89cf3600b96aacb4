package api

import (
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/internal/apitest"
)

// TestQueryParamsMatchOpenAPI keeps the declared query parameters, which
// checkQuery enforces, and docs/openapi.yaml in step: every route the
// server registers is declared, and each declaration lists exactly the
// in: query parameters of its operation, plus access_token where the
// operation allows the queryToken scheme.
func TestQueryParamsMatchOpenAPI(t *testing.T) {
	s := docServer(t)
	doc := servedDocument(t, s)
	paths, _ := doc["paths"].(map[string]any)
	param := regexp.MustCompile(`:(\w+)`)

	registered := map[string]bool{"GET /metrics": true} // registered only with a gatherer
	for _, r := range s.App().GetRoutes(true) {
		if r.Method == http.MethodHead || r.Path == "/" {
			continue
		}
		key := r.Method + " " + r.Path
		registered[key] = true
		if _, ok := queryParams[key]; !ok {
			t.Errorf("route %s takes no declared query parameters: add it to queryParams (api/params.go)", key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(queryParams)) {
		if !registered[key] {
			t.Errorf("queryParams declares %s, which the server does not register", key)
			continue
		}
		method, path, _ := strings.Cut(key, " ")
		docPath := param.ReplaceAllString(path, "{$1}")
		item, _ := paths[docPath].(map[string]any)
		op, _ := item[strings.ToLower(method)].(map[string]any)
		if op == nil {
			t.Errorf("%s: docs/openapi.yaml has no %s %s", key, method, docPath)
			continue
		}
		documented := map[string]bool{}
		for _, list := range []any{item["parameters"], op["parameters"]} {
			params, _ := list.([]any)
			for _, p := range params {
				pm, _ := p.(map[string]any)
				if ref, ok := pm["$ref"].(string); ok {
					target, _ := resolve(doc, ref)
					pm, _ = target.(map[string]any)
				}
				if pm["in"] == "query" {
					documented[pm["name"].(string)] = true
				}
			}
		}
		security, ok := op["security"].([]any)
		if !ok {
			security, _ = doc["security"].([]any)
		}
		for _, req := range security {
			if m, _ := req.(map[string]any); m != nil {
				if _, ok := m["queryToken"]; ok {
					documented["access_token"] = true
				}
			}
		}
		declared := map[string]bool{}
		for _, p := range queryParams[key] {
			declared[p] = true
		}
		if !maps.Equal(declared, documented) {
			t.Errorf("%s: declared query parameters %v, documented %v", key,
				slices.Sorted(maps.Keys(declared)), slices.Sorted(maps.Keys(documented)))
		}
	}
}

// TestUnknownQueryParameters: a misspelt or foreign parameter is refused
// on every kind of route, naming it and what the route takes.
func TestUnknownQueryParameters(t *testing.T) {
	s, _, _ := newLiveServer(t)
	f := func(target string, code int, mention ...string) {
		t.Helper()
		r := apitest.Get(t, s, target, apitest.Admin)
		if r.Code != code {
			t.Errorf("%s: got %d %.300s, want %d", target, r.Code, r.Body, code)
			return
		}
		for _, m := range mention {
			if !strings.Contains(string(r.Body), m) {
				t.Errorf("%s: %s does not mention %q", target, r.Body, m)
			}
		}
	}
	f("/api/v1/areas/79/kpis?windows=7d", 400, "parameter windows:", "GET /api/v1/areas/{code}/kpis takes hierarchy, window")
	f("/api/v1/areas?level=province&prent=79&x=1", 400, "parameters prent, x:")
	f("/ogc/collections/vn-2025.commune/items?limt=5000", 400, "parameter limt:", "limit", "offset")
	f("/ogc/collections/vn-2025.commune/items?limit=10&limit=20", 400, "limit given more than once")
	f("/tiles/vn-2025.commune/10/815/481.mvt?zoom=3", 400, "parameter zoom:", "GET /tiles/{layer}/{z}/{x}/{y}")
	f("/api/v1/layers?bbox=1,2,3,4", 400, "takes no query parameters")
	f("/healthz?verbose=1", 400, "parameter verbose:")
	f("/api/v1/devices?status=online&kind=camera&format=json", 200)
	f("/ogc/collections/vn-2025.province/items?limit=2&limit=2&access_token="+apitest.Admin, 200)
	f("/no/such/route?x=1", 404)
	// Parameters of another kind of layer are refused by the layer.
	f("/api/v1/layers/vn-2025.commune.geojson?parent=79&zoom=10&status=online", 400, "status applies to the cameras and sensors layers")
	f("/ogc/collections/vn-2025.province.kpi/items?cell=0.1", 400, "cell applies to camera-events.density")
	f("/tiles/vn-2025.commune/10/815/481.mvt?parent=79", 400, "parent applies to the tiles of the live layers")
	f("/tiles/vn-2025.commune.kpi.json?parent=79", 400, "parent applies to the tiles of the live layers")
	f("/ogc/collections/vn-2025.commune/items?parent=99999", 404, "unknown parent")
	if fc := apitest.DecodeFC(t, apitest.Get(t, s, "/ogc/collections/vn-2025.commune/items?parent=79&limit=1000", apitest.Admin)); *fc.NumberMatched != 168 {
		t.Errorf("OGC communes under 79: got %d, want 168", *fc.NumberMatched)
	}
	if r := apitest.Get(t, s, "/api/v1/areas?levle=commune", ""); r.Code != 400 {
		t.Errorf("without a token: got %d, want 400 (the parameter is wrong whoever asks)", r.Code)
	}
}

// TestSeriesRefusesSteps: the issue's own example, a series asked with
// steps=hour, which used to be answered by day.
func TestSeriesRefusesSteps(t *testing.T) {
	s := docServer(t)
	tok, err := auth.Issue([]byte("x"), auth.Principal{Role: auth.Viewer, Areas: []string{"*"}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	apitest.WantError(t, apitest.Get(t, s, "/api/v1/kpis/on_time_rate/series?area=79&steps=hour", tok), http.StatusBadRequest, "unknown query parameter steps")
	r := apitest.Get(t, s, "/api/v1/kpis/on_time_rate/series?area=79&step=hour", tok)
	if r.Code != http.StatusOK {
		t.Errorf("step=hour: got %d %.300s", r.Code, r.Body)
	}
}
