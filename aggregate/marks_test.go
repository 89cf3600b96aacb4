package aggregate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

func TestMarksFoldUntilTakenAndNeverBlock(t *testing.T) {
	m := NewMarks()
	// Nobody takes them: marking never blocks.
	for i := range 1000 {
		m.MarkDirty("vn-2025", []string{fmt.Sprint(26740 + i%3)})
	}
	m.MarkDirty("vn-2024", []string{"760"})
	m.MarkDirty("vn-2025", nil)
	if len(m.ready) != 1 {
		t.Errorf("marks signalled %d times, want once for all of them", len(m.ready))
	}
	got, extras := m.take()
	slices.Sort(got["vn-2025"])
	if len(got) != 2 || !slices.Equal(got["vn-2025"], []string{"26740", "26741", "26742"}) || !slices.Equal(got["vn-2024"], []string{"760"}) {
		t.Errorf("took %v, want the three units of vn-2025 and the one of vn-2024, each once", got)
	}
	if extras {
		t.Error("took the extras as marked, want not: only units were")
	}
	m.MarkExtras()
	if again, extras := m.take(); len(again) != 0 || !extras {
		t.Errorf("took %v and extras %v again, want no units but the extras marked since: taking forgets", again, extras)
	}
}

// alarmCounts is an Operations whose open-alarm counts a test changes.
type alarmCounts struct {
	mu   sync.Mutex
	open map[string]uint64
}

func (c *alarmCounts) AreaCounts(context.Context) (map[string]device.Counts, error) { return nil, nil }

func (c *alarmCounts) OpenCounts(context.Context) (map[string]uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.open), nil
}

// TestMarkedUnitsArePublished: a part built before the aggregator (the
// alarm engine) marks the units whose counts changed on Marks, also before
// the aggregator runs; the running aggregator publishes their new figures.
func TestMarkedUnitsArePublished(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	s := testenv.Store(t)
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	b := &recordingBus{Memory: bus.NewMemory()}
	counts := &alarmCounts{open: map[string]uint64{}}
	marks := NewMarks()
	marks.MarkDirty("vn-2025", []string{"26743"}) // before the aggregator exists
	a, err := New(Config{Location: hcm, RefreshInterval: time.Hour, Debounce: 10 * time.Millisecond},
		s, reg, b, lease.NewLocal(), counts, nil, marks, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return now }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run stopped with %v", err)
		}
	}()
	alarmsOpen := func(topic string) (float64, string) {
		got, err := b.Latest(context.Background(), []string{topic})
		if err != nil || got[topic].Payload == nil {
			return -1, fmt.Sprintf("%s not published (%v)", topic, err)
		}
		var snap Snapshot
		if err := json.Unmarshal(got[topic].Payload, &snap); err != nil {
			t.Fatal(err)
		}
		v, _ := snap.KPIs["alarms_open"].(float64)
		return v, fmt.Sprintf("%s has alarms_open %v", topic, snap.KPIs["alarms_open"])
	}
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		return len(marks.ready) == 0, "the running aggregator has not taken what was marked before it ran"
	})
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		v, why := alarmsOpen("kpi/26740")
		return v == 0, why
	})
	counts.mu.Lock()
	counts.open["26740"] = 2
	counts.mu.Unlock()
	marks.MarkDirty("vn-2025", []string{"26740"})
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		v, why := alarmsOpen("kpi/26740")
		return v == 2, why + ", want 2 once marked"
	})
}
