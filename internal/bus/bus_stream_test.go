package bus

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/testenv"
)

// TestStreamMessagesAreNumberedAcrossPublishers publishes a stream topic
// from two buses of one deployment: every subscriber sees offsets 1, 2, …
// with no hole and no repeat, whichever node published.
func TestStreamMessagesAreNumberedAcrossPublishers(t *testing.T) {
	t.Parallel()
	addr := testenv.RedisAddr(t)
	prefix := testPrefix(t)
	a := newRedisBus(t, newClient(t, addr), prefix)
	b := newRedisBus(t, newClient(t, addr), prefix)
	r := newRecorder()
	subscribe(t, a, r.handle)
	const n = 40
	for i := range n {
		from := a
		if i%2 == 1 {
			from = b
		}
		if err := from.Publish(context.Background(), Message{Topic: "events/79", Stream: true, Payload: fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	var epoch string
	for i := range n {
		select {
		case m := <-r.ch:
			if !m.Stream || m.Offset != uint64(i+1) || string(m.Payload) != fmt.Sprintf(`{"n":%d}`, i) {
				t.Fatalf("message %d: got stream=%v offset %d %s, want offset %d", i, m.Stream, m.Offset, m.Payload, i+1)
			}
			if epoch == "" {
				epoch = m.Epoch
			} else if m.Epoch != epoch {
				t.Fatalf("message %d: epoch %s, want %s", i, m.Epoch, epoch)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("message %d: nothing after %v", i, waitTimeout)
		}
	}
	h, err := b.History(context.Background(), "events/79", epoch, 30)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Complete || h.Last != n || len(h.Messages) != 10 || h.Messages[0].Offset != 31 || h.Messages[0].Topic != "events/79" {
		t.Fatalf("history after 30: complete=%v last=%d %d messages (first %+v), want the 10 after offset 30", h.Complete, h.Last, len(h.Messages), h.Messages[0])
	}
}

// TestHistorySaysWhenItDoesNotReachBack checks the three answers a reader
// who missed messages can get: everything it missed; not everything (the
// history was trimmed); another epoch (the numbering was lost).
func TestHistorySaysWhenItDoesNotReachBack(t *testing.T) {
	forEachKind(t, func(t *testing.T, fx fixture) {
		ctx := context.Background()
		start, err := fx.bus.History(ctx, "events/1", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if start.Epoch == "" || start.Last != 0 || start.Complete {
			t.Fatalf("empty topic: %+v, want an epoch, last 0, and not complete for a reader of no epoch", start)
		}
		for i := range DefaultHistory + 5 {
			if err := fx.bus.Publish(ctx, Message{Topic: "events/1", Stream: true, Payload: fmt.Appendf(nil, "%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		cases := []struct {
			name     string
			epoch    string
			after    uint64
			complete bool
			n        int
		}{
			{"caught up", start.Epoch, DefaultHistory + 5, true, 0},
			{"missed some", start.Epoch, DefaultHistory, true, 5},
			{"first retained", start.Epoch, 5, true, DefaultHistory},
			{"trimmed", start.Epoch, 4, false, DefaultHistory},
			{"other epoch", "0123456789abcdef", DefaultHistory, false, DefaultHistory},
			{"ahead", start.Epoch, DefaultHistory + 6, false, 0},
		}
		for _, c := range cases {
			h, err := fx.bus.History(ctx, "events/1", c.epoch, c.after)
			if err != nil {
				t.Fatal(err)
			}
			if h.Epoch != start.Epoch || h.Complete != c.complete || len(h.Messages) != c.n {
				t.Errorf("%s: epoch %s complete %v, %d messages; want %s %v %d", c.name, h.Epoch, h.Complete, len(h.Messages), start.Epoch, c.complete, c.n)
			}
			if !slices.IsSortedFunc(h.Messages, func(a, b Message) int { return int(a.Offset) - int(b.Offset) }) {
				t.Errorf("%s: messages out of order", c.name)
			}
		}
	})
}

// TestLostNumberingStartsANewEpoch drops a topic's numbering in Redis, as
// a Redis restart without persistence does: the next message starts a new
// epoch at offset 1, and a reader of the old epoch is told its position no
// longer holds.
func TestLostNumberingStartsANewEpoch(t *testing.T) {
	t.Parallel()
	client := newClient(t, testenv.RedisAddr(t))
	prefix := testPrefix(t)
	b := newRedisBus(t, client, prefix)
	ctx := context.Background()
	publishStream := func() {
		if err := b.Publish(ctx, Message{Topic: "events/2", Stream: true, Payload: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	publishStream()
	publishStream()
	old, err := b.History(ctx, "events/2", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Del(ctx, prefix+streamKey+"events/2").Err(); err != nil {
		t.Fatal(err)
	}
	publishStream()
	h, err := b.History(ctx, "events/2", old.Epoch, old.Last)
	if err != nil {
		t.Fatal(err)
	}
	if h.Epoch == old.Epoch || h.Last != 1 || h.Complete || len(h.Messages) != 1 || h.Messages[0].Offset != 1 {
		t.Fatalf("after losing the numbering: %+v, want a new epoch with one message at offset 1, not complete for the old epoch %s", h, old.Epoch)
	}
}

// TestDeltaTravelsWithTheWholePayload publishes a state message with a
// delta: subscribers get both, the latest-value store keeps the whole.
func TestDeltaTravelsWithTheWholePayload(t *testing.T) {
	forEachKind(t, func(t *testing.T, fx fixture) {
		r := newRecorder()
		subscribe(t, fx.bus, r.handle)
		m := Message{Topic: "map/79", Version: Version(3, 2), Base: Version(3, 1), Payload: []byte(`{"whole":1}`), Delta: []byte(`{"part":1}`)}
		if err := fx.bus.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-r.ch:
			if got.Version != m.Version || got.Base != m.Base || string(got.Payload) != string(m.Payload) || string(got.Delta) != string(m.Delta) {
				t.Fatalf("got %+v, want %+v", got, m)
			}
		case <-time.After(waitTimeout):
			t.Fatal("nothing delivered")
		}
		latest, err := fx.bus.Latest(context.Background(), []string{"map/79"})
		if err != nil {
			t.Fatal(err)
		}
		if l := latest["map/79"]; l.Version != m.Version || l.Base != "" || l.Delta != nil || string(l.Payload) != `{"whole":1}` {
			t.Fatalf("latest: %+v, want the whole payload only", l)
		}
	})
}

func TestPublishRejectsMalformedDeltasAndStreams(t *testing.T) {
	b := NewMemory()
	for _, m := range []Message{
		{Topic: "map/1", Version: Version(1, 1), Base: Version(1, 1), Payload: []byte("{}")},
		{Topic: "map/1", Base: Version(1, 1), Payload: []byte("{}")},
		{Topic: "map/1", Version: Version(1, 2), Base: "x", Payload: []byte("{}")},
		{Topic: "events/1", Stream: true, Version: Version(1, 2), Payload: []byte("{}")},
	} {
		if err := b.Publish(context.Background(), m); err == nil {
			t.Errorf("Publish(%+v): got nil error", m)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, m := range []Message{
		{Payload: []byte("x")},
		{Version: Version(1, 2), Payload: []byte(`{"a":1}`)},
		{Version: Version(1, 3), Base: Version(1, 2), Payload: []byte(`{"a":1}`), Delta: []byte(`{"b":2}`)},
	} {
		f.Add(encodeFrame(m))
	}
	f.Add("#0123456789abcdef:17 {}")
	f.Add("#:x y")
	f.Fuzz(func(t *testing.T, s string) {
		m := decodeFrame(s)
		if m.Version != "" && m.Base == "" && encodeFrame(m) != s {
			t.Fatalf("versioned frame %q re-encodes as %q", s, encodeFrame(m))
		}
		if m.Base != "" {
			if again := decodeFrame(encodeFrame(m)); again.Version != m.Version || string(again.Payload) != string(m.Payload) || string(again.Delta) != string(m.Delta) {
				t.Fatalf("delta frame %q does not round-trip: %+v", s, again)
			}
		}
	})
}
