package ingest

import (
	"time"

	"github.com/openioc/ioc/rollup"
)

// Notifier learns what each stored batch added to the rollups that live
// figures read, so that they advance without reading ClickHouse again. Added
// is called only once the inserts of the rows it describes returned, so that
// whoever reads those tables afterwards sees them. It must not block.
type Notifier interface {
	Added(d rollup.Delta)
}

// liveDelta describes what batch added to the live rollups of f (its minute
// and hour tables): the rows of each table whose insert returned without
// error (written[i] nil), and of those only the groups in only when only is
// not nil (what a recovery wrote). Rows older than the longest live window
// as of now change no live figure and are left out.
func liveDelta(f family, b batchRef, rows []rollupRows, written []error, only []map[time.Time]bool, now time.Time) rollup.Delta {
	d := rollup.Delta{Kind: f.kind, Batch: b.id, Created: b.createdAt}
	// An hour of slack: the reader's clock decides exactly where a window
	// starts.
	cutoff := now.Add(-rollup.Horizon - time.Hour)
	for i, s := range f.specs {
		if s.cut != byMinute && s.cut != byHour || written[i] != nil || len(rows[i]) == 0 {
			continue
		}
		t := rollup.Table{Name: s.table, Marked: true, Dims: s.dims, Ints: s.ints, Floats: s.floats}
		for _, k := range rows[i].sorted() {
			m := rows[i][k]
			if m.zero() || k.bucket.Before(cutoff) || only != nil && !only[i][s.group(k.bucket)] {
				continue
			}
			t.Rows = append(t.Rows, rollup.Row{Hierarchy: k.hierarchy, Area: k.area, Bucket: k.bucket,
				Dims: k.dims[:len(s.dims):len(s.dims)], Ints: m.ints, Floats: m.floats})
		}
		if len(t.Rows) > 0 {
			d.Tables = append(d.Tables, t)
		}
	}
	return d
}

// readingMaxima are the maxima that the views on sensor_readings added with
// the raw insert, by unit, minute or hour, and kind: taking one twice
// changes nothing, so they carry no markers.
func readingMaxima(readings []Reading, now time.Time) []rollup.Table {
	cutoff := now.Add(-rollup.Horizon - time.Hour)
	type key struct {
		h, area, kind string
		t             time.Time
	}
	out := make([]rollup.Table, 0, 2)
	for _, c := range []struct {
		table string
		cut   cut
	}{{rollup.SensorMaxMinute, byMinute}, {rollup.SensorMaxHour, byHour}} {
		maxima := map[key]float64{}
		var order []key
		for _, r := range readings {
			k := key{r.Hierarchy, r.AreaCode, r.Kind, c.cut.at(r.ObservedAt, time.UTC)}
			if k.t.Before(cutoff) {
				continue
			}
			if v, ok := maxima[k]; !ok || r.Value > v {
				if !ok {
					order = append(order, k)
				}
				maxima[k] = r.Value
			}
		}
		if len(order) == 0 {
			continue
		}
		t := rollup.Table{Name: c.table, Dims: []string{"kind"}, Floats: []string{"value_max"}}
		for _, k := range order {
			t.Rows = append(t.Rows, rollup.Row{Hierarchy: k.h, Area: k.area, Bucket: k.t, Dims: []string{k.kind}, Floats: []float64{maxima[k]}})
		}
		out = append(out, t)
	}
	return out
}
