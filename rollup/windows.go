package rollup

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openioc/ioc/internal/chstore"
)

// A live window's figures are the rows of the hour rollups from its first
// whole hour on, and of the minute rollups for its ragged first hour: the
// tables the writers announce their rows of (Delta), so that a read and
// the deltas since settle against each other by the markers.

// Span is where a live window starts, and its first whole hour. A window
// has no end: it takes every row from its start on.
type Span struct{ Start, Hour time.Time }

// SpanFrom is the span of a window starting at start.
func SpanFrom(start time.Time) Span {
	hour := start.Truncate(time.Hour)
	if hour.Before(start) {
		hour = hour.Add(time.Hour)
	}
	return Span{start, hour}
}

// Covers says whether a row of the hour (or minute) table at bucket counts
// in the window.
func (s Span) Covers(minute bool, bucket time.Time) bool {
	if minute {
		return !bucket.Before(s.Start) && bucket.Before(s.Hour)
	}
	return !bucket.Before(s.Hour)
}

// MarkerKey names the marker of a batch's rows of one group in one table.
type MarkerKey struct {
	Table string
	Batch uint64
	Group int64 // Unix seconds of Group
}

// WindowRead is a read of the live rollups: per window asked, the sums of
// each unit's own rows, and, when markers were asked for, the markers that
// were in the same reads, i.e. which batches' rows the sums include.
type WindowRead struct {
	Direct  []map[string]*Sums
	Markers map[MarkerKey]bool
}

// NewWindowRead is an empty read of n windows.
func NewWindowRead(n int, markers bool) WindowRead {
	r := WindowRead{Direct: make([]map[string]*Sums, n)}
	for i := range r.Direct {
		r.Direct[i] = map[string]*Sums{}
	}
	if markers {
		r.Markers = map[MarkerKey]bool{}
	}
	return r
}

// Unit is a unit's sums in window w, made when missing.
func (r WindowRead) Unit(w int, code string) *Sums {
	s := r.Direct[w][code]
	if s == nil {
		s = &Sums{}
		r.Direct[w][code] = s
	}
	return s
}

// ReadWindows reads family f for every window of spans into into, in one
// query: each table is read once, sums and markers together, so that the
// markers say exactly which batches the sums include. into must have been
// made for len(spans) windows, with markers when markers is set.
func (r *Reader) ReadWindows(ctx context.Context, f *Family, s Scope, spans []Span, markers bool, into WindowRead) error {
	markers = markers && f.Marked
	query, args := f.windowsSQL(r.db, s, spans, markers)
	var (
		src, mark, w uint8
		area         string
		group        uint32
	)
	row := f.scanRow(&src, &mark, &area, &w, &group)
	ints := row.ints
	rows, err := r.conn.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("query %s rollups: %w", f.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(row.targets...); err != nil {
			return fmt.Errorf("read %s: %w", f.Hour, err)
		}
		if mark == 1 {
			batch, err := strconv.ParseUint(area, 10, 64)
			if err == nil && ints[f.markerMeasure] > 0 {
				table := f.Hour
				if src == 2 {
					table = f.Minute
				}
				into.Markers[MarkerKey{table, batch, int64(group)}] = true
			}
			continue
		}
		if w < 1 || int(w) > len(spans) {
			continue
		}
		f.add(into.Unit(int(w)-1, area), row.dims, row.ints, row.floats)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", f.Hour, err)
	}
	return nil
}

// windowsSQL is the one read of the family's hour and minute tables for
// every window of spans. ARRAY JOIN gives each row one copy per window it
// counts in (w, 1-based), so that all windows come from the same read of
// each table; marker rows (w 0) come with their batch (area_code) and
// group (g).
func (f *Family) windowsSQL(db string, s Scope, spans []Span, markers bool) (string, []any) {
	var args []any
	minStart, minHour, maxHour := spans[0].Start, spans[0].Hour, spans[0].Hour
	for _, sp := range spans {
		minStart = slices.MinFunc([]time.Time{minStart, sp.Start}, time.Time.Compare)
		minHour = slices.MinFunc([]time.Time{minHour, sp.Hour}, time.Time.Compare)
		maxHour = slices.MaxFunc([]time.Time{maxHour, sp.Hour}, time.Time.Compare)
	}
	markerFrom := Group(minStart)
	inner := func(src int, table string, minute bool) string {
		cols := []string{strconv.Itoa(src) + " AS src", "hierarchy", "area_code", "t"}
		for i, d := range f.dimSQL {
			cols = append(cols, d+" AS d"+strconv.Itoa(i))
		}
		for i, c := range f.measures() {
			cols = append(cols, c+" AS m"+strconv.Itoa(i))
		}
		var in []string
		for i, sp := range spans {
			if minute {
				in = append(in, "if(t >= ? AND t < ?, "+strconv.Itoa(i+1)+", 0)")
				args = append(args, chstore.Time(sp.Start), chstore.Time(sp.Hour))
			} else {
				in = append(in, "if(t >= ?, "+strconv.Itoa(i+1)+", 0)")
				args = append(args, chstore.Time(sp.Hour))
			}
		}
		ws := "arrayFilter(x -> x > 0, [" + strings.Join(in, ", ") + "])"
		if markers {
			ws = "if(hierarchy = '" + MarkerHierarchy + "', [toUInt8(0)], " + ws + ")"
		}
		cols = append(cols, ws+" AS ws")
		where := "hierarchy = ? AND t >= ?"
		args = append(args, s.Hierarchy)
		if minute {
			where += " AND t < ?"
			args = append(args, chstore.Time(minStart), chstore.Time(maxHour))
		} else {
			args = append(args, chstore.Time(minHour))
		}
		var codes string
		codes, args = s.filter(args)
		where += codes
		if f.where != "" {
			where += " AND " + f.where
		}
		if markers {
			where = "(" + where + ") OR (hierarchy = '" + MarkerHierarchy + "' AND t >= ?)"
			args = append(args, chstore.Time(markerFrom))
		}
		return "SELECT " + strings.Join(cols, ", ") + " FROM " + db + "." + table + " WHERE " + where
	}
	from := inner(1, f.Hour, false)
	// The minute table holds only ragged first hours: none where every
	// window starts on a whole hour, as today does in most zones.
	if minStart.Before(maxHour) {
		from += " UNION ALL " + inner(2, f.Minute, true)
	}
	key := []string{"src", "mark", "area_code", "w", "g"}
	for i := range f.Dims {
		key = append(key, "d"+strconv.Itoa(i))
	}
	sel := append(slices.Clone(key), f.outerAggs("m", true)...)
	sel[1] = "hierarchy = '" + MarkerHierarchy + "' AS mark"
	sel[4] = "if(hierarchy = '" + MarkerHierarchy + "', toUInt32(t), toUInt32(0)) AS g"
	return "SELECT " + strings.Join(sel, ", ") + " FROM (" + from + ") ARRAY JOIN ws AS w GROUP BY " + strings.Join(key, ", "), args
}
