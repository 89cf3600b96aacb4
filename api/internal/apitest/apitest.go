// Package apitest holds what the tests of the API's packages (api, api/gis)
// share: fakes of the server's dependencies (figures, devices, camera
// events) whose answers a test can predict, tokens, and helpers that call
// a server and read its answers.
//
// Concurrency: the fakes are safe for the concurrent requests of a test
// server, but a test sets their Fail fields only between requests.
package apitest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/maptile"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/feed"
	"github.com/openioc/ioc/geo"
)

// Admin is the bootstrap admin token the test servers take.
const Admin = "admintoken"

// Secret signs the test servers' user tokens.
var Secret = []byte("gis-test-secret")

// Viewer issues a viewer token for areas.
func Viewer(t testing.TB, areas ...string) string {
	t.Helper()
	tok, err := auth.Issue(Secret, auth.Principal{Role: auth.Viewer, Areas: areas}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Vn2025 is the built-in geography and its hierarchy vn-2025.
func Vn2025(t testing.TB) (*geo.Registry, *geo.Hierarchy) {
	t.Helper()
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	return reg, h
}

// Figures answers every unit with figures derived from its code, so a
// test can tell which unit's values a feature carries.
type Figures struct {
	Reg   *geo.Registry
	H     *geo.Hierarchy
	Level atomic.Int64 // LevelSnapshots calls
	Fail  error
}

func (f *Figures) Hierarchy() *geo.Hierarchy { return f.H }

func (f *Figures) Location() *time.Location { return Location }

// Location is the deployment's time zone in the tests.
var Location = time.FixedZone("ICT", 7*3600)

// UnitSnapshot is the snapshot Figures gives unit u of h over w.
func (f *Figures) UnitSnapshot(h *geo.Hierarchy, u geo.Unit, w aggregate.Window) aggregate.Snapshot {
	return aggregate.Snapshot{
		Area: u.Code, Hierarchy: h.Name(), Level: u.Level, Name: u.Name, Window: w,
		AsOf: time.Date(2026, 11, 22, 9, 15, 4, 0, time.UTC), KPIs: aggregate.KPIs(counts(u.Code, w)),
	}
}

// counts: 100 dossiers received (200 over 7d), code mod 101 of them
// online, none resolved, so on_time_rate is null.
func counts(code string, w aggregate.Window) aggregate.Counts {
	n, _ := strconv.Atoi(code)
	c := aggregate.Counts{Received: 100, Online: uint64(n % 101)}
	if w == aggregate.Last7 {
		c.Received = 200
	}
	return c
}

// WantOnlineRate is the online_rate Figures gives unit code over w.
func WantOnlineRate(code string, w aggregate.Window) float64 {
	c := counts(code, w)
	r := float64(c.Online) / float64(c.Received)
	return float64(int64(r*1e4+0.5)) / 1e4
}

func (f *Figures) Snapshot(_ context.Context, hierarchy, code string, w aggregate.Window) (aggregate.Snapshot, error) {
	h, _ := f.Reg.Hierarchy(hierarchy)
	u, ok := h.Unit(code)
	if !ok {
		return aggregate.Snapshot{}, fmt.Errorf("%w %q", aggregate.ErrUnknownArea, code)
	}
	return f.UnitSnapshot(h, u, w), f.Fail
}

func (f *Figures) ChildSnapshots(context.Context, string, string, aggregate.Window) ([]aggregate.Snapshot, error) {
	return nil, errors.New("not used by the GIS routes")
}

func (f *Figures) MapSnapshot(context.Context, string, string, aggregate.Window) (aggregate.MapSnapshot, error) {
	return aggregate.MapSnapshot{}, errors.New("not used by the GIS routes")
}

func (f *Figures) LevelSnapshots(_ context.Context, hierarchy, level, parent string, w aggregate.Window) ([]aggregate.Snapshot, error) {
	f.Level.Add(1)
	if f.Fail != nil {
		return nil, f.Fail
	}
	h, _ := f.Reg.Hierarchy(hierarchy)
	var out []aggregate.Snapshot
	for _, u := range h.Select(level, parent) {
		out = append(out, f.UnitSnapshot(h, u, w))
	}
	return out, nil
}

// Devices serves a fixed set of devices, filtered as the registry
// filters them.
type Devices struct {
	H    *geo.Hierarchy
	List []device.View
	Fail error
}

func (f *Devices) Device(id string) (device.Device, bool) {
	for _, v := range f.List {
		if v.ID == id {
			return v.Device, true
		}
	}
	return device.Device{}, false
}

func (f *Devices) Views(_ context.Context, areas []string, kind string) ([]device.View, error) {
	if f.Fail != nil {
		return nil, f.Fail
	}
	var out []device.View
	for _, v := range f.List {
		in := areas == nil
		for _, a := range areas {
			in = in || f.H.Contains(a, v.AreaCode)
		}
		if in && (kind == "" || v.Kind == kind) {
			out = append(out, v)
		}
	}
	return out, nil
}

func (f *Devices) Put(context.Context, device.Device) (device.Device, bool, error) {
	return device.Device{}, false, errors.New("not used by the GIS routes")
}

func (f *Devices) Snapshot(context.Context, string) (device.Map, error) {
	return device.Map{}, errors.New("not used by the GIS routes")
}

// Event is a camera event Events counts.
type Event struct {
	Lon, Lat float64
	Area     string
	Critical bool
	At       time.Time
}

// DensityCall is what Events.Density was asked.
type DensityCall struct {
	Areas []string
	Bound orb.Bound
	Size  float64
	From  time.Time
}

// Events counts its events as the feed's query does.
type Events struct {
	H    *geo.Hierarchy
	List []Event
	Fail error

	mu    sync.Mutex
	calls []DensityCall
}

func (f *Events) Snapshot(context.Context, string) (feed.Message, error) {
	return feed.Message{}, errors.New("not used by the GIS routes")
}

func (f *Events) Density(_ context.Context, areas []string, bound orb.Bound, size float64, from time.Time) ([]feed.Cell, error) {
	f.mu.Lock()
	f.calls = append(f.calls, DensityCall{areas, bound, size, from})
	f.mu.Unlock()
	if f.Fail != nil {
		return nil, f.Fail
	}
	type key struct{ x, y int64 }
	cells := map[key]*feed.Cell{}
	var order []key
	for _, e := range f.List {
		in := areas == nil
		for _, a := range areas {
			in = in || f.H.Contains(a, e.Area)
		}
		if !in || e.At.Before(from) || e.Lon < bound.Min[0] || e.Lon >= bound.Max[0] || e.Lat < bound.Min[1] || e.Lat >= bound.Max[1] {
			continue
		}
		k := key{int64(math.Floor(e.Lon / size)), int64(math.Floor(e.Lat / size))}
		c := cells[k]
		if c == nil {
			c = &feed.Cell{Lon: float64(k.x) * size, Lat: float64(k.y) * size, Size: size}
			cells[k] = c
			order = append(order, k)
		}
		c.Events++
		if e.Critical {
			c.Critical++
		}
	}
	out := make([]feed.Cell, 0, len(order))
	for _, k := range order {
		out = append(out, *cells[k])
	}
	return out, nil
}

// LastCall is what Density was last asked.
func (f *Events) LastCall(t testing.TB) DensityCall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("Density was not called")
	}
	return f.calls[len(f.calls)-1]
}

// The devices: three cameras and a sensor in Ho Chi Minh City (79), a
// camera and a sensor in Hanoi (01). SaiGon is the ward of the first
// camera and of the HCMC sensor; Seen is when the online ones last
// reported.
const SaiGon = "26740"

var Seen = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

// LiveDevices are the devices, placed in h.
func LiveDevices(t testing.TB, h *geo.Hierarchy) []device.View {
	t.Helper()
	at := func(id, kind string, lon, lat float64, province, status string, latest map[string]device.Latest) device.View {
		units := h.Locate(orb.Point{lon, lat})
		if len(units) != 2 || units[0].Code != province {
			t.Fatalf("device %s at %v, %v: located in %v, want a commune of %s", id, lon, lat, units, province)
		}
		v := device.View{Device: device.Device{ID: id, Kind: kind, Name: "Device " + id, Lat: lat, Lon: lon, Hierarchy: h.Name(), AreaCode: units[1].Code},
			Status: status, Latest: latest}
		if status == "online" {
			v.LastSeen = &Seen
		}
		return v
	}
	return []device.View{
		at("cam-hcmc-1", device.Camera, 106.7, 10.78, "79", "online", nil),
		at("cam-hcmc-2", device.Camera, 106.66, 10.76, "79", "offline", nil),
		at("cam-hcmc-3", device.Camera, 106.65, 10.98, "79", "online", nil),
		at("cam-hanoi-1", device.Camera, 105.85, 21.03, "01", "online", nil),
		at("sensor-hcmc-1", device.Sensor, 106.701, 10.781, "79", "online", map[string]device.Latest{
			"pm25":        {Value: 42.5, ObservedAt: Seen.Add(-time.Minute)},
			"water_level": {Value: 1.25, ObservedAt: Seen.Add(-2 * time.Minute)},
		}),
		at("sensor-hanoi-1", device.Sensor, 105.84, 21.02, "01", "offline", nil),
	}
}

// LiveEvents: today, three events (one critical) in Sai Gon ward and two in
// An Khanh, a cell east; one in Hanoi; and one eight days old in Sai Gon.
func LiveEvents(now time.Time) []Event {
	return []Event{
		{106.7005, 10.7805, SaiGon, true, now}, {106.7006, 10.7806, SaiGon, false, now}, {106.7007, 10.7807, SaiGon, false, now},
		{106.7105, 10.7805, "27094", false, now}, {106.7106, 10.7806, "27094", false, now},
		{105.85, 21.03, "00070", false, now},
		{106.7005, 10.7805, SaiGon, false, now.Add(-8 * 24 * time.Hour)},
	}
}

// HCMCTile is the zoom-10 tile over central Ho Chi Minh City.
var HCMCTile = maptile.At(orb.Point{106.7, 10.78}, 10)

// TilePath is the path of a layer's tile.
func TilePath(layer string, t maptile.Tile) string {
	return fmt.Sprintf("/tiles/%s/%d/%d/%d.mvt", layer, t.Z, t.X, t.Y)
}

// Reply is a server's answer.
type Reply struct {
	Code   int
	Header http.Header
	Body   []byte
}

// App is a server whose Fiber application a test calls directly.
type App interface{ App() *fiber.App }

// Get asks s for target with token in the Authorization header (none when
// empty) and extra headers as name, value pairs.
func Get(t testing.TB, s App, target, token string, headers ...string) Reply {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.App().Test(req, -1)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Reply{resp.StatusCode, resp.Header, b}
}

// WantError checks a refusal's status and that its message names what was
// wrong.
func WantError(t testing.TB, r Reply, code int, mention string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Errorf("got body %.200s, want a JSON error: %v", r.Body, err)
		return
	}
	if r.Code != code || !strings.Contains(e.Error, mention) {
		t.Errorf("got %d %q, want %d with a message mentioning %q", r.Code, e.Error, code, mention)
	}
}

// Link is a link of an OGC document or feature.
type Link struct {
	Href  string `json:"href"`
	Rel   string `json:"rel"`
	Type  string `json:"type,omitempty"`
	Title string `json:"title,omitempty"`
}

// FeatureCollection is a GeoJSON FeatureCollection as the layers and OGC
// pages write it.
type FeatureCollection struct {
	Type           string `json:"type"`
	NumberMatched  *int   `json:"numberMatched"`
	NumberReturned *int   `json:"numberReturned"`
	TimeStamp      string `json:"timeStamp"`
	Links          []Link `json:"links"`
	Features       []struct {
		Type       string          `json:"type"`
		ID         string          `json:"id"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties map[string]any  `json:"properties"`
	} `json:"features"`
}

// DecodeFC checks that r is a GeoJSON FeatureCollection and decodes it.
func DecodeFC(t testing.TB, r Reply) FeatureCollection {
	t.Helper()
	if r.Code != http.StatusOK {
		t.Fatalf("got status %d (%s), want 200", r.Code, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/geo+json" {
		t.Errorf("Content-Type: got %q, want application/geo+json", ct)
	}
	var fc FeatureCollection
	if err := json.Unmarshal(r.Body, &fc); err != nil {
		t.Fatalf("decode %.200s: %v", r.Body, err)
	}
	if fc.Type != "FeatureCollection" {
		t.Errorf("type: got %q, want FeatureCollection", fc.Type)
	}
	return fc
}

// Server is a server a test serves on a port.
type Server interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// Serve serves s on a loopback port until the test ends, and returns its
// base URL.
func Serve(t testing.TB, s Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}
