package simulator

import (
	"math"
	"math/rand/v2"
	"time"
)

// Transition is a dossier entering a status at a time.
type Transition struct {
	Status string
	At     time.Time
}

// LifecycleMix is how a population of dossiers ends: the share of each
// shape of lifecycle (what the five shares leave stays open after
// processing) and the share of resolutions in time. Shares are read to
// nine decimals.
type LifecycleMix struct {
	Simple      float64 // received → processing → resolved → returned
	OneRequest  float64 // the same with one request for documents on the way
	TwoRequests float64 // two requests: late whatever the clock says
	Rejected    float64 // refused after processing
	Withdrawn   float64 // withdrawn by the citizen after processing
	// OnTime and OnTimeAfterRequest are the shares of simple resolutions,
	// and of resolutions after one request, that come by the due time.
	OnTime, OnTimeAfterRequest float64
}

// bounds are the cumulative shares the shape is drawn against. Rounded, so
// that 0.70+0.15+0.03+0.05+0.02 compares as the 0.95 it is meant to be.
func (m LifecycleMix) bounds() [5]float64 {
	var out [5]float64
	sum := 0.0
	for i, s := range [...]float64{m.Simple, m.OneRequest, m.TwoRequests, m.Rejected, m.Withdrawn} {
		sum += s
		out[i] = math.Round(sum*1e9) / 1e9
	}
	return out
}

// PlanLifecycle lays out, drawing from r, the lifecycle of a dossier
// received at received and due at due, over days and weeks as in the field:
// processing starts within hours; a request for documents comes before 60%
// of the time left and the citizen answers 1–15 days later (the wait
// pushes the deadline back); a resolution in time falls between the last
// step and the deadline, a late one hours to days after it; the result is
// returned within two days. Times are whole seconds and strictly
// increasing (a step that would not follow the one before comes a minute
// after it). The steps are appended to steps[:0].
//
// The draws are part of the contract: cmd/iocbench's data, reproducible
// from its seed, is drawn through this function.
func PlanLifecycle(r *rand.Rand, mix LifecycleMix, received, due time.Time, steps []Transition) []Transition {
	steps = steps[:0]
	add := func(status string, at time.Time) {
		at = at.Truncate(time.Second)
		if n := len(steps); n > 0 && !at.After(steps[n-1].At) {
			at = steps[n-1].At.Add(time.Minute)
		}
		steps = append(steps, Transition{status, at})
	}
	between := func(a, b time.Time) time.Time { // a uniform moment in [a, b], or a when b is before a
		if !b.After(a) {
			return a
		}
		return a.Add(time.Duration(r.Float64() * float64(b.Sub(a))))
	}
	days := func(n float64) time.Duration { return time.Duration(n * float64(24*time.Hour)) }
	last := func() time.Time { return steps[len(steps)-1].At }

	add("received", received)
	add("processing", received.Add(5*time.Minute+min(time.Duration(r.ExpFloat64()*float64(2*time.Hour)), 48*time.Hour)))
	resolve := func(wait time.Duration, onTime bool) {
		if onTime {
			add("resolved", between(last().Add(30*time.Minute), due.Add(wait)))
		} else {
			add("resolved", due.Add(wait).Add(time.Hour+days(r.ExpFloat64()*3)))
		}
		add("returned", last().Add(10*time.Minute+days(r.Float64()*2)))
	}
	request := func() time.Duration { // a supplement request and the citizen's answer
		add("supplement_requested", between(last().Add(30*time.Minute), last().Add(days(0.6*due.Sub(last()).Hours()/24))))
		wait := days(1 + r.Float64()*14)
		add("processing", last().Add(wait))
		return wait
	}
	b := mix.bounds()
	switch x := r.Float64(); {
	case x < b[0]:
		resolve(0, r.Float64() < mix.OnTime)
	case x < b[1]:
		wait := request()
		resolve(wait, r.Float64() < mix.OnTimeAfterRequest)
	case x < b[2]:
		w := request()
		w += request()
		resolve(w, false)
	case x < b[3]:
		add("rejected", last().Add(time.Hour+days(r.Float64()*5)))
	case x < b[4]:
		add("withdrawn", last().Add(time.Hour+days(r.Float64()*10)))
	default:
		// still open: nothing after processing
	}
	return steps
}

// AddWorkingDays returns the local midnight n working days after day:
// Monday to Friday, except the days off says are off (nil: none).
func AddWorkingDays(day time.Time, n int, off func(time.Time) bool) time.Time {
	for n > 0 {
		day = day.AddDate(0, 0, 1)
		if wd := day.Weekday(); wd != time.Saturday && wd != time.Sunday && (off == nil || !off(day)) {
			n--
		}
	}
	return day
}
