package gis_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/api/answer"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/gis"
	"github.com/openioc/ioc/api/internal/apitest"
)

// host stands in for the server the layers are registered on: every
// request acts for p, and links start at base.
type host struct {
	p    auth.Principal
	base string
}

func (h host) Readers(bool) []fiber.Handler { return nil }

func (h host) Principal(*fiber.Ctx) auth.Principal { return h.p }

func (h host) Href(_ *fiber.Ctx, path string, q url.Values) string {
	if len(q) > 0 {
		return h.base + path + "?" + q.Encode()
	}
	return h.base + path
}

// app is a Fiber application that answers as the API does in the one
// way the layers rely on: a storage failure is 503.
type app struct{ fiber *fiber.App }

func (a app) App() *fiber.App { return a.fiber }

// TestLayersNeedOnlyTheirDeps: the layers run on a bare Fiber app with
// only what Deps declares: what they show is cut to the principal Access
// gives, their links are those Links builds, and a failure to read figures
// is an answer.StorageError for the host's error handler.
func TestLayersNeedOnlyTheirDeps(t *testing.T) {
	reg, h := apitest.Vn2025(t)
	figs := &apitest.Figures{Reg: reg, H: h}
	scope, err := auth.NewScope(reg, h.Name())
	if err != nil {
		t.Fatal(err)
	}
	hst := host{p: auth.Principal{Role: auth.Viewer, Areas: []string{"79"}}.WithScope(scope), base: "https://maps.example.gov.vn/gis"}
	if _, err := gis.New(gis.Config{}, gis.Deps{Geo: reg, Figures: figs}); err == nil {
		t.Error("New without Access and Links: no error")
	}
	g, err := gis.New(gis.Config{}, gis.Deps{Geo: reg, Figures: figs, Access: hst, Links: hst})
	if err != nil {
		t.Fatal(err)
	}
	a := app{fiber: fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		if se := (*answer.StorageError)(nil); errors.As(err, &se) {
			return c.Status(http.StatusServiceUnavailable).SendString(se.Error())
		}
		return fiber.DefaultErrorHandler(c, err)
	}})}
	g.Register(a.fiber)
	routes := 0
	for _, r := range a.fiber.GetRoutes(true) {
		if r.Method == fiber.MethodGet {
			routes++
			if _, ok := gis.QueryParams()["GET "+r.Path]; !ok {
				t.Errorf("route %s declares no query parameters in QueryParams", r.Path)
			}
		}
	}
	if routes != len(gis.QueryParams()) {
		t.Errorf("registered %d GET routes, QueryParams declares %d", routes, len(gis.QueryParams()))
	}

	r := apitest.Get(t, a, "/api/v1/layers", "")
	var cat gis.LayerCatalog
	if err := json.Unmarshal(r.Body, &cat); err != nil || r.Code != http.StatusOK {
		t.Fatalf("catalog: %d %.300s, %v", r.Code, r.Body, err)
	}
	for _, l := range cat.Layers {
		if l.ID == "vn-2025.commune" && *l.Features != 168 {
			t.Errorf("communes the principal of 79 sees: %d, want 168", *l.Features)
		}
		if !strings.HasPrefix(l.Links.OGC, hst.base+"/ogc/collections/") {
			t.Errorf("layer %s: OGC link %s, want one Links built", l.ID, l.Links.OGC)
		}
	}
	fc := apitest.DecodeFC(t, apitest.Get(t, a, "/ogc/collections/vn-2025.province/items", ""))
	if len(fc.Features) != 1 || fc.Features[0].ID != "79" {
		t.Errorf("provinces the principal of 79 sees: %d features, want 79 alone", len(fc.Features))
	}

	figs.Fail = errors.New("clickhouse: connection refused")
	if r := apitest.Get(t, a, "/ogc/collections/vn-2025.province.kpi/items", ""); r.Code != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "connection refused") {
		t.Errorf("figures failing: %d %s, want the StorageError the host answers 503", r.Code, r.Body)
	}
}
