package aggregate

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/rollup"
)

// A window's figures are the rows of the hour rollups from its first whole
// hour on, and of the minute rollups for its ragged first hour. The same
// rows reach the aggregator two ways: read from ClickHouse, and announced by
// the writers that just stored them (rollup.Delta). Both go through
// family.add into sums, and sums.counts turns them into Counts: one place
// turns rollup rows into figures.

// family is a rollup the live windows read.
type family struct {
	hour, minute string
	// dims, ints and floats name the key columns after the bucket and the
	// measures as the writers name them (rollup.Table); dimSQL selects the
	// dims and aggs sums the measures (ints, then floats).
	dims, dimSQL  []string
	ints, floats  []string
	aggs          []string
	marked        bool   // the writers' inserts carry markers
	where         string // what of the table counts, besides hierarchy and time
	add           func(s *sums, dims []string, ints []int64, floats []float64)
	lateOpen      int // index of late_open among ints, -1 without
	markerMeasure int // index among ints of the measure a marker sets to 1
}

// readKinds are the sensor kinds the live figures show.
var readKinds = map[string]func(*sums) *sensorSum{
	"pm25":        func(s *sums) *sensorSum { return &s.pm25 },
	"water_level": func(s *sums) *sensorSum { return &s.water },
}

var families = []family{
	{
		hour: rollup.DossierFlowHour, minute: rollup.DossierFlowMinute,
		ints: dossier.Columns, aggs: sumsOf(dossier.Columns), marked: true,
		add: func(s *sums, _ []string, ints []int64, _ []float64) {
			for i, f := range s.flow.Fields() {
				*f += ints[i]
			}
		},
		lateOpen: slices.Index(dossier.Columns, "late_open"),
	},
	{
		hour: rollup.CameraKPIHour, minute: rollup.CameraKPIMinute,
		dims: []string{"type", "severity"}, dimSQL: []string{"type", "toString(severity)"},
		ints: []string{"events"}, aggs: sumsOf([]string{"events"}), marked: true,
		add: func(s *sums, dims []string, ints []int64, _ []float64) {
			if s.camera == nil {
				s.camera = map[cameraKey]int64{}
			}
			s.camera[cameraKey{dims[0], dims[1]}] += ints[0]
		},
		lateOpen: -1,
	},
	{
		hour: rollup.SensorStatHour, minute: rollup.SensorStatMinute,
		dims: []string{"kind"}, dimSQL: []string{"kind"},
		ints: []string{"readings"}, floats: []string{"value_sum"}, aggs: sumsOf([]string{"readings", "value_sum"}),
		marked: true, where: "kind IN ('pm25', 'water_level')",
		add: func(s *sums, dims []string, ints []int64, floats []float64) {
			if k, ok := readKinds[dims[0]]; ok {
				st := k(s)
				st.n += ints[0]
				st.sum += floats[0]
			}
		},
		lateOpen: -1,
	},
	{
		// Maxima are kept by views on the raw readings: no markers, and
		// taking one twice changes nothing.
		hour: rollup.SensorMaxHour, minute: rollup.SensorMaxMinute,
		dims: []string{"kind"}, dimSQL: []string{"kind"},
		floats: []string{"value_max"}, aggs: []string{"maxMerge(m0)"},
		where: "kind IN ('pm25', 'water_level')",
		add: func(s *sums, dims []string, _ []int64, floats []float64) {
			if k, ok := readKinds[dims[0]]; ok {
				st := k(s)
				if !st.hasMax || floats[0] > st.max {
					st.max, st.hasMax = floats[0], true
				}
			}
		},
		lateOpen: -1,
	},
}

func sumsOf(cols []string) []string {
	out := make([]string, len(cols))
	for i := range cols {
		out[i] = "sum(m" + strconv.Itoa(i) + ")"
	}
	return out
}

// liveTable is where a rollup table's rows go.
type liveTable struct {
	f      *family
	minute bool
}

// liveTables finds a family and its part by table name.
var liveTables = func() map[string]liveTable {
	out := map[string]liveTable{}
	for i := range families {
		f := &families[i]
		out[f.hour] = liveTable{f: f}
		out[f.minute] = liveTable{f: f, minute: true}
	}
	return out
}()

// matches says whether a table a writer described has this family's
// columns in this order: a node of another version may not.
func (f *family) matches(t rollup.Table) bool {
	return slices.Equal(t.Dims, f.dims) && slices.Equal(t.Ints, f.ints) && slices.Equal(t.Floats, f.floats) && t.Marked == f.marked
}

// sums are the signed sums of the rollup rows filed directly under one unit
// in one window. Corrections are negative rows, so nothing is clamped until
// counts.
type sums struct {
	flow        dossier.Measures
	camera      map[cameraKey]int64
	pm25, water sensorSum
}

type cameraKey struct{ typ, severity string }

// sensorSum is the readings of one kind: their count and sum from the
// summing rollup, their maximum from the maxima's.
type sensorSum struct {
	sum    float64
	n      int64
	max    float64
	hasMax bool
}

// counts are the figures the sums give.
func (s *sums) counts() Counts {
	if s == nil {
		return Counts{}
	}
	c := FlowCounts(s.flow)
	for k, n := range s.camera {
		if n <= 0 {
			continue // a type whose events were all corrected away
		}
		c.CameraEvents += uint64(n)
		if k.severity == "critical" {
			c.CameraCritical += uint64(n)
		}
		if c.ByType == nil {
			c.ByType = map[string]uint64{}
		}
		c.ByType[k.typ] += uint64(n)
	}
	c.PM25, c.WaterLevel = s.pm25.stat(), s.water.stat()
	return c
}

func (s sensorSum) stat() Stat {
	mx := s.max
	if !s.hasMax {
		mx = math.Inf(-1) // readings counted before their maximum: shown as null
	}
	return Stat{Max: mx, Sum: s.sum, N: uint64(max(s.n, 0))}
}

// equal says whether two units' sums are the same, floating-point sums
// within rounding (ClickHouse and this process add in different orders).
func (s *sums) equal(o *sums) bool {
	var zero sums
	if s == nil {
		s = &zero
	}
	if o == nil {
		o = &zero
	}
	if s.flow != o.flow || !s.pm25.equal(o.pm25) || !s.water.equal(o.water) {
		return false
	}
	for k, n := range s.camera {
		if o.camera[k] != n {
			return false
		}
	}
	for k, n := range o.camera {
		if s.camera[k] != n {
			return false
		}
	}
	return true
}

func (s sensorSum) equal(o sensorSum) bool {
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(a), math.Abs(b)) }
	return s.n == o.n && close(s.sum, o.sum) && s.hasMax == o.hasMax && (!s.hasMax || s.max == o.max)
}

// span is where a window starts, and its first whole hour.
type span struct{ start, hour time.Time }

func spanOf(w Window, now time.Time, loc *time.Location) span {
	start := w.Start(now, loc)
	hour := start.Truncate(time.Hour)
	if hour.Before(start) {
		hour = hour.Add(time.Hour)
	}
	return span{start, hour}
}

// covers says whether a row of the hour (or minute) table at bucket counts
// in the window.
func (s span) covers(minute bool, bucket time.Time) bool {
	if minute {
		return !bucket.Before(s.start) && bucket.Before(s.hour)
	}
	return !bucket.Before(s.hour)
}

// markerKey names the marker of a batch's rows of one group in one table.
type markerKey struct {
	table string
	batch uint64
	group int64 // Unix seconds of rollup.Group
}

// windowRead is one read of the live rollups: per window asked, the sums of
// each unit's own rows, and, when markers were asked for, the markers that
// were in the same reads, i.e. which batches' rows the figures include.
type windowRead struct {
	direct  []map[string]*sums
	markers map[markerKey]bool
}

func (r windowRead) unit(w int, code string) *sums {
	s := r.direct[w][code]
	if s == nil {
		s = &sums{}
		r.direct[w][code] = s
	}
	return s
}

// readWindows reads every family for the windows of spans in one query per
// family: each table is read once, figures and markers together, so that
// the markers say exactly which batches the figures include.
func (q querier) readWindows(ctx context.Context, reason string, s scope, spans []span, markers bool) (windowRead, error) {
	r := windowRead{direct: make([]map[string]*sums, len(spans))}
	for i := range r.direct {
		r.direct[i] = map[string]*sums{}
	}
	if markers {
		r.markers = map[markerKey]bool{}
	}
	for i := range families {
		if err := q.readFamily(ctx, reason, &families[i], s, spans, markers, r); err != nil {
			return windowRead{}, err
		}
	}
	return r, nil
}

func (q querier) readFamily(ctx context.Context, reason string, f *family, s scope, spans []span, markers bool, r windowRead) error {
	query, args := f.sql(q.db, s, spans, markers && f.marked)
	q.count(reason, 1)
	rows, err := q.conn.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("query %s: %w", f.hour[:strings.LastIndexByte(f.hour, '_')]+" rollups", err)
	}
	defer rows.Close()
	var (
		src, mark, w uint8
		area         string
		group        uint32
		dims         = make([]string, len(f.dims))
		ints         = make([]int64, len(f.ints))
		floats       = make([]float64, len(f.floats))
	)
	targets := []any{&src, &mark, &area, &w, &group}
	for i := range dims {
		targets = append(targets, &dims[i])
	}
	for i := range ints {
		targets = append(targets, &ints[i])
	}
	for i := range floats {
		targets = append(targets, &floats[i])
	}
	for rows.Next() {
		if err := rows.Scan(targets...); err != nil {
			return fmt.Errorf("read %s: %w", f.hour, err)
		}
		if mark == 1 {
			batch, err := strconv.ParseUint(area, 10, 64)
			if err == nil && ints[f.markerMeasure] > 0 {
				table := f.hour
				if src == 2 {
					table = f.minute
				}
				r.markers[markerKey{table, batch, int64(group)}] = true
			}
			continue
		}
		if w < 1 || int(w) > len(spans) {
			continue
		}
		f.add(r.unit(int(w)-1, area), dims, ints, floats)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", f.hour, err)
	}
	return nil
}

// sql is the one read of the family's hour and minute tables for every
// window of spans. ARRAY JOIN gives each row one copy per window it counts
// in (w, 1-based), so that all windows come from the same read of each
// table; marker rows (w 0) come with their batch (area_code) and group (g).
func (f *family) sql(db string, s scope, spans []span, markers bool) (string, []any) {
	var args []any
	minStart, minHour, maxHour := spans[0].start, spans[0].hour, spans[0].hour
	for _, sp := range spans {
		minStart = slices.MinFunc([]time.Time{minStart, sp.start}, time.Time.Compare)
		minHour = slices.MinFunc([]time.Time{minHour, sp.hour}, time.Time.Compare)
		maxHour = slices.MaxFunc([]time.Time{maxHour, sp.hour}, time.Time.Compare)
	}
	markerFrom := rollup.Group(minStart)
	inner := func(src int, table string, minute bool) string {
		cols := []string{strconv.Itoa(src) + " AS src", "hierarchy", "area_code", "t"}
		for i, d := range f.dimSQL {
			cols = append(cols, d+" AS d"+strconv.Itoa(i))
		}
		for i, c := range append(slices.Clone(f.ints), f.floats...) {
			cols = append(cols, c+" AS m"+strconv.Itoa(i))
		}
		var in []string
		for i, sp := range spans {
			if minute {
				in = append(in, "if(t >= ? AND t < ?, "+strconv.Itoa(i+1)+", 0)")
				args = append(args, chstore.Time(sp.start), chstore.Time(sp.hour))
			} else {
				in = append(in, "if(t >= ?, "+strconv.Itoa(i+1)+", 0)")
				args = append(args, chstore.Time(sp.hour))
			}
		}
		ws := "arrayFilter(x -> x > 0, [" + strings.Join(in, ", ") + "])"
		if markers {
			ws = "if(hierarchy = '" + rollup.MarkerHierarchy + "', [toUInt8(0)], " + ws + ")"
		}
		cols = append(cols, ws+" AS ws")
		where := "hierarchy = ? AND t >= ?"
		args = append(args, s.h.Name())
		if minute {
			where += " AND t < ?"
			args = append(args, chstore.Time(minStart), chstore.Time(maxHour))
		} else {
			args = append(args, chstore.Time(minHour))
		}
		if s.codes != nil {
			where += " AND area_code IN ?"
			args = append(args, chstore.In(s.codes))
		}
		if f.where != "" {
			where += " AND " + f.where
		}
		if markers {
			where = "(" + where + ") OR (hierarchy = '" + rollup.MarkerHierarchy + "' AND t >= ?)"
			args = append(args, chstore.Time(markerFrom))
		}
		return "SELECT " + strings.Join(cols, ", ") + " FROM " + db + "." + table + " WHERE " + where
	}
	from := inner(1, f.hour, false)
	// The minute table holds only ragged first hours: none where every
	// window starts on a whole hour, as today does in most zones.
	if minStart.Before(maxHour) {
		from += " UNION ALL " + inner(2, f.minute, true)
	}
	key := []string{"src", "mark", "area_code", "w", "g"}
	for i := range f.dims {
		key = append(key, "d"+strconv.Itoa(i))
	}
	sel := append(slices.Clone(key), f.aggs...)
	sel[1] = "hierarchy = '" + rollup.MarkerHierarchy + "' AS mark"
	sel[4] = "if(hierarchy = '" + rollup.MarkerHierarchy + "', toUInt32(t), toUInt32(0)) AS g"
	return "SELECT " + strings.Join(sel, ", ") + " FROM (" + from + ") ARRAY JOIN ws AS w GROUP BY " + strings.Join(key, ", "), args
}
