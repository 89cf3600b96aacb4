package report

import (
	"context"
	"slices"
	"time"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/dataset"
	"github.com/openioc/ioc/geo"
)

// Datasets is the department datasets whose indicators series and
// rankings answer as they do the catalog's: dataset.Datasets.
type Datasets interface {
	// Indicator resolves "<dataset>.<id>".
	Indicator(id string) (dataset.Definition, string, bool)
	Figures(ctx context.Context, d dataset.Definition, groups []dataset.Group, from, to time.Time, step dataset.Grain) (map[string]map[time.Time]dataset.Figure, error)
	// Sources, UploadsOf and Version tell where figures came from
	// (Explain).
	Sources(ctx context.Context, d dataset.Definition, groups []dataset.Group, from, to time.Time, step dataset.Grain, measures []string) (map[string]map[time.Time]dataset.Sources, error)
	UploadsOf(ctx context.Context, set string, ids []string) ([]dataset.Upload, error)
	Version(set string) uint32
}

// datasetIndicator is a dataset's indicator asked for by its catalog id.
type datasetIndicator struct {
	def     dataset.Definition
	id      string // within the dataset
	full    string
	unit    string
	lower   bool             // lower is better
	formula *dataset.Formula // a derived indicator's; nil for a measure or ratio
}

// lookupDataset finds id among the datasets' indicators.
func (e *Engine) lookupDataset(id string) (datasetIndicator, bool) {
	if e.datasets == nil {
		return datasetIndicator{}, false
	}
	d, local, ok := e.datasets.Indicator(id)
	if !ok {
		return datasetIndicator{}, false
	}
	for _, c := range d.Catalog() {
		if c.ID == id {
			di := datasetIndicator{def: d, id: local, full: id, unit: c.Unit, lower: c.Direction == "lower_is_better"}
			di.formula, _ = d.Formula(local)
			return di, true
		}
	}
	return datasetIndicator{}, false
}

// grainOf is the dataset grain of a series step: a step finer than the
// dataset's grain, or one that is no grain, is refused.
func grainOf(d dataset.Definition, full string, s Step) (dataset.Grain, error) {
	if s == none {
		return "", nil
	}
	g := dataset.Grain(s)
	if !g.Valid() {
		return "", limitf("%s is given per %s: a series of it goes by day, month, quarter or year, not %s", full, d.Grain, s)
	}
	if slices.Index(dataset.Grains, g) < slices.Index(dataset.Grains, d.Grain) {
		return "", limitf("%s is given per %s: a series of it goes by %s or a longer step, not %s", full, d.Grain, d.Grain, s)
	}
	return g, nil
}

// civilRange is the dates of r's first day and of the day after its last
// in the zone: the periods a dataset range takes are those starting in it.
func (e *Engine) civilRange(r Range) (time.Time, time.Time) {
	date := func(t time.Time) time.Time {
		y, m, d := t.In(e.loc).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	to := date(r.To)
	if !e.local(to).Equal(r.To) {
		to = to.AddDate(0, 0, 1)
	}
	return date(r.From), to
}

// local is a civil date as the start of that day in the zone.
func (e *Engine) local(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, e.loc)
}

// keyed is figures by unit and step: the step's start (Unix seconds), or 0
// over a whole range.
type keyed map[string]map[int64]Value

func (k keyed) put(unit string, t int64, v Value) {
	if k[unit] == nil {
		k[unit] = map[int64]Value{}
	}
	k[unit][t] = v
}

// figuresOf computes di for each of units (each over its subtree) over r,
// by step (series: one unit) or over the whole range (rankings: the units
// at level under the parent's codes, nil for all). A derived indicator's
// names are computed as their own answers would be, then the formula.
func (e *Engine) figuresOf(ctx context.Context, di datasetIndicator, units []string, level string, codes []string, r Range, step Step) (keyed, error) {
	if di.formula == nil {
		return e.datasetFigures(ctx, di.def, di.id, di.full, units, level, r, step)
	}
	if _, err := grainOf(di.def, di.full, step); err != nil {
		return nil, err
	}
	// The operands are read at once: each is a query of its own.
	names := di.formula.Names()
	operands := make([]keyed, len(names))
	reads := make([]func() error, 0, len(names))
	for i, name := range names {
		id := di.def.Operand(name)
		if od, local, ok := e.datasets.Indicator(id); ok && od.ID+"."+local == id {
			reads = append(reads, func() (err error) {
				operands[i], err = e.datasetFigures(ctx, od, local, id, units, level, r, step)
				return err
			})
			continue
		}
		d, ok := aggregate.Lookup(id)
		if !ok || !d.History {
			continue // a name that went away since: no figures
		}
		reads = append(reads, func() error {
			k := keyed{}
			if step == none {
				counts, err := e.unitCounts(ctx, d, codes, r, level)
				if err != nil {
					return err
				}
				for _, u := range units {
					p, _ := d.Parts(counts[u])
					k.put(u, 0, valueOf(p))
				}
			} else {
				counts, err := e.stepCounts(ctx, d, e.h.Subtree(units[0]), r, step)
				if err != nil {
					return err
				}
				for _, t := range steps(r, step) {
					p, _ := d.Parts(counts[t.Unix()])
					k.put(units[0], t.Unix(), valueOf(p))
				}
			}
			operands[i] = k
			return nil
		})
	}
	if len(reads) > 0 {
		if err := parallel(reads...); err != nil {
			return nil, err
		}
	}
	times := []int64{0}
	if step != none {
		times = times[:0]
		for _, t := range steps(r, step) {
			times = append(times, t.Unix())
		}
	}
	out := keyed{}
	for _, u := range units {
		for _, t := range times {
			v, ok := di.formula.Eval(func(name string) (float64, bool) {
				x := operands[slices.Index(names, name)][u][t].Value
				if x == nil {
					return 0, false
				}
				return *x, true
			})
			if ok {
				out.put(u, t, Value{Value: f64(round4(v))})
			}
		}
	}
	return out, nil
}

// datasetFigures computes a dataset's measure or ratio for each of units
// over r, by step or over the whole range.
func (e *Engine) datasetFigures(ctx context.Context, d dataset.Definition, id, full string, units []string, level string, r Range, step Step) (keyed, error) {
	g, err := grainOf(d, full, step)
	if err != nil {
		return nil, err
	}
	if levels := e.h.Levels(); level != "" && d.Level != dataset.LevelPoint && slices.Index(levels, d.Level) < slices.Index(levels, level) {
		return nil, limitf("%s is given per %s: rank units at level %s or above", full, d.Level, d.Level)
	}
	groups := make([]dataset.Group, len(units))
	for i, u := range units {
		groups[i] = dataset.Group{Key: u, Units: d.Leaves(e.h, u)}
	}
	from, to := e.civilRange(r)
	figs, err := e.datasets.Figures(ctx, d, groups, from, to, g)
	if err != nil {
		return nil, err
	}
	out := keyed{}
	for _, u := range units {
		for t, f := range figs[u] {
			p, _ := d.Parts(id, f)
			at := int64(0)
			if !t.IsZero() {
				at = e.local(t).Unix()
			}
			out.put(u, at, Value{p.Value, p.Num, p.Den})
		}
	}
	return out, nil
}

// datasetSeries is Series for a dataset's indicator.
func (e *Engine) datasetSeries(ctx context.Context, di datasetIndicator, q SeriesQuery) (Series, error) {
	if q.By != "" {
		return Series{}, limitf("%s has no breakdowns", di.full)
	}
	if _, err := grainOf(di.def, di.full, q.Step); err != nil {
		return Series{}, err
	}
	u, err := e.unit(q.Area)
	if err != nil {
		return Series{}, err
	}
	r := q.Range
	if q.Compare == "previous" {
		r.From = prev(r.From, q.Step, e.loc)
	}
	now, err := e.figuresOf(ctx, di, []string{u.Code}, "", nil, r, q.Step)
	if err != nil {
		return Series{}, err
	}
	var ago keyed
	if q.Compare == "year_ago" {
		a := Range{yearAgo(q.Range.From, q.Step, e.loc), yearAgo(q.Range.To, q.Step, e.loc)}
		if ago, err = e.figuresOf(ctx, di, []string{u.Code}, "", nil, a, q.Step); err != nil {
			return Series{}, err
		}
	}
	out := Series{KPI: di.full, Area: u.Code, Name: u.Name, Level: u.Level, Hierarchy: e.h.Name(), Step: q.Step,
		From: q.Range.From, To: q.Range.To, Unit: di.unit, Compare: q.Compare, Points: []Point{}}
	if q.Explain {
		if out.Explain, err = e.explain(ctx, di, []string{u.Code}, q.Range, q.Step); err != nil {
			return Series{}, err
		}
	}
	for _, t := range steps(q.Range, q.Step) {
		v := now[u.Code][t.Unix()]
		pt := Point{T: t, Value: v}
		if q.Compare != "" {
			then := prev(t, q.Step, e.loc)
			ev := now[u.Code][then.Unix()]
			if q.Compare == "year_ago" {
				then = yearAgo(t, q.Step, e.loc)
				ev = ago[u.Code][then.Unix()]
			}
			pt.Previous = &Earlier{T: &then, Value: ev}
			pt.Change = change(v.Value, ev.Value)
		}
		out.Points = append(out.Points, pt)
	}
	return out, nil
}

// datasetRanking is Ranking for a dataset's indicator; q's order, limit
// and level are already checked.
func (e *Engine) datasetRanking(ctx context.Context, di datasetIndicator, q RankingQuery, parent geo.Unit, level string) (Ranking, error) {
	if q.By != "" {
		return Ranking{}, limitf("%s has no breakdowns", di.full)
	}
	targets := e.selectUnits(level, parent.Code)
	units := make([]string, len(targets))
	for i, u := range targets {
		units[i] = u.Code
	}
	var codes []string
	if parent.Code != "" {
		codes = e.h.Subtree(parent.Code)
	}
	now, err := e.figuresOf(ctx, di, units, level, codes, q.Range, none)
	if err != nil {
		return Ranking{}, err
	}
	var then keyed
	if q.Compare != "" {
		if then, err = e.figuresOf(ctx, di, units, level, codes, earlier(q.Range, q.Compare, e.loc), none); err != nil {
			return Ranking{}, err
		}
	}
	out := Ranking{KPI: di.full, Parent: parent.Code, ParentName: parent.Name, Level: level, From: q.Range.From, To: q.Range.To,
		Order: q.Order, Unit: di.unit, Compare: q.Compare, Total: len(targets), Items: make([]Item, 0, len(targets))}
	if q.Explain {
		if out.Explain, err = e.explain(ctx, di, units, q.Range, none); err != nil {
			return Ranking{}, err
		}
	}
	for _, u := range targets {
		v := now[u.Code][0]
		it := Item{Area: u.Code, Name: u.Name, Value: v}
		if q.Compare != "" {
			ev := then[u.Code][0]
			it.Previous = &Earlier{Value: ev}
			it.Change = change(v.Value, ev.Value)
		}
		out.Items = append(out.Items, it)
	}
	sortItems(out.Items, q.Order)
	if len(out.Items) > q.Limit {
		out.Items = out.Items[:q.Limit]
	}
	return out, nil
}
