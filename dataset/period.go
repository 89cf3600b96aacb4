package dataset

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/openioc/ioc/rollup"
)

// Grain is how often a dataset's values are given: one value per unit and
// day, month, quarter or year.
type Grain string

// The grains.
const (
	Day     Grain = "day"
	Month   Grain = "month"
	Quarter Grain = "quarter"
	Year    Grain = "year"
)

// Grains lists the grains, finest first.
var Grains = []Grain{Day, Month, Quarter, Year}

// Valid says whether g is one of Grains.
func (g Grain) Valid() bool {
	switch g {
	case Day, Month, Quarter, Year:
		return true
	}
	return false
}

// Form is how a period of g is written, for people.
func (g Grain) Form() string {
	switch g {
	case Day:
		return "YYYY-MM-DD, e.g. 2025-03-14"
	case Month:
		return "YYYY-MM, e.g. 2025-03"
	case Quarter:
		return "YYYY-Qn, e.g. 2025-Q1"
	}
	return "YYYY, e.g. 2025"
}

var (
	dayRE     = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})$`)
	monthRE   = regexp.MustCompile(`^(\d{4})-(\d{2})$`)
	quarterRE = regexp.MustCompile(`^(\d{4})-[Qq]([1-4])$`)
	yearRE    = regexp.MustCompile(`^(\d{4})$`)
)

// Parse reads a period of g written in its form (Form) and returns its
// first day, a civil date at midnight UTC. A period of another grain is
// refused with the form expected: a month given to a yearly dataset is an
// error, not a guess.
func (g Grain) Parse(s string) (time.Time, error) {
	num := func(x string) int { n, _ := strconv.Atoi(x); return n }
	var t time.Time
	ok := false
	switch g {
	case Day:
		if m := dayRE.FindStringSubmatch(s); m != nil {
			t = civil(num(m[1]), time.Month(num(m[2])), num(m[3]))
			ok = t.Format("2006-01-02") == s
		}
	case Month:
		if m := monthRE.FindStringSubmatch(s); m != nil && num(m[2]) >= 1 && num(m[2]) <= 12 {
			t, ok = civil(num(m[1]), time.Month(num(m[2])), 1), true
		}
	case Quarter:
		if m := quarterRE.FindStringSubmatch(s); m != nil {
			t, ok = civil(num(m[1]), time.Month(3*num(m[2])-2), 1), true
		}
	case Year:
		if m := yearRE.FindStringSubmatch(s); m != nil {
			t, ok = civil(num(m[1]), 1, 1), true
		}
	default:
		return time.Time{}, fmt.Errorf("unknown grain %q", g)
	}
	if !ok || t.Year() < 1970 || t.Year() > 2105 {
		return time.Time{}, fmt.Errorf("period %q is not a %s of 1970–2105: write it as %s", s, g, g.Form())
	}
	return t, nil
}

// Format writes the period starting at t in g's form.
func (g Grain) Format(t time.Time) string {
	switch g {
	case Day:
		return t.Format("2006-01-02")
	case Month:
		return t.Format("2006-01")
	case Quarter:
		return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())+2)/3)
	}
	return strconv.Itoa(t.Year())
}

// Floor is the first day of the period of g that holds the civil date of
// t: the calendar steps of the rollups (grains are named as those steps).
func (g Grain) Floor(t time.Time) time.Time {
	return rollup.Floor(civil(t.Date()), rollup.Step(g), time.UTC)
}

// Next is the first day of the period after the one starting at t.
func (g Grain) Next(t time.Time) time.Time { return rollup.Next(t, rollup.Step(g)) }

// civil is a date at midnight UTC: periods are calendar dates, the same in
// every zone.
func civil(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
