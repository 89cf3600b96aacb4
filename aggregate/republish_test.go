package aggregate

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/testenv"
	"github.com/openioc/ioc/topic"
)

// gatedBus holds the first versioned publication until released, so that
// a test acts in the middle of a takeover.
type gatedBus struct {
	*recordingBus
	once    sync.Once
	held    chan struct{} // closed once the first versioned publication waits
	release chan struct{}
}

func (b *gatedBus) Publish(ctx context.Context, msgs ...bus.Message) error {
	if len(msgs) > 0 && msgs[0].Version != "" {
		b.once.Do(func() {
			close(b.held)
			<-b.release
		})
	}
	return b.recordingBus.Publish(ctx, msgs...)
}

// versioned lists the topics of the versioned attempts, in order.
func (b *recordingBus) versioned() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, a := range b.attempts {
		if a.version != "" {
			out = append(out, a.topic)
		}
	}
	return out
}

func (a *Aggregator) askedTopics() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for name := range a.asked {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// TestTakeoverSendsTheTopicsAskedForFirst: a takeover publishes every
// topic, level by level from the top; a topic a node's hub asks for again
// in the middle of it (its screens hold it, the bus lost it) goes out with
// the next chunk instead of in its turn.
func TestTakeoverSendsTheTopicsAskedForFirst(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	s := testenv.Store(t)
	b := &gatedBus{recordingBus: &recordingBus{Memory: bus.NewMemory()}, held: make(chan struct{}), release: make(chan struct{})}
	n := startLive(t, s, b, redisLeases(t, 5*time.Second), now)
	route(t, b.recordingBus, n)
	select {
	case <-b.held:
	case <-time.After(60 * time.Second):
		t.Fatal("the takeover published nothing within 60s")
	}

	const asked = "kpi/26740/30d" // a commune of Ho Chi Minh City, far down the order
	codes := n.a.allCodes()
	pos := slices.Index(codes, "26740")
	if pos*len(Windows) < 2*sendChunk {
		t.Fatalf("commune 26740 is unit %d of %d in the takeover's order: too early to show that asking moves it", pos, len(codes))
	}
	if err := n.a.Republish(t.Context(), []string{asked, "alarms/79", "kpi/nowhere", "map/26740"}); err != nil {
		t.Fatal(err)
	}
	// Only figure topics of the hierarchy's units are asked for: alarms
	// are another part's, a commune has no map.
	waitUntil(t, "the request to reach the lease holder", func() bool { return len(n.a.askedTopics()) > 0 })
	if got := n.a.askedTopics(); !slices.Equal(got, []string{asked}) {
		t.Fatalf("asked for %v, want [%s]", got, asked)
	}
	close(b.release)
	waitUntil(t, "the takeover to publish every topic", func() bool {
		m, _ := latest(t, b.recordingBus, TermTopic)
		return m.Version != ""
	})

	sent := b.versioned()
	at := slices.Index(sent, asked)
	if at < 0 || at >= sendChunk+len(Windows) {
		t.Errorf("%s was message %d of the takeover, want it among the first of the second chunk (%d to %d)", asked, at, sendChunk, sendChunk+len(Windows)-1)
	}
	// Higher levels first: every province's topics before any commune's.
	lastProvince, firstCommune := 0, len(sent)
	for i, name := range sent {
		u, ok := n.a.h.Unit(topicArea(name))
		if !ok || name == asked {
			continue
		}
		if u.Parent == "" {
			lastProvince = i
		} else {
			firstCommune = min(firstCommune, i)
		}
	}
	if lastProvince > firstCommune {
		t.Errorf("a province's topic was message %d, after a commune's (%d): higher levels go first", lastProvince, firstCommune)
	}
}

// TestATopicAskedForAgainIsSentAgain: after its takeover, the holder has
// sent every topic; asked for one again (the bus lost it without the lease
// changing hands), it sends that one again, with a newer version, and
// nothing else.
func TestATopicAskedForAgainIsSentAgain(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	s := testenv.Store(t)
	b := &recordingBus{Memory: bus.NewMemory()}
	n := startLive(t, s, b, redisLeases(t, 5*time.Second), now)
	route(t, b, n)
	waitUntil(t, "the takeover to publish every topic", func() bool {
		m, _ := latest(t, b, TermTopic)
		return m.Version != ""
	})
	before := len(b.versioned())
	old, _ := latest(t, b, "map/79/7d")
	if err := n.a.Republish(t.Context(), []string{"map/79/7d", "kpi/26740"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "both topics to be sent again", func() bool {
		again := b.versioned()[before:]
		return slices.Contains(again, "map/79/7d") && slices.Contains(again, "kpi/26740")
	})
	if m, _ := latest(t, b, "map/79/7d"); m.Version <= old.Version {
		t.Errorf("map/79/7d sent again with version %s, want newer than %s", m.Version, old.Version)
	}
	if again := b.versioned()[before:]; len(again) != 2 {
		t.Errorf("sent %v after the request, want only the two topics asked for", again)
	}
}

// topicArea is the area a kpi/ or map/ topic names.
func topicArea(name string) string {
	t, _ := topic.ParseLive(name)
	return t.Area
}
