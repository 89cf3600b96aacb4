package device

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

// running is a registry whose Run goes on until stop.
type running struct {
	r    *Registry
	stop func()
}

func runRegistry(t *testing.T, db string, pub Publisher, leases Leases) *running {
	t.Helper()
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	r, err := New(Config{RefreshInterval: 20 * time.Millisecond}, testenv.StoreOn(t, db), h, pub, leases,
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			t.Errorf("Run stopped with %v, want nil once its context ended", err)
		}
	}()
	n := &running{r: r, stop: sync.OnceFunc(func() {
		cancel()
		<-done
	})}
	t.Cleanup(n.stop)
	return n
}

func TestOneNodePublishesDevicesAndTheNextContinuesTheVersions(t *testing.T) {
	db := testenv.Database(t)
	b := bus.NewMemory()
	var mu sync.Mutex
	versions := map[string][]string{}
	sub, err := b.Subscribe(context.Background(), func(m bus.Message) {
		mu.Lock()
		versions[m.Topic] = append(versions[m.Topic], m.Version)
		mu.Unlock()
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	seen := func(topic string) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(versions[topic])
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	leases := lease.NewLocal() // two registries of one process contend like two nodes
	first := runRegistry(t, db, b, leases)
	if _, _, err := first.r.Put(context.Background(), Device{ID: "C1", Kind: Camera, Name: "Nguyễn Huệ", Lat: 10.7769, Lon: 106.7009}); err != nil {
		t.Fatal(err)
	}
	waitFor("devices/79 published", func() bool { return len(seen("devices/79")) > 0 })
	// The second node computes the same statuses every 20ms, and waits
	// for the lease: it must not publish them.
	runRegistry(t, db, b, leases)
	firstToken := seen("devices/79")[0][:16]

	// The holder stops: the other takes the lease and republishes every
	// topic with newer versions.
	first.stop()
	waitFor("the second node to republish", func() bool {
		return len(seen("devices/79")) >= 2 && len(seen("devices/26740")) >= 2
	})
	// Statuses did not change: one message from the first holder, one from
	// the second when it took over, nothing from a node without the lease.
	for _, topic := range []string{"devices/79", "devices/26740"} {
		vs := seen(topic)
		if len(vs) != 2 || vs[0][:16] != firstToken || vs[1][:16] <= firstToken || !slices.IsSorted(vs) {
			t.Errorf("%s: versions %v, want the first holder's, then one of the second above it", topic, vs)
		}
	}
}
