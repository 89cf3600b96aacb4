package dataset_test

import (
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/dataset"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// forms is a period written in each grain's form, and its first day.
var forms = map[dataset.Grain]struct {
	text  string
	first time.Time
}{
	dataset.Day:     {"2025-03-14", day(2025, 3, 14)},
	dataset.Month:   {"2025-03", day(2025, 3, 1)},
	dataset.Quarter: {"2025-Q1", day(2025, 1, 1)},
	dataset.Year:    {"2025", day(2025, 1, 1)},
}

// A period is read in its dataset's grain only: a month sent to a yearly
// dataset is refused with the form the dataset wants, never guessed.
func TestAPeriodIsReadInItsGrainsFormAndNoOther(t *testing.T) {
	for _, g := range dataset.Grains {
		for h, form := range forms {
			got, err := g.Parse(form.text)
			if g == h {
				if err != nil || !got.Equal(form.first) || got.Location() != time.UTC {
					t.Errorf("%s.Parse(%q) = %v, %v; want %v UTC", g, form.text, got, err, form.first)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s.Parse(%q) = %v; want it refused (a %s's form)", g, form.text, got, h)
			} else if !strings.Contains(err.Error(), g.Form()) || !strings.Contains(err.Error(), form.text) {
				t.Errorf("%s.Parse(%q): %q does not name the period and the form %q", g, form.text, err, g.Form())
			}
		}
	}
}

func TestAnImpossiblePeriodIsRefusedWithTheFormExpected(t *testing.T) {
	for _, c := range []struct {
		grain dataset.Grain
		text  string
	}{
		{dataset.Day, "2025-02-30"},
		{dataset.Day, "2025-02-29"}, // 2025 is not a leap year
		{dataset.Day, "2025-04-31"},
		{dataset.Day, "2025-00-10"},
		{dataset.Day, "2025-3-14"},
		{dataset.Day, "14/03/2025"},
		{dataset.Day, " 2025-03-14"},
		{dataset.Month, "2025-13"},
		{dataset.Month, "2025-00"},
		{dataset.Month, "2025-3"},
		{dataset.Month, "03-2025"},
		{dataset.Quarter, "2025-Q5"},
		{dataset.Quarter, "2025-Q0"},
		{dataset.Quarter, "2025Q1"},
		{dataset.Quarter, "Q1-2025"},
		{dataset.Year, "25"},
		{dataset.Year, "２０２５"}, // full-width digits
		{dataset.Year, ""},
		// Periods are kept from 1970 to 2105.
		{dataset.Year, "1969"},
		{dataset.Year, "2106"},
		{dataset.Year, "0000"},
		{dataset.Day, "1969-12-31"},
		{dataset.Month, "2106-01"},
		{dataset.Quarter, "1969-Q4"},
	} {
		got, err := c.grain.Parse(c.text)
		if err == nil {
			t.Errorf("%s.Parse(%q) = %v; want it refused", c.grain, c.text, got)
			continue
		}
		if !strings.Contains(err.Error(), c.grain.Form()) {
			t.Errorf("%s.Parse(%q): %q does not give the form %q", c.grain, c.text, err, c.grain.Form())
		}
	}
}

func TestTheFirstAndLastPeriodsKeptAndALeapDayAreRead(t *testing.T) {
	for _, c := range []struct {
		grain dataset.Grain
		text  string
		want  time.Time
	}{
		{dataset.Year, "1970", day(1970, 1, 1)},
		{dataset.Year, "2105", day(2105, 1, 1)},
		{dataset.Day, "1970-01-01", day(1970, 1, 1)},
		{dataset.Day, "2105-12-31", day(2105, 12, 31)},
		{dataset.Day, "2024-02-29", day(2024, 2, 29)},
		{dataset.Month, "2025-12", day(2025, 12, 1)},
		{dataset.Quarter, "2025-q4", day(2025, 10, 1)}, // a lower-case q is read too
	} {
		got, err := c.grain.Parse(c.text)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%s.Parse(%q) = %v, %v; want %v", c.grain, c.text, got, err, c.want)
		}
	}
}

func TestAPeriodOfAnUnknownGrainIsRefused(t *testing.T) {
	if _, err := dataset.Grain("week").Parse("2025-W10"); err == nil {
		t.Error(`Grain("week").Parse succeeded; want an error`)
	}
	if dataset.Grain("week").Valid() || !dataset.Quarter.Valid() {
		t.Error("Valid is wrong for week or quarter")
	}
}

// Every period of every grain is written back as it was read: the
// periods the api answers are those the departments send.
func TestAPeriodIsWrittenAsItIsRead(t *testing.T) {
	for _, g := range dataset.Grains {
		n := 0
		for p := day(1970, 1, 1); p.Year() <= 2105; p = g.Next(p) {
			if g == dataset.Day && p.Day() != 1 && p.Day() != 28 && p.Day() != 29 && p.Day() != 31 {
				continue // the days around months' ends are enough, and fast
			}
			s := g.Format(p)
			back, err := g.Parse(s)
			if err != nil || !back.Equal(p) {
				t.Fatalf("%s: Parse(Format(%v) = %q) = %v, %v", g, p, s, back, err)
			}
			if g.Format(back) != s {
				t.Fatalf("%s: Format(Parse(%q)) = %q", g, s, g.Format(back))
			}
			n++
		}
		if n == 0 {
			t.Errorf("%s: no period checked", g)
		}
	}
	if got := dataset.Quarter.Format(day(2025, 7, 1)); got != "2025-Q3" {
		t.Errorf("Quarter.Format(2025-07-01) = %q, want 2025-Q3", got)
	}
}

func TestAPeriodHoldsTheDaysOfItsGrain(t *testing.T) {
	ict := time.FixedZone("ICT", 7*3600)
	for _, c := range []struct {
		grain       dataset.Grain
		at          time.Time
		floor, next time.Time
	}{
		{dataset.Day, time.Date(2025, 3, 14, 15, 4, 5, 0, time.UTC), day(2025, 3, 14), day(2025, 3, 15)},
		{dataset.Day, day(2025, 12, 31), day(2025, 12, 31), day(2026, 1, 1)},
		{dataset.Day, day(2024, 2, 28), day(2024, 2, 28), day(2024, 2, 29)},
		{dataset.Month, day(2025, 1, 31), day(2025, 1, 1), day(2025, 2, 1)},
		{dataset.Month, day(2025, 12, 15), day(2025, 12, 1), day(2026, 1, 1)},
		{dataset.Quarter, day(2025, 9, 30), day(2025, 7, 1), day(2025, 10, 1)},
		{dataset.Quarter, day(2025, 1, 1), day(2025, 1, 1), day(2025, 4, 1)},
		{dataset.Quarter, day(2025, 5, 31), day(2025, 4, 1), day(2025, 7, 1)},
		{dataset.Quarter, day(2025, 12, 31), day(2025, 10, 1), day(2026, 1, 1)},
		{dataset.Year, day(2024, 2, 29), day(2024, 1, 1), day(2025, 1, 1)},
		{dataset.Year, day(2025, 12, 31), day(2025, 1, 1), day(2026, 1, 1)},
		// The civil date of the time counts, in its own zone: 01:00 on 1
		// April in Hanoi is still 31 March in UTC.
		{dataset.Quarter, time.Date(2025, 4, 1, 1, 0, 0, 0, ict), day(2025, 4, 1), day(2025, 7, 1)},
		{dataset.Day, time.Date(2025, 4, 1, 1, 0, 0, 0, ict), day(2025, 4, 1), day(2025, 4, 2)},
	} {
		floor := c.grain.Floor(c.at)
		if !floor.Equal(c.floor) || floor.Location() != time.UTC {
			t.Errorf("%s.Floor(%v) = %v, want %v UTC", c.grain, c.at, floor, c.floor)
		}
		if next := c.grain.Next(floor); !next.Equal(c.next) {
			t.Errorf("%s.Next(%v) = %v, want %v", c.grain, floor, next, c.next)
		}
	}
}
