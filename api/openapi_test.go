package api

import (
	"context"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/paulmach/orb"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/alarm"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/feed"
	"github.com/openioc/ioc/geo"
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

// TestEveryRouteIsDocumented keeps docs/openapi.yaml and the server in step:
// every route the server registers is documented and every documented path
// exists.
func TestEveryRouteIsDocumented(t *testing.T) {
	units, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := units.Hierarchy("vn-2025")
	ingest := map[string]fiber.Handler{}
	for _, name := range []string{"dossiers", "camera-events", "sensor-readings", "ngsi-ld", "camera-xml"} {
		ingest[name] = func(c *fiber.Ctx) error { return nil }
	}
	s, err := New(Config{}, Deps{
		Geo: units, KPIs: noFigures{h}, Auth: auth.NewVerifier("", []byte("x")),
		Devices: noDevices{}, Alarms: noAlarms{}, Events: noEvents{},
		Ingest: ingest,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`:(\w+)`)
	served := map[string]bool{}
	for _, r := range s.App().GetRoutes(true) {
		if r.Method == fiber.MethodHead || r.Path == "/" {
			continue
		}
		served[param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	served["/metrics"] = true // registered only when a gatherer is given
	doc, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	inPaths := false
	for _, line := range strings.Split(string(doc), "\n") {
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && len(line) > 0 && line[0] != ' ':
			inPaths = false
		case inPaths && strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			documented[strings.TrimSuffix(strings.TrimSpace(line), ":")] = true
		}
	}
	for p := range served {
		if !documented[p] {
			t.Errorf("route %s is served but not in docs/openapi.yaml", p)
		}
	}
	for p := range documented {
		if !served[p] {
			t.Errorf("path %s is documented but not served", p)
		}
	}
	if !documented["/api/v1/areas/{code}/kpis"] {
		t.Errorf("read no paths from docs/openapi.yaml")
	}
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
