package report

import (
	"context"
	"time"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/rollup"
)

// SeriesQuery asks for an indicator of a unit step by step.
type SeriesQuery struct {
	KPI     string
	Area    string
	Range   Range
	Step    Step
	Compare string // "", previous or year_ago
	By      string // a breakdown dimension, or ""
	// Explain asks a dataset indicator's series where its figures came
	// from (Series.Explain).
	Explain bool
}

// Series is an indicator of a unit step by step.
type Series struct {
	KPI       string    `json:"kpi"`
	Area      string    `json:"area"`
	Name      string    `json:"name"`
	Level     string    `json:"level"`
	Hierarchy string    `json:"hierarchy"`
	Step      Step      `json:"step"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Unit      string    `json:"unit"`
	Compare   string    `json:"compare,omitempty"`
	By        string    `json:"by,omitempty"`
	Points    []Point   `json:"points"`
	// Explain is where a dataset indicator's figures came from, when
	// asked.
	Explain *Explain `json:"explain,omitempty"`
}

// Point is one step of a series.
type Point struct {
	T time.Time `json:"t"`
	Value
	Previous  *Earlier `json:"previous,omitempty"`
	Change    any      `json:"change,omitempty"`
	Breakdown []Share  `json:"breakdown,omitempty"`
}

// Earlier is the figure a point or item is compared with.
type Earlier struct {
	T *time.Time `json:"t,omitempty"`
	Value
}

// Series computes q.
func (e *Engine) Series(ctx context.Context, q SeriesQuery) (Series, error) {
	s, err := e.series(ctx, q)
	if err == nil && q.Explain && s.Explain == nil {
		s.Explain = ofRecords(q.KPI)
	}
	return s, err
}

func (e *Engine) series(ctx context.Context, q SeriesQuery) (Series, error) {
	if di, ok := e.lookupDataset(q.KPI); ok {
		return e.datasetSeries(ctx, di, q)
	}
	d, err := indicator(q.KPI)
	if err != nil {
		return Series{}, err
	}
	if err := checkBy(d, q.By); err != nil {
		return Series{}, err
	}
	if q.By != "" && q.Step == Hour {
		return Series{}, limitf("breakdowns are kept by day: use step day, week or month")
	}
	u, err := e.unit(q.Area)
	if err != nil {
		return Series{}, err
	}
	out := Series{KPI: d.ID, Area: u.Code, Name: u.Name, Level: u.Level, Hierarchy: e.h.Name(), Step: q.Step,
		From: q.Range.From, To: q.Range.To, Unit: d.Unit, Compare: q.Compare, By: q.By}
	codes := e.h.Subtree(u.Code)
	r := q.Range
	if q.Compare == "previous" {
		r.From = prev(r.From, q.Step, e.loc)
	}
	counts, err := e.stepCounts(ctx, d, codes, r, q.Step)
	if err != nil {
		return Series{}, err
	}
	var earlier map[int64]aggregate.Counts
	if q.Compare == "year_ago" {
		ago := Range{yearAgo(q.Range.From, q.Step, e.loc), yearAgo(q.Range.To, q.Step, e.loc)}
		if earlier, err = e.stepCounts(ctx, d, codes, ago, q.Step); err != nil {
			return Series{}, err
		}
	}
	var shares map[rollup.Cell]aggregate.Counts
	if q.By != "" {
		a := e.ask(codes, q.Range, q.Step)
		a.By = q.By
		if shares, err = e.sum(ctx, d.Sources, a, nil); err != nil {
			return Series{}, err
		}
	}
	byStep := map[int64][]Share{}
	for c, n := range shares {
		p, _ := d.Parts(n)
		byStep[c.T] = append(byStep[c.T], Share{Key: c.Key, Value: valueOf(p)})
	}
	out.Points = []Point{}
	for _, t := range steps(q.Range, q.Step) {
		p, _ := d.Parts(counts[t.Unix()])
		pt := Point{T: t, Value: valueOf(p)}
		if q.Compare != "" {
			then := prev(t, q.Step, e.loc)
			n := counts[then.Unix()]
			if q.Compare == "year_ago" {
				then = yearAgo(t, q.Step, e.loc)
				n = earlier[then.Unix()]
			}
			ep, _ := d.Parts(n)
			pt.Previous = &Earlier{T: &then, Value: valueOf(ep)}
			pt.Change = change(p.Value, ep.Value)
		}
		if q.By != "" {
			pt.Breakdown = sortedShares(byStep[t.Unix()])
		}
		out.Points = append(out.Points, pt)
	}
	return out, nil
}

// stepCounts sums d's figures over codes for every step of r, with the
// open balances at each step's end when d needs them. Over a closed range
// the answer comes from the cache while the rollups it read are unchanged;
// it is shared, and must not be modified.
func (e *Engine) stepCounts(ctx context.Context, d aggregate.Definition, codes []string, r Range, s Step) (map[int64]aggregate.Counts, error) {
	sources := d.Sources
	if !e.closed(r) {
		return e.sumSteps(ctx, sources, d.AtEnd, codes, r, s)
	}
	reads := e.rollups.Reads(e.ask(codes, r, s), sources...)
	if d.AtEnd {
		reads = append(reads, e.rollups.BalanceReads(r.From)...)
	}
	v, err := e.remember(ctx, questionKey("steps", sources, d.AtEnd, codes, r, s), reads, func() (any, int, error) {
		out, err := e.sumSteps(ctx, sources, d.AtEnd, codes, r, s)
		return out, len(out), err
	})
	if err != nil {
		return nil, err
	}
	return v.(map[int64]aggregate.Counts), nil
}

// sumSteps reads what stepCounts answers: the sums and, when balance is
// set, the balances at r's start, at once.
func (e *Engine) sumSteps(ctx context.Context, sources []aggregate.Source, balance bool, codes []string, r Range, s Step) (map[int64]aggregate.Counts, error) {
	var deltas map[rollup.Cell][2]int64
	if balance {
		deltas = map[rollup.Cell][2]int64{}
	}
	var cells map[rollup.Cell]aggregate.Counts
	var start map[string]rollup.Balance
	asks := []func() error{func() (err error) {
		cells, err = e.sum(ctx, sources, e.ask(codes, r, s), deltas)
		return err
	}}
	if balance {
		asks = append(asks, func() (err error) {
			start, err = e.balances(ctx, codes, r.From, false)
			return err
		})
	}
	if err := parallel(asks...); err != nil {
		return nil, err
	}
	out := make(map[int64]aggregate.Counts, len(cells))
	for c, n := range cells {
		out[c.T] = n
	}
	if deltas == nil {
		return out, nil
	}
	// A step not yet over is judged as of now; so are later ones.
	now := e.judgedAt(r.To)
	var current rollup.Balance
	if now.Before(r.To) {
		b, err := e.balances(ctx, codes, now, false)
		if err != nil {
			return nil, err
		}
		current = b[""]
	}
	open, late := start[""].Open, start[""].Late
	for _, t := range steps(r, s) {
		dt := deltas[rollup.Cell{T: t.Unix()}]
		open, late = open+dt[0], late+dt[1]
		o, l := open, late
		if rollup.Next(t, s).After(now) {
			o, l = current.Open, current.Late
		}
		n := out[t.Unix()]
		n.OpenAtEnd, n.LateAtEnd = uint64(max(o, 0)), uint64(max(l, 0))
		out[t.Unix()] = n
	}
	return out, nil
}

// prev is the start of the step before the one starting at t.
func prev(t time.Time, s Step, loc *time.Location) time.Time {
	switch s {
	case Hour:
		return t.Add(-time.Hour)
	case Week:
		return t.AddDate(0, 0, -7)
	case Month:
		return t.AddDate(0, -1, 0)
	case Quarter:
		return t.AddDate(0, -3, 0)
	case Year:
		return t.AddDate(-1, 0, 0)
	}
	return rollup.Floor(t.AddDate(0, 0, -1), Day, loc)
}

// yearAgo is the start of the same step a year earlier: 52 weeks for
// weeks, so that weeks stay Mondays.
func yearAgo(t time.Time, s Step, loc *time.Location) time.Time {
	if s == Week {
		return t.AddDate(0, 0, -7*52)
	}
	return rollup.Floor(t.AddDate(-1, 0, 0), s, loc)
}
