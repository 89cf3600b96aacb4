package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/internal/bloom"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/rollup"
)

// RecordWriter stores camera events, sensor readings or feedback in
// batches, each event id once (or, for feedback, each item's latest state),
// keeps their rollups, and tells an observer what it stored.
type RecordWriter[T any] struct {
	b       *batcher[T]
	conn    driver.Conn
	db      string
	scope   string                    // of the leases: the database, or its shard
	batchID func(token uint64) uint64 // names the batch written under a lease (Store.BatchID)
	leases  Leaser
	journal journal
	recover Recoverer
	notify  Notifier
	spec    tableSpec[T]
	known   *knownSets // by UTC day of the records' times
	settled *settler
	lookups *prometheus.CounterVec
	observe func(rows []T)
	now     func() time.Time
	logger  *slog.Logger
}

// tableSpec says how records of one kind are stored.
type tableSpec[T any] struct {
	table   string
	columns string // the INSERT column list
	timeCol string // the time column of the sort key
	key     func(T) storedKey
	// block returns an empty set of the columns, in the order of columns,
	// and the function that adds a row to it.
	block func() (*colSet, func(r T, batch uint64, ingestedAt time.Time))
	// stored is the select list that reads a stored row back, and scan
	// turns it into a record; differences compares a record with a stored
	// one of the same id, as sent ("field x (stored y)").
	stored      string
	scan        func(scan func(...any) error) (T, error)
	differences func(sent, stored T) []string
	// family, when set, is the rollups the writer keeps, and rollups sums
	// records into them.
	family  *family
	rollups func([]T) []rollupRows
	// maxima, when set, describes what views on the raw table added to the
	// live rollups with the raw insert (their maxima).
	maxima func(rows []T, now time.Time) []rollup.Table
	// version, when set, marks a table whose rows replace earlier rows of
	// the same id (ReplacingMergeTree(version)): nothing is looked up or
	// counted as a duplicate, and of one id in a batch only the row with the
	// highest version is inserted, the later one on a tie, as ClickHouse
	// would keep it. Such a table has no rollups.
	version func(T) uint64
}

// storedKey is what the "already stored?" lookup binds: the id, and the
// unit and time that bound the granules holding it.
type storedKey struct {
	hierarchy, area string
	at              time.Time
	id              string
}

var cameraSpec = tableSpec[CameraEvent]{
	table:   "camera_events",
	columns: "event_id, camera_id, type, severity, hierarchy, area_code, lat, lon, occurred_at, attrs, batch_id, ingested_at",
	timeCol: "occurred_at",
	key:     func(e CameraEvent) storedKey { return storedKey{e.Hierarchy, e.AreaCode, e.OccurredAt, e.EventID} },
	block: func() (*colSet, func(CameraEvent, uint64, time.Time)) {
		s := &colSet{}
		id, cam, typ, sev, h, area := col[string](s), col[string](s), col[string](s), col[string](s), col[string](s), col[string](s)
		lat, lon, at, attrs, batch, ing := col[float64](s), col[float64](s), col[time.Time](s), col[string](s), col[uint64](s), col[time.Time](s)
		return s, func(e CameraEvent, b uint64, now time.Time) {
			appendAll(id, e.EventID)
			appendAll(cam, e.CameraID)
			appendAll(typ, e.Type)
			appendAll(sev, e.Severity)
			appendAll(h, e.Hierarchy)
			appendAll(area, e.AreaCode)
			appendAll(lat, e.Lat)
			appendAll(lon, e.Lon)
			appendAll(at, e.OccurredAt)
			appendAll(attrs, e.Attrs)
			appendAll(batch, b)
			appendAll(ing, now)
		}
	},
	stored: "event_id, camera_id, type, toString(severity), hierarchy, area_code, lat, lon, occurred_at, attrs",
	scan: func(scan func(...any) error) (CameraEvent, error) {
		var e CameraEvent
		err := scan(&e.EventID, &e.CameraID, &e.Type, &e.Severity, &e.Hierarchy, &e.AreaCode, &e.Lat, &e.Lon, &e.OccurredAt, &e.Attrs)
		e.OccurredAt = e.OccurredAt.UTC()
		return e, err
	},
	// The position is left out: a report without one is placed at its
	// camera's, which may have moved since.
	differences: func(a, b CameraEvent) []string {
		var out []string
		for _, f := range []struct{ name, x, y string }{
			{"camera_id", a.CameraID, b.CameraID}, {"type", a.Type, b.Type}, {"severity", a.Severity, b.Severity}, {"attrs", a.Attrs, b.Attrs},
		} {
			if f.x != f.y {
				out = append(out, fmt.Sprintf("%s %q (stored %q)", f.name, f.x, f.y))
			}
		}
		return out
	},
	family:  &cameraFamily,
	rollups: cameraRollups,
}

var readingSpec = tableSpec[Reading]{
	table:   "sensor_readings",
	columns: "event_id, sensor_id, kind, value, unit, alert_level, danger_level, hierarchy, area_code, lat, lon, observed_at, batch_id, ingested_at",
	timeCol: "observed_at",
	key:     func(r Reading) storedKey { return storedKey{r.Hierarchy, r.AreaCode, r.ObservedAt, r.EventID} },
	block: func() (*colSet, func(Reading, uint64, time.Time)) {
		s := &colSet{}
		id, sensor, kind, value, unit := col[string](s), col[string](s), col[string](s), col[float64](s), col[string](s)
		alert, danger, h, area := col[*float64](s), col[*float64](s), col[string](s), col[string](s)
		lat, lon, at, batch, ing := col[float64](s), col[float64](s), col[time.Time](s), col[uint64](s), col[time.Time](s)
		return s, func(r Reading, b uint64, now time.Time) {
			appendAll(id, r.EventID)
			appendAll(sensor, r.SensorID)
			appendAll(kind, r.Kind)
			appendAll(value, r.Value)
			appendAll(unit, r.Unit)
			appendAll(alert, r.AlertLevel)
			appendAll(danger, r.DangerLevel)
			appendAll(h, r.Hierarchy)
			appendAll(area, r.AreaCode)
			appendAll(lat, r.Lat)
			appendAll(lon, r.Lon)
			appendAll(at, r.ObservedAt)
			appendAll(batch, b)
			appendAll(ing, now)
		}
	},
	stored: "event_id, sensor_id, kind, value, unit, alert_level, danger_level, hierarchy, area_code, lat, lon, observed_at",
	scan: func(scan func(...any) error) (Reading, error) {
		var r Reading
		err := scan(&r.EventID, &r.SensorID, &r.Kind, &r.Value, &r.Unit, &r.AlertLevel, &r.DangerLevel, &r.Hierarchy, &r.AreaCode, &r.Lat, &r.Lon, &r.ObservedAt)
		r.ObservedAt = r.ObservedAt.UTC()
		return r, err
	},
	differences: func(a, b Reading) []string {
		var out []string
		for _, f := range []struct{ name, x, y string }{
			{"sensor_id", a.SensorID, b.SensorID}, {"kind", a.Kind, b.Kind}, {"value", fmt.Sprint(a.Value), fmt.Sprint(b.Value)},
		} {
			if f.x != f.y {
				out = append(out, fmt.Sprintf("%s %s (stored %s)", f.name, f.x, f.y))
			}
		}
		return out
	},
	family:  &readingFamily,
	rollups: readingRollups,
	maxima:  readingMaxima,
}

// feedbackSpec stores each item's whole state; a resend replaces it.
var feedbackSpec = tableSpec[Feedback]{
	table: "feedback",
	columns: "feedback_id, hierarchy, area_code, category, channel, dossier_id, received_at, due_at, " +
		"status, resolved_at, rating, change_status, change_at, version, ingested_at",
	key:     func(f Feedback) storedKey { return storedKey{f.Hierarchy, f.AreaCode, f.ReceivedAt, f.FeedbackID} },
	version: func(f Feedback) uint64 { return f.Version },
	block: func() (*colSet, func(Feedback, uint64, time.Time)) {
		s := &colSet{}
		id, h, area, cat, ch, dossier := col[string](s), col[string](s), col[string](s), col[string](s), col[string](s), col[string](s)
		received, due, status, resolved, rating := col[time.Time](s), col[*time.Time](s), col[string](s), col[*time.Time](s), col[string](s)
		changeStatus, changeAt, version, ing := col[[]string](s), col[[]time.Time](s), col[uint64](s), col[time.Time](s)
		return s, func(f Feedback, _ uint64, now time.Time) {
			statuses, ats := make([]string, len(f.Changes)), make([]time.Time, len(f.Changes))
			for i, c := range f.Changes {
				statuses[i], ats[i] = c.Status, c.At
			}
			appendAll(id, f.FeedbackID)
			appendAll(h, f.Hierarchy)
			appendAll(area, f.AreaCode)
			appendAll(cat, f.Category)
			appendAll(ch, f.Channel)
			appendAll(dossier, f.DossierID)
			appendAll(received, f.ReceivedAt)
			appendAll(due, f.DueAt)
			appendAll(status, f.Status)
			appendAll(resolved, f.ResolvedAt)
			appendAll(rating, f.Rating)
			appendAll(changeStatus, statuses)
			appendAll(changeAt, ats)
			appendAll(version, f.Version)
			appendAll(ing, now)
		}
	},
}

// NewCameraWriter returns a writer of camera events; observe, if not nil,
// learns of each stored batch and must not block.
func NewCameraWriter(cfg BatchConfig, d WriterDeps, observe func([]CameraEvent)) (*RecordWriter[CameraEvent], error) {
	return newRecordWriter(cfg, d, cameraSpec, observe)
}

// NewReadingWriter returns a writer of sensor readings; observe, if not nil,
// learns of each stored batch and must not block.
func NewReadingWriter(cfg BatchConfig, d WriterDeps, observe func([]Reading)) (*RecordWriter[Reading], error) {
	return newRecordWriter(cfg, d, readingSpec, observe)
}

// NewFeedbackWriter returns a writer of citizen feedback. It never reports
// duplicates: a resent item replaces the state stored before.
func NewFeedbackWriter(cfg BatchConfig, d WriterDeps) (*RecordWriter[Feedback], error) {
	return newRecordWriter(cfg, d, feedbackSpec, nil)
}

func newRecordWriter[T any](cfg BatchConfig, d WriterDeps, spec tableSpec[T], observe func([]T)) (*RecordWriter[T], error) {
	if err := d.check(spec.table); err != nil {
		return nil, err
	}
	w := &RecordWriter[T]{conn: d.Store.Conn(), db: d.Store.Database(), scope: d.Store.Scope(), batchID: d.Store.BatchID, leases: d.Leases,
		journal: journal{conn: d.Store.Conn(), db: d.Store.Database(), node: node()},
		recover: d.Recover, notify: d.Notify, spec: spec, observe: observe, now: d.clock(), logger: d.Logger}
	w.settled = &settler{conn: w.conn, db: w.db, timeout: cfg.withDefaults().FlushTimeout, logger: d.Logger}
	complete := func(ctx context.Context, batches []*storedBatch) {
		completeBatches(ctx, w.conn, w.db, *spec.family, w.journal, w.recover, w.logger, expiryClock(cfg, w.now), batches)
	}
	m := newWriterMetrics(d.Registerer, spec.table)
	w.lookups = m.lookups
	table := w.db + "." + spec.table
	w.known = newKnownSets(w.conn, d.Logger, knownDays, func(day int64) (string, string, []any) {
		where := " FROM " + table + " WHERE " + spec.timeCol + " >= ? AND " + spec.timeCol + " < ?"
		from := time.Unix(day*86400, 0).UTC()
		return "SELECT count()" + where, "SELECT sipHash64(event_id)" + where, []any{chstore.Time(from), chstore.Time(from.AddDate(0, 0, 1))}
	})
	w.b = newBatcher(cfg, w.store, complete, d.Logger, m)
	return w, nil
}

// knownDays bounds the days of records a record writer keeps a known set
// of: live records are of today and yesterday, a backfill moves on.
const knownDays = 8

// Run flushes batches until ctx ends, then flushes what is queued.
func (w *RecordWriter[T]) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	scans, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() { w.known.run(scans) })
	w.b.run(ctx)
	return nil
}

// knownKey is a record's scope and hash in its writer's known sets.
func knownKey(k storedKey) (int64, uint64) {
	return k.at.Unix() / 86400, bloom.Hash([]byte(k.id))
}

// Write stores rows and returns once they are in ClickHouse, with what
// became of each.
func (w *RecordWriter[T]) Write(ctx context.Context, rows []T) (Outcome, error) {
	return w.b.submit(ctx, rows)
}

func (w *RecordWriter[T]) store(ctx context.Context, rows []T) ([]rowResult, *storedBatch, error) {
	if w.spec.version != nil {
		results, err := w.replace(ctx, rows)
		return results, nil, err
	}
	results := make([]rowResult, len(rows))
	l, err := w.leases.Acquire(ctx, w.scope+"."+w.spec.table)
	if err != nil {
		return nil, nil, fmt.Errorf("take the %s write lease: %w", w.spec.table, err)
	}
	// The lease covers the lookup and the raw rows; rollups come after.
	defer l.Release()
	// Nothing is looked up while an earlier insert may still land.
	if err := w.settled.begin(w.batchID(l.Previous())); err != nil {
		return nil, nil, err
	}
	defer w.settled.end(w.batchID(l.Token()))
	// Records certainly not stored are not looked up.
	w.known.begin(w.batchID(l.Previous()))
	var added []T
	defer func() {
		// Stored, or perhaps stored if the batch failed: known either way.
		for _, r := range added {
			w.known.stored(knownKey(w.spec.key(r)))
		}
		w.known.end(w.batchID(l.Token()))
	}()
	keys := make([]storedKey, 0, len(rows))
	for _, r := range rows {
		k := w.spec.key(r)
		if w.known.absent(knownKey(k)) {
			w.lookups.WithLabelValues("new").Inc()
			continue
		}
		w.lookups.WithLabelValues("queried").Inc()
		keys = append(keys, k)
	}
	stored := map[string]T{}
	if len(keys) > 0 {
		var err error
		if stored, err = storedRows(ctx, w.conn, w.db, w.spec, keys); err != nil {
			return nil, nil, err
		}
	}
	for i, r := range rows {
		id := w.spec.key(r).id
		if prior, ok := stored[id]; ok && checkDuplicates {
			if diffs := w.spec.differences(r, prior); len(diffs) > 0 {
				results[i].conflict = conflictError(id, diffs,
					"a stored "+w.spec.family.kind+" is not changed: if this is another one, send it with its own event_id")
			} else {
				results[i].duplicate = true
			}
			continue
		}
		stored[id] = r // a repeat later in the batch is compared with it
		added = append(added, r)
	}
	if len(added) == 0 {
		return results, nil, nil
	}
	now := w.now().UTC().Truncate(time.Second)
	batch := batchRef{kind: w.spec.family.kind, id: w.batchID(l.Token()), createdAt: now}
	for i, r := range added {
		at := w.spec.key(r).at
		if i == 0 || at.Before(batch.tMin) {
			batch.tMin = at
		}
		if i == 0 || at.After(batch.tMax) {
			batch.tMax = at
		}
	}
	if err := w.journal.write(ctx, batchBegun, batch); err != nil {
		return nil, nil, err
	}
	if !l.Held() {
		w.unfinished(batch)
		return nil, nil, ErrLeaseLost
	}
	if err := w.insert(ctx, added, batch.id, now); err != nil {
		// The rows may have landed with the answer lost, or land later:
		// once the insert is over, recovery looks.
		w.settled.lost(batch.id)
		w.unfinished(batch)
		return nil, nil, err
	}
	return results, &storedBatch{ref: batch, rollups: func() []rollupRows { return w.spec.rollups(added) },
		after: func(rollups []rollupRows, written []error) {
			if w.notify != nil {
				now := w.now()
				d := liveDelta(*w.spec.family, batch, rollups, written, nil, now)
				if w.spec.maxima != nil {
					d.Tables = append(d.Tables, w.spec.maxima(added, now)...)
				}
				if len(d.Tables) > 0 {
					w.notify.Added(d)
				}
			}
			if w.observe != nil {
				w.observe(added)
			}
		}}, nil
}

func (w *RecordWriter[T]) unfinished(b batchRef) {
	if w.recover != nil {
		w.recover.Unfinished(b.kind, b.id)
	}
}

// replace stores the latest state of each item of a replacing table.
func (w *RecordWriter[T]) replace(ctx context.Context, rows []T) ([]rowResult, error) {
	cand := latestByID(rows, w.spec)
	added := make([]T, 0, len(cand))
	for _, i := range cand {
		added = append(added, rows[i])
	}
	// A later state replaces an earlier one whatever the order of writes,
	// so no lease is needed; the batch id is left zero.
	if err := w.insert(ctx, added, 0, w.now().UTC().Truncate(time.Second)); err != nil {
		return nil, err
	}
	if w.observe != nil {
		w.observe(added)
	}
	return make([]rowResult, len(rows)), nil
}

func (w *RecordWriter[T]) insert(ctx context.Context, rows []T, batch uint64, now time.Time) error {
	if batch != 0 {
		ctx = withInsertID(ctx, w.db, w.spec.table, batch)
	}
	return insertRaw(ctx, w.conn, w.db, w.spec.table, w.spec, rows, batch, now)
}

// latestByID returns the indexes of the rows to insert into a replacing
// table, in order: per id the highest version, the later row on a tie.
// Inserting a single row per id keeps the outcome independent of how the
// server orders equal keys within one block.
func latestByID[T any](rows []T, spec tableSpec[T]) []int {
	best := make(map[string]int, len(rows))
	for i, r := range rows {
		id := spec.key(r).id
		if j, ok := best[id]; !ok || spec.version(r) >= spec.version(rows[j]) {
			best[id] = i
		}
	}
	return slices.Sorted(maps.Values(best))
}

// storedRows returns the stored rows, by id, among the keys' ids. A resent
// record carries the same unit and time, so bounding those keeps the lookup
// on the granules of the sort key that can hold it.
func storedRows[T any](ctx context.Context, conn driver.Conn, db string, spec tableSpec[T], keys []storedKey) (map[string]T, error) {
	stored := map[string]T{}
	byHierarchy := map[string][]storedKey{}
	for _, k := range keys {
		byHierarchy[k.hierarchy] = append(byHierarchy[k.hierarchy], k)
	}
	for h, ks := range byHierarchy {
		for start := 0; start < len(ks); start += lookupChunk {
			chunk := ks[start:min(start+lookupChunk, len(ks))]
			areas, ids := map[string]bool{}, make([]string, 0, len(chunk))
			lo, hi := chunk[0].at, chunk[0].at
			for _, k := range chunk {
				areas[k.area] = true
				ids = append(ids, k.id)
				lo, hi = minTime(lo, k.at), maxTime(hi, k.at)
			}
			// A time range prunes as well as listing every time and costs the
			// server far less to analyse; PREWHERE reads event_id first.
			q := `SELECT ` + spec.stored + ` FROM ` + db + `.` + spec.table + `
				PREWHERE event_id IN ?
				WHERE hierarchy = ? AND area_code IN ? AND ` + spec.timeCol + ` >= ? AND ` + spec.timeCol + ` <= ?`
			qctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_query_size": lookupQuerySize}))
			res, err := conn.Query(qctx, q, chstore.In(ids), h, chstore.In(slices.Collect(maps.Keys(areas))), chstore.Time(lo), chstore.Time(hi))
			if err != nil {
				return nil, fmt.Errorf("look up stored %s: %w", spec.table, err)
			}
			for res.Next() {
				r, err := spec.scan(res.Scan)
				if err != nil {
					res.Close()
					return nil, fmt.Errorf("look up stored %s: %w", spec.table, err)
				}
				stored[spec.key(r).id] = r
			}
			res.Close()
			if err := res.Err(); err != nil {
				return nil, fmt.Errorf("look up stored %s: %w", spec.table, err)
			}
		}
	}
	return stored, nil
}
