package bus

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const waitTimeout = 10 * time.Second

type bus interface {
	Publish(ctx context.Context, msgs ...Message) error
	Subscribe(ctx context.Context, h Handler, gap func()) (*Subscription, error)
	Latest(ctx context.Context, topics []string) (map[string]Message, error)
	History(ctx context.Context, topic, epoch string, after uint64) (History, error)
}

// fixture is a bus under test and a way to count its active subscriptions.
type fixture struct {
	bus         bus
	subscribers func() int
}

var kinds = []struct {
	name string
	new  func(t *testing.T) fixture
}{
	{"memory", func(t *testing.T) fixture {
		b := NewMemory()
		return fixture{bus: b, subscribers: func() int { return len(*b.subs.Load()) }}
	}},
	{"redis", func(t *testing.T) fixture {
		client := newClient(t, testenv.RedisAddr(t))
		prefix := testPrefix(t)
		b := newRedisBus(t, client, prefix)
		// PUBLISH answers how many subscriptions got the message.
		return fixture{bus: b, subscribers: func() int {
			n, err := client.Publish(context.Background(), prefix+"probe", "").Result()
			if err != nil {
				t.Fatalf("probe subscribers: %v", err)
			}
			return int(n)
		}}
	}},
}

func forEachKind(t *testing.T, f func(t *testing.T, fx fixture)) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			f(t, k.new(t))
		})
	}
}

func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

func newRedisBus(t *testing.T, c *redis.Client, prefix string) *Redis {
	t.Helper()
	b, err := NewRedis(c, RedisConfig{Prefix: prefix}, nil, nil)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	return b
}

// testPrefix isolates a test from the others on the shared Redis.
func testPrefix(t *testing.T) string {
	return fmt.Sprintf("test:%s:%s:", t.Name(), crand.Text()[:8])
}

// recorder collects the messages a handler gets, without blocking.
type recorder struct {
	ch       chan Message
	calls    atomic.Int64
	overflow atomic.Int64 // messages that did not fit in ch
	closed   atomic.Bool  // set once Close returned
	late     atomic.Int64
}

func newRecorder() *recorder { return &recorder{ch: make(chan Message, 1000)} }

func (r *recorder) handle(m Message) {
	if r.closed.Load() {
		r.late.Add(1)
		return
	}
	r.calls.Add(1)
	select {
	case r.ch <- m:
	default:
		r.overflow.Add(1)
	}
}

func subscribe(t *testing.T, b bus, h Handler) *Subscription {
	t.Helper()
	s, err := b.Subscribe(context.Background(), h, nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// publish publishes an unversioned message, as on a stream topic.
func publish(t *testing.T, b bus, topic string, payload []byte) {
	t.Helper()
	if err := b.Publish(context.Background(), Message{Topic: topic, Payload: payload}); err != nil {
		t.Fatalf("Publish(%s): %v", topic, err)
	}
}

// expect waits for exactly the messages in want, in order.
func expect(t *testing.T, r *recorder, want ...Message) {
	t.Helper()
	if n := r.overflow.Load(); n > 0 {
		t.Fatalf("recorder dropped %d messages", n)
	}
	for i, w := range want {
		select {
		case got := <-r.ch:
			if got.Topic != w.Topic || got.Version != w.Version || !bytes.Equal(got.Payload, w.Payload) {
				t.Fatalf("message %d: got %s %s %q, want %s %s %q", i, got.Topic, got.Version, got.Payload, w.Topic, w.Version, w.Payload)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("message %d: got nothing after %v, want %s %q", i, waitTimeout, w.Topic, w.Payload)
		}
	}
}

func expectEmpty(t *testing.T, r *recorder) {
	t.Helper()
	select {
	case got := <-r.ch:
		t.Fatalf("got message %s %q, want none", got.Topic, got.Payload)
	default:
	}
	if n := r.late.Load(); n != 0 {
		t.Fatalf("got %d handler calls after Close returned, want 0", n)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still false after %v", what, waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDeliversInOrderToEverySubscriber(t *testing.T) {
	var msgs []Message
	for i := range 200 {
		msgs = append(msgs, Message{Topic: fmt.Sprintf("kpi/%d", i%7), Payload: fmt.Appendf(nil, "v%d", i)})
	}
	msgs = append(msgs,
		Message{Topic: "kpi/26740/24h", Payload: []byte{0, 1, 0xff, '\n'}},
		Message{Topic: "alarms/79", Payload: []byte{}},
	)
	for _, subscribers := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("%d subscribers", subscribers), func(t *testing.T) {
			forEachKind(t, func(t *testing.T, fx fixture) {
				var recs []*recorder
				for range subscribers {
					r := newRecorder()
					subscribe(t, fx.bus, r.handle)
					recs = append(recs, r)
				}
				for _, m := range msgs {
					publish(t, fx.bus, m.Topic, m.Payload)
				}
				for _, r := range recs {
					expect(t, r, msgs...)
				}
			})
		})
	}
}

func TestPublishAfterSubscribeIsDelivered(t *testing.T) {
	forEachKind(t, func(t *testing.T, fx fixture) {
		for i := range 50 {
			r := newRecorder()
			s := subscribe(t, fx.bus, r.handle)
			m := Message{Topic: fmt.Sprintf("map/%d", i), Payload: []byte("x")}
			publish(t, fx.bus, m.Topic, m.Payload)
			expect(t, r, m)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
	})
}

func TestPublisherKeepsPayload(t *testing.T) {
	forEachKind(t, func(t *testing.T, fx fixture) {
		r := newRecorder()
		subscribe(t, fx.bus, r.handle)
		buf := []byte("first")
		publish(t, fx.bus, "kpi/79", buf)
		copy(buf, "XXXXX")
		expect(t, r, Message{Topic: "kpi/79", Payload: []byte("first")})
	})
}

func TestNoDeliveryAfterClose(t *testing.T) {
	forEachKind(t, func(t *testing.T, fx fixture) {
		closing, staying := newRecorder(), newRecorder()
		// The handler lingers so that Close is likely to find it running,
		// and checks on the way out that Close has not returned meanwhile.
		s := subscribe(t, fx.bus, func(m Message) {
			closing.handle(m)
			time.Sleep(time.Millisecond)
			if closing.closed.Load() {
				closing.late.Add(1)
			}
		})
		subscribe(t, fx.bus, staying.handle)

		// A publisher keeps going while Close runs, so that a delivery
		// racing with Close would be caught.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		published := make(chan error, 1)
		go func() {
			for i := 0; ctx.Err() == nil; i++ {
				if err := fx.bus.Publish(ctx, Message{Topic: "kpi/79", Payload: fmt.Appendf(nil, "%d", i)}); err != nil && ctx.Err() == nil {
					published <- err
					return
				}
			}
			published <- nil
		}()
		waitFor(t, "first message", func() bool { return closing.calls.Load() > 0 })

		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		closing.closed.Store(true)
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: got %v, want nil", err)
		}
		n := staying.calls.Load()
		waitFor(t, "deliveries to the other subscriber", func() bool { return staying.calls.Load() > n+50 })
		cancel()
		if err := <-published; err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if n := closing.late.Load(); n != 0 {
			t.Fatalf("got %d handler calls after Close returned, want 0", n)
		}
		if got := fx.subscribers(); got != 1 {
			t.Fatalf("got %d subscribers, want 1", got)
		}
	})
}

func TestCancelledContextEndsSubscription(t *testing.T) {
	forEachKind(t, func(t *testing.T, fx fixture) {
		ctx, cancel := context.WithCancel(context.Background())
		r := newRecorder()
		s, err := fx.bus.Subscribe(ctx, r.handle, nil)
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		publish(t, fx.bus, "kpi/79", []byte("before"))
		expect(t, r, Message{Topic: "kpi/79", Payload: []byte("before")})

		cancel()
		waitFor(t, "subscription gone", func() bool { return fx.subscribers() == 0 })
		closed := make(chan error)
		go func() { closed <- s.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("Close after cancel: still blocked after %v", waitTimeout)
		}
		for len(r.ch) > 0 {
			<-r.ch // probes of fx.subscribers
		}
		r.closed.Store(true)
		publish(t, fx.bus, "kpi/79", []byte("after"))
		expectEmpty(t, r)

		if _, err := fx.bus.Subscribe(ctx, r.handle, nil); err == nil {
			t.Fatalf("Subscribe with a cancelled context: got nil error, want one")
		}
	})
}
