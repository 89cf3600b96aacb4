package report

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"
)

// RelationshipQuery asks how two indicators go together over the units at
// a level under a parent: does a commune with more of x have more of y?
type RelationshipQuery struct {
	X, Y   string
	Parent string // "": the whole hierarchy
	Level  string // "": the level just below the parent
	Range  Range
	// Outliers is how many units furthest from the line to name; 0: 5.
	Outliers int
}

// Relationship is the answer to a RelationshipQuery: every unit's x and
// y, the correlations over the units that have both, the least-squares
// line of y on x, and the units furthest from it.
type Relationship struct {
	X          string    `json:"x"`
	Y          string    `json:"y"`
	XUnit      string    `json:"x_unit"`
	YUnit      string    `json:"y_unit"`
	Parent     string    `json:"parent"`
	ParentName string    `json:"parent_name"`
	Level      string    `json:"level"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	// N is the units with both figures, those the statistics are over.
	N        int      `json:"n"`
	Pearson  *float64 `json:"pearson"`
	Spearman *float64 `json:"spearman"`
	Line     *Line    `json:"line"`
	Units    []Pair   `json:"units"`
	Outliers []Pair   `json:"outliers"`
}

// Line is y = Slope·x + Intercept, fitted by least squares; R2 is the
// share of y's variance it explains.
type Line struct {
	Slope     float64 `json:"slope"`
	Intercept float64 `json:"intercept"`
	R2        float64 `json:"r2"`
}

// Pair is one unit's two figures, with what the line expects of its y
// and how far its y is from that (nil without both figures).
type Pair struct {
	Area     string   `json:"area"`
	Name     string   `json:"name"`
	X        Value    `json:"x"`
	Y        Value    `json:"y"`
	Fitted   *float64 `json:"fitted"`
	Residual *float64 `json:"residual"`
}

// Relationship computes q from the two rankings of the units (so that each
// figure is the one a ranking shows: summed parts of the unit's subtree).
func (e *Engine) Relationship(ctx context.Context, q RelationshipQuery) (Relationship, error) {
	if q.X == q.Y {
		return Relationship{}, invalidf("x and y are both %s: name two indicators", q.X)
	}
	if q.Outliers == 0 {
		q.Outliers = 5
	}
	if q.Outliers < 0 || q.Outliers > 100 {
		return Relationship{}, limitf("outliers %d is outside 0..100", q.Outliers)
	}
	rank := func(id string) (Ranking, error) {
		return e.Ranking(ctx, RankingQuery{KPI: id, Parent: q.Parent, Level: q.Level, Range: q.Range, Limit: MaxLimit, Order: "asc"})
	}
	var xs, ys Ranking
	if err := parallel(func() (err error) { xs, err = rank(q.X); return err }, func() (err error) { ys, err = rank(q.Y); return err }); err != nil {
		return Relationship{}, err
	}
	yOf := make(map[string]Value, len(ys.Items))
	for _, it := range ys.Items {
		yOf[it.Area] = it.Value
	}
	out := Relationship{X: xs.KPI, Y: ys.KPI, XUnit: xs.Unit, YUnit: ys.Unit, Parent: xs.Parent, ParentName: xs.ParentName,
		Level: xs.Level, From: q.Range.From, To: q.Range.To, Units: make([]Pair, 0, len(xs.Items)), Outliers: []Pair{}}
	var px, py []float64
	for _, it := range xs.Items {
		p := Pair{Area: it.Area, Name: it.Name, X: it.Value, Y: yOf[it.Area]}
		if p.X.Value != nil && p.Y.Value != nil {
			px, py = append(px, *p.X.Value), append(py, *p.Y.Value)
		}
		out.Units = append(out.Units, p)
	}
	slices.SortFunc(out.Units, func(a, b Pair) int { return cmp.Compare(a.Area, b.Area) })
	out.N = len(px)
	out.Pearson = pearson(px, py)
	out.Spearman = pearson(ranks(px), ranks(py))
	if l, ok := leastSquares(px, py); ok {
		out.Line = &l
		for i := range out.Units {
			p := &out.Units[i]
			if p.X.Value == nil || p.Y.Value == nil {
				continue
			}
			fitted := l.Slope**p.X.Value + l.Intercept
			p.Fitted, p.Residual = f64(round4(fitted)), f64(round4(*p.Y.Value-fitted))
		}
		far := slices.Clone(out.Units)
		far = slices.DeleteFunc(far, func(p Pair) bool { return p.Residual == nil })
		slices.SortStableFunc(far, func(a, b Pair) int { return cmp.Compare(math.Abs(*b.Residual), math.Abs(*a.Residual)) })
		out.Outliers = far[:min(q.Outliers, len(far))]
	}
	return out, nil
}

func f64(v float64) *float64 { return &v }

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// pearson is the correlation of x and y; nil with fewer than three pairs
// or when either does not vary.
func pearson(x, y []float64) *float64 {
	if len(x) < 3 {
		return nil
	}
	sxy, sxx, syy, _, _ := moments(x, y)
	if sxx == 0 || syy == 0 {
		return nil
	}
	return f64(round4(sxy / math.Sqrt(sxx*syy)))
}

// leastSquares fits y = a·x + b; false with fewer than three pairs or an
// x that does not vary.
func leastSquares(x, y []float64) (Line, bool) {
	if len(x) < 3 {
		return Line{}, false
	}
	sxy, sxx, syy, mx, my := moments(x, y)
	if sxx == 0 {
		return Line{}, false
	}
	slope := sxy / sxx
	l := Line{Slope: round4(slope), Intercept: round4(my - slope*mx), R2: 1}
	if syy != 0 {
		l.R2 = round4(sxy * sxy / (sxx * syy))
	}
	return l, true
}

// moments are the sums of the products of the deviations from the means,
// and the means.
func moments(x, y []float64) (sxy, sxx, syy, mx, my float64) {
	mx, my = mean(x), mean(y)
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	return sxy, sxx, syy, mx, my
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// ranks gives each value its rank, ties the mean of the ranks they span
// (as Spearman's coefficient takes them).
func ranks(v []float64) []float64 {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(v[a], v[b]) })
	out := make([]float64, len(v))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && v[idx[j+1]] == v[idx[i]] {
			j++
		}
		r := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			out[idx[k]] = r
		}
		i = j + 1
	}
	return out
}
