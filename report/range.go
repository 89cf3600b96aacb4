package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/openioc/ioc/rollup"
)

// Step is the width of a series' points, aligned to the calendar of the
// deployment's time zone.
type Step = rollup.Step

// Steps of a series.
const (
	Hour    = rollup.Hour
	Day     = rollup.Day
	Week    = rollup.Week // ISO weeks, from Monday
	Month   = rollup.Month
	Quarter = rollup.Quarter
	Year    = rollup.Year
	none    = rollup.None
)

// ParseStep reads a step; empty is day.
func ParseStep(s string) (Step, error) {
	switch Step(s) {
	case "":
		return Day, nil
	case Hour, Day, Week, Month, Quarter, Year:
		return Step(s), nil
	}
	return "", invalidf("step %q is not one of hour, day, week, month, quarter, year", s)
}

// maxSpan caps the range of a series per step, so that no answer holds more
// than about a thousand points or reads years of hours.
var maxSpan = map[Step]struct {
	years, months, days int
	text                string
}{
	Hour:    {days: 31, text: "31 days"},
	Day:     {years: 3, days: 1, text: "3 years"},
	Week:    {years: 10, days: 7, text: "10 years"},
	Month:   {years: 20, text: "20 years"},
	Quarter: {years: 50, text: "50 years"},
	Year:    {years: 100, text: "100 years"},
	none:    {years: 10, text: "10 years"},
}

// Range is [From, To) in the deployment's zone.
type Range struct {
	From, To time.Time
}

// Storage keeps times as ClickHouse DateTime: seconds since 1970 in 32
// unsigned bits, so nothing before 1970-01-01 or after 2106-02-07 06:28:15
// UTC can be stored or compared. A bound a client gives must lie a day
// inside that, whatever the zone's offset.
var (
	firstDate = "1970-01-02"
	lastDate  = "2106-02-05"
	// MaxTime is the last instant storage can hold.
	MaxTime = rollup.MaxTime
)

// CheckTime refuses a time given in parameter name (as raw) that storage
// cannot hold, naming the parameter and the range it takes: the earliest
// start of firstDate and the latest end of lastDate in any zone.
func CheckTime(name, raw string, t time.Time) error {
	lo, _ := time.Parse(time.RFC3339, firstDate+"T00:00:00+14:00")
	hi, _ := time.Parse(time.RFC3339, lastDate+"T00:00:00-12:00")
	hi = hi.AddDate(0, 0, 1)
	if t.Before(lo) || t.After(hi) {
		return invalidf("%s %q is out of range: give a date or time from %s to %s (times are stored as ClickHouse DateTime, which ends on 2106-02-07)",
			name, raw, firstDate, lastDate)
	}
	return nil
}

// parseBound reads a local date or an RFC 3339 time. A date as the end of a
// range includes that whole day.
func parseBound(name, s string, end bool, loc *time.Location) (time.Time, error) {
	if d, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		// The whole day must be storable, whichever end of it is used.
		if err := CheckTime(name, s, d); err != nil {
			return d, err
		}
		if err := CheckTime(name, s, d.AddDate(0, 0, 1)); err != nil {
			return d, err
		}
		if end {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, invalidf("%s %q is neither a date (2026-11-01) nor an RFC 3339 time (2026-11-01T00:00:00+07:00)", name, s)
	}
	if err := CheckTime(name, s, t); err != nil {
		return t, err
	}
	return t.In(loc), nil
}

// ParseRange reads from and to for a series of step s (none for rankings,
// which count whole local days), widens them to whole steps and checks
// the caps. Empty bounds take the defaults: to is now, from one default
// span before it.
func ParseRange(from, to string, s Step, now time.Time, loc *time.Location) (Range, error) {
	unit := s
	if unit == none {
		unit = Day
	}
	var r Range
	var err error
	if to == "" {
		r.To = now.In(loc)
	} else if r.To, err = parseBound("to", to, true, loc); err != nil {
		return r, err
	}
	if from == "" {
		switch s {
		case Hour:
			r.From = r.To.Add(-24 * time.Hour)
		case Day:
			r.From = r.To.AddDate(0, 0, -30)
		case Week:
			r.From = r.To.AddDate(0, 0, -7*12)
		case Month:
			r.From = r.To.AddDate(0, -12, 0)
		case Quarter:
			r.From = r.To.AddDate(-2, 0, 0)
		case Year:
			r.From = r.To.AddDate(-10, 0, 0)
		default:
			r.From = rollup.Floor(r.To, Month, loc)
			if r.From.Equal(r.To) {
				r.From = r.From.AddDate(0, -1, 0)
			}
		}
	} else if r.From, err = parseBound("from", from, false, loc); err != nil {
		return r, err
	}
	r.From, r.To = rollup.Floor(r.From, unit, loc), rollup.Ceil(r.To, unit, loc)
	if !r.From.Before(r.To) {
		return r, invalidf("from must be before to")
	}
	if r.To.After(MaxTime) {
		return r, invalidf("to %q is too late for a series by %s: its last %s would end after 2106-02-07, where storage's times end; end the range earlier", to, unit, unit)
	}
	if c := maxSpan[s]; r.To.After(r.From.AddDate(c.years, c.months, c.days)) {
		what := "a range"
		if s != none {
			what = "a series by " + string(s)
		}
		return r, limitf("%s covers at most %s; this one runs from %s to %s: narrow it or use a longer step",
			what, c.text, r.From.Format("2006-01-02"), r.To.Format("2006-01-02"))
	}
	return r, nil
}

// steps lists the starts of the steps of r.
func steps(r Range, s Step) []time.Time {
	var out []time.Time
	for t := r.From; t.Before(r.To); t = rollup.Next(t, s) {
		out = append(out, t)
	}
	return out
}

// Period is a named calendar period for official figures and the
// scoreboard: a year (2026), half (2026-H1), quarter (2026-Q3) or month
// (2026-11).
type Period struct {
	Name string
	Range
}

// ParsePeriod reads a period name; empty is the current quarter.
func ParsePeriod(s string, now time.Time, loc *time.Location) (Period, error) {
	now = now.In(loc)
	if s == "" {
		s = fmt.Sprintf("%d-Q%d", now.Year(), (int(now.Month())+2)/3)
	}
	bad := invalidf("period %q is not a year (2026), half (2026-H1), quarter (2026-Q3) or month (2026-11)", s)
	y, rest, _ := strings.Cut(s, "-")
	year, err := strconv.Atoi(y)
	if err != nil || len(y) != 4 || year < 1970 || year > 2099 {
		return Period{}, bad
	}
	start, months := 1, 12
	switch {
	case rest == "":
	case len(rest) == 2 && rest[0] == 'H' && (rest[1] == '1' || rest[1] == '2'):
		start, months = 1+6*int(rest[1]-'1'), 6
	case len(rest) == 2 && rest[0] == 'Q' && rest[1] >= '1' && rest[1] <= '4':
		start, months = 1+3*int(rest[1]-'1'), 3
	case len(rest) == 2 && rest[0] >= '0' && rest[0] <= '1':
		m, err := strconv.Atoi(rest)
		if err != nil || m < 1 || m > 12 {
			return Period{}, bad
		}
		start, months = m, 1
	default:
		return Period{}, bad
	}
	from := time.Date(year, time.Month(start), 1, 0, 0, 0, 0, loc)
	return Period{Name: s, Range: Range{From: from, To: from.AddDate(0, months, 0)}}, nil
}

// earlier returns the range compared with r: the one before it, of as many
// months when r is whole months, else as many days, else as long; or the
// range a year earlier.
func earlier(r Range, compare string, loc *time.Location) Range {
	if compare == "year_ago" {
		return Range{r.From.AddDate(-1, 0, 0), r.To.AddDate(-1, 0, 0)}
	}
	if rollup.Floor(r.From, Month, loc).Equal(r.From) && rollup.Floor(r.To, Month, loc).Equal(r.To) {
		months := (r.To.Year()-r.From.Year())*12 + int(r.To.Month()-r.From.Month())
		return Range{r.From.AddDate(0, -months, 0), r.From}
	}
	if rollup.Floor(r.From, Day, loc).Equal(r.From) && rollup.Floor(r.To, Day, loc).Equal(r.To) {
		days := int(r.To.Sub(r.From).Hours()/24 + 0.5)
		return Range{r.From.AddDate(0, 0, -days), r.From}
	}
	return Range{r.From.Add(-r.To.Sub(r.From)), r.From}
}

// ParseCompare reads compare: empty, previous or year_ago.
func ParseCompare(s string) (string, error) {
	switch s {
	case "", "previous", "year_ago":
		return s, nil
	}
	return "", invalidf("compare %q is not previous or year_ago", s)
}
