package gis

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/internal/testenv"
)

func TestSnapshotCache(t *testing.T) {
	sc := newSnapshotCache(time.Minute, 2)
	key := func(level string) snapshotKey { return snapshotKey{"vn-2025", level, "", aggregate.Today} }
	release := make(chan struct{})
	var loads atomic.Int64
	load := func(context.Context) ([]aggregate.Snapshot, error) {
		loads.Add(1)
		<-release
		return []aggregate.Snapshot{{Area: "79"}}, nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := sc.get(context.Background(), key("province"), time.Second, load)
			if err != nil || got["79"].Area != "79" {
				t.Errorf("shared reading: got %v, %v", got, err)
			}
		}()
	}
	// A waiter whose request ends stops waiting; the reading goes on.
	testenv.Eventually(t, 10*time.Second, func() (bool, string) { return loads.Load() > 0, "the shared reading has not started" })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sc.get(ctx, key("province"), time.Second, load); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: got %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
	if got := loads.Load(); got != 1 {
		t.Errorf("loads for six concurrent requests: got %d, want 1", got)
	}

	// A load that panics still releases its waiters, with an error.
	func() {
		defer func() { recover() }()
		sc.get(context.Background(), key("commune"), time.Second, func(context.Context) ([]aggregate.Snapshot, error) { panic("boom") })
	}()
	if _, err := sc.get(context.Background(), key("commune"), time.Second, func(context.Context) ([]aggregate.Snapshot, error) { return nil, nil }); err != nil {
		t.Errorf("after a panicking load: got %v, want a fresh reading", err)
	}

	sc.get(context.Background(), key("district"), time.Second, func(context.Context) ([]aggregate.Snapshot, error) { return nil, nil })
	sc.mu.Lock()
	n := len(sc.entries)
	sc.mu.Unlock()
	if n > 2 {
		t.Errorf("entries: got %d, want at most 2", n)
	}
}

func TestTileCacheBounds(t *testing.T) {
	tile := func(n int) *encodedTile { return &encodedTile{plain: make([]byte, n)} }
	tc := newTileCache(3000, 3)
	for i := 0; i < 5; i++ {
		tc.add(tileKey{layer: "l", x: uint32(i)}, tile(500))
	}
	if got := tc.order.Len(); got != 3 {
		t.Errorf("entries: got %d, want 3", got)
	}
	if _, ok := tc.get(tileKey{layer: "l", x: 4}); !ok {
		t.Error("the newest tile was evicted")
	}
	tc.add(tileKey{layer: "big"}, tile(2000))
	if tc.bytes > 3000 {
		t.Errorf("bytes: got %d, want at most 3000", tc.bytes)
	}
	tc.add(tileKey{layer: "huge"}, tile(5000))
	if _, ok := tc.get(tileKey{layer: "huge"}); ok {
		t.Error("a tile larger than the cache was kept")
	}
}

func TestAcceptsGzip(t *testing.T) {
	f := func(header string, want bool) {
		t.Helper()
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q): got %v, want %v", header, got, want)
		}
	}
	f("", false)
	f("gzip", true)
	f("br, GZIP;q=0.5", true)
	f("gzip;q=0", false)
	f("deflate, br", false)
	f("*", true)
	f("identity, *;q=0", false)
}
