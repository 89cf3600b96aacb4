package report

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/rollup"
)

// RankingQuery asks for the units at a level under a parent, ranked by an
// indicator over a range.
type RankingQuery struct {
	KPI     string
	Parent  string // "": the whole hierarchy
	Level   string // "": the level just below the parent
	Range   Range
	Order   string // asc, desc or "" (best first)
	Limit   int    // 0: 100
	Compare string
	By      string
	// Explain asks a dataset indicator's ranking where its figures came
	// from (Ranking.Explain).
	Explain bool
}

// Ranking is the answer to a RankingQuery.
type Ranking struct {
	KPI        string    `json:"kpi"`
	Parent     string    `json:"parent"`
	ParentName string    `json:"parent_name"`
	Level      string    `json:"level"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Order      string    `json:"order"`
	Unit       string    `json:"unit"`
	Compare    string    `json:"compare,omitempty"`
	By         string    `json:"by,omitempty"`
	Total      int       `json:"total"`
	Items      []Item    `json:"items"`
	// Explain is where a dataset indicator's figures came from, when
	// asked.
	Explain *Explain `json:"explain,omitempty"`
}

// Item is a ranked unit.
type Item struct {
	Rank int    `json:"rank"`
	Area string `json:"area"`
	Name string `json:"name"`
	Value
	Previous  *Earlier `json:"previous,omitempty"`
	Change    any      `json:"change,omitempty"`
	Breakdown []Share  `json:"breakdown,omitempty"`
}

// MaxLimit bounds the items of a ranking.
const MaxLimit = 5000

// levelBelow checks level against parent's and defaults it to the next one.
func (e *Engine) levelBelow(parent geo.Unit, level string) (string, error) {
	levels := e.h.Levels()
	at := -1
	if parent.Code != "" {
		at = slices.Index(levels, parent.Level)
	}
	if level == "" {
		if at+1 >= len(levels) {
			return "", limitf("%s is at the lowest level (%s): it has no units below it to rank", parent.Code, parent.Level)
		}
		return levels[at+1], nil
	}
	i := slices.Index(levels, level)
	if i < 0 {
		return "", invalidf("level %q is not one of %v", level, levels)
	}
	if i <= at {
		return "", limitf("level %s is not below %s (%s); rank %v", level, parent.Code, parent.Level, levels[at+1:])
	}
	return level, nil
}

// Ranking computes q.
func (e *Engine) Ranking(ctx context.Context, q RankingQuery) (Ranking, error) {
	r, err := e.ranking(ctx, q)
	if err == nil && q.Explain && r.Explain == nil {
		r.Explain = ofRecords(q.KPI)
	}
	return r, err
}

func (e *Engine) ranking(ctx context.Context, q RankingQuery) (Ranking, error) {
	di, fromDataset := e.lookupDataset(q.KPI)
	var d aggregate.Definition
	var err error
	if fromDataset {
		if di.lower {
			d.Direction = "lower_is_better"
		}
	} else {
		if d, err = indicator(q.KPI); err != nil {
			return Ranking{}, err
		}
		if err := checkBy(d, q.By); err != nil {
			return Ranking{}, err
		}
	}
	var parent geo.Unit
	var codes []string
	if q.Parent != "" {
		if parent, err = e.unit(q.Parent); err != nil {
			return Ranking{}, err
		}
		codes = e.h.Subtree(parent.Code)
	}
	level, err := e.levelBelow(parent, q.Level)
	if err != nil {
		return Ranking{}, err
	}
	switch q.Order {
	case "":
		q.Order = "desc"
		if d.Direction == "lower_is_better" {
			q.Order = "asc"
		}
	case "asc", "desc":
	default:
		return Ranking{}, invalidf("order %q is not asc or desc", q.Order)
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		return Ranking{}, limitf("limit %d is outside 1..%d", q.Limit, MaxLimit)
	}
	if fromDataset {
		return e.datasetRanking(ctx, di, q, parent, level)
	}
	targets := e.selectUnits(level, parent.Code)
	now, err := e.unitCounts(ctx, d, codes, q.Range, level)
	if err != nil {
		return Ranking{}, err
	}
	var then map[string]aggregate.Counts
	if q.Compare != "" {
		if then, err = e.unitCounts(ctx, d, codes, earlier(q.Range, q.Compare, e.loc), level); err != nil {
			return Ranking{}, err
		}
	}
	shares := map[string][]Share{}
	if q.By != "" {
		a := e.ask(codes, q.Range, none)
		a.ByArea, a.By = true, q.By
		cells, err := e.sum(ctx, d.Sources, a, nil)
		if err != nil {
			return Ranking{}, err
		}
		keyed := map[rollup.Cell]aggregate.Counts{}
		for c, n := range cells {
			if t := e.ancestorAt(c.Area, level); t != "" {
				k := rollup.Cell{Area: t, Key: c.Key}
				s := keyed[k]
				s.Add(n)
				keyed[k] = s
			}
		}
		for c, n := range keyed {
			p, _ := d.Parts(n)
			shares[c.Area] = append(shares[c.Area], Share{Key: c.Key, Value: valueOf(p)})
		}
	}
	out := Ranking{KPI: d.ID, Parent: parent.Code, ParentName: parent.Name, Level: level, From: q.Range.From, To: q.Range.To,
		Order: q.Order, Unit: d.Unit, Compare: q.Compare, By: q.By, Total: len(targets), Items: make([]Item, 0, len(targets))}
	for _, u := range targets {
		p, _ := d.Parts(now[u.Code])
		it := Item{Area: u.Code, Name: u.Name, Value: valueOf(p)}
		if q.Compare != "" {
			ep, _ := d.Parts(then[u.Code])
			it.Previous = &Earlier{Value: valueOf(ep)}
			it.Change = change(p.Value, ep.Value)
		}
		if q.By != "" {
			it.Breakdown = sortedShares(shares[u.Code])
		}
		out.Items = append(out.Items, it)
	}
	sortItems(out.Items, q.Order)
	if len(out.Items) > q.Limit {
		out.Items = out.Items[:q.Limit]
	}
	return out, nil
}

// sortItems ranks items by value, units without one last, ties by code.
func sortItems(items []Item, order string) {
	slices.SortFunc(items, func(a, b Item) int {
		switch {
		case a.Value.Value == nil && b.Value.Value == nil:
			return cmp.Compare(a.Area, b.Area)
		case a.Value.Value == nil:
			return 1
		case b.Value.Value == nil:
			return -1
		}
		c := cmp.Compare(*a.Value.Value, *b.Value.Value)
		if order == "desc" {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(a.Area, b.Area))
	})
	for i := range items {
		items[i].Rank = i + 1
	}
}

// ancestorAt returns the unit at level that holds code (code itself when it
// is at that level), or "" when code lies above the level.
func (e *Engine) ancestorAt(code, level string) string {
	for code != "" {
		u, ok := e.h.Unit(code)
		if !ok {
			return ""
		}
		if u.Level == level {
			return code
		}
		code = u.Parent
	}
	return ""
}

// unitCounts sums d's figures over r for every unit at level under codes
// (all units when nil), with the open balances at r's end when d needs
// them. Figures filed above the level count for no unit of it.
func (e *Engine) unitCounts(ctx context.Context, d aggregate.Definition, codes []string, r Range, level string) (map[string]aggregate.Counts, error) {
	return e.rolledUp(ctx, d.Sources, d.AtEnd, codes, r, "level "+level, func(code string) []string {
		if t := e.ancestorAt(code, level); t != "" {
			return []string{t}
		}
		return nil
	})
}

// rolledUp sums the sources over r per unit as filed, with the open
// balances at r's end when balance is set, and hands each unit's figures to
// every unit to returns; mapping names to (for the cache: the same name must
// always mean the same function). Over a closed range the answer comes from
// the cache while the rollups it read are unchanged; it is shared, and must
// not be modified.
func (e *Engine) rolledUp(ctx context.Context, sources []aggregate.Source, balance bool, codes []string, r Range, mapping string, to func(code string) []string) (map[string]aggregate.Counts, error) {
	compute := func() (map[string]aggregate.Counts, error) {
		filed, err := e.sumFiled(ctx, sources, balance, codes, r)
		if err != nil {
			return nil, err
		}
		out := map[string]aggregate.Counts{}
		for area, n := range filed {
			for _, u := range to(area) {
				t := out[u]
				t.Add(n)
				out[u] = t
			}
		}
		return out, nil
	}
	if !e.closed(r) {
		return compute()
	}
	a := e.ask(codes, r, none)
	a.ByArea = true
	reads := e.rollups.Reads(a, sources...)
	if balance {
		reads = append(reads, e.rollups.BalanceReads(e.judgedAt(r.To))...)
	}
	v, err := e.remember(ctx, questionKey("units:"+mapping, sources, balance, codes, r, none), reads, func() (any, int, error) {
		out, err := compute()
		return out, len(out), err
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string]aggregate.Counts), nil
}

// sumFiled sums the sources over r per unit as filed, with the open
// balances at r's end when balance is set, reading both at once.
func (e *Engine) sumFiled(ctx context.Context, sources []aggregate.Source, balance bool, codes []string, r Range) (map[string]aggregate.Counts, error) {
	var cells map[rollup.Cell]aggregate.Counts
	var b map[string]rollup.Balance
	asks := []func() error{func() (err error) {
		a := e.ask(codes, r, none)
		a.ByArea = true
		cells, err = e.sum(ctx, sources, a, nil)
		return err
	}}
	if balance {
		asks = append(asks, func() (err error) {
			b, err = e.balances(ctx, codes, e.judgedAt(r.To), true)
			return err
		})
	}
	if err := parallel(asks...); err != nil {
		return nil, err
	}
	filed := map[string]aggregate.Counts{}
	for c, n := range cells {
		t := filed[c.Area]
		t.Add(n)
		filed[c.Area] = t
	}
	for area, v := range b {
		t := filed[area]
		t.OpenAtEnd, t.LateAtEnd = uint64(max(v.Open, 0)), uint64(max(v.Late, 0))
		filed[area] = t
	}
	return filed, nil
}
