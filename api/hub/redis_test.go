package hub

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// busTopics serves a node's hub from a real bus and counts the queries
// it makes of storage (Current) and of the bus.
type busTopics struct {
	b *bus.Redis

	mu                      sync.Mutex
	latest, history, stored int
}

func (t *busTopics) Resolve(_ auth.Principal, topic string) (Route, error) {
	return Route{Name: topic, Stream: strings.HasPrefix(topic, "events/"), Safety: strings.HasPrefix(topic, "alarms/")}, nil
}

func (t *busTopics) Latest(ctx context.Context, names []string) (map[string]bus.Message, error) {
	t.count(&t.latest)
	return t.b.Latest(ctx, names)
}

func (t *busTopics) History(ctx context.Context, topic, epoch string, after uint64) (bus.History, error) {
	t.count(&t.history)
	return t.b.History(ctx, topic, epoch, after)
}

func (t *busTopics) Current(_ context.Context, topic string) (bus.Message, error) {
	t.count(&t.stored)
	m := bus.Message{Topic: topic, Payload: payload(0, t0)}
	if !strings.HasPrefix(topic, "events/") {
		m.Version = bus.LowestVersion
	}
	return m, nil
}

func (t *busTopics) count(n *int) {
	t.mu.Lock()
	*n++
	t.mu.Unlock()
}

func (t *busTopics) counts() (latest, history, stored int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.latest, t.history, t.stored
}

// redisNode is a hub fed by its own subscription to a shared Redis bus,
// as each iocd node is.
type redisNode struct {
	hub    *Hub
	topics *busTopics
	bus    *bus.Redis
}

func newRedisNodes(t *testing.T, n int) []redisNode {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	t.Cleanup(func() { client.Close() })
	prefix := fmt.Sprintf("test:%s:%s:", t.Name(), rand.Text()[:8])
	var nodes []redisNode
	for range n {
		b, err := bus.NewRedis(client, bus.RedisConfig{Prefix: prefix}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		tp := &busTopics{b: b}
		h := New(Config{MaxPerToken: 5000, MaxPerAddress: 5000}, tp, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		t.Cleanup(func() { _ = h.Close(context.Background()) })
		sub, err := b.Subscribe(context.Background(), h.Deliver, h.Resync)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Close() })
		nodes = append(nodes, redisNode{hub: h, topics: tp, bus: b})
	}
	return nodes
}

// TestThousandScreensOnTwoNodesCauseOneQueryPerNode: 1,000 screens, half
// on each node, subscribe together to a topic: each node reads the bus's
// store once and storage once (nobody published the topic yet), and every
// screen gets its snapshot; then one publication reaches all of them.
func TestThousandScreensOnTwoNodesCauseOneQueryPerNode(t *testing.T) {
	nodes := newRedisNodes(t, 2)
	const perNode = 500
	var screens []*fakeConn
	for _, n := range nodes {
		for range perNode {
			c, _ := serve(t, n.hub)
			c.send("subscribe", "kpi/79")
			screens = append(screens, c)
		}
	}
	for _, c := range screens {
		if m := c.messages(t, 1)[0]; m.Type != "snapshot" {
			t.Fatalf("got %+v, want a snapshot", m)
		}
	}
	for i, n := range nodes {
		if latest, _, stored := n.topics.counts(); latest != 1 || stored != 1 {
			t.Errorf("node %d: bus store read %d times and storage %d times for %d screens, want 1 and 1", i, latest, stored, perNode)
		}
	}
	if err := nodes[0].bus.Publish(context.Background(), bus.Message{Topic: "kpi/79", Version: v(1), Payload: payload(1, t0)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range screens {
		c.until(t, "the publication", func(ms []msg) bool { return last(ms).Version == v(1) })
	}
}

// TestEventsScreenResumesOnTheOtherNodeWithEveryMissedEventOnce: a ticker
// screen on node A goes away while events keep coming (published by both
// nodes), then resumes on node B, which never served the topic: it gets
// every event it missed, once and in order, from the bus's history, then
// the live ones. A resume from a position the history no longer holds is
// told so (the negative control).
func TestEventsScreenResumesOnTheOtherNodeWithEveryMissedEventOnce(t *testing.T) {
	nodes := newRedisNodes(t, 2)
	a, b := nodes[0], nodes[1]
	publish := func(from redisNode, n int) {
		t.Helper()
		if err := from.bus.Publish(context.Background(), bus.Message{Topic: "events/79", Stream: true, Payload: payload(n, t0)}); err != nil {
			t.Fatal(err)
		}
	}
	screen, _ := serve(t, a.hub)
	screen.send("subscribe", "events/79")
	snap := screen.messages(t, 1)[0]
	for i := 1; i <= 5; i++ {
		publish(nodes[i%2], i)
	}
	got := screen.until(t, "five events", func(ms []msg) bool { return last(ms).Data.N == 5 })
	held := last(got)
	if snap.Type != "snapshot" || held.Epoch != snap.Epoch || held.Offset != snap.Offset+5 {
		t.Fatalf("before the disconnect: snapshot %+v, last %+v; want five updates after the snapshot's position", snap, held)
	}
	screen.Close()
	// While the screen is away (its ten seconds, in events): node B,
	// which holds nothing of the topic, must read the bus's history.
	const missed = 150
	for i := 6; i < 6+missed; i++ {
		publish(nodes[i%2], i)
	}
	back, _ := serve(t, b.hub)
	back.sendSince("subscribe", "events/79", fmt.Sprintf("%s:%d", held.Epoch, held.Offset))
	got = back.until(t, "the missed events", func(ms []msg) bool { return last(ms).Type == "current" })
	var ns []int
	for _, m := range got[:len(got)-1] {
		if m.Type != "update" || m.Epoch != held.Epoch {
			t.Fatalf("resumed: got %+v, want updates of epoch %s", m, held.Epoch)
		}
		ns = append(ns, m.Data.N)
	}
	for i, n := range ns {
		if n != 6+i {
			t.Fatalf("resumed: events %v, want 6 to %d once each, in order", ns, 5+missed)
		}
	}
	if len(ns) != missed {
		t.Fatalf("resumed: %d events, want %d", len(ns), missed)
	}
	publish(a, 1000)
	back.until(t, "a live event after the resume", func(ms []msg) bool { return last(ms).Data.N == 1000 })
	if m := last(back.messages(t, 0)); m.Offset != held.Offset+missed+1 {
		t.Errorf("live event at offset %d, want %d", m.Offset, held.Offset+missed+1)
	}

	back.Close()

	// Negative control: a position older than the bus's history.
	for i := range bus.DefaultHistory {
		publish(a, 2000+i)
	}
	late, _ := serve(t, b.hub)
	late.sendSince("subscribe", "events/79", fmt.Sprintf("%s:%d", held.Epoch, held.Offset))
	if m := late.messages(t, 1)[0]; m.Type != "snapshot" || !m.Gap {
		t.Errorf("resume from beyond the history: got %+v, want a snapshot marked as a gap", m)
	}
	if _, history, _ := b.topics.counts(); history < 1 {
		t.Errorf("node B never read the bus's history")
	}
	if got := testutil.ToFloat64(b.hub.m.resumes.WithLabelValues("gap")); got != 1 {
		t.Errorf("gap resumes = %v, want 1", got)
	}
}
