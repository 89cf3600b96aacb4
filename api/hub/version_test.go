package hub

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/bus"
)

// until waits for the messages written so far to satisfy done and returns
// them all.
func (f *fakeConn) until(t *testing.T, what string, done func([]msg) bool) []msg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		got := f.messages(t, 0)
		if done(got) {
			return got
		}
		select {
		case <-f.wrote:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: not within 10s; got %+v", what, got)
		}
	}
}

// on returns the messages of one topic.
func on(ms []msg, topic string) []msg {
	var out []msg
	for _, m := range ms {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

func last(ms []msg) msg {
	if len(ms) == 0 {
		return msg{}
	}
	return ms[len(ms)-1]
}

// waitCalls polls the fake until cond holds.
func waitCalls(t *testing.T, tp *topics, what string, cond func(latest, current int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(tp.calls()) {
		if time.Now().After(deadline) {
			l, c := tp.calls()
			t.Fatalf("%s: not within 10s (Latest called %d times, Current %d)", what, l, c)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestOlderVersionAfterNewerIsNeverDelivered(t *testing.T) {
	h := newHub(t, Config{})
	c, _ := serve(t, h)
	c.send("subscribe", "kpi/79")
	if m := c.messages(t, 1)[0]; m.Type != "snapshot" || m.Version != bus.LowestVersion {
		t.Fatalf("first message: got %+v, want a computed snapshot with the lowest version", m)
	}
	deliver(h, "kpi/79", v(5), payload(5, t0))
	deliver(h, "kpi/79", v(3), payload(3, t0.Add(time.Minute))) // an older computation, published late
	deliver(h, "kpi/79", v(5), payload(55, t0))                 // the same version again
	deliver(h, "kpi/80", v(9), payload(9, t0))                  // not subscribed
	deliver(h, "kpi/79", v(6), payload(6, t0))
	// Deliver decides at once: once 6 is written, nothing older can follow.
	got := c.until(t, "the newest version", func(ms []msg) bool { return last(ms).Data.N == 6 })
	for i, m := range got[1:] {
		if m.Topic != "kpi/79" || m.Type != "update" || m.Version <= got[i].Version || m.Data.N == 3 || m.Data.N == 55 {
			t.Errorf("message %d: got %+v after version %s, want an update with a newer version, never 3 or 55", i+1, m, got[i].Version)
		}
	}
}

func TestStreamMessagesAreAlwaysDelivered(t *testing.T) {
	tp := &topics{}
	h := newHubWith(t, Config{}, tp)
	c, _ := serve(t, h)
	c.send("subscribe", "events/79")
	if m := c.messages(t, 1)[0]; m.Type != "snapshot" || m.Version != "" || m.Epoch != epoch0 || m.Offset != 0 {
		t.Fatalf("first message: got %+v, want a snapshot at the stream's start, without a version", m)
	}
	for i := 2; i <= 3; i++ {
		h.Deliver(tp.publish("events/79", 1)) // the same payload twice is still two messages
		if m := c.messages(t, i)[i-1]; m.Type != "update" || m.Offset != uint64(i-1) || m.Version != "" || m.Data.N != 1 {
			t.Fatalf("message %d: got %+v, want an unversioned update at offset %d", i, m, i-1)
		}
	}
}

func TestNewSubscriberIsServedFromTheHubsNewestMessage(t *testing.T) {
	tp := &topics{}
	h := newHubWith(t, Config{}, tp)
	a, _ := serve(t, h)
	a.send("subscribe", "kpi/79")
	a.messages(t, 1)
	deliver(h, "kpi/79", v(7), payload(7, t0))
	a.until(t, "the update", func(ms []msg) bool { return last(ms).Version == v(7) })
	latest, current := tp.calls()

	b, _ := serve(t, h)
	b.send("subscribe", "kpi/79")
	if m := b.messages(t, 1)[0]; m.Type != "snapshot" || m.Version != v(7) || m.Data.N != 7 {
		t.Fatalf("new subscriber: got %+v, want the hub's newest message as its snapshot", m)
	}
	if l, c := tp.calls(); l != latest || c != current {
		t.Errorf("new subscriber of a topic the hub has: the store was read %d and figures computed %d more times, want 0", l-latest, c-current)
	}
}

func TestSnapshotComesFromTheStoreBeforeComputing(t *testing.T) {
	tp := &topics{store: map[string]bus.Message{"kpi/79": {Topic: "kpi/79", Version: v(9), Payload: payload(9, t0)}}}
	h := newHubWith(t, Config{}, tp)
	c, _ := serve(t, h)
	c.send("subscribe", "kpi/79")
	if m := c.messages(t, 1)[0]; m.Type != "snapshot" || m.Version != v(9) || m.Data.N != 9 {
		t.Fatalf("topic in the store: got %+v, want its latest message", m)
	}
	if _, current := tp.calls(); current != 0 {
		t.Errorf("figures computed %d times for a topic the store has, want 0", current)
	}

	// Nobody published kpi/81 yet: it is computed. If a publication
	// overtakes the computation, the computed figures never reach the
	// screen after it.
	tp.mu.Lock()
	tp.gate = make(chan struct{})
	tp.mu.Unlock()
	c.send("subscribe", "kpi/81")
	waitCalls(t, tp, "computing kpi/81", func(_, current int) bool { return current == 1 })
	deliver(h, "kpi/81", v(2), payload(2, t0))
	c.until(t, "kpi/81 version 2", func(ms []msg) bool { return last(on(ms, "kpi/81")).Version == v(2) })
	close(tp.gate) // the computed figures come now or later: either way after version 2
	deliver(h, "kpi/81", v(3), payload(3, t0))
	got := on(c.until(t, "kpi/81 version 3", func(ms []msg) bool { return last(on(ms, "kpi/81")).Version == v(3) }), "kpi/81")
	if got[0].Type != "snapshot" || got[0].Version != v(2) || len(got) != 2 {
		t.Errorf("kpi/81: got %+v, want the published version 2 as its snapshot, then version 3", got)
	}
	for _, m := range got {
		if m.Version == bus.LowestVersion {
			t.Errorf("computed figures reached the screen after published ones: %+v", got)
		}
	}
}

func TestFailedSnapshotIsRetriedAndTheSubscriptionRecovers(t *testing.T) {
	tp := &topics{fail: 3}
	h := newHubWith(t, Config{RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}, tp)
	c, done := serve(t, h)
	c.send("subscribe", "kpi/79")
	got := c.until(t, "the snapshot", func(ms []msg) bool { return last(ms).Type == "snapshot" })
	if len(got) != 2 || got[0].Type != "error" || !got[0].Retrying || got[0].Topic != "kpi/79" {
		t.Fatalf("got %+v, want one error saying it is retrying, then the snapshot", got)
	}
	if _, current := tp.calls(); current != 4 {
		t.Errorf("figures computed %d times, want 4 (3 failures, then success)", current)
	}
	deliver(h, "kpi/79", v(1), payload(1, t0))
	if m := c.messages(t, 3)[2]; m.Type != "update" || m.Version != v(1) {
		t.Fatalf("after recovering: got %+v, want the update", m)
	}

	// A subscription that keeps failing is retried until the client goes.
	tp.mu.Lock()
	tp.fail = 1 << 30
	tp.mu.Unlock()
	c.send("subscribe", "kpi/80")
	waitCalls(t, tp, "retries", func(_, current int) bool { return current > 8 })
	close(c.in)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the client left: a retry outlives its connection")
	}
}

// TestResyncReadsEveryTopicAgain: after a gap in the bus, the hub reads
// the latest message of every state topic it keeps (once, for all its
// subscribers) and what every stream topic missed, and sends each
// subscription what is newer than what it has.
func TestResyncReadsEveryTopicAgain(t *testing.T) {
	tp := &topics{}
	h := newHubWith(t, Config{RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}, tp)
	one, _ := serve(t, h)
	two, _ := serve(t, h)
	for _, s := range []struct {
		c     *fakeConn
		topic string
	}{{one, "kpi/1"}, {one, "kpi/2"}, {one, "events/1"}, {two, "kpi/1"}, {two, "kpi/3"}} {
		s.c.send("subscribe", s.topic)
	}
	one.messages(t, 3)
	two.messages(t, 2)
	deliver(h, "kpi/1", v(1), payload(1, t0))
	h.Deliver(tp.publish("events/1", 1))
	one.until(t, "kpi/1 and events/1 on one", func(ms []msg) bool {
		return last(on(ms, "kpi/1")).Version == v(1) && last(on(ms, "events/1")).Offset == 1
	})
	two.until(t, "kpi/1 on two", func(ms []msg) bool { return last(on(ms, "kpi/1")).Version == v(1) })

	// While the bus was down kpi/2 was published and two events; this
	// node missed them, and the bus has them. It does not answer at first.
	tp.mu.Lock()
	tp.store = map[string]bus.Message{"kpi/2": {Topic: "kpi/2", Version: v(5), Payload: payload(5, t0)}}
	tp.latestErr = errors.New("redis: connection refused")
	tp.mu.Unlock()
	tp.publish("events/1", 2)
	tp.publish("events/1", 3)
	before, _ := tp.calls()
	h.Resync()
	waitCalls(t, tp, "a failed read of the store", func(latest, _ int) bool { return latest > before })
	tp.mu.Lock()
	tp.latestErr = nil
	tp.mu.Unlock()

	got := one.until(t, "kpi/2 and both events", func(ms []msg) bool {
		return last(on(ms, "kpi/2")).Version == v(5) && last(on(ms, "events/1")).Offset == 3
	})
	if ev := on(got, "events/1"); len(ev) != 4 || ev[2].Offset != 2 || ev[2].Data.N != 2 || ev[3].Data.N != 3 {
		t.Errorf("events/1 after the gap: got %+v, want the snapshot, then offsets 1, 2 and 3 once each", ev)
	}
	if m := last(on(got, "kpi/2")); m.Type != "update" || m.Data.N != 5 {
		t.Errorf("kpi/2 after the gap: got %+v, want version 5 as an update", m)
	}
	// Unchanged topics are not sent again.
	if n := len(on(got, "kpi/1")); n != 2 {
		t.Errorf("kpi/1 sent %d times, want 2 (snapshot, update): nothing changed in the gap", n)
	}
	if l, _ := tp.calls(); l != before+2 {
		t.Errorf("store read %d times by the resync, want 2 (one failure, then every topic at once)", l-before)
	}
	// The bus lost kpi/1 and kpi/3 (Redis came back empty but for kpi/2):
	// the hub asks for them again rather than wait for their next change.
	tp.mu.Lock()
	asked := slices.Sorted(slices.Values(tp.republish))
	tp.mu.Unlock()
	if want := []string{"kpi/1", "kpi/3"}; !slices.Equal(asked, want) {
		t.Errorf("asked for %v again after the gap, want %v (the state topics the bus did not have)", asked, want)
	}
}

func data(n int) struct {
	AsOf time.Time `json:"as_of"`
	N    int       `json:"n"`
} {
	return struct {
		AsOf time.Time `json:"as_of"`
		N    int       `json:"n"`
	}{N: n}
}
