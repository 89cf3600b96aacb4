// Package hub runs the websocket side of the live API: connections, their
// topic subscriptions, the node's cache of each topic, and the fan-out of
// bus messages to subscribers.
//
// One snapshot per topic per node. The hub keeps an entry per subscribed
// topic (and, up to IdleTopics, topics nobody holds any more): its newest
// message on a state topic (kpi/, map/, alarms/, devices/), its recent
// messages and a snapshot on a stream topic (events/). A new subscriber is
// served from the entry at once. An entry without what a subscriber needs
// is filled once, however many subscribers wait for it (single flight):
// from the bus's latest-value store, else computed from storage (carrying
// bus.LowestVersion, so that anything published replaces it). Fills run at
// most MaxSnapshotReads at a time on the node, safety topics (alarms/,
// devices/) first, and a failed fill is retried with jittered back-off
// until it succeeds or nobody waits.
//
// Encode once. A message is encoded once per way it is sent (update,
// snapshot, delta, current) and written as the same prepared websocket
// frame to every subscriber; payloads are never parsed.
//
// Versions and resume. A state topic's messages carry versions that only
// grow (see internal/bus); a subscription is never sent an older version
// than one it was sent. A client resuming with the version it holds is
// told "current" when nothing changed. A map/ message may carry a delta
// against the version before it, sent to subscribers that hold that
// version; the others get the whole. A stream's messages carry the bus's
// epoch and offset; a client resuming with its position is sent what it
// missed, exactly once, from the entry's recent messages or the bus's
// history, or a snapshot marked as a gap when the history does not reach
// back. After a gap in the bus (Resync) the hub reads every entry again
// from the bus, and asks for those the bus lost (Republisher).
//
// Slow clients: a connection holds at most one pending message per state
// topic (latest value wins) and MaxQueue stream messages; past that it is
// closed with code 4008. A client that cannot take a write within
// WriteTimeout is disconnected. A broadcast never waits for a client.
//
// Caps: a token (Principal.Key) holds at most MaxPerToken connections and
// a client address MaxPerAddress on this node; a connection holds at most
// MaxSubscriptions and sends at most ClientRate messages a second (burst
// ClientBurst), else it is closed with code 4029.
//
// Concurrency: a Hub is safe for concurrent use. Each connection has one
// reader (the goroutine in Serve) and one writer goroutine, which Serve
// owns and waits for; fills run on goroutines of the hub, which Close waits
// for. Locks are taken in the order Hub.mu, entry.mu, conn.mu, with
// Hub.fillMu last.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	// ClientRate and ClientBurst bound the messages a client sends: on
	// average ClientRate a second, at most ClientBurst at once; defaults
	// 50 and 2500 (a wall page subscribes to a few hundred topics at once).
	ClientRate  float64
	ClientBurst int
	// MaxQueue bounds the stream messages waiting for a slow client; past
	// it the client is disconnected with code 4008. Default 1000.
	MaxQueue int
	// SnapshotTimeout bounds one read for a topic's snapshot; default 10s.
	SnapshotTimeout time.Duration
	// RetryMin and RetryMax bound the jittered back-off between attempts
	// at a snapshot that failed; defaults 500ms and 15s.
	RetryMin, RetryMax time.Duration
	// MaxPerToken bounds the connections one token holds at once on this
	// node; default 50.
	MaxPerToken int
	// MaxPerAddress bounds the connections from one client address at
	// once on this node; default 200.
	MaxPerAddress int
	// MaxSnapshotReads bounds the reads for snapshots (the bus's store or
	// history, figures computed from storage) in flight on this node;
	// default 8.
	MaxSnapshotReads int
	// StreamHistory is how many recent messages of each stream topic the
	// node keeps to serve resumes; default 256.
	StreamHistory int
	// IdleTopics bounds the topics kept without subscribers, for the next
	// screen that asks; default 1000.
	IdleTopics int
	// ReconnectSpread is the window over which clients are told to come
	// back when the node shuts down, so that they do not all return in the
	// same second; default 5s.
	ReconnectSpread time.Duration
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&c.WriteTimeout, 10*time.Second)
	defDur(&c.PingInterval, 30*time.Second)
	def(&c.MaxSubscriptions, 2000)
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 4096
	}
	if c.ClientRate <= 0 {
		c.ClientRate = 50
	}
	def(&c.ClientBurst, 2500)
	def(&c.MaxQueue, 1000)
	defDur(&c.SnapshotTimeout, 10*time.Second)
	defDur(&c.RetryMin, 500*time.Millisecond)
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(15*time.Second, c.RetryMin)
	}
	def(&c.MaxPerToken, 50)
	def(&c.MaxPerAddress, 200)
	def(&c.MaxSnapshotReads, 8)
	def(&c.StreamHistory, 256)
	def(&c.IdleTopics, 1000)
	defDur(&c.ReconnectSpread, 5*time.Second)
	return c
}

// Route is what the hub needs to know of a topic a client may subscribe to.
type Route struct {
	Name   string // canonical name, as published on the bus
	Stream bool   // every message counts (events/); else latest value wins
	Safety bool   // served before figures (alarms/, devices/)
}

// Topics is what the hub needs to know of topics.
type Topics interface {
	// Resolve checks that p may subscribe to topic and returns its route,
	// or an error that tells the client what is wrong; a *CloseError ends
	// the connection instead.
	Resolve(p auth.Principal, topic string) (Route, error)
	// Latest returns the newest published message of each of topics that
	// has one: the bus's latest-value store.
	Latest(ctx context.Context, topics []string) (map[string]bus.Message, error)
	// History returns the bus's retained messages of a stream topic after
	// offset after of epoch.
	History(ctx context.Context, topic, epoch string, after uint64) (bus.History, error)
	// Current computes the topic's payload now from storage: a state
	// topic's carries bus.LowestVersion.
	Current(ctx context.Context, topic string) (bus.Message, error)
}

// Admitter is what Topics may also implement: Admit says whether p may
// still hold a connection, once the connection is listed, so that a
// revocation that ran between the handshake's check and the listing (and
// so did not find it to close) is not missed; a *CloseError ends it.
type Admitter interface {
	Admit(p auth.Principal) *CloseError
}

// Republisher is what Topics may also implement: Republish asks whoever
// publishes topics to send them again, when a resync found them missing
// from the bus (Redis came back empty), rather than wait until they are
// next published.
type Republisher interface {
	Republish(ctx context.Context, topics []string) error
}

// Conn is the part of a websocket connection the hub uses. A Conn that
// also has WritePreparedMessage (the fasthttp/websocket one) is written
// prepared frames, built once for every subscriber.
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

type preparedWriter interface {
	WritePreparedMessage(pm *websocket.PreparedMessage) error
}

// Close codes the hub ends connections with, besides 1001 (going away).
const (
	// CloseSlowConsumer: the client's queue passed MaxQueue.
	CloseSlowConsumer = 4008
	// CloseRateLimited: the client sent messages faster than ClientRate.
	CloseRateLimited = 4029
)

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

	mu          sync.RWMutex
	entries     map[string]*entry
	idle        []*entry // entries that became idle, oldest first; may repeat
	idleCount   int
	conns       map[*conn]struct{}
	perToken    map[string]int // connections by Principal.Key
	perAddress  map[string]int // connections by client address
	closed      bool
	resyncing   bool
	resyncAgain bool
	wg          sync.WaitGroup // one per connection being served

	quit   chan struct{}  // closed by Close: fills and retries stop
	fillMu sync.Mutex     // guards the fields below
	queue  [2][]*entry    // entries to fill: safety topics, then figures
	fills  int            // fill goroutines running
	fillWG sync.WaitGroup // fill and resync goroutines
}

type metrics struct {
	clients        prometheus.Gauge
	subscriptions  prometheus.Gauge
	topics         prometheus.Gauge
	sent           [nKinds]prometheus.Counter
	sentErrors     prometheus.Counter
	coalesced      prometheus.Counter
	stale          prometheus.Counter
	queued         prometheus.Gauge
	disconnects    *prometheus.CounterVec
	snapshotErrors prometheus.Counter
	resyncs        prometheus.Counter
	readsInFlight  prometheus.Gauge
	fillsQueued    prometheus.Gauge
	cache          *prometheus.CounterVec
	resumes        *prometheus.CounterVec
	refused        *prometheus.CounterVec
}

// New returns a hub.
func New(cfg Config, topics Topics, logger *slog.Logger, reg prometheus.Registerer) *Hub {
	h := &Hub{
		cfg: cfg.withDefaults(), topics: topics, logger: logger,
		entries: map[string]*entry{}, conns: map[*conn]struct{}{},
		perToken: map[string]int{}, perAddress: map[string]int{},
		quit: make(chan struct{}),
	}
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ioc_ws_messages_sent_total", Help: "Messages written to websocket clients, by type."}, []string{"type"})
	h.m = metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ioc_ws_clients", Help: "Connected websocket clients."}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ioc_ws_subscriptions", Help: "Topic subscriptions over all websocket clients."}),
		topics: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ioc_ws_topics_cached", Help: "Topics the hub keeps the newest figures of, subscribed or idle."}),
		sentErrors: sent.WithLabelValues("error"),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_ws_messages_coalesced_total", Help: "Messages replaced by a newer one before a slow client took them."}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_ws_messages_stale_total", Help: "Messages dropped because the topic already had a version (or offset) at least as new."}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ioc_ws_queued_messages", Help: "Messages waiting to be written to websocket clients, over all connections."}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_ws_disconnects_total", Help: "Websocket connections ended, by reason (slow_consumer and rate_limited are the server's limits)."}, []string{"reason"}),
		snapshotErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_ws_snapshot_errors_total", Help: "Reads for a topic's snapshot that failed and are retried."}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_ws_resyncs_total", Help: "Times the hub read every topic again after a gap in the bus."}),
		readsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ioc_ws_snapshot_reads_in_flight", Help: "Reads for topic snapshots (the bus's store or history, figures from storage) in flight on this node; at most the hub's MaxSnapshotReads."}),
		fillsQueued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ioc_ws_snapshot_reads_queued", Help: "Topics waiting for a snapshot read because the node has MaxSnapshotReads in flight."}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_ws_snapshot_cache_total", Help: "Subscriptions served from the node's topic cache (hit) or that waited for a read (miss)."}, []string{"result"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_ws_resumes_total", Help: "Subscriptions resumed from a version or stream position, by outcome: current (nothing to send), snapshot (the version changed), replayed (missed stream messages sent), gap (the history did not reach back)."}, []string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_ws_connections_refused_total", Help: "Websocket connections refused, by the limit reached (token, address)."}, []string{"limit"}),
	}
	for k := range nKinds {
		h.m.sent[k] = sent.WithLabelValues(kindNames[k])
	}
	if reg != nil {
		reg.MustRegister(h.m.clients, h.m.subscriptions, h.m.topics, sent, h.m.coalesced, h.m.stale, h.m.queued,
			h.m.disconnects, h.m.snapshotErrors, h.m.resyncs, h.m.readsInFlight, h.m.fillsQueued, h.m.cache,
			h.m.resumes, h.m.refused)
	}
	return h
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
		c.closeWith(code, reason, "closed_by_server")
	}
	return len(hit)
}

// Deliver hands a bus message to the topic's subscribers, unless the hub
// already has it or a newer one. It never blocks on a client.
func (h *Hub) Deliver(m bus.Message) {
	h.mu.RLock()
	e := h.entries[m.Topic]
	h.mu.RUnlock()
	if e == nil {
		return
	}
	f := newFrame(m)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stream {
		e.deliverStream(h, f)
	} else {
		e.deliverState(h, f)
	}
}

// Resync reads every topic the hub keeps again from the bus: the bus had a
// gap, so messages may have been missed. It never blocks; gaps that come
// while a resync runs fold into one more.
func (h *Hub) Resync() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	if h.resyncing {
		h.resyncAgain = true
		h.mu.Unlock()
		return
	}
	h.resyncing = true
	h.fillWG.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.fillWG.Done()
		for {
			h.resyncOnce()
			h.mu.Lock()
			if !h.resyncAgain || h.closed {
				h.resyncing, h.resyncAgain = false, false
				h.mu.Unlock()
				return
			}
			h.resyncAgain = false
			h.mu.Unlock()
		}
	}()
}

// resyncOnce reads the latest message of every state topic in one go,
// retrying until the bus answers (a gap is reported once Redis is back),
// and has every stream topic read the history it may have missed.
func (h *Hub) resyncOnce() {
	h.m.resyncs.Inc()
	h.mu.RLock()
	var state []*entry
	names := make([]string, 0, len(h.entries))
	for _, e := range h.entries {
		if e.stream {
			e.mu.Lock()
			e.catchUp = true
			h.requestFill(e)
			e.mu.Unlock()
			continue
		}
		state = append(state, e)
		names = append(names, e.name)
	}
	h.mu.RUnlock()
	if len(names) == 0 {
		return
	}
	wait := h.cfg.RetryMin
	for {
		ctx, cancel := h.callContext()
		latest, err := h.topics.Latest(ctx, names)
		cancel()
		if err == nil {
			var missing []string
			for _, e := range state {
				if m, ok := latest[e.name]; ok {
					e.mu.Lock()
					e.deliverState(h, newFrame(m))
					e.mu.Unlock()
				} else {
					missing = append(missing, e.name)
				}
			}
			h.askAgain(missing)
			return
		}
		h.logger.Warn("read latest messages after a gap in the bus; retrying", "topics", len(names), "retry_in", wait, "err", err)
		if !h.sleep(wait) {
			return
		}
		wait = min(2*wait, h.cfg.RetryMax)
	}
}

// askAgain asks for topics the bus lost, if Topics can: what is published
// after the read above reaches the hub through its subscription. A failed
// request is only logged: the publisher sends every topic again anyway
// when it takes over, only later.
func (h *Hub) askAgain(names []string) {
	r, ok := h.topics.(Republisher)
	if !ok || len(names) == 0 {
		return
	}
	ctx, cancel := h.callContext()
	defer cancel()
	if err := r.Republish(ctx, names); err != nil {
		h.logger.Warn("ask for topics the bus lost again", "topics", len(names), "err", err)
	}
}

// sleep waits about d (jittered, so that nodes and topics do not retry in
// step); false means the hub closed first.
func (h *Hub) sleep(d time.Duration) bool {
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-h.quit:
		return false
	case <-t.C:
		return true
	}
}

// callContext bounds one read by SnapshotTimeout and by the hub's end;
// cancel releases it.
func (h *Hub) callContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.SnapshotTimeout)
	go func() {
		select {
		case <-h.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Serve runs one connection for principal p, from client address addr
// ("": not counted per address), until the client leaves, it is dropped,
// or the hub closes. Over a cap it returns a *LimitError at once, having
// written nothing: the caller tells the client.
func (h *Hub) Serve(ws Conn, p auth.Principal, addr string) error {
	c := newConn(h, ws, p, addr)
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
	h.drop(c)
	h.m.disconnects.WithLabelValues(c.reason).Inc()
	return nil
}

// Close tells every client when to come back (spread over
// ReconnectSpread), ends every connection with close code 1001 (going
// away), refuses new ones, stops reading snapshots, and waits up to ctx for
// the connections and reads to finish.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.quit)
	}
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.sendReconnect(rand.N(h.cfg.ReconnectSpread))
		c.stop("shutdown")
	}
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		h.fillWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attach subscribes c to the route's topic with s, creating the topic's
// entry if the hub has none, and serves s from the entry or asks for a
// fill.
func (h *Hub) attach(c *conn, r Route, s *sub) {
	h.mu.Lock()
	e := h.entries[r.Name]
	if e == nil {
		e = &entry{name: r.Name, stream: r.Stream, safety: r.Safety, subs: map[*conn]*sub{}}
		h.entries[r.Name] = e
		h.m.topics.Inc()
	}
	e.mu.Lock()
	if e.idle {
		e.idle = false
		h.idleCount--
	}
	h.mu.Unlock()
	defer e.mu.Unlock()
	e.subs[c] = s
	c.mu.Lock()
	c.subs[r.Name] = e // before anything is queued: the writer drops messages of topics not held
	c.mu.Unlock()
	h.m.subscriptions.Inc()
	if e.serve(h, c, s) {
		h.m.cache.WithLabelValues("hit").Inc()
	} else {
		h.m.cache.WithLabelValues("miss").Inc()
		h.requestFill(e)
	}
}

// detach ends c's subscription to e; an entry nobody holds stays, up to
// IdleTopics of them, for the next screen that asks.
func (h *Hub) detach(c *conn, e *entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e.mu.Lock()
	_, ok := e.subs[c]
	delete(e.subs, c)
	nowIdle := ok && len(e.subs) == 0
	if nowIdle {
		e.idle = true
	}
	e.mu.Unlock()
	if !ok {
		return
	}
	h.m.subscriptions.Dec()
	if !nowIdle {
		return
	}
	h.idle = append(h.idle, e)
	h.idleCount++
	for h.idleCount > h.cfg.IdleTopics && len(h.idle) > 0 {
		old := h.idle[0]
		h.idle[0] = nil
		h.idle = h.idle[1:]
		old.mu.Lock()
		evict := old.idle && h.entries[old.name] == old
		old.mu.Unlock()
		if evict {
			delete(h.entries, old.name)
			h.idleCount--
			h.m.topics.Dec()
		}
	}
}

func (h *Hub) drop(c *conn) {
	c.mu.Lock()
	subs := make([]*entry, 0, len(c.subs))
	for _, e := range c.subs {
		subs = append(subs, e)
	}
	c.mu.Unlock()
	for _, e := range subs {
		h.detach(c, e)
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
	c.discard()
}
