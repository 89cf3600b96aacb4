package rollup

import (
	"context"
	"time"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/internal/chstore"
)

// Balance is what a unit's dossiers add up to at a moment: how many are
// open, and how many of those are past their deadline under the rules of
// dossier.Derive (waits for the citizen's documents left out, a second
// request for documents late at once).
type Balance struct {
	Open, Late int64
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

// Read is a window of buckets a reader takes from one table: [From, To),
// from the table's first bucket when From is zero. For tables of local
// days and months, From and To are local midnights. A cache of what was
// read changes when any part of these windows does.
type Read struct {
	Table    string // e.g. dossier_flow_month
	From, To time.Time
}

// BalanceReads lists what Balances reads for the moment at: the same
// tiling, so that a cache of figures built on balances can tell when any
// of it changed.
func (r *Reader) BalanceReads(at time.Time) []Read {
	parts := balanceParts(at, r.loc)
	out := make([]Read, 0, len(parts))
	for _, p := range parts {
		rd := Read{Table: flowPrefix + p.table, From: p.from, To: p.to}
		if p.open {
			rd.From = time.Time{}
		}
		out = append(out, rd)
	}
	return out
}

// Balances returns the balances at the moment at for the units of s: per
// unit as filed when byArea, else in one entry under "". They are the sums
// of the open and late-open changes in every rollup bucket that begins
// before at — at a whole hour, exactly the changes stamped before it;
// within an hour, a change counts from the start of its minute.
//
// It is the one reader of dossiers open, and open past their deadline, at
// a moment: the live dossiers_overdue and the history's open dossiers at a
// period's end both come from it, so that a dossier is late on the wall
// exactly when it is late in the reports.
func (r *Reader) Balances(ctx context.Context, s Scope, at time.Time, byArea bool) (map[string]Balance, error) {
	if s.Codes != nil && len(s.Codes) == 0 {
		return map[string]Balance{}, nil
	}
	area := "''"
	if byArea {
		area = "area_code"
	}
	open, late := dossier.Table[dossier.Open].Column, dossier.Table[dossier.LateOpen].Column
	var q string
	var args []any
	for i, p := range balanceParts(at, r.loc) {
		var filter string
		switch {
		case p.table == "month":
			filter, args = "m < toDate(?)", append(args, s.Hierarchy, p.to.Format("2006-01-02"))
		case p.table == "day":
			filter, args = "d >= toDate(?) AND d < toDate(?)", append(args, s.Hierarchy, p.from.Format("2006-01-02"), p.to.Format("2006-01-02"))
		default:
			filter, args = "t >= ? AND t < ?", append(args, s.Hierarchy, chstore.Time(p.from), chstore.Time(p.to))
		}
		var codes string
		codes, args = s.filter(args)
		filter += codes
		if i > 0 {
			q += " UNION ALL "
		}
		q += `SELECT ` + area + ` AS a, sum(` + open + `) AS o, sum(` + late + `) AS l FROM ` + r.db + `.` + flowPrefix + p.table +
			` WHERE hierarchy = ? AND ` + filter + ` GROUP BY a`
	}
	out := map[string]Balance{}
	err := r.query(ctx, "open dossier balances", `SELECT a, sum(o), sum(l) FROM (`+q+`) GROUP BY a`, args, func(scan func(...any) error) error {
		var a string
		var v Balance
		if err := scan(&a, &v.Open, &v.Late); err != nil {
			return err
		}
		out[a] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
