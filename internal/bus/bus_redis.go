package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

const (
	defaultPrefix = "ioc:"
	// confirmTimeout bounds Subscribe when Redis accepts the connection but
	// does not answer; the caller's ctx is the subscription's lifetime and
	// usually has no deadline.
	confirmTimeout = 10 * time.Second
	// healthInterval is how long a quiet subscription waits before it pings,
	// so that a dead connection is noticed and go-redis redials it.
	healthInterval = 15 * time.Second
	pingTimeout    = 5 * time.Second
	minRetry       = 100 * time.Millisecond
	maxRetry       = 5 * time.Second
)

// RedisConfig configures a Redis bus.
type RedisConfig struct {
	Prefix string // channel prefix; zero value means "ioc:"
}

// Redis is a bus over Redis pub/sub, so that several iocd nodes see each
// other's messages. Each subscription holds one Redis connection.
type Redis struct {
	client  *redis.Client
	prefix  string
	pattern string
	logger  *slog.Logger
	metrics *metrics
}

type metrics struct {
	published       prometheus.Counter
	received        prometheus.Counter
	publishErrors   prometheus.Counter
	publishDuration prometheus.Histogram
}

// NewRedis returns a bus on client, which stays owned by the caller. Metrics
// are registered on reg unless it is nil; buses sharing reg share them.
func NewRedis(client *redis.Client, cfg RedisConfig, logger *slog.Logger, reg prometheus.Registerer) (*Redis, error) {
	if client == nil {
		return nil, errors.New("new redis bus: nil client")
	}
	if logger == nil {
		logger = slog.Default()
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = defaultPrefix
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("new redis bus: %w", err)
	}
	return &Redis{
		client:  client,
		prefix:  prefix,
		pattern: escapeGlob(prefix) + "*",
		logger:  logger,
		metrics: m,
	}, nil
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_bus_messages_published_total",
			Help: "Messages published to the Redis bus.",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_bus_messages_received_total",
			Help: "Messages received from the Redis bus, counted once per subscription.",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_bus_publish_errors_total",
			Help: "Publishes to the Redis bus that failed.",
		}),
		publishDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ioc_bus_publish_duration_seconds",
			Help:    "Time taken by a publish to the Redis bus, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.published, err = register(reg, m.published)
	if err == nil {
		m.received, err = register(reg, m.received)
	}
	if err == nil {
		m.publishErrors, err = register(reg, m.publishErrors)
	}
	if err == nil {
		m.publishDuration, err = register(reg, m.publishDuration)
	}
	return m, err
}

// register returns the collector already registered under c's name, if any,
// so that several buses of one process can share a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("register metrics: %w", err)
	}
	return c, nil
}

// Publish sends the message to every subscriber of every node.
func (b *Redis) Publish(ctx context.Context, topic string, payload []byte) error {
	start := time.Now()
	err := b.client.Publish(ctx, b.prefix+topic, payload).Err()
	b.metrics.publishDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		b.metrics.publishErrors.Inc()
		return fmt.Errorf("publish %s to redis: %w", topic, err)
	}
	b.metrics.published.Inc()
	return nil
}

// Subscribe registers h for every message published on the bus from now on,
// until the subscription is closed or ctx is cancelled. It returns once Redis
// has confirmed the subscription.
func (b *Redis) Subscribe(ctx context.Context, h Handler) (*Subscription, error) {
	if h == nil {
		return nil, errors.New("subscribe: nil handler")
	}
	ps := b.client.PSubscribe(ctx, b.pattern)
	confirmCtx, cancel := context.WithTimeout(ctx, confirmTimeout)
	reply, err := ps.Receive(confirmCtx)
	cancel()
	if err == nil {
		if s, ok := reply.(*redis.Subscription); !ok || s.Kind != "psubscribe" {
			err = fmt.Errorf("unexpected reply %v", reply)
		}
	}
	if err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("subscribe to redis %s: %w", b.pattern, err)
	}

	stop := make(chan struct{})
	done := make(chan struct{})
	go b.deliver(ps, h, stop, done)
	halt := sync.OnceFunc(func() {
		close(stop)
		// Unblocks the receive in deliver; the error is only about closing
		// a socket that nobody uses any more.
		_ = ps.Close()
	})
	unregister := context.AfterFunc(ctx, halt)
	return newSubscription(func() error {
		unregister()
		halt()
		<-done
		return nil
	}), nil
}

// deliver hands messages to h until stop is closed. go-redis redials and
// resubscribes after a failed receive; deliver only paces the attempts.
func (b *Redis) deliver(ps *redis.PubSub, h Handler, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	retry := minRetry
	for {
		msg, err := ps.ReceiveTimeout(context.Background(), healthInterval)
		if err != nil {
			select {
			case <-stop:
				return
			default:
			}
			if isTimeout(err) {
				ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
				err = ps.Ping(ctx)
				cancel()
				if err == nil {
					continue
				}
			}
			b.logger.Warn("redis bus subscription failed, reconnecting",
				"pattern", b.pattern, "retry_in", retry, "err", err)
			select {
			case <-stop:
				return
			case <-time.After(retry):
			}
			retry = min(2*retry, maxRetry)
			continue
		}
		retry = minRetry
		switch m := msg.(type) {
		case *redis.Message:
			b.metrics.received.Inc()
			h(Message{Topic: strings.TrimPrefix(m.Channel, b.prefix), Payload: []byte(m.Payload)})
		case *redis.Subscription:
			// Subscribe consumed the first confirmation, so this one follows
			// a redial; messages published meanwhile are lost.
			b.logger.Warn("redis bus subscription restored", "pattern", b.pattern)
		case *redis.Pong:
		default:
			b.logger.Warn("redis bus: unexpected pubsub reply", "pattern", b.pattern, "reply", fmt.Sprint(msg))
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// escapeGlob makes a prefix match itself only in a PSUBSCRIBE pattern.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
