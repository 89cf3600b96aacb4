package rollup

import (
	"strings"
	"testing"
	"time"
)

// TestBalancePartsTileThePast: the rollups read for a balance cover the
// beginning of time up to the moment, once, in the coarsest pieces, and
// read minutes only where hours do not fit.
func TestBalancePartsTileThePast(t *testing.T) {
	kolkata := mustLoc("Asia/Kolkata") // midnight is not a whole UTC hour
	for _, c := range []struct {
		at   time.Time
		loc  *time.Location
		want string
	}{
		{time.Date(2026, 3, 5, 17, 10, 0, 0, hcm), hcm,
			"month ..01 00:00 | day 01 00:00..05 00:00 | hour 05 00:00..05 17:00 | minute 05 17:00..05 17:10"},
		{time.Date(2026, 3, 5, 17, 0, 0, 0, hcm), hcm,
			"month ..01 00:00 | day 01 00:00..05 00:00 | hour 05 00:00..05 17:00"},
		{time.Date(2026, 3, 1, 0, 0, 0, 0, hcm), hcm,
			"month ..01 00:00"},
		{time.Date(2026, 3, 5, 0, 20, 0, 0, hcm), hcm,
			"month ..01 00:00 | day 01 00:00..05 00:00 | minute 05 00:00..05 00:20"},
		{time.Date(2026, 3, 5, 9, 45, 0, 0, kolkata), kolkata,
			"month ..01 00:00 | day 01 00:00..05 00:00 | minute 05 00:00..05 00:30 | hour 05 00:30..05 09:30 | minute 05 09:30..05 09:45"},
		{time.Date(2026, 3, 5, 0, 10, 0, 0, kolkata), kolkata,
			"month ..01 00:00 | day 01 00:00..05 00:00 | minute 05 00:00..05 00:10"},
	} {
		var got []string
		var prev time.Time
		for i, p := range balanceParts(c.at, c.loc) {
			if i > 0 && !p.from.Equal(prev) {
				t.Errorf("%s: %s begins at %s, the previous part ends at %s", c.at, p.table, p.from, prev)
			}
			prev = p.to
			got = append(got, describePart(p, c.loc))
		}
		if !prev.Equal(c.at) {
			t.Errorf("%s: the parts end at %s", c.at, prev)
		}
		if g := strings.Join(got, " | "); g != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.at, g, c.want)
		}
	}
}

// describePart writes p in local days of the month and times.
func describePart(p balancePart, loc *time.Location) string {
	const f = "02 15:04"
	if p.open {
		return p.table + " .." + p.to.In(loc).Format(f)
	}
	return p.table + " " + p.from.In(loc).Format(f) + ".." + p.to.In(loc).Format(f)
}

var hcm = mustLoc("Asia/Ho_Chi_Minh")

func mustLoc(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}
