package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
)

// Leaser hands out the lease under which a writer looks up what is stored
// and writes a batch: one writer of a table at a time across all nodes. Its
// token names the batch.
type Leaser interface {
	Acquire(ctx context.Context, name string) (*lease.Lease, error)
}

// Recoverer learns of a batch that a writer began and could not finish, so
// that the parts that did not land are written again. It must not block.
type Recoverer interface {
	Unfinished(kind string, batch uint64)
}

// ErrLeaseLost means the writer lost its lease before writing: another
// node may be writing the same dossiers, so nothing was written.
var ErrLeaseLost = errors.New("lost the write lease before storing (Redis unreachable, or this node paused for longer than IOC_LEASE_TTL)")

// Writer stores dossier events in batches, each event once, and keeps the
// dossier flow rollups.
type Writer struct {
	b       *batcher[Dossier]
	conn    driver.Conn
	db      string
	scope   string                    // of the leases: the database, or its shard
	batchID func(token uint64) uint64 // names the batch written under a lease (Store.BatchID)
	loc     *time.Location
	leases  Leaser
	journal journal
	recover Recoverer
	notify  Notifier
	recall  *recall
	settled *settler
	logger  *slog.Logger
	now     func() time.Time
}

// A flush looks up its ids in one query where it can: each query scans the
// same granules, so fewer queries means less reading. lookupChunk bounds the
// query text, and lookupQuerySize lets the server parse it (the default
// max_query_size is 256 KiB).
const (
	lookupChunk     = 20000
	lookupQuerySize = 32 << 20
)

// WriterDeps are what a writer is built from. Recover and Notify may be nil.
type WriterDeps struct {
	Store   *chstore.Store
	Leases  Leaser
	Recover Recoverer
	Notify  Notifier
	Logger  *slog.Logger
	// Registerer takes the writer's metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (d WriterDeps) check(what string) error {
	if d.Store == nil || d.Leases == nil || d.Logger == nil {
		return fmt.Errorf("%s writer needs a store, leases and a logger", what)
	}
	return nil
}

func (d WriterDeps) clock() func() time.Time {
	if d.Now == nil {
		return time.Now
	}
	return d.Now
}

// node names this process in the journal, for an operator reading it.
func node() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", h, os.Getpid())
}

// NewWriter returns a writer of dossier events.
func NewWriter(cfg BatchConfig, d WriterDeps) (*Writer, error) {
	if err := d.check("dossier"); err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(d.Store.TimeZone())
	if err != nil {
		return nil, fmt.Errorf("dossier writer: time zone %q: %w", d.Store.TimeZone(), err)
	}
	w := &Writer{conn: d.Store.Conn(), db: d.Store.Database(), scope: d.Store.Scope(), batchID: d.Store.BatchID, loc: loc, leases: d.Leases,
		journal: journal{conn: d.Store.Conn(), db: d.Store.Database(), node: node()},
		recover: d.Recover, notify: d.Notify, logger: d.Logger, now: d.clock(),
	}
	w.settled = &settler{conn: w.conn, db: w.db, timeout: cfg.withDefaults().FlushTimeout, logger: d.Logger}
	m := newWriterMetrics(d.Registerer, dossierFamily.raw)
	w.recall = newRecall(d.Store.Conn(), d.Store.Database(), cfg.HistoryEvents, d.Logger, m.lookups)
	w.b = newBatcher(cfg, w.store, func(ctx context.Context, batches []*storedBatch) {
		completeBatches(ctx, w.conn, w.db, dossierFamily, w.journal, w.recover, w.logger, expiryClock(cfg, w.now), batches)
	}, d.Logger, m)
	return w, nil
}

// Run flushes batches until ctx ends, then flushes what is queued and
// returns. Write refuses new rows from then on.
func (w *Writer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { w.recall.known.run(ctx) })
	w.b.run(ctx)
	return nil
}

// Write stores rows and returns once they are in ClickHouse, with what
// became of each.
func (w *Writer) Write(ctx context.Context, rows []Dossier) (Outcome, error) {
	return w.b.submit(ctx, rows)
}

// storedRow is one row a batch stores: a record at one placement, with its
// change to its dossier's figures.
type storedRow struct {
	r           Dossier
	at, rec     Placement
	approximate bool
	delta       []dossier.Contribution
}

// store writes one batch. Under the table's lease it reads the histories
// of the batch's dossiers, sorts each row into a duplicate, a conflicting
// resend or a new event, derives the new events' changes, and writes: the
// journal entry, the raw rows (one part), then every rollup with its
// markers. Once the raw rows are stored the batch is acknowledged even if a
// rollup fails: the rows are durable, and recovery completes the figures.
func (w *Writer) store(ctx context.Context, rows []Dossier) ([]rowResult, *storedBatch, error) {
	results := make([]rowResult, len(rows))
	l, err := w.leases.Acquire(ctx, w.scope+"."+dossierFamily.raw)
	if err != nil {
		return nil, nil, fmt.Errorf("take the %s write lease: %w", dossierFamily.raw, err)
	}
	// The lease covers what the next batch's derivation depends on: the
	// lookup, and the raw rows being stored. The rollups are written after
	// it is released.
	defer l.Release()
	batch := batchRef{kind: dossierFamily.kind, id: w.batchID(l.Token())}
	// Nothing is looked up while an earlier insert may still land.
	if err := w.settled.begin(w.batchID(l.Previous())); err != nil {
		return nil, nil, err
	}
	defer w.settled.end(w.batchID(l.Token()))

	// The stored histories of the batch's dossiers hold every event already
	// stored, so one lookup both finds resends and feeds the derivation;
	// what the writer remembers of its own batches is not looked up.
	w.recall.begin(w.batchID(l.Previous()))
	history, lookup := newFlows(), map[dossierKey]bool{}
	for _, r := range rows {
		for _, p := range placements(r) {
			k := dossierKey{p.at.Hierarchy, r.DossierID}
			if _, seen := history.content[k]; seen || lookup[k] {
				continue
			}
			if ds, ok := w.recall.history(k); ok {
				history.seed(k, ds)
				if history.content[k] == nil {
					history.content[k] = map[string]Dossier{} // seen: known never stored
				}
				continue
			}
			lookup[k] = true
		}
	}
	if err := loadFlows(ctx, w.conn, w.db, lookup, history); err != nil {
		return nil, nil, err
	}
	// Whatever happens to the batch from here, the writer holds the lease
	// of this token and nobody else wrote under it in between.
	landed := false
	defer func() { w.recall.end(w.batchID(l.Token()), history.histories(), landed) }()
	var stored []storedRow
	for i, r := range rows {
		if prior, ok := history.stored(dossierKey{r.Hierarchy, r.DossierID}, r.EventID); ok && checkDuplicates {
			if diffs := differences(r, prior); len(diffs) > 0 {
				results[i].conflict = conflictError(r.EventID, diffs,
					fmt.Sprintf("to correct it, send a new event_id with \"supersedes\":%q", r.EventID))
			} else {
				results[i].duplicate = true
			}
			continue
		}
		for _, p := range placements(r) {
			delta := history.add(dossierKey{p.at.Hierarchy, r.DossierID}, storedForm(r, p), p.at.AreaCode, p.approximate)
			stored = append(stored, storedRow{r: r, at: p.at, rec: p.rec, approximate: p.approximate, delta: delta})
		}
	}
	if len(stored) == 0 {
		landed = true
		return results, nil, nil
	}
	now := w.now().UTC().Truncate(time.Second)
	batch.createdAt, batch.tMin, batch.tMax = now, stored[0].r.OccurredAt, stored[0].r.OccurredAt
	for _, s := range stored {
		batch.tMin, batch.tMax = minTime(batch.tMin, s.r.OccurredAt), maxTime(batch.tMax, s.r.OccurredAt)
	}
	if err := w.journal.write(ctx, batchBegun, batch); err != nil {
		return nil, nil, err
	}
	if !l.Held() {
		w.unfinished(batch)
		return nil, nil, ErrLeaseLost
	}
	if err := w.insertRaw(ctx, stored, batch); err != nil {
		// The rows may have landed with the answer lost, or land later:
		// once the insert is over, recovery looks.
		w.settled.lost(batch.id)
		w.unfinished(batch)
		return nil, nil, err
	}
	landed = true
	return results, &storedBatch{ref: batch, rollups: func() []rollupRows { return dossierRollups(w.loc, stored) },
		after: func(rollups []rollupRows, written []error) {
			if w.notify == nil {
				return
			}
			if d := liveDelta(dossierFamily, batch, rollups, written, nil, w.now()); len(d.Tables) > 0 {
				w.notify.Added(d)
			}
		}}, nil
}

func (w *Writer) unfinished(b batchRef) {
	if w.recover != nil {
		w.recover.Unfinished(b.kind, b.id)
	}
}

// insertRaw writes the batch's rows to dossier_history in one statement:
// they share ingested_at, so they land in one partition, as one part.
func (w *Writer) insertRaw(ctx context.Context, rows []storedRow, b batchRef) error {
	block := newDossierBlock()
	for _, s := range rows {
		block.add(s.r, s.at, s.rec, s.approximate, s.delta, b.id, b.createdAt)
	}
	return block.send(withInsertID(ctx, w.db, dossierFamily.raw, b.id), w.conn, w.db)
}

// dossierRollups sums the changes of stored rows into every flow rollup.
func dossierRollups(loc *time.Location, rows []storedRow) []rollupRows {
	out := make([]rollupRows, len(dossierFamily.specs))
	for i := range out {
		out[i] = rollupRows{}
	}
	for _, r := range rows {
		addContributions(out, loc, r.at.Hierarchy, r.delta)
	}
	return out
}

// addContributions adds one stored row's changes to every flow rollup.
func addContributions(out []rollupRows, loc *time.Location, hierarchy string, cs []dossier.Contribution) {
	for _, c := range cs {
		ints := c.Measures[:]
		for i, s := range dossierFamily.specs {
			k := rollupKey{hierarchy: hierarchy, area: c.Area, bucket: s.cut.at(c.T, loc)}
			if len(s.dims) > 0 {
				k.dims = [4]string{c.Sector, c.Procedure, c.Channel, c.OnlineLevel}
			}
			out[i].add(s, k, ints, nil)
		}
	}
}

// expiryClock is the time by which completeBatches leaves expired minute
// rows out: zero (none left out) unless cfg.SkipExpired.
func expiryClock(cfg BatchConfig, now func() time.Time) time.Time {
	if !cfg.SkipExpired {
		return time.Time{}
	}
	return now()
}

// completeBatches writes the rollups of stored batches of family f, each
// table in one statement for all of them with their markers, then records
// the batches done; if any of it fails, recovery finishes them. One table
// failing does not stop the others: every part that lands is one recovery
// need not write. Each batch's after runs once the inserts returned. Rows
// of minute rollups older than their retention at now are left out unless
// now is zero.
func completeBatches(ctx context.Context, conn driver.Conn, db string, f family, j journal, rec Recoverer, logger *slog.Logger, now time.Time, batches []*storedBatch) {
	sums := make([][]rollupRows, len(batches))
	refs := make([]batchRef, len(batches))
	for k, b := range batches {
		sums[k], refs[k] = b.rollups(), b.ref
	}
	errs := make([]error, len(f.specs))
	var wg sync.WaitGroup
	for i, s := range f.specs {
		parts := make([]rollupPart, len(batches))
		for k, b := range batches {
			parts[k] = rollupPart{batch: b.ref.id, rows: sums[k][i]}
		}
		wg.Go(func() { errs[i] = writeRollup(ctx, conn, db, s, now, parts...) })
	}
	wg.Wait()
	// Only what landed, and only now that it has: a reader of the rollups
	// must see these rows before it hears of them. At once, not after the
	// journal: a check reading meanwhile would find rows it has not heard
	// of yet.
	for k, b := range batches {
		if b.after != nil {
			b.after(sums[k], errs)
		}
	}
	err := errors.Join(errs...)
	if err == nil {
		err = j.write(ctx, batchDone, refs...)
	}
	if err != nil {
		logger.Warn("rollups of stored batches failed; recovery writes them", "table", f.raw, "batches", len(batches), "err", err)
		if rec != nil {
			for _, r := range refs {
				rec.Unfinished(r.kind, r.id)
			}
		}
	}
}

// DossierColumns are the columns of a dossier_history row, in the order
// dossierBlock collects them: the INSERT column list of every writer of
// the table.
var DossierColumns = "event_id, dossier_id, procedure_code, sector, " +
	"hierarchy, area_code, channel, status, occurred_at, received_at, due_at, online_level, " +
	"digitized, e_result, paid_online, reused_data, fee_required, ingested_at, " +
	"recorded_hierarchy, recorded_area_code, approximate, lat, lon, supersedes, batch_id, " + strings.Join(deltaColumns, ", ")

// placedRow is where one stored row of a record counts.
type placedRow struct {
	at, rec     Placement
	approximate bool
}

// placements are the rows a record is stored as: placed in the current
// hierarchy and, for a record filed under an older one, as recorded too, so
// that the old hierarchy's figures stay whole.
func placements(r Dossier) []placedRow {
	if r.Recorded == nil {
		return []placedRow{{at: Placement{r.Hierarchy, r.AreaCode}, approximate: r.Approximate}}
	}
	return []placedRow{{Placement{r.Hierarchy, r.AreaCode}, *r.Recorded, r.Approximate}, {at: *r.Recorded}}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Derived is a dossier event whose change to its dossier's figures is
// already derived, placed in its own unit.
type Derived struct {
	Record Dossier
	Delta  []dossier.Contribution
}

// StoreDerived stores derived events and their rollups outside any batch:
// a bulk load, by one process, into a database no writer uses (the
// benchmark loads its hundred million events this way). It is not
// journaled; after an interrupted load, `iocd verify --repair` makes the
// rollups agree with what was stored.
func StoreDerived(ctx context.Context, store *chstore.Store, rows []Derived, ingestedAt time.Time) error {
	loc, err := time.LoadLocation(store.TimeZone())
	if err != nil {
		return fmt.Errorf("store derived events: time zone %q: %w", store.TimeZone(), err)
	}
	conn, db := store.Conn(), store.Database()
	stored := make([]storedRow, len(rows))
	for i, r := range rows {
		stored[i] = storedRow{r: r.Record, at: Placement{r.Record.Hierarchy, r.Record.AreaCode}, delta: r.Delta}
	}
	if err := InsertRawDossiers(ctx, conn, db, dossierFamily.raw, rows, 0, ingestedAt); err != nil {
		return err
	}
	for i, rows := range dossierRollups(loc, stored) {
		if err := insertRows(ctx, conn, db, dossierFamily.specs[i], rows); err != nil {
			return err
		}
	}
	return nil
}
