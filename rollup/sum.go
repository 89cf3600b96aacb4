package rollup

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openioc/ioc/internal/chstore"
)

// Source is where figures come from: each indicator of the catalog names
// the sources it is summed from, and Sum reads exactly those.
type Source int

// The sources.
const (
	// SourceDossierFlow is the dossier measures (dossier.Table), from the
	// dossier_flow_* rollups.
	SourceDossierFlow Source = iota + 1
	// SourceFeedback is citizen feedback, from its stored items.
	SourceFeedback
	// SourceCameras is camera events, from the camera_kpi_* rollups.
	SourceCameras
	// SourceReadings is the PM2.5 and water-level readings, from the
	// sensor_stat_* and sensor_max_* rollups.
	SourceReadings
)

// Breakdowns are the dimensions each source can be broken down by.
func (s Source) Breakdowns() []string {
	var out []string
	for name := range breakdowns[s] {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// breakdown is how a dimension of a source is read: a column of the
// table read (sql), or one of its family's dims (dim ≥ 0).
type breakdown struct {
	sql string
	dim int
}

// breakdowns allow-list the dimensions of each source: no request text
// reaches SQL.
var breakdowns = map[Source]map[string]breakdown{
	SourceDossierFlow: {
		"sector": {sql: "sector", dim: -1}, "procedure": {sql: "procedure_code", dim: -1},
		"channel": {sql: "channel", dim: -1}, "online_level": {sql: "online_level", dim: -1},
	},
	SourceCameras: {"type": {dim: 0}, "severity": {dim: 1}},
}

// FlowDims are the dimensions of the by-dimension day rollup
// (DossierFlowDayBy), after its bucket.
var FlowDims = []string{"sector", "procedure_code", "channel", "online_level"}

// Query asks for sums over a range: of the units of its scope, per step
// (one bucket when None), per unit as filed when ByArea, and per value of
// a breakdown dimension when By is set.
type Query struct {
	Scope
	// From and To bound the range, [From, To), in whole steps (whole
	// hours at least).
	From, To time.Time
	Step     Step
	ByArea   bool
	By       string
}

// Cell is where summed figures belong: a unit as filed (when by area), a
// step's start in Unix seconds (0 without steps) and a breakdown value.
type Cell struct {
	Area string
	T    int64 // Unix seconds: time.Time keys would compare zones too
	Key  string
}

// grain is how a table's rows are bucketed, and names its time column.
type grain int

const (
	hourly  grain = iota + 1 // t, a DateTime in UTC
	daily                    // d, a local Date
	monthly                  // m, the first local Date of a month
)

// part is a piece of a range read from one table.
type part struct {
	table    string
	grain    grain
	from, to time.Time
}

// flowPrefix names the dossier flow rollups: dossier_flow_<grain>.
const flowPrefix = "dossier_flow_"

// flowParts is the dossier rollups a query reads, and their windows: the
// hour table for hour steps; whole days for longer steps; the coarsest
// tables that tile a range; the by-dimension days for breakdowns.
func (r *Reader) flowParts(q Query) []part {
	switch {
	case q.By != "":
		return []part{{table: DossierFlowDayBy, grain: daily, from: Floor(q.From, Day, r.loc), to: Ceil(q.To, Day, r.loc)}}
	case q.Step == Hour:
		return []part{{table: DossierFlowHour, grain: hourly, from: q.From, to: q.To}}
	case q.Step == Month || q.Step == Quarter || q.Step == Year:
		return []part{{table: DossierFlowMonth, grain: monthly, from: q.From, to: q.To}}
	case q.Step != None:
		return []part{{table: DossierFlowDay, grain: daily, from: q.From, to: q.To}}
	}
	return split(q.From, q.To, r.loc)
}

// split cuts [from, to) into the coarsest dossier rollups that tile it:
// hours up to the first local midnight, days up to the first month, whole
// months, then days and hours again. (Balances, from the beginning of
// time, have their own tiling: balanceParts.)
func split(from, to time.Time, loc *time.Location) []part {
	var out []part
	cur := from
	add := func(table string, g grain, end time.Time) {
		if end.After(cur) {
			out = append(out, part{table: table, grain: g, from: cur, to: end})
			cur = end
		}
	}
	if !Floor(cur, Day, loc).Equal(cur) {
		add(DossierFlowHour, hourly, minTime(Ceil(cur, Day, loc), to))
	}
	if !Floor(cur, Month, loc).Equal(cur) {
		add(DossierFlowDay, daily, minTime(Ceil(cur, Month, loc), Floor(to, Day, loc)))
	}
	add(DossierFlowMonth, monthly, Floor(to, Month, loc))
	add(DossierFlowDay, daily, Floor(to, Day, loc))
	add(DossierFlowHour, hourly, to)
	return out
}

// sourceFamilies are the families a source reads, each over the parts
// of a query: the dossier flow its tiling, the others their hour table.
func (r *Reader) sourceFamilies(src Source, q Query) map[*Family][]part {
	hour := func(f *Family) []part { return []part{{table: f.Hour, grain: hourly, from: q.From, to: q.To}} }
	switch src {
	case SourceDossierFlow:
		return map[*Family][]part{DossierFlowFamily: r.flowParts(q)}
	case SourceCameras:
		return map[*Family][]part{CameraFamily: hour(CameraFamily)}
	case SourceReadings:
		return map[*Family][]part{SensorStatFamily: hour(SensorStatFamily), SensorMaxFamily: hour(SensorMaxFamily)}
	}
	return nil
}

// counts says whether src counts in q: a source without q's breakdown
// dimension counts in no breakdown.
func counts(src Source, q Query) bool {
	if q.By == "" {
		return true
	}
	_, ok := breakdowns[src][q.By]
	return ok
}

// Reads lists the tables, and the windows of them, that Sum reads for q
// and sources: what an answer built on them depends on.
func (r *Reader) Reads(q Query, sources ...Source) []Read {
	var out []Read
	for _, src := range sources {
		if !counts(src, q) {
			continue
		}
		if src == SourceFeedback {
			// Items are read by receipt and by resolution, which may come
			// long after: the whole table.
			out = append(out, Read{Table: "feedback", To: MaxTime})
			continue
		}
		fams := r.sourceFamilies(src, q)
		for _, f := range Live { // in a fixed order
			for _, p := range fams[f] {
				out = append(out, Read{Table: p.table, From: p.from, To: p.to})
			}
		}
	}
	return out
}

// Sum sums the sources over q by cell. The sources (and the families of
// each) are read at once, each in a query of its own; a source without
// q's breakdown dimension counts in no breakdown.
func (r *Reader) Sum(ctx context.Context, q Query, sources ...Source) (map[Cell]*Sums, error) {
	var reads []func(map[Cell]*Sums) error
	for _, src := range sources {
		if !counts(src, q) {
			continue
		}
		if src == SourceFeedback {
			reads = append(reads, func(out map[Cell]*Sums) error { return r.feedback(ctx, q, out) })
			continue
		}
		fams := r.sourceFamilies(src, q)
		for _, f := range Live { // in a fixed order
			if parts, ok := fams[f]; ok {
				reads = append(reads, func(out map[Cell]*Sums) error { return r.family(ctx, f, src, q, parts, out) })
			}
		}
	}
	outs := make([]map[Cell]*Sums, len(reads))
	errs := make([]error, len(reads))
	var wg sync.WaitGroup
	for i, read := range reads {
		outs[i] = map[Cell]*Sums{}
		if len(reads) == 1 {
			errs[i] = read(outs[i])
			break
		}
		wg.Go(func() { errs[i] = read(outs[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if len(outs) == 0 {
		return map[Cell]*Sums{}, nil
	}
	for _, o := range outs[1:] {
		for c, s := range o {
			cellOf(outs[0], c).Add(s)
		}
	}
	return outs[0], nil
}

// cellOf is c's sums in out, made when missing.
func cellOf(out map[Cell]*Sums, c Cell) *Sums {
	s := out[c]
	if s == nil {
		s = &Sums{}
		out[c] = s
	}
	return s
}

// bucket is the SQL of a step's start over a part's time column (or over
// a DateTime expression x, for raw records), and whether it takes the zone
// as its first argument.
func bucket(g grain, x string, s Step) (string, bool) {
	startOf := map[Step]string{Week: "toMonday", Month: "toStartOfMonth", Quarter: "toStartOfQuarter", Year: "toStartOfYear"}[s]
	switch {
	case s == None:
		return "toDate('1970-01-01')", false
	case g == daily && startOf != "":
		return startOf + "(d)", false
	case g == daily:
		return "d", false
	case g == monthly && (s == Quarter || s == Year):
		return startOf + "(m)", false
	case g == monthly:
		return "m", false
	case s == Hour && x == "t":
		return "t", false
	case s == Hour:
		return "toStartOfHour(" + x + ")", false
	case startOf != "":
		return startOf + "(toDate(" + x + ", ?))", true
	}
	return "toDate(" + x + ", ?)", true
}

// timeFilter bounds a part's time column to its window.
func (r *Reader) timeFilter(p part) (string, []any) {
	if p.grain == hourly {
		return "t >= ? AND t < ?", []any{chstore.Time(p.from), chstore.Time(p.to)}
	}
	col := "d"
	if p.grain == monthly {
		col = "m"
	}
	return col + " >= toDate(?) AND " + col + " < toDate(?)", []any{p.from.In(r.loc).Format("2006-01-02"), p.to.In(r.loc).Format("2006-01-02")}
}

// cellT reads a bucket scanned from ClickHouse: a DateTime for hours, a
// Date (midnight UTC, naming a local date) otherwise.
func (r *Reader) cellT(b time.Time, s Step) int64 {
	switch s {
	case None:
		return 0
	case Hour:
		return b.Unix()
	}
	return time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, r.loc).Unix()
}

// familySQL is one query over the parts of a family's tables: each part
// summed by cell (and by the family's dims) on its own, then across them.
func (r *Reader) familySQL(f *Family, src Source, q Query, parts []part) (string, []any) {
	area, key := "''", "''"
	if q.ByArea {
		area = "area_code"
	}
	if b, ok := breakdowns[src][q.By]; ok && b.dim < 0 {
		key = b.sql
	}
	group := []string{"a", "b", "k"}
	for i := range f.Dims {
		group = append(group, "d"+strconv.Itoa(i))
	}
	cols := f.measures()
	var inner []string
	var args []any
	for _, p := range parts {
		b, zoned := bucket(p.grain, "t", q.Step)
		if zoned {
			args = append(args, r.loc.String())
		}
		sel := []string{area + " AS a", b + " AS b", key + " AS k"}
		for i, d := range f.dimSQL {
			sel = append(sel, d+" AS d"+strconv.Itoa(i))
		}
		for i, agg := range f.innerAggs(cols) {
			sel = append(sel, agg+" AS s"+strconv.Itoa(i))
		}
		tf, targs := r.timeFilter(p)
		args = append(args, q.Hierarchy)
		args = append(args, targs...)
		var codes string
		codes, args = q.filter(args)
		where := "hierarchy = ? AND " + tf + codes
		if f.where != "" {
			where += " AND " + f.where
		}
		inner = append(inner, "SELECT "+strings.Join(sel, ", ")+" FROM "+r.db+"."+p.table+" WHERE "+where+" GROUP BY "+strings.Join(group, ", "))
	}
	sel := append(slices.Clone(group), f.outerAggs("s", false)...)
	return "SELECT " + strings.Join(sel, ", ") + " FROM (" + strings.Join(inner, " UNION ALL ") + ") GROUP BY " + strings.Join(group, ", "), args
}

// family sums a family's parts into out.
func (r *Reader) family(ctx context.Context, f *Family, src Source, q Query, parts []part, out map[Cell]*Sums) error {
	sql, args := r.familySQL(f, src, q, parts)
	keyDim := -1
	if b, ok := breakdowns[src][q.By]; ok {
		keyDim = b.dim
	}
	var (
		c Cell
		b time.Time
	)
	row := f.scanRow(&c.Area, &b, &c.Key)
	return r.query(ctx, f.Name+" rollups", sql, args, func(scan func(...any) error) error {
		if err := scan(row.targets...); err != nil {
			return err
		}
		cell := Cell{Area: c.Area, T: r.cellT(b, q.Step), Key: c.Key}
		if keyDim >= 0 {
			cell.Key = row.dims[keyDim]
		}
		f.add(cellOf(out, cell), row.dims, row.ints, row.floats)
		return nil
	})
}

// feedback sums citizen feedback: received items at their receipt, handled
// ones at their resolution.
func (r *Reader) feedback(ctx context.Context, q Query, out map[Cell]*Sums) error {
	area := "''"
	if q.ByArea {
		area = "area_code"
	}
	var sql string
	var args []any
	for i, x := range []string{"received_at", "assumeNotNull(resolved_at)"} {
		b, zoned := bucket(0, x, q.Step)
		if zoned {
			args = append(args, r.loc.String())
		}
		args = append(args, q.Hierarchy, chstore.Time(q.From), chstore.Time(q.To))
		var codes string
		codes, args = q.filter(args)
		if i == 0 {
			sql = `SELECT ` + area + ` AS a, ` + b + ` AS b, count() AS received, toUInt64(0) AS resolved, toUInt64(0) AS on_time,
				toUInt64(0) AS rated, toUInt64(0) AS satisfied,
				uniqExactIf(if(dossier_id = '', feedback_id, dossier_id), category = 'procedure') AS complaints
				FROM ` + r.db + `.feedback FINAL WHERE hierarchy = ? AND received_at >= ? AND received_at < ?` + codes + ` GROUP BY a, b`
			continue
		}
		sql += ` UNION ALL SELECT ` + area + ` AS a, ` + b + ` AS b, toUInt64(0), count(), countIf(ifNull(resolved_at <= due_at, 0)),
				countIf(rating != ''), countIf(rating = 'satisfied'), toUInt64(0)
				FROM ` + r.db + `.feedback FINAL WHERE hierarchy = ? AND resolved_at >= ? AND resolved_at < ?` + codes + ` GROUP BY a, b`
	}
	sql = `SELECT a, b, sum(received), sum(resolved), sum(on_time), sum(rated), sum(satisfied), sum(complaints) FROM (` + sql + `) GROUP BY a, b`
	return r.query(ctx, "citizen feedback", sql, args, func(scan func(...any) error) error {
		var c Cell
		var b time.Time
		var n Feedback
		if err := scan(&c.Area, &b, &n.Received, &n.Resolved, &n.OnTime, &n.Rated, &n.Satisfied, &n.Complaints); err != nil {
			return err
		}
		c.T = r.cellT(b, q.Step)
		s := cellOf(out, c)
		s.Feedback.Received += n.Received
		s.Feedback.Resolved += n.Resolved
		s.Feedback.OnTime += n.OnTime
		s.Feedback.Rated += n.Rated
		s.Feedback.Satisfied += n.Satisfied
		s.Feedback.Complaints += n.Complaints
		return nil
	})
}
