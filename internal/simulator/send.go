package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
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

// outbox is the queue between the generator and the sender.
type outbox struct {
	mu    sync.Mutex
	items []item
	limit int
}

func newOutbox(limit int) *outbox { return &outbox{limit: limit} }

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

// take removes and returns up to n items from the front.
func (o *outbox) take(n int) []item {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := min(n, len(o.items))
	batch := slices.Clone(o.items[:k])
	clear(o.items[:k])
	o.items = o.items[k:]
	if len(o.items) == 0 {
		o.items = nil
	}
	return batch
}

func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.items)
}

// send drains the outbox every FlushInterval, one batch at a time and in
// order, so that a dossier's events reach the server in lifecycle order.
func (s *Simulator) send(ctx context.Context) {
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for {
			batch := s.out.take(s.maxBatch)
			if len(batch) == 0 {
				break
			}
			s.deliver(ctx, batch)
			if ctx.Err() != nil {
				return
			}
		}
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

// deliver POSTs batch until the server has taken it or refused it for good.
// A retry resends the very same body: the server deduplicates on event_id.
func (s *Simulator) deliver(ctx context.Context, batch []item) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for _, it := range batch {
		if err := enc.Encode(it.ev); err != nil {
			s.logger.Error("encode dossier event; dropping it", "event_id", it.ev.EventID, "err", err)
		}
	}
	n := len(batch)
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		res, err := s.post(ctx, body.Bytes())
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		switch {
		case err != nil:
			s.metrics.postErrors.Inc()
			wait, backoff = jitter(backoff), min(2*backoff, maxBackoff)
			s.logger.Warn("ingest POST failed; will resend", "err", err, "events", n, "attempt", attempt, "retry_in", wait.Round(time.Millisecond))
		case res.status == http.StatusAccepted || res.status == http.StatusOK:
			s.accepted(batch, res.body)
			return
		case res.status == http.StatusServiceUnavailable || res.status == http.StatusTooManyRequests:
			s.metrics.postErrors.Inc()
			wait = res.retryAfter
			s.logger.Warn("ingest busy; will resend the same batch", "status", res.status, "events", n, "attempt", attempt, "retry_in", wait)
		case res.status == http.StatusUnauthorized || res.status == http.StatusForbidden:
			s.metrics.postErrors.Inc()
			s.metrics.rejected.Add(float64(n))
			s.logger.Error("ingest refused the token; dropped the batch, check Token and its ingest right",
				"status", res.status, "events", n, "response", snippet(res.body), "pause", authBackoff)
			sleep(ctx, authBackoff)
			return
		case res.status == http.StatusRequestEntityTooLarge:
			s.metrics.postErrors.Inc()
			s.metrics.rejected.Add(float64(n))
			s.maxBatch = max(s.maxBatch/2, 1)
			s.logger.Error("ingest batch too large; dropped it and halved the batch size",
				"events", n, "bytes", body.Len(), "max_batch", s.maxBatch)
			return
		case res.status >= 400 && res.status < 500:
			s.metrics.postErrors.Inc()
			s.metrics.rejected.Add(float64(n))
			s.logger.Error("ingest refused the batch; dropped it", "status", res.status, "events", n,
				"endpoint", s.endpoint, "response", snippet(res.body))
			return
		default:
			s.metrics.postErrors.Inc()
			wait, backoff = jitter(backoff), min(2*backoff, maxBackoff)
			s.logger.Warn("ingest server error; will resend", "status", res.status, "events", n,
				"attempt", attempt, "retry_in", wait.Round(time.Millisecond), "response", snippet(res.body))
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

func (s *Simulator) accepted(batch []item, body []byte) {
	var r ingestResponse
	if err := json.Unmarshal(body, &r); err != nil {
		s.metrics.sent.Add(float64(len(batch)))
		s.logger.Warn("ingest accepted the batch but its response is not JSON", "err", err, "response", snippet(body))
		return
	}
	s.metrics.sent.Add(float64(r.Accepted))
	s.metrics.rejected.Add(float64(r.Rejected))
	for i, e := range r.Errors {
		if i == loggedRejects {
			s.logger.Warn("ingest rejected more events", "more", len(r.Errors)-i)
			break
		}
		id := ""
		if e.Index >= 0 && e.Index < len(batch) {
			id = batch[e.Index].ev.EventID
		}
		s.logger.Warn("ingest rejected an event", "index", e.Index, "event_id", id, "reason", e.Error)
	}
}

type postResult struct {
	status     int
	retryAfter time.Duration
	body       []byte
}

func (s *Simulator) post(ctx context.Context, body []byte) (postResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return postResult{}, fmt.Errorf("build ingest request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	resp, err := s.cfg.HTTPClient.Do(req)
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
