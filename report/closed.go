package report

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/chstore"
)

// Closed is a period whose figures are frozen for official reporting.
type Closed struct {
	Period   string    `json:"period"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	ClosedBy string    `json:"closed_by"`
	ClosedAt time.Time `json:"closed_at"`
	Note     string    `json:"note"`
	Figures  int       `json:"figures,omitempty"`
}

// Frozen is a unit's closed figure beside its live one.
type Frozen struct {
	Area   string `json:"area"`
	Name   string `json:"name"`
	KPI    string `json:"kpi"`
	Closed Value  `json:"closed"`
	Live   Value  `json:"live"`
	// Drift is the live value less the closed one: how far corrections
	// made since have moved the figure.
	Drift any `json:"drift"`
}

// ClosedFigures are a closed period's figures for a unit and its children.
type ClosedFigures struct {
	Closed
	Area  string   `json:"area"`
	Items []Frozen `json:"items"`
}

// official lists the indicators a close freezes: the dossier and feedback
// ones, which official reports carry.
func official() []aggregate.Definition {
	var out []aggregate.Definition
	for _, d := range aggregate.Catalog() {
		if !d.History {
			continue
		}
		ok := true
		for _, s := range sourcesOf(d) {
			ok = ok && (s == flowSource || s == feedbackSource)
		}
		if ok {
			out = append(out, d)
		}
	}
	return out
}

// officialCounts sums the official figures over r for every unit under
// codes (all when nil), each unit over its whole subtree.
func (e *Engine) officialCounts(ctx context.Context, codes []string, r Range) (map[string]aggregate.Counts, error) {
	return e.rolledUp(ctx, []source{flowSource, feedbackSource}, true, codes, r, func(code string) []string {
		var out []string
		for _, u := range e.h.Ancestors(code) {
			out = append(out, u.Code)
		}
		return append(out, code)
	})
}

// Close freezes every official indicator of every unit for p.
func (e *Engine) Close(ctx context.Context, p Period, by, note string) (Closed, error) {
	if now := e.now(); p.To.After(now) {
		return Closed{}, limitf("period %s ends at %s; it can be closed once it has ended", p.Name, p.To.Format(time.RFC3339))
	}
	unlock, err := e.lock.Lock(ctx, e.db+".closed_periods")
	if err != nil {
		return Closed{}, fmt.Errorf("lock closed periods: %w", err)
	}
	defer unlock()
	if c, err := e.closed(ctx, p.Name); err == nil {
		return Closed{}, &ConflictError{fmt.Sprintf("period %s was closed by %s at %s", p.Name, c.ClosedBy, c.ClosedAt.In(e.loc).Format(time.RFC3339))}
	} else if _, missing := err.(*NotFoundError); !missing {
		return Closed{}, err
	}
	counts, err := e.officialCounts(ctx, nil, p.Range)
	if err != nil {
		return Closed{}, err
	}
	at := e.now().UTC().Truncate(time.Second)
	batch, err := e.conn.PrepareBatch(ctx, "INSERT INTO "+e.db+".closed_figures (hierarchy, period, area_code, kpi, value, numerator, denominator, closed_at)")
	if err != nil {
		return Closed{}, fmt.Errorf("prepare insert into closed_figures: %w", err)
	}
	n := 0
	defs := official()
	for _, u := range e.h.Select("", "") {
		for _, d := range defs {
			v, _ := d.Parts(counts[u.Code])
			if err := batch.Append(e.h.Name(), p.Name, u.Code, d.ID, v.Value, v.Num, v.Den, at); err != nil {
				batch.Abort()
				return Closed{}, fmt.Errorf("append to closed_figures batch: %w", err)
			}
			n++
		}
	}
	if err := batch.Send(); err != nil {
		return Closed{}, fmt.Errorf("insert batch into closed_figures: %w", err)
	}
	row, err := e.conn.PrepareBatch(ctx, "INSERT INTO "+e.db+".closed_periods (hierarchy, period, from_t, to_t, closed_by, closed_at, note)")
	if err != nil {
		return Closed{}, fmt.Errorf("prepare insert into closed_periods: %w", err)
	}
	if err := row.Append(e.h.Name(), p.Name, p.From.UTC(), p.To.UTC(), by, at, note); err != nil {
		row.Abort()
		return Closed{}, fmt.Errorf("append to closed_periods batch: %w", err)
	}
	if err := row.Send(); err != nil {
		return Closed{}, fmt.Errorf("insert into closed_periods: %w", err)
	}
	return Closed{Period: p.Name, From: p.From, To: p.To, ClosedBy: by, ClosedAt: at.In(e.loc), Note: note, Figures: n}, nil
}

// Periods lists the closed periods, newest first.
func (e *Engine) Periods(ctx context.Context) ([]Closed, error) {
	out := []Closed{}
	err := e.query(ctx, "closed periods", `SELECT period, from_t, to_t, closed_by, closed_at, note
		FROM `+e.db+`.closed_periods FINAL WHERE hierarchy = ? ORDER BY from_t DESC, to_t DESC`, []any{e.h.Name()},
		func(scan func(...any) error) error {
			var c Closed
			if err := scan(&c.Period, &c.From, &c.To, &c.ClosedBy, &c.ClosedAt, &c.Note); err != nil {
				return err
			}
			c.From, c.To, c.ClosedAt = c.From.In(e.loc), c.To.In(e.loc), c.ClosedAt.In(e.loc)
			out = append(out, c)
			return nil
		})
	return out, err
}

func (e *Engine) closed(ctx context.Context, period string) (Closed, error) {
	all, err := e.Periods(ctx)
	if err != nil {
		return Closed{}, err
	}
	for _, c := range all {
		if c.Period == period {
			return c, nil
		}
	}
	return Closed{}, notFoundf("period %s has not been closed; POST /api/v1/periods/%s/close closes it", period, period)
}

// Figures returns a closed period's figures for area and its children (the
// top-level units when area is empty), beside the live figures of the same
// period.
func (e *Engine) Figures(ctx context.Context, period, area string) (ClosedFigures, error) {
	c, err := e.closed(ctx, period)
	if err != nil {
		return ClosedFigures{}, err
	}
	var u geo.Unit
	var units, codes []string
	if area == "" {
		for _, r := range e.h.Roots() {
			units = append(units, r.Code)
		}
	} else {
		if u, err = e.unit(area); err != nil {
			return ClosedFigures{}, err
		}
		units = append([]string{u.Code}, e.h.ChildCodes(u.Code)...)
		codes = e.h.Subtree(u.Code)
	}
	frozen := map[[2]string]Value{}
	err = e.query(ctx, "closed figures", `SELECT area_code, kpi, value, numerator, denominator
		FROM `+e.db+`.closed_figures FINAL WHERE hierarchy = ? AND period = ? AND area_code IN ?`,
		[]any{e.h.Name(), period, chstore.In(units)}, func(scan func(...any) error) error {
			var area, kpi string
			var v Value
			if err := scan(&area, &kpi, &v.Value, &v.Numerator, &v.Denominator); err != nil {
				return err
			}
			frozen[[2]string{area, kpi}] = v
			return nil
		})
	if err != nil {
		return ClosedFigures{}, err
	}
	live, err := e.officialCounts(ctx, codes, Range{c.From, c.To})
	if err != nil {
		return ClosedFigures{}, err
	}
	out := ClosedFigures{Closed: c, Area: u.Code, Items: []Frozen{}}
	defs := official()
	for _, code := range units {
		unit, _ := e.h.Unit(code)
		for _, d := range defs {
			was, ok := frozen[[2]string{code, d.ID}]
			if !ok {
				continue // an indicator added since the close
			}
			p, _ := d.Parts(live[code])
			out.Items = append(out.Items, Frozen{Area: code, Name: unit.Name, KPI: d.ID, Closed: was, Live: valueOf(p),
				Drift: change(p.Value, was.Value)})
		}
	}
	slices.SortStableFunc(out.Items, func(a, b Frozen) int {
		if a.Area == u.Code && b.Area != u.Code {
			return -1
		}
		if b.Area == u.Code && a.Area != u.Code {
			return 1
		}
		return 0
	})
	return out, nil
}
