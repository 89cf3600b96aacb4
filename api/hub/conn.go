package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/bus"
)

type conn struct {
	hub       *Hub
	ws        Conn
	principal auth.Principal
	addr      string

	mu        sync.Mutex
	subs      map[string]*sub
	pending   map[string]pending // topic → newest message not yet written
	order     []string           // topics in pending, oldest first
	control   [][]byte           // error messages to write
	reason    string             // why the connection ended
	stopped   bool               // set with quit: no new goroutines
	resyncing bool               // a resync goroutine runs
	again     bool               // another gap came during the resync

	// closeCode and closeText are the close frame to end with; 0: none
	// (1001 at shutdown).
	closeCode int
	closeText string

	wake      chan struct{} // buffered 1: something is pending
	quit      chan struct{} // closed by stop
	stopOnce  sync.Once
	done      chan struct{} // closed when the writer exits
	sem       chan struct{} // bounds snapshot computations
	snapshots sync.WaitGroup
}

type sub struct {
	seq     uint64 // messages written on this subscription
	version string // newest version accepted; "" none yet, or a stream
}

// pending is a message waiting for the writer.
type pending struct {
	version  string
	payload  []byte
	snapshot bool // sent as a snapshot: first message, or a resync
}

// maxControl bounds queued error messages; a client that provokes more
// without reading is dropped.
const maxControl = 64

type clientOp struct {
	Op    string `json:"op"`
	Topic string `json:"topic"`
}

func (c *conn) readLoop() string {
	cfg := c.hub.cfg
	c.ws.SetReadLimit(cfg.MaxMessageBytes)
	extend := func() { _ = c.ws.SetReadDeadline(time.Now().Add(2 * cfg.PingInterval)) }
	extend()
	c.ws.SetPongHandler(func(string) error { extend(); return nil })
	for {
		kind, msg, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return "client_closed"
			}
			select {
			case <-c.quit:
				return c.reason
			default:
			}
			return "read_error"
		}
		extend()
		if kind != websocket.TextMessage {
			c.sendError("", "send text messages with JSON ops")
			continue
		}
		var op clientOp
		if err := json.Unmarshal(msg, &op); err != nil {
			c.sendError("", `malformed message: send {"op":"subscribe","topic":"kpi/79"}`)
			continue
		}
		switch op.Op {
		case "subscribe":
			c.subscribe(op.Topic)
		case "unsubscribe":
			c.unsubscribe(op.Topic)
		default:
			c.sendError(op.Topic, fmt.Sprintf("unknown op %q: use subscribe or unsubscribe", op.Op))
		}
	}
}

func (c *conn) subscribe(requested string) {
	topic, err := c.hub.topics.Resolve(c.principal, requested)
	var ce *CloseError
	if errors.As(err, &ce) {
		c.closeWith(ce.Code, ce.Reason)
		return
	}
	if err != nil {
		c.sendError(requested, err.Error())
		return
	}
	c.mu.Lock()
	if _, ok := c.subs[topic]; ok {
		c.mu.Unlock()
		return
	}
	if len(c.subs) >= c.hub.cfg.MaxSubscriptions {
		c.mu.Unlock()
		c.sendError(requested, fmt.Sprintf("too many subscriptions on one connection (limit %d); unsubscribe some first", c.hub.cfg.MaxSubscriptions))
		return
	}
	s := &sub{}
	c.subs[topic] = s
	c.mu.Unlock()
	// Subscribed before reading: an update published meanwhile is not
	// lost, and whichever of the two is older is dropped by its version.
	if c.hub.subscribe(c, topic) {
		return
	}
	c.spawn(func() { c.fetch(requested, topic, s, false) })
}

// spawn runs f on a goroutine that Serve waits for, unless the connection
// is ending.
func (c *conn) spawn(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	c.snapshots.Add(1)
	go func() {
		defer c.snapshots.Done()
		f()
	}()
	return true
}

// holds says whether s is still the subscription to topic.
func (c *conn) holds(topic string, s *sub) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subs[topic] == s
}

// fetch gets the subscription its snapshot, retrying with jittered
// back-off until it succeeds, the client unsubscribes or the connection
// ends. The client hears once that it is being retried; the subscription
// stays.
func (c *conn) fetch(requested, topic string, s *sub, snapshot bool) {
	cfg := c.hub.cfg
	wait := cfg.RetryMin
	told := false
	for c.holds(topic, s) {
		err := c.fetchOnce(topic, snapshot)
		if err == nil {
			return
		}
		select {
		case <-c.quit:
			return
		default:
		}
		c.hub.m.snapshotErrors.Inc()
		if !told {
			// Once per subscription: storage being down would otherwise
			// log a line per screen and topic at every retry.
			told = true
			c.hub.logger.Warn("read snapshot for subscriber; retrying", "topic", topic, "retry_in", wait, "err", err)
			c.sendRetrying(requested, "could not read the current figures yet; retrying in the background, the subscription stays")
		} else {
			c.hub.logger.Debug("read snapshot for subscriber; retrying", "topic", topic, "retry_in", wait, "err", err)
		}
		// Jitter keeps the screens of a wall from retrying in step.
		select {
		case <-c.quit:
			return
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
		wait = min(2*wait, cfg.RetryMax)
	}
}

// fetchOnce offers the topic's snapshot: the hub's newest message, else the
// bus's store, else figures computed now.
func (c *conn) fetchOnce(topic string, snapshot bool) error {
	select {
	case c.sem <- struct{}{}:
	case <-c.quit:
		return errors.New("connection closed")
	}
	defer func() { <-c.sem }()
	if c.hub.serve(c, topic, nil, snapshot) {
		return nil
	}
	if !c.hub.acquireRead(c.quit) {
		return errors.New("connection closed")
	}
	defer c.hub.releaseRead()
	ctx, cancel := c.callContext()
	defer cancel()
	latest, err := c.hub.topics.Latest(ctx, []string{topic})
	if err == nil {
		if m, ok := latest[topic]; ok && c.hub.serve(c, topic, &m, snapshot) {
			return nil
		}
	} else {
		// Computing the figures here still serves the screen.
		c.hub.logger.Debug("read latest message from the bus", "topic", topic, "err", err)
	}
	m, err := c.hub.topics.Current(ctx, topic)
	if err != nil {
		return err
	}
	c.offer(topic, m.Version, m.Payload, snapshot)
	return nil
}

// callContext bounds one read for a snapshot by SnapshotTimeout and by the
// connection's end; cancel releases its goroutine.
func (c *conn) callContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), c.hub.cfg.SnapshotTimeout)
	go func() {
		select {
		case <-c.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// resync sends every subscription a fresh snapshot, on a goroutine of the
// connection; gaps that come while one runs fold into one more run.
func (c *conn) resync() {
	c.mu.Lock()
	if c.resyncing {
		c.again = true
		c.mu.Unlock()
		return
	}
	c.resyncing = true
	c.mu.Unlock()
	if !c.spawn(c.resyncLoop) {
		c.mu.Lock()
		c.resyncing = false
		c.mu.Unlock()
	}
}

func (c *conn) resyncLoop() {
	for {
		c.resyncOnce()
		c.mu.Lock()
		if !c.again || c.stopped {
			c.resyncing, c.again = false, false
			c.mu.Unlock()
			return
		}
		c.again = false
		c.mu.Unlock()
	}
}

// resyncOnce reads the bus's store for every subscribed topic in one go
// (retrying until it answers, since a gap is reported once Redis is back),
// and offers each subscription the newest message as a snapshot; topics
// nobody published are fetched one by one.
func (c *conn) resyncOnce() {
	c.mu.Lock()
	subs := make(map[string]*sub, len(c.subs))
	for t, s := range c.subs {
		subs[t] = s
	}
	c.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	c.hub.m.resyncs.Inc()
	names := make([]string, 0, len(subs))
	for t := range subs {
		names = append(names, t)
	}
	var latest map[string]bus.Message
	wait := c.hub.cfg.RetryMin
	for {
		if !c.hub.acquireRead(c.quit) {
			return
		}
		ctx, cancel := c.callContext()
		var err error
		latest, err = c.hub.topics.Latest(ctx, names)
		cancel()
		c.hub.releaseRead()
		if err == nil {
			break
		}
		c.hub.logger.Warn("read latest messages to resync a screen; retrying", "topics", len(names), "retry_in", wait, "err", err)
		select {
		case <-c.quit:
			return
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
		wait = min(2*wait, c.hub.cfg.RetryMax)
	}
	for t, s := range subs {
		var m *bus.Message
		if l, ok := latest[t]; ok {
			m = &l
		}
		if !c.holds(t, s) || c.hub.serve(c, t, m, true) {
			continue
		}
		c.spawn(func() { c.fetch(t, t, s, true) })
	}
}

func (c *conn) unsubscribe(topic string) {
	if t, err := c.hub.topics.Resolve(c.principal, topic); err == nil {
		topic = t
	}
	c.mu.Lock()
	if _, ok := c.subs[topic]; !ok {
		c.mu.Unlock()
		return
	}
	delete(c.subs, topic)
	delete(c.pending, topic)
	c.mu.Unlock()
	c.hub.unsubscribe(c, topic)
}

// offer queues a message for topic unless the subscription has a version
// at least as new; a snapshot (a resync) may repeat the version it has.
func (c *conn) offer(topic, version string, payload []byte, snapshot bool) {
	c.mu.Lock()
	s, ok := c.subs[topic]
	if !ok {
		c.mu.Unlock()
		return
	}
	if version != "" {
		if version < s.version || version == s.version && !snapshot {
			c.mu.Unlock()
			c.hub.m.stale.Inc()
			return
		}
		s.version = version
	}
	p, queued := c.pending[topic]
	if queued {
		c.hub.m.coalesced.Inc()
	} else {
		c.order = append(c.order, topic)
	}
	c.pending[topic] = pending{version: version, payload: payload, snapshot: snapshot || queued && p.snapshot}
	c.mu.Unlock()
	c.signal()
}

func (c *conn) sendError(topic, msg string) {
	c.sendControl(topic, msg, false)
}

// sendRetrying tells the client something failed that the server keeps
// trying: nothing for it to do.
func (c *conn) sendRetrying(topic, msg string) {
	c.sendControl(topic, msg, true)
}

func (c *conn) sendControl(topic, msg string, retrying bool) {
	b, _ := json.Marshal(struct {
		Type     string `json:"type"`
		Topic    string `json:"topic"`
		Error    string `json:"error"`
		Retrying bool   `json:"retrying,omitempty"`
	}{"error", topic, msg, retrying})
	c.mu.Lock()
	if len(c.control) >= maxControl {
		c.mu.Unlock()
		c.stop("too_many_errors")
		return
	}
	c.control = append(c.control, b)
	c.mu.Unlock()
	c.signal()
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// closeWith ends the connection with a close frame of code and text.
func (c *conn) closeWith(code int, text string) {
	c.mu.Lock()
	if !c.stopped {
		c.closeCode, c.closeText = code, text
	}
	c.mu.Unlock()
	c.stop("closed_by_server")
}

// stop ends the connection; the first reason given is kept.
func (c *conn) stop(reason string) {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.reason, c.stopped = reason, true
		c.mu.Unlock()
		close(c.quit)
	})
}

type outgoing struct {
	kind, topic, version string
	seq                  uint64
	data                 []byte
}

func (c *conn) writeLoop() {
	defer close(c.done)
	defer c.ws.Close()
	ping := time.NewTicker(c.hub.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.quit:
			c.mu.Lock()
			reason, code, text := c.reason, c.closeCode, c.closeText
			c.mu.Unlock()
			switch {
			case reason == "shutdown":
				_ = c.ws.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"),
					time.Now().Add(time.Second))
			case code != 0:
				_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text),
					time.Now().Add(time.Second))
			}
			return
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.hub.cfg.WriteTimeout)); err != nil {
				c.stop("slow_or_gone")
				return
			}
		case <-c.wake:
			if !c.flush() {
				c.stop("slow_or_gone")
				return
			}
		}
	}
}

// flush writes everything pending; false means the client is too slow or gone.
func (c *conn) flush() bool {
	c.mu.Lock()
	control := c.control
	c.control = nil
	out := make([]outgoing, 0, len(c.order))
	for _, topic := range c.order {
		p, ok := c.pending[topic]
		s := c.subs[topic]
		if !ok || s == nil {
			continue
		}
		s.seq++
		kind := "update"
		if s.seq == 1 || p.snapshot {
			kind = "snapshot"
		}
		out = append(out, outgoing{kind, topic, p.version, s.seq, p.payload})
		delete(c.pending, topic)
	}
	c.order = c.order[:0]
	c.mu.Unlock()
	write := func(b []byte) bool {
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.hub.cfg.WriteTimeout))
		return c.ws.WriteMessage(websocket.TextMessage, b) == nil
	}
	for _, b := range control {
		if !write(b) {
			return false
		}
		c.hub.m.sent.WithLabelValues("error").Inc()
	}
	for _, o := range out {
		if !write(envelope(o.kind, o.topic, o.version, o.seq, o.data)) {
			return false
		}
		c.hub.m.sent.WithLabelValues(o.kind).Inc()
	}
	return true
}
