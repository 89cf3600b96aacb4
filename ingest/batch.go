package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BatchConfig tunes a writer's batching. Zero fields take the defaults.
type BatchConfig struct {
	// MaxRows flushes a batch once it holds this many rows; default 5000.
	MaxRows int
	// MaxAge flushes a batch once its oldest row has waited this long;
	// default 200ms. It bounds the added latency of an acknowledgement.
	MaxAge time.Duration
	// QueueRows bounds the rows waiting for a flush; beyond it requests are
	// refused with ErrQueueFull. Default 100000.
	QueueRows int
	// FlushTimeout bounds one flush (lookup and insert); default 15s.
	FlushTimeout time.Duration
	// HistoryEvents bounds the stored dossier events the dossier writer
	// remembers so as not to look them up again; default
	// DefaultHistoryEvents. Other writers ignore it.
	HistoryEvents int
	// SkipExpired leaves out of the minute rollups the rows of days they
	// no longer keep (MinuteRetention), which would be dropped within the
	// hour: a backfill of history sets it. Otherwise every row is written,
	// so that figures at any moment can be read until the day is dropped.
	SkipExpired bool
}

func (c BatchConfig) withDefaults() BatchConfig {
	if c.MaxRows <= 0 {
		c.MaxRows = 5000
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 200 * time.Millisecond
	}
	if c.QueueRows <= 0 {
		c.QueueRows = 100000
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = 15 * time.Second
	}
	return c
}

// QueueFullError says the writer holds as many rows as it may; the request
// should be retried later or the limit raised.
type QueueFullError struct{ Limit int }

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("ingest queue is full (%d rows waiting, the IOC_INGEST_QUEUE_ROWS limit); retry later or raise the limit", e.Limit)
}

// ErrClosed means the writer is shutting down and takes nothing more.
var ErrClosed = errors.New("ingest is shutting down; retry against another node or after the restart")

// StoreError wraps a failure to store a batch: nothing of the request was
// acknowledged, and a retry is safe because ids already stored are skipped.
type StoreError struct{ Err error }

func (e *StoreError) Error() string { return "store batch: " + e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

// rowResult is what became of one row of a flush.
type rowResult struct {
	duplicate bool   // already stored (or earlier in the batch) with the same content
	conflict  string // already stored with other content: why it was refused
}

// flushFunc stores rows and reports what became of each. When it returns
// a storedBatch, the rows are stored and the rest of the flush (rollups,
// journal, notifications) is left to the writer's completeFunc, which
// runs while the next batches are stored and completes every batch stored
// meanwhile at once; the rows are acknowledged once it returns.
type flushFunc[T any] func(ctx context.Context, rows []T) (results []rowResult, rest *storedBatch, err error)

// completeFunc writes the rollups of stored batches, all in one statement
// per rollup table, and records them done.
type completeFunc func(ctx context.Context, batches []*storedBatch)

// storedBatch is a batch whose raw rows are stored, with what remains.
type storedBatch struct {
	ref batchRef
	// rollups sums the batch's rows into each rollup of the writer's
	// family, by spec; it runs on the completer, off the path of the next
	// batch.
	rollups func() []rollupRows
	// after runs once the rollup inserts returned, with each table's
	// error (nil: it landed): notifications of what changed.
	after func(rollups []rollupRows, written []error)
}

// completing bounds the stored batches waiting for their rollups: beyond
// it, storing the next batch waits.
const completing = 8

// batchGrowth is how many times MaxRows a batch may hold: rows that
// queued up while a flush ran go into the next one whole, so that a busy
// writer makes fewer, larger inserts.
const batchGrowth = 8

type job[T any] struct {
	rows []T
	done chan jobResult // buffered: the writer never blocks on a gone requester
}

type jobResult struct {
	out Outcome
	err error
}

// Outcome is what became of the rows of a Write that returned no error:
// each was stored, found stored already (a duplicate), or refused because
// an event of the same id is stored with other content (a conflict).
type Outcome struct {
	Duplicates int
	Conflicts  []Conflict
}

// Conflict is a row refused as a conflicting resend.
type Conflict struct {
	Row   int // index in the rows written
	Error string
}

// batcher collects the rows of many requests into batches. One goroutine
// (run) owns the batch and stores each one in turn; the rest of the
// flushes (rollups and acknowledgements) runs on a second goroutine, the
// completer, that run owns and waits for: it takes every stored batch
// waiting and completes them together.
type batcher[T any] struct {
	cfg      BatchConfig
	flush    flushFunc[T]
	complete completeFunc
	logger   *slog.Logger
	m        *writerMetrics

	stored chan *flushed[T] // to the completer

	mu     sync.RWMutex // guards closed against sends on jobs
	closed bool
	jobs   chan *job[T]
	queued atomic.Int64 // rows submitted and not yet flushed
}

// flushed is a flush whose rows are stored, waiting for the completer.
type flushed[T any] struct {
	jobs    []*job[T]
	all     []T
	results []rowResult
	batch   *storedBatch
	start   time.Time
}

func newBatcher[T any](cfg BatchConfig, flush flushFunc[T], complete completeFunc, logger *slog.Logger, m *writerMetrics) *batcher[T] {
	cfg = cfg.withDefaults()
	return &batcher[T]{
		cfg: cfg, flush: flush, complete: complete, logger: logger, m: m,
		jobs: make(chan *job[T], 4096), stored: make(chan *flushed[T], completing),
	}
}

// submit queues rows and waits until they are stored, or ctx ends.
func (b *batcher[T]) submit(ctx context.Context, rows []T) (Outcome, error) {
	if len(rows) == 0 {
		return Outcome{}, nil
	}
	if !b.reserve(len(rows)) {
		return Outcome{}, &QueueFullError{Limit: b.cfg.QueueRows}
	}
	j := &job[T]{rows: rows, done: make(chan jobResult, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		b.release(len(rows))
		return Outcome{}, ErrClosed
	}
	select {
	case b.jobs <- j:
	default:
		b.mu.RUnlock()
		b.release(len(rows))
		return Outcome{}, &QueueFullError{Limit: b.cfg.QueueRows}
	}
	b.mu.RUnlock()
	// Counted once in the queue that Run flushes, also at shutdown.
	b.m.queueRows.Set(float64(b.queued.Load()))
	select {
	case r := <-j.done:
		return r.out, r.err
	case <-ctx.Done():
		// The rows may still be stored; a retry is deduplicated.
		return Outcome{}, fmt.Errorf("wait for batch: %w", ctx.Err())
	}
}

// reserve takes queue room for n rows, all or none.
func (b *batcher[T]) reserve(n int) bool {
	for {
		cur := b.queued.Load()
		if cur+int64(n) > int64(b.cfg.QueueRows) {
			return false
		}
		if b.queued.CompareAndSwap(cur, cur+int64(n)) {
			return true
		}
	}
}

func (b *batcher[T]) release(n int) {
	b.m.queueRows.Set(float64(b.queued.Add(-int64(n))))
}

// run flushes batches until ctx ends, then refuses new rows, flushes what is
// queued, waits for every flush to complete and returns.
func (b *batcher[T]) run(ctx context.Context) {
	completed := make(chan struct{})
	go func() { defer close(completed); b.completer() }()
	defer func() { close(b.stored); <-completed }()
	var batch []*job[T]
	rows := 0
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		// What queued up meanwhile joins the batch, up to its growth.
	more:
		for rows < batchGrowth*b.cfg.MaxRows {
			select {
			case j := <-b.jobs:
				batch = append(batch, j)
				rows += len(j.rows)
			default:
				break more
			}
		}
		if len(batch) > 0 {
			b.flushJobs(batch, rows)
		}
		batch, rows = batch[:0], 0
		timer.Stop()
	}
	add := func(j *job[T]) {
		if len(batch) == 0 {
			timer.Reset(b.cfg.MaxAge)
		}
		batch = append(batch, j)
		rows += len(j.rows)
		if rows >= b.cfg.MaxRows {
			flush()
		}
	}
	for {
		select {
		case j := <-b.jobs:
			add(j)
		case <-timer.C:
			flush()
		case <-ctx.Done():
			b.mu.Lock()
			b.closed = true
			b.mu.Unlock()
		drain:
			for {
				select {
				case j := <-b.jobs:
					add(j)
				default:
					break drain
				}
			}
			flush()
			return
		}
	}
}

func (b *batcher[T]) flushJobs(jobs []*job[T], n int) {
	jobs = slices.Clone(jobs) // run reuses its slice for the next batch
	all := make([]T, 0, n)
	for _, j := range jobs {
		all = append(all, j.rows...)
	}
	// A flush outlives the requests that wait on it: it runs to completion
	// (or its own timeout) so that what is stored is also acknowledged.
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.FlushTimeout)
	start := time.Now()
	results, rest, err := b.flush(ctx, all)
	cancel()
	b.m.batchRows.Observe(float64(len(all)))
	if err != nil || rest == nil {
		b.done(jobs, all, results, err, start)
		return
	}
	// The rollups of this batch are written while the next batch is
	// stored; its requests are answered once they are.
	b.stored <- &flushed[T]{jobs: jobs, all: all, results: results, batch: rest, start: start}
}

// completer completes stored batches, all those waiting at once, and
// answers their requests, until run closes b.stored.
func (b *batcher[T]) completer() {
	for f := range b.stored {
		waiting := []*flushed[T]{f}
	more:
		for len(waiting) < completing {
			select {
			case f, ok := <-b.stored:
				if !ok {
					break more
				}
				waiting = append(waiting, f)
			default:
				break more
			}
		}
		batches := make([]*storedBatch, len(waiting))
		for i, f := range waiting {
			batches[i] = f.batch
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.FlushTimeout)
		b.complete(ctx, batches)
		cancel()
		for _, f := range waiting {
			b.done(f.jobs, f.all, f.results, nil, f.start)
		}
	}
}

// done answers the requests of a flush.
func (b *batcher[T]) done(jobs []*job[T], all []T, results []rowResult, err error, start time.Time) {
	b.m.flushSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		b.m.flushErrors.Inc()
		b.logger.Error("flush failed; requests refused", "rows", len(all), "err", err)
		err = &StoreError{Err: err}
	}
	// The queue's room is given back before any request is answered: a
	// client that sends its next rows on the answer (iocd import keeps
	// exactly QueueRows in flight) must find it free.
	b.release(len(all))
	off := 0
	for _, j := range jobs {
		r := jobResult{err: err}
		if err == nil {
			for i, res := range results[off : off+len(j.rows)] {
				switch {
				case res.conflict != "":
					r.out.Conflicts = append(r.out.Conflicts, Conflict{Row: i, Error: res.conflict})
				case res.duplicate:
					r.out.Duplicates++
				}
			}
		}
		off += len(j.rows)
		j.done <- r
	}
}

type writerMetrics struct {
	lookups      *prometheus.CounterVec
	queueRows    prometheus.Gauge
	batchRows    prometheus.Observer
	flushSeconds prometheus.Observer
	flushErrors  prometheus.Counter
}

func newWriterMetrics(reg prometheus.Registerer, table string) *writerMetrics {
	labels := prometheus.Labels{"table": table}
	m := &writerMetrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_ingest_lookups_total", ConstLabels: labels,
			Help: "Records (dossiers, for dossier events) a batch had to know whether stored, by how it knew: remembered, new (certainly not stored) or queried."},
			[]string{"source"}),
		queueRows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ioc_ingest_queue_rows", Help: "Rows waiting for a flush.", ConstLabels: labels}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ioc_ingest_batch_rows", Help: "Rows per flushed batch.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ioc_ingest_flush_duration_seconds", Help: "Time to look up duplicates and insert a batch.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_ingest_flush_errors_total", Help: "Batches that could not be stored.", ConstLabels: labels}),
	}
	if reg != nil {
		reg.MustRegister(m.lookups, m.queueRows, m.batchRows.(prometheus.Histogram), m.flushSeconds.(prometheus.Histogram), m.flushErrors)
	}
	return m
}
