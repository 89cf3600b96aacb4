package feed

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/bus/bustest"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func newFeed(t *testing.T) (*Feed, *chstore.Store, *bustest.Capture[Message]) {
	t.Helper()
	s := testenv.Store(t)
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	pub := &bustest.Capture[Message]{}
	return New(Config{Interval: 20 * time.Millisecond}, s, h, pub, slog.New(slog.NewTextHandler(io.Discard, nil)), nil), s, pub
}

func TestTickerListsTheNewestAndCountsTheRest(t *testing.T) {
	f, _, pub := newFeed(t)
	now := time.Now().UTC().Truncate(time.Second)
	var evs []ingest.CameraEvent
	for i := range 25 {
		evs = append(evs, ingest.CameraEvent{EventID: fmt.Sprintf("e%02d", i), CameraID: "CAM-1", Type: "traffic_violation",
			Severity: "warning", Hierarchy: "vn-2025", AreaCode: "26740", OccurredAt: now.Add(time.Duration(i) * time.Second), Attrs: "{}"})
	}
	evs = append(evs, ingest.CameraEvent{EventID: "hb", CameraID: "CAM-1", Type: device.HeartbeatType, Hierarchy: "vn-2025", AreaCode: "26740"})
	f.Add(evs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(pub.Get("events/79")) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run stopped with %v, want nil once its context ended", err)
	}
	for _, topic := range []string{"events/26740", "events/79"} {
		ms := pub.Get(topic)
		if len(ms) != 1 {
			t.Fatalf("%s: got %d messages, want 1", topic, len(ms))
		}
		m := ms[0]
		if len(m.Events) != 10 || m.Folded != 15 || m.Events[0].ID != "e24" || m.Events[9].ID != "e15" || m.Events[0].AreaName == "" {
			t.Errorf("%s: got %d events (first %s, last %s, area %q) and %d folded, want e24…e15 and 15 folded",
				topic, len(m.Events), m.Events[0].ID, m.Events[len(m.Events)-1].ID, m.Events[0].AreaName, m.Folded)
		}
	}
	if ms := pub.Get("events/01"); len(ms) != 0 {
		t.Errorf("events/01 got %d messages", len(ms))
	}
}

func TestSnapshotAndDensityReadStoredEvents(t *testing.T) {
	f, s, _ := newFeed(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	b, err := s.Conn().PrepareBatch(ctx, "INSERT INTO "+s.Database()+".camera_events (event_id, camera_id, type, severity, hierarchy, area_code, lat, lon, occurred_at, attrs, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		id, typ, sev string
		lat, lon     float64
		ago          time.Duration
	}{
		{"a", "congestion", "warning", 10.7765, 106.7005, time.Minute},
		{"b", "accident", "critical", 10.7769, 106.7009, 2 * time.Minute},
		{"c", "congestion", "warning", 10.7851, 106.7011, 3 * time.Minute},
		{"d", "heartbeat", "info", 10.7769, 106.7009, 0},
		{"e", "congestion", "warning", 10.7769, 106.7009, 48 * time.Hour},
	}
	for _, r := range rows {
		if err := b.Append(r.id, "CAM-1", r.typ, r.sev, "vn-2025", "26740", r.lat, r.lon, now.Add(-r.ago), "{}", now); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	m, err := f.Snapshot(ctx, "79")
	if err != nil {
		t.Fatal(err)
	}
	var ids string
	for _, e := range m.Events {
		ids += e.ID
	}
	if ids != "abc" {
		t.Errorf("snapshot: got %q, want abc (newest first, no heartbeat, the last day only)", ids)
	}
	cells, err := f.Density(ctx, []string{"79"}, orb.Bound{Min: orb.Point{106.6, 10.7}, Max: orb.Point{106.8, 10.9}}, 0.01, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, c := range cells {
		got += fmt.Sprintf("[%.2f %.2f %d %d]", c.Lon, c.Lat, c.Events, c.Critical)
	}
	if want := "[106.70 10.77 2 1][106.70 10.78 1 0]"; got != want {
		t.Errorf("density: got %s, want %s", got, want)
	}
	if cells, _ := f.Density(ctx, []string{"01"}, orb.Bound{Min: orb.Point{106.6, 10.7}, Max: orb.Point{106.8, 10.9}}, 0.01, now.Add(-time.Hour)); len(cells) != 0 {
		t.Errorf("density for Hà Nội's scope: got %v", cells)
	}
}
