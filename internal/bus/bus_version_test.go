package bus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
)

func TestVersionsCompareAsStringsInTokenThenSequenceOrder(t *testing.T) {
	pairs := []struct {
		token uint64
		seq   uint32
	}{
		{0, 0}, {0, 1}, {0, 15}, {0, 16}, {0, math.MaxUint32}, {1, 0}, {1, 2},
		{1_700_000_000_000, 0}, {1_700_000_000_000, 9}, {1_700_000_000_000, 10}, {1_700_000_000_001, 0},
		{math.MaxUint64, 0}, {math.MaxUint64, math.MaxUint32},
	}
	var prev string
	for i, p := range pairs {
		v := Version(p.token, p.seq)
		if len(v) != VersionLen || !ValidVersion(v) {
			t.Fatalf("Version(%d, %d) = %q: want %d hexadecimal digits", p.token, p.seq, v, VersionLen)
		}
		if i > 0 && v <= prev {
			t.Fatalf("Version(%d, %d) = %q, not above the previous %q", p.token, p.seq, v, prev)
		}
		prev = v
	}
	if Version(0, 0) != LowestVersion {
		t.Errorf("LowestVersion %q is not Version(0, 0) %q", LowestVersion, Version(0, 0))
	}
	if got, want := Version(0x18f3a2b4c5d, 0x2a), "0000018f3a2b4c5d0000002a"; got != want {
		t.Errorf("Version: got %q, want %q", got, want)
	}
	for _, bad := range []string{"", "1", "0000018F3A2B4C5D0000002A", "0000018f3a2b4c5d0000002", "0000018f3a2b4c5d0000002ag", "0000018f3a2b4c5d000000 2"} {
		if ValidVersion(bad) {
			t.Errorf("ValidVersion(%q) = true", bad)
		}
	}
}

func TestVersionsOfALeaseGrowAndEnd(t *testing.T) {
	v := NewVersions(42)
	a, _ := v.Next()
	b, _ := v.Next()
	if a != Version(42, 1) || b != Version(42, 2) {
		t.Fatalf("got %s, %s, want %s, %s", a, b, Version(42, 1), Version(42, 2))
	}
	v.seq.Store(math.MaxUint32 - 1)
	if last, err := v.Next(); err != nil || last != Version(42, math.MaxUint32) {
		t.Fatalf("last version: got %q, %v", last, err)
	}
	if _, err := v.Next(); !errors.Is(err, ErrExhausted) {
		t.Fatalf("after the last version: got %v, want ErrExhausted", err)
	}
}

func TestPublishRefusesVersionsNotNewerAndKeepsTheLatest(t *testing.T) {
	forEachKind(t, func(t *testing.T, fx fixture) {
		ctx := context.Background()
		r := newRecorder()
		subscribe(t, fx.bus, r.handle)
		v := func(token uint64, seq uint32, topic, payload string) Message {
			return Message{Topic: topic, Version: Version(token, seq), Payload: []byte(payload)}
		}
		first := v(7, 2, "kpi/79", "seven-two")
		if err := fx.bus.Publish(ctx, first); err != nil {
			t.Fatalf("first version: %v", err)
		}
		for _, m := range []Message{
			v(7, 2, "kpi/79", "the same version again"),
			v(7, 1, "kpi/79", "an older sequence"),
			v(6, 99, "kpi/79", "an older holder of the lease"),
		} {
			err := fx.bus.Publish(ctx, m)
			if !errors.Is(err, ErrStale) {
				t.Fatalf("Publish %s %q: got %v, want ErrStale", m.Version, m.Payload, err)
			}
		}
		// In one batch, a stale message is refused and the rest go out in order.
		batch := []Message{
			v(8, 1, "kpi/79", "a new holder"),
			{Topic: "events/79", Payload: []byte("a stream message")},
			v(7, 3, "kpi/79", "the old holder, late"),
			v(1, 1, "map/79", "another topic"),
		}
		if err := fx.bus.Publish(ctx, batch...); !errors.Is(err, ErrStale) {
			t.Fatalf("batch with a stale message: got %v, want ErrStale", err)
		}
		expect(t, r, first, batch[0], batch[1], batch[3])
		expectEmpty(t, r)

		latest, err := fx.bus.Latest(ctx, []string{"kpi/79", "map/79", "events/79", "alarms/79"})
		if err != nil {
			t.Fatalf("Latest: %v", err)
		}
		if len(latest) != 2 {
			t.Errorf("Latest: got %d topics, want kpi/79 and map/79 (stream and unpublished topics are not kept)", len(latest))
		}
		for _, want := range []Message{batch[0], batch[3]} {
			got := latest[want.Topic]
			if got.Topic != want.Topic || got.Version != want.Version || string(got.Payload) != string(want.Payload) {
				t.Errorf("Latest %s: got %+v, want %+v", want.Topic, got, want)
			}
		}
	})
}

func TestPublishRejectsMalformedVersions(t *testing.T) {
	forEachKind(t, func(t *testing.T, fx fixture) {
		for _, m := range []Message{
			{Topic: "kpi/79", Version: "7"},
			{Topic: "kpi/79", Version: "0000018F3A2B4C5D0000002A"},
			{Version: Version(1, 1)},
		} {
			if err := fx.bus.Publish(context.Background(), m); err == nil {
				t.Errorf("Publish %+v: got nil error, want one", m)
			}
		}
	})
}

// Two publishers racing on one topic, as two nodes do around a takeover:
// whatever the interleaving, a subscriber sees the topic's versions only
// grow, and the latest kept is the greatest.
func TestRacingPublishersNeverGoBackwards(t *testing.T) {
	forEachKind(t, func(t *testing.T, fx fixture) {
		r := newRecorder()
		subscribe(t, fx.bus, r.handle)
		const perPublisher = 200
		var wg sync.WaitGroup
		for token := uint64(1); token <= 2; token++ {
			wg.Go(func() {
				for seq := range uint32(perPublisher) {
					m := Message{Topic: "kpi/79", Version: Version(token, seq+1), Payload: fmt.Appendf(nil, "%d-%d", token, seq+1)}
					if err := fx.bus.Publish(context.Background(), m); err != nil && !errors.Is(err, ErrStale) {
						t.Errorf("Publish: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		want := Version(2, perPublisher)
		var got []string
		waitFor(t, "the last version", func() bool {
			for len(r.ch) > 0 {
				got = append(got, (<-r.ch).Version)
			}
			return len(got) > 0 && got[len(got)-1] == want
		})
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("versions delivered out of order or twice: %v", got)
		}
		latest, err := fx.bus.Latest(context.Background(), []string{"kpi/79"})
		if err != nil || latest["kpi/79"].Version != want {
			t.Fatalf("Latest: got %v, %v, want version %s", latest, err, want)
		}
	})
}

func TestOnlyStaleTellsRefusalsFromFailures(t *testing.T) {
	stale := staleError(Message{Topic: "kpi/79", Version: Version(1, 1)}, Version(2, 1))
	failed := fmt.Errorf("publish kpi/79 to redis: %w", errors.New("connection refused"))
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{stale, true},
		{errors.Join(stale, stale), true},
		{fmt.Errorf("publish 2 snapshots: %w", errors.Join(stale, stale)), true},
		{failed, false},
		{errors.Join(stale, failed), false},
		{context.Canceled, false},
	} {
		if got := OnlyStale(tt.err); got != tt.want {
			t.Errorf("OnlyStale(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
