package simulator

import (
	"fmt"
	"time"
)

// Pace is how a simulator moves: at the field's pace, as a province's
// desks and cameras do, or at a demo's, many times faster.
type Pace string

const (
	// PaceDemo compresses lifecycles into minutes and files Rate events a
	// second at the office-hours peak, so that a demo sees dossiers
	// received, resolved and returned within the hour, and a load test
	// gets the rate it asks for; the day's counts stand far above a
	// History's (some 200,000 dossiers a weekday at Rate 20, against
	// 2,500). It is the zero Pace.
	PaceDemo Pace = "demo"
	// PaceField carries the History that Simulator.Continue names on in
	// real time: the dossiers and feedback items it would hold for the
	// days after its End, sent as their time comes, with the field's
	// volume (DossiersPerDay), rhythm and lifecycles over days and weeks,
	// so that today continues the charts. The device simulator at field
	// pace has the history's camera rates and weather.
	PaceField Pace = "field"
)

// ParsePace reads a pace by name; empty is PaceDemo.
func ParsePace(s string) (Pace, error) {
	switch p := Pace(s); p {
	case "", PaceDemo:
		return PaceDemo, nil
	case PaceField:
		return p, nil
	}
	return "", fmt.Errorf("pace %q is neither %q (the history's volume and lifecycles, carried on in real time) nor %q (lifecycles in minutes at the configured events a second)",
		s, PaceField, PaceDemo)
}

// DossiersPerDay is how many dossiers a History files on an average day,
// and so a simulator at field pace, for a simulator Rate of rate: Binh
// Duong's 2,500 a day at the default rate 20, in proportion to rate, at
// most 25,000 (the cost of a backfill). Weekdays, holidays and chance move
// a day around it.
func DossiersPerDay(rate float64) float64 {
	if rate <= 0 {
		rate = fieldRate
	}
	return min(fieldPerDay*rate/fieldRate, maxPerDay)
}

// Field pace's bounds. A simulator started on a database that holds the
// history up to some time carries on from there, sending what the history
// holds for the time the node was away, at most fieldCatchUp of it (more
// is left a gap); Run replays it an hour of simulated time at a time, as
// fast as the server takes it. carryLookback is how far back CarryOn looks
// for dossiers still open: longer than the longest lifecycle PlanLifecycle
// and the office hours draw (80 days over 90 days at the default rate).
const (
	fieldCatchUp      = 7 * 24 * time.Hour
	fieldCatchUpSlice = time.Hour
	carryLookback     = 120
)

// FieldCatchUp is the longest gap a simulator at field pace fills when it
// starts on a database whose history stops before now.
const FieldCatchUp = fieldCatchUp

// fieldOutboxLimit holds about a day of dossier events at the field's
// volume (some four events a dossier), within the demo's bounds.
func fieldOutboxLimit(perDay float64) int {
	return min(max(int(perDay*5), 5000), 200_000)
}
