// Package hub runs the websocket side of the live API: connections, their
// topic subscriptions, and the fan-out of bus messages to them.
//
// Latest value wins: a connection holds at most one pending message per
// topic, replaced when a newer one arrives, so a slow screen gets the newest
// snapshot and never a backlog. A client that cannot take a write within
// WriteTimeout is disconnected. Deliver never waits for a client.
//
// Concurrency: a Hub is safe for concurrent use. Each connection has one
// reader (the goroutine in Serve) and one writer goroutine that Serve owns
// and waits for.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/api/auth"
)

// Config tunes a Hub. Zero fields take the defaults.
type Config struct {
	// WriteTimeout disconnects a client that cannot take a message in this
	// long; default 10s.
	WriteTimeout time.Duration
	// PingInterval is how often the server pings; a client silent for two
	// intervals is dropped. Default 30s.
	PingInterval time.Duration
	// MaxSubscriptions per connection; default 2000.
	MaxSubscriptions int
	// MaxMessageBytes bounds a client message; default 4096.
	MaxMessageBytes int64
	// SnapshotTimeout bounds computing a new subscription's snapshot; default 10s.
	SnapshotTimeout time.Duration
	// SnapshotConcurrency bounds the snapshots computed at once per
	// connection; default 4.
	SnapshotConcurrency int
}

func (c Config) withDefaults() Config {
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 2000
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 4096
	}
	if c.SnapshotTimeout <= 0 {
		c.SnapshotTimeout = 10 * time.Second
	}
	if c.SnapshotConcurrency <= 0 {
		c.SnapshotConcurrency = 4
	}
	return c
}

// Topics is what the hub needs to know of topics.
type Topics interface {
	// Resolve checks that p may subscribe to topic and returns its
	// canonical name, or an error that tells the client what is wrong.
	Resolve(p auth.Principal, topic string) (string, error)
	// Current computes the topic's payload now: a JSON object with an
	// "as_of" time.
	Current(ctx context.Context, topic string) ([]byte, error)
}

// Conn is the part of a websocket connection the hub uses.
type Conn interface {
	ReadMessage() (int, []byte, error)
	WriteMessage(messageType int, data []byte) error
	WriteControl(messageType int, data []byte, deadline time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	SetReadLimit(limit int64)
	SetPongHandler(h func(string) error)
	Close() error
}

// ErrClosed is returned by Serve once the hub is shutting down.
var ErrClosed = errors.New("hub is shutting down")

// Hub fans bus messages out to websocket subscribers.
type Hub struct {
	cfg    Config
	topics Topics
	logger *slog.Logger
	m      metrics

	mu     sync.RWMutex
	subs   map[string]map[*conn]struct{} // topic → subscribed connections
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup // one per connection being served
}

type metrics struct {
	clients       prometheus.Gauge
	subscriptions prometheus.Gauge
	sent          *prometheus.CounterVec
	coalesced     prometheus.Counter
	disconnects   *prometheus.CounterVec
}

// New returns a hub.
func New(cfg Config, topics Topics, logger *slog.Logger, reg prometheus.Registerer) *Hub {
	h := &Hub{
		cfg: cfg.withDefaults(), topics: topics, logger: logger,
		subs: map[string]map[*conn]struct{}{}, conns: map[*conn]struct{}{},
		m: metrics{
			clients: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "ioc_ws_clients", Help: "Connected websocket clients."}),
			subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "ioc_ws_subscriptions", Help: "Topic subscriptions over all websocket clients."}),
			sent: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_ws_messages_sent_total", Help: "Messages written to websocket clients, by type."}, []string{"type"}),
			coalesced: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_ws_messages_coalesced_total", Help: "Messages replaced by a newer one before a slow client took them."}),
			disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_ws_disconnects_total", Help: "Websocket connections ended, by reason."}, []string{"reason"}),
		},
	}
	if reg != nil {
		reg.MustRegister(h.m.clients, h.m.subscriptions, h.m.sent, h.m.coalesced, h.m.disconnects)
	}
	return h
}

// Deliver hands a bus message to the topic's subscribers. It never blocks
// on a client.
func (h *Hub) Deliver(topic string, payload []byte) {
	h.mu.RLock()
	subs := h.subs[topic]
	if len(subs) == 0 {
		h.mu.RUnlock()
		return
	}
	targets := make([]*conn, 0, len(subs))
	for c := range subs {
		targets = append(targets, c)
	}
	h.mu.RUnlock()
	v := versionOf(payload)
	for _, c := range targets {
		c.offer(topic, payload, v)
	}
}

// Serve runs one connection for principal p until the client leaves, it
// is dropped, or the hub closes.
func (h *Hub) Serve(ws Conn, p auth.Principal) error {
	c := &conn{
		hub: h, ws: ws, principal: p,
		subs: map[string]*sub{}, pending: map[string][]byte{},
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		sem: make(chan struct{}, h.cfg.SnapshotConcurrency),
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
		return ErrClosed
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()
	h.m.clients.Inc()
	defer h.m.clients.Dec()

	go c.writeLoop()
	reason := c.readLoop()
	c.stop(reason)
	<-c.done
	c.snapshots.Wait()
	h.drop(c)
	h.m.disconnects.WithLabelValues(c.reason).Inc()
	return nil
}

// Close ends every connection with close code 1001 (going away), refuses new
// ones, and waits up to ctx for them to finish.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.stop("shutdown")
	}
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hub) subscribe(c *conn, topic string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[topic] == nil {
		h.subs[topic] = map[*conn]struct{}{}
	}
	h.subs[topic][c] = struct{}{}
	h.m.subscriptions.Inc()
}

func (h *Hub) unsubscribe(c *conn, topic string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[topic][c]; !ok {
		return
	}
	delete(h.subs[topic], c)
	if len(h.subs[topic]) == 0 {
		delete(h.subs, topic)
	}
	h.m.subscriptions.Dec()
}

func (h *Hub) drop(c *conn) {
	c.mu.Lock()
	topics := make([]string, 0, len(c.subs))
	for t := range c.subs {
		topics = append(topics, t)
	}
	c.mu.Unlock()
	for _, t := range topics {
		h.unsubscribe(c, t)
	}
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// version orders and identifies a payload: its as_of, and a hash of the rest,
// so that the same figures published by two nodes reach a screen once.
type version struct {
	asOf time.Time
	hash uint64
}

func versionOf(payload []byte) version {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return version{hash: hashOf(payload)}
	}
	var v version
	if raw, ok := m["as_of"]; ok {
		_ = json.Unmarshal(raw, &v.asOf)
		delete(m, "as_of")
	}
	rest, _ := json.Marshal(m) // keys sorted: equal content hashes equal
	v.hash = hashOf(rest)
	return v
}

func hashOf(b []byte) uint64 {
	f := fnv.New64a()
	_, _ = f.Write(b)
	return f.Sum64()
}

// envelope builds a server message around an already-encoded payload.
func envelope(kind, topic string, seq uint64, data []byte) []byte {
	t, _ := json.Marshal(topic)
	b := make([]byte, 0, len(data)+len(topic)+48)
	b = append(b, `{"type":"`...)
	b = append(b, kind...)
	b = append(b, `","topic":`...)
	b = append(b, t...)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}
