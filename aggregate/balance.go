package aggregate

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/chstore"
)

// Balance is what a unit's dossiers add up to at a moment: how many are
// open, and how many of those are past their deadline under the rules of
// dossier.Derive (waits for the citizen's documents left out, a second
// request for documents late at once).
type Balance struct {
	Open, Late int64
}

// Balances reads the balances of the dossier flow rollups. It is the one
// reader of dossiers open, and open past their deadline, at a moment: the
// live dossiers_overdue and the history's open dossiers at a period's end
// both come from it, so that a dossier is late on the wall exactly when it
// is late in the reports.
//
// Concurrency: safe for concurrent use.
type Balances struct {
	conn driver.Conn
	db   string
	loc  *time.Location // the zone the day and month rollups are cut in
}

// NewBalances returns a reader over the store's rollups.
func NewBalances(store *chstore.Store) (Balances, error) {
	loc, err := time.LoadLocation(store.TimeZone())
	if err != nil {
		return Balances{}, fmt.Errorf("load the rollups' time zone %s: %w", store.TimeZone(), err)
	}
	return Balances{conn: store.Conn(), db: store.Database(), loc: loc}, nil
}

// balancePart is a piece of the past read from one rollup table: [from,
// to), or everything before to when open.
type balancePart struct {
	table    string // minute, hour, day or month
	from, to time.Time
	open     bool
}

// balanceParts tiles the time before at with the coarsest rollups: months
// before at's month, days before at's day, then whole hours, and minutes
// for the ragged ends (the current hour, and the start of the day where the
// zone's midnight is not a whole hour). No bucket that begins at or after
// at is read: a dossier's turn to late is stored ahead, at the moment it
// comes, so later rows exist and must not count yet.
func balanceParts(at time.Time, loc *time.Location) []balancePart {
	l := at.In(loc)
	month := time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	parts := []balancePart{{table: "month", to: month, open: true}}
	add := func(table string, from, to time.Time) {
		if to.After(from) {
			parts = append(parts, balancePart{table: table, from: from, to: to})
		}
	}
	add("day", month, day)
	// The rollups' hours are UTC hours, which Truncate gives.
	firstHour, lastHour := day.Truncate(time.Hour), at.Truncate(time.Hour)
	if firstHour.Before(day) {
		firstHour = firstHour.Add(time.Hour)
	}
	if !lastHour.After(firstHour) {
		add("minute", day, at)
		return parts
	}
	add("minute", day, firstHour)
	add("hour", firstHour, lastHour)
	add("minute", lastHour, at)
	return parts
}

// Read is a window of buckets a reader takes from one rollup table:
// [From, To), from the table's first bucket when From is zero. For tables of
// local days and months, From and To are local midnights.
type Read struct {
	Table    string // e.g. dossier_flow_month
	From, To time.Time
}

// Reads lists what At reads for the moment at: the same tiling, so that a
// cache of figures built on balances can tell when any of it changed.
func (b Balances) Reads(at time.Time) []Read {
	parts := balanceParts(at, b.loc)
	out := make([]Read, 0, len(parts))
	for _, p := range parts {
		r := Read{Table: "dossier_flow_" + p.table, From: p.from, To: p.to}
		if p.open {
			r.From = time.Time{}
		}
		out = append(out, r)
	}
	return out
}

// At returns the balances at the moment at for the units in codes (every
// unit of the hierarchy when nil): per unit as filed when byArea, else in
// one entry under "". They are the sums of the open and late-open changes
// in every rollup bucket that begins before at — at a whole hour, exactly
// the changes stamped before it; within an hour, a change counts from the
// start of its minute.
func (b Balances) At(ctx context.Context, hierarchy string, codes []string, at time.Time, byArea bool) (map[string]Balance, error) {
	if codes != nil && len(codes) == 0 {
		return map[string]Balance{}, nil
	}
	area := "''"
	if byArea {
		area = "area_code"
	}
	var q string
	var args []any
	for i, p := range balanceParts(at, b.loc) {
		var filter string
		switch {
		case p.table == "month":
			filter, args = "m < toDate(?)", append(args, hierarchy, p.to.Format("2006-01-02"))
		case p.table == "day":
			filter, args = "d >= toDate(?) AND d < toDate(?)", append(args, hierarchy, p.from.Format("2006-01-02"), p.to.Format("2006-01-02"))
		default:
			filter, args = "t >= ? AND t < ?", append(args, hierarchy, chstore.Time(p.from), chstore.Time(p.to))
		}
		if codes != nil {
			filter, args = filter+" AND area_code IN ?", append(args, chstore.In(codes))
		}
		if i > 0 {
			q += " UNION ALL "
		}
		q += `SELECT ` + area + ` AS a, sum(open) AS o, sum(late_open) AS l FROM ` + b.db + `.dossier_flow_` + p.table +
			` WHERE hierarchy = ? AND ` + filter + ` GROUP BY a`
	}
	rows, err := b.conn.Query(ctx, `SELECT a, sum(o), sum(l) FROM (`+q+`) GROUP BY a`, args...)
	if err != nil {
		return nil, fmt.Errorf("query open dossier balances: %w", err)
	}
	defer rows.Close()
	out := map[string]Balance{}
	for rows.Next() {
		var a string
		var v Balance
		if err := rows.Scan(&a, &v.Open, &v.Late); err != nil {
			return nil, fmt.Errorf("read open dossier balances: %w", err)
		}
		out[a] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read open dossier balances: %w", err)
	}
	return out, nil
}
