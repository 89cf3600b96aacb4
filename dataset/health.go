package dataset

import (
	"math"
	"time"
)

// Health is how live a dataset's feed is: what came last, how complete
// its latest period is, and whether the next period is overdue.
type Health struct {
	Dataset    string `json:"dataset"`
	Department string `json:"department,omitempty"`
	Grain      Grain  `json:"grain"`
	// LatestPeriod is the latest period with values ("" without any).
	LatestPeriod string `json:"latest_period"`
	// Received is when values last came; nil without any.
	Received *time.Time `json:"received"`
	// Reported and Expected are the units with values for the latest
	// period and the units of the dataset's level (0 for points);
	// Completeness is their ratio, nil for points.
	Reported     int      `json:"reported"`
	Expected     int      `json:"expected"`
	Completeness *float64 `json:"completeness"`
	// Due is the period that should have come by now: the last one
	// ended at least DueDays ago. Late says it has not come.
	Due  string `json:"due"`
	Late bool   `json:"late"`
	// LastUpload is the latest upload or connector run, with its rows
	// refused and its error.
	LastUpload *Upload `json:"last_upload,omitempty"`
}

// DuePeriod is the latest period of d that should have values at now: the
// last one that ended at least d.Due() days before now's date.
func (d Definition) DuePeriod(now time.Time) time.Time {
	today := civil(now.Date())
	p := d.Grain.Floor(today.AddDate(0, 0, -d.Due()))
	// p holds the day Due days ago; it is due only if it ended by then.
	if d.Grain.Next(p).After(today.AddDate(0, 0, -d.Due())) {
		p = d.Grain.Floor(p.AddDate(0, 0, -1))
	}
	return p
}

// HealthOf judges d's feed at now (in the deployment's zone): expected is
// the number of units of its level, uploads its latest runs, newest first.
func HealthOf(d Definition, f Feed, uploads []Upload, expected int, now time.Time) Health {
	h := Health{Dataset: d.ID, Department: d.Department, Grain: d.Grain, Reported: len(f.Units), Expected: expected}
	due := d.DuePeriod(now)
	h.Due = d.Grain.Format(due)
	if !f.Latest.IsZero() {
		h.LatestPeriod = d.Grain.Format(f.Latest)
		r := f.Received
		h.Received = &r
	}
	h.Late = f.Latest.IsZero() || f.Latest.Before(due)
	if expected > 0 {
		c := math.Round(float64(len(f.Units))/float64(expected)*1e4) / 1e4
		h.Completeness = &c
	}
	if len(uploads) > 0 {
		u := uploads[0]
		h.LastUpload = &u
	}
	return h
}
