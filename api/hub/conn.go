package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/bus"
)

type conn struct {
	hub       *Hub
	ws        Conn
	pw        preparedWriter // ws, if it writes prepared frames
	principal auth.Principal
	addr      string

	// tokens and refilled are the client's message budget; only the
	// reader touches them.
	tokens   float64
	refilled time.Time

	mu      sync.Mutex
	subs    map[string]*entry
	queue   []item         // messages to write, in the order they came
	spare   []item         // the writer's last queue, reused
	pending map[*entry]int // state topic → its item in queue
	streams int            // stream messages in queue
	control [][]byte       // error and reconnect messages to write
	reason  string         // why the connection ended
	stopped bool           // set with quit

	// closeCode and closeText are the close frame to end with; 0: none
	// (1001 at shutdown).
	closeCode int
	closeText string

	wake     chan struct{} // buffered 1: something is pending
	quit     chan struct{} // closed by stop
	stopOnce sync.Once
	done     chan struct{} // closed when the writer exits
}

// item is a message waiting for the writer.
type item struct {
	e *entry
	f *frame
	k kind
}

// maxControl bounds queued error messages; a client that provokes more
// without reading is dropped.
const maxControl = 64

type clientOp struct {
	Op    string `json:"op"`
	Topic string `json:"topic"`
	Since string `json:"since"`
}

func newConn(h *Hub, ws Conn, p auth.Principal, addr string) *conn {
	c := &conn{
		hub: h, ws: ws, principal: p, addr: addr,
		tokens: float64(h.cfg.ClientBurst), refilled: time.Now(),
		subs: map[string]*entry{}, pending: map[*entry]int{},
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
	}
	c.pw, _ = ws.(preparedWriter)
	return c
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
		if !c.allow(time.Now()) {
			c.closeWith(CloseRateLimited, fmt.Sprintf("more than %g messages a second (burst %d): send fewer", cfg.ClientRate, cfg.ClientBurst), "rate_limited")
			return "rate_limited"
		}
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
			c.subscribe(op.Topic, op.Since)
		case "unsubscribe":
			c.unsubscribe(op.Topic)
		default:
			c.sendError(op.Topic, fmt.Sprintf("unknown op %q: use subscribe or unsubscribe", op.Op))
		}
	}
}

// allow takes one message from the client's budget, which refills at
// ClientRate a second up to ClientBurst.
func (c *conn) allow(now time.Time) bool {
	cfg := c.hub.cfg
	c.tokens = min(float64(cfg.ClientBurst), c.tokens+now.Sub(c.refilled).Seconds()*cfg.ClientRate)
	c.refilled = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

func (c *conn) subscribe(requested, since string) {
	r, err := c.hub.topics.Resolve(c.principal, requested)
	var ce *CloseError
	if errors.As(err, &ce) {
		c.closeWith(ce.Code, ce.Reason, "closed_by_server")
		return
	}
	if err != nil {
		c.sendError(requested, err.Error())
		return
	}
	s, err := newSub(r, since)
	if err != nil {
		c.sendError(requested, err.Error())
		return
	}
	c.mu.Lock()
	if _, ok := c.subs[r.Name]; ok {
		c.mu.Unlock()
		return
	}
	if len(c.subs) >= c.hub.cfg.MaxSubscriptions {
		c.mu.Unlock()
		c.sendError(requested, fmt.Sprintf("too many subscriptions on one connection (limit %d); unsubscribe some first", c.hub.cfg.MaxSubscriptions))
		return
	}
	c.mu.Unlock()
	// Only this goroutine subscribes: nobody takes the place meanwhile.
	c.hub.attach(c, r, s)
}

// newSub reads where a subscription resumes from: a state topic's
// version, or a stream's "epoch:offset".
func newSub(r Route, since string) (*sub, error) {
	s := &sub{}
	if since == "" {
		return s, nil
	}
	if !r.Stream {
		if !bus.ValidVersion(since) {
			return nil, fmt.Errorf("since %q is not a version: send the version of the last message applied, or no since for a snapshot", since)
		}
		s.since = since
		return s, nil
	}
	epoch, off, ok := strings.Cut(since, ":")
	offset, err := strconv.ParseUint(off, 10, 64)
	if !ok || epoch == "" || err != nil {
		return nil, fmt.Errorf(`since %q is not a stream position: send "epoch:offset" of the last message applied, or no since for a snapshot`, since)
	}
	s.resume, s.epoch, s.offset = true, epoch, offset
	return s, nil
}

func (c *conn) unsubscribe(topic string) {
	if r, err := c.hub.topics.Resolve(c.principal, topic); err == nil {
		topic = r.Name
	}
	c.mu.Lock()
	e, ok := c.subs[topic]
	if !ok || e == nil {
		c.mu.Unlock()
		return
	}
	delete(c.subs, topic)
	c.mu.Unlock()
	c.hub.detach(c, e)
}

// push queues f for the writer as k. A state topic keeps at most one
// message queued, the newest: a slow screen gets the newest figures, never
// a backlog. Stream messages all count; past MaxQueue the client is
// disconnected. It never blocks; e.mu is held.
func (c *conn) push(e *entry, f *frame, k kind) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	overflow := false
	switch i, queued := c.pending[e]; {
	case e.stream && c.streams >= c.hub.cfg.MaxQueue:
		overflow = true
	case e.stream:
		c.streams++
		c.queue = append(c.queue, item{e, f, k})
		c.hub.m.queued.Inc()
	case queued:
		// What the client has not been sent yet is replaced whole: a
		// snapshot stays a snapshot, anything else becomes an update.
		if prev := c.queue[i].k; prev == kindSnapshot || k == kindSnapshot {
			k = kindSnapshot
		} else {
			k = kindUpdate
		}
		c.queue[i] = item{e, f, k}
		c.hub.m.coalesced.Inc()
	default:
		c.pending[e] = len(c.queue)
		c.queue = append(c.queue, item{e, f, k})
		c.hub.m.queued.Inc()
	}
	c.mu.Unlock()
	if overflow {
		c.closeWith(CloseSlowConsumer, fmt.Sprintf("slow consumer: more than %d messages queued; reconnect and resume", c.hub.cfg.MaxQueue), "slow_consumer")
		return
	}
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
	c.queueControl(b)
}

// sendReconnect tells the client to come back after d.
func (c *conn) sendReconnect(d time.Duration) {
	c.queueControl(fmt.Appendf(nil, `{"type":"reconnect","after_ms":%d}`, d.Milliseconds()))
}

func (c *conn) queueControl(b []byte) {
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
func (c *conn) closeWith(code int, text, reason string) {
	c.mu.Lock()
	if !c.stopped {
		c.closeCode, c.closeText = code, text
	}
	c.mu.Unlock()
	c.stop(reason)
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

// discard forgets what is queued, once the connection has ended.
func (c *conn) discard() {
	c.mu.Lock()
	c.hub.m.queued.Sub(float64(len(c.queue)))
	c.queue, c.spare, c.pending = nil, nil, nil
	c.mu.Unlock()
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
			reason, code, text, control := c.reason, c.closeCode, c.closeText, c.control
			c.control = nil
			c.mu.Unlock()
			switch {
			case reason == "shutdown":
				// The reconnect advice first, with little patience: the
				// node is going down.
				for _, b := range control {
					_ = c.ws.SetWriteDeadline(time.Now().Add(time.Second))
					if c.ws.WriteMessage(websocket.TextMessage, b) != nil {
						break
					}
				}
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
				// A limit may have ended the connection while the write
				// was stuck: say which, if the client still listens.
				c.mu.Lock()
				code, text := c.closeCode, c.closeText
				c.mu.Unlock()
				if code != 0 {
					_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
				}
				return
			}
		}
	}
}

// flush writes everything queued, safety topics first; false means the
// client is too slow or gone.
func (c *conn) flush() bool {
	c.mu.Lock()
	control := c.control
	c.control = nil
	out := c.queue
	c.queue, c.spare = c.spare[:0], nil
	clear(c.pending)
	c.streams = 0
	// Messages of topics unsubscribed since they were queued are dropped.
	n := 0
	for _, it := range out {
		if c.subs[it.e.name] == it.e {
			out[n] = it
			n++
		}
	}
	c.hub.m.queued.Sub(float64(len(out)))
	clear(out[n:])
	out = out[:n]
	c.mu.Unlock()

	ok := c.write(control, out)
	clear(out)
	c.mu.Lock()
	if c.spare == nil && !c.stopped {
		c.spare = out[:0]
	}
	c.mu.Unlock()
	return ok
}

func (c *conn) write(control [][]byte, out []item) bool {
	deadline := time.Now().Add(c.hub.cfg.WriteTimeout)
	_ = c.ws.SetWriteDeadline(deadline)
	for _, b := range control {
		if c.ws.WriteMessage(websocket.TextMessage, b) != nil {
			return false
		}
		c.hub.m.sentErrors.Inc()
	}
	for _, safety := range [2]bool{true, false} {
		for _, it := range out {
			if it.e.safety != safety {
				continue
			}
			enc := it.f.encoded(it.k)
			var err error
			if c.pw != nil && enc.pm != nil {
				err = c.pw.WritePreparedMessage(enc.pm)
			} else {
				err = c.ws.WriteMessage(websocket.TextMessage, enc.data)
			}
			if err != nil {
				return false
			}
			c.hub.m.sent[it.k].Inc()
		}
	}
	return true
}
