package report

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/rollup"
)

// uncached is an engine over the same store that reads the rollups every
// time: the reference a cached answer must equal.
func (f fixture) uncached(t *testing.T) *Engine {
	t.Helper()
	e, err := New(Config{CacheBytes: -1}, f.s, f.e.h, lease.NewLocal(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.now = f.e.now
	return e
}

// questions are answers over closed ranges of the fixture, each read from
// an engine as JSON.
var cacheQuestions = map[string]func(*Engine) (any, error){
	"daily on-time rate of 79, October": func(e *Engine) (any, error) {
		return e.Series(context.Background(), SeriesQuery{KPI: "on_time_rate", Area: "79", Range: october(), Step: Day})
	},
	"hourly received of 79, October": func(e *Engine) (any, error) {
		return e.Series(context.Background(), SeriesQuery{KPI: "dossiers_received", Area: "79", Range: october(), Step: Hour})
	},
	"weekly on-time rate with open dossiers of Bến Thành, a year ago compared": func(e *Engine) (any, error) {
		return e.Series(context.Background(), SeriesQuery{KPI: "on_time_open_rate", Area: benThanh,
			Range: Range{rollup.Floor(october().From, Week, hcm), october().To}, Step: Week, Compare: "year_ago"})
	},
	"communes of 79 by on-time rate with open dossiers, October against September": func(e *Engine) (any, error) {
		return e.Ranking(context.Background(), RankingQuery{KPI: "on_time_open_rate", Parent: "79", Range: october(), Compare: "previous"})
	},
	"scoreboard of 79, October": func(e *Engine) (any, error) {
		p, _ := ParsePeriod("2026-10", time.Now(), hcm)
		return e.Scoreboard(context.Background(), "79", p)
	},
}

func answerJSON(t *testing.T, e *Engine, what string) string {
	t.Helper()
	v, err := cacheQuestions[what](e)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCachedAnswersFollowLateCorrections: answers over closed ranges are
// served from the cache while nothing they read changed, records outside
// what they read leave them cached, and a late event that corrects a past
// day changes them at once.
func TestCachedAnswersFollowLateCorrections(t *testing.T) {
	f := newFixture(t)
	ref := f.uncached(t)
	first := map[string]string{}
	for what := range cacheQuestions {
		first[what] = answerJSON(t, f.e, what)
		if want := answerJSON(t, ref, what); first[what] != want {
			t.Fatalf("%s: the cached engine answers\n%s\nthe rollups read again\n%s", what, first[what], want)
		}
	}
	hits := f.e.cache.hits.Load()
	for what := range cacheQuestions {
		if again := answerJSON(t, f.e, what); again != first[what] {
			t.Errorf("%s asked again: got\n%s\nwant\n%s", what, again, first[what])
		}
	}
	// Every question asks for one cached answer, a comparison for two.
	if got := f.e.cache.hits.Load() - hits; got < int64(len(cacheQuestions)) {
		t.Errorf("asked again: %d answers from the cache, want at least %d", got, len(cacheQuestions))
	}

	// Records outside what October's answers read, received in November,
	// leave them cached.
	nov := func(day, hour int) time.Time { return time.Date(2026, 11, day, hour, 0, 0, 0, hcm).UTC() }
	f.write(t,
		ev{"N1", saiGon, "received", nov(20, 8), nov(21, 17), "online", nil},
		ev{"N1", saiGon, "resolved", nov(21, 8), nov(21, 17), "online", nil},
	)
	hits = f.e.cache.hits.Load()
	if got := answerJSON(t, f.e, "daily on-time rate of 79, October"); got != first["daily on-time rate of 79, October"] {
		t.Errorf("after November's records, October's series changed:\n%s", got)
	}
	if f.e.cache.hits.Load() == hits {
		t.Errorf("November's records dropped October's cached series: they are outside what it read")
	}

	// The late correction: D4 (Bến Thành, resolved on 12 October four days
	// after its deadline) had waited four days for the citizen's documents,
	// which makes it on time.
	seriesKey := questionKey("steps", []aggregate.Source{aggregate.SourceDossierFlow}, false, f.e.h.Subtree("79"), october(), Day)
	reads := f.e.rollups.Reads(f.e.ask(f.e.h.Subtree("79"), october(), Day), aggregate.SourceDossierFlow)
	before, err := f.e.version(context.Background(), reads)
	if err != nil {
		t.Fatal(err)
	}
	f.write(t,
		ev{"D4", benThanh, "supplement_requested", oct(6, 8), oct(8, 17), "online", nil},
		ev{"D4", benThanh, "processing", oct(10, 8), oct(8, 17), "online", nil},
	)
	after, err := f.e.version(context.Background(), reads)
	if err != nil {
		t.Fatal(err)
	}
	// The negative control: the cache still holds the answer from before
	// the correction, which only the changed version keeps from being
	// served.
	if before == after {
		t.Errorf("the correction of 12 October left the version of October's day rollups as it was: %s", after)
	}
	if stale, ok := f.e.cache.get(seriesKey, before); !ok {
		t.Fatalf("October's series is not in the cache under the version it was read at")
	} else if n := stale.(map[int64]aggregate.Counts)[oct(12, 0).Unix()]; n.OnTime != 0 || n.Resolved != 1 {
		t.Fatalf("the cached 12 October: got %d on time of %d, want the 0 of 1 from before the correction", n.OnTime, n.Resolved)
	}
	for what := range cacheQuestions {
		got, want := answerJSON(t, f.e, what), answerJSON(t, ref, what)
		if got != want {
			t.Errorf("%s after the correction: the cached engine answers\n%s\nthe rollups read again\n%s", what, got, want)
		}
		if what != "hourly received of 79, October" && got == first[what] {
			t.Errorf("%s: the correction changed nothing; the test needs it to", what)
		}
	}
	s, err := f.e.Series(context.Background(), SeriesQuery{KPI: "on_time_rate", Area: "79", Range: october(), Step: Day})
	if err != nil {
		t.Fatal(err)
	}
	checkValue(t, "on-time rate of 79 on 12 October, corrected", s.Points[11].Value, [3]any{1.0, 1.0, 1.0})

	// A dossier received in August, due in September and still open
	// reaches October's answers only through the open balances: their
	// reads must version the rollups before October too.
	openRate := func(e *Engine) Value {
		t.Helper()
		s, err := e.Series(context.Background(), SeriesQuery{KPI: "on_time_open_rate", Area: benThanh, Range: october(), Step: Month})
		if err != nil {
			t.Fatal(err)
		}
		return s.Points[0].Value
	}
	was := openRate(f.e)
	openRate(f.e)
	aug := func(day int) time.Time { return time.Date(2026, 8, day, 8, 0, 0, 0, hcm).UTC() }
	f.write(t, ev{"A1", benThanh, "received", aug(20), aug(31), "online", nil})
	got, want := openRate(f.e), openRate(ref)
	if mustJSON(got) != mustJSON(want) {
		t.Errorf("October's open dossiers after one received in August: the cached engine answers %s, the rollups read again %s", mustJSON(got), mustJSON(want))
	}
	if *got.Denominator != *was.Denominator+1 {
		t.Errorf("October's open dossiers of Bến Thành: got %v in the denominator, want one more than %v", *got.Denominator, *was.Denominator)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestRangesNotOverAreNotCached: the figures of a range not yet over move
// with the clock, so they are read every time.
func TestRangesNotOverAreNotCached(t *testing.T) {
	f := newFixture(t)
	f.e.now = func() time.Time { return time.Date(2026, 10, 25, 12, 30, 0, 0, hcm) }
	for range 2 {
		if _, err := f.e.Series(context.Background(), SeriesQuery{KPI: "on_time_open_rate", Area: benThanh, Range: october(), Step: Day}); err != nil {
			t.Fatal(err)
		}
	}
	if h, m := f.e.cache.hits.Load(), f.e.cache.misses.Load(); h+m != 0 {
		t.Errorf("October asked on 25 October: %d hits and %d misses of the cache, want it not asked", h, m)
	}
}

func TestAnswerCacheKeepsTheRecentlyUsedWithinItsBound(t *testing.T) {
	c := newAnswerCache(300)
	c.put("a", "v1", 1, 100-int64(len("a")+len("v1")))
	c.put("b", "v1", 2, 100-int64(len("b")+len("v1")))
	c.put("c", "v1", 3, 100-int64(len("c")+len("v1")))
	if _, ok := c.get("a", "v1"); !ok {
		t.Fatal("a is not kept")
	}
	c.put("d", "v1", 4, 100-int64(len("d")+len("v1"))) // over the bound: b is the least recently used
	if _, ok := c.get("b", "v1"); ok {
		t.Errorf("b is kept beyond the bound")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := c.get(k, "v1"); !ok {
			t.Errorf("%s is not kept", k)
		}
	}
	if _, ok := c.get("a", "v2"); ok {
		t.Errorf("a is served at another version")
	}
	if c.used != 300 {
		t.Errorf("used %d bytes, want 300", c.used)
	}
}
