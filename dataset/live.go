package dataset

import (
	"context"
	"fmt"
	"time"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/geo"
)

// Live gives the live snapshots the datasets' indicators (aggregate.Extras):
// each dataset's figures of its latest period with values, whatever the
// window, since a department reports by month or year and a window of
// days would hold none of its periods. A stock carries each unit's latest
// value as the series do. A derived indicator is computed per window from
// its operands: the datasets' as above, the catalog's over the window (so
// dossiers received per 1,000 residents are today's dossiers over the
// latest population).
type Live struct {
	Datasets *Datasets
	// Location is the deployment's zone, whose date now is; default UTC.
	Location *time.Location
}

// Extra reads the figures of every unit of h at now.
func (l Live) Extra(ctx context.Context, h *geo.Hierarchy, now time.Time) (aggregate.ExtraFigures, error) {
	out := aggregate.ExtraFigures{Values: map[string][]*float64{}, Derived: map[int]func(func(string) (float64, bool)) (float64, bool){}}
	loc := l.Location
	if loc == nil {
		loc = time.UTC
	}
	today := civil(now.In(loc).Date())
	all := h.Select("", "")
	units := make([]string, len(all))
	for i, u := range all {
		units[i] = u.Code
	}
	for _, d := range l.Datasets.List() {
		first := len(out.IDs)
		for _, c := range d.Catalog() {
			out.IDs = append(out.IDs, c.ID)
		}
		latest, err := l.Datasets.Latest(ctx, d, today)
		if err != nil {
			return aggregate.ExtraFigures{}, err
		}
		for i, dv := range d.Derived {
			f, ok := d.Formula(dv.ID)
			if !ok {
				continue
			}
			out.Derived[first+len(d.Measures)+len(d.Indicators)+i] = func(lookup func(string) (float64, bool)) (float64, bool) {
				v, ok := f.Eval(func(name string) (float64, bool) { return lookup(d.Operand(name)) })
				return round(v), ok
			}
		}
		if latest.IsZero() {
			continue // no values yet: every figure null
		}
		groups := make([]Group, 0, len(units))
		for _, code := range units {
			groups = append(groups, Group{Key: code, Units: d.Leaves(h, code)})
		}
		figs, err := l.Datasets.Figures(ctx, d, groups, latest, d.Grain.Next(latest), "")
		if err != nil {
			return aggregate.ExtraFigures{}, fmt.Errorf("read the latest figures of %s: %w", d.ID, err)
		}
		for _, code := range units {
			f := figs[code][time.Time{}]
			if f == nil {
				continue
			}
			vs := out.Values[code]
			if vs == nil {
				vs = make([]*float64, 0, len(out.IDs))
			}
			vs = append(vs, make([]*float64, first-len(vs))...)
			for _, id := range d.valueIDs() {
				p, _ := d.Parts(id, f)
				vs = append(vs, p.Value)
			}
			out.Values[code] = vs
		}
	}
	return out, nil
}

// valueIDs are d's measures, then its ratios: the indicators with figures
// of their own, in the catalog's order.
func (d Definition) valueIDs() []string {
	ids := make([]string, 0, len(d.Measures)+len(d.Indicators))
	for _, m := range d.Measures {
		ids = append(ids, m.ID)
	}
	for _, ind := range d.Indicators {
		ids = append(ids, ind.ID)
	}
	return ids
}

// Leaves are the units under code (itself included) that d's values are
// given for: those of its level, or every unit for points, which are
// placed in the finest unit that holds them.
func (d Definition) Leaves(h *geo.Hierarchy, code string) []string {
	var out []string
	for _, c := range h.Subtree(code) {
		if u, ok := h.Unit(c); ok && (d.Level == LevelPoint || u.Level == d.Level) {
			out = append(out, c)
		}
	}
	return out
}
