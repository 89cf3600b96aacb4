package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

// sentLog is a publisher that keeps every message whole (Base and Delta
// too), passing them on to next if set, and can fail batches: a batch
// that failed, here or in next, is kept too, marked failed, as its
// messages may have gone out.
type sentLog struct {
	next Publisher
	mu   sync.Mutex
	msgs []sent
	fail int // batches still to fail
}

type sent struct {
	bus.Message
	failed bool
}

func (l *sentLog) Publish(ctx context.Context, msgs ...bus.Message) error {
	l.mu.Lock()
	failing := l.fail > 0
	if failing {
		l.fail--
	}
	l.mu.Unlock()
	var err error
	if failing {
		err = errors.New("publish: connection reset by peer")
	} else if l.next != nil {
		err = l.next.Publish(ctx, msgs...)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range msgs {
		l.msgs = append(l.msgs, sent{m, err != nil})
	}
	return err
}

func (l *sentLog) failNext() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail++
}

// of lists what was published on topic, failed or not, in order.
func (l *sentLog) of(topic string) []sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sent
	for _, m := range l.msgs {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// lastOf is the last message published on topic; it fails t if there is
// none.
func (l *sentLog) lastOf(t *testing.T, topic string) sent {
	t.Helper()
	ms := l.of(topic)
	if len(ms) == 0 {
		t.Fatalf("nothing published on %s", topic)
	}
	return ms[len(ms)-1]
}

func newLoggedAggregator(t *testing.T, now time.Time) (*Aggregator, *chstore.Store, *sentLog) {
	t.Helper()
	s := testenv.Store(t)
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	log := &sentLog{}
	a, err := New(Config{Location: hcm}, s, reg, log, lease.NewLocal(), nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return now }
	return a, s, log
}

// whole fails t unless m is a message to take whole: no base, no delta.
func whole(t *testing.T, what string, m sent) {
	t.Helper()
	if m.Base != "" || m.Delta != nil {
		t.Errorf("%s %s: base %q and a delta of %d bytes, want a whole message only", what, m.Topic, m.Base, len(m.Delta))
	}
}

// deltaOf fails t unless m is a delta against prev holding exactly the
// children changed, and prev's payload with the delta applied is m's.
func deltaOf(t *testing.T, prev, m sent, changed ...string) {
	t.Helper()
	if m.Base != prev.Version || m.Base == "" {
		t.Errorf("%s %s: base %q, want the previous message's version %q", m.Topic, m.Version, m.Base, prev.Version)
	}
	var d struct {
		Children map[string]json.RawMessage `json:"children"`
	}
	if err := json.Unmarshal(m.Delta, &d); err != nil {
		t.Fatalf("%s delta %q: %v", m.Topic, m.Delta, err)
	}
	if got := slices.Sorted(maps.Keys(d.Children)); !slices.Equal(got, slices.Sorted(slices.Values(changed))) {
		t.Errorf("%s: delta's children %v, want only the changed %v", m.Topic, got, changed)
	}
	applied, err := ApplyMapDelta(prev.Payload, m.Delta)
	if err != nil {
		t.Fatalf("%s: %v", m.Topic, err)
	}
	sameJSON(t, m.Topic+": the previous snapshot with the delta applied", applied, m.Payload)
}

// The province's map, after its first message of the term, carries deltas
// holding only the communes whose figures changed, against the message
// before; applied to that message's snapshot, a delta gives the new one.
// as_of moving alone publishes nothing, and the next delta carries it.
func TestMapMessagesCarryDeltasOfChangedChildren(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	a, s, log := newLoggedAggregator(t, now)
	term := lead(t, a)
	if err := a.refresh(ctx, term, "check"); err != nil {
		t.Fatal(err)
	}
	mapTopics := []string{"map/79", "map/79/24h", "map/79/7d", "map/79/30d"}
	prev := map[string]sent{}
	for _, topic := range mapTopics {
		prev[topic] = log.lastOf(t, topic)
		whole(t, "the term's first", prev[topic])
	}
	step := func(name string, changed []string, rows ...row) {
		t.Helper()
		insertTo(t, s, a, rows...)
		if err := a.publishDirty(ctx, term); err != nil {
			t.Fatal(err)
		}
		for _, topic := range mapTopics {
			m := log.lastOf(t, topic)
			if m.Version == prev[topic].Version {
				t.Fatalf("%s: %s not published again", name, topic)
			}
			deltaOf(t, prev[topic], m, changed...)
			prev[topic] = m
		}
	}

	step("one commune", []string{"26740"}, arrival(now.Add(-time.Hour), "e1", "26740"))
	m := log.lastOf(t, "map/79")
	t.Logf("map/79 after one commune changed: delta %d bytes, snapshot %d", len(m.Delta), len(m.Payload))
	if len(m.Delta)*10 > len(m.Payload) {
		t.Errorf("the delta of one commune of 168 is %d bytes, the snapshot %d: want at most a tenth", len(m.Delta), len(m.Payload))
	}

	step("several communes", []string{"26743", "26758", "26740"},
		arrival(now.Add(-time.Hour), "e2", "26743"), arrival(now.Add(-time.Hour), "e3", "26758"),
		arrival(now.Add(-time.Hour), "e4", "26740"))

	// Time passes: as_of alone is not news.
	later := now.Add(2 * time.Minute)
	a.now = func() time.Time { return later }
	a.MarkDirty("vn-2025", []string{"26740"})
	if err := a.publishDirty(ctx, term); err != nil {
		t.Fatal(err)
	}
	if m := log.lastOf(t, "map/79"); m.Version != prev["map/79"].Version {
		t.Fatalf("map/79 published again although only as_of moved")
	}
	// The next change goes against the last message, and moves as_of.
	step("a commune, later", []string{"26740"}, arrival(now.Add(-time.Hour), "e5", "26740"))
	var d struct {
		AsOf time.Time `json:"as_of"`
	}
	if err := json.Unmarshal(log.lastOf(t, "map/79").Delta, &d); err != nil || !d.AsOf.Equal(later.Truncate(time.Second)) {
		t.Errorf("delta's as_of %v (%v), want %v", d.AsOf, err, later)
	}

	// kpi/ topics carry no deltas.
	for _, topic := range []string{"kpi/79", "kpi/26740"} {
		for _, m := range log.of(topic) {
			whole(t, "every", m)
		}
	}
}

// After a publication failed, screens may hold the previous message of a
// map or the one that failed: the next message goes out whole, and the
// one after it is a delta against it.
func TestAFailedPublicationIsFollowedByAWholeMap(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	a, s, log := newLoggedAggregator(t, now)
	term := lead(t, a)
	if err := a.refresh(ctx, term, "check"); err != nil {
		t.Fatal(err)
	}
	first := log.lastOf(t, "map/79")

	log.failNext()
	insertTo(t, s, a, arrival(now.Add(-time.Hour), "e1", "26740"))
	if err := a.publishDirty(ctx, term); err == nil {
		t.Fatal("publishing through a failing bus: no error")
	}
	failed := log.lastOf(t, "map/79")
	if !failed.failed {
		t.Fatal("map/79 not in the failed batch")
	}
	deltaOf(t, first, failed, "26740") // made before it failed

	insertTo(t, s, a, arrival(now.Add(-time.Hour), "e2", "26743"))
	if err := a.publishDirty(ctx, term); err != nil {
		t.Fatal(err)
	}
	next := log.lastOf(t, "map/79")
	if next.failed || next.Version == failed.Version {
		t.Fatal("map/79 not published after the failure")
	}
	whole(t, "the first after a failed publication", next)

	insertTo(t, s, a, arrival(now.Add(-time.Hour), "e3", "26758"))
	if err := a.publishDirty(ctx, term); err != nil {
		t.Fatal(err)
	}
	deltaOf(t, next, log.lastOf(t, "map/79"), "26758")
}

// A node that loses the lease and takes it again starts a new term: its
// first message of each map is whole, even though its figures are
// remembered from the term before, and deltas then go against the new
// term's messages. On a loaded machine the short lease may also lapse on
// its own: every term, however many, is held to the same rule.
func TestANewTermStartsWithWholeMaps(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	s := testenv.Store(t)
	log := &sentLog{next: bus.NewMemory()}
	n := startLive(t, s, log, redisLeases(t, 300*time.Millisecond), now)
	// lastDelta is the token of the last map/79 delta published, if any.
	lastDelta := func() string {
		ms := log.of("map/79")
		for i := len(ms) - 1; i >= 0; i-- {
			if ms[i].Base != "" {
				return ms[i].Version[:16]
			}
		}
		return ""
	}
	waitUntil(t, "the first term to publish map/79", func() bool { return len(log.of("map/79")) > 0 })
	insertTo(t, s, n.a, arrival(now.Add(-time.Hour), "e1", "26740"))
	waitUntil(t, "the record to be published as a delta", func() bool { return lastDelta() != "" })
	before := lastDelta()

	// The lease lapses behind the node's back; it takes it again.
	probe := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer probe.Close()
	if err := probe.Del(context.Background(), "ioc:lease:"+n.a.cfg.Lease).Err(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the node to republish in a new term", func() bool {
		ms := log.of("map/79")
		return ms[len(ms)-1].Version[:16] > before
	})
	insertTo(t, s, n.a, arrival(now.Add(-time.Hour), "e2", "26743"))
	waitUntil(t, "the record to be published as a delta in the new term", func() bool { return lastDelta() > before })
	n.stop()

	terms := map[string][]sent{}
	var order []string
	for _, m := range log.of("map/79") {
		tok := m.Version[:16]
		if _, ok := terms[tok]; !ok {
			order = append(order, tok)
		}
		terms[tok] = append(terms[tok], m)
	}
	if len(order) < 2 {
		t.Fatalf("map/79 published in %d terms, want at least 2", len(order))
	}
	for _, tok := range order {
		ms := terms[tok]
		whole(t, "a term's first", ms[0])
		for i := 1; i < len(ms); i++ {
			if ms[i-1].failed {
				whole(t, "the first after a failed publication", ms[i])
				continue
			}
			deltaOf(t, ms[i-1], ms[i], changedChildren(t, ms[i-1].Payload, ms[i].Payload)...)
		}
	}
}

// changedChildren lists the children whose entries differ between two map
// snapshots.
func changedChildren(t *testing.T, before, after []byte) []string {
	t.Helper()
	var x, y struct {
		Children map[string]json.RawMessage `json:"children"`
	}
	if err := json.Unmarshal(before, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(after, &y); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k, v := range y.Children {
		if !sameValue(x.Children[k], v) {
			out = append(out, k)
		}
	}
	return out
}

// Deltas go only against messages of the term that sends them: the next
// holder cannot know which of the previous holder's messages screens hold.
func TestDeltasGoOnlyAgainstMessagesOfTheirTerm(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	a, s, log := newLoggedAggregator(t, now)
	if err := a.refresh(ctx, lead(t, a), "check"); err != nil {
		t.Fatal(err)
	}
	// Another term, on figures remembered from the first (as if its
	// takeover had not read them again).
	term := lead(t, a)
	insertTo(t, s, a, arrival(now.Add(-time.Hour), "e1", "26740"))
	if err := a.publishDirty(ctx, term); err != nil {
		t.Fatal(err)
	}
	first := log.lastOf(t, "map/79")
	whole(t, "the second term's first", first)
	insertTo(t, s, a, arrival(now.Add(-time.Hour), "e2", "26740"))
	if err := a.publishDirty(ctx, term); err != nil {
		t.Fatal(err)
	}
	deltaOf(t, first, log.lastOf(t, "map/79"), "26740")
}
