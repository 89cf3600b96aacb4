package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
)

// The client side of iocbench live: N websocket clients in this process,
// one goroutine each, which subscribe to one topic and account for every
// message the publisher sent by the sequence number inside its payload.
// They read without decoding the frames that carry a publication (a
// search for two keys), so that the load tool's own CPU stays small
// beside the servers' on the same machine.

// Keys of the benchmark's payloads: distinctive, so that a search for them
// cannot hit anything else in a frame.
const (
	seqKey = `"iocbench_seq":`
	tsKey  = `"iocbench_ts":`
)

// livePayload is the benchmark's message seq, sent at unix nanos ts: a
// JSON object padded to size bytes (at least its two numbers).
func livePayload(seq uint64, ts int64, size int) []byte {
	b := make([]byte, 0, max(size, 80))
	b = append(b, '{')
	b = append(b, seqKey...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ',')
	b = append(b, tsKey...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"pad":"`...)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// payloadNumbers finds the sequence number and send time in a frame that
// holds a benchmark payload; ok is false when it holds none.
func payloadNumbers(frame []byte) (seq uint64, ts int64, ok bool) {
	s, ok1 := numberAfter(frame, seqKey)
	t, ok2 := numberAfter(frame, tsKey)
	if !ok1 || !ok2 || t < 0 {
		return 0, 0, false
	}
	return uint64(s), t, true
}

func numberAfter(b []byte, key string) (int64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	v, err := strconv.ParseInt(string(b[:n]), 10, 64)
	return v, err == nil
}

// seqTracker accounts for one client's messages among the n the publisher
// sends, numbered first, first+1, …: each new one, each repeated one, and
// any outside the range (an earlier round's).
type seqTracker struct {
	first uint64
	n     int
	seen  []uint64 // bit i: first+i was received
	got   int      // distinct messages of the range received
	dup   int      // messages of the range received again
	stray int      // messages outside the range
}

func newSeqTracker(first uint64, n int) seqTracker {
	return seqTracker{first: first, n: n, seen: make([]uint64, (n+63)/64)}
}

// add records seq and says whether it is a new message of the range.
func (t *seqTracker) add(seq uint64) bool {
	if seq < t.first || seq-t.first >= uint64(t.n) {
		t.stray++
		return false
	}
	i := seq - t.first
	w, bit := i/64, uint64(1)<<(i%64)
	if t.seen[w]&bit != 0 {
		t.dup++
		return false
	}
	t.seen[w] |= bit
	t.got++
	return true
}

// lost is how many messages of the range never came.
func (t *seqTracker) lost() int { return t.n - t.got }

// nearestRank is the p-th percentile (0 < p ≤ 100) of sorted values by the
// nearest-rank method: the smallest value with at least p% of the values
// at or below it.
func nearestRank(sorted []int32, p float64) int32 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

// liveProto is the wire protocol of one side's clients.
type liveProto int

const (
	protoHub        liveProto = iota // iocd's /api/v1/live
	protoCentrifuge                  // centrifuge's JSON protocol over websocket
)

// liveRun is one side's clients in one round: what they share, and the
// counters the main goroutine waits on.
type liveRun struct {
	proto   liveProto
	url     string
	header  http.Header
	topic   string
	dialer  *websocket.Dialer
	start   time.Time // when the clients began to open
	clients []*liveClient

	current   atomic.Int64 // clients holding their first message
	failed    atomic.Int64 // clients that could not connect or subscribe, or were dropped
	delivered atomic.Int64 // new in-range messages over all clients
	closing   atomic.Bool  // the benchmark is closing the clients: errors are expected

	wg sync.WaitGroup
}

// liveClient is one client; only its own goroutine writes it until
// liveRun.wg is done.
type liveClient struct {
	ws      *websocket.Conn
	mu      sync.Mutex // guards ws between the reader and closeAll
	buf     []byte
	current time.Duration // since liveRun.start, when the first message for the topic came; 0: not yet
	track   seqTracker
	lat     []int32 // publish-to-receive latencies of new messages, microseconds
	resnaps int     // snapshots after the first (a resync or a gap)
	foreign int     // updates without a benchmark payload
	errs    int     // error frames
	err     error   // why the client ended early (nil while it runs, or closed by the benchmark)
	pong    bool    // centrifuge asked for pongs
}

// open starts every client, at most concurrency handshakes at a time; each
// client's goroutine reads until the connection ends.
func (r *liveRun) open(ctx context.Context, n, concurrency int, first uint64, messages int) {
	r.start = time.Now()
	r.clients = make([]*liveClient, n)
	sem := make(chan struct{}, max(1, concurrency))
	for i := range r.clients {
		c := &liveClient{track: newSeqTracker(first, messages), buf: make([]byte, 0, 1024), lat: make([]int32, 0, min(messages, 4096))}
		r.clients[i] = c
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				r.fail(c, ctx.Err())
				return
			}
			ws, err := r.connect(ctx)
			<-sem
			if err != nil {
				r.fail(c, err)
				return
			}
			c.mu.Lock()
			c.ws = ws
			closing := r.closing.Load()
			c.mu.Unlock()
			if closing {
				_ = ws.Close()
				return
			}
			r.read(c, ws)
		}()
	}
}

// connect opens one websocket and subscribes.
func (r *liveRun) connect(ctx context.Context) (*websocket.Conn, error) {
	ws, resp, err := r.dialer.DialContext(ctx, r.url, r.header)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			resp.Body.Close()
			return nil, fmt.Errorf("open %s: HTTP %d %s", r.url, resp.StatusCode, bytes.TrimSpace(body))
		}
		return nil, fmt.Errorf("open %s: %w", r.url, err)
	}
	var hello []byte
	switch r.proto {
	case protoHub:
		hello = fmt.Appendf(nil, `{"op":"subscribe","topic":%q}`, r.topic)
	case protoCentrifuge:
		// Two commands in one frame, one a line: connect, then subscribe.
		hello = fmt.Appendf(nil, "{\"id\":1,\"connect\":{\"name\":\"iocbench\"}}\n{\"id\":2,\"subscribe\":{\"channel\":%q}}", r.topic)
	}
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		ws.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", r.topic, err)
	}
	return ws, nil
}

func (r *liveRun) fail(c *liveClient, err error) {
	if r.closing.Load() {
		return
	}
	c.err = err
	r.failed.Add(1)
}

// read handles the client's messages until the connection ends.
func (r *liveRun) read(c *liveClient, ws *websocket.Conn) {
	for {
		_, rd, err := ws.NextReader()
		if err == nil {
			c.buf, err = readInto(c.buf[:0], rd)
		}
		if err != nil {
			r.fail(c, fmt.Errorf("connection ended: %w", err))
			return
		}
		now := time.Now()
		switch r.proto {
		case protoHub:
			err = r.hubMessage(c, c.buf, now)
		case protoCentrifuge:
			for line := range bytes.SplitSeq(c.buf, []byte("\n")) {
				if len(line) == 0 {
					continue
				}
				var reply []byte
				if reply, err = r.centrifugeMessage(c, line, now); err != nil {
					break
				}
				if reply != nil {
					c.mu.Lock()
					err = ws.WriteMessage(websocket.TextMessage, reply)
					c.mu.Unlock()
				}
				if err != nil {
					break
				}
			}
		}
		if err != nil {
			r.fail(c, err)
			_ = ws.Close()
			return
		}
	}
}

// readInto appends everything rd holds to b, reusing its capacity.
func readInto(b []byte, rd io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func (r *liveRun) markCurrent(c *liveClient, now time.Time) {
	if c.current != 0 {
		c.resnaps++
		return
	}
	c.current = max(now.Sub(r.start), time.Nanosecond)
	r.current.Add(1)
}

// deliver records a publication frame.
func (r *liveRun) deliver(c *liveClient, frame []byte, now time.Time) {
	seq, ts, ok := payloadNumbers(frame)
	if !ok {
		c.foreign++
		return
	}
	if !c.track.add(seq) {
		return
	}
	r.delivered.Add(1)
	us := max(0, now.UnixNano()-ts) / 1e3
	c.lat = append(c.lat, int32(min(us, math.MaxInt32)))
}

// hubMessage handles one message of iocd's hub: the snapshot that makes the
// client current, updates, and errors. The hub of before and after issue 14
// both write "type" first; any other layout is decoded in full.
func (r *liveRun) hubMessage(c *liveClient, m []byte, now time.Time) error {
	if bytes.HasPrefix(m, []byte(`{"type":"update"`)) {
		r.deliver(c, m, now)
		return nil
	}
	var h struct {
		Type     string          `json:"type"`
		Topic    string          `json:"topic"`
		Error    string          `json:"error"`
		Retrying bool            `json:"retrying"`
		Data     json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(m, &h); err != nil {
		return fmt.Errorf("hub sent a message that is not JSON: %w: %s", err, trim(m, 200))
	}
	switch h.Type {
	case "snapshot", "current":
		r.markCurrent(c, now)
	case "update":
		r.deliver(c, h.Data, now)
	case "error":
		c.errs++
		if !h.Retrying && c.current == 0 {
			return fmt.Errorf("hub refused the subscription to %s: %s", h.Topic, h.Error)
		}
	}
	return nil
}

// centrifugeMessage handles one reply or push of centrifuge's JSON
// protocol, and returns the client's answer, if any: the pong to a ping.
func (r *liveRun) centrifugeMessage(c *liveClient, m []byte, now time.Time) ([]byte, error) {
	if bytes.Equal(m, []byte("{}")) {
		if c.pong {
			return []byte("{}"), nil
		}
		return nil, nil
	}
	if bytes.HasPrefix(m, []byte(`{"push":{"channel":`)) && bytes.Contains(m, []byte(`"pub":`)) {
		r.deliver(c, m, now)
		return nil, nil
	}
	var rep struct {
		ID    uint32 `json:"id"`
		Error *struct {
			Code    uint32 `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Connect *struct {
			Pong bool `json:"pong"`
		} `json:"connect"`
		Subscribe *json.RawMessage `json:"subscribe"`
		Push      *struct {
			Pub *struct {
				Data json.RawMessage `json:"data"`
			} `json:"pub"`
			Disconnect *struct {
				Code   uint32 `json:"code"`
				Reason string `json:"reason"`
			} `json:"disconnect"`
		} `json:"push"`
	}
	if err := json.Unmarshal(m, &rep); err != nil {
		return nil, fmt.Errorf("centrifuge sent a line that is not JSON: %w: %s", err, trim(m, 200))
	}
	switch {
	case rep.Error != nil:
		c.errs++
		return nil, fmt.Errorf("centrifuge refused command %d: %d %s", rep.ID, rep.Error.Code, rep.Error.Message)
	case rep.Connect != nil:
		c.pong = rep.Connect.Pong
	case rep.Subscribe != nil:
		r.markCurrent(c, now)
	case rep.Push != nil && rep.Push.Pub != nil:
		r.deliver(c, rep.Push.Pub.Data, now)
	case rep.Push != nil && rep.Push.Disconnect != nil:
		return nil, fmt.Errorf("centrifuge disconnected the client: %d %s", rep.Push.Disconnect.Code, rep.Push.Disconnect.Reason)
	}
	return nil, nil
}

// closeAll closes every client and waits for their goroutines.
func (r *liveRun) closeAll() {
	r.closing.Store(true)
	for _, c := range r.clients {
		c.mu.Lock()
		if c.ws != nil {
			_ = c.ws.Close()
		}
		c.mu.Unlock()
	}
	r.wg.Wait()
}

// newLiveDialer is a lean client: small buffers, no compression, loopback
// dials bounded by timeout.
func newLiveDialer(timeout time.Duration) *websocket.Dialer {
	nd := &net.Dialer{Timeout: timeout}
	return &websocket.Dialer{
		NetDialContext:   nd.DialContext,
		HandshakeTimeout: timeout,
		ReadBufferSize:   2048,
		WriteBufferSize:  1024,
	}
}
