package dataset_test

import (
	"testing"
	"time"

	"github.com/openioc/ioc/dataset"
)

// The rule: the period due at a date is the last one that ended at least
// Due days before it. A period "ends" at the first day of the next one, so
// February (ending on 1 March) with 15 due days is due from 16 March.
func TestThePeriodDueIsTheLastThatEndedDueDaysAgo(t *testing.T) {
	ict := time.FixedZone("ICT", 7*3600)
	for _, c := range []struct {
		name  string
		grain dataset.Grain
		due   int // 0: the grain's default
		now   time.Time
		want  string
	}{
		// Months, 15 days by default: February ended on 1 March,
		// 15 days before 16 March.
		{"the day before February is due", dataset.Month, 0, day(2026, 3, 15), "2026-01"},
		{"the day February is due", dataset.Month, 0, day(2026, 3, 16), "2026-02"},
		{"late in the day, still the day before", dataset.Month, 0, time.Date(2026, 3, 15, 23, 59, 59, 0, time.UTC), "2026-01"},
		// The date counts in the deployment's zone: 00:30 on 16 March in
		// Hanoi is still 15 March in UTC.
		{"the zone's date", dataset.Month, 0, time.Date(2026, 3, 16, 0, 30, 0, 0, ict), "2026-02"},
		{"across a year", dataset.Month, 0, day(2026, 1, 15), "2025-11"},
		{"across a year, a day later", dataset.Month, 0, day(2026, 1, 16), "2025-12"},
		{"a month due on its last day", dataset.Month, 30, day(2026, 3, 31), "2026-02"}, // 1 March + 30 days
		{"a month due on its last day, a day early", dataset.Month, 30, day(2026, 3, 30), "2026-01"},
		// Days, 2 by default: 12 March ended on 13 March, 2 days before
		// the 15th.
		{"a day", dataset.Day, 0, day(2026, 3, 15), "2026-03-12"},
		{"a day across a month", dataset.Day, 0, day(2026, 3, 2), "2026-02-27"},
		{"a day due the next day", dataset.Day, 1, day(2026, 3, 1), "2026-02-27"},
		// Quarters, 30 days by default: Q1 ended on 1 April, 30 days
		// before 1 May.
		{"the day before Q1 is due", dataset.Quarter, 0, day(2026, 4, 30), "2025-Q4"},
		{"the day Q1 is due", dataset.Quarter, 0, day(2026, 5, 1), "2026-Q1"},
		{"Q4 due in the next year", dataset.Quarter, 0, day(2026, 1, 31), "2025-Q4"},
		// Years, 90 days by default: 2025 ended on 1 January 2026, 90
		// days before 1 April.
		{"the day before a year is due", dataset.Year, 0, day(2026, 3, 31), "2024"},
		{"the day a year is due", dataset.Year, 0, day(2026, 4, 1), "2025"},
		// 2023 ended on 1 January 2024; 90 days after is 31 March, a day
		// earlier than in other years for February's 29th.
		{"a year due in a leap year", dataset.Year, 0, day(2024, 3, 31), "2023"},
		{"a year due in a leap year, a day early", dataset.Year, 0, day(2024, 3, 30), "2022"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := dataset.Definition{Grain: c.grain, DueDays: c.due}
			got := d.DuePeriod(c.now)
			if s := c.grain.Format(got); s != c.want {
				t.Errorf("%s due %d days: due at %v is %s, want %s", c.grain, d.Due(), c.now, s, c.want)
			}
			if got.Location() != time.UTC || !got.Equal(c.grain.Floor(got)) {
				t.Errorf("due period %v is not a period's first day in UTC", got)
			}
		})
	}
}

func TestEachGrainHasItsDefaultDueDays(t *testing.T) {
	for g, want := range map[dataset.Grain]int{dataset.Day: 2, dataset.Month: 15, dataset.Quarter: 30, dataset.Year: 90} {
		if got := (dataset.Definition{Grain: g}).Due(); got != want {
			t.Errorf("%s: due %d days, want %d", g, got, want)
		}
	}
	if got := (dataset.Definition{Grain: dataset.Month, DueDays: 5}).Due(); got != 5 {
		t.Errorf("a definition's due days: %d, want 5", got)
	}
}

func TestAFeedIsLateWhenTheDuePeriodHasNotCome(t *testing.T) {
	d := dataset.Definition{ID: "doanh_nghiep", Department: "Sở Tài chính", Grain: dataset.Month}
	now := day(2026, 3, 16) // February is due
	received := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	uploads := []dataset.Upload{{Dataset: d.ID, ID: "newest", Rows: 2}, {Dataset: d.ID, ID: "older"}}
	for _, c := range []struct {
		name   string
		latest time.Time
		late   bool
	}{
		{"February came", day(2026, 2, 1), false},
		{"March came early", day(2026, 3, 1), false},
		{"only January came", day(2026, 1, 1), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := dataset.HealthOf(d, dataset.Feed{Latest: c.latest, Units: []string{"26734", "26737"}, Received: received}, uploads, 3, now)
			if h.Late != c.late || h.Due != "2026-02" || h.LatestPeriod != dataset.Month.Format(c.latest) {
				t.Errorf("late %v, due %s, latest %s; want late %v, due 2026-02, latest %s", h.Late, h.Due, h.LatestPeriod, c.late, dataset.Month.Format(c.latest))
			}
			if h.Dataset != d.ID || h.Department != d.Department || h.Grain != dataset.Month || h.Received == nil || !h.Received.Equal(received) {
				t.Errorf("health %+v", h)
			}
			// 2 of 3 communes, to 4 decimals.
			if h.Reported != 2 || h.Expected != 3 || h.Completeness == nil || *h.Completeness != 0.6667 {
				t.Errorf("reported %d of %d, completeness %v; want 2 of 3, 0.6667", h.Reported, h.Expected, deref(h.Completeness))
			}
			if h.LastUpload == nil || h.LastUpload.ID != "newest" {
				t.Errorf("last upload %+v, want the newest", h.LastUpload)
			}
		})
	}
}

// A feed that never sent anything is late, with nothing to show as its
// latest period.
func TestAFeedWithNoValuesIsLate(t *testing.T) {
	d := dataset.Definition{ID: "doanh_nghiep", Grain: dataset.Quarter}
	h := dataset.HealthOf(d, dataset.Feed{}, nil, 3, day(2026, 5, 1))
	if !h.Late || h.LatestPeriod != "" || h.Received != nil || h.Due != "2026-Q1" || h.LastUpload != nil {
		t.Errorf("health %+v; want late, no latest period, due 2026-Q1", h)
	}
	if h.Reported != 0 || h.Completeness == nil || *h.Completeness != 0 {
		t.Errorf("reported %d, completeness %v; want 0 of 3", h.Reported, deref(h.Completeness))
	}
}

func TestCompletenessIsRoundedAndNoneForPoints(t *testing.T) {
	d := dataset.Definition{ID: "su_co_dien", Grain: dataset.Day, Level: dataset.LevelPoint}
	for _, c := range []struct {
		reported, expected int
		want               any
	}{
		{1, 3, 0.3333},
		{2, 3, 0.6667},
		{3, 3, 1.0},
		{1, 7, 0.1429},
		{99_999, 100_000, 1.0}, // 0.99999 to 4 decimals
		{5, 0, nil},            // points: no units are expected
	} {
		f := dataset.Feed{Latest: day(2026, 3, 1), Units: make([]string, c.reported)}
		h := dataset.HealthOf(d, f, nil, c.expected, day(2026, 3, 2))
		if got := deref(h.Completeness); got != c.want {
			t.Errorf("%d of %d: completeness %v, want %v", c.reported, c.expected, got, c.want)
		}
	}
}
