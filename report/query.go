package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/internal/chstore"
)

// cell is where summed figures belong: a unit as filed (when grouped by
// unit), a step's start (in a series) and a breakdown key.
type cell struct {
	area string
	t    int64 // unix seconds: time.Time keys would compare zones too
	key  string
}

// ask says what to sum: the rows filed under codes in r, per step, per unit
// and per value of a dimension as asked.
type ask struct {
	codes  []string
	r      Range
	step   Step // none: the whole range
	byArea bool
	by     string
}

// source is where an indicator's figures come from.
type source int

const (
	flowSource source = iota + 1
	feedbackSource
	cameraSource
	sensorSource
)

// sourcesOf lists the sources an indicator reads.
func sourcesOf(d aggregate.Definition) []source {
	switch d.Source {
	case "dossier events", "dossier events re-attributed through a crosswalk":
		return []source{flowSource}
	case "citizen feedback":
		return []source{feedbackSource}
	case "dossier events and citizen feedback":
		return []source{flowSource, feedbackSource}
	case "camera events":
		return []source{cameraSource}
	case "sensor readings":
		return []source{sensorSource}
	}
	return nil
}

// dimColumn maps a breakdown dimension to its column: an allow-list, so no
// request text reaches SQL.
var dimColumn = map[source]map[string]string{
	flowSource:   {"sector": "sector", "procedure": "procedure_code", "channel": "channel", "online_level": "online_level"},
	cameraSource: {"type": "type", "severity": "toString(severity)"},
}

// addCell adds n to the figures of c.
func addCell(out map[cell]aggregate.Counts, c cell, n aggregate.Counts) {
	t := out[c]
	t.Add(n)
	out[c] = t
}

// sum sums the figures of the sources by cell. deltas, when not nil, gains
// each cell's change in the open and late-open balances. The sources are
// asked at once, each in a query of its own.
func (e *Engine) sum(ctx context.Context, sources []source, a ask, deltas map[cell][2]int64) (map[cell]aggregate.Counts, error) {
	var outs []map[cell]aggregate.Counts
	var asks []func() error
	for _, src := range sources {
		if a.by != "" && dimColumn[src][a.by] == "" {
			continue // feedback has no such dimension: it counts in no breakdown
		}
		out := map[cell]aggregate.Counts{}
		outs = append(outs, out)
		asks = append(asks, func() error {
			switch src {
			case flowSource:
				return e.flow(ctx, a, out, deltas) // the one source with deltas
			case feedbackSource:
				return e.feedback(ctx, a, out)
			case cameraSource:
				return e.cameras(ctx, a, out)
			case sensorSource:
				return e.sensors(ctx, a, out)
			}
			return nil
		})
	}
	if err := parallel(asks...); err != nil {
		return nil, err
	}
	if len(outs) == 0 {
		return map[cell]aggregate.Counts{}, nil
	}
	for _, o := range outs[1:] {
		for c, n := range o {
			addCell(outs[0], c, n)
		}
	}
	return outs[0], nil
}

// parallel runs fns at once and returns the first error in their order.
func parallel(fns ...func() error) error {
	if len(fns) == 1 {
		return fns[0]()
	}
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, f := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// reads lists the rollup tables, and the windows of them, that sum reads
// for sources and a: what a cached answer depends on.
func (e *Engine) reads(sources []source, a ask) []aggregate.Read {
	var out []aggregate.Read
	for _, src := range sources {
		switch src {
		case flowSource:
			for _, p := range e.flowPlan(a) {
				out = append(out, aggregate.Read{Table: "dossier_flow_" + p.table, From: p.from, To: p.to})
			}
		case feedbackSource:
			// Items are read by receipt and by resolution, which may come
			// long after: the whole table.
			out = append(out, aggregate.Read{Table: "feedback", To: MaxTime})
		case cameraSource:
			out = append(out, aggregate.Read{Table: "camera_kpi_hour", From: a.r.From, To: a.r.To})
		case sensorSource:
			out = append(out, aggregate.Read{Table: "sensor_stat_hour", From: a.r.From, To: a.r.To},
				aggregate.Read{Table: "sensor_max_hour", From: a.r.From, To: a.r.To})
		}
	}
	return out
}

// limited puts ctx's queries under the execution limit.
func (e *Engine) limited(ctx context.Context) context.Context {
	// max_execution_time counts whole seconds, and 0 would mean no limit.
	secs := max(1, int(math.Ceil(e.timeout.Seconds())))
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_execution_time": secs}))
}

// query runs q under the execution limit and hands each row to scan.
func (e *Engine) query(ctx context.Context, what, q string, args []any, scan func(func(...any) error) error) error {
	rows, err := e.conn.Query(e.limited(ctx), q, args...)
	if err != nil {
		return e.queryError(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows.Scan); err != nil {
			return e.queryError(what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return e.queryError(what, err)
	}
	return nil
}

// codeTimeout is ClickHouse's TIMEOUT_EXCEEDED.
const codeTimeout = 159

func (e *Engine) queryError(what string, err error) error {
	if t := e.timedOut(err); t != nil {
		return t
	}
	return fmt.Errorf("query %s: %w", what, err)
}

// timedOut is err as a TimeoutError when the execution limit ended the
// query, else nil.
func (e *Engine) timedOut(err error) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == codeTimeout {
		return &TimeoutError{Limit: e.timeout.String(), Err: err}
	}
	return nil
}

// part is a piece of a range read from one rollup table.
type part struct {
	table    string // hour, day or month
	from, to time.Time
}

// split cuts r into the coarsest rollups that tile it: hours up to the
// first local midnight, days up to the first month, whole months, then
// days and hours again. (Balances, from the beginning of time, are
// aggregate.Balances' to read.)
func split(r Range, loc *time.Location) []part {
	var out []part
	cur := r.From
	add := func(table string, to time.Time) {
		if to.After(cur) {
			out = append(out, part{table: table, from: cur, to: to})
			cur = to
		}
	}
	if !floor(cur, Day, loc).Equal(cur) {
		add("hour", minTime(ceil(cur, Day, loc), r.To))
	}
	if !floor(cur, Month, loc).Equal(cur) {
		add("day", minTime(ceil(cur, Month, loc), floor(r.To, Day, loc)))
	}
	add("month", floor(r.To, Month, loc))
	add("day", floor(r.To, Day, loc))
	add("hour", r.To)
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// timeFilter bounds a rollup table's time column to p.
func timeFilter(p part) (string, []any) {
	col, lo, hi := "t", any(chstore.Time(p.from)), any(chstore.Time(p.to))
	if p.table != "hour" {
		col = map[string]string{"day": "d", "month": "m"}[p.table]
		lo, hi = p.from.Format("2006-01-02"), p.to.Format("2006-01-02")
		return col + " >= toDate(?) AND " + col + " < toDate(?)", []any{lo, hi}
	}
	return col + " >= ? AND " + col + " < ?", []any{lo, hi}
}

// bucketExpr is the SQL of a step's start over a table's time column.
func bucketExpr(table string, s Step) string {
	switch {
	case s == none:
		return "toDate('1970-01-01')"
	case s == Week:
		return "toMonday(d)"
	case s == Month && table == "month":
		return "m"
	case s == Month:
		return "toStartOfMonth(d)"
	}
	return "d"
}

// codesFilter restricts to the asked units.
func (a ask) codesFilter(args []any) (string, []any) {
	if a.codes == nil {
		return "", args
	}
	return " AND area_code IN ?", append(args, chstore.In(a.codes))
}

// localDate turns a Date read from ClickHouse (midnight UTC) into the local
// midnight it names.
func localDate(d time.Time, loc *time.Location) time.Time {
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
}

// flow sums the dossier rollups. Hour steps read the hour table; longer
// steps, whole days; ranges, the coarsest tables that tile them; breakdowns,
// the by-dimension days.
func (e *Engine) flow(ctx context.Context, a ask, out map[cell]aggregate.Counts, deltas map[cell][2]int64) error {
	return e.flowParts(ctx, a, e.flowPlan(a), func(c cell, m dossier.Measures) {
		addCell(out, c, aggregate.FlowCounts(m))
		if deltas != nil {
			d := deltas[c]
			deltas[c] = [2]int64{d[0] + m.Open, d[1] + m.LateOpen}
		}
	})
}

// flowPlan is the dossier rollups flow reads for a, and their windows.
func (e *Engine) flowPlan(a ask) []part {
	switch {
	case a.by != "":
		return []part{{table: "day_by", from: floor(a.r.From, Day, e.loc), to: ceil(a.r.To, Day, e.loc)}}
	case a.step == Hour:
		return []part{{table: "hour", from: a.r.From, to: a.r.To}}
	case a.step == Month:
		return []part{{table: "month", from: a.r.From, to: a.r.To}}
	case a.step != none:
		return []part{{table: "day", from: a.r.From, to: a.r.To}}
	}
	return split(a.r, e.loc)
}

// innerSums and outerSums sum the flow columns in parts and then across
// them; distinct names keep an alias from shadowing its column.
var innerSums, outerSums = func() (string, string) {
	var in, out []string
	for _, c := range strings.Split(aggregate.FlowColumns, ", ") {
		in = append(in, "sum("+c+") AS s_"+c)
		out = append(out, "sum(s_"+c+")")
	}
	return strings.Join(in, ", "), strings.Join(out, ", ")
}()

// flowParts runs one query over the parts' tables and hands each cell's
// summed measures to add.
func (e *Engine) flowParts(ctx context.Context, a ask, parts []part, add func(cell, dossier.Measures)) error {
	key, area := "''", "''"
	if a.by != "" {
		key = dimColumn[flowSource][a.by]
	}
	if a.byArea {
		area = "area_code"
	}
	var q string
	var args []any
	for i, p := range parts {
		table := p.table
		tf := p
		if table == "day_by" {
			tf.table = "day"
		}
		bucket := bucketExpr(tf.table, a.step)
		if a.step == Hour {
			bucket = "t"
		}
		f, fargs := timeFilter(tf)
		args = append(args, e.h.Name())
		args = append(args, fargs...)
		var cf string
		cf, args = a.codesFilter(args)
		if i > 0 {
			q += " UNION ALL "
		}
		q += `SELECT ` + area + ` AS a, ` + bucket + ` AS b, ` + key + ` AS k, ` + innerSums + `
			FROM ` + e.db + `.dossier_flow_` + table + ` WHERE hierarchy = ? AND ` + f + cf + ` GROUP BY a, b, k`
	}
	q = `SELECT a, b, k, ` + outerSums + ` FROM (` + q + `) GROUP BY a, b, k`
	return e.query(ctx, "dossier rollups", q, args, func(scan func(...any) error) error {
		var c cell
		var b time.Time
		var m dossier.Measures
		if err := scan(append([]any{&c.area, &b, &c.key}, aggregate.FlowTargets(&m)...)...); err != nil {
			return err
		}
		c.t = e.bucketOf(b, a.step)
		add(c, m)
		return nil
	})
}

// dateOf is the SQL of a step's start over a DateTime expression x, with
// the zone bound as the next argument (none: one bucket).
func dateOf(x string, s Step) (string, bool) {
	switch s {
	case none:
		return "toDate('1970-01-01')", false
	case Hour:
		return "toStartOfHour(" + x + ")", false
	case Week:
		return "toMonday(toDate(" + x + ", ?))", true
	case Month:
		return "toStartOfMonth(toDate(" + x + ", ?))", true
	}
	return "toDate(" + x + ", ?)", true
}

// bucketOf reads a bucket scanned from ClickHouse: a DateTime for hours, a
// Date otherwise.
func (e *Engine) bucketOf(b time.Time, s Step) int64 {
	switch s {
	case none:
		return 0
	case Hour:
		return b.Unix()
	}
	return localDate(b, e.loc).Unix()
}

// feedback sums citizen feedback: received items at their receipt, handled
// ones at their resolution.
func (e *Engine) feedback(ctx context.Context, a ask, out map[cell]aggregate.Counts) error {
	area := "''"
	if a.byArea {
		area = "area_code"
	}
	var q string
	var args []any
	for i, x := range []string{"received_at", "assumeNotNull(resolved_at)"} {
		b, zoned := dateOf(x, a.step)
		if zoned {
			args = append(args, e.loc.String())
		}
		args = append(args, e.h.Name(), chstore.Time(a.r.From), chstore.Time(a.r.To))
		var cf string
		cf, args = a.codesFilter(args)
		if i == 0 {
			q = `SELECT ` + area + ` AS a, ` + b + ` AS b, count() AS received, toUInt64(0) AS resolved, toUInt64(0) AS on_time,
				toUInt64(0) AS rated, toUInt64(0) AS satisfied,
				uniqExactIf(if(dossier_id = '', feedback_id, dossier_id), category = 'procedure') AS complaints
				FROM ` + e.db + `.feedback FINAL WHERE hierarchy = ? AND received_at >= ? AND received_at < ?` + cf + ` GROUP BY a, b`
			continue
		}
		q += ` UNION ALL SELECT ` + area + ` AS a, ` + b + ` AS b, toUInt64(0), count(), countIf(ifNull(resolved_at <= due_at, 0)),
				countIf(rating != ''), countIf(rating = 'satisfied'), toUInt64(0)
				FROM ` + e.db + `.feedback FINAL WHERE hierarchy = ? AND resolved_at >= ? AND resolved_at < ?` + cf + ` GROUP BY a, b`
	}
	q = `SELECT a, b, sum(received), sum(resolved), sum(on_time), sum(rated), sum(satisfied), sum(complaints) FROM (` + q + `) GROUP BY a, b`
	return e.query(ctx, "citizen feedback", q, args, func(scan func(...any) error) error {
		var c cell
		var b time.Time
		var n aggregate.Counts
		if err := scan(&c.area, &b, &n.FeedbackReceived, &n.FeedbackResolved, &n.FeedbackOnTime, &n.FeedbackRated, &n.FeedbackSatisfied, &n.Complaints); err != nil {
			return err
		}
		c.t = e.bucketOf(b, a.step)
		addCell(out, c, n)
		return nil
	})
}

// hourRollup builds a query over an hourly rollup of camera events or
// sensor readings, grouped by unit, step and key.
func (e *Engine) hourRollup(a ask, table, key, sums, where string) (string, []any) {
	area := "''"
	if a.byArea {
		area = "area_code"
	}
	b, zoned := dateOf("t", a.step)
	if a.step == Hour {
		b = "t"
	}
	var args []any
	if zoned {
		args = append(args, e.loc.String())
	}
	args = append(args, e.h.Name(), chstore.Time(a.r.From), chstore.Time(a.r.To))
	cf, args := a.codesFilter(args)
	return `SELECT ` + area + ` AS a, ` + b + ` AS b, ` + key + ` AS k, ` + sums + ` FROM ` + e.db + `.` + table + `
		WHERE hierarchy = ? AND t >= ? AND t < ?` + cf + where + ` GROUP BY a, b, k`, args
}

// cameras sums camera events (heartbeats are not in the rollup).
func (e *Engine) cameras(ctx context.Context, a ask, out map[cell]aggregate.Counts) error {
	key := "''"
	if a.by != "" {
		key = dimColumn[cameraSource][a.by]
	}
	q, args := e.hourRollup(a, "camera_kpi_hour", key, "toUInt64(sum(events)), toUInt64(sum(if(severity = 'critical', events, 0)))", "")
	return e.query(ctx, "camera rollups", q, args, func(scan func(...any) error) error {
		var c cell
		var b time.Time
		var n aggregate.Counts
		if err := scan(&c.area, &b, &c.key, &n.CameraEvents, &n.CameraCritical); err != nil {
			return err
		}
		c.t = e.bucketOf(b, a.step)
		addCell(out, c, n)
		return nil
	})
}

// sensors merges the PM2.5 and water-level statistics: counts and sums from
// the summing rollup, maxima from the maxima's.
func (e *Engine) sensors(ctx context.Context, a ask, out map[cell]aggregate.Counts) error {
	const kinds = " AND kind IN ('pm25', 'water_level')"
	stat, args := e.hourRollup(a, "sensor_stat_hour", "kind", "toFloat64('-inf') AS mx, sum(value_sum) AS sm, sum(readings) AS n", kinds)
	maxima, more := e.hourRollup(a, "sensor_max_hour", "kind", "maxMerge(value_max) AS mx, toFloat64(0) AS sm, toInt64(0) AS n", kinds)
	q := "SELECT a, b, k, max(mx), sum(sm), toUInt64(sum(n)) FROM (" + stat + " UNION ALL " + maxima + ") GROUP BY a, b, k"
	args = append(args, more...)
	return e.query(ctx, "sensor rollups", q, args, func(scan func(...any) error) error {
		var c cell
		var b time.Time
		var kind string
		var st aggregate.Stat
		if err := scan(&c.area, &b, &kind, &st.Max, &st.Sum, &st.N); err != nil {
			return err
		}
		c.t = e.bucketOf(b, a.step)
		var n aggregate.Counts
		if kind == "pm25" {
			n.PM25 = st
		} else {
			n.WaterLevel = st
		}
		addCell(out, c, n)
		return nil
	})
}

// balances returns, per unit as filed (or in one cell), the dossiers open
// and open past their deadline at the moment before: aggregate.Balances,
// the live figures' reader too, under the execution limit.
func (e *Engine) balances(ctx context.Context, codes []string, before time.Time, byArea bool) (map[string]aggregate.Balance, error) {
	out, err := e.bal.At(e.limited(ctx), e.h.Name(), codes, before, byArea)
	if t := e.timedOut(err); t != nil {
		return nil, t
	}
	return out, err
}
