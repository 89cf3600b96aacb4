package dataset

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/openioc/ioc/alarm"
	"github.com/openioc/ioc/geo"
)

// Health is how live a dataset's feed is: what came last, how complete
// its latest period is, and whether the next period is overdue.
type Health struct {
	Dataset    string `json:"dataset"`
	Department string `json:"department,omitempty"`
	Area       string `json:"area,omitempty"`
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
	// LateSince is when the due period became late: its end plus the due
	// days; nil when not late.
	LateSince *time.Time `json:"late_since,omitempty"`
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
	h := Health{Dataset: d.ID, Department: d.Department, Area: d.Area, Grain: d.Grain, Reported: len(f.Units), Expected: expected}
	due := d.DuePeriod(now)
	h.Due = d.Grain.Format(due)
	if !f.Latest.IsZero() {
		h.LatestPeriod = d.Grain.Format(f.Latest)
		r := f.Received
		h.Received = &r
	}
	h.Late = f.Latest.IsZero() || f.Latest.Before(due)
	if h.Late {
		y, m, dd := d.Grain.Next(due).AddDate(0, 0, d.Due()).Date()
		since := time.Date(y, m, dd, 0, 0, 0, 0, now.Location())
		h.LateSince = &since
	}
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

// Hierarchy is what the feeds' health needs of the hierarchy:
// geo.Hierarchy.
type Hierarchy interface {
	Select(level, parent string) []geo.Unit
	Contains(root, code string) bool
}

// Health judges every dataset in force at now (in the deployment's zone):
// the units expected are those of its level in its area, and only they
// count as reported.
func (ds *Datasets) Health(ctx context.Context, h Hierarchy, now time.Time) ([]Health, error) {
	out := []Health{}
	for _, d := range ds.List() {
		f, err := ds.Feed(ctx, d)
		if err != nil {
			return nil, err
		}
		if d.Area != "" {
			f.Units = slices.DeleteFunc(f.Units, func(u string) bool { return !h.Contains(d.Area, u) })
		}
		ups, err := ds.Uploads(ctx, d.ID, 1)
		if err != nil {
			return nil, err
		}
		expected := 0
		if d.Level != LevelPoint {
			expected = len(h.Select(d.Level, d.Area))
		}
		out = append(out, HealthOf(d, f, ups, expected, now))
	}
	return out, nil
}

// AlarmFeeds gives the alarm engine the feeds' liveness (alarm.Feeds), for
// its rules of kind dataset_feed.
type AlarmFeeds struct {
	Datasets  *Datasets
	Hierarchy Hierarchy
	// Failing names the datasets whose connector's last run failed, with
	// why; nil: none pull.
	Failing func() map[string]string
}

// Feeds judges every dataset's feed at now.
func (f AlarmFeeds) Feeds(ctx context.Context, now time.Time) ([]alarm.Feed, error) {
	health, err := f.Datasets.Health(ctx, f.Hierarchy, now)
	if err != nil {
		return nil, err
	}
	var failing map[string]string
	if f.Failing != nil {
		failing = f.Failing()
	}
	out := make([]alarm.Feed, len(health))
	for i, h := range health {
		out[i] = alarm.Feed{Dataset: h.Dataset, Area: h.Area, Late: h.Late, Due: h.Due, Latest: h.LatestPeriod,
			Completeness: h.Completeness, Failure: failing[h.Dataset]}
		switch {
		case h.LateSince != nil:
			out[i].Since = *h.LateSince
		case h.LastUpload != nil && out[i].Failure != "":
			out[i].Since = h.LastUpload.At
		}
	}
	return out, nil
}
