package ingest

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/rollup"
)

// markerHierarchy is the hierarchy of marker rows. Every reader of a rollup
// names the hierarchy it reads, so markers never count in a figure.
const markerHierarchy = rollup.MarkerHierarchy

// rollupSpec is a summing rollup that the writers keep: its table, key and
// measures, and how a bucket is cut.
type rollupSpec struct {
	table string
	// bucket is the time column: t (a DateTime bucket in UTC), d (a local
	// Date) or m (the first day of a local month, a Date).
	bucket string
	cut    cut
	// dims are the columns of the key after the bucket; markerDims are the
	// values a marker row gives them (an Enum8 column needs a valid one).
	dims       []string
	markerDims []string
	ints       []string // Int64 measures
	floats     []string // Float64 measures
	// retention, when set, is how long the table keeps rows: older days
	// are dropped, so a check does not reach there.
	retention time.Duration
}

// cut is how a rollup buckets a time.
type cut int

const (
	byMinute cut = iota + 1
	byHour
	byLocalDay
	byLocalMonth
)

// at returns the bucket of t: a time in UTC for minutes and hours; for
// local days and months the local date as midnight UTC, which is how a
// Date column is bound.
func (c cut) at(t time.Time, loc *time.Location) time.Time {
	switch c {
	case byMinute:
		return t.UTC().Truncate(time.Minute)
	case byHour:
		return t.UTC().Truncate(time.Hour)
	}
	l := t.In(loc)
	d := l.Day()
	if c == byLocalMonth {
		d = 1
	}
	return time.Date(l.Year(), l.Month(), d, 0, 0, 0, 0, time.UTC)
}

// sql is the same cut in ClickHouse, over a DateTime expression x; tz is
// bound as a literal from an allow-listed zone name.
func (c cut) sql(x, tz string) string {
	switch c {
	case byMinute:
		return "toStartOfMinute(" + x + ")"
	case byHour:
		return "toStartOfHour(" + x + ")"
	case byLocalDay:
		return "toDate(" + x + ", '" + tz + "')"
	}
	return "toStartOfMonth(toDate(" + x + ", '" + tz + "'))"
}

// date says whether the bucket column is a Date.
func (c cut) date() bool { return c == byLocalDay || c == byLocalMonth }

// group is the marker group of a bucket: the UTC day of a DateTime bucket,
// the bucket itself for a Date. A group never spans two partitions of any
// rollup (they are cut by day, month or year), so the rows of one group in
// one insert always land in one part, with their marker.
func (s rollupSpec) group(bucket time.Time) time.Time {
	if s.cut.date() {
		return bucket
	}
	return rollup.Group(bucket)
}

// columns is the INSERT column list, in the order rows are appended.
func (s rollupSpec) columns() []string {
	out := append([]string{"hierarchy", "area_code", s.bucket}, s.dims...)
	out = append(out, s.ints...)
	return append(out, s.floats...)
}

// kept says which rows a table keeps at now: in a table with a
// retention, those of the days dropExpired does not drop (it drops the UTC
// days before now - retention); nil when it keeps all, or now is zero.
func (s rollupSpec) kept(now time.Time) func(rollupKey) bool {
	if s.retention <= 0 || now.IsZero() {
		return nil
	}
	y, m, d := now.Add(-s.retention).UTC().Date()
	first := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return func(k rollupKey) bool { return !k.bucket.Before(first) }
}

// rollupKey is one row of a rollup.
type rollupKey struct {
	hierarchy string
	area      string
	bucket    time.Time
	dims      [4]string
}

// measures are a row's values, in the spec's ints then floats.
type measures struct {
	ints   []int64
	floats []float64
}

func (m measures) zero() bool {
	for _, v := range m.ints {
		if v != 0 {
			return false
		}
	}
	for _, v := range m.floats {
		if v != 0 {
			return false
		}
	}
	return true
}

// rollupRows are the summed rows of one rollup.
type rollupRows map[rollupKey]*measures

func (r rollupRows) add(s rollupSpec, k rollupKey, ints []int64, floats []float64) {
	m := r[k]
	if m == nil {
		m = &measures{ints: make([]int64, len(s.ints)), floats: make([]float64, len(s.floats))}
		r[k] = m
	}
	for i, v := range ints {
		m.ints[i] += v
	}
	for i, v := range floats {
		m.floats[i] += v
	}
}

// sorted returns the keys in a stable order, so that the same rows are
// always sent the same way.
func (r rollupRows) sorted() []rollupKey {
	keys := make([]rollupKey, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rollupKey) int {
		return cmp.Or(cmp.Compare(a.hierarchy, b.hierarchy), cmp.Compare(a.area, b.area), a.bucket.Compare(b.bucket),
			cmp.Compare(a.dims[0], b.dims[0]), cmp.Compare(a.dims[1], b.dims[1]), cmp.Compare(a.dims[2], b.dims[2]), cmp.Compare(a.dims[3], b.dims[3]))
	})
	return keys
}

// family is one kind of record and the rollups its writer keeps.
type family struct {
	kind  string // journal kind: dossier, camera or reading
	raw   string // the raw table
	specs []rollupSpec
}

// The dossier flow rollups: each stored event's change, summed by unit and
// minute, hour, local day, local month, and local day by dimension.
var dossierFamily = family{kind: "dossier", raw: "dossier_history", specs: flowSpecs(dossier.Table[:])}

// flowSpecs are the dossier flow rollups of a measure table: its measures,
// in its order, after each table's key.
func flowSpecs(table []dossier.Measure) []rollupSpec {
	ints := make([]string, len(table))
	for i, m := range table {
		ints[i] = m.Column
	}
	return []rollupSpec{
		{table: rollup.DossierFlowMinute, bucket: "t", cut: byMinute, ints: ints, retention: MinuteRetention},
		{table: rollup.DossierFlowHour, bucket: "t", cut: byHour, ints: ints},
		{table: rollup.DossierFlowDay, bucket: "d", cut: byLocalDay, ints: ints},
		{table: rollup.DossierFlowMonth, bucket: "m", cut: byLocalMonth, ints: ints},
		{table: rollup.DossierFlowDayBy, bucket: "d", cut: byLocalDay, ints: ints,
			dims: rollup.FlowDims, markerDims: []string{"", "", "", ""}},
	}
}

// Camera events by unit, type and severity; heartbeats are not events.
var cameraFamily = family{kind: "camera", raw: "camera_events", specs: []rollupSpec{
	{table: rollup.CameraKPIMinute, bucket: "t", cut: byMinute, dims: rollup.CameraFamily.Dims, markerDims: []string{"", "info"},
		ints: rollup.CameraFamily.Ints, retention: MinuteRetention},
	{table: rollup.CameraKPIHour, bucket: "t", cut: byHour, dims: rollup.CameraFamily.Dims, markerDims: []string{"", "info"},
		ints: rollup.CameraFamily.Ints},
}}

// Sensor readings' counts and sums by unit and kind (their maxima are kept
// by views: taking one twice changes nothing).
var readingFamily = family{kind: "reading", raw: "sensor_readings", specs: []rollupSpec{
	{table: rollup.SensorStatMinute, bucket: "t", cut: byMinute, dims: rollup.SensorStatFamily.Dims, markerDims: []string{""},
		ints: rollup.SensorStatFamily.Ints, floats: rollup.SensorStatFamily.Floats, retention: MinuteRetention},
	{table: rollup.SensorStatHour, bucket: "t", cut: byHour, dims: rollup.SensorStatFamily.Dims, markerDims: []string{""},
		ints: rollup.SensorStatFamily.Ints, floats: rollup.SensorStatFamily.Floats},
}}

// MinuteRetention is how long minute rollups are kept: the edge of the
// longest live window (30 days) needs them.
const MinuteRetention = 32 * 24 * time.Hour

// Families lists every rollup the writers keep, for retention and checks.
func Families() []string { return []string{dossierFamily.kind, cameraFamily.kind, readingFamily.kind} }

// RawTables are the tables whose writers keep rollups: each written under
// the lease "<database>.<table>".
func RawTables() []string { return []string{dossierFamily.raw, cameraFamily.raw, readingFamily.raw} }

// MinuteTables are the rollups kept for MinuteRetention only.
func MinuteTables() []string {
	var out []string
	for _, f := range []family{dossierFamily, cameraFamily, readingFamily} {
		for _, s := range f.specs {
			if s.retention > 0 {
				out = append(out, s.table)
			}
		}
	}
	return out
}

// cameraRollups counts camera events by unit, bucket, type and severity.
func cameraRollups(events []CameraEvent) []rollupRows {
	out := []rollupRows{{}, {}}
	for _, e := range events {
		if e.Type == device.HeartbeatType {
			continue
		}
		for i, s := range cameraFamily.specs {
			out[i].add(s, rollupKey{hierarchy: e.Hierarchy, area: e.AreaCode, bucket: s.cut.at(e.OccurredAt, time.UTC),
				dims: [4]string{e.Type, e.Severity}}, []int64{1}, nil)
		}
	}
	return out
}

// readingRollups counts and sums readings by unit, bucket and kind.
func readingRollups(readings []Reading) []rollupRows {
	out := []rollupRows{{}, {}}
	for _, r := range readings {
		for i, s := range readingFamily.specs {
			out[i].add(s, rollupKey{hierarchy: r.Hierarchy, area: r.AreaCode, bucket: s.cut.at(r.ObservedAt, time.UTC),
				dims: [4]string{r.Kind}}, []int64{1}, []float64{r.Value})
		}
	}
	return out
}

// batchArea is how a marker row names its batch.
func batchArea(batch uint64) string { return strconv.FormatUint(batch, 10) }

// rollupPart is one batch's rows of a rollup, to be written with others;
// only, when not nil, keeps the groups it names (recovery writes the
// groups whose markers are missing).
type rollupPart struct {
	batch uint64
	rows  rollupRows
	only  map[time.Time]bool
}

// writeRollup inserts the rows of several batches, summed, and one marker
// row per batch and group, into s's table in one statement: each group
// (partition) lands as one part, with its markers, or not at all. Rows
// are written whatever their age, as a live figure at a moment in the past
// needs them — except in a table kept for a while only (minutes): the
// days it no longer keeps are dropped by partition (dropExpired), so their
// rows are not written at all; a backfill of history would otherwise spend
// a good part of its time on rows dropped within the hour.
func writeRollup(ctx context.Context, conn driver.Conn, db string, s rollupSpec, now time.Time, parts ...rollupPart) error {
	sum := rollupRows{}
	type marker struct {
		batch uint64
		group time.Time
	}
	markers := map[marker]bool{}
	keep := s.kept(now)
	for _, p := range parts {
		for k, m := range p.rows {
			g := s.group(k.bucket)
			if (p.only != nil && !p.only[g]) || m.zero() || keep != nil && !keep(k) {
				continue
			}
			sum.add(s, k, m.ints, m.floats)
			markers[marker{p.batch, g}] = true
		}
	}
	if len(markers) == 0 {
		return nil
	}
	ids := make([]uint64, len(parts))
	for i, p := range parts {
		ids[i] = p.batch
	}
	b, err := conn.PrepareBatch(withInsertID(ctx, db, s.table, ids...), "INSERT INTO "+db+"."+s.table+" ("+strings.Join(s.columns(), ", ")+")")
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", s.table, err)
	}
	appendRow := func(k rollupKey, m measures) error { return b.Append(s.rowValues(k, m)...) }
	for _, k := range sum.sorted() {
		if sum[k].zero() {
			continue // changes of several batches that cancel out
		}
		if err := appendRow(k, *sum[k]); err != nil {
			b.Abort()
			return fmt.Errorf("append to %s batch: %w", s.table, err)
		}
	}
	keys := slices.Collect(maps.Keys(markers))
	slices.SortFunc(keys, func(a, b marker) int { return cmp.Or(cmp.Compare(a.batch, b.batch), a.group.Compare(b.group)) })
	for _, m := range keys {
		if err := appendRow(s.marker(m.batch, m.group), s.markerMeasures()); err != nil {
			b.Abort()
			return fmt.Errorf("append to %s batch: %w", s.table, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into %s: %w", s.table, err)
	}
	return nil
}

// rowValues are a row's values in the order of columns.
func (s rollupSpec) rowValues(k rollupKey, m measures) []any {
	vals := make([]any, 0, 3+len(s.dims)+len(m.ints)+len(m.floats))
	vals = append(vals, k.hierarchy, k.area, k.bucket)
	for i := range s.dims {
		vals = append(vals, k.dims[i])
	}
	for _, v := range m.ints {
		vals = append(vals, v)
	}
	for _, v := range m.floats {
		vals = append(vals, v)
	}
	return vals
}

// marker is the row that says a group of batch's rows landed: it lands in
// the same part as they do, or not at all.
func (s rollupSpec) marker(batch uint64, group time.Time) rollupKey {
	k := rollupKey{hierarchy: markerHierarchy, area: batchArea(batch), bucket: group}
	copy(k.dims[:], s.markerDims)
	return k
}

// markerMeasures counts one in the first measure: a summing table drops a
// row whose measures are all zero.
func (s rollupSpec) markerMeasures() measures {
	m := measures{ints: make([]int64, len(s.ints)), floats: make([]float64, len(s.floats))}
	m.ints[0] = 1
	return m
}

// landedGroups returns the groups of batch's rows that are stored in s's
// table: those whose marker is there.
func landedGroups(ctx context.Context, conn driver.Conn, db string, s rollupSpec, batch uint64) (map[time.Time]bool, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT "+s.bucket+" FROM "+db+"."+s.table+
		" WHERE hierarchy = ? AND area_code = ?", markerHierarchy, batchArea(batch))
	if err != nil {
		return nil, fmt.Errorf("read the markers of batch %d in %s: %w", batch, s.table, err)
	}
	defer rows.Close()
	out := map[time.Time]bool{}
	for rows.Next() {
		var t time.Time
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("read the markers of batch %d in %s: %w", batch, s.table, err)
		}
		out[time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)] = true
	}
	return out, rows.Err()
}

// groupsOf lists the marker groups of rows.
func (s rollupSpec) groupsOf(rows rollupRows) map[time.Time]bool {
	out := map[time.Time]bool{}
	for k, m := range rows {
		if !m.zero() {
			out[s.group(k.bucket)] = true
		}
	}
	return out
}

// inBind formats a time for a DateTime('UTC') or Date comparison.
func (s rollupSpec) bind(t time.Time) string {
	if s.cut.date() {
		return t.Format("2006-01-02")
	}
	return chstore.Time(t)
}
