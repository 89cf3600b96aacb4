package bus

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/internal/testenv"
)

func TestRedisNodesSeeEachOther(t *testing.T) {
	t.Parallel()
	addr := testenv.RedisAddr(t)
	prefix := testPrefix(t)
	nodeA := newRedisBus(t, newClient(t, addr), prefix)
	nodeB := newRedisBus(t, newClient(t, addr), prefix)
	onA, onB := newRecorder(), newRecorder()
	subscribe(t, nodeA, onA.handle)
	subscribe(t, nodeB, onB.handle)

	fromA := Message{Topic: "kpi/79", Payload: []byte("from a")}
	fromB := Message{Topic: "kpi/26740/24h", Payload: []byte("from b")}
	publish(t, nodeA, fromA.Topic, fromA.Payload)
	publish(t, nodeB, fromB.Topic, fromB.Payload)
	expect(t, onA, fromA, fromB)
	expect(t, onB, fromA, fromB)
}

func TestRedisPrefixes(t *testing.T) {
	t.Parallel()
	client := newClient(t, testenv.RedisAddr(t))
	tests := []struct {
		name      string
		subPrefix string
		pubPrefix string
		delivered bool
	}{
		{"same", "n:", "n:", true},
		{"different", "n:", "m:", false},
		{"same with glob characters", `n*?[x]\:`, `n*?[x]\:`, true},
		{"star is literal", "n*:", "nn:", false},
		{"question mark is literal", "n?:", "nn:", false},
		{"class is literal", "n[nm]:", "nn:", false},
		{"backslash is literal", `n\:`, "n:", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := testPrefix(t)
			sub := newRedisBus(t, client, base+tt.subPrefix)
			pub := newRedisBus(t, client, base+tt.pubPrefix)
			r := newRecorder()
			subscribe(t, sub, r.handle)

			// Redis handles the publishes in order, so a leaked message
			// would arrive before the marker.
			publish(t, pub, "alarms/79", []byte("other bus"))
			publish(t, sub, "map/79", []byte("marker"))
			var want []Message
			if tt.delivered {
				want = append(want, Message{Topic: "alarms/79", Payload: []byte("other bus")})
			}
			want = append(want, Message{Topic: "map/79", Payload: []byte("marker")})
			expect(t, r, want...)
		})
	}
}

func TestRedisDefaultPrefix(t *testing.T) {
	t.Parallel()
	client := newClient(t, testenv.RedisAddr(t))
	b, err := NewRedis(client, RedisConfig{}, nil, nil)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	topic := strings.TrimSuffix(testPrefix(t), ":")

	raw := client.Subscribe(context.Background(), "ioc:"+topic)
	defer raw.Close()
	if _, err := raw.Receive(context.Background()); err != nil {
		t.Fatalf("subscribe raw client: %v", err)
	}
	publish(t, b, topic, []byte("hello"))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	got, err := raw.ReceiveMessage(ctx)
	if err != nil {
		t.Fatalf("receive on raw client: %v", err)
	}
	// On the wire: the version (none on a stream topic), a space, the payload.
	if got.Channel != "ioc:"+topic || got.Payload != " hello" {
		t.Fatalf("got %s %q, want %s %q", got.Channel, got.Payload, "ioc:"+topic, " hello")
	}
}

func TestRedisFailsWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	reg := prometheus.NewRegistry()
	b, err := NewRedis(newClient(t, srv.Addr), RedisConfig{Prefix: testPrefix(t)}, nil, reg)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	r := newRecorder()
	subscribe(t, b, r.handle)
	publish(t, b, "kpi/79", []byte("up"))
	expect(t, r, Message{Topic: "kpi/79", Payload: []byte("up")})

	if err := srv.Stop(); err != nil {
		t.Fatalf("stop redis: %v", err)
	}
	err = b.Publish(context.Background(), Message{Topic: "kpi/79", Payload: []byte("down")})
	if err == nil {
		t.Fatalf("Publish with Redis down: got nil error, want one")
	}
	if want := "publish kpi/79 to redis: "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got error %q, want prefix %q", err, want)
	}

	if _, err := b.Subscribe(context.Background(), r.handle, nil); err == nil {
		t.Fatalf("Subscribe with Redis down: got nil error, want one")
	} else if want := "subscribe to redis "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got error %q, want prefix %q", err, want)
	}

	for _, m := range []struct {
		name string
		want float64
	}{
		{"ioc_bus_messages_published_total", 1},
		{"ioc_bus_messages_received_total", 1},
		{"ioc_bus_publish_errors_total", 1},
		{"ioc_bus_publish_duration_seconds", 2},
	} {
		if got := metricValue(t, reg, m.name); got != m.want {
			t.Errorf("%s: got %v, want %v", m.name, got, m.want)
		}
	}
}

func TestRedisBusesShareRegistry(t *testing.T) {
	t.Parallel()
	client := newClient(t, testenv.RedisAddr(t))
	reg := prometheus.NewRegistry()
	prefix := testPrefix(t)
	var buses []*Redis
	for range 2 {
		b, err := NewRedis(client, RedisConfig{Prefix: prefix}, nil, reg)
		if err != nil {
			t.Fatalf("NewRedis: %v", err)
		}
		buses = append(buses, b)
	}
	for _, b := range buses {
		publish(t, b, "kpi/79", nil)
	}
	if got := metricValue(t, reg, "ioc_bus_messages_published_total"); got != 2 {
		t.Fatalf("ioc_bus_messages_published_total: got %v, want 2", got)
	}
}

func TestRedisSubscriptionSurvivesRestartAndReportsTheGap(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg := prometheus.NewRegistry()
	b, err := NewRedis(newClient(t, srv.Addr), RedisConfig{Prefix: testPrefix(t)}, logger, reg)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	r := newRecorder()
	gaps := make(chan struct{}, 10)
	s, err := b.Subscribe(context.Background(), r.handle, func() { gaps <- struct{}{} })
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	before := Message{Topic: "kpi/79", Version: Version(1, 1), Payload: []byte("before")}
	if err := b.Publish(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	expect(t, r, before)
	select {
	case <-gaps:
		t.Fatal("gap reported before any failure")
	default:
	}

	// Redis comes back empty, as it does without persistence.
	srv.Kill()
	srv = testenv.RestartRedis(t, srv)
	up := time.Now()
	select {
	case <-gaps:
	case <-time.After(waitTimeout):
		t.Fatalf("no gap reported %v after Redis came back", waitTimeout)
	}
	// The back-off must not keep screens waiting long once Redis answers.
	if d := time.Since(up); d > 3*time.Second {
		t.Errorf("gap reported %v after Redis came back, want within 3s", d)
	}
	if got := metricValue(t, reg, "ioc_bus_subscription_gaps_total"); got != 1 {
		t.Errorf("ioc_bus_subscription_gaps_total: got %v, want 1", got)
	}
	if !strings.Contains(logs.String(), "redis bus subscription restored") {
		t.Errorf("got logs %q, want the restore logged", logs.String())
	}

	// The store is empty, so an older version than before goes through;
	// a batch reloads the script Redis forgot.
	latest, err := b.Latest(context.Background(), []string{"kpi/79"})
	if err != nil || len(latest) != 0 {
		t.Fatalf("Latest after a restart of Redis: got %v, %v, want nothing", latest, err)
	}
	after := []Message{
		{Topic: "kpi/79", Version: Version(2, 1), Payload: []byte("after")},
		{Topic: "map/79", Version: Version(2, 2), Payload: []byte("map")},
	}
	if err := b.Publish(context.Background(), after...); err != nil {
		t.Fatalf("Publish after the restart: %v", err)
	}
	expect(t, r, after...)
}

func TestNewRedisRejectsNilClient(t *testing.T) {
	if _, err := NewRedis(nil, RedisConfig{}, nil, nil); err == nil {
		t.Fatalf("NewRedis(nil): got nil error, want one")
	}
}

// metricValue returns a counter's value or a histogram's sample count.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		if h := m.GetHistogram(); h != nil {
			return float64(h.GetSampleCount())
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
