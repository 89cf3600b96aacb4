package dataset_test

import (
	"maps"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/openioc/ioc/dataset"
)

// Communes of the figures: a and b report, c reports little, d is in no
// group asked for.
const (
	communeA = "26734"
	communeB = "26737"
	communeC = "26740"
	communeD = "26743"
)

// schoolValues are the values that count of testdata/giao_duc.json, in no
// particular order: the latest period of a stock is found by its date,
// not its place in the list.
var schoolValues = []dataset.Value{
	// pupils and teachers are stocks (over_time last).
	{Unit: communeA, Period: day(2025, 1, 1), Measure: "pupils", Value: 90},
	{Unit: communeA, Period: day(2025, 3, 1), Measure: "pupils", Value: 100},
	{Unit: communeA, Period: day(2025, 2, 1), Measure: "pupils", Value: 95},
	{Unit: communeA, Period: day(2024, 12, 1), Measure: "pupils", Value: 80},
	{Unit: communeB, Period: day(2025, 2, 1), Measure: "pupils", Value: 900},
	{Unit: communeB, Period: day(2025, 4, 1), Measure: "pupils", Value: 910},
	{Unit: communeD, Period: day(2025, 3, 1), Measure: "pupils", Value: 5000},
	{Unit: communeA, Period: day(2025, 3, 1), Measure: "teachers", Value: 10},
	{Unit: communeB, Period: day(2025, 1, 1), Measure: "teachers", Value: 30},
	{Unit: communeB, Period: day(2025, 2, 1), Measure: "teachers", Value: 30},
	{Unit: communeD, Period: day(2025, 3, 1), Measure: "teachers", Value: 1},
	// enrolled is a flow (over_time sum).
	{Unit: communeA, Period: day(2025, 1, 1), Measure: "enrolled", Value: 5},
	{Unit: communeA, Period: day(2025, 2, 1), Measure: "enrolled", Value: 7},
	{Unit: communeA, Period: day(2025, 3, 1), Measure: "enrolled", Value: 3},
	{Unit: communeA, Period: day(2024, 12, 1), Measure: "enrolled", Value: 9},
	{Unit: communeB, Period: day(2025, 2, 1), Measure: "enrolled", Value: 20},
	{Unit: communeB, Period: day(2025, 4, 1), Measure: "enrolled", Value: 4},
	{Unit: communeC, Period: day(2025, 3, 1), Measure: "enrolled", Value: 1},
	// class_size rolls up by mean, the schools' sizes by min and max.
	{Unit: communeA, Period: day(2025, 3, 1), Measure: "class_size", Value: 10},
	{Unit: communeB, Period: day(2025, 2, 1), Measure: "class_size", Value: 20},
	{Unit: communeC, Period: day(2025, 3, 1), Measure: "class_size", Value: 20},
	{Unit: communeA, Period: day(2025, 3, 1), Measure: "smallest_school", Value: 120},
	{Unit: communeB, Period: day(2025, 3, 1), Measure: "smallest_school", Value: 80},
	{Unit: communeC, Period: day(2025, 3, 1), Measure: "smallest_school", Value: 300},
	{Unit: communeA, Period: day(2025, 3, 1), Measure: "largest_school", Value: 500},
	{Unit: communeB, Period: day(2025, 3, 1), Measure: "largest_school", Value: 1500},
	{Unit: communeC, Period: day(2025, 3, 1), Measure: "largest_school", Value: 700},
}

// schoolGroups are the province of a, b and c, communes a and c alone (a
// unit may be in several groups), and a commune with no values.
var schoolGroups = []dataset.Group{
	{Key: "79", Units: []string{communeA, communeB, communeC}},
	{Key: communeA, Units: []string{communeA}},
	{Key: communeC, Units: []string{communeC}},
	{Key: "no_values", Units: []string{"26750"}},
}

func combine(t *testing.T, step dataset.Grain, from, to time.Time) (dataset.Definition, map[string]map[time.Time]dataset.Figure) {
	t.Helper()
	d := definition(t, "giao_duc.json")
	return d, dataset.Combine(d, schoolValues, schoolGroups, step, from, to)
}

// figure is the value of id for group at step, nil when there is none.
func figure(t *testing.T, d dataset.Definition, out map[string]map[time.Time]dataset.Figure, group string, step time.Time, id string) *float64 {
	t.Helper()
	p, ok := d.Parts(id, out[group][step])
	if !ok {
		t.Fatalf("Parts(%q): no such id", id)
	}
	return p.Value
}

// checkFigures checks the figures of group at step; a NaN wants none.
func checkFigures(t *testing.T, d dataset.Definition, out map[string]map[time.Time]dataset.Figure, group string, step time.Time, want map[string]float64) {
	t.Helper()
	for id, w := range want {
		got := figure(t, d, out, group, step, id)
		if math.IsNaN(w) && got != nil || !math.IsNaN(w) && (got == nil || *got != w) {
			t.Errorf("%s at %s: %s = %v, want %v", group, step.Format("2006-01-02"), id, deref(got), w)
		}
	}
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

var none = math.NaN()

// By quarter, the province's figures are what a statistician computes by
// hand from the communes' values.
func TestTheProvincesFiguresAreItsCommunesCombinedByHand(t *testing.T) {
	d, out := combine(t, dataset.Quarter, day(2025, 1, 1), day(2025, 7, 1))
	checkFigures(t, d, out, "79", day(2025, 1, 1), map[string]float64{
		// Stocks: each commune's latest month (a's March, b's February),
		// summed over the communes.
		"pupils":   100 + 900,
		"teachers": 10 + 30,
		// A flow: every month of Q1 added, then the communes; December
		// is before the range.
		"enrolled": (5 + 7 + 3) + 20 + 1,
		// A mean: the values over their number, to 4 decimals.
		"class_size":      16.6667, // (10 + 20 + 20) / 3
		"smallest_school": 80,
		"largest_school":  1500,
		// A ratio: the summed pupils over the summed teachers.
		"pupils_per_teacher": 25, // 1000 / 40
		"enrolled_per_1000":  36, // 36 / 1000 × 1000
	})
	checkFigures(t, d, out, "79", day(2025, 4, 1), map[string]float64{
		// b counted again in April; a's March and the teachers still
		// stand. Only April's enrolments are Q2's.
		"pupils":             100 + 910,
		"teachers":           40,
		"enrolled":           4,
		"pupils_per_teacher": 25.25,  // 1010 / 40
		"enrolled_per_1000":  3.9604, // 4 / 1010 × 1000, to 4 decimals
	})
	checkFigures(t, d, out, communeA, day(2025, 1, 1), map[string]float64{"pupils": 100, "teachers": 10, "pupils_per_teacher": 10})
}

// A ratio of the province is its summed numerator over its summed
// denominator: the communes' ratios (10 and 30 pupils per teacher) have a
// mean of 20, which is not the province's 25.
func TestARatioIsTheSummedPartsNotTheMeanOfTheCommunesRatios(t *testing.T) {
	d, out := combine(t, dataset.Quarter, day(2025, 1, 1), day(2025, 4, 1))
	q1 := day(2025, 1, 1)
	var rates []float64
	for _, c := range []string{communeA, communeB} {
		alone := dataset.Combine(d, schoolValues, []dataset.Group{{Key: c, Units: []string{c}}}, dataset.Quarter, q1, day(2025, 4, 1))
		rates = append(rates, *figure(t, d, alone, c, q1, "pupils_per_teacher"))
	}
	meanOfRates := (rates[0] + rates[1]) / 2
	p, _ := d.Parts("pupils_per_teacher", out["79"][q1])
	if p.Value == nil || *p.Value != 25 || *p.Num != 1000 || *p.Den != 40 {
		t.Errorf("parts %v / %v = %v; want 1000 / 40 = 25", deref(p.Num), deref(p.Den), deref(p.Value))
	}
	if meanOfRates != 20 || *p.Value == meanOfRates {
		t.Errorf("the communes' rates %v: the data no longer tells a ratio of sums from a mean of rates", rates)
	}
}

// A figure tells what it is made of: a mean its sum and count, a ratio
// its parts, a sum its value.
func TestAFigureCarriesItsParts(t *testing.T) {
	d, out := combine(t, dataset.Quarter, day(2025, 1, 1), day(2025, 4, 1))
	f := out["79"][day(2025, 1, 1)]
	for _, c := range []struct {
		id              string
		value, num, den any
	}{
		{"pupils", 1000.0, 1000.0, nil},
		{"class_size", 16.6667, 50.0, 3.0},
		{"smallest_school", 80.0, nil, nil},
		{"largest_school", 1500.0, nil, nil},
		{"enrolled_per_1000", 36.0, 36.0, 1000.0},
	} {
		p, ok := d.Parts(c.id, f)
		if !ok || deref(p.Value) != c.value || deref(p.Num) != c.num || deref(p.Den) != c.den {
			t.Errorf("%s: %v (%v / %v), want %v (%v / %v)", c.id, deref(p.Value), deref(p.Num), deref(p.Den), c.value, c.num, c.den)
		}
	}
	if _, ok := d.Parts("pupils_per_school", f); ok {
		t.Error("an unknown id has parts")
	}
}

// The step decides the figures' periods: a month, a quarter, a year, or
// one figure over the whole range, keyed by the zero time.
func TestTheStepDecidesThePeriodsOfTheFigures(t *testing.T) {
	for _, c := range []struct {
		step     dataset.Grain
		from, to time.Time
		keys     []time.Time
	}{
		{dataset.Month, day(2025, 1, 1), day(2025, 5, 1), []time.Time{day(2025, 1, 1), day(2025, 2, 1), day(2025, 3, 1), day(2025, 4, 1)}},
		{dataset.Quarter, day(2024, 10, 1), day(2025, 7, 1), []time.Time{day(2024, 10, 1), day(2025, 1, 1), day(2025, 4, 1)}},
		{dataset.Year, day(2024, 1, 1), day(2026, 1, 1), []time.Time{day(2024, 1, 1), day(2025, 1, 1)}},
		{"", day(2024, 1, 1), day(2026, 1, 1), []time.Time{{}}},
	} {
		_, out := combine(t, c.step, c.from, c.to)
		keys := slices.SortedFunc(maps.Keys(out["79"]), func(a, b time.Time) int { return a.Compare(b) })
		if !reflect.DeepEqual(keys, c.keys) {
			t.Errorf("step %q: keys %v, want %v", c.step, keys, c.keys)
		}
	}
	// By month, a stock is each month's latest count so far.
	d, out := combine(t, dataset.Month, day(2025, 1, 1), day(2025, 5, 1))
	for month, pupils := range map[time.Month]float64{1: 90, 2: 95 + 900, 3: 100 + 900, 4: 100 + 910} {
		checkFigures(t, d, out, "79", day(2025, month, 1), map[string]float64{"pupils": pupils})
	}
	// By year: a's latest month of 2025 is March, b's April; the flows of
	// 2025 add up. 2024 had December's count and no teacher.
	d, out = combine(t, dataset.Year, day(2024, 1, 1), day(2026, 1, 1))
	checkFigures(t, d, out, "79", day(2025, 1, 1), map[string]float64{"pupils": 100 + 910, "enrolled": 15 + 24 + 1, "pupils_per_teacher": 25.25})
	checkFigures(t, d, out, "79", day(2024, 1, 1), map[string]float64{"pupils": 80, "enrolled": 9, "teachers": none, "pupils_per_teacher": none})
	// Over the whole range: December 2024's enrolments count too, its
	// pupils do not (a's latest month is March 2025).
	d, out = combine(t, "", day(2024, 1, 1), day(2026, 1, 1))
	checkFigures(t, d, out, "79", time.Time{}, map[string]float64{"pupils": 100 + 910, "enrolled": 9 + 15 + 24 + 1})
}

// A stock stands until it is counted again: a population counted in
// March is the population of the later quarters, even of a range that
// starts after it; a flow is only its own steps'.
func TestAStockStandsUntilCountedAgainAndAFlowDoesNot(t *testing.T) {
	d, out := combine(t, dataset.Quarter, day(2025, 7, 1), day(2026, 1, 1))
	for _, q := range []time.Time{day(2025, 7, 1), day(2025, 10, 1)} {
		checkFigures(t, d, out, "79", q, map[string]float64{"pupils": 100 + 910, "pupils_per_teacher": 25.25, "enrolled": none})
	}
	// The range's end is the end: April's count is not Q1's.
	d, out = combine(t, dataset.Quarter, day(2025, 1, 1), day(2025, 4, 1))
	if _, ok := out["79"][day(2025, 4, 1)]; ok {
		t.Error("a step after the range was figured")
	}
	checkFigures(t, d, out, "79", day(2025, 1, 1), map[string]float64{"pupils": 1000})
	d, out = combine(t, "", day(2025, 1, 1), day(2025, 4, 1))
	checkFigures(t, d, out, "79", time.Time{}, map[string]float64{"pupils": 1000, "enrolled": 36})
}

// Only the groups asked for are figured: d's values are in none, and
// count nowhere.
func TestUnitsInNoGroupAreLeftOut(t *testing.T) {
	_, out := combine(t, "", day(2024, 1, 1), day(2026, 1, 1))
	if got := slices.Sorted(maps.Keys(out)); !reflect.DeepEqual(got, []string{communeA, communeC, "79"}) {
		t.Errorf("groups %v, want 26734, 26740 and 79 (no_values has none)", got)
	}
	if a := out["79"][time.Time{}]["pupils"]; a.N != 2 || a.Sum != 1010 {
		t.Errorf("79's pupils %+v: want a and b's only", a)
	}
}

// A group with no values has no figure, not a zero: the map shows no
// colour rather than a false 0.
func TestAGroupWithNoValuesHasNoFigure(t *testing.T) {
	d, out := combine(t, dataset.Quarter, day(2025, 1, 1), day(2025, 7, 1))
	for _, id := range []string{"pupils", "class_size", "smallest_school", "pupils_per_teacher"} {
		p, ok := d.Parts(id, out["no_values"][day(2025, 1, 1)])
		if !ok || p != (dataset.Parts{}) {
			t.Errorf("%s of no values: %+v, %v; want no value", id, p, ok)
		}
	}
	// Commune c enrols but counts no pupils: the ratio has its parts and
	// no value (no division by zero).
	p, _ := d.Parts("enrolled_per_1000", out[communeC][day(2025, 1, 1)])
	if p.Value != nil || deref(p.Num) != 1.0 || deref(p.Den) != 0.0 {
		t.Errorf("c's enrolled per 1000 %v (%v / %v), want no value of 1 / 0", deref(p.Value), deref(p.Num), deref(p.Den))
	}
	if out := dataset.Combine(d, nil, schoolGroups, dataset.Quarter, day(2025, 1, 1), day(2025, 7, 1)); len(out) != 0 {
		t.Errorf("no values: %v", out)
	}
}

// The store gives values in no set order; the figures do not depend on
// it.
func TestTheOrderOfTheValuesDoesNotChangeTheFigures(t *testing.T) {
	d, want := combine(t, dataset.Quarter, day(2024, 10, 1), day(2026, 1, 1))
	reversed := slices.Clone(schoolValues)
	slices.Reverse(reversed)
	if got := dataset.Combine(d, reversed, schoolGroups, dataset.Quarter, day(2024, 10, 1), day(2026, 1, 1)); !reflect.DeepEqual(got, want) {
		t.Errorf("reversed values give\n%v\nwant\n%v", got, want)
	}
}

// The sources of a figure are the uploads of exactly the values Combine
// counts: a stock's latest period only, a flow's periods in the range,
// and only the measures asked about.
func TestSourcesAreTheUploadsOfTheValuesThatCount(t *testing.T) {
	d := definition(t, "giao_duc.json")
	values := slices.Clone(schoolValues)
	for i := range values {
		values[i].Upload = "old"
		if values[i].Period.Equal(day(2025, 3, 1)) {
			values[i].Upload = "march" // a's latest pupils and teachers, and their March flows
		}
	}
	from, to := day(2025, 1, 1), day(2025, 4, 1)
	src := dataset.SourcesOf(d, values, schoolGroups, "", from, to, []string{"pupils"})
	// a's pupils: March's 100 only; b's: February's 900 (April is after the range).
	if got := src["79"][time.Time{}]; !maps.Equal(got, dataset.Sources{"march": 1, "old": 1}) {
		t.Errorf("pupils of 79: sources %v, want march 1 (a) and old 1 (b)", got)
	}
	all := dataset.SourcesOf(d, values, schoolGroups, "", from, to, []string{"enrolled"})
	// a's January, February and March flows, b's February, c's March.
	if got := all["79"][time.Time{}]; !maps.Equal(got, dataset.Sources{"march": 2, "old": 3}) {
		t.Errorf("enrolled of 79: sources %v, want march 2 (a and c) and old 3 (a twice, b)", got)
	}
}
