package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/internal/chstore"
)

// Difference is a rollup cell whose stored figure differs from what the
// distinct stored records give.
type Difference struct {
	Table     string    `json:"table"`
	Hierarchy string    `json:"hierarchy"`
	Area      string    `json:"area"`
	Bucket    time.Time `json:"bucket"`
	Dims      []string  `json:"dims,omitempty"`
	Measure   string    `json:"measure"`
	Stored    float64   `json:"stored"`
	Expected  float64   `json:"expected"`
}

// TableCheck is what a check found in one rollup.
type TableCheck struct {
	Table       string       `json:"table"`
	Cells       int          `json:"cells"` // cells compared
	Differences []Difference `json:"differences"`
	Repaired    int          `json:"repaired"` // cells corrected
	// Unrepairable are differences a correction cannot fix: a stored
	// maximum above every stored reading.
	Unrepairable int `json:"unrepairable,omitempty"`
}

// VerifyOptions say what to check.
type VerifyOptions struct {
	// From and To bound the buckets checked, [From, To); zero From means
	// the beginning, zero To now.
	From, To time.Time
	// Repair corrects the differences found.
	Repair bool
}

// Verifier checks every rollup the writers keep against the distinct
// stored records, and repairs them.
type Verifier struct {
	conn  driver.Conn
	db    string
	scope string // of the verify lease: the database, or its shard
	zone  string
	loc   *time.Location
	now   func() time.Time
}

// NewVerifier returns a verifier of the rollups in store.
func NewVerifier(store *chstore.Store) (*Verifier, error) {
	loc, err := time.LoadLocation(store.TimeZone())
	if err != nil {
		return nil, fmt.Errorf("verifier: time zone %q: %w", store.TimeZone(), err)
	}
	return &Verifier{conn: store.Conn(), db: store.Database(), scope: store.Scope(), zone: store.TimeZone(), loc: loc, now: time.Now}, nil
}

// truth is the SQL that derives a rollup from the raw records, each record
// once (FINAL folds copies of a row), over buckets in [?, ?]: its columns
// are the spec's key then its measures.
func (v *Verifier) truth(f family, s rollupSpec) string {
	b := s.cut.sql
	switch f.kind {
	case dossierFamily.kind:
		return flowTruth(v.db, v.zone, dossier.Table[:], s)
	case cameraFamily.kind:
		bt := b("occurred_at", v.zone)
		return "SELECT hierarchy, area_code, " + bt + " AS x_b, type, toString(severity) AS sev, toInt64(count())" +
			" FROM " + v.db + "." + f.raw + " FINAL WHERE type != '" + device.HeartbeatType + "' AND " + bt + " >= ? AND " + bt + " <= ?" +
			" GROUP BY hierarchy, area_code, x_b, type, sev"
	}
	bt := b("observed_at", v.zone)
	return "SELECT hierarchy, area_code, " + bt + " AS x_b, kind, toInt64(count()), sum(value)" +
		" FROM " + v.db + "." + f.raw + " FINAL WHERE " + bt + " >= ? AND " + bt + " <= ?" +
		" GROUP BY hierarchy, area_code, x_b, kind"
}

// flowTruth is truth for a dossier flow rollup of a measure table: the
// changes stored with the events, summed by the rollup's key.
func flowTruth(db, zone string, table []dossier.Measure, s rollupSpec) string {
	var dims, sums, join []string
	join = []string{"`delta.t` AS x_t", "`delta.area_code` AS x_area_code"}
	if len(s.dims) > 0 {
		join = append(join, "`delta.sector` AS x_sector", "`delta.procedure_code` AS x_procedure_code",
			"`delta.channel` AS x_channel", "`delta.online_level` AS x_online_level")
		dims = []string{"x_sector", "x_procedure_code", "x_channel", "x_online_level"}
	}
	for _, m := range table {
		join = append(join, "`delta."+m.Column+"` AS x_"+m.Column)
		sums = append(sums, "sum(x_"+m.Column+")")
	}
	key := append([]string{"hierarchy", "x_area_code", "x_b"}, dims...)
	return "SELECT hierarchy, x_area_code, " + s.cut.sql("x_t", zone) + " AS x_b" + prefixComma(dims) + ", " + strings.Join(sums, ", ") +
		" FROM (SELECT hierarchy, " + strings.Join(deltaColumnsOf(table), ", ") + " FROM " + db + "." + dossierFamily.raw + " FINAL)" +
		" ARRAY JOIN " + strings.Join(join, ", ") +
		" WHERE x_b >= ? AND x_b <= ?" +
		" GROUP BY " + strings.Join(key, ", ")
}

func prefixComma(cols []string) string {
	if len(cols) == 0 {
		return ""
	}
	return ", " + strings.Join(cols, ", ")
}

// stored is the SQL that sums a rollup as stored, markers left out.
func (v *Verifier) stored(s rollupSpec) string {
	key := []string{"hierarchy", "area_code", s.bucket}
	for _, d := range s.dims {
		if d == "severity" {
			d = "toString(severity)"
		}
		key = append(key, d)
	}
	var sums []string
	for _, c := range s.ints {
		sums = append(sums, "sum("+c+")")
	}
	for _, c := range s.floats {
		sums = append(sums, "sum("+c+")")
	}
	return "SELECT " + strings.Join(key, ", ") + ", " + strings.Join(sums, ", ") + " FROM " + v.db + "." + s.table +
		" WHERE hierarchy != ? AND " + s.bucket + " >= ? AND " + s.bucket + " <= ?" +
		" GROUP BY " + strings.Join(key, ", ")
}

// read runs a query whose rows are a spec's key then its measures.
func (v *Verifier) read(ctx context.Context, s rollupSpec, q string, args ...any) (rollupRows, error) {
	rows, err := v.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.table, err)
	}
	defer rows.Close()
	out := rollupRows{}
	for rows.Next() {
		var k rollupKey
		dims := make([]string, len(s.dims))
		ints := make([]int64, len(s.ints))
		floats := make([]float64, len(s.floats))
		targets := []any{&k.hierarchy, &k.area, &k.bucket}
		for i := range dims {
			targets = append(targets, &dims[i])
		}
		for i := range ints {
			targets = append(targets, &ints[i])
		}
		for i := range floats {
			targets = append(targets, &floats[i])
		}
		if err := rows.Scan(targets...); err != nil {
			return nil, fmt.Errorf("read %s: %w", s.table, err)
		}
		k.bucket = time.Date(k.bucket.Year(), k.bucket.Month(), k.bucket.Day(), k.bucket.Hour(), k.bucket.Minute(), 0, 0, time.UTC)
		copy(k.dims[:], dims)
		out.add(s, k, ints, floats)
	}
	return out, rows.Err()
}

// bounds are the first and last buckets of s in [from, to).
func (v *Verifier) bounds(s rollupSpec, from, to time.Time) (lo, hi time.Time) {
	now := v.now()
	if to.IsZero() || to.After(now.Add(366*24*time.Hour)) {
		// Contributions are stamped ahead of time (the moment a dossier
		// will turn late): the check reaches a year ahead.
		to = now.Add(366 * 24 * time.Hour)
	}
	if s.retention > 0 {
		// The oldest day kept may be partly dropped already.
		keep := now.Add(-s.retention + 24*time.Hour)
		if from.Before(keep) {
			from = keep
		}
	}
	if from.IsZero() {
		from = time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)
	}
	return s.cut.at(from, v.loc), s.cut.at(to.Add(-time.Second), v.loc)
}

// Check compares every rollup with the records, and repairs what differs
// when asked. A repair must run while no batch is being written: hold every
// writer's lease (see Verify in package doc), after finishing unfinished
// batches.
func (v *Verifier) Check(ctx context.Context, opts VerifyOptions) ([]TableCheck, error) {
	var out []TableCheck
	for _, f := range []family{dossierFamily, cameraFamily, readingFamily} {
		for _, s := range f.specs {
			lo, hi := v.bounds(s, opts.From, opts.To)
			if hi.Before(lo) {
				continue
			}
			want, err := v.read(ctx, s, v.truth(f, s), s.bind(lo), s.bind(hi))
			if err != nil {
				return out, err
			}
			have, err := v.read(ctx, s, v.stored(s), markerHierarchy, s.bind(lo), s.bind(hi))
			if err != nil {
				return out, err
			}
			tc := TableCheck{Table: s.table}
			fix := rollupRows{}
			for _, k := range union(want, have) {
				tc.Cells++
				w, h := want[k], have[k]
				if w == nil {
					w = &measures{ints: make([]int64, len(s.ints)), floats: make([]float64, len(s.floats))}
				}
				if h == nil {
					h = &measures{ints: make([]int64, len(s.ints)), floats: make([]float64, len(s.floats))}
				}
				d := measures{ints: make([]int64, len(s.ints)), floats: make([]float64, len(s.floats))}
				differs := false
				for i, c := range s.ints {
					if d.ints[i] = w.ints[i] - h.ints[i]; d.ints[i] != 0 {
						differs = true
						tc.Differences = append(tc.Differences, diffOf(s, k, c, float64(h.ints[i]), float64(w.ints[i])))
					}
				}
				for i, c := range s.floats {
					if d.floats[i] = w.floats[i] - h.floats[i]; !closeEnough(w.floats[i], h.floats[i]) {
						differs = true
						tc.Differences = append(tc.Differences, diffOf(s, k, c, h.floats[i], w.floats[i]))
					}
				}
				if differs {
					fix[k] = &d
				}
			}
			if opts.Repair && len(fix) > 0 {
				if err := insertRows(ctx, v.conn, v.db, s, fix); err != nil {
					return out, err
				}
				tc.Repaired = len(fix)
			}
			out = append(out, tc)
		}
	}
	maxima, err := v.checkMaxima(ctx, opts)
	return append(out, maxima...), err
}

// checkMaxima compares the sensor maxima with the readings. A missing or
// lower maximum is derived again (taking a maximum twice changes nothing);
// a higher one cannot be lowered by an insert and is reported.
func (v *Verifier) checkMaxima(ctx context.Context, opts VerifyOptions) ([]TableCheck, error) {
	var out []TableCheck
	for _, m := range []struct {
		table string
		cut   cut
	}{{"sensor_max_minute", byMinute}, {"sensor_max_hour", byHour}} {
		s := rollupSpec{table: m.table, bucket: "t", cut: m.cut, dims: []string{"kind"}, floats: []string{"value_max"}}
		if m.cut == byMinute {
			s.retention = MinuteRetention
		}
		lo, hi := v.bounds(s, opts.From, opts.To)
		bt := m.cut.sql("observed_at", v.zone)
		want, err := v.read(ctx, s, "SELECT hierarchy, area_code, "+bt+" AS x_b, kind, max(value) FROM "+v.db+".sensor_readings FINAL"+
			" WHERE "+bt+" >= ? AND "+bt+" <= ? GROUP BY hierarchy, area_code, x_b, kind", s.bind(lo), s.bind(hi))
		if err != nil {
			return out, err
		}
		have, err := v.read(ctx, s, "SELECT hierarchy, area_code, t, kind, maxMerge(value_max) FROM "+v.db+"."+m.table+
			" WHERE hierarchy != ? AND t >= ? AND t <= ? GROUP BY hierarchy, area_code, t, kind", markerHierarchy, s.bind(lo), s.bind(hi))
		if err != nil {
			return out, err
		}
		tc := TableCheck{Table: m.table}
		low := false
		for _, k := range union(want, have) {
			tc.Cells++
			w, h := want[k], have[k]
			switch {
			case w != nil && h != nil && w.floats[0] == h.floats[0]:
				continue
			case w == nil:
				tc.Differences = append(tc.Differences, diffOf(s, k, "value_max", h.floats[0], math.NaN()))
				tc.Unrepairable++
			case h == nil || h.floats[0] < w.floats[0]:
				stored := math.NaN()
				if h != nil {
					stored = h.floats[0]
				}
				tc.Differences = append(tc.Differences, diffOf(s, k, "value_max", stored, w.floats[0]))
				tc.Repaired++
				low = true
			default:
				tc.Differences = append(tc.Differences, diffOf(s, k, "value_max", h.floats[0], w.floats[0]))
				tc.Unrepairable++
			}
		}
		if opts.Repair && low {
			q := "INSERT INTO " + v.db + "." + m.table + " (hierarchy, area_code, t, kind, value_max)" +
				" SELECT hierarchy, area_code, " + bt + " AS x_b, kind, maxState(value) FROM " + v.db + ".sensor_readings FINAL" +
				" WHERE " + bt + " >= ? AND " + bt + " <= ? GROUP BY hierarchy, area_code, x_b, kind"
			if err := v.conn.Exec(ctx, q, s.bind(lo), s.bind(hi)); err != nil {
				return out, fmt.Errorf("derive %s again: %w", m.table, err)
			}
		} else {
			tc.Repaired = 0
		}
		out = append(out, tc)
	}
	return out, nil
}

// closeEnough says whether two sums of floats agree: corrections and merges add
// in different orders, which moves the last bits.
func closeEnough(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func diffOf(s rollupSpec, k rollupKey, measure string, stored, expected float64) Difference {
	d := Difference{Table: s.table, Hierarchy: k.hierarchy, Area: k.area, Bucket: k.bucket, Measure: measure,
		Stored: stored, Expected: expected}
	if len(s.dims) > 0 {
		d.Dims = slices.Clone(k.dims[:len(s.dims)])
	}
	return d
}

// union lists the keys of both, sorted.
func union(a, b rollupRows) []rollupKey {
	all := rollupRows{}
	for k, m := range a {
		all[k] = m
	}
	for k, m := range b {
		all[k] = m
	}
	return all.sorted()
}

// insertRows writes rows into s's table, without markers: corrections and
// rebuilt rollups belong to no batch.
func insertRows(ctx context.Context, conn driver.Conn, db string, s rollupSpec, rows rollupRows) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+"."+s.table+" ("+strings.Join(s.columns(), ", ")+")")
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", s.table, err)
	}
	for _, k := range rows.sorted() {
		if err := b.Append(s.rowValues(k, *rows[k])...); err != nil {
			b.Abort()
			return fmt.Errorf("append to %s batch: %w", s.table, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into %s: %w", s.table, err)
	}
	return nil
}

// Rebuild cuts the local day and month rollups again from the records,
// after IOC_TIMEZONE changed. Run it with no writer running, after Finish:
// it replaces the tables' whole content.
func (v *Verifier) Rebuild(ctx context.Context) error {
	for _, s := range dossierFamily.specs {
		if !s.cut.date() {
			continue
		}
		if err := v.conn.Exec(ctx, "TRUNCATE TABLE "+v.db+"."+s.table); err != nil {
			return fmt.Errorf("empty %s before cutting it again: %w", s.table, err)
		}
		lo, hi := v.bounds(s, time.Time{}, time.Time{})
		q := "INSERT INTO " + v.db + "." + s.table + " (" + strings.Join(s.columns(), ", ") + ") " + v.truth(dossierFamily, s)
		if err := v.conn.Exec(ctx, q, s.bind(lo), s.bind(hi)); err != nil {
			return fmt.Errorf("cut %s again in %s: %w", s.table, v.zone, err)
		}
	}
	return nil
}

// CheckerConfig tunes a Checker. Zero fields take the defaults.
type CheckerConfig struct {
	// Interval is how often the rollups are checked; default 1h. Negative
	// turns the check off.
	Interval time.Duration
	// Window is how far back a check reaches; default 48h.
	Window time.Duration
	// Settle leaves out the newest buckets, which live ingest is still
	// writing; default 10m.
	Settle time.Duration
	// Confirm is how long a difference must last to be reported: a batch
	// written between the check's two reads shows for a moment. Default 30s.
	Confirm time.Duration
}

func (c CheckerConfig) withDefaults() CheckerConfig {
	if c.Interval == 0 {
		c.Interval = time.Hour
	}
	if c.Window <= 0 {
		c.Window = 48 * time.Hour
	}
	if c.Settle <= 0 {
		c.Settle = 10 * time.Minute
	}
	if c.Confirm <= 0 {
		c.Confirm = 30 * time.Second
	}
	return c
}

// Checker checks the recent rollups against the records in the background
// (one node at a time, under a lease) and reports what differs as a metric
// and in the log; `iocd verify --repair` corrects it.
type Checker struct {
	cfg    CheckerConfig
	v      *Verifier
	leases Leaser
	logger *slog.Logger
	diffs  *prometheus.GaugeVec
	runs   *prometheus.CounterVec
}

// NewChecker returns a background checker of store's rollups.
func NewChecker(cfg CheckerConfig, store *chstore.Store, leases Leaser, logger *slog.Logger, reg prometheus.Registerer) (*Checker, error) {
	v, err := NewVerifier(store)
	if err != nil {
		return nil, err
	}
	c := &Checker{cfg: cfg.withDefaults(), v: v, leases: leases, logger: logger,
		diffs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ioc_verify_differences", Help: "Rollup cells that differed from the stored records in the last background check, by table."}, []string{"table"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_verify_runs_total", Help: "Background checks of the rollups, by result (exact, differences, failed)."}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(c.diffs, c.runs)
	}
	return c, nil
}

// Run checks every Interval until ctx ends.
func (c *Checker) Run(ctx context.Context) error {
	if c.cfg.Interval < 0 {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.cfg.Interval):
		}
		if err := c.checkOnce(ctx); err != nil && ctx.Err() == nil {
			c.runs.WithLabelValues("failed").Inc()
			c.logger.Warn("background check of the rollups failed", "err", err)
		}
	}
}

func (c *Checker) checkOnce(ctx context.Context) error {
	l, err := c.leases.Acquire(ctx, c.v.scope+".verify")
	if err != nil {
		return fmt.Errorf("take the verify lease: %w", err)
	}
	defer l.Release()
	now := c.v.now()
	opts := VerifyOptions{From: now.Add(-c.cfg.Window), To: now.Add(-c.cfg.Settle)}
	first, err := c.v.Check(ctx, opts)
	if err != nil {
		return err
	}
	if countDiffs(first) > 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.cfg.Confirm):
		}
		second, err := c.v.Check(ctx, opts)
		if err != nil {
			return err
		}
		first = Persistent(first, second)
	}
	for _, tc := range first {
		c.diffs.WithLabelValues(tc.Table).Set(float64(len(tc.Differences)))
		for i, d := range tc.Differences {
			if i == 3 {
				break
			}
			c.logger.Warn("a figure differs from the stored records; run iocd verify --repair", "table", d.Table,
				"hierarchy", d.Hierarchy, "area", d.Area, "bucket", d.Bucket, "measure", d.Measure, "stored", d.Stored, "records", d.Expected)
		}
	}
	if countDiffs(first) > 0 {
		c.runs.WithLabelValues("differences").Inc()
	} else {
		c.runs.WithLabelValues("exact").Inc()
	}
	return nil
}

func countDiffs(checks []TableCheck) int {
	n := 0
	for _, c := range checks {
		n += len(c.Differences)
	}
	return n
}

// Persistent keeps of later the differences that first found too: a cell
// that differed only once was being written.
func Persistent(first, later []TableCheck) []TableCheck {
	type cell struct {
		table, hierarchy, area, measure, dims string
		bucket                                time.Time
	}
	key := func(d Difference) cell {
		return cell{d.Table, d.Hierarchy, d.Area, d.Measure, strings.Join(d.Dims, "\x00"), d.Bucket}
	}
	seen := map[cell]bool{}
	for _, tc := range first {
		for _, d := range tc.Differences {
			seen[key(d)] = true
		}
	}
	out := make([]TableCheck, len(later))
	for i, tc := range later {
		out[i] = tc
		out[i].Differences = nil
		for _, d := range tc.Differences {
			if seen[key(d)] {
				out[i].Differences = append(out[i].Differences, d)
			}
		}
	}
	return out
}
