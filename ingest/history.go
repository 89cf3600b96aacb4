package ingest

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/internal/bloom"
)

// A batch needs the stored history of every dossier it touches, to find
// resends and to derive each new event's change. Looking histories up is a
// query per batch that reads a granule of dossier_history per dossier, even
// for a dossier never stored: the sort key cannot tell absence without
// reading. So the dossier writer remembers what it stored, while it alone
// writes: the histories of the dossiers of its recent batches (a bounded
// number of events), and a Bloom filter of every dossier stored, so that a
// dossier is looked up only when it may be stored and is not remembered.
//
// Memory is current along an unbroken chain of the writer's own
// acquisitions of the table's lease: when an acquisition's previous token
// is not the writer's last one, another process wrote under the lease (or
// Redis lost its counters) and everything remembered is dropped. The filter
// is then filled again from a scan of the table, which counts only if the
// chain held from before the scan began until its result is taken: every
// batch before the scan is in what it reads, and the writer adds its own
// batches since.

// DefaultHistoryEvents bounds the dossier events a writer remembers.
const DefaultHistoryEvents = 200000

// recall is what the dossier writer remembers. Only the writer's flush
// (one at a time) calls its methods; the scan of the table runs on the
// goroutine of run and hands its result over a channel.
type recall struct {
	conn   driver.Conn
	db     string
	logger *slog.Logger
	m      recallMetrics

	maxEvents int
	// The histories, newest batches in cur; a lookup moves a history from
	// old to cur, and cur becomes old once it holds half the bound, so
	// that at most maxEvents events are kept and the least recently used
	// go first.
	cur, old  map[dossierKey][]Dossier
	curEvents int

	// token is the lease token of the batch up to which memory is current;
	// 0: nothing is remembered.
	token uint64
	// known holds every dossier stored up to token, or is nil while that
	// is not known.
	known *bloom.Filter

	// A scan of the table: scanID names the one whose result is awaited
	// (0: none), added the dossiers stored since it began.
	scanID  uint64
	added   []uint64
	scans   chan scanRequest
	scanned chan scanResult
}

type scanRequest struct{ id uint64 }

type scanResult struct {
	id     uint64
	filter *bloom.Filter
	err    error
}

type recallMetrics struct {
	lookups *prometheus.CounterVec
	reset   prometheus.Counter
}

func newRecall(conn driver.Conn, db string, maxEvents int, logger *slog.Logger, reg prometheus.Registerer) *recall {
	if maxEvents <= 0 {
		maxEvents = DefaultHistoryEvents
	}
	r := &recall{conn: conn, db: db, logger: logger, maxEvents: maxEvents,
		cur: map[dossierKey][]Dossier{}, old: map[dossierKey][]Dossier{},
		scans: make(chan scanRequest, 1), scanned: make(chan scanResult, 1),
		m: recallMetrics{
			lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_ingest_dossier_histories_total",
				Help: "Dossier histories a batch needed, by where they came from: remembered, new (known never stored) or queried."},
				[]string{"source"}),
			reset: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_ingest_dossier_memory_resets_total",
				Help: "Times the dossier writer dropped what it remembered because another process wrote under its lease."}),
		}}
	if reg != nil {
		reg.MustRegister(r.m.lookups, r.m.reset)
	}
	return r
}

func dossierHash(k dossierKey) uint64 {
	b := make([]byte, 0, len(k.hierarchy)+1+len(k.id))
	b = append(append(append(b, k.hierarchy...), 0), k.id...)
	return bloom.Hash(b)
}

// begin starts a batch whose lease was acquired after the one of token
// previous: memory is dropped unless the writer's last batch was that one.
func (r *recall) begin(previous uint64) {
	if r.token == 0 || previous != r.token {
		if r.token != 0 || r.known != nil {
			r.m.reset.Inc()
		}
		r.forget()
		return
	}
	select {
	case res := <-r.scanned:
		if res.id != r.scanID {
			return // a scan the chain broke under
		}
		r.scanID = 0
		if res.err != nil {
			r.logger.Warn("could not read which dossiers are stored; looking each batch's up instead", "err", res.err)
			return
		}
		for _, h := range r.added {
			res.filter.Add(h)
		}
		r.known, r.added = res.filter, nil
	default:
	}
}

// forget drops everything remembered, and disowns a running scan.
func (r *recall) forget() {
	clear(r.cur)
	clear(r.old)
	r.curEvents, r.token, r.known, r.scanID, r.added = 0, 0, nil, 0, nil
}

// history returns the remembered history of k; ok is false when it is not
// remembered. A dossier known never to have been stored has an empty one.
func (r *recall) history(k dossierKey) (ds []Dossier, ok bool) {
	if ds, ok := r.cur[k]; ok {
		r.m.lookups.WithLabelValues("remembered").Inc()
		return ds, true
	}
	if ds, ok := r.old[k]; ok {
		delete(r.old, k)
		r.keep(k, ds)
		r.m.lookups.WithLabelValues("remembered").Inc()
		return ds, true
	}
	if r.known != nil && !r.known.MayContain(dossierHash(k)) {
		r.m.lookups.WithLabelValues("new").Inc()
		return nil, true
	}
	r.m.lookups.WithLabelValues("queried").Inc()
	return nil, false
}

func (r *recall) keep(k dossierKey, ds []Dossier) {
	if r.curEvents+len(ds) > r.maxEvents/2 {
		r.old, r.cur = r.cur, r.old
		clear(r.cur)
		r.curEvents = 0
	}
	r.cur[k] = ds
	r.curEvents += len(ds)
}

// end closes a batch taken under the lease of token: histories are those
// of its dossiers, including what it added, and stored says whether its
// rows are known to be stored. Rows whose fate is unknown (a failed
// insert may have landed) leave their dossiers unremembered, to be looked
// up, but known as perhaps stored.
func (r *recall) end(token uint64, histories map[dossierKey][]Dossier, stored bool) {
	for k, ds := range histories {
		h := dossierHash(k)
		if r.known != nil {
			r.known.Add(h)
		}
		if r.scanID != 0 {
			r.added = append(r.added, h)
		}
		delete(r.old, k)
		if n, ok := r.cur[k]; ok {
			r.curEvents -= len(n)
			delete(r.cur, k)
		}
		if stored && len(ds) > 0 {
			r.keep(k, ds)
		}
	}
	r.token = token
	if r.known != nil && r.known.Full() {
		r.known = nil // sized for fewer: scan again into a bigger one
	}
	if r.known == nil && r.scanID == 0 {
		select {
		case r.scans <- scanRequest{id: token}:
			r.scanID = token
		default: // the scanner is still busy with a disowned scan
		}
	}
}

// run scans the table when asked, until ctx ends.
func (r *recall) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-r.scans:
			f, err := r.scan(ctx)
			select {
			case r.scanned <- scanResult{id: req.id, filter: f, err: err}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// scan reads the hash of every stored dossier into a filter sized with
// room to grow. ClickHouse hashes, so only eight bytes a row travel.
func (r *recall) scan(ctx context.Context) (*bloom.Filter, error) {
	var rows uint64
	if err := r.conn.QueryRow(ctx, "SELECT count() FROM "+r.db+"."+dossierFamily.raw).Scan(&rows); err != nil {
		return nil, fmt.Errorf("count stored dossier events: %w", err)
	}
	// Dossiers have several events each: half the rows, twice over, is
	// room for the table to double.
	f := bloom.New(rows + 1<<20)
	res, err := r.conn.Query(ctx, "SELECT sipHash64(concat(hierarchy, '\\0', dossier_id)) FROM "+r.db+"."+dossierFamily.raw)
	if err != nil {
		return nil, fmt.Errorf("read stored dossiers: %w", err)
	}
	defer res.Close()
	var h uint64
	for res.Next() {
		if err := res.Scan(&h); err != nil {
			return nil, fmt.Errorf("read stored dossiers: %w", err)
		}
		f.Add(h)
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("read stored dossiers: %w", err)
	}
	return f, nil
}
