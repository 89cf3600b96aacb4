package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/openioc/ioc/api/auth"
)

type conn struct {
	hub       *Hub
	ws        Conn
	principal auth.Principal

	mu      sync.Mutex
	subs    map[string]*sub
	pending map[string][]byte // topic → newest payload not yet written
	order   []string          // topics in pending, oldest first
	control [][]byte          // error messages to write
	reason  string            // why the connection ended

	wake      chan struct{} // buffered 1: something is pending
	quit      chan struct{} // closed by stop
	stopOnce  sync.Once
	done      chan struct{} // closed when the writer exits
	sem       chan struct{} // bounds snapshot computations
	snapshots sync.WaitGroup
}

type sub struct {
	seq  uint64  // messages written on this subscription
	last version // newest payload accepted
	any  bool    // a payload has been accepted
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
	c.hub.subscribe(c, topic)

	// Subscribed before computing: an update published meanwhile is not
	// lost, and the older of the two is dropped by its as_of.
	c.snapshots.Add(1)
	go func() {
		defer c.snapshots.Done()
		select {
		case c.sem <- struct{}{}:
		case <-c.quit:
			return
		}
		defer func() { <-c.sem }()
		ctx, cancel := context.WithTimeout(context.Background(), c.hub.cfg.SnapshotTimeout)
		defer cancel()
		go func() {
			select {
			case <-c.quit:
				cancel()
			case <-ctx.Done():
			}
		}()
		payload, err := c.hub.topics.Current(ctx, topic)
		if err != nil {
			select {
			case <-c.quit:
			default:
				c.hub.logger.Warn("compute snapshot for subscriber", "topic", topic, "err", err)
				c.sendError(requested, "could not compute the current figures; subscribe again shortly")
				c.unsubscribe(topic)
			}
			return
		}
		c.offer(topic, payload, versionOf(payload))
	}()
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

// offer queues payload for topic if it is not older than what the
// subscription has and differs from it.
func (c *conn) offer(topic string, payload []byte, v version) {
	c.mu.Lock()
	s, ok := c.subs[topic]
	if !ok {
		c.mu.Unlock()
		return
	}
	if s.any && (v.asOf.Before(s.last.asOf) || v.hash == s.last.hash) {
		c.mu.Unlock()
		return
	}
	s.last, s.any = v, true
	if _, queued := c.pending[topic]; queued {
		c.hub.m.coalesced.Inc()
	} else {
		c.order = append(c.order, topic)
	}
	c.pending[topic] = payload
	c.mu.Unlock()
	c.signal()
}

func (c *conn) sendError(topic, msg string) {
	b, _ := json.Marshal(struct {
		Type  string `json:"type"`
		Topic string `json:"topic"`
		Error string `json:"error"`
	}{"error", topic, msg})
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

// stop ends the connection; the first reason given is kept.
func (c *conn) stop(reason string) {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.reason = reason
		c.mu.Unlock()
		close(c.quit)
	})
}

type outgoing struct {
	kind, topic string
	seq         uint64
	data        []byte
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
			reason := c.reason
			c.mu.Unlock()
			if reason == "shutdown" {
				_ = c.ws.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"),
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
		data, ok := c.pending[topic]
		s := c.subs[topic]
		if !ok || s == nil {
			continue
		}
		s.seq++
		kind := "update"
		if s.seq == 1 {
			kind = "snapshot"
		}
		out = append(out, outgoing{kind, topic, s.seq, data})
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
		if !write(envelope(o.kind, o.topic, o.seq, o.data)) {
			return false
		}
		c.hub.m.sent.WithLabelValues(o.kind).Inc()
	}
	return true
}
