package report

import (
	"context"
	"slices"
	"time"

	"github.com/openioc/ioc/dataset"
	"github.com/openioc/ioc/geo"
)

// Datasets is the department datasets whose indicators series and
// rankings answer as they do the catalog's: dataset.Datasets.
type Datasets interface {
	// Indicator resolves "<dataset>.<id>".
	Indicator(id string) (dataset.Definition, string, bool)
	Figures(ctx context.Context, d dataset.Definition, groups []dataset.Group, from, to time.Time, step dataset.Grain) (map[string]map[time.Time]dataset.Figure, error)
}

// datasetIndicator is a dataset's indicator asked for by its catalog id.
type datasetIndicator struct {
	def   dataset.Definition
	id    string // within the dataset
	full  string
	unit  string
	lower bool // lower is better
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
			return datasetIndicator{def: d, id: local, full: id, unit: c.Unit, lower: c.Direction == "lower_is_better"}, true
		}
	}
	return datasetIndicator{}, false
}

// value is a dataset figure as an answer's value.
func (di datasetIndicator) value(f dataset.Figure) Value {
	p, _ := di.def.Parts(di.id, f)
	return Value{p.Value, p.Num, p.Den}
}

// grainOf is the dataset grain of a series step: a step finer than the
// dataset's grain, or one that is no grain, is refused.
func (di datasetIndicator) grainOf(s Step) (dataset.Grain, error) {
	g := dataset.Grain(s)
	if !g.Valid() {
		return "", limitf("%s is given per %s: a series of it goes by day, month, quarter or year, not %s", di.full, di.def.Grain, s)
	}
	if slices.Index(dataset.Grains, g) < slices.Index(dataset.Grains, di.def.Grain) {
		return "", limitf("%s is given per %s: a series of it goes by %s or a longer step, not %s", di.full, di.def.Grain, di.def.Grain, s)
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

// leaves lists the units under code (itself included) at the dataset's
// level, those its values are given for; every unit for points, which
// are placed in the finest unit that holds them.
func (e *Engine) leaves(d dataset.Definition, code string) []string {
	var out []string
	for _, c := range e.h.Subtree(code) {
		if u, ok := e.h.Unit(c); ok && (d.Level == dataset.LevelPoint || u.Level == d.Level) {
			out = append(out, c)
		}
	}
	return out
}

// datasetSeries is Series for a dataset's indicator.
func (e *Engine) datasetSeries(ctx context.Context, di datasetIndicator, q SeriesQuery) (Series, error) {
	if q.By != "" {
		return Series{}, limitf("%s has no breakdowns", di.full)
	}
	g, err := di.grainOf(q.Step)
	if err != nil {
		return Series{}, err
	}
	u, err := e.unit(q.Area)
	if err != nil {
		return Series{}, err
	}
	groups := []dataset.Group{{Key: u.Code, Units: e.leaves(di.def, u.Code)}}
	from, to := e.civilRange(q.Range)
	readFrom := from
	if q.Compare == "previous" {
		readFrom = g.Floor(from.AddDate(0, 0, -1))
	}
	figs, err := e.datasets.Figures(ctx, di.def, groups, readFrom, to, g)
	if err != nil {
		return Series{}, err
	}
	steps := figs[u.Code]
	var ago map[time.Time]dataset.Figure
	if q.Compare == "year_ago" {
		agoFigs, err := e.datasets.Figures(ctx, di.def, groups, from.AddDate(-1, 0, 0), to.AddDate(-1, 0, 0), g)
		if err != nil {
			return Series{}, err
		}
		ago = agoFigs[u.Code]
	}
	out := Series{KPI: di.full, Area: u.Code, Name: u.Name, Level: u.Level, Hierarchy: e.h.Name(), Step: q.Step,
		From: q.Range.From, To: q.Range.To, Unit: di.unit, Compare: q.Compare, Points: []Point{}}
	for t := g.Floor(from); t.Before(to); t = g.Next(t) {
		v := di.value(steps[t])
		pt := Point{T: e.local(t), Value: v}
		if q.Compare != "" {
			then, f := g.Floor(t.AddDate(0, 0, -1)), steps[g.Floor(t.AddDate(0, 0, -1))]
			if q.Compare == "year_ago" {
				then = t.AddDate(-1, 0, 0)
				f = ago[then]
			}
			ev := di.value(f)
			at := e.local(then)
			pt.Previous = &Earlier{T: &at, Value: ev}
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
	levels := e.h.Levels()
	if di.def.Level != dataset.LevelPoint && slices.Index(levels, di.def.Level) < slices.Index(levels, level) {
		return Ranking{}, limitf("%s is given per %s: rank units at level %s or above", di.full, di.def.Level, di.def.Level)
	}
	targets := e.selectUnits(level, parent.Code)
	groups := make([]dataset.Group, len(targets))
	for i, u := range targets {
		groups[i] = dataset.Group{Key: u.Code, Units: e.leaves(di.def, u.Code)}
	}
	read := func(r Range) (map[string]map[time.Time]dataset.Figure, error) {
		from, to := e.civilRange(r)
		return e.datasets.Figures(ctx, di.def, groups, from, to, "")
	}
	now, err := read(q.Range)
	if err != nil {
		return Ranking{}, err
	}
	var then map[string]map[time.Time]dataset.Figure
	if q.Compare != "" {
		if then, err = read(earlier(q.Range, q.Compare, e.loc)); err != nil {
			return Ranking{}, err
		}
	}
	out := Ranking{KPI: di.full, Parent: parent.Code, ParentName: parent.Name, Level: level, From: q.Range.From, To: q.Range.To,
		Order: q.Order, Unit: di.unit, Compare: q.Compare, Total: len(targets), Items: make([]Item, 0, len(targets))}
	for _, u := range targets {
		v := di.value(now[u.Code][time.Time{}])
		it := Item{Area: u.Code, Name: u.Name, Value: v}
		if q.Compare != "" {
			ev := di.value(then[u.Code][time.Time{}])
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
