package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/chstore"
)

// ratio is a figure's numerator and denominator.
type ratio struct{ num, den int64 }

// answer is a question's figures by key: a local day (series), a commune
// (ranking), or a province and an indicator ("79/online_rate", scoreboard).
type answer map[string]ratio

// question is one of the three questions, asked of the raw events (raw)
// and of the rollups the API reads (rollup, to check the load and the raw
// SQL without the API).
type question struct {
	name   string
	path   string   // the API request
	raw    []string // run one after the other; their rows make the answer
	rollup []string
	// rows turns the query's rows (key, num, den…) into the answer.
	scan func(driver.Rows) (answer, error)
}

// The figures are asked over local days: [from, to) at midnight in zone.
func localDay(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02", s, zone)
	if err != nil {
		panic(err)
	}
	return t
}

func utcLiteral(t time.Time) string { return "toDateTime('" + chstore.Time(t) + "', 'UTC')" }

func quoteList(codes []string) string {
	return "('" + strings.Join(codes, "', '") + "')"
}

func quoteArray(codes []string) string {
	return "['" + strings.Join(codes, "', '") + "']"
}

// dossiersSQL is one row per dossier of the raw events that where selects,
// with what package dossier derives from its events, in the order
// dossier.Derive takes them (time, then lifecycle step; the generated data
// never has two events of a dossier with the same second and status, which
// Derive would order by event id):
//
//	area      the unit of its first event
//	chan      the channel of its received event (else of its first event)
//	recv_t    its received event, else the earliest received_at (0: none)
//	close_t   its first resolved, returned, rejected or withdrawn event (0: open)
//	resolved  1 when that event is resolved or returned
//	late      when it turns late (0: never): the deadline (latest due_at up
//	          to the closure) pushed back by the waits for the citizen (a
//	          supplement_requested event to the dossier's next event) that
//	          began before the pushed-back deadline passed, never while such
//	          a wait is open-ended, and at the latest at a second request
//	on_time   resolved, with a deadline, and close_t ≤ late (or never late)
//	digitized, e_result, paid, reused, fee: the flags of any of its events
//
// ClickHouse 18.16 has no window functions: each dossier's events are
// gathered with groupArray and sorted with arraySort, and the rules are
// array functions over them.
func dossiersSQL(db, where string) string {
	return `SELECT area, chan, recv_t, close_t, resolved, late,
       resolved AND due > 0 AND (late = 0 OR close_t <= late) AS on_time,
       digitized, e_result, paid, reused, fee
FROM (
  SELECT area, digitized, e_result, paid, reused, fee,
         if(recv_k > 0, chan_recv, chan_first) AS chan,
         if(recv_k > 0, intDiv(recv_k, 8), recv_at) AS recv_t,
         arrayMap(x -> intDiv(x.1, 8), evs) AS ts,
         arrayMap(x -> x.1 % 8, evs) AS st,
         arrayMap(x -> x.2, evs) AS dus,
         length(ts) AS n,
         arrayFirstIndex(s -> s >= 4, st) AS ci,
         if(ci > 0, ts[ci], 0) AS close_t,
         ci > 0 AND st[ci] <= 5 AS resolved,
         if(ci > 0, ci, n) AS upto,
         arrayFirst(d -> d > 0, arrayReverse(arraySlice(dus, 1, upto))) AS due,
         arrayFilter(i -> st[i] = 3 AND i <= upto, arrayEnumerate(st)) AS ri,
         arrayMap(i -> toInt64(ts[i]), ri) AS ps,
         arrayMap(i -> if(i < n, toInt64(ts[i + 1]), toInt64(0)), ri) AS pe,
         arrayMap((a, b) -> b - a, ps, pe) AS pd,
         arrayMap((c, d) -> c - d, arrayCumSum(pd), pd) AS shift_before,
         arrayMap((a, sb) -> a - sb <= toInt64(due), ps, shift_before) AS counted,
         due = 0 OR arrayExists((c, e) -> c AND e = 0, counted, pe) AS late_never,
         toInt64(due) + arraySum(arrayMap((c, d) -> if(c, d, toInt64(0)), counted, pd)) AS late_due,
         if(length(ps) >= 2, ps[2], toInt64(0)) AS second,
         if(second > 0, if(late_never, second, least(late_due, second)), if(late_never, toInt64(0), late_due)) AS late
  FROM (
    SELECT dossier_id,
           arraySort(groupArray((k, du))) AS evs,
           argMin(area_code, k) AS area,
           minIf(k, status = 'received') AS recv_k,
           argMinIf(toString(channel), k, status = 'received') AS chan_recv,
           argMin(toString(channel), k) AS chan_first,
           minIf(ifNull(toUInt32(received_at), 0), isNotNull(received_at)) AS recv_at,
           max(digitized) AS digitized, max(e_result) AS e_result, max(paid_online) AS paid,
           max(reused_data) AS reused, max(fee_required OR paid_online) AS fee
    FROM (
      SELECT dossier_id, area_code, channel, status, received_at, digitized, e_result, paid_online, reused_data, fee_required,
             toUInt64(occurred_at) * 8 + toUInt64(CAST(status AS Int8)) AS k,
             ifNull(toUInt32(due_at), 0) AS du
      FROM ` + db + `.dossier_history
      WHERE ` + where + `
    )
    GROUP BY dossier_id
  )
)`
}

// questions are the three questions of the benchmark.
func questions(db string, u *universe, area string) []question {
	communes := u.communesOf[area]
	in := "hierarchy = '" + hierarchyName + "' AND area_code IN " + quoteList(communes)

	// (a) a year of daily on-time rates of a province.
	sFrom, sTo := localDay("2025-11-01"), localDay("2026-11-01") // to = 2026-10-31 inclusive
	// Events after the range cannot change what a dossier resolved in it
	// counts: its closure, deadline and waits all come before its closure.
	series := question{
		name: "series: on_time_rate of " + area + ", daily, 2025-11-01..2026-10-31",
		path: "/api/v1/kpis/on_time_rate/series?area=" + area + "&from=2025-11-01&to=2026-10-31&step=day",
		raw: []string{`SELECT toString(toDate(toDateTime(close_t), '` + zone.String() + `')) AS d, sum(on_time), count()
FROM (` + dossiersSQL(db, in+" AND occurred_at < "+utcLiteral(sTo)) + `)
WHERE resolved AND close_t >= toUInt32(` + utcLiteral(sFrom) + `) AND close_t < toUInt32(` + utcLiteral(sTo) + `)
GROUP BY d ORDER BY d`},
		rollup: []string{`SELECT toString(d), sum(on_time), sum(resolved) FROM ` + db + `.dossier_flow_day
WHERE ` + in + ` AND d >= toDate('2025-11-01') AND d <= toDate('2026-10-31') GROUP BY d ORDER BY d`},
		scan: scanRatios,
	}

	// (b) a quarter's on-time rate of every commune of the province.
	rFrom, rTo := localDay("2026-07-01"), localDay("2026-10-01")
	ranking := question{
		name: "ranking: on_time_rate of the communes of " + area + ", 2026-Q3",
		path: "/api/v1/kpis/on_time_rate/ranking?parent=" + area + "&level=commune&from=2026-07-01&to=2026-09-30&limit=5000",
		raw: []string{`SELECT area, sum(on_time), count()
FROM (` + dossiersSQL(db, in+" AND occurred_at < "+utcLiteral(rTo)) + `)
WHERE resolved AND close_t >= toUInt32(` + utcLiteral(rFrom) + `) AND close_t < toUInt32(` + utcLiteral(rTo) + `)
GROUP BY area ORDER BY area`},
		rollup: []string{`SELECT area_code, sum(on_time), sum(resolved) FROM ` + db + `.dossier_flow_month
WHERE ` + in + ` AND m >= toDate('2026-07-01') AND m < toDate('2026-10-01') GROUP BY area_code`},
		scan: scanRatios,
	}

	// (c) the scoreboard indicators of every province for 2025. No event can
	// be left out: a flag reported later, or a wait that ends later, counts.
	cFrom, cTo := localDay("2025-01-01"), localDay("2026-01-01")
	var cs, ps []string
	for _, c := range u.communes {
		cs = append(cs, c)
		ps = append(ps, u.province[c])
	}
	from, to := "toUInt32("+utcLiteral(cFrom)+")", "toUInt32("+utcLiteral(cTo)+")"
	inRecv := "recv_t > 0 AND recv_t >= " + from + " AND recv_t < " + to
	inClose := "resolved AND close_t >= " + from + " AND close_t < " + to
	openAtEnd := "recv_t > 0 AND recv_t < " + to + " AND NOT (close_t > 0 AND close_t < " + to + ")"
	lateAtEnd := openAtEnd + " AND late > 0 AND (close_t = 0 OR late < close_t) AND greatest(late, toInt64(recv_t)) < " + to
	// One query per province, one after the other: grouping every dossier
	// of the country in one query needs ~0.8 KB a dossier, 18 GB at 100
	// million events, more than the machine has for it.
	var raws []string
	for _, p := range u.provinces {
		raws = append(raws, `SELECT '`+p+`' AS province,
       countIf(`+inRecv+`) AS n_received,
       countIf(`+inRecv+` AND chan = 'online') AS n_online,
       countIf(`+inRecv+` AND digitized) AS n_digitized,
       countIf(`+inRecv+` AND reused) AS n_reused,
       countIf(`+inRecv+` AND fee) AS n_fee_bearing,
       countIf(`+inRecv+` AND paid) AS n_paid_online,
       countIf(`+inClose+`) AS n_resolved,
       countIf(`+inClose+` AND on_time) AS n_on_time,
       countIf(`+inClose+` AND e_result) AS n_e_result,
       countIf(`+openAtEnd+`) AS n_open_at_end,
       countIf(`+lateAtEnd+`) AS n_late_at_end
FROM (`+dossiersSQL(db, "hierarchy = '"+hierarchyName+"' AND area_code IN "+quoteList(u.communesOf[p]))+`)`)
	}
	scoreboard := question{
		name: "scoreboard: 6 indicators of the 34 provinces, 2025",
		path: "/api/v1/scoreboard?area=" + area + "&period=2025",
		raw:  raws,
		rollup: []string{`SELECT transform(area_code, ` + quoteArray(cs) + `, ` + quoteArray(ps) + `, '') AS province,
       sumIf(received, in_range), sumIf(received_online, in_range), sumIf(digitized, in_range), sumIf(reused, in_range),
       sumIf(fee_bearing, in_range), sumIf(paid_online, in_range), sumIf(resolved, in_range), sumIf(on_time, in_range),
       sumIf(e_result, in_range), sum(open), sum(late_open)
FROM (SELECT area_code, m >= toDate('2025-01-01') AS in_range, received, received_online, digitized, reused, fee_bearing,
             paid_online, resolved, on_time, e_result, open, late_open
      FROM ` + db + `.dossier_flow_month WHERE hierarchy = '` + hierarchyName + `' AND m < toDate('2026-01-01'))
GROUP BY province ORDER BY province`},
		scan: scanScoreboard,
	}
	return []question{series, ranking, scoreboard}
}

// scoreboardIndicators are the indicators the raw scoreboard query
// computes, from its columns.
var scoreboardIndicators = []string{"on_time_open_rate", "online_rate", "online_payment_rate", "e_result_rate",
	"digitization_rate", "data_reuse_rate", "procedure_satisfaction_rate"}

func scanRatios(rows driver.Rows) (answer, error) {
	out := answer{}
	for rows.Next() {
		var key string
		var num, den int64
		var err error
		switch rows.ColumnTypes()[1].DatabaseTypeName() {
		case "Int64":
			var n, d int64
			err = rows.Scan(&key, &n, &d)
			num, den = n, d
		default:
			var n, d uint64
			err = rows.Scan(&key, &n, &d)
			num, den = int64(n), int64(d)
		}
		if err != nil {
			return nil, err
		}
		if num != 0 || den != 0 {
			out[key] = ratio{num, den}
		}
	}
	return out, rows.Err()
}

func scanScoreboard(rows driver.Rows) (answer, error) {
	out := answer{}
	for rows.Next() {
		var province string
		var v [11]int64
		dest := []any{&province}
		signed := rows.ColumnTypes()[1].DatabaseTypeName() == "Int64"
		var u [11]uint64
		for i := range v {
			if signed {
				dest = append(dest, &v[i])
			} else {
				dest = append(dest, &u[i])
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if !signed {
			for i := range v {
				v[i] = int64(u[i])
			}
		}
		received, online, digitized, reused, fee, paid, resolved, onTime, eResult, open, late :=
			v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]
		for id, r := range map[string]ratio{
			"on_time_open_rate":           {onTime + open - min(late, open), resolved + open},
			"online_rate":                 {online, received},
			"online_payment_rate":         {paid, fee},
			"e_result_rate":               {eResult, resolved},
			"digitization_rate":           {digitized, received},
			"data_reuse_rate":             {reused, received},
			"procedure_satisfaction_rate": {onTime, resolved}, // no feedback is loaded: no complaints
		} {
			out[province+"/"+id] = r
		}
	}
	return out, rows.Err()
}

// ask runs queries one after the other and times them, rows read included.
func ask(ctx context.Context, conn driver.Conn, queries []string, scan func(driver.Rows) (answer, error)) (answer, time.Duration, error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(rawSettings))
	out := answer{}
	t0 := time.Now()
	for _, q := range queries {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			return nil, 0, err
		}
		a, err := scan(rows)
		rows.Close()
		if err != nil {
			return nil, 0, err
		}
		for k, v := range a {
			out[k] = v
		}
	}
	return out, time.Since(t0), nil
}

// rawSettings give the raw questions room: grouping the dossiers of a
// province holds them all in memory at once.
var rawSettings = clickhouse.Settings{
	"max_memory_usage":   int(12e9),
	"max_execution_time": 3600,
}

// compare lists the keys where got differs from want, absent keys counting
// as 0/0.
func compare(want, got answer) []string {
	var diffs []string
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for k := range keys {
		if w, g := want[k], got[k]; w != g {
			diffs = append(diffs, fmt.Sprintf("%s: want %d/%d, got %d/%d", k, w.num, w.den, g.num, g.den))
		}
	}
	sortStrings(diffs)
	return diffs
}
