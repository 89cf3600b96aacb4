package hub

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/testenv"
)

// TestOneSnapshotReadPerTopicPerNode: a thousand screens subscribing
// together to a topic nobody published cause one read of the bus's store
// and one computation, and all get the same snapshot.
func TestOneSnapshotReadPerTopicPerNode(t *testing.T) {
	tp := &topics{gate: make(chan struct{})}
	h := newHubWith(t, Config{MaxPerToken: 2000, MaxPerAddress: 2000}, tp)
	const n = 1000
	conns := make([]*fakeConn, n)
	for i := range conns {
		conns[i], _ = serve(t, h)
		conns[i].send("subscribe", "kpi/79")
	}
	waitFor(t, "every subscription listed", func() bool { return testutil.ToFloat64(h.m.subscriptions) == n })
	close(tp.gate)
	for _, c := range conns {
		if m := c.messages(t, 1)[0]; m.Type != "snapshot" || m.Version != bus.LowestVersion {
			t.Fatalf("got %+v, want the computed snapshot", m)
		}
	}
	if latest, current := tp.calls(); latest != 1 || current != 1 {
		t.Errorf("store read %d times and figures computed %d times for %d screens, want 1 and 1", latest, current, n)
	}
	if hit, miss := testutil.ToFloat64(h.m.cache.WithLabelValues("hit")), testutil.ToFloat64(h.m.cache.WithLabelValues("miss")); hit+miss != n || miss < 1 {
		t.Errorf("cache hits %v and misses %v, want %d in all", hit, miss, n)
	}
}

// TestSafetySnapshotsAreReadFirst: a page subscribes to many figures and
// then to alarms; with the node's reads busy, the alarms are read before
// every figure still waiting, and reach the screen before them.
func TestSafetySnapshotsAreReadFirst(t *testing.T) {
	tp := &topics{gate: make(chan struct{})}
	h := newHubWith(t, Config{MaxSnapshotReads: 1}, tp)
	c, _ := serve(t, h)
	const figures = 20
	for i := range figures {
		c.send("subscribe", fmt.Sprintf("kpi/%d", i))
	}
	c.send("subscribe", "alarms/79")
	waitFor(t, "every read asked for", func() bool { return testutil.ToFloat64(h.m.fillsQueued) == figures })
	close(tp.gate)
	got := c.until(t, "every snapshot", func(ms []msg) bool { return len(ms) == figures+1 })
	tp.mu.Lock()
	order := slices.Clone(tp.currentOrder)
	tp.mu.Unlock()
	// One figure may have been read already when the alarms were asked
	// for; none after.
	if i := slices.Index(order, "alarms/79"); i < 0 || i > 1 {
		t.Errorf("reads in order %v, want alarms/79 before every figure still waiting", order)
	}
	if at := slices.IndexFunc(got, func(m msg) bool { return m.Topic == "alarms/79" }); at > 1 {
		t.Errorf("%d figures reached the screen before the alarms, want at most the one already read", at)
	}
}

// TestResumeWithUnchangedVersionGetsNoPayload: a screen that reconnects
// with the version it holds is told it is current; one whose version is
// stale, or from before a restart of the versions, gets a snapshot.
func TestResumeWithUnchangedVersionGetsNoPayload(t *testing.T) {
	tp := &topics{store: map[string]bus.Message{"kpi/79": {Topic: "kpi/79", Version: v(7), Payload: payload(7, t0)}}}
	h := newHubWith(t, Config{}, tp)
	cases := []struct {
		since, want string
	}{
		{v(7), "current"},
		{v(6), "snapshot"},
		{bus.Version(2000, 1), "snapshot"}, // newer than the node's: the versions restarted
	}
	for _, tc := range cases {
		c, _ := serve(t, h)
		c.sendSince("subscribe", "kpi/79", tc.since)
		m := c.messages(t, 1)[0]
		raw := c.raw(0)
		if m.Type != tc.want || m.Version != v(7) {
			t.Errorf("resume from %s: got %+v, want %s at version %s", tc.since, m, tc.want, v(7))
		}
		if tc.want == "current" && strings.Contains(raw, `"data"`) {
			t.Errorf("resume from the current version: got %s, want no data", raw)
		}
		c.Close()
	}
	c, _ := serve(t, h)
	c.sendSince("subscribe", "kpi/79", "yesterday")
	if m := c.messages(t, 1)[0]; m.Type != "error" || !strings.Contains(m.Error, "not a version") {
		t.Errorf("resume from a malformed version: got %+v, want an error saying so", m)
	}
}

// TestStreamResumeAfterDisconnectGetsEveryMissedMessageOnce: a ticker
// screen that goes away while events arrive and comes back, to this node
// or to a node that never served the topic, receives each missed event
// once, in order, then the live ones.
func TestStreamResumeAfterDisconnectGetsEveryMissedMessageOnce(t *testing.T) {
	tp := &topics{}
	h := newHubWith(t, Config{}, tp)
	other := newHubWith(t, Config{}, tp) // a second node, sharing the bus
	watcher, _ := serve(t, h)
	watcher.send("subscribe", "events/79") // keeps the topic on this node
	screen, _ := serve(t, h)
	screen.send("subscribe", "events/79")
	publish := func(n int) {
		m := tp.publish("events/79", n)
		h.Deliver(m)
		other.Deliver(m)
	}
	for i := 1; i <= 3; i++ {
		publish(i)
	}
	got := screen.until(t, "three events", func(ms []msg) bool { return last(ms).Offset == 3 })
	epoch := got[0].Epoch
	screen.Close()
	for i := 4; i <= 8; i++ {
		publish(i)
	}
	for _, node := range []*Hub{h, other} {
		back, _ := serve(t, node)
		back.sendSince("subscribe", "events/79", fmt.Sprintf("%s:3", epoch))
		got := back.until(t, "the missed events", func(ms []msg) bool { return last(ms).Type == "current" })
		if m := last(got); m.Offset != 8 || m.Epoch != epoch {
			t.Errorf("resumed stream: ends with %+v, want current at offset 8", m)
		}
		var offsets []uint64
		for _, m := range got[:len(got)-1] {
			if m.Type != "update" {
				t.Errorf("resumed stream: got a %s, want only updates", m.Type)
			}
			offsets = append(offsets, m.Offset)
			if m.Data.N != int(m.Offset) {
				t.Errorf("offset %d carries event %d", m.Offset, m.Data.N)
			}
		}
		if fmt.Sprint(offsets) != "[4 5 6 7 8]" {
			t.Errorf("resumed at offset 3: got offsets %v, want 4 to 8 once each", offsets)
		}
		back.Close()
	}
	publish(9)
	// Trimmed or renumbered history: the screen is told it starts over.
	back, _ := serve(t, h)
	back.sendSince("subscribe", "events/79", "0123456789abcdef:2")
	if m := back.messages(t, 1)[0]; m.Type != "snapshot" || !m.Gap || m.Epoch != epoch0 {
		t.Errorf("resume in a lost numbering: got %+v, want a snapshot marked as a gap", m)
	}
}

// TestMapDeltaGoesToScreensHoldingItsBase: a delta is sent to a
// subscriber that holds its base, the whole to one that does not, and a
// new subscriber gets the whole as its snapshot.
func TestMapDeltaGoesToScreensHoldingItsBase(t *testing.T) {
	tp := &topics{store: map[string]bus.Message{"kpi/79": {Topic: "kpi/79", Version: v(1), Payload: payload(1, t0)}}}
	h := newHubWith(t, Config{}, tp)
	holder, _ := serve(t, h)
	holder.send("subscribe", "kpi/79")
	holder.messages(t, 1)
	behind, _ := serve(t, h)
	behind.sendSince("subscribe", "kpi/79", v(1))
	behind.messages(t, 1)
	behind.hold()
	deliver(h, "kpi/79", v(2), payload(2, t0)) // taken by behind's writer, held
	<-behind.waiting
	holder.until(t, "version 2", func(ms []msg) bool { return last(ms).Version == v(2) })
	h.Deliver(bus.Message{Topic: "kpi/79", Version: v(3), Base: v(2), Payload: payload(3, t0), Delta: []byte(`{"n":3}`)})
	got := holder.until(t, "the delta", func(ms []msg) bool { return last(ms).Version == v(3) })
	if m := last(got); m.Type != "delta" || m.Base != v(2) || !strings.Contains(holder.raw(len(got)-1), `"data":{"n":3}`) {
		t.Errorf("holder of version 2: got %s, want the delta against it", holder.raw(len(got)-1))
	}
	// behind had version 2 queued when 3 came, so 3 goes whole... unless
	// 2 was already being written: then it holds 2 and takes the delta.
	behind.release()
	got = behind.until(t, "version 3", func(ms []msg) bool { return last(ms).Version == v(3) })
	if m := last(got); m.Type == "delta" && got[len(got)-2].Version != v(2) {
		t.Errorf("behind: got a delta without holding its base: %+v", got)
	}
	fresh, _ := serve(t, h)
	fresh.send("subscribe", "kpi/79")
	if m := fresh.messages(t, 1)[0]; m.Type != "snapshot" || m.Version != v(3) || m.Data.N != 3 {
		t.Errorf("new subscriber: got %+v, want the whole of version 3", m)
	}
}

// TestSlowStreamConsumerIsDisconnectedWithACode: a screen that does not
// read while stream messages pile up is closed with 4008, not left to
// grow a backlog.
func TestSlowStreamConsumerIsDisconnectedWithACode(t *testing.T) {
	tp := &topics{}
	h := newHubWith(t, Config{MaxQueue: 5, WriteTimeout: 100 * time.Millisecond}, tp)
	c, done := serve(t, h)
	c.send("subscribe", "events/79")
	c.messages(t, 1)
	c.hold()
	h.Deliver(tp.publish("events/79", 1))
	<-c.waiting
	for i := 2; i <= 10; i++ {
		h.Deliver(tp.publish("events/79", i))
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a screen with a growing backlog was not disconnected")
	}
	if fmt.Sprint(c.closeCodes()) != fmt.Sprint([]int{CloseSlowConsumer}) {
		t.Errorf("close codes %v, want [%d]", c.closeCodes(), CloseSlowConsumer)
	}
	if got := testutil.ToFloat64(h.m.disconnects.WithLabelValues("slow_consumer")); got != 1 {
		t.Errorf("slow_consumer disconnects = %v, want 1", got)
	}
}

// TestClientMessageRateIsBounded: a client sending more than its budget
// is closed with 4029.
func TestClientMessageRateIsBounded(t *testing.T) {
	h := newHub(t, Config{ClientRate: 1e-6, ClientBurst: 3})
	c, done := serve(t, h)
	for i := range 4 {
		c.send("subscribe", fmt.Sprintf("kpi/%d", i))
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a client over its message rate was not disconnected")
	}
	if fmt.Sprint(c.closeCodes()) != fmt.Sprint([]int{CloseRateLimited}) {
		t.Errorf("close codes %v, want [%d]", c.closeCodes(), CloseRateLimited)
	}
}

// TestShutdownSpreadsReconnects: on a planned shutdown every screen is
// told when to come back, spread over ReconnectSpread, before the close.
func TestShutdownSpreadsReconnects(t *testing.T) {
	h := New(Config{ReconnectSpread: 3 * time.Second}, &topics{}, nil, nil)
	var conns []*fakeConn
	var dones []chan error
	for range 20 {
		c, done := serve(t, h)
		c.send("subscribe", "kpi/1")
		c.messages(t, 1)
		conns = append(conns, c)
		dones = append(dones, done)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	delays := map[int]bool{}
	for i, c := range conns {
		<-dones[i]
		m := last(c.messages(t, 2))
		if m.Type != "reconnect" || m.AfterMS == nil || *m.AfterMS < 0 || *m.AfterMS >= 3000 {
			t.Fatalf("last message before the close: %+v, want reconnect with after_ms in [0, 3000)", m)
		}
		delays[*m.AfterMS] = true
		if fmt.Sprint(c.closeCodes()) != fmt.Sprint([]int{websocket.CloseGoingAway}) {
			t.Errorf("close codes %v, want [1001]", c.closeCodes())
		}
	}
	if len(delays) < 10 {
		t.Errorf("20 screens told %d distinct delays, want them spread", len(delays))
	}
}

func (f *fakeConn) raw(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.out[i])
}

func (f *fakeConn) closeCodes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.closes)
}

// discardConn is a client that takes every frame, for benchmarks.
type discardConn struct {
	in   chan []byte
	quit chan struct{}
	once sync.Once
}

func (d *discardConn) ReadMessage() (int, []byte, error) {
	select {
	case m := <-d.in:
		return websocket.TextMessage, m, nil
	case <-d.quit:
		return 0, nil, &websocket.CloseError{Code: websocket.CloseNormalClosure}
	}
}
func (d *discardConn) WriteMessage(int, []byte) error                        { return nil }
func (d *discardConn) WritePreparedMessage(*websocket.PreparedMessage) error { return nil }
func (d *discardConn) WriteControl(int, []byte, time.Time) error             { return nil }
func (d *discardConn) SetReadDeadline(time.Time) error                       { return nil }
func (d *discardConn) SetWriteDeadline(time.Time) error                      { return nil }
func (d *discardConn) SetReadLimit(int64)                                    {}
func (d *discardConn) SetPongHandler(func(string) error)                     {}
func (d *discardConn) Close() error {
	d.once.Do(func() { close(d.quit) })
	return nil
}

// BenchmarkDeliver hands messages to 1,000 subscribers of a topic and
// waits until each is written: one encoding per message, no allocation
// per delivery (run with -benchmem; allocs/op are per message, for all
// 1,000 subscribers).
func BenchmarkDeliver(b *testing.B) {
	for _, stream := range []bool{false, true} {
		name := "state"
		topic := "kpi/79"
		if stream {
			name, topic = "stream", "events/79"
		}
		b.Run(name, func(b *testing.B) {
			tp := &topics{}
			h := New(Config{MaxPerToken: 5000, MaxPerAddress: 5000, MaxQueue: 1 << 30}, tp, nil, nil)
			defer h.Close(context.Background())
			const subs = 1000
			var wg sync.WaitGroup
			for range subs {
				d := &discardConn{in: make(chan []byte, 1), quit: make(chan struct{})}
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = h.Serve(d, auth.Principal{Role: auth.Admin}, "")
				}()
				d.in <- fmt.Appendf(nil, `{"op":"subscribe","topic":%q}`, topic)
			}
			testenv.Eventually(b, time.Minute, func() (bool, string) {
				return testutil.ToFloat64(h.m.sent[kindSnapshot]) >= subs, "every subscriber's snapshot written"
			})
			p := payload(1, t0)
			p = append(p[:len(p)-1], fmt.Appendf(nil, `,"pad":%q}`, strings.Repeat("x", 260))...)
			msgs := make([]bus.Message, b.N)
			for i := range msgs {
				if stream {
					msgs[i] = bus.Message{Topic: topic, Stream: true, Epoch: epoch0, Offset: uint64(i + 1), Payload: p}
				} else {
					msgs[i] = bus.Message{Topic: topic, Version: v(uint32(i + 1)), Payload: p}
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for _, m := range msgs {
				h.Deliver(m)
			}
			// Until every subscriber has been written each message, or (on
			// a state topic) a newer one in its place.
			want := float64(b.N * subs)
			testenv.Eventually(b, time.Minute, func() (bool, string) {
				return testutil.ToFloat64(h.m.sent[kindUpdate])+testutil.ToFloat64(h.m.coalesced) >= want, "every message written or replaced"
			})
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/delivery")
		})
	}
}

// FuzzSince: whatever a client sends as since, the hub either refuses it
// with a message or takes a position it can print back.
func FuzzSince(f *testing.F) {
	for _, s := range []string{"", v(1), "e0e0e0e0e0e0e0e0:17", ":", "x:1", "a:-1", "a:18446744073709551616"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, since string, stream bool) {
		s, err := newSub(Route{Name: "t", Stream: stream}, since)
		switch {
		case err != nil:
			if !strings.Contains(err.Error(), "since") {
				t.Fatalf("refusal %q does not name since", err)
			}
		case since == "":
		case stream:
			if got := fmt.Sprintf("%s:%d", s.epoch, s.offset); !s.resume || got != since && !strings.HasPrefix(since, s.epoch+":") {
				t.Fatalf("since %q read as %q", since, got)
			}
		default:
			if s.since != since || !bus.ValidVersion(since) {
				t.Fatalf("since %q read as %q", since, s.since)
			}
		}
	})
}
