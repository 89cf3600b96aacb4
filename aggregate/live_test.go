package aggregate

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

// attempt is one message a node tried to publish, accepted or not.
type attempt struct {
	topic, version string
}

// recordingBus is one in-process bus for several aggregators playing
// nodes; it records every publication they attempt, so that a test sees
// what a node tried to do, not only what the bus let through.
type recordingBus struct {
	*bus.Memory
	mu       sync.Mutex
	attempts []attempt
}

func (b *recordingBus) Publish(ctx context.Context, msgs ...bus.Message) error {
	b.mu.Lock()
	for _, m := range msgs {
		b.attempts = append(b.attempts, attempt{m.Topic, m.Version})
	}
	b.mu.Unlock()
	return b.Memory.Publish(ctx, msgs...)
}

// byToken counts the versioned attempts of each lease token.
func (b *recordingBus) byToken() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int{}
	for _, a := range b.attempts {
		if a.version != "" {
			out[a.version[:16]]++
		}
	}
	return out
}

// topicsOf lists the distinct topics a token published.
func (b *recordingBus) topicsOf(token string) map[string]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]bool{}
	for _, a := range b.attempts {
		if a.version != "" && a.version[:16] == token {
			out[a.topic] = true
		}
	}
	return out
}

// liveNode is an aggregator running as one node would.
type liveNode struct {
	a    *Aggregator
	stop func()
}

func startLive(t *testing.T, s *chstore.Store, pub Publisher, leases Leases, now time.Time) *liveNode {
	t.Helper()
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Location: hcm, RefreshInterval: time.Hour, Debounce: 10 * time.Millisecond},
		s, reg, pub, leases, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return now }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Run(ctx)
	}()
	n := &liveNode{a: a, stop: sync.OnceFunc(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("aggregator did not stop within 30s")
		}
	})}
	t.Cleanup(n.stop)
	return n
}

// route delivers internal messages as each node's wiring does.
func route(t *testing.T, b *recordingBus, nodes ...*liveNode) {
	t.Helper()
	sub, err := b.Subscribe(context.Background(), func(m bus.Message) {
		for _, n := range nodes {
			switch m.Topic {
			case DirtyTopic:
				n.a.Forwarded(m.Payload)
			case DeltaTopic:
				n.a.ForwardedDeltas(m.Payload)
			case RepublishTopic:
				n.a.Requested(m.Payload)
			}
		}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// latest reads a topic's latest published snapshot from the bus.
func latest(t *testing.T, b *recordingBus, topic string) (bus.Message, Snapshot) {
	t.Helper()
	got, err := b.Latest(context.Background(), []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	m := got[topic]
	var s Snapshot
	if m.Payload != nil {
		if err := json.Unmarshal(m.Payload, &s); err != nil {
			t.Fatal(err)
		}
	}
	return m, s
}

func received(s Snapshot) float64 {
	b, _ := json.Marshal(s.KPIs["dossiers_received"])
	var f float64
	_ = json.Unmarshal(b, &f)
	return f
}

func redisLeases(t *testing.T, ttl time.Duration) *lease.Redis {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t), DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return lease.NewRedis(c, lease.RedisConfig{TTL: ttl})
}

// stallingLeases acquires leases until stalled is set, then waits for its
// caller to give up, as a node whose connection to Redis hangs does.
type stallingLeases struct {
	Leases
	stalled atomic.Bool
}

func (s *stallingLeases) Acquire(ctx context.Context, name string) (*lease.Lease, error) {
	if s.stalled.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Leases.Acquire(ctx, name)
}

func TestOnlyTheLeaseHolderPublishes(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	s := testenv.Store(t)
	b := &recordingBus{Memory: bus.NewMemory()}
	one := startLive(t, s, b, redisLeases(t, time.Second), now)
	two := startLive(t, s, b, redisLeases(t, time.Second), now)
	route(t, b, one, two)
	// The holder says when it has published every topic: nodes are ready
	// for screens from then on.
	waitUntil(t, "a node to publish every topic", func() bool {
		m, _ := latest(t, b, TermTopic)
		return m.Version != ""
	})
	leader, follower := one, two
	if !one.a.leading.Load() {
		leader, follower = two, one
	}
	if !leader.a.leading.Load() || follower.a.leading.Load() {
		t.Fatalf("leading: one %v, two %v; want exactly one", one.a.leading.Load(), two.a.leading.Load())
	}

	// Records stored by the follower's ingest reach screens through the
	// leader.
	insertTo(t, s, follower.a, row{"e1", "d1", "26740", "online", "received", now.Add(-time.Minute), now.Add(72 * time.Hour)})
	waitUntil(t, "the forwarded unit to be published", func() bool {
		_, snap := latest(t, b, "kpi/26740")
		return received(snap) == 1
	})
	tokens := b.byToken()
	if len(tokens) != 1 {
		t.Fatalf("versioned messages from %d lease tokens, want 1 (the holder's): %v", len(tokens), tokens)
	}
}

func TestLosingTheLeaseStopsPublishingAndTheNextHolderContinues(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	s := testenv.Store(t)
	b := &recordingBus{Memory: bus.NewMemory()}
	ttl := 300 * time.Millisecond
	firstLeases := &stallingLeases{Leases: redisLeases(t, ttl)}
	first := startLive(t, s, b, firstLeases, now)
	waitUntil(t, "the first node to publish every topic", func() bool {
		m, _ := latest(t, b, "kpi/79/30d")
		return m.Version != ""
	})
	m, _ := latest(t, b, "kpi/79")
	firstToken := m.Version[:16]
	second := startLive(t, s, b, redisLeases(t, ttl), now)
	route(t, b, first, second)

	// The lease lapses behind the first node's back, as when its renewals
	// stall, and its connection stays stalled, so the second node takes
	// the lease. (Without the stall, the first node could win it back: it
	// campaigns again the moment it learns of the loss.)
	firstLeases.stalled.Store(true)
	probe := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer probe.Close()
	if err := probe.Del(context.Background(), "ioc:lease:"+first.a.cfg.Lease).Err(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the first node to stop leading", func() bool { return !first.a.leading.Load() })
	stale := b.byToken()[firstToken]
	waitUntil(t, "the second node to republish every topic", func() bool {
		m, _ := latest(t, b, "kpi/79/30d")
		return second.a.leading.Load() && m.Version[:16] != firstToken
	})

	// New records stored on either node are now published by the second
	// node alone.
	insertTo(t, s, first.a, row{"e1", "d1", "26740", "online", "received", now.Add(-time.Minute), now.Add(72 * time.Hour)})
	insertTo(t, s, second.a, row{"e2", "d2", "26743", "online", "received", now.Add(-time.Minute), now.Add(72 * time.Hour)})
	waitUntil(t, "the new record to be published", func() bool {
		_, snap := latest(t, b, "kpi/26740")
		return received(snap) == 1
	})
	if got := b.byToken()[firstToken]; got != stale {
		t.Errorf("the first node attempted %d publications after it lost the lease, want none", got-stale)
	}
	m, _ = latest(t, b, "kpi/26740")
	secondToken := m.Version[:16]
	if secondToken <= firstToken {
		t.Fatalf("second holder's token %s, want above the first's %s", secondToken, firstToken)
	}
	// The takeover republished every topic, so screens and the latest
	// values hold only the second node's figures.
	all := first.a.allCodes()
	var topics []string
	for _, c := range all {
		for _, w := range Windows {
			topics = append(topics, w.Topic(c))
			if len(first.a.h.ChildCodes(c)) > 0 {
				topics = append(topics, w.MapTopic(c))
			}
		}
	}
	republished := b.topicsOf(secondToken)
	kept, err := b.Latest(context.Background(), topics)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		if !republished[topic] {
			t.Errorf("%s not republished by the second holder", topic)
		}
		if v := kept[topic].Version; v[:16] != secondToken {
			t.Errorf("%s: latest version %s, want one of the second holder (%s)", topic, v, secondToken)
		}
		if t.Failed() {
			break
		}
	}
}
