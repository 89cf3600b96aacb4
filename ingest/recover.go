package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/rollup"
)

// ReconcilerConfig tunes a Reconciler. Zero fields take the defaults.
type ReconcilerConfig struct {
	// Interval is how often the journal is read for unfinished batches;
	// default 5s. A failure on this node wakes it at once.
	Interval time.Duration
	// Grace is how long a batch begun by another node may stay unfinished
	// before it is taken for abandoned (its node died or lost its lease): at
	// least a flush's timeout and two lease lifetimes; default 30s.
	Grace time.Duration
	// JournalRetention is how long journal entries are kept; default 8 days.
	JournalRetention time.Duration
}

func (c ReconcilerConfig) withDefaults() ReconcilerConfig {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.Grace <= 0 {
		c.Grace = 30 * time.Second
	}
	if c.JournalRetention <= 0 {
		c.JournalRetention = 8 * 24 * time.Hour
	}
	return c
}

// Reconciler finishes the batches that writers began and did not finish:
// for a batch whose raw rows landed, it writes the rollup parts whose
// markers are missing, from the batch's own stored rows, and derives the
// idempotent tables (maxima, latest values, last seen) again. It also
// cancels the markers of finished batches and drops expired partitions of
// the journal and the minute rollups. One node does this at a time, under a
// lease; each node reconciles its own failed batches at once, and any node
// those of a node that died, after Grace.
type Reconciler struct {
	cfg     ReconcilerConfig
	conn    driver.Conn
	db      string
	scope   string // of the reconcile lease: the database, or its shard
	loc     *time.Location
	leases  Leaser
	journal journal
	notify  Notifier
	logger  *slog.Logger
	now     func() time.Time
	m       reconcilerMetrics

	mu   sync.Mutex
	own  map[string]bool // "kind/batch" of this node's unfinished batches
	wake chan struct{}

	lastJanitor, lastRetention time.Time // only Run touches them
}

type reconcilerMetrics struct {
	unfinished prometheus.Gauge
	recovered  *prometheus.CounterVec
	parts      *prometheus.CounterVec
	errors     prometheus.Counter
}

// NewReconciler returns a reconciler of the writers' batches in store.
// notify, if not nil, learns the units whose figures a recovery changed.
func NewReconciler(cfg ReconcilerConfig, store *chstore.Store, leases Leaser, notify Notifier, logger *slog.Logger, reg prometheus.Registerer) (*Reconciler, error) {
	if store == nil || leases == nil || logger == nil {
		return nil, fmt.Errorf("reconciler needs a store, leases and a logger")
	}
	loc, err := time.LoadLocation(store.TimeZone())
	if err != nil {
		return nil, fmt.Errorf("reconciler: time zone %q: %w", store.TimeZone(), err)
	}
	r := &Reconciler{cfg: cfg.withDefaults(), conn: store.Conn(), db: store.Database(), scope: store.Scope(), loc: loc, leases: leases,
		journal: journal{conn: store.Conn(), db: store.Database(), node: node()}, notify: notify, logger: logger, now: time.Now,
		own: map[string]bool{}, wake: make(chan struct{}, 1),
		m: reconcilerMetrics{
			unfinished: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "ioc_ingest_unfinished_batches", Help: "Batches begun and not yet finished, as last read from the journal."}),
			recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_ingest_recovered_batches_total", Help: "Unfinished batches finished by recovery, by kind."}, []string{"kind"}),
			parts: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_ingest_recovered_parts_total", Help: "Rollup parts that had not landed and were written again, by table."}, []string{"table"}),
			errors: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_ingest_recovery_errors_total", Help: "Recovery passes that failed (retried at the next pass)."}),
		}}
	if reg != nil {
		reg.MustRegister(r.m.unfinished, r.m.recovered, r.m.parts, r.m.errors)
	}
	return r, nil
}

// Unfinished notes a batch this node's writer began and could not finish;
// the next pass, which it wakes, recovers it without waiting for Grace.
func (r *Reconciler) Unfinished(kind string, batch uint64) {
	r.mu.Lock()
	r.own[kind+"/"+strconv.FormatUint(batch, 10)] = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run reconciles every Interval, and at once when a writer reports a
// failure, until ctx ends. It also records that this node runs (and, on
// the way out, that it stopped) in ingest_nodes.
func (r *Reconciler) Run(ctx context.Context) error {
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.heartbeat(sctx, false); err != nil {
			r.logger.Warn("could not record that this node stopped writing", "err", err)
		}
	}()
	retry := time.Second
	for {
		err := r.heartbeat(ctx, true)
		if err == nil {
			err = r.pass(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := r.cfg.Interval
		if err != nil {
			r.m.errors.Inc()
			r.logger.Warn("reconcile pass failed; retrying", "retry_in", retry, "err", err)
			wait, retry = retry, min(2*retry, r.cfg.Interval)
		} else {
			retry = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-time.After(wait):
		}
	}
}

// Finish recovers every unfinished batch now, whoever began it, and
// returns how many it finished. Call it when no writer runs (at start,
// before rebuilding rollups, or with ingest stopped).
func (r *Reconciler) Finish(ctx context.Context) (int, error) {
	l, err := r.leases.Acquire(ctx, r.scope+".reconcile")
	if err != nil {
		return 0, fmt.Errorf("take the reconcile lease: %w", err)
	}
	defer l.Release()
	return r.recoverAll(ctx, l, true)
}

// Settle is for a process about to exit after writing batches (an
// import): it finishes this process's own unfinished batches at once and,
// when before is set, waits for every batch begun before it to be finished
// — by its writer, by any node's reconciler, or here once Grace has passed
// since it began (the batch of a process that died, such as an import
// killed before this one) — until ctx ends. Unlike Finish it never takes
// a batch for abandoned early, so nodes may be writing meanwhile.
func (r *Reconciler) Settle(ctx context.Context, before time.Time) error {
	for {
		l, err := r.leases.Acquire(ctx, r.scope+".reconcile")
		if err != nil {
			return fmt.Errorf("take the reconcile lease: %w", err)
		}
		_, err = r.recoverAll(ctx, l, false)
		l.Release()
		if err != nil {
			return err
		}
		if before.IsZero() {
			return nil
		}
		batches, err := r.journal.unfinished(ctx, r.now().Add(-r.cfg.JournalRetention))
		if err != nil {
			return err
		}
		var left []batchRef
		for _, b := range batches {
			if b.createdAt.Before(before) {
				left = append(left, b)
			}
		}
		if len(left) == 0 {
			return nil
		}
		// The oldest is taken for abandoned first.
		wait := max(time.Second, left[0].createdAt.Add(r.cfg.Grace).Sub(r.now()))
		wait = min(wait, r.cfg.Interval)
		r.logger.Info("waiting for batches begun before to be finished", "batches", len(left), "oldest", left[0].createdAt, "retry_in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d batches begun before %s are not finished yet (the first: %s batch %d): %w",
				len(left), before.UTC().Format(time.RFC3339), left[0].kind, left[0].id, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// heartbeat records whether this node runs its writers.
func (r *Reconciler) heartbeat(ctx context.Context, running bool) error {
	b, err := r.conn.PrepareBatch(ctx, "INSERT INTO "+r.db+".ingest_nodes (node, running, seen)")
	if err != nil {
		return fmt.Errorf("record this node in ingest_nodes: %w", err)
	}
	if err := b.Append(r.journal.node, b2u(running), r.now().UTC()); err != nil {
		b.Abort()
		return fmt.Errorf("record this node in ingest_nodes: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record this node in ingest_nodes: %w", err)
	}
	return nil
}

// RunningNodes lists the nodes that said they run within the last since
// and have not said they stopped (within one second, stopping wins).
func RunningNodes(ctx context.Context, store *chstore.Store, since time.Duration) ([]string, error) {
	rows, err := store.Conn().Query(ctx, `SELECT node FROM (
		SELECT node, argMax(running, (seen, 1 - running)) AS is_running, max(seen) AS last_seen FROM `+store.Database()+`.ingest_nodes GROUP BY node
	) WHERE is_running = 1 AND last_seen >= ?`, chstore.Time(time.Now().Add(-since)))
	if err != nil {
		return nil, fmt.Errorf("read ingest_nodes: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("read ingest_nodes: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// pass does one round of work under the reconcile lease; when another node
// holds it, that node does the round instead.
func (r *Reconciler) pass(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	l, err := r.leases.Acquire(lctx, r.scope+".reconcile")
	cancel()
	if err != nil {
		if ctx.Err() == nil && lctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("take the reconcile lease: %w", err)
	}
	defer l.Release()
	if _, err := r.recoverAll(ctx, l, false); err != nil {
		return err
	}
	now := r.now()
	if now.Sub(r.lastJanitor) >= time.Minute {
		if err := r.cancelMarkers(ctx, now); err != nil {
			return err
		}
		r.lastJanitor = now
	}
	if now.Sub(r.lastRetention) >= time.Hour {
		if err := r.dropExpired(ctx, now); err != nil {
			return err
		}
		r.lastRetention = now
	}
	return nil
}

// recoverAll finishes the unfinished batches: this node's own at once,
// others' once Grace has passed (or all of them, when all is set).
func (r *Reconciler) recoverAll(ctx context.Context, l interface{ Held() bool }, all bool) (int, error) {
	now := r.now()
	batches, err := r.journal.unfinished(ctx, now.Add(-r.cfg.JournalRetention))
	if err != nil {
		return 0, err
	}
	r.m.unfinished.Set(float64(len(batches)))
	done := 0
	for _, b := range batches {
		key := b.kind + "/" + strconv.FormatUint(b.id, 10)
		r.mu.Lock()
		own := r.own[key]
		r.mu.Unlock()
		if !all && !own && now.Sub(b.createdAt) < r.cfg.Grace {
			continue // its writer may still be at work
		}
		if !l.Held() {
			return done, fmt.Errorf("lost the reconcile lease")
		}
		if err := r.recoverBatch(ctx, b); err != nil {
			return done, err
		}
		r.mu.Lock()
		delete(r.own, key)
		r.mu.Unlock()
		done++
	}
	return done, nil
}

// recoverers read a batch's stored rows back into rollup rows, and list
// the statements that derive its idempotent tables again.
var recoverers = map[string]struct {
	f        family
	read     func(ctx context.Context, r *Reconciler, b batchRef) ([]rollupRows, error)
	rederive []string // INSERT … SELECT over the batch's raw rows: batch_id = ?, time >= ?, time <= ?
}{
	dossierFamily.kind: {f: dossierFamily, read: readDossierBatch},
	cameraFamily.kind: {f: cameraFamily, read: readRecordBatch(cameraSpec), rederive: []string{
		`INSERT INTO {db}.device_last_seen (device_id, seen)
		SELECT camera_id, max(occurred_at) FROM {db}.camera_events
		WHERE batch_id = ? AND occurred_at >= ? AND occurred_at <= ? GROUP BY camera_id`,
	}},
	readingFamily.kind: {f: readingFamily, read: readRecordBatch(readingSpec), rederive: []string{
		`INSERT INTO {db}.device_last_seen (device_id, seen)
		SELECT sensor_id, max(observed_at) FROM {db}.sensor_readings
		WHERE batch_id = ? AND observed_at >= ? AND observed_at <= ? GROUP BY sensor_id`,
		`INSERT INTO {db}.sensor_latest (sensor_id, kind, value, observed)
		SELECT sensor_id, kind, argMaxState(value, observed_at), maxState(observed_at) FROM {db}.sensor_readings
		WHERE batch_id = ? AND observed_at >= ? AND observed_at <= ? GROUP BY sensor_id, kind`,
		`INSERT INTO {db}.sensor_max_minute (hierarchy, area_code, t, kind, value_max)
		SELECT hierarchy, area_code, toStartOfMinute(observed_at) AS t, kind, maxState(value) FROM {db}.sensor_readings
		WHERE batch_id = ? AND observed_at >= ? AND observed_at <= ? GROUP BY hierarchy, area_code, t, kind`,
		`INSERT INTO {db}.sensor_max_hour (hierarchy, area_code, t, kind, value_max)
		SELECT hierarchy, area_code, toStartOfHour(observed_at) AS t, kind, maxState(value) FROM {db}.sensor_readings
		WHERE batch_id = ? AND observed_at >= ? AND observed_at <= ? GROUP BY hierarchy, area_code, t, kind`,
	}},
}

// recoverBatch finishes one batch: whatever of its rollups did not land is
// written from the rows that did.
func (r *Reconciler) recoverBatch(ctx context.Context, b batchRef) error {
	rc, ok := recoverers[b.kind]
	if !ok {
		return fmt.Errorf("journal names batch %d of unknown kind %q", b.id, b.kind)
	}
	// What the batch stored is judged once none of its inserts runs.
	if err := settle(ctx, r.conn, r.db, b.id, r.cfg.Grace, r.logger); err != nil {
		return fmt.Errorf("recover %s batch %d: %w", b.kind, b.id, err)
	}
	rows, err := rc.read(ctx, r, b)
	if err != nil {
		return err
	}
	wrote := 0
	// What this recovery wrote, per table, for the live figures; tables it
	// did not write (nil) count as failed writes.
	written := make([]error, len(rc.f.specs))
	only := make([]map[time.Time]bool, len(rc.f.specs))
	for i, s := range rc.f.specs {
		written[i] = errNotWritten
		need := s.groupsOf(rows[i])
		if len(need) == 0 {
			continue
		}
		landed, err := landedGroups(ctx, r.conn, r.db, s, b.id)
		if err != nil {
			return err
		}
		missing := map[time.Time]bool{}
		for g := range need {
			if !landed[g] {
				missing[g] = true
			}
		}
		if len(missing) == 0 {
			continue
		}
		if err := writeRollup(ctx, r.conn, r.db, s, time.Time{}, rollupPart{batch: b.id, rows: rows[i], only: missing}); err != nil {
			return fmt.Errorf("recover %s batch %d: %w", b.kind, b.id, err)
		}
		written[i], only[i] = nil, missing
		r.m.parts.WithLabelValues(s.table).Add(float64(len(missing)))
		wrote += len(missing)
	}
	if len(rows) > 0 && len(rows[0]) > 0 {
		for _, stmt := range rc.rederive {
			q := strings.ReplaceAll(stmt, "{db}", r.db)
			if err := r.conn.Exec(ctx, q, b.id, chstore.Time(b.tMin), chstore.Time(b.tMax)); err != nil {
				return fmt.Errorf("recover %s batch %d: derive again: %w", b.kind, b.id, err)
			}
		}
	}
	if err := r.journal.write(ctx, batchRecovered, b); err != nil {
		return err
	}
	r.m.recovered.WithLabelValues(b.kind).Inc()
	r.logger.Info("finished an unfinished batch", "kind", b.kind, "batch", b.id, "parts_written", wrote,
		"stored", len(rows) > 0 && len(rows[0]) > 0)
	if r.notify != nil && wrote > 0 {
		if d := liveDelta(rc.f, b, rows, written, only, r.now()); len(d.Tables) > 0 {
			r.notify.Added(d)
		}
	}
	return nil
}

// errNotWritten marks a rollup a recovery did not write: nothing of it was
// missing.
var errNotWritten = errors.New("not written by the recovery")

// readDossierBatch reads the changes of a dossier batch's stored rows: they
// share the batch's ingested_at, which prunes the table to one partition.
func readDossierBatch(ctx context.Context, r *Reconciler, b batchRef) ([]rollupRows, error) {
	out := make([]rollupRows, len(dossierFamily.specs))
	for i := range out {
		out[i] = rollupRows{}
	}
	rows, err := r.conn.Query(ctx, "SELECT hierarchy, "+strings.Join(deltaColumns, ", ")+" FROM "+r.db+"."+dossierFamily.raw+
		" WHERE ingested_at = ? AND batch_id = ?", chstore.Time(b.createdAt), b.id)
	if err != nil {
		return nil, fmt.Errorf("read dossier batch %d: %w", b.id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		d := newDeltaTargets()
		if err := rows.Scan(append([]any{&h}, d.targets()...)...); err != nil {
			return nil, fmt.Errorf("read dossier batch %d: %w", b.id, err)
		}
		addContributions(out, r.loc, h, d.contributions())
	}
	return out, rows.Err()
}

// readRecordBatch reads the stored rows of a camera or reading batch,
// bounded by the batch's times.
func readRecordBatch[T any](spec tableSpec[T]) func(ctx context.Context, r *Reconciler, b batchRef) ([]rollupRows, error) {
	return func(ctx context.Context, r *Reconciler, b batchRef) ([]rollupRows, error) {
		rows, err := r.conn.Query(ctx, "SELECT "+spec.stored+" FROM "+r.db+"."+spec.table+
			" WHERE "+spec.timeCol+" >= ? AND "+spec.timeCol+" <= ? AND batch_id = ?", chstore.Time(b.tMin), chstore.Time(b.tMax), b.id)
		if err != nil {
			return nil, fmt.Errorf("read %s batch %d: %w", spec.table, b.id, err)
		}
		defer rows.Close()
		var got []T
		for rows.Next() {
			v, err := spec.scan(rows.Scan)
			if err != nil {
				return nil, fmt.Errorf("read %s batch %d: %w", spec.table, b.id, err)
			}
			got = append(got, v)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read %s batch %d: %w", spec.table, b.id, err)
		}
		if len(got) == 0 {
			return make([]rollupRows, len(spec.family.specs)), nil
		}
		return spec.rollups(got), nil
	}
}

// cancelMarkers removes the markers of batches finished and begun more than
// rollup.MarkerLife ago: a row of the opposite sign folds each away when parts merge. The
// insert counts what is left, so running it twice cancels nothing twice.
func (r *Reconciler) cancelMarkers(ctx context.Context, now time.Time) error {
	for _, kind := range Families() {
		f := recoverers[kind].f
		for _, s := range f.specs {
			cols := s.columns()
			key := append([]string{"hierarchy", "area_code", s.bucket}, s.dims...)
			var neg []string
			for _, c := range append(append([]string{}, s.ints...), s.floats...) {
				neg = append(neg, "-sum("+c+")")
			}
			q := "INSERT INTO " + r.db + "." + s.table + " (" + strings.Join(cols, ", ") + ") " +
				"SELECT " + strings.Join(key, ", ") + ", " + strings.Join(neg, ", ") + " FROM " + r.db + "." + s.table +
				" WHERE hierarchy = ? AND area_code IN (SELECT toString(batch_id) FROM " + r.db + ".ingest_journal" +
				" WHERE kind = ? AND created_at >= ? AND created_at < ? GROUP BY batch_id HAVING max(state) >= ?)" +
				" GROUP BY " + strings.Join(key, ", ") + " HAVING sum(" + s.ints[0] + ") != 0"
			if err := r.conn.Exec(ctx, q, markerHierarchy, kind, chstore.Time(now.Add(-r.cfg.JournalRetention)),
				chstore.Time(now.Add(-rollup.MarkerLife)), batchDone); err != nil {
				return fmt.Errorf("cancel the markers of finished batches in %s: %w", s.table, err)
			}
		}
	}
	return nil
}

// dropExpired drops the journal's days past retention and the minute
// rollups' days past MinuteRetention (ClickHouse 18.16 has no TTL).
func (r *Reconciler) dropExpired(ctx context.Context, now time.Time) error {
	drop := func(table string, before time.Time) error {
		rows, err := r.conn.Query(ctx, `SELECT DISTINCT partition FROM system.parts
			WHERE database = ? AND table = ? AND active`, r.db, table)
		if err != nil {
			return fmt.Errorf("list the partitions of %s: %w", table, err)
		}
		var parts []string
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return fmt.Errorf("list the partitions of %s: %w", table, err)
			}
			parts = append(parts, p)
		}
		rows.Close()
		sort.Strings(parts)
		cut, _ := strconv.Atoi(before.UTC().Format("20060102"))
		for _, p := range parts {
			day, err := strconv.Atoi(p)
			if err != nil || day >= cut {
				continue
			}
			if err := r.conn.Exec(ctx, "ALTER TABLE "+r.db+"."+table+" DROP PARTITION "+strconv.Itoa(day)); err != nil {
				return fmt.Errorf("drop partition %d of %s: %w", day, table, err)
			}
		}
		return nil
	}
	if err := drop("ingest_journal", now.Add(-r.cfg.JournalRetention)); err != nil {
		return err
	}
	for _, t := range MinuteTables() {
		if err := drop(t, now.Add(-MinuteRetention)); err != nil {
			return err
		}
	}
	return nil
}
