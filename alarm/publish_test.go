package alarm

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/internal/bus"
)

// flakyBus fails publications while down, as a bus whose Redis restarts.
type flakyBus struct {
	next Publisher
	mu   sync.Mutex
	down bool
}

func (f *flakyBus) Publish(ctx context.Context, msgs ...bus.Message) error {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return errors.New("redis: connection refused")
	}
	return f.next.Publish(ctx, msgs...)
}

func (f *flakyBus) set(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func TestAlarmMessagesCarryGrowingVersionsAndAreRepublishedAfterAFailure(t *testing.T) {
	r := newRig(t, Rule{ID: "off", Name: "off", Kind: Offline, Severity: "warning", After: device.Duration(10 * time.Minute), Source: "file"})
	flaky := &flakyBus{next: r.pub}
	r.e.pub = flaky
	r.devices.devices["CAM-A"] = device.Device{ID: "CAM-A", Kind: device.Camera, AreaCode: "26740", UpdatedAt: r.now.Add(-time.Hour)}
	r.devices.seen["CAM-A"] = r.now.Add(-11 * time.Minute)
	if err := r.e.Evaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
	opened := r.pub.Versions("alarms/79")
	if len(opened) != 1 || !bus.ValidVersion(opened[0]) {
		t.Fatalf("versions of the opening: got %v, want one", opened)
	}

	// The camera reports again while the bus is down: the alarm resolves
	// in storage, but no screen hears of it.
	flaky.set(true)
	r.devices.seen["CAM-A"] = r.now
	r.now = r.now.Add(time.Minute)
	if err := r.e.Evaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := r.pub.Get("alarms/79"); len(got) != 1 {
		t.Fatalf("with the bus down: %d messages captured, want still 1", len(got))
	}
	// Once the bus is back, the next evaluation publishes the topics it
	// missed, with every alarm still open (none) and a newer version.
	flaky.set(false)
	r.now = r.now.Add(time.Minute)
	if err := r.e.Evaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
	msgs, versions := r.pub.Get("alarms/79"), r.pub.Versions("alarms/79")
	if len(msgs) != 2 || len(msgs[1].Open) != 0 || msgs[1].Change != nil {
		t.Fatalf("after the bus is back: got %+v, want the alarms of 79 again, none open", msgs)
	}
	if !slices.IsSorted(versions) || versions[0] == versions[1] {
		t.Errorf("versions %v, want them to grow", versions)
	}
	for _, area := range []string{"26740", "79"} {
		if got := r.pub.Get("alarms/" + area); len(got) != 2 {
			t.Errorf("alarms/%s: got %d messages, want the opening and the republication", area, len(got))
		}
	}
	// An operator's action takes the lease again: its version is newer
	// still.
	r.now = r.now.Add(20 * time.Minute)
	r.pub.Take()
	if got := actions(r.evaluate()); got != "opened off CAM-A" {
		t.Fatalf("silent again: got %q, want a new alarm", got)
	}
	r.pub.Take()
	as, err := r.e.List(context.Background(), Query{Areas: []string{"79"}, States: []string{Open}})
	if err != nil || len(as) != 1 {
		t.Fatalf("open alarms: got %v, %v", as, err)
	}
	if _, err := r.e.Acknowledge(context.Background(), as[0].ID, "op-anna", ""); err != nil {
		t.Fatal(err)
	}
	if v := r.pub.Versions("alarms/79"); len(v) != 1 || v[0] <= versions[1] {
		t.Errorf("acknowledgement's version %v, want one above %s", v, versions[1])
	}
}
