package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/bus"
)

// fakeConn is a scripted websocket: the test feeds client messages in and
// reads what the hub wrote; writes can be held to play a slow screen.
type fakeConn struct {
	in chan []byte

	mu       sync.Mutex
	out      [][]byte
	closes   []int
	deadline time.Time
	gate     chan struct{} // when not nil, writes wait for it or the deadline
	closed   chan struct{}
	once     sync.Once
	wrote    chan struct{}
	waiting  chan struct{} // a write is held at the gate
}

func newFakeConn() *fakeConn {
	return &fakeConn{in: make(chan []byte, 16), closed: make(chan struct{}),
		wrote: make(chan struct{}, 1024), waiting: make(chan struct{}, 1024)}
}

func (f *fakeConn) ReadMessage() (int, []byte, error) {
	select {
	case m, ok := <-f.in:
		if !ok {
			return 0, nil, &websocket.CloseError{Code: websocket.CloseNormalClosure}
		}
		return websocket.TextMessage, m, nil
	case <-f.closed:
		return 0, nil, errors.New("use of closed connection")
	}
}

func (f *fakeConn) WriteMessage(_ int, data []byte) error {
	f.mu.Lock()
	gate, deadline := f.gate, f.deadline
	f.mu.Unlock()
	if gate != nil {
		f.waiting <- struct{}{}
		select {
		case <-gate:
		case <-time.After(time.Until(deadline)):
			return errors.New("i/o timeout")
		case <-f.closed:
			return errors.New("closed")
		}
	}
	f.mu.Lock()
	f.out = append(f.out, append([]byte(nil), data...))
	f.mu.Unlock()
	f.wrote <- struct{}{}
	return nil
}

func (f *fakeConn) WriteControl(kind int, data []byte, _ time.Time) error {
	if kind == websocket.CloseMessage {
		f.mu.Lock()
		code := int(data[0])<<8 | int(data[1])
		f.closes = append(f.closes, code)
		f.mu.Unlock()
	}
	return nil
}

func (f *fakeConn) SetReadDeadline(time.Time) error { return nil }
func (f *fakeConn) SetWriteDeadline(t time.Time) error {
	f.mu.Lock()
	f.deadline = t
	f.mu.Unlock()
	return nil
}
func (f *fakeConn) SetReadLimit(int64)                {}
func (f *fakeConn) SetPongHandler(func(string) error) {}
func (f *fakeConn) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeConn) hold() {
	f.mu.Lock()
	f.gate = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeConn) release() {
	f.mu.Lock()
	close(f.gate)
	f.gate = nil
	f.mu.Unlock()
}

func (f *fakeConn) send(op, topic string) {
	f.sendSince(op, topic, "")
}

func (f *fakeConn) sendSince(op, topic, since string) {
	m := map[string]string{"op": op, "topic": topic}
	if since != "" {
		m["since"] = since
	}
	b, _ := json.Marshal(m)
	f.in <- b
}

// deliver hands the hub a state message as the bus would.
func deliver(h *Hub, topic, version string, payload []byte) {
	h.Deliver(bus.Message{Topic: topic, Version: version, Payload: payload})
}

type msg struct {
	Type     string `json:"type"`
	Topic    string `json:"topic"`
	Version  string `json:"version"`
	Epoch    string `json:"epoch"`
	Offset   uint64 `json:"offset"`
	Base     string `json:"base"`
	Gap      bool   `json:"gap"`
	AfterMS  *int   `json:"after_ms"`
	Error    string `json:"error"`
	Retrying bool   `json:"retrying"`
	Data     struct {
		AsOf time.Time `json:"as_of"`
		N    int       `json:"n"`
	} `json:"data"`
}

// messages waits for at least n written messages and returns them all.
func (f *fakeConn) messages(t *testing.T, n int) []msg {
	t.Helper()
	for {
		f.mu.Lock()
		have := len(f.out)
		f.mu.Unlock()
		if have >= n {
			break
		}
		select {
		case <-f.wrote:
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d messages, want %d", have, n)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]msg, len(f.out))
	for i, b := range f.out {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatalf("message %q: %v", b, err)
		}
	}
	return out
}

var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

func payload(n int, asOf time.Time) []byte {
	return fmt.Appendf(nil, `{"as_of":%q,"n":%d}`, asOf.Format(time.RFC3339), n)
}

// v is the n-th version of a publisher holding lease token 1000.
func v(n uint32) string { return bus.Version(1000, n) }

// topics knows kpi/* (state), alarms/* (state, safety) and events/*
// (stream) topics. The bus's store holds what store has, its history what
// history has (epoch "e0"); the current value of each topic is n=0 at t0,
// computed unless fail says to fail.
type topics struct {
	mu           sync.Mutex
	store        map[string]bus.Message
	history      map[string][]bus.Message
	latestErr    error
	fail         int           // Current fails this many times more
	gate         chan struct{} // when not nil, Current waits for it
	latestCalls  int
	historyCalls int
	currentCalls int
	currentOrder []string // topics computed, in order
	republish    []string // topics asked for again, in order
}

func (t *topics) Republish(_ context.Context, names []string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.republish = append(t.republish, names...)
	return nil
}

const epoch0 = "e0e0e0e0e0e0e0e0"

func (*topics) Resolve(p auth.Principal, topic string) (Route, error) {
	if topic == "close/me" {
		return Route{}, &CloseError{Code: 4401, Reason: "token revoked"}
	}
	for _, prefix := range []string{"kpi/", "events/", "alarms/"} {
		if strings.HasPrefix(topic, prefix) {
			return Route{Name: topic, Stream: prefix == "events/", Safety: prefix == "alarms/"}, nil
		}
	}
	return Route{}, fmt.Errorf("unknown topic %q", topic)
}

func (f *topics) Latest(_ context.Context, names []string) (map[string]bus.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latestCalls++
	if f.latestErr != nil {
		return nil, f.latestErr
	}
	out := map[string]bus.Message{}
	for _, n := range names {
		if m, ok := f.store[n]; ok {
			out[n] = m
		}
	}
	return out, nil
}

func (f *topics) History(_ context.Context, topic, epoch string, after uint64) (bus.History, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.historyCalls++
	if f.latestErr != nil {
		return bus.History{}, f.latestErr
	}
	h := bus.History{Epoch: epoch0}
	all := f.history[topic]
	if len(all) > 0 {
		h.Last = all[len(all)-1].Offset
	}
	if epoch != epoch0 {
		after = 0
	}
	for _, m := range all {
		if m.Offset > after {
			h.Messages = append(h.Messages, m)
		}
	}
	return h, nil
}

// publish adds a stream message to the fake bus's history and returns it
// as the bus delivers it.
func (f *topics) publish(topic string, n int) bus.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.history == nil {
		f.history = map[string][]bus.Message{}
	}
	m := bus.Message{Topic: topic, Stream: true, Epoch: epoch0, Offset: uint64(len(f.history[topic]) + 1), Payload: payload(n, t0)}
	f.history[topic] = append(f.history[topic], m)
	return m
}

func (f *topics) Current(ctx context.Context, topic string) (bus.Message, error) {
	f.mu.Lock()
	f.currentCalls++
	f.currentOrder = append(f.currentOrder, topic)
	gate := f.gate
	failing := f.fail > 0
	if failing {
		f.fail--
	}
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return bus.Message{}, ctx.Err()
		}
	}
	if failing {
		return bus.Message{}, errors.New("clickhouse: connection refused")
	}
	m := bus.Message{Topic: topic, Payload: payload(0, t0)}
	if !strings.HasPrefix(topic, "events/") {
		m.Version = bus.LowestVersion
	}
	return m, nil
}

func (f *topics) calls() (latest, current int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.latestCalls, f.currentCalls
}

func newHub(t *testing.T, cfg Config) *Hub {
	t.Helper()
	return newHubWith(t, cfg, &topics{})
}

func newHubWith(t *testing.T, cfg Config, tp *topics) *Hub {
	t.Helper()
	h := New(cfg, tp, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

func serve(t *testing.T, h *Hub) (*fakeConn, chan error) {
	t.Helper()
	c := newFakeConn()
	done := make(chan error, 1)
	go func() { done <- h.Serve(c, auth.Principal{Role: auth.Admin}, "") }()
	return c, done
}

func TestSlowScreenGetsNewestValueNotBacklog(t *testing.T) {
	h := newHub(t, Config{})
	c, _ := serve(t, h)
	c.send("subscribe", "kpi/79")
	if m := c.messages(t, 1)[0]; m.Type != "snapshot" || m.Data.N != 0 {
		t.Fatalf("got %+v, want the snapshot", m)
	}
	c.hold()
	// The first update is taken by the writer and held; the next ones pile up
	// behind it and must fold into one.
	deliver(h, "kpi/79", v(1), payload(1, t0.Add(time.Second)))
	<-c.waiting
	delivered := make(chan struct{})
	go func() {
		for i := 2; i <= 100; i++ {
			deliver(h, "kpi/79", v(uint32(i)), payload(i, t0.Add(time.Duration(i)*time.Second)))
		}
		close(delivered)
	}()
	select {
	case <-delivered:
	case <-time.After(10 * time.Second):
		t.Fatal("Deliver waited for a screen that does not read")
	}
	c.release()
	c.messages(t, 3)
	// Nothing more may follow: a later update is the very next message.
	deliver(h, "kpi/79", v(101), payload(101, t0.Add(101*time.Second)))
	got := c.messages(t, 4)
	if len(got) != 4 || got[3].Data.N != 101 {
		t.Fatalf("got %d messages %+v, want 3 (snapshot, the held update, the newest), then the later update", len(got), got)
	}
	if got[2].Type != "update" || got[2].Data.N != 100 || got[2].Version != v(100) {
		t.Errorf("third message: got %+v, want an update with the newest value 100 and its version", got[2])
	}
	if got[3].Type != "update" || got[3].Version != v(101) {
		t.Errorf("later update: got %+v, want version %s", got[3], v(101))
	}
}

func TestStuckScreenIsDisconnected(t *testing.T) {
	h := newHub(t, Config{WriteTimeout: 50 * time.Millisecond})
	c, done := serve(t, h)
	c.send("subscribe", "kpi/79")
	c.messages(t, 1)
	c.hold()
	deliver(h, "kpi/79", v(1), payload(1, t0.Add(time.Second)))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a screen that takes no messages was not disconnected")
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.idleCount != len(h.entries) || len(h.conns) != 0 {
		t.Errorf("after disconnect: %d topics (%d idle) and %d connections left, want only idle topics", len(h.entries), h.idleCount, len(h.conns))
	}
}

func TestRefusalsAndShutdown(t *testing.T) {
	h := newHub(t, Config{MaxSubscriptions: 1})
	c, done := serve(t, h)
	c.in <- []byte("not json")
	c.send("subscribe", "weather/1")
	c.send("subscribe", "kpi/1")
	c.send("subscribe", "kpi/2")
	c.send("dance", "kpi/1")
	got := c.messages(t, 5)
	want := []string{"malformed message", `unknown topic "weather/1"`, "", "too many subscriptions on one connection (limit 1)", `unknown op "dance"`}
	errs := []msg{}
	for _, m := range got {
		if m.Type == "error" {
			errs = append(errs, m)
		}
	}
	for i, w := range []string{want[0], want[1], want[3], want[4]} {
		if i >= len(errs) || !strings.Contains(errs[i].Error, w) {
			t.Errorf("error %d: got %+v, want one containing %q", i, errs, w)
		}
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.closes) != 1 || c.closes[0] != websocket.CloseGoingAway {
		t.Errorf("close frames: got %v, want one 1001 (going away)", c.closes)
	}
	if err := h.Serve(newFakeConn(), auth.Principal{Role: auth.Admin}, ""); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve after Close: got %v, want ErrClosed", err)
	}
}
