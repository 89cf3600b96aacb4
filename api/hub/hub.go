// Package hub runs the websocket side of the live API: connections, their
// topic subscriptions, and the fan-out of bus messages to them.
//
// Versions: a state topic's messages carry a version from the bus (see
// internal/bus), and a subscription never takes a version that is not newer
// than the one it has, so a screen never sees figures go back to an older
// computation, whatever order the bus delivers them in. The hub keeps the
// newest message of each subscribed topic; a new subscription is served from
// it at once, else from the bus's latest-value store, else from figures
// computed on the spot, which carry the lowest version so that anything
// published replaces them. Stream topics (events/) carry no version: every
// message goes out.
//
// Latest value wins: a connection holds at most one pending message per
// topic, replaced when a newer one arrives, so a slow screen gets the newest
// snapshot and never a backlog. A client that cannot take a write within
// WriteTimeout is disconnected. Deliver never waits for a client.
//
// After a gap in the bus (Resync), every subscription is sent a fresh
// snapshot. A snapshot that cannot be read or computed is retried with
// jittered back-off until it succeeds or the client unsubscribes.
//
// Caps: a token (Principal.Key) holds at most MaxPerToken connections and
// a client address MaxPerAddress on this node; a connection holds at most
// MaxSubscriptions; snapshots are read at most SnapshotConcurrency at a
// time per connection and MaxSnapshotReads at a time over the whole node
// (ioc_ws_snapshot_reads_in_flight), so that no client can turn its
// subscriptions into unbounded work for storage.
//
// Concurrency: a Hub is safe for concurrent use. Each connection has one
// reader (the goroutine in Serve), one writer goroutine, and goroutines
// that read snapshots; Serve owns them all and waits for them. Locks are
// taken in the order Hub.mu, topic.mu, conn.mu.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/bus"
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
	// RetryMin and RetryMax bound the jittered back-off between attempts
	// at a snapshot that failed; defaults 500ms and 15s.
	RetryMin, RetryMax time.Duration
	// MaxPerToken bounds the connections one token holds at once on this
	// node; default 50.
	MaxPerToken int
	// MaxPerAddress bounds the connections from one client address at
	// once on this node; default 200.
	MaxPerAddress int
	// MaxSnapshotReads bounds the reads for snapshots (the bus's store, or
	// figures computed on the spot) in flight on this node over all
	// connections; default 32.
	MaxSnapshotReads int
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
	if c.RetryMin <= 0 {
		c.RetryMin = 500 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(15*time.Second, c.RetryMin)
	}
	if c.MaxPerToken <= 0 {
		c.MaxPerToken = 50
	}
	if c.MaxPerAddress <= 0 {
		c.MaxPerAddress = 200
	}
	if c.MaxSnapshotReads <= 0 {
		c.MaxSnapshotReads = 32
	}
	return c
}

// Topics is what the hub needs to know of topics.
type Topics interface {
	// Resolve checks that p may subscribe to topic and returns its
	// canonical name, or an error that tells the client what is wrong; a
	// *CloseError ends the connection instead.
	Resolve(p auth.Principal, topic string) (string, error)
	// Latest returns the newest published message of each of topics that
	// has one: the bus's latest-value store.
	Latest(ctx context.Context, topics []string) (map[string]bus.Message, error)
	// Current computes the topic's payload now (a JSON object with an
	// "as_of" time), with bus.LowestVersion on a state topic and no
	// version on a stream topic.
	Current(ctx context.Context, topic string) (bus.Message, error)
}

// Admitter is what Topics may also implement: Admit says whether p may
// still hold a connection, once the connection is listed, so that a
// revocation that ran between the handshake's check and the listing (and
// so did not find it to close) is not missed; a *CloseError ends it.
type Admitter interface {
	Admit(p auth.Principal) *CloseError
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

// LimitError is a connection refused because its token or its address
// holds as many connections as allowed.
type LimitError struct {
	Per   string // "token" or "address"
	Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("too many live connections for one %s (limit %d per node)", e.Per, e.Limit)
}

// CloseError ends a connection with a close code and reason: Topics.Resolve
// returns it for a principal that may no longer be served (a revoked token).
type CloseError struct {
	Code   int
	Reason string // at most 123 bytes
}

func (e *CloseError) Error() string { return e.Reason }

// Hub fans bus messages out to websocket subscribers.
type Hub struct {
	cfg    Config
	topics Topics
	logger *slog.Logger
	m      metrics

	mu         sync.RWMutex
	subscribed map[string]*topic
	conns      map[*conn]struct{}
	perToken   map[string]int // connections by Principal.Key
	perAddress map[string]int // connections by client address
	closed     bool
	wg         sync.WaitGroup // one per connection being served

	reads chan struct{} // snapshot reads in flight over the node
}

// topic is a subscribed topic: its subscribers and the newest versioned
// message the hub has for it.
type topic struct {
	mu      sync.Mutex
	subs    map[*conn]struct{}
	version string // "" until a versioned message arrived
	payload []byte
}

type metrics struct {
	clients        prometheus.Gauge
	subscriptions  prometheus.Gauge
	sent           *prometheus.CounterVec
	coalesced      prometheus.Counter
	stale          prometheus.Counter
	disconnects    *prometheus.CounterVec
	snapshotErrors prometheus.Counter
	resyncs        prometheus.Counter
	readsInFlight  prometheus.Gauge
	readWaits      prometheus.Counter
	refused        *prometheus.CounterVec
}

// New returns a hub.
func New(cfg Config, topics Topics, logger *slog.Logger, reg prometheus.Registerer) *Hub {
	h := &Hub{
		cfg: cfg.withDefaults(), topics: topics, logger: logger,
		subscribed: map[string]*topic{}, conns: map[*conn]struct{}{},
		perToken: map[string]int{}, perAddress: map[string]int{},
		m: metrics{
			clients: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "ioc_ws_clients", Help: "Connected websocket clients."}),
			subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "ioc_ws_subscriptions", Help: "Topic subscriptions over all websocket clients."}),
			sent: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_ws_messages_sent_total", Help: "Messages written to websocket clients, by type."}, []string{"type"}),
			coalesced: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_ws_messages_coalesced_total", Help: "Messages replaced by a newer one before a slow client took them."}),
			stale: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_ws_messages_stale_total", Help: "Messages dropped because the topic or subscription already had a version at least as new."}),
			disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_ws_disconnects_total", Help: "Websocket connections ended, by reason."}, []string{"reason"}),
			snapshotErrors: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_ws_snapshot_errors_total", Help: "Attempts at a subscription's snapshot that failed and are retried."}),
			resyncs: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_ws_resyncs_total", Help: "Connections sent fresh snapshots after a gap in the bus."}),
			readsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "ioc_ws_snapshot_reads_in_flight", Help: "Reads for websocket snapshots (the bus's store, figures computed on the spot) in flight on this node; at most the hub's MaxSnapshotReads."}),
			readWaits: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_ws_snapshot_read_waits_total", Help: "Snapshot reads that waited because the node had MaxSnapshotReads in flight."}),
			refused: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_ws_connections_refused_total", Help: "Websocket connections refused, by the limit reached (token, address)."}, []string{"limit"}),
		},
	}
	h.reads = make(chan struct{}, h.cfg.MaxSnapshotReads)
	if reg != nil {
		reg.MustRegister(h.m.clients, h.m.subscriptions, h.m.sent, h.m.coalesced, h.m.stale, h.m.disconnects,
			h.m.snapshotErrors, h.m.resyncs, h.m.readsInFlight, h.m.readWaits, h.m.refused)
	}
	return h
}

// acquireRead waits for a slot among the node's snapshot reads; false
// means quit closed first.
func (h *Hub) acquireRead(quit <-chan struct{}) bool {
	select {
	case h.reads <- struct{}{}:
	default:
		h.m.readWaits.Inc()
		select {
		case h.reads <- struct{}{}:
		case <-quit:
			return false
		}
	}
	h.m.readsInFlight.Inc()
	return true
}

func (h *Hub) releaseRead() {
	h.m.readsInFlight.Dec()
	<-h.reads
}

// Admit says whether a connection of p from addr would be taken now,
// without reserving anything: a cheap refusal before the upgrade.
func (h *Hub) Admit(p auth.Principal, addr string) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.overLimit(p, addr)
}

// overLimit says which cap a new connection would pass; h.mu is held.
func (h *Hub) overLimit(p auth.Principal, addr string) error {
	if p.Key != "" && h.perToken[p.Key] >= h.cfg.MaxPerToken {
		return &LimitError{Per: "token", Limit: h.cfg.MaxPerToken}
	}
	if addr != "" && h.perAddress[addr] >= h.cfg.MaxPerAddress {
		return &LimitError{Per: "address", Limit: h.cfg.MaxPerAddress}
	}
	return nil
}

// CloseWhere ends the connections whose principal match selects, with a
// close code and reason, and returns how many. It never blocks.
func (h *Hub) CloseWhere(match func(auth.Principal) bool, code int, reason string) int {
	h.mu.RLock()
	var hit []*conn
	for c := range h.conns {
		if match(c.principal) {
			hit = append(hit, c)
		}
	}
	h.mu.RUnlock()
	for _, c := range hit {
		c.closeWith(code, reason)
	}
	return len(hit)
}

// Deliver hands a bus message to the topic's subscribers, unless the hub
// already has a version at least as new. It never blocks on a client.
func (h *Hub) Deliver(name, version string, payload []byte) {
	h.mu.RLock()
	t := h.subscribed[name]
	h.mu.RUnlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.deliver(h, name, version, payload)
}

// deliver keeps a versioned message as the topic's newest and offers it to
// every subscriber; t.mu is held, so that subscribers get a topic's
// messages in version order.
func (t *topic) deliver(h *Hub, name, version string, payload []byte) {
	if version != "" {
		if version <= t.version {
			h.m.stale.Inc()
			return
		}
		t.version, t.payload = version, payload
	}
	for c := range t.subs {
		c.offer(name, version, payload, false)
	}
}

// Resync sends every subscription of every connection a fresh snapshot:
// the bus had a gap, so screens may have missed messages. It never blocks;
// each connection reads what it needs on its own goroutine.
func (h *Hub) Resync() {
	h.mu.RLock()
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.RUnlock()
	for _, c := range conns {
		c.resync()
	}
}

// Serve runs one connection for principal p, from client address addr
// ("": not counted per address), until the client leaves, it is dropped,
// or the hub closes. Over a cap it returns a *LimitError at once, having
// written nothing: the caller tells the client.
func (h *Hub) Serve(ws Conn, p auth.Principal, addr string) error {
	c := &conn{
		hub: h, ws: ws, principal: p, addr: addr,
		subs: map[string]*sub{}, pending: map[string]pending{},
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		sem: make(chan struct{}, h.cfg.SnapshotConcurrency),
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
		return ErrClosed
	}
	if err := h.overLimit(p, addr); err != nil {
		h.mu.Unlock()
		h.m.refused.WithLabelValues(err.(*LimitError).Per).Inc()
		return err
	}
	h.conns[c] = struct{}{}
	if p.Key != "" {
		h.perToken[p.Key]++
	}
	if addr != "" {
		h.perAddress[addr]++
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()
	if a, ok := h.topics.(Admitter); ok {
		if ce := a.Admit(p); ce != nil {
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(ce.Code, ce.Reason), time.Now().Add(time.Second))
			h.drop(c)
			return nil
		}
	}
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

// subscribe adds c to the topic's subscribers and offers it the hub's
// newest message of the topic, if there is one; it says whether there was.
func (h *Hub) subscribe(c *conn, name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.subscribed[name]
	if t == nil {
		t = &topic{subs: map[*conn]struct{}{}}
		h.subscribed[name] = t
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.subs[c] = struct{}{}
	h.m.subscriptions.Inc()
	if t.version == "" {
		return false
	}
	c.offer(name, t.version, t.payload, false)
	return true
}

// serve offers c the hub's newest message of the topic, after taking m
// (read from the bus's store) as the newest if it is; snapshot marks it as
// a resync. It says whether the hub had a message to offer.
func (h *Hub) serve(c *conn, name string, m *bus.Message, snapshot bool) bool {
	h.mu.RLock()
	t := h.subscribed[name]
	h.mu.RUnlock()
	if t == nil {
		return false // c has unsubscribed meanwhile
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if m != nil && m.Version > t.version {
		// Newer than anything the bus delivered here: the other
		// subscribers take it too.
		t.deliver(h, name, m.Version, m.Payload)
	}
	if t.version == "" {
		return false
	}
	c.offer(name, t.version, t.payload, snapshot)
	return true
}

func (h *Hub) unsubscribe(c *conn, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.subscribed[name]
	if t == nil {
		return
	}
	t.mu.Lock()
	_, ok := t.subs[c]
	delete(t.subs, c)
	empty := len(t.subs) == 0
	t.mu.Unlock()
	if !ok {
		return
	}
	if empty {
		// Memory stays bounded by what screens hold; the bus's store serves
		// the next subscriber.
		delete(h.subscribed, name)
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
	release := func(m map[string]int, k string) {
		if k == "" {
			return
		}
		if m[k]--; m[k] <= 0 {
			delete(m, k) // memory stays bounded by the connections open
		}
	}
	release(h.perToken, c.principal.Key)
	release(h.perAddress, c.addr)
	h.mu.Unlock()
}

// envelope builds a server message around an already-encoded payload; the
// version is left out on a stream topic.
func envelope(kind, topic, version string, seq uint64, data []byte) []byte {
	t, _ := json.Marshal(topic)
	b := make([]byte, 0, len(data)+len(topic)+len(version)+60)
	b = append(b, `{"type":"`...)
	b = append(b, kind...)
	b = append(b, `","topic":`...)
	b = append(b, t...)
	if version != "" {
		b = append(b, `,"version":"`...)
		b = append(b, version...) // hexadecimal digits: nothing to escape
		b = append(b, '"')
	}
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}
