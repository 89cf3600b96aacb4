package dataset

import (
	"math"
	"slices"
	"time"
)

// Value is the value of one measure of one unit's period that counts: the
// latest upload's.
type Value struct {
	Unit    string
	Period  time.Time
	Measure string
	Value   float64
	Upload  string // the upload it came with
}

// Agg is a measure combined over units: what every rollup needs, so that
// units combine exactly (sums and counts add, minima and maxima compare).
type Agg struct {
	Sum float64
	N   uint64 // the units with a value
	Min float64
	Max float64
}

func (a *Agg) add(v float64) {
	if a.N == 0 || v < a.Min {
		a.Min = v
	}
	if a.N == 0 || v > a.Max {
		a.Max = v
	}
	a.Sum += v
	a.N++
}

// Parts is an indicator's figure with what it is computed from: a ratio's
// summed numerator and denominator, a mean's sum and count, a sum's value
// (Den nil).
type Parts struct {
	Value *float64
	Num   *float64
	Den   *float64
}

// Figure is one group's measures over one step: every measure of the
// definition by id.
type Figure map[string]Agg

// Group is a set of units whose values combine into one figure: a
// province's communes, or one commune.
type Group struct {
	Key   string
	Units []string
}

// Combine turns the values that count into a figure per group and step
// over [from, to): each unit's periods combine by the measure's OverTime,
// then the units of a group by Rollup. A flow (sum) adds the unit's
// periods that start in the step; a stock (last) takes the unit's latest
// period that starts before the step ends, however long before: a
// population counted in January is the population of October too. step
// is a grain at least as coarse as the definition's, or "" for one step
// over the whole range; the figures are keyed by the step's first day
// (the zero time for ""). Values of units in no group are left out.
func Combine(d Definition, values []Value, groups []Group, step Grain, from, to time.Time) map[string]map[time.Time]Figure {
	out := map[string]map[time.Time]Figure{}
	picked, groupsOf := counted(d, values, groups, step, from, to)
	for k, vs := range picked {
		var v float64
		for _, x := range vs {
			v += x.Value
		}
		for _, g := range groupsOf[k.unit] {
			f := entry(out, g, k.step)
			a := f[k.measure]
			a.add(v)
			f[k.measure] = a
		}
	}
	return out
}

// Sources are the uploads whose values a figure counts, with how many of
// its values each gave: what ?explain=true answers.
type Sources map[string]int

// SourcesOf says, per group and step as Combine keys them, which uploads
// the values of measures (all when nil) that count came from.
func SourcesOf(d Definition, values []Value, groups []Group, step Grain, from, to time.Time, measures []string) map[string]map[time.Time]Sources {
	out := map[string]map[time.Time]Sources{}
	picked, groupsOf := counted(d, values, groups, step, from, to)
	for k, vs := range picked {
		if measures != nil && !slices.Contains(measures, k.measure) {
			continue
		}
		for _, g := range groupsOf[k.unit] {
			src := entry(out, g, k.step)
			for _, x := range vs {
				src[x.Upload]++
			}
		}
	}
	return out
}

// entry is out's map of group g and step t, made when missing.
func entry[M ~map[string]V, V any](out map[string]map[time.Time]M, g string, t time.Time) M {
	steps := out[g]
	if steps == nil {
		steps = map[time.Time]M{}
		out[g] = steps
	}
	m := steps[t]
	if m == nil {
		m = M{}
		steps[t] = m
	}
	return m
}

// countedKey is one unit's measure over one step.
type countedKey struct {
	unit, measure string
	step          time.Time
}

// counted picks the values that count, per unit, measure and step: a
// flow's periods that start in the step, a stock's latest period that
// starts before the step ends (see Combine). It also gives the groups of
// each unit.
func counted(d Definition, values []Value, groups []Group, step Grain, from, to time.Time) (map[countedKey][]Value, map[string][]string) {
	groupsOf := map[string][]string{}
	for _, g := range groups {
		for _, u := range g.Units {
			groupsOf[u] = append(groupsOf[u], g.Key)
		}
	}
	type span struct{ start, end time.Time }
	spans := []span{{time.Time{}, to}}
	if step != "" {
		spans = spans[:0]
		for t := step.Floor(from); t.Before(to); t = step.Next(t) {
			spans = append(spans, span{t, step.Next(t)})
		}
	}
	last := map[string]bool{}
	for _, m := range d.Measures {
		last[m.ID] = m.over() == OverTimeLast
	}
	picked := map[countedKey][]Value{}
	for _, v := range values {
		if _, ok := groupsOf[v.Unit]; !ok || v.Period.Before(from) && !last[v.Measure] || !v.Period.Before(to) {
			continue
		}
		for _, sp := range spans {
			k := countedKey{v.Unit, v.Measure, sp.start}
			switch vs := picked[k]; {
			case last[v.Measure]:
				if v.Period.Before(sp.end) && (vs == nil || v.Period.After(vs[0].Period)) {
					picked[k] = []Value{v}
				}
			case step != "" && step.Floor(v.Period) != sp.start:
			default:
				picked[k] = append(vs, v)
			}
		}
	}
	return picked, groupsOf
}

// MeasuresOf lists the measures the figure of id (a measure or ratio of
// d) is computed from; nil for any other id.
func (d Definition) MeasuresOf(id string) []string {
	if _, ok := d.Measure(id); ok {
		return []string{id}
	}
	for _, ind := range d.Indicators {
		if ind.ID == id {
			return []string{ind.Numerator, ind.Denominator}
		}
	}
	return nil
}

// Parts is the figure of a measure or indicator of d (by its id within
// the dataset) over f; false when d has no such id.
func (d Definition) Parts(id string, f Figure) (Parts, bool) {
	if m, ok := d.Measure(id); ok {
		a := f[id]
		if a.N == 0 {
			return Parts{}, true
		}
		switch m.Rollup {
		case RollupMin:
			return Parts{Value: f64(a.Min)}, true
		case RollupMax:
			return Parts{Value: f64(a.Max)}, true
		case RollupMean:
			return Parts{Value: f64(round(a.Sum / float64(a.N))), Num: f64(a.Sum), Den: f64(float64(a.N))}, true
		}
		return Parts{Value: f64(a.Sum), Num: f64(a.Sum)}, true
	}
	i := slices.IndexFunc(d.Indicators, func(ind Indicator) bool { return ind.ID == id })
	if i < 0 {
		return Parts{}, false
	}
	ind := d.Indicators[i]
	num, den := f[ind.Numerator], f[ind.Denominator]
	if num.N == 0 && den.N == 0 {
		return Parts{}, true
	}
	p := Parts{Num: f64(num.Sum), Den: f64(den.Sum)}
	if den.Sum != 0 {
		p.Value = f64(round(num.Sum / den.Sum * ind.scale()))
	}
	return p, true
}

func f64(v float64) *float64 { return &v }

// round keeps 4 decimals, as the dossier indicators' rates do; parts stay
// exact.
func round(v float64) float64 { return math.Round(v*1e4) / 1e4 }
