package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/maptile"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/alarm"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/internal/apitest"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/feed"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/report"
	"github.com/openioc/ioc/wall"
)

// The security matrix: every route the server registers, asked by every
// role (admin, viewer, operator, ingest; unscoped and scoped to a commune,
// a province, another province, and codes that collide with units of other
// hierarchies) about units of every hierarchy (a commune, a province,
// another province, jp-2021's units, vn-2024's units), in every GIS format
// and on every websocket topic kind. No answer may carry a unit its token
// does not cover, and no write may be made by a role that may not make it,
// or outside the token's scope.

// writes counts what the fakes were asked to change, by kind.
type writes struct {
	mu sync.Mutex
	n  map[string]int
}

func (w *writes) add(kind string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == nil {
		w.n = map[string]int{}
	}
	w.n[kind]++
}

func (w *writes) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, v := range w.n {
		n += v
	}
	return n
}

// matrixFigures answers children and maps too.
type matrixFigures struct{ *apitest.Figures }

func (f matrixFigures) ChildSnapshots(_ context.Context, hierarchy, code string, w aggregate.Window) ([]aggregate.Snapshot, error) {
	h, _ := f.Reg.Hierarchy(hierarchy)
	out := []aggregate.Snapshot{}
	for _, u := range h.Children(code) {
		out = append(out, f.UnitSnapshot(h, u, w))
	}
	return out, nil
}

func (f matrixFigures) MapSnapshot(_ context.Context, hierarchy, code string, w aggregate.Window) (aggregate.MapSnapshot, error) {
	h, _ := f.Reg.Hierarchy(hierarchy)
	u, _ := h.Unit(code)
	m := aggregate.MapSnapshot{Area: code, Hierarchy: hierarchy, Level: u.Level, Window: w, Children: map[string]aggregate.ChildFigures{}}
	for _, c := range h.Children(code) {
		m.Children[c.Code] = aggregate.ChildFigures{}
	}
	return m, nil
}

type matrixDevices struct {
	*apitest.Devices
	w *writes
}

func (f matrixDevices) Put(_ context.Context, d device.Device) (device.Device, bool, error) {
	units := f.H.Locate(orb.Point{d.Lon, d.Lat})
	if len(units) == 0 {
		return d, false, &device.InvalidError{Msg: "outside every unit"}
	}
	d.Hierarchy, d.AreaCode = f.H.Name(), units[len(units)-1].Code
	d.Credentials = strings.HasPrefix(d.SecretHash, "$2") // a bcrypt hash, as the registry keeps it
	f.w.add("device")
	return d, true, nil
}

func (f matrixDevices) Snapshot(ctx context.Context, area string) (device.Map, error) {
	vs, _ := f.Views(ctx, []string{area}, "")
	return device.Map{Area: area, Devices: vs}, nil
}

type matrixEvents struct{ *apitest.Events }

func (f matrixEvents) Snapshot(_ context.Context, area string) (feed.Message, error) {
	return feed.Message{Area: area, Events: []feed.Event{}}, nil
}

// matrixAlarms holds one open alarm per device.
type matrixAlarms struct {
	h      *geo.Hierarchy
	alarms []alarm.Alarm
	w      *writes
}

func (f matrixAlarms) in(areas []string, code string) bool {
	if areas == nil {
		return true
	}
	for _, a := range areas {
		if f.h.Contains(a, code) {
			return true
		}
	}
	return false
}

func (f matrixAlarms) List(_ context.Context, q alarm.Query) ([]alarm.Alarm, error) {
	out := []alarm.Alarm{}
	for _, a := range f.alarms {
		if f.in(q.Areas, a.AreaCode) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (f matrixAlarms) Get(_ context.Context, id string) (alarm.Alarm, error) {
	for _, a := range f.alarms {
		if a.ID == id {
			return a, nil
		}
	}
	return alarm.Alarm{}, alarm.ErrNotFound
}

func (f matrixAlarms) Acknowledge(ctx context.Context, id, _, _ string) (alarm.Alarm, error) {
	f.w.add("ack")
	return f.Get(ctx, id)
}

func (f matrixAlarms) Resolve(ctx context.Context, id, _, _ string) (alarm.Alarm, error) {
	f.w.add("resolve")
	return f.Get(ctx, id)
}

func (f matrixAlarms) Snapshot(ctx context.Context, area string) (alarm.TopicMessage, error) {
	open, _ := f.List(ctx, alarm.Query{Areas: []string{area}})
	return alarm.TopicMessage{Area: area, Open: open}, nil
}

func (f matrixAlarms) Rules(context.Context) ([]alarm.Rule, error) { return []alarm.Rule{}, nil }

func (f matrixAlarms) PutRule(_ context.Context, r alarm.Rule, _ string) (alarm.Rule, bool, error) {
	f.w.add("rule")
	return r, true, nil
}

func (f matrixAlarms) DeleteRule(context.Context, string, string) error {
	f.w.add("rule")
	return nil
}

// matrixReports answers about whatever unit it is asked, so that a unit the
// API let through shows in the answer.
type matrixReports struct {
	h *geo.Hierarchy
	w *writes
}

func (matrixReports) Location() *time.Location { return time.UTC }

func (f matrixReports) Series(_ context.Context, q report.SeriesQuery) (report.Series, error) {
	return report.Series{KPI: q.KPI, Area: q.Area, Hierarchy: f.h.Name(), Points: []report.Point{}}, nil
}

func (f matrixReports) Ranking(_ context.Context, q report.RankingQuery) (report.Ranking, error) {
	r := report.Ranking{KPI: q.KPI, Parent: q.Parent, Level: q.Level, Items: []report.Item{}}
	for i, u := range f.h.Select(q.Level, q.Parent) {
		r.Items = append(r.Items, report.Item{Rank: i + 1, Area: u.Code, Name: u.Name})
	}
	return r, nil
}

func (f matrixReports) Relationship(_ context.Context, q report.RelationshipQuery) (report.Relationship, error) {
	r := report.Relationship{X: q.X, Y: q.Y, Parent: q.Parent, Level: q.Level, Units: []report.Pair{}, Outliers: []report.Pair{}}
	for _, u := range f.h.Select(q.Level, q.Parent) {
		r.Units = append(r.Units, report.Pair{Area: u.Code, Name: u.Name})
	}
	return r, nil
}

func (f matrixReports) Scoreboard(_ context.Context, area string, p report.Period) (report.Scoreboard, error) {
	u, _ := f.h.Unit(area)
	sb := report.Scoreboard{Area: area, Level: u.Level, Period: p.Name}
	for i, s := range f.h.Select(u.Level, u.Parent) {
		if s.Parent == u.Parent {
			sb.Siblings = append(sb.Siblings, report.Sibling{Rank: i + 1, Area: s.Code, Name: s.Name})
		}
	}
	return sb, nil
}

func (f matrixReports) Close(context.Context, report.Period, string, string, bool) (report.Closed, error) {
	f.w.add("period")
	return report.Closed{}, nil
}

func (f matrixReports) Reopen(context.Context, report.Period, string, string) (report.PeriodRecord, error) {
	f.w.add("period")
	return report.PeriodRecord{}, nil
}

func (matrixReports) Periods(context.Context) ([]report.PeriodRecord, error) {
	return []report.PeriodRecord{}, nil
}

func (f matrixReports) Figures(_ context.Context, period, area string, _ time.Time) (report.ClosedFigures, error) {
	out := report.ClosedFigures{Area: area, Items: []report.Frozen{{Area: area, KPI: "on_time_rate"}}}
	for _, c := range f.h.ChildCodes(area) {
		out.Items = append(out.Items, report.Frozen{Area: c, KPI: "on_time_rate"})
	}
	return out, nil
}

// matrixServer is a server with every optional part, over fakes that
// answer about any unit they are asked and count their writes.
type matrixServer struct {
	once    sync.Once
	handler fasthttp.RequestHandler
	s       *Server
	reg     *prometheus.Registry
	geo     *geo.Registry
	scope   *oracle
	writes  *writes
	revs    *auth.Revocations
	screens *wall.Walls
}

func newMatrixServer(t *testing.T, cfg Config) *matrixServer {
	t.Helper()
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	w := &writes{}
	devs := &apitest.Devices{H: h, List: apitest.LiveDevices(t, h)}
	var alarms []alarm.Alarm
	for _, d := range devs.List {
		alarms = append(alarms, alarm.Alarm{ID: "ALM-" + d.ID, DeviceID: d.ID, Hierarchy: "vn-2025", AreaCode: d.AreaCode, State: alarm.Open})
	}
	revs := auth.NewRevocations(auth.RevocationsConfig{}, nil, nil, nil)
	metrics := prometheus.NewRegistry()
	if cfg.AuthFailuresPerMinute == 0 {
		cfg.AuthFailuresPerMinute = 100000
	}
	screens, _ := testScreens(t, h, nil, "26740", "79", "01", "00004", "28108", "23710")
	s, err := New(cfg, Deps{
		Geo: reg, KPIs: matrixFigures{&apitest.Figures{Reg: reg, H: h}}, Auth: auth.NewVerifier(apitest.Admin, apitest.Secret),
		Devices: matrixDevices{devs, w}, Alarms: matrixAlarms{h, alarms, w}, Events: matrixEvents{&apitest.Events{H: h}},
		Reports: matrixReports{h, w}, Ingest: stubIngest{took: func() { w.add("ingest") }}, Revocations: revs, Gatherer: metrics, Registerer: metrics,
		Screens: countedScreens{screens, w}, Kiosks: auth.NewKiosks(apitest.Secret, countedLinks{auth.NewMemoryKioskLinks(), w}, revs),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	scope := newOracle(reg)
	return &matrixServer{s: s, reg: metrics, geo: reg, scope: scope, writes: w, revs: revs, screens: screens}
}

// oracle is the scope rule written out again, independently of auth.Scope,
// so that the matrix does not grade the server by the server's own code: a
// token's areas cover their subtrees in vn-2025; an old vn-2024 unit is
// covered when every unit below it and itself went (through the crosswalk's
// edges, or its nearest listed ancestor's) only into covered units; nothing
// else is.
type oracle struct {
	cur, old *geo.Hierarchy
	cw       *geo.Crosswalk

	mu   sync.Mutex
	memo map[string]bool
}

func newOracle(reg *geo.Registry) *oracle {
	cur, _ := reg.Hierarchy("vn-2025")
	old, _ := reg.Hierarchy("vn-2024")
	cw, _ := reg.Crosswalk("vn-2024", "vn-2025")
	return &oracle{cur: cur, old: old, cw: cw, memo: map[string]bool{}}
}

func (o *oracle) Covers(areas []string, hierarchy, code string) bool {
	if slices.Contains(areas, "*") {
		return true
	}
	switch hierarchy {
	case "vn-2025":
		if _, ok := o.cur.Unit(code); !ok {
			return false
		}
		for c := code; c != ""; {
			if slices.Contains(areas, c) {
				return true
			}
			u, _ := o.cur.Unit(c)
			c = u.Parent
		}
		return false
	case "vn-2024":
		key := strings.Join(areas, ",") + "|" + code
		o.mu.Lock()
		v, ok := o.memo[key]
		o.mu.Unlock()
		if ok {
			return v
		}
		if _, ok := o.old.Unit(code); !ok {
			return false
		}
		v = true
		for _, c := range o.old.Subtree(code) {
			went := false
			for at := c; at != "" && !went; {
				for _, e := range o.cw.Successors(at) {
					went = true
					v = v && o.Covers(areas, "vn-2025", e.New)
				}
				u, _ := o.old.Unit(at)
				at = u.Parent
			}
			v = v && went
		}
		o.mu.Lock()
		o.memo[key] = v
		o.mu.Unlock()
		return v
	}
	return false
}

// who is a principal of the matrix: its token, and what it stands for.
type who struct {
	name  string
	token string
	p     auth.Principal // with the scope, for the oracle
}

func matrixPrincipals(t testing.TB, scope auth.Coverage) []who {
	t.Helper()
	out := []who{{name: "no token"}, {name: "admin", token: apitest.Admin, p: auth.Principal{Role: auth.Admin}}}
	for _, c := range []struct {
		role   auth.Role
		areas  []string
		screen string
	}{
		{auth.Admin, []string{"*"}, ""},
		{auth.Viewer, []string{"*"}, ""},
		{auth.Viewer, []string{"26740"}, ""}, // a commune of 79
		{auth.Viewer, []string{"79"}, ""},    // a province
		{auth.Viewer, []string{"01"}, ""},    // another province
		{auth.Viewer, []string{"28108"}, ""}, // vn-2025's Can Duoc; jp-2021's 28108 is Kobe's Tarumi-ku
		{auth.Viewer, []string{"23710"}, ""}, // vn-2025's Ia Bang; vn-2024's 23710 went into 23869
		{auth.Operator, []string{"*"}, ""},
		{auth.Operator, []string{"26740"}, ""},
		{auth.Operator, []string{"01"}, ""},
		{auth.Ingest, []string{"*"}, ""},
		{auth.Ingest, []string{"26740"}, ""},
		{auth.Kiosk, []string{"26740"}, screenOf("26740")},
		{auth.Kiosk, []string{"79"}, screenOf("79")},
	} {
		p := auth.Principal{Role: c.role, Areas: c.areas, Screen: c.screen}
		tok, err := auth.Issue(apitest.Secret, p, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, who{name: fmt.Sprintf("%s %v", c.role, c.areas), token: tok, p: p.WithScope(scope)})
	}
	return out
}

// target is a unit requests are about.
type target struct {
	h, code, level string
	center         orb.Point
	inside         orb.Point // a point in the unit (in its successor, for vn-2024)
	bbox           string    // a small box around the center
}

func matrixTargets(t testing.TB, reg *geo.Registry) []target {
	t.Helper()
	var out []target
	for _, c := range [][2]string{
		{"vn-2025", "26740"}, {"vn-2025", "79"}, {"vn-2025", "01"}, {"vn-2025", "00004"},
		{"vn-2025", "28108"}, {"vn-2025", "23710"},
		{"jp-2021", "28108"}, {"jp-2021", "28"},
		{"vn-2024", "23710"}, {"vn-2024", "26740"}, {"vn-2024", "760"}, {"vn-2024", "74"},
	} {
		h, _ := reg.Hierarchy(c[0])
		u, ok := h.Unit(c[1])
		if !ok {
			t.Fatalf("no unit %s in %s", c[1], c[0])
		}
		tg := target{h: c[0], code: c[1], level: u.Level}
		b, ok := h.Bound(c[1])
		if !ok && len(h.GeometryLevels()) > 0 { // a unit drawn by its children only
			for _, code := range h.Subtree(c[1]) {
				if cb, has := h.Bound(code); has {
					if ok {
						cb = b.Union(cb)
					}
					b, ok = cb, true
				}
			}
		}
		if !ok { // vn-2024 has no boundaries: aim at where the unit went
			cur, _ := reg.Hierarchy("vn-2025")
			cw, _ := reg.Crosswalk("vn-2024", "vn-2025")
			a, err := cw.Attribute(c[1], nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ = cur.Bound(a.Code)
		}
		tg.center, tg.inside = b.Center(), b.Center()
		lh := h
		if len(h.GeometryLevels()) == 0 {
			lh, _ = reg.Hierarchy("vn-2025")
		}
		for _, code := range append([]string{c[1]}, h.Subtree(c[1])...) {
			if cb, has := lh.Bound(code); has {
				if chain := lh.Locate(cb.Center()); len(chain) > 0 && (lh != h || h.Contains(c[1], chain[len(chain)-1].Code)) {
					tg.inside = cb.Center()
					break
				}
			}
		}
		tg.bbox = fmt.Sprintf("%.4f,%.4f,%.4f,%.4f", tg.center[0]-0.02, tg.center[1]-0.02, tg.center[0]+0.02, tg.center[1]+0.02)
		out = append(out, tg)
	}
	return out
}

// request is one request of the matrix.
type request struct {
	method, url, body string
	h, code           string                    // the unit asked about; "" for none
	also              [][2]string               // more units (hierarchy, code) the request needs covered
	may               func(auth.Principal) bool // roles that may make it at all
	public            bool
	status            int // of a public request, when not 200
	write             bool
}

var (
	mayRead   = auth.Principal.CanRead
	mayIngest = auth.Principal.CanIngest
	mayAct    = auth.Principal.CanAct
	mayAdmin  = func(p auth.Principal) bool { return p.Role == auth.Admin }
)

// routeCases builds the requests of each route, for a target; every route
// the server registers must have an entry.
func routeCases(reg *geo.Registry) map[string]func(tg target) []request {
	cur := func(tg target) bool { return tg.h == "vn-2025" }
	get := func(url, h, code string, may func(auth.Principal) bool) request {
		return request{method: "GET", url: url, h: h, code: code, may: may}
	}
	public := func(url string) func(target) []request {
		return func(target) []request { return []request{{method: "GET", url: url, public: true}} }
	}
	once := func(r request) func(target) []request {
		first := ""
		return func(tg target) []request {
			if first == "" {
				first = tg.h + tg.code
			}
			if first != tg.h+tg.code {
				return nil
			}
			return []request{r}
		}
	}
	// A device and an alarm in the target's unit (current hierarchy only).
	devices := map[string]string{"26740": "cam-hcmc-1", "79": "cam-hcmc-3", "01": "cam-hanoi-1", "00004": "sensor-hanoi-1"}
	layers := func(tg target) []string {
		h, _ := reg.Hierarchy(tg.h)
		if len(h.GeometryLevels()) == 0 {
			return []string{tg.h + "." + tg.level} // no such layer: 404 for everyone
		}
		return []string{tg.h + "." + tg.level, tg.h + "." + tg.level + ".kpi"}
	}
	live := []string{"cameras", "sensors", "camera-events.density"}
	tileOf := func(tg target) maptile.Tile {
		z := maptile.Zoom(12)
		if tg.level == "province" || tg.level == "prefecture" {
			z = 8
		}
		return maptile.At(tg.center, z)
	}
	ingest := func(name string) func(target) []request {
		return func(tg target) []request {
			return []request{{method: "POST", url: "/api/v1/ingest/" + name, body: `[]`, may: mayIngest, write: true}}
		}
	}
	return map[string]func(tg target) []request{
		"GET /healthz":             public("/healthz"),
		"GET /readyz":              public("/readyz"),
		"GET /api/v1/openapi.json": public("/api/v1/openapi.json"),
		"GET /metrics":             once(request{method: "GET", url: "/metrics", may: mayAdmin}),
		"GET /api/v1/kpis":         once(get("/api/v1/kpis", "", "", mayRead)),
		"GET /api/v1/areas": func(tg target) []request {
			h, _ := reg.Hierarchy(tg.h)
			return []request{
				get("/api/v1/areas?hierarchy="+tg.h+"&level="+h.Levels()[0], "", "", mayRead),
				get("/api/v1/areas?hierarchy="+tg.h+"&parent="+tg.code, tg.h, tg.code, mayRead),
			}
		},
		"GET /api/v1/areas/:code": func(tg target) []request {
			return []request{get("/api/v1/areas/"+tg.code+"?hierarchy="+tg.h, tg.h, tg.code, mayRead)}
		},
		"GET /api/v1/areas/:code/kpis": func(tg target) []request {
			return []request{get("/api/v1/areas/"+tg.code+"/kpis?hierarchy="+tg.h, tg.h, tg.code, mayRead)}
		},
		"GET /api/v1/areas/:code/children/kpis": func(tg target) []request {
			return []request{get("/api/v1/areas/"+tg.code+"/children/kpis?window=7d&hierarchy="+tg.h, tg.h, tg.code, mayRead)}
		},
		"GET /api/v1/areas/:code/lineage": func(tg target) []request {
			return []request{get("/api/v1/areas/"+tg.code+"/lineage?hierarchy="+tg.h, tg.h, tg.code, mayRead)}
		},
		"GET /api/v1/geo/lookup": func(tg target) []request {
			return []request{get(fmt.Sprintf("/api/v1/geo/lookup?hierarchy=%s&lat=%f&lon=%f", tg.h, tg.inside[1], tg.inside[0]), tg.h, tg.code, mayRead)}
		},
		// Reports are about units of the current hierarchy, which take no
		// hierarchy parameter: a target's code names a unit of vn-2025.
		"GET /api/v1/kpis/:id/series": func(tg target) []request {
			return []request{get("/api/v1/kpis/on_time_rate/series?area="+tg.code, "vn-2025", tg.code, mayRead)}
		},
		"GET /api/v1/kpis/:id/ranking": func(tg target) []request {
			return []request{get("/api/v1/kpis/on_time_rate/ranking?parent="+tg.code, "vn-2025", tg.code, mayRead)}
		},
		"GET /api/v1/analysis/relationship": func(tg target) []request {
			return []request{get("/api/v1/analysis/relationship?x=on_time_rate&y=dossiers_received&parent="+tg.code, "vn-2025", tg.code, mayRead)}
		},
		"GET /api/v1/scoreboard": func(tg target) []request {
			return []request{get("/api/v1/scoreboard?area="+tg.code, "vn-2025", tg.code, mayRead)}
		},
		"GET /api/v1/periods": once(get("/api/v1/periods", "", "", mayRead)),
		"GET /api/v1/periods/:period": func(tg target) []request {
			return []request{get("/api/v1/periods/2026-10?area="+tg.code, "vn-2025", tg.code, mayRead)}
		},
		"POST /api/v1/periods/:period/close": once(request{method: "POST", url: "/api/v1/periods/2026-10/close", body: `{}`, may: mayAdmin, write: true}),
		"POST /api/v1/periods/:period/reopen": once(request{method: "POST", url: "/api/v1/periods/2026-10/reopen", body: `{"reason":"late records"}`,
			may: mayAdmin, write: true}),
		"GET /api/v1/devices": func(tg target) []request {
			if !cur(tg) {
				return []request{get("/api/v1/devices", "", "", mayRead)}
			}
			return []request{get("/api/v1/devices?area="+tg.code, tg.h, tg.code, mayRead)}
		},
		"GET /api/v1/devices/:id": func(tg target) []request {
			if id, ok := devices[tg.code]; ok && cur(tg) {
				return []request{get("/api/v1/devices/"+id, tg.h, tg.code, mayRead)}
			}
			return nil
		},
		"PUT /api/v1/devices/:id": func(tg target) []request {
			if !cur(tg) {
				return nil
			}
			out := []request{{method: "PUT", url: "/api/v1/devices/new-" + tg.code, h: tg.h, code: tg.code, may: mayAct, write: true,
				body: fmt.Sprintf(`{"kind":"camera","lat":%f,"lon":%f}`, tg.inside[1], tg.inside[0])}}
			if id, ok := devices[tg.code]; ok {
				// Moving a device out of the target's unit to Sai Gon needs
				// both units in scope.
				out = append(out, request{method: "PUT", url: "/api/v1/devices/" + id, h: tg.h, code: tg.code, may: mayAct, write: true,
					body: `{"kind":"camera","lat":10.78,"lon":106.7}`, also: [][2]string{{"vn-2025", "26740"}}})
			}
			return out
		},
		"GET /api/v1/alarms": func(tg target) []request {
			if !cur(tg) {
				return []request{get("/api/v1/alarms", "", "", mayRead)}
			}
			return []request{get("/api/v1/alarms?area="+tg.code, tg.h, tg.code, mayRead)}
		},
		"GET /api/v1/alarms/:id": func(tg target) []request {
			if id, ok := devices[tg.code]; ok && cur(tg) {
				return []request{get("/api/v1/alarms/ALM-"+id, tg.h, tg.code, mayRead)}
			}
			return nil
		},
		"POST /api/v1/alarms/:id/ack": func(tg target) []request {
			if id, ok := devices[tg.code]; ok && cur(tg) {
				return []request{{method: "POST", url: "/api/v1/alarms/ALM-" + id + "/ack", h: tg.h, code: tg.code, may: mayAct, write: true}}
			}
			return nil
		},
		"POST /api/v1/alarms/:id/resolve": func(tg target) []request {
			if id, ok := devices[tg.code]; ok && cur(tg) {
				return []request{{method: "POST", url: "/api/v1/alarms/ALM-" + id + "/resolve", h: tg.h, code: tg.code, may: mayAct, write: true}}
			}
			return nil
		},
		"GET /api/v1/rules":        once(get("/api/v1/rules", "", "", mayRead)),
		"PUT /api/v1/rules/:id":    once(request{method: "PUT", url: "/api/v1/rules/mine", body: `{}`, may: mayAdmin, write: true}),
		"DELETE /api/v1/rules/:id": once(request{method: "DELETE", url: "/api/v1/rules/mine", may: mayAdmin, write: true}),
		"GET /api/v1/layers":       once(get("/api/v1/layers", "", "", mayRead)),
		"GET /api/v1/layers/:layer": func(tg target) []request {
			var out []request
			for _, l := range layers(tg) {
				out = append(out, get("/api/v1/layers/"+l+".geojson?bbox="+tg.bbox, "", "", mayRead))
			}
			for _, l := range live {
				out = append(out, get("/api/v1/layers/"+l+".geojson?bbox="+tg.bbox, "", "", mayRead))
			}
			return out
		},
		"GET /tiles/:file": func(tg target) []request {
			var out []request
			for _, l := range append(layers(tg), live...) {
				out = append(out, get("/tiles/"+l+".json", "", "", mayRead))
			}
			return out
		},
		"GET /tiles/:layer/:z/:x/:y": func(tg target) []request {
			var out []request
			tile := tileOf(tg)
			for _, l := range append(layers(tg), live...) {
				out = append(out, get(apitest.TilePath(l, tile), "", "", mayRead))
			}
			return out
		},
		"GET /ogc":             once(get("/ogc", "", "", mayRead)),
		"GET /ogc/conformance": once(get("/ogc/conformance", "", "", mayRead)),
		"GET /ogc/collections": once(get("/ogc/collections", "", "", mayRead)),
		"GET /ogc/collections/:collectionId": func(tg target) []request {
			var out []request
			for _, l := range layers(tg) {
				out = append(out, get("/ogc/collections/"+l, "", "", mayRead))
			}
			return out
		},
		// The schema and queryables of a collection describe its fields, not
		// its units: every reader may have them.
		"GET /ogc/collections/:collectionId/schema": func(tg target) []request {
			var out []request
			for _, l := range layers(tg) {
				out = append(out, get("/ogc/collections/"+l+"/schema", "", "", mayRead))
			}
			return out
		},
		"GET /ogc/collections/:collectionId/queryables": func(tg target) []request {
			var out []request
			for _, l := range layers(tg) {
				out = append(out, get("/ogc/collections/"+l+"/queryables", "", "", mayRead))
			}
			return out
		},
		"GET /ogc/collections/:collectionId/items": func(tg target) []request {
			var out []request
			for _, l := range append(layers(tg), live...) {
				out = append(out, get("/ogc/collections/"+l+"/items?limit=10&bbox="+tg.bbox, "", "", mayRead))
			}
			return out
		},
		"GET /ogc/collections/:collectionId/items/:featureId": func(tg target) []request {
			var out []request
			for _, l := range layers(tg) {
				out = append(out, get("/ogc/collections/"+l+"/items/"+tg.code, tg.h, tg.code, mayRead))
			}
			if id, ok := devices[tg.code]; ok && cur(tg) {
				kind := "cameras"
				if strings.HasPrefix(id, "sensor") {
					kind = "sensors"
				}
				out = append(out, get("/ogc/collections/"+kind+"/items/"+id, tg.h, tg.code, mayRead))
			}
			return out
		},
		"GET /api/v1/live":           once(get("/api/v1/live", "", "", mayRead)), // topics: TestSecurityMatrixLive
		"GET /api/v1/tokens/revoked": once(get("/api/v1/tokens/revoked", "", "", mayAdmin)),
		"POST /api/v1/tokens/:jti/revoke": once(request{method: "POST", url: "/api/v1/tokens/0123456789abcdef/revoke", body: `{"reason":"matrix"}`,
			may: mayAdmin, write: true}),
		"GET /api/v1/screens": once(get("/api/v1/screens", "", "", mayAct)),
		"POST /api/v1/screens/:id/command": func(tg target) []request {
			if !cur(tg) {
				return nil
			}
			return []request{{method: "POST", url: "/api/v1/screens/" + screenOf(tg.code) + "/command", body: `{"op":"identify"}`,
				h: tg.h, code: tg.code, may: mayAct, write: true}}
		},
		"POST /api/v1/screens/:id/seen": func(tg target) []request {
			if !cur(tg) {
				return nil
			}
			id := screenOf(tg.code)
			own := func(p auth.Principal) bool { return p.CanAct() || p.Role == auth.Kiosk && p.Screen == id }
			return []request{{method: "POST", url: "/api/v1/screens/" + id + "/seen", body: `{"build":"matrix"}`,
				h: tg.h, code: tg.code, may: own, write: true}}
		},
		"POST /api/v1/screens/:id/tokens": func(tg target) []request {
			if !cur(tg) {
				return nil
			}
			return []request{{method: "POST", url: "/api/v1/screens/" + screenOf(tg.code) + "/tokens", may: mayAdmin, write: true}}
		},
		// A code nobody issued: refused alike whoever asks (the redirect is
		// TestKioskLink's).
		"GET /k/:code":                        once(request{method: "GET", url: "/k/0123456789", public: true, status: 404}),
		"POST /api/v1/ingest/dossiers":        ingest("dossiers"),
		"POST /api/v1/ingest/camera-events":   ingest("camera-events"),
		"POST /api/v1/ingest/sensor-readings": ingest("sensor-readings"),
		"POST /api/v1/ingest/ngsi-ld":         ingest("ngsi-ld"),
		"POST /api/v1/ingest/camera-xml":      ingest("camera-xml"),
		"POST /api/v1/ingest/feedback":        ingest("feedback"),
	}
}

// leaks lists the units an answer carries that p does not cover: unit
// codes of features, snapshots, list entries, devices and alarms, each in
// the hierarchy the answer names around it (else hierarchy). Ancestors and
// lineage edges are references, not readings of the unit, and are not
// checked.
func leaks(p auth.Principal, hierarchy string, body []byte, contentType string) []string {
	var out []string
	check := func(h, code string) {
		if code != "" && !p.Covers(auth.HierarchyName(h), code) {
			out = append(out, h+"/"+code)
		}
	}
	if strings.Contains(contentType, "vnd.mapbox-vector-tile") || strings.Contains(contentType, "protobuf") {
		layers, err := mvt.UnmarshalGzipped(body)
		if err != nil {
			layers, err = mvt.Unmarshal(body)
		}
		if err != nil {
			return []string{"undecodable tile: " + err.Error()}
		}
		for _, l := range layers {
			for _, f := range l.Features {
				h, _ := f.Properties["hierarchy"].(string)
				if h == "" {
					h = hierarchy
				}
				if code, ok := f.Properties["code"].(string); ok {
					check(h, code)
				}
				if code, ok := f.Properties["area_code"].(string); ok {
					check(h, code)
				}
			}
		}
		return out
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil // not JSON: no units
	}
	var walk func(v any, h, key string)
	walk = func(v any, h, key string) {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["hierarchy"].(string); ok && s != "" {
				h = s
			}
			for _, k := range []string{"area", "area_code"} {
				if s, ok := x[k].(string); ok {
					check(h, s)
				}
			}
			if s, ok := x["code"].(string); ok {
				if _, unit := x["level"]; unit {
					check(h, s)
				}
			}
			for k, e := range x {
				switch k {
				case "ancestors", "predecessors", "successors", "fields":
					continue
				case "children":
					if m, ok := e.(map[string]any); ok { // a map's children, by code
						for code := range m {
							check(h, code)
						}
					}
				}
				walk(e, h, k)
			}
		case []any:
			for i, e := range x {
				// A lookup's chain: the units above the last are references.
				if key == "units" && i < len(x)-1 {
					continue
				}
				walk(e, h, key)
			}
		}
	}
	walk(v, hierarchy, "")
	return out
}

type matrixReply struct {
	code   int
	ctype  string
	body   []byte
	header http.Header
}

// do asks the server's handler directly, without a connection: the matrix
// makes thousands of requests.
func (m *matrixServer) do(t testing.TB, r request, token string) matrixReply {
	t.Helper()
	m.once.Do(func() { m.handler = m.s.App().Handler() })
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(r.method)
	ctx.Request.SetRequestURI(r.url)
	ctx.Request.Header.SetHost("example.com")
	if r.body != "" {
		ctx.Request.SetBodyString(r.body)
		ctx.Request.Header.SetContentType("application/json")
	}
	if token != "" {
		ctx.Request.Header.Set("Authorization", "Bearer "+token)
	}
	ctx.Request.Header.Set("Accept-Encoding", "gzip")
	m.handler(&ctx)
	header := http.Header{}
	ctx.Response.Header.VisitAll(func(k, v []byte) { header.Add(string(k), string(v)) })
	// A compressed body would hide an out-of-scope unit from the checks.
	body := ctx.Response.Body()
	var err error
	switch enc := string(ctx.Response.Header.ContentEncoding()); enc {
	case "gzip":
		body, err = ctx.Response.BodyGunzip()
	case "br":
		body, err = ctx.Response.BodyUnbrotli()
	case "deflate":
		body, err = ctx.Response.BodyInflate()
	case "":
	default:
		t.Fatalf("%s %s: unknown Content-Encoding %q", r.method, r.url, enc)
	}
	if err != nil {
		t.Fatalf("%s %s: decode the %s body: %v", r.method, r.url, ctx.Response.Header.ContentEncoding(), err)
	}
	return matrixReply{ctx.Response.StatusCode(), string(ctx.Response.Header.ContentType()), append([]byte(nil), body...), header}
}

func TestSecurityMatrix(t *testing.T) {
	m := newMatrixServer(t, Config{})
	cases := routeCases(m.geo)
	targets := matrixTargets(t, m.geo)
	principals := matrixPrincipals(t, m.scope)

	// Every registered route is in the matrix.
	var routes []string
	for _, r := range m.s.App().GetRoutes(true) {
		if r.Method == fiber.MethodHead || r.Path == "/" {
			continue
		}
		key := r.Method + " " + r.Path
		if cases[key] == nil {
			t.Errorf("route %s is not in the security matrix: add its requests to routeCases", key)
			continue
		}
		routes = append(routes, key)
	}
	sort.Strings(routes)
	routes = slices.Compact(routes)

	// The requests, built once: generators such as once() keep state.
	type routeRequest struct {
		route string
		r     request
	}
	var all []routeRequest
	for _, route := range routes {
		for _, tg := range targets {
			for _, r := range cases[route](tg) {
				all = append(all, routeRequest{route, r})
			}
		}
	}

	// The principals run in parallel on one server, so writes are counted
	// over all of them: the fakes must have been asked exactly the writes
	// that were answered 2xx, all by principals allowed to make them.
	var (
		mu                     sync.Mutex
		asked, refused, served int
		acceptedWrites         int
		succeeded              = map[string]bool{}
	)
	t.Run("principals", func(t *testing.T) {
		for _, w := range principals {
			t.Run(w.name, func(t *testing.T) {
				t.Parallel()
				var nAsked, nRefused, nServed, nWrites int
				ok := map[string]bool{}
				for _, rr := range all {
					r := rr.r
					got := m.do(t, r, w.token)
					nAsked++
					if r.write && got.code/100 == 2 && !strings.Contains(r.url, "/tokens/") {
						nWrites++
					}
					// A kiosk writes nothing but its own page's reports,
					// whatever the roles' methods say.
					if w.p.Role == auth.Kiosk && r.write && got.code/100 == 2 && r.url != "/api/v1/screens/"+w.p.Screen+"/seen" {
						t.Errorf("%s %s: got %d, A KIOSK WROTE", r.method, r.url, got.code)
					}
					where := fmt.Sprintf("%s %s", r.method, r.url)
					if r.public {
						if want := cmp.Or(r.status, 200); got.code != want && got.code != 503 {
							t.Errorf("%s: got %d, want %d (public)", where, got.code, want)
						}
						ok[rr.route] = true
						continue
					}
					roleOK := w.token != "" && r.may(w.p)
					inScope := r.code == "" || w.p.Covers(auth.HierarchyName(r.h), r.code)
					for _, u := range r.also {
						inScope = inScope && w.p.Covers(auth.HierarchyName(u[0]), u[1])
					}
					switch {
					case !roleOK:
						if got.code != 401 && got.code != 403 {
							t.Errorf("%s: got %d %.200s, want 401 or 403 (wrong role)", where, got.code, got.body)
						}
						nRefused++
						continue
					case !inScope:
						if got.code/100 == 2 && r.write {
							t.Errorf("%s: got %d, OUT-OF-SCOPE WRITE", where, got.code)
						}
						if got.code/100 != 2 && got.code != 403 && got.code != 404 {
							t.Errorf("%s: got %d %.200s, want 403 or 404 (out of scope)", where, got.code, got.body)
						}
						if got.code/100 != 2 {
							nRefused++
						}
					default:
						if got.code == 401 || got.code == 403 || got.code >= 500 {
							t.Errorf("%s: got %d %.200s, want it served (in scope)", where, got.code, got.body)
						}
					}
					if got.code/100 == 2 {
						nServed++
						ok[rr.route] = true
						if l := leaks(w.p, "vn-2025", got.body, got.ctype); len(l) > 0 {
							t.Errorf("%s: OUT-OF-SCOPE READ of %v", where, l)
						}
					}
				}
				mu.Lock()
				defer mu.Unlock()
				asked, refused, served, acceptedWrites = asked+nAsked, refused+nRefused, served+nServed, acceptedWrites+nWrites
				for r := range ok {
					succeeded[r] = true
				}
			})
		}
	})
	if got := m.writes.total(); got != acceptedWrites {
		t.Errorf("the fakes were asked %d writes, but %d were answered 2xx: a refused request WROTE", got, acceptedWrites)
	}
	if l := m.revs.List(); len(l) != 1 || l[0].RevokedBy != "admin-token" && l[0].RevokedBy != "admin" {
		t.Errorf("revocations %+v, want the one an admin made", l)
	}
	for _, route := range routes {
		if !succeeded[route] && !strings.HasSuffix(route, "/api/v1/live") {
			t.Errorf("route %s never answered 2xx in the matrix: its requests test nothing", route)
		}
	}
	t.Logf("%d requests over %d routes, %d targets and %d principals: %d served, %d refused", asked, len(routes), len(targets), len(principals), served, refused)
}
