package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	maxBatch        = 2000 // events per POST; a backlog goes out in several
	minBackoff      = 250 * time.Millisecond
	maxBackoff      = 10 * time.Second
	authBackoff     = time.Minute // a wrong token will not fix itself soon
	defaultRetry    = time.Second
	maxRetryAfter   = 5 * time.Minute
	loggedRejects   = 3
	maxResponseBody = 1 << 20
)

// outboxLimit holds about five minutes of peak traffic, within sane bounds.
func outboxLimit(rate float64) int {
	return min(max(int(rate*300), 5000), 200_000)
}

// queue is a FIFO between a generating and a sending goroutine.
type queue[T any] struct {
	mu    sync.Mutex
	items []T
	limit int
}

// push appends items. Past the limit it drops the oldest down to 3/4 of the
// limit, which leaves room for a while rather than dropping on every push,
// and returns how many it dropped. It suits records that lose their worth
// with age, like detections and readings, not lifecycles.
func (q *queue[T]) push(items []T) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = append(q.items, items...)
	if len(q.items) <= q.limit {
		return 0
	}
	n := len(q.items) - q.limit*3/4
	clear(q.items[:n])
	q.items = q.items[n:]
	return n
}

// take removes and returns up to n items from the front.
func (q *queue[T]) take(n int) []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := min(n, len(q.items))
	batch := slices.Clone(q.items[:k])
	clear(q.items[:k])
	q.items = q.items[k:]
	if len(q.items) == 0 {
		q.items = nil
	}
	return batch
}

func (q *queue[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// outbox is the queue between the dossier generator and its sender.
type outbox struct{ queue[item] }

func newOutbox(limit int) *outbox { return &outbox{queue[item]{limit: limit}} }

// add appends items. Past the limit it drops the oldest dossiers whose
// received event is still here, i.e. of which the server knows nothing,
// with all their events, and has the world forget them (drop is called with
// the lock held). Follow-ups of dossiers already sent are kept, so the
// outbox can exceed its limit by at most what the open dossiers still have
// to emit. It returns how many dossiers were dropped.
func (o *outbox) add(items []item, drop func(*dossier)) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.items = append(o.items, items...)
	if len(o.items) <= o.limit {
		return 0
	}
	need := len(o.items) - o.limit*3/4
	var fresh []*dossier
	count := map[*dossier]int{}
	for _, it := range o.items {
		if it.ev.Status == "received" {
			fresh = append(fresh, it.d)
		}
		if _, ok := count[it.d]; ok || it.ev.Status == "received" {
			count[it.d]++
		}
	}
	gone := map[*dossier]bool{}
	for _, d := range fresh {
		if need <= 0 {
			break
		}
		gone[d] = true
		need -= count[d]
		drop(d)
	}
	o.items = slices.DeleteFunc(o.items, func(it item) bool { return gone[it.d] })
	return len(gone)
}

// sender drains one queue to one ingest endpoint, a batch at a time and
// in order, so that a dossier's events reach the server in lifecycle order.
// One goroutine at a time uses it: Run's sending goroutine, or the caller of
// Flush.
type sender[T any] struct {
	q        *queue[T]
	p        poster
	maxBatch int // halved when the server finds a batch too large
	encode   func([]T) ([]byte, error)
	id       func([]T, int) string // names record i in the log
	// record is told what became of every batch the server answered.
	record func(batch []T, a answer)
	// pausedUntil is when, on the simulated clock, to post again after the
	// server refused the token: a wrong token will not fix itself soon.
	pausedUntil time.Time
}

// answer is what the server made of one batch.
type answer struct {
	accepted, rejected int
	rejectedAt         map[int]bool // indices of records refused one by one
	refused            bool         // the whole batch, for good; it is dropped
}

func newSender[T any](q *queue[T], p poster, encode func([]T) ([]byte, error), id func([]T, int) string, record func([]T, answer)) *sender[T] {
	return &sender[T]{q: q, p: p, maxBatch: maxBatch, encode: encode, id: id, record: record}
}

// jsonArray encodes a batch as one JSON array, as the feedback and device
// endpoints take it.
func jsonArray[T any](batch []T) ([]byte, error) { return json.Marshal(batch) }

// errPaused says that a sender holds back after the server refused its
// token.
var errPaused = errors.New("sending paused after ingest refused the token; check Token and its ingest right")

// flush posts what the queue holds until it is empty; now is the simulated
// time, which paces the pause after a refused token. A batch the server is
// too busy for, or cannot be reached for, is resent until it is answered.
// flush returns nil once the server took every batch (records it refused
// one by one are logged and counted), ctx's error if ctx ended first (the
// batch in flight is then lost, as at shutdown), and otherwise what the
// server refused.
func (s *sender[T]) flush(ctx context.Context, now time.Time) error {
	if now.Before(s.pausedUntil) {
		return fmt.Errorf("%s: %w (until %s)", s.p.endpoint, errPaused, s.pausedUntil.Format(time.RFC3339))
	}
	var errs []error
	for {
		batch := s.q.take(s.maxBatch)
		if len(batch) == 0 {
			return errors.Join(errs...)
		}
		body, err := s.encode(batch)
		if err != nil {
			s.p.logger.Error("encode a batch; dropping it", "endpoint", s.p.endpoint, "records", len(batch), "err", err)
			s.record(batch, answer{refused: true})
			errs = append(errs, fmt.Errorf("encode %d records for %s: %w", len(batch), s.p.endpoint, err))
			continue
		}
		res, resp, err := s.p.deliver(ctx, body, len(batch))
		switch res {
		case delivered:
			s.record(batch, readAccepted(s.p.logger, resp, len(batch), func(i int) string { return s.id(batch, i) }))
			continue
		case cancelled:
			return fmt.Errorf("%s: %w", s.p.endpoint, ctx.Err())
		case tooLarge:
			s.maxBatch = max(s.maxBatch/2, 1)
			s.p.logger.Error("ingest batch too large; dropped it and halved the batch size",
				"records", len(batch), "bytes", len(body), "max_batch", s.maxBatch)
		case unauthorized:
			s.pausedUntil = now.Add(authBackoff)
		}
		s.record(batch, answer{refused: true})
		errs = append(errs, err)
		if res == unauthorized {
			return errors.Join(errs...)
		}
	}
}

// every calls f every d until ctx ends, the first time after d; it returns
// when ctx has ended and f has returned.
func every(ctx context.Context, d time.Duration, f func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f()
	}
}

type ingestResponse struct {
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	Errors   []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"errors"`
}

// poster POSTs batches to one ingest endpoint; it serves one sender.
type poster struct {
	endpoint, token, contentType string
	client                       *http.Client
	logger                       *slog.Logger
	postErrors                   prometheus.Counter
}

type outcome int

const (
	delivered    outcome = iota // the server took the batch; some records may be refused
	refused                     // the server refused the whole batch for good; it is dropped
	tooLarge                    // the server found the batch too large; it is dropped
	unauthorized                // the server refused the token; the batch is dropped
	cancelled                   // the context ended first
)

// deliver POSTs body, which holds n records, until the server has taken it
// or refused it for good, and returns the response body of a 2xx, or an
// error saying why the server refused it. A retry resends the very same
// body: the server deduplicates on event_id.
func (p poster) deliver(ctx context.Context, body []byte, n int) (outcome, []byte, error) {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		res, err := p.post(ctx, body)
		if ctx.Err() != nil {
			return cancelled, nil, ctx.Err()
		}
		var wait time.Duration
		switch {
		case err != nil:
			p.postErrors.Inc()
			wait, backoff = jitter(backoff), min(2*backoff, maxBackoff)
			p.logger.Warn("ingest POST failed; will resend", "err", err, "records", n, "attempt", attempt, "retry_in", wait.Round(time.Millisecond))
		case res.status == http.StatusAccepted || res.status == http.StatusOK:
			return delivered, res.body, nil
		case res.status == http.StatusServiceUnavailable || res.status == http.StatusTooManyRequests:
			p.postErrors.Inc()
			wait = res.retryAfter
			p.logger.Warn("ingest busy; will resend the same batch", "status", res.status, "records", n, "attempt", attempt, "retry_in", wait)
		case res.status == http.StatusUnauthorized || res.status == http.StatusForbidden:
			p.postErrors.Inc()
			p.logger.Error("ingest refused the token; dropped the batch, check Token and its ingest right",
				"status", res.status, "records", n, "response", snippet(res.body), "pause", authBackoff)
			return unauthorized, nil, fmt.Errorf("%s refused the token with %d: %s; check Token and its ingest right",
				p.endpoint, res.status, snippet(res.body))
		case res.status == http.StatusRequestEntityTooLarge:
			p.postErrors.Inc()
			return tooLarge, nil, fmt.Errorf("%s found a batch of %d records (%d bytes) too large", p.endpoint, n, len(body))
		case res.status >= 400 && res.status < 500:
			p.postErrors.Inc()
			p.logger.Error("ingest refused the batch; dropped it", "status", res.status, "records", n,
				"endpoint", p.endpoint, "response", snippet(res.body))
			return refused, nil, fmt.Errorf("%s refused a batch of %d records with %d: %s", p.endpoint, n, res.status, snippet(res.body))
		default:
			p.postErrors.Inc()
			wait, backoff = jitter(backoff), min(2*backoff, maxBackoff)
			p.logger.Warn("ingest server error; will resend", "status", res.status, "records", n,
				"attempt", attempt, "retry_in", wait.Round(time.Millisecond), "response", snippet(res.body))
		}
		if !sleep(ctx, wait) {
			return cancelled, nil, ctx.Err()
		}
	}
}

// readAccepted reads the answer to a batch of n records the server took,
// logs the first records it refused (id names record i) and says which.
func readAccepted(logger *slog.Logger, body []byte, n int, id func(i int) string) answer {
	var r ingestResponse
	if err := json.Unmarshal(body, &r); err != nil {
		logger.Warn("ingest accepted the batch but its response is not JSON", "err", err, "response", snippet(body))
		return answer{accepted: n}
	}
	a := answer{accepted: r.Accepted, rejected: r.Rejected}
	for i, e := range r.Errors {
		if e.Index >= 0 && e.Index < n {
			if a.rejectedAt == nil {
				a.rejectedAt = map[int]bool{}
			}
			a.rejectedAt[e.Index] = true
		}
		switch {
		case i < loggedRejects:
			rid := ""
			if e.Index >= 0 && e.Index < n {
				rid = id(e.Index)
			}
			logger.Warn("ingest rejected a record", "index", e.Index, "id", rid, "reason", e.Error)
		case i == loggedRejects:
			logger.Warn("ingest rejected more records", "more", len(r.Errors)-i)
		}
	}
	return a
}

type postResult struct {
	status     int
	retryAfter time.Duration
	body       []byte
}

func (p poster) post(ctx context.Context, body []byte) (postResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return postResult{}, fmt.Errorf("build ingest request: %w", err)
	}
	req.Header.Set("Content-Type", p.contentType)
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := p.client.Do(req)
	if err != nil {
		return postResult{}, fmt.Errorf("post ingest batch: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return postResult{}, fmt.Errorf("read ingest response: %w", err)
	}
	return postResult{status: resp.StatusCode, retryAfter: retryAfter(resp.Header.Get("Retry-After")), body: b}, nil
}

// retryAfter reads a Retry-After header in seconds or as an HTTP date.
func retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return defaultRetry
	}
	if sec, err := strconv.Atoi(h); err == nil && sec >= 0 {
		return min(time.Duration(sec)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(time.Until(t), 0), maxRetryAfter)
	}
	return defaultRetry
}

// jitter spreads retries of several simulators over [d/2, d).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// sleep waits d, or less if ctx ends first; it reports whether ctx is live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func snippet(b []byte) string {
	const limit = 300
	s := strings.TrimSpace(string(b))
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}
