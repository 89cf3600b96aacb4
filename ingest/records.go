package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/internal/chstore"
)

// RecordWriter stores camera events, sensor readings or feedback in
// batches, each event id once (or, for feedback, each item's latest state),
// and tells an observer what it stored.
type RecordWriter[T any] struct {
	b       *batcher[T]
	conn    driver.Conn
	db      string
	lock    Locker
	spec    tableSpec[T]
	observe func(rows []T)
}

// tableSpec says how records of one kind are stored.
type tableSpec[T any] struct {
	table   string
	columns string // the INSERT column list
	timeCol string // the time column of the sort key
	key     func(T) storedKey
	values  func(r T, ingestedAt time.Time) []any
	// version, when set, marks a table whose rows replace earlier rows of
	// the same id (ReplacingMergeTree(version)): nothing is looked up or
	// counted as a duplicate, and of one id in a batch only the row with the
	// highest version is inserted, the later one on a tie, as ClickHouse
	// would keep it.
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
	columns: "event_id, camera_id, type, severity, hierarchy, area_code, lat, lon, occurred_at, attrs, ingested_at",
	timeCol: "occurred_at",
	key:     func(e CameraEvent) storedKey { return storedKey{e.Hierarchy, e.AreaCode, e.OccurredAt, e.EventID} },
	values: func(e CameraEvent, now time.Time) []any {
		return []any{e.EventID, e.CameraID, e.Type, e.Severity, e.Hierarchy, e.AreaCode, e.Lat, e.Lon, e.OccurredAt, e.Attrs, now}
	},
}

var readingSpec = tableSpec[Reading]{
	table:   "sensor_readings",
	columns: "event_id, sensor_id, kind, value, unit, alert_level, danger_level, hierarchy, area_code, lat, lon, observed_at, ingested_at",
	timeCol: "observed_at",
	key:     func(r Reading) storedKey { return storedKey{r.Hierarchy, r.AreaCode, r.ObservedAt, r.EventID} },
	values: func(r Reading, now time.Time) []any {
		return []any{r.EventID, r.SensorID, r.Kind, r.Value, r.Unit, r.AlertLevel, r.DangerLevel, r.Hierarchy, r.AreaCode, r.Lat, r.Lon, r.ObservedAt, now}
	},
}

// feedbackSpec stores each item's whole state; a resend replaces it.
var feedbackSpec = tableSpec[Feedback]{
	table: "feedback",
	columns: "feedback_id, hierarchy, area_code, category, channel, dossier_id, received_at, due_at, " +
		"status, resolved_at, rating, change_status, change_at, version, ingested_at",
	key:     func(f Feedback) storedKey { return storedKey{f.Hierarchy, f.AreaCode, f.ReceivedAt, f.FeedbackID} },
	version: func(f Feedback) uint64 { return f.Version },
	values: func(f Feedback, now time.Time) []any {
		statuses, ats := make([]string, len(f.Changes)), make([]time.Time, len(f.Changes))
		for i, c := range f.Changes {
			statuses[i], ats[i] = c.Status, c.At
		}
		return []any{f.FeedbackID, f.Hierarchy, f.AreaCode, f.Category, f.Channel, f.DossierID, f.ReceivedAt, f.DueAt,
			f.Status, f.ResolvedAt, f.Rating, statuses, ats, f.Version, now}
	},
}

// NewCameraWriter returns a writer of camera events; observe, if not nil,
// learns of each stored batch and must not block.
func NewCameraWriter(cfg BatchConfig, store *chstore.Store, lock Locker, observe func([]CameraEvent), logger *slog.Logger, reg prometheus.Registerer) (*RecordWriter[CameraEvent], error) {
	return newRecordWriter(cfg, store, lock, cameraSpec, observe, logger, reg)
}

// NewReadingWriter returns a writer of sensor readings; observe, if not nil,
// learns of each stored batch and must not block.
func NewReadingWriter(cfg BatchConfig, store *chstore.Store, lock Locker, observe func([]Reading), logger *slog.Logger, reg prometheus.Registerer) (*RecordWriter[Reading], error) {
	return newRecordWriter(cfg, store, lock, readingSpec, observe, logger, reg)
}

// NewFeedbackWriter returns a writer of citizen feedback. It never reports
// duplicates: a resent item replaces the state stored before.
func NewFeedbackWriter(cfg BatchConfig, store *chstore.Store, lock Locker, logger *slog.Logger, reg prometheus.Registerer) (*RecordWriter[Feedback], error) {
	return newRecordWriter(cfg, store, lock, feedbackSpec, nil, logger, reg)
}

func newRecordWriter[T any](cfg BatchConfig, store *chstore.Store, lock Locker, spec tableSpec[T], observe func([]T), logger *slog.Logger, reg prometheus.Registerer) (*RecordWriter[T], error) {
	if store == nil || lock == nil {
		return nil, fmt.Errorf("%s writer needs a store and a lock", spec.table)
	}
	w := &RecordWriter[T]{conn: store.Conn(), db: store.Database(), lock: lock, spec: spec, observe: observe}
	w.b = newBatcher(cfg, w.store, logger, newWriterMetrics(reg, spec.table))
	return w, nil
}

// Run flushes batches until ctx ends, then flushes what is queued.
func (w *RecordWriter[T]) Run(ctx context.Context) { w.b.run(ctx) }

// Write stores rows and returns once they are in ClickHouse, with the
// number that were already stored (or repeated within rows).
func (w *RecordWriter[T]) Write(ctx context.Context, rows []T) (duplicates int, err error) {
	return w.b.submit(ctx, rows)
}

func (w *RecordWriter[T]) store(ctx context.Context, rows []T) ([]bool, error) {
	fresh := make([]bool, len(rows))
	var keys []storedKey
	var cand []int
	if w.spec.version != nil {
		cand = latestByID(rows, w.spec)
		for i := range fresh {
			fresh[i] = true // replaced, never a duplicate
		}
	} else {
		seen := make(map[string]bool, len(rows))
		for i, r := range rows {
			k := w.spec.key(r)
			if !seen[k.id] {
				seen[k.id] = true
				cand = append(cand, i)
				keys = append(keys, k)
			}
		}
	}
	unlock, err := w.lock.Lock(ctx, w.db+"."+w.spec.table)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", w.spec.table, err)
	}
	defer unlock()
	var stored map[string]bool
	if w.spec.version == nil {
		if stored, err = storedIDs(ctx, w.conn, w.db, w.spec.table, w.spec.timeCol, keys); err != nil {
			return nil, err
		}
	}
	batch, err := w.conn.PrepareBatch(ctx, "INSERT INTO "+w.db+"."+w.spec.table+" ("+w.spec.columns+")")
	if err != nil {
		return nil, fmt.Errorf("prepare insert into %s: %w", w.spec.table, err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	var added []T
	for _, i := range cand {
		if stored[w.spec.key(rows[i]).id] {
			continue
		}
		if err := batch.Append(w.spec.values(rows[i], now)...); err != nil {
			batch.Abort()
			return nil, fmt.Errorf("append to %s batch: %w", w.spec.table, err)
		}
		fresh[i] = true
		added = append(added, rows[i])
	}
	if len(added) == 0 {
		batch.Abort()
		return fresh, nil
	}
	if err := batch.Send(); err != nil {
		return nil, fmt.Errorf("insert batch into %s: %w", w.spec.table, err)
	}
	if w.observe != nil {
		w.observe(added)
	}
	return fresh, nil
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

// storedIDs returns which of the keys' ids table holds already. A resent
// record carries the same unit and time, so bounding those keeps the lookup
// on the granules of the sort key that can hold it.
func storedIDs(ctx context.Context, conn driver.Conn, db, table, timeCol string, keys []storedKey) (map[string]bool, error) {
	stored := map[string]bool{}
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
			q := `SELECT event_id FROM ` + db + `.` + table + `
				PREWHERE event_id IN ?
				WHERE hierarchy = ? AND area_code IN ? AND ` + timeCol + ` >= ? AND ` + timeCol + ` <= ?`
			qctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_query_size": lookupQuerySize}))
			res, err := conn.Query(qctx, q, chstore.In(ids), h, chstore.In(slices.Collect(maps.Keys(areas))), chstore.Time(lo), chstore.Time(hi))
			if err != nil {
				return nil, fmt.Errorf("look up stored %s: %w", table, err)
			}
			for res.Next() {
				var id string
				if err := res.Scan(&id); err != nil {
					res.Close()
					return nil, fmt.Errorf("look up stored %s: %w", table, err)
				}
				stored[id] = true
			}
			res.Close()
			if err := res.Err(); err != nil {
				return nil, fmt.Errorf("look up stored %s: %w", table, err)
			}
		}
	}
	return stored, nil
}
