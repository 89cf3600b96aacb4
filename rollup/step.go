package rollup

import "time"

// Step is the width of the buckets a read sums by, aligned to the calendar
// of the rollups' zone.
type Step string

// Steps of a read.
const (
	Hour  Step = "hour"
	Day   Step = "day"
	Week  Step = "week" // ISO weeks, from Monday
	Month Step = "month"
	// Quarter and Year are calendar quarters and years: the steps of
	// datasets given per quarter or year, and of any long series.
	Quarter Step = "quarter"
	Year    Step = "year"
	None    Step = "" // the whole range in one bucket
)

// Floor returns the start of the step holding t.
func Floor(t time.Time, s Step, loc *time.Location) time.Time {
	t = t.In(loc)
	switch s {
	case Hour:
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, loc)
	case Week:
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
		return d.AddDate(0, 0, -(int(d.Weekday())+6)%7)
	case Month:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
	case Quarter:
		return time.Date(t.Year(), t.Month()-(t.Month()-1)%3, 1, 0, 0, 0, 0, loc)
	case Year:
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, loc)
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}

// Next returns the start of the step after the one starting at t.
func Next(t time.Time, s Step) time.Time {
	switch s {
	case Hour:
		return t.Add(time.Hour)
	case Week:
		return t.AddDate(0, 0, 7)
	case Month:
		return t.AddDate(0, 1, 0)
	case Quarter:
		return t.AddDate(0, 3, 0)
	case Year:
		return t.AddDate(1, 0, 0)
	}
	return t.AddDate(0, 0, 1)
}

// Ceil returns the first step boundary at or after t.
func Ceil(t time.Time, s Step, loc *time.Location) time.Time {
	f := Floor(t, s, loc)
	if f.Equal(t) {
		return f
	}
	return Next(f, s)
}

// MaxTime is the last instant storage can hold: ClickHouse's DateTime
// counts seconds since 1970 in 32 unsigned bits.
var MaxTime = time.Unix(1<<32-1, 0).UTC()

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
