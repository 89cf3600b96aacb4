package report

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/ingest/ingesttest"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
	"github.com/openioc/ioc/rollup"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var hcm = func() *time.Location {
	l, err := time.LoadLocation("Asia/Ho_Chi_Minh")
	if err != nil {
		panic(err)
	}
	return l
}()

// oct is a local time in October 2026 (day, hour).
func oct(day, hour int) time.Time { return time.Date(2026, 10, day, hour, 0, 0, 0, hcm).UTC() }

const (
	benThanh = "26743" // a ward of Hồ Chí Minh City (79)
	saiGon   = "26740" // another
	hanoiW   = "00004" // a ward of Hà Nội (01)
)

// fixture is a small October 2026 with every rule in it; the figures the
// tests expect are worked out by hand in the comments.
type fixture struct {
	e *Engine
	s *chstore.Store
}

type ev struct {
	dossier, area, status string
	at, due               time.Time
	channel               string
	set                   func(*ingest.Dossier)
}

func (f fixture) write(t *testing.T, evs ...ev) {
	t.Helper()
	var ds []ingest.Dossier
	for i, e := range evs {
		d := ingest.Dossier{EventID: e.dossier + "-" + e.status + "-" + e.at.Format("0102150405") + "-" + string(rune('a'+i%26)),
			DossierID: e.dossier, Hierarchy: "vn-2025", AreaCode: e.area, Channel: e.channel, Status: e.status,
			OccurredAt: e.at, Sector: "civil", ProcedureCode: "1.001"}
		if d.Channel == "" {
			d.Channel = "online"
		}
		if !e.due.IsZero() {
			due := e.due
			d.DueAt = &due
		}
		if e.set != nil {
			e.set(&d)
		}
		ds = append(ds, d)
	}
	ingesttest.Dossiers(t, f.s, ds)
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	s := testenv.Store(t)
	units, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := units.Hierarchy("vn-2025")
	e, err := New(Config{}, s, h, lease.NewLocal(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.now = func() time.Time { return time.Date(2026, 11, 22, 9, 0, 0, 0, hcm) }
	f := fixture{e, s}
	land := func(d *ingest.Dossier) { d.Sector = "land" }
	due3, due10, due8 := oct(3, 17), oct(10, 17), oct(8, 17)
	f.write(t,
		// D1, Sài Gòn: resolved in a day, on time; digitized, paid online, electronic result. 26 h.
		ev{"D1", saiGon, "received", oct(1, 8), due3, "online", func(d *ingest.Dossier) { land(d); d.Digitized, d.FeeRequired = true, true }},
		ev{"D1", saiGon, "resolved", oct(2, 10), due3, "online", func(d *ingest.Dossier) { land(d); d.EResult, d.PaidOnline = true, true }},
		// D2: resolved 3 days after the deadline, but 3 of those days were a
		// wait for the citizen's documents: on time. 121 h − 72 h = 49 h.
		ev{"D2", saiGon, "received", oct(1, 9), due3, "in_person", land},
		ev{"D2", saiGon, "supplement_requested", oct(2, 9), due3, "in_person", land},
		ev{"D2", saiGon, "processing", oct(5, 9), due3, "in_person", land},
		ev{"D2", saiGon, "resolved", oct(6, 10), due3, "in_person", land},
		// D3: well before its deadline, but documents were asked for twice:
		// late. 120 h − 2 × 24 h = 72 h; reused data.
		ev{"D3", saiGon, "received", oct(2, 8), due10, "online", func(d *ingest.Dossier) { d.ReusedData = true }},
		ev{"D3", saiGon, "supplement_requested", oct(3, 8), due10, "online", nil},
		ev{"D3", saiGon, "processing", oct(4, 8), due10, "online", nil},
		ev{"D3", saiGon, "supplement_requested", oct(5, 8), due10, "online", nil},
		ev{"D3", saiGon, "processing", oct(6, 8), due10, "online", nil},
		ev{"D3", saiGon, "resolved", oct(7, 8), due10, "online", nil},
		// D4, Bến Thành: resolved four days late. 168 h; fee, not paid online.
		ev{"D4", benThanh, "received", oct(5, 8), due8, "online", func(d *ingest.Dossier) { d.FeeRequired = true }},
		ev{"D4", benThanh, "resolved", oct(12, 8), due8, "online", nil},
		// D5: open at the end of October, past its deadline: late.
		ev{"D5", benThanh, "received", oct(20, 8), oct(30, 17), "postal", nil},
		ev{"D5", benThanh, "processing", oct(21, 8), oct(30, 17), "postal", nil},
		// D6: open at the end, not yet due; digitized.
		ev{"D6", benThanh, "received", oct(25, 8), time.Date(2026, 11, 5, 17, 0, 0, 0, hcm).UTC(), "online", func(d *ingest.Dossier) { d.Digitized = true }},
		// D7: its deadline passed while waiting for the citizen's documents: not late.
		ev{"D7", benThanh, "received", oct(28, 8), oct(29, 17), "online", nil},
		ev{"D7", benThanh, "supplement_requested", oct(29, 9), oct(29, 17), "online", nil},
		// D8: received in September, resolved on time on 1 October. 74 h.
		ev{"D8", saiGon, "received", time.Date(2026, 9, 28, 8, 0, 0, 0, hcm).UTC(), oct(2, 17), "online", nil},
		ev{"D8", saiGon, "resolved", oct(1, 10), oct(2, 17), "online", nil},
		// D9 is in Hà Nội and must not count for Hồ Chí Minh City.
		ev{"D9", hanoiW, "received", oct(3, 8), oct(6, 17), "online", nil},
		ev{"D9", hanoiW, "resolved", oct(4, 8), oct(6, 17), "online", nil},
	)
	rules := ingest.Rules{Hierarchy: "vn-2025", Areas: units, MaxFuture: time.Minute}
	var fb []ingest.Feedback
	for _, r := range []ingest.FeedbackRecord{
		{FeedbackID: "F1", AreaCode: saiGon, Category: "environment", ReceivedAt: "2026-10-02T08:00:00+07:00", DueAt: "2026-10-09T17:00:00+07:00",
			StatusChanges: []ingest.FeedbackStatusChange{{Status: "resolved", At: "2026-10-05T10:00:00+07:00"}}, Rating: "satisfied"},
		{FeedbackID: "F2", AreaCode: benThanh, Category: "procedure", DossierID: "D4", ReceivedAt: "2026-10-13T08:00:00+07:00", DueAt: "2026-10-20T17:00:00+07:00",
			StatusChanges: []ingest.FeedbackStatusChange{{Status: "resolved", At: "2026-10-25T10:00:00+07:00"}}, Rating: "dissatisfied"},
		{FeedbackID: "F3", AreaCode: saiGon, Category: "traffic", ReceivedAt: "2026-10-30T08:00:00+07:00", DueAt: "2026-11-06T17:00:00+07:00"},
	} {
		v, err := rules.ValidateFeedback(r, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		fb = append(fb, v)
	}
	ingesttest.Feedback(t, s, fb)
	return f
}

func october() Range {
	return Range{time.Date(2026, 10, 1, 0, 0, 0, 0, hcm), time.Date(2026, 11, 1, 0, 0, 0, 0, hcm)}
}

func val(p *float64) any {
	if p == nil {
		return nil
	}
	return math.Round(*p*1e6) / 1e6
}

// want is value, numerator, denominator (nil for null).
func checkValue(t *testing.T, what string, got Value, want [3]any) {
	t.Helper()
	if g := [3]any{val(got.Value), val(got.Numerator), val(got.Denominator)}; g != want {
		t.Errorf("%s: got %v, want %v", what, g, want)
	}
}

func TestEveryIndicatorMatchesTheHandCount(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	month := func(kpi, area string) Value {
		t.Helper()
		s, err := f.e.Series(ctx, SeriesQuery{KPI: kpi, Area: area, Range: october(), Step: Month})
		if err != nil {
			t.Fatalf("%s: %v", kpi, err)
		}
		if len(s.Points) != 1 {
			t.Fatalf("%s: got %d points, want 1", kpi, len(s.Points))
		}
		return s.Points[0].Value
	}
	for _, c := range []struct {
		kpi, area string
		want      [3]any
	}{
		// D1–D7 received in October; D1, D3, D4, D6, D7 online.
		{"dossiers_received", "79", [3]any{7.0, 7.0, nil}},
		{"online_rate", "79", [3]any{0.7143, 5.0, 7.0}},
		// Resolved in October: D1, D2, D3, D4, D8; on time: D1, D2 (the wait), D8.
		{"dossiers_resolved", "79", [3]any{5.0, 5.0, nil}},
		{"on_time_rate", "79", [3]any{0.6, 3.0, 5.0}},
		{"on_time_rate", saiGon, [3]any{0.75, 3.0, 4.0}},
		{"on_time_rate", benThanh, [3]any{0.0, 0.0, 1.0}},
		// Open at the end: D5 (late), D6, D7 (waiting); (3 + 2) ÷ (5 + 3).
		{"on_time_open_rate", "79", [3]any{0.625, 5.0, 8.0}},
		{"on_time_open_rate", benThanh, [3]any{0.5, 2.0, 4.0}},
		// 26 + 49 + 72 + 168 + 74 = 389 h over 5 dossiers.
		{"avg_resolution_days", "79", [3]any{3.24, 16.208333, 5.0}},
		{"online_payment_rate", "79", [3]any{0.5, 1.0, 2.0}},
		{"e_result_rate", "79", [3]any{0.2, 1.0, 5.0}},
		{"digitization_rate", "79", [3]any{0.2857, 2.0, 7.0}},
		{"data_reuse_rate", "79", [3]any{0.1429, 1.0, 7.0}},
		{"feedback_received", "79", [3]any{3.0, 3.0, nil}},
		{"feedback_on_time_rate", "79", [3]any{0.5, 1.0, 2.0}},
		{"feedback_satisfaction_rate", "79", [3]any{0.5, 1.0, 2.0}},
		// (3 on time − 1 dossier complained about) ÷ 5 resolved.
		{"procedure_satisfaction_rate", "79", [3]any{0.4, 2.0, 5.0}},
		{"on_time_rate", "01", [3]any{1.0, 1.0, 1.0}},
	} {
		checkValue(t, c.kpi+" of "+c.area, month(c.kpi, c.area), c.want)
	}
}

func TestSeriesAndRankingsAreSumsOfTheirParts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	days, err := f.e.Series(ctx, SeriesQuery{KPI: "on_time_rate", Area: "79", Range: october(), Step: Day})
	if err != nil {
		t.Fatal(err)
	}
	if len(days.Points) != 31 {
		t.Fatalf("got %d daily points, want 31 (empty days included)", len(days.Points))
	}
	var num, den float64
	resolvedOn := map[int][3]any{1: {1.0, 1.0, 1.0}, 2: {1.0, 1.0, 1.0}, 6: {1.0, 1.0, 1.0}, 7: {0.0, 0.0, 1.0}, 12: {0.0, 0.0, 1.0}}
	for i, p := range days.Points {
		if want := time.Date(2026, 10, i+1, 0, 0, 0, 0, hcm); !p.T.Equal(want) {
			t.Errorf("point %d: got t %s, want %s", i, p.T, want)
		}
		want, ok := resolvedOn[i+1]
		if !ok {
			want = [3]any{nil, 0.0, 0.0}
		}
		checkValue(t, "on_time_rate on "+p.T.Format("Jan 2"), p.Value, want)
		num += *p.Numerator
		den += *p.Denominator
	}
	if num != 3 || den != 5 {
		t.Errorf("sum of daily parts: got %v/%v, want 3/5 as the month has", num, den)
	}
	weeks, err := f.e.Series(ctx, SeriesQuery{KPI: "dossiers_received", Area: "79", Range: Range{rollup.Floor(october().From, Week, hcm), october().To}, Step: Week})
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, p := range weeks.Points {
		if p.T.Weekday() != time.Monday {
			t.Errorf("week starting %s is not a Monday", p.T)
		}
		total += *p.Value.Value
	}
	// D8 was received on Monday 28 September, inside the first week.
	if total != 8 {
		t.Errorf("dossiers received by week: got %v in all, want 8", total)
	}

	// A quarter and a year are their months summed, numerators and
	// denominators apart.
	year := Range{time.Date(2026, 1, 1, 0, 0, 0, 0, hcm), time.Date(2027, 1, 1, 0, 0, 0, 0, hcm)}
	months, err := f.e.Series(ctx, SeriesQuery{KPI: "on_time_rate", Area: "79", Range: year, Step: Month})
	if err != nil {
		t.Fatal(err)
	}
	for step, n := range map[Step]int{Quarter: 4, Year: 1} {
		long, err := f.e.Series(ctx, SeriesQuery{KPI: "on_time_rate", Area: "79", Range: year, Step: step})
		if err != nil {
			t.Fatalf("series by %s: %v", step, err)
		}
		if len(long.Points) != n {
			t.Fatalf("series by %s: got %d points, want %d", step, len(long.Points), n)
		}
		for _, p := range long.Points {
			var num, den float64
			for _, m := range months.Points {
				if !m.T.Before(p.T) && m.T.Before(rollup.Next(p.T, step)) {
					num, den = num+*m.Numerator, den+*m.Denominator
				}
			}
			if *p.Numerator != num || *p.Denominator != den {
				t.Errorf("%s from %s: got %v/%v, want its months' %v/%v", step, p.T.Format("2006-01-02"), *p.Numerator, *p.Denominator, num, den)
			}
		}
	}
	if q3 := time.Date(2026, 7, 1, 0, 0, 0, 0, hcm); rollup.Floor(time.Date(2026, 9, 30, 23, 0, 0, 0, hcm), Quarter, hcm) != q3 {
		t.Errorf("the quarter of 30 September starts %s, want %s", rollup.Floor(time.Date(2026, 9, 30, 23, 0, 0, 0, hcm), Quarter, hcm), q3)
	}

	rank, err := f.e.Ranking(ctx, RankingQuery{KPI: "on_time_rate", Parent: "79", Range: october(), Compare: "previous"})
	if err != nil {
		t.Fatal(err)
	}
	if rank.Level != "commune" || rank.Total != len(f.e.h.Select("commune", "79")) {
		t.Fatalf("got level %s with %d units, want every commune of 79", rank.Level, rank.Total)
	}
	first, second, third := rank.Items[0], rank.Items[1], rank.Items[2]
	if first.Area != saiGon || first.Rank != 1 || second.Area != benThanh || second.Rank != 2 {
		t.Fatalf("got %s then %s, want Sài Gòn (0.75) then Bến Thành (0)", first.Area, second.Area)
	}
	checkValue(t, "Sài Gòn", first.Value, [3]any{0.75, 3.0, 4.0})
	checkValue(t, "Sài Gòn in September", first.Previous.Value, [3]any{nil, 0.0, 0.0})
	if third.Value.Value != nil || third.Area > rank.Items[3].Area {
		t.Errorf("units without figures come last, by code: got %s (%v) before %s", third.Area, val(third.Value.Value), rank.Items[3].Area)
	}
	var rn, rd float64
	for _, it := range rank.Items {
		rn += *it.Numerator
		rd += *it.Denominator
	}
	if rn != 3 || rd != 5 {
		t.Errorf("sum of the communes' parts: got %v/%v, want the province's 3/5", rn, rd)
	}

	by, err := f.e.Ranking(ctx, RankingQuery{KPI: "on_time_rate", Parent: "79", Range: october(), By: "sector", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(by.Items[0].Breakdown)
	// Sài Gòn: land D1, D2 on time; civil D3 late, D8 on time.
	if want := `[{"key":"civil","value":0.5,"numerator":1,"denominator":2},{"key":"land","value":1,"numerator":2,"denominator":2}]`; string(b) != want {
		t.Errorf("breakdown by sector:\n got %s\nwant %s", b, want)
	}
	if _, err := f.e.Ranking(ctx, RankingQuery{KPI: "on_time_rate", Parent: "79", Range: october(), By: "type"}); err == nil {
		t.Errorf("a dimension the indicator does not offer: got no error")
	}
}

func TestScoreboardScoresAndRanksProvinces(t *testing.T) {
	f := newFixture(t)
	p, err := ParsePeriod("2026-10", time.Now(), hcm)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := f.e.Scoreboard(context.Background(), "79", p)
	if err != nil {
		t.Fatal(err)
	}
	// progress 0.625/0.95 × 20 = 13.16; digitization 2.86 + 1.2 + 1.71;
	// online 10.71 + 10; satisfaction 3 + 3 + 2.4.
	if sb.Total.Points != 48.04 || sb.Total.SupportedMaxPoints != 82 || sb.Total.MaxPoints != 100 {
		t.Errorf("total: got %+v, want 48.04 of 82 supported, 100 in all", sb.Total)
	}
	got := map[string]float64{}
	unsupported := 0
	for _, g := range sb.Groups {
		got[g.ID] = g.Points
		for _, i := range g.Indicators {
			if !i.Supported {
				unsupported++
				if i.Points != nil || i.Reason == "" {
					t.Errorf("%s: an unsupported item must carry a reason and no points", i.ID)
				}
			}
		}
	}
	want := map[string]float64{"publicity": 0, "progress": 13.16, "digitization": 5.77, "online": 20.71, "satisfaction": 8.4}
	for g, w := range want {
		if got[g] != w {
			t.Errorf("group %s: got %v points, want %v", g, got[g], w)
		}
	}
	if unsupported != 2 {
		t.Errorf("got %d unsupported items, want 2", unsupported)
	}
	if sb.Rank.Position != 1 || sb.Rank.Of != 34 || sb.Siblings[1].Area != "01" || sb.Siblings[1].Points != 38 {
		// Hà Nội: on time 20, online 12, satisfaction with procedures 6.
		t.Errorf("rank: got %+v, second %+v; want 79 first of 34, Hà Nội second with 38", sb.Rank, sb.Siblings[1])
	}
}

func TestClosedPeriodKeepsItsFiguresWhileLiveOnesMove(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p, _ := ParsePeriod("2026-10", time.Now(), hcm)
	c, err := f.e.Close(ctx, p, "analyst-lan", "official October report", false)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClosedBy != "analyst-lan" || c.Figures == 0 {
		t.Errorf("close: got %+v", c)
	}
	if _, err := f.e.Close(ctx, p, "someone", "", false); err == nil {
		t.Errorf("closing twice: got no error")
	} else if _, ok := err.(*ConflictError); !ok {
		t.Errorf("closing twice: got %v, want a conflict", err)
	}
	nov, _ := ParsePeriod("2026-12", time.Now(), hcm)
	if _, err := f.e.Close(ctx, nov, "x", "", true); err == nil {
		t.Errorf("closing a period not yet ended: got no error")
	}
	// A late correction: D4 had waited four days for the citizen's
	// documents, which makes it on time.
	f.write(t,
		ev{"D4", benThanh, "supplement_requested", oct(6, 8), oct(8, 17), "online", nil},
		ev{"D4", benThanh, "processing", oct(10, 8), oct(8, 17), "online", nil},
	)
	figs, err := f.e.Figures(ctx, "2026-10", "79", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, it := range figs.Items {
		if it.Area == "79" && it.KPI == "on_time_rate" {
			found = true
			checkValue(t, "closed", it.Closed, [3]any{0.6, 3.0, 5.0})
			checkValue(t, "live", it.Live, [3]any{0.8, 4.0, 5.0})
			if d := val(it.Drift.(*float64)); d != 0.2 {
				t.Errorf("drift: got %v, want 0.2", d)
			}
		}
	}
	if !found {
		t.Fatalf("no on_time_rate of 79 among %d items", len(figs.Items))
	}
	if figs.ClosedBy != "analyst-lan" || figs.Note != "official October report" {
		t.Errorf("who closed it: got %q, %q", figs.ClosedBy, figs.Note)
	}
	if _, err := f.e.Figures(ctx, "2026-09", "79", time.Time{}); err == nil {
		t.Errorf("figures of a period never closed: got no error")
	}
}

func TestRangesAndPeriods(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 30, 0, 0, hcm)
	f := func(from, to string, s Step, wantFrom, wantTo string) {
		t.Helper()
		r, err := ParseRange(from, to, s, now, hcm)
		if err != nil {
			t.Fatalf("%s..%s by %s: %v", from, to, s, err)
		}
		if got := r.From.Format(time.RFC3339) + " " + r.To.Format(time.RFC3339); got != wantFrom+" "+wantTo {
			t.Errorf("%s..%s by %s: got %s, want %s %s", from, to, s, got, wantFrom, wantTo)
		}
	}
	f("2026-10-01", "2026-10-31", Day, "2026-10-01T00:00:00+07:00", "2026-11-01T00:00:00+07:00")
	f("2026-10-07", "2026-10-08", Week, "2026-10-05T00:00:00+07:00", "2026-10-12T00:00:00+07:00")
	f("2026-10-15", "2026-11-02", Month, "2026-10-01T00:00:00+07:00", "2026-12-01T00:00:00+07:00")
	f("2026-10-01T10:30:00+07:00", "2026-10-01T12:00:00+07:00", Hour, "2026-10-01T10:00:00+07:00", "2026-10-01T12:00:00+07:00")
	f("", "", Hour, "2026-11-21T09:00:00+07:00", "2026-11-22T10:00:00+07:00")
	for _, c := range []struct {
		from, to string
		s        Step
	}{{"2026-01-01", "2026-03-01", Hour}, {"2020-01-01", "2026-01-01", Day}, {"2026-10-02", "2026-10-01", Day}, {"yesterday", "", Day}} {
		if _, err := ParseRange(c.from, c.to, c.s, now, hcm); err == nil {
			t.Errorf("%s..%s by %s: got no error", c.from, c.to, c.s)
		}
	}
	for in, want := range map[string]string{"2026": "2026-01-01 2027-01-01", "2026-H2": "2026-07-01 2027-01-01",
		"2026-Q3": "2026-07-01 2026-10-01", "2026-02": "2026-02-01 2026-03-01", "": "2026-10-01 2027-01-01"} {
		p, err := ParsePeriod(in, now, hcm)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := p.From.Format("2006-01-02") + " " + p.To.Format("2006-01-02"); got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"2026-Q5", "2026-13", "26", "2026-W01"} {
		if _, err := ParsePeriod(bad, now, hcm); err == nil {
			t.Errorf("%q: got no error", bad)
		}
	}
}

func TestQueriesPastTheLimitAnswerWithTheSettingToChange(t *testing.T) {
	s := testenv.Store(t)
	units, _ := geo.Builtin()
	h, _ := units.Hierarchy("vn-2025")
	e, err := New(Config{QueryTimeout: time.Second}, s, h, lease.NewLocal(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// A query that works longer than a second on any machine.
	err = e.query(context.Background(), "a slow query", "SELECT count() FROM numbers(100000000000) WHERE sleepEachRow(0) = 0 AND number % 7 = 3", nil,
		func(func(...any) error) error { return nil })
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a timeout", err)
	}
	if want := "the query took longer than 1s (IOC_QUERY_TIMEOUT); narrow the range or the area"; te.Error() != want {
		t.Errorf("got %q, want %q", te.Error(), want)
	}
}

// TestOpenDossiersOfARunningPeriodAreJudgedNow: in the middle of October,
// D5 (due on the 30th) is open and not yet late.
func TestOpenDossiersOfARunningPeriodAreJudgedNow(t *testing.T) {
	f := newFixture(t)
	f.e.now = func() time.Time { return time.Date(2026, 10, 25, 12, 30, 0, 0, hcm) }
	s, err := f.e.Series(context.Background(), SeriesQuery{KPI: "on_time_open_rate", Area: benThanh, Range: october(), Step: Month})
	if err != nil {
		t.Fatal(err)
	}
	// Resolved by now: D4, late. Open now: D5 and D6, neither late yet.
	checkValue(t, "Bến Thành on the 25th", s.Points[0].Value, [3]any{0.6667, 2.0, 3.0})
	r, err := f.e.Ranking(context.Background(), RankingQuery{KPI: "on_time_open_rate", Parent: "79", Range: october(), Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range r.Items {
		if it.Area == benThanh {
			checkValue(t, "Bến Thành ranked on the 25th", it.Value, [3]any{0.6667, 2.0, 3.0})
		}
	}
}

// TestClosingAnEmptyPeriodIsRefused: a month without a record would be
// frozen with every figure 0, which is more often data that never arrived
// than a quiet month; force closes it all the same, and the audit trail
// says so.
func TestClosingAnEmptyPeriodIsRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	aug, _ := ParsePeriod("2026-08", time.Now(), hcm)
	_, err := f.e.Close(ctx, aug, "analyst-lan", "", false)
	var lim *LimitError
	if !errors.As(err, &lim) {
		t.Fatalf("closing August, which has no records: got %v, want a refusal", err)
	}
	for _, says := range []string{"2026-08 has no records", "force=true"} {
		if !strings.Contains(err.Error(), says) {
			t.Errorf("refusal %q does not say %q", err, says)
		}
	}
	if ps, err := f.e.Periods(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("after the refusal: got %v, %v; want no period closed", ps, err)
	}
	c, err := f.e.Close(ctx, aug, "analyst-lan", "nothing filed in August", true)
	if err != nil {
		t.Fatalf("closing August with force: %v", err)
	}
	if c.Figures == 0 {
		t.Errorf("forced close froze no figures")
	}
	ps, err := f.e.Periods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].State != StateClosed || len(ps[0].Audit) != 1 || !ps[0].Audit[0].Forced {
		t.Errorf("periods: got %+v, want August closed by a forced close", ps)
	}
	// A month with records closes without force, and is not marked forced;
	// September has only D8's receipt, on the 28th.
	sep, _ := ParsePeriod("2026-09", time.Now(), hcm)
	if _, err := f.e.Close(ctx, sep, "analyst-lan", "", false); err != nil {
		t.Fatalf("closing September: %v", err)
	}
	if ps, _ := f.e.Periods(ctx); len(ps) != 2 || ps[0].Period != "2026-09" || ps[0].Audit[0].Forced {
		t.Errorf("periods: got %+v, want September first, not forced", ps)
	}
}

// TestReopenedPeriodClosesAgainWithNewFigures: reopening needs a reason and
// a closed period; afterwards the period has no official figures, a late
// correction moves its live figure, and a new close freezes the new value.
// The first close's figures stay readable, superseded, and the audit trail
// keeps every step in order.
func TestReopenedPeriodClosesAgainWithNewFigures(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	october, _ := ParsePeriod("2026-10", time.Now(), hcm)
	first, err := f.e.Close(ctx, october, "analyst-lan", "official October report", false)
	if err != nil {
		t.Fatal(err)
	}
	var inv *InvalidError
	if _, err := f.e.Reopen(ctx, october, "admin-ha", "  "); !errors.As(err, &inv) || !strings.Contains(err.Error(), "reason") {
		t.Errorf("reopening without a reason: got %v, want a refusal asking for one", err)
	}
	var conflict *ConflictError
	sep, _ := ParsePeriod("2026-09", time.Now(), hcm)
	if _, err := f.e.Reopen(ctx, sep, "admin-ha", "why not"); !errors.As(err, &conflict) || !strings.Contains(err.Error(), "never been closed") {
		t.Errorf("reopening a period never closed: got %v, want a conflict", err)
	}
	rec, err := f.e.Reopen(ctx, october, "admin-ha", "Bến Thành sent its document waits late")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != StateOpen || len(rec.Audit) != 2 || rec.Audit[1].Action != ActionReopen || rec.Audit[1].Figures != first.Figures {
		t.Errorf("reopen: got %+v, want the period open, the reopening withdrawing %d figures", rec, first.Figures)
	}
	if _, err := f.e.Reopen(ctx, october, "admin-ha", "again"); !errors.As(err, &conflict) || !strings.Contains(err.Error(), "admin-ha reopened it") {
		t.Errorf("reopening an open period: got %v, want a conflict naming who reopened it", err)
	}
	var nf *NotFoundError
	if _, err := f.e.Figures(ctx, "2026-10", "79", time.Time{}); !errors.As(err, &nf) || !strings.Contains(err.Error(), "reopened") {
		t.Errorf("official figures of a reopened period: got %v, want none, saying it was reopened", err)
	}
	// The correction: D4 had waited four days for the citizen's documents,
	// which makes it on time.
	f.write(t,
		ev{"D4", benThanh, "supplement_requested", oct(6, 8), oct(8, 17), "online", nil},
		ev{"D4", benThanh, "processing", oct(10, 8), oct(8, 17), "online", nil},
	)
	second, err := f.e.Close(ctx, october, "analyst-lan", "October, corrected", false)
	if err != nil {
		t.Fatal(err)
	}
	if !second.ClosedAt.After(first.ClosedAt) {
		t.Errorf("second close at %s, not after the first at %s", second.ClosedAt, first.ClosedAt)
	}
	onTime := func(figs ClosedFigures) Frozen {
		t.Helper()
		for _, it := range figs.Items {
			if it.Area == "79" && it.KPI == "on_time_rate" {
				return it
			}
		}
		t.Fatalf("no on_time_rate of 79 among %d items", len(figs.Items))
		return Frozen{}
	}
	now, err := f.e.Figures(ctx, "2026-10", "79", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if it := onTime(now); now.Superseded || now.Note != "October, corrected" {
		t.Errorf("figures in force: superseded %v, note %q", now.Superseded, now.Note)
	} else {
		checkValue(t, "closed again", it.Closed, [3]any{0.8, 4.0, 5.0})
		checkValue(t, "live", it.Live, [3]any{0.8, 4.0, 5.0})
	}
	then, err := f.e.Figures(ctx, "2026-10", "79", first.ClosedAt)
	if err != nil {
		t.Fatal(err)
	}
	if it := onTime(then); !then.Superseded || then.ClosedBy != "analyst-lan" || then.Note != "official October report" {
		t.Errorf("the first close: superseded %v, by %q, note %q", then.Superseded, then.ClosedBy, then.Note)
	} else {
		checkValue(t, "first close", it.Closed, [3]any{0.6, 3.0, 5.0})
	}
	if _, err := f.e.Figures(ctx, "2026-10", "79", first.ClosedAt.Add(time.Minute)); !errors.As(err, &nf) {
		t.Errorf("a close that never was: got %v, want not found", err)
	}
	ps, err := f.e.Periods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 {
		t.Fatalf("periods: got %d, want October alone", len(ps))
	}
	var trail []string
	for i, a := range ps[0].Audit {
		trail = append(trail, a.Action+" by "+a.By+": "+a.Note)
		if i > 0 && !a.At.After(ps[0].Audit[i-1].At) {
			t.Errorf("entry %d at %s, not after the one before at %s", i, a.At, ps[0].Audit[i-1].At)
		}
	}
	want := "close by analyst-lan: official October report | reopen by admin-ha: Bến Thành sent its document waits late | close by analyst-lan: October, corrected"
	if got := strings.Join(trail, " | "); got != want {
		t.Errorf("audit trail:\n got %s\nwant %s", got, want)
	}
	if p := ps[0]; p.State != StateClosed || !p.ClosedAt.Equal(second.ClosedAt) || p.Figures != second.Figures {
		t.Errorf("October: got %+v, want closed by the second close", p.Closed)
	}
}

// TestClosesMadeBeforeTheAuditTrailAreKept: a period closed into the
// tables of migration 0006 is read through the audit trail once 0008 has
// run, figures included.
func TestClosesMadeBeforeTheAuditTrailAreKept(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)
	rows, err := f.s.Conn().PrepareBatch(ctx, "INSERT INTO "+f.s.Database()+".closed_figures (hierarchy, period, area_code, kpi, value, numerator, denominator, closed_at)")
	if err != nil {
		t.Fatal(err)
	}
	v, num, den := 0.6, 3.0, 5.0
	for _, area := range []string{"79", saiGon} {
		if err := rows.Append("vn-2025", "2026-10", area, "on_time_rate", &v, &num, &den, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Send(); err != nil {
		t.Fatal(err)
	}
	period, err := f.s.Conn().PrepareBatch(ctx, "INSERT INTO "+f.s.Database()+".closed_periods (hierarchy, period, from_t, to_t, closed_by, closed_at, note)")
	if err != nil {
		t.Fatal(err)
	}
	october, _ := ParsePeriod("2026-10", time.Now(), hcm)
	if err := period.Append("vn-2025", "2026-10", october.From.UTC(), october.To.UTC(), "admin", at, "before the audit trail"); err != nil {
		t.Fatal(err)
	}
	if err := period.Send(); err != nil {
		t.Fatal(err)
	}
	ms, err := chstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version != 8 {
			continue
		}
		// Twice: a migration interrupted and run again copies nothing twice.
		for range 2 {
			for _, stmt := range m.Statements {
				if err := f.s.ApplyStatement(ctx, stmt); err != nil {
					t.Fatalf("migration 0008: %v", err)
				}
			}
		}
	}
	ps, err := f.e.Periods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || len(ps[0].Audit) != 1 || ps[0].State != StateClosed || ps[0].ClosedBy != "admin" || ps[0].Figures != 2 ||
		!ps[0].ClosedAt.Equal(at) || ps[0].Note != "before the audit trail" {
		t.Fatalf("periods: got %+v, want October closed by admin with 2 figures", ps)
	}
	figs, err := f.e.Figures(ctx, "2026-10", "79", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(figs.Items) != 2 {
		t.Fatalf("figures: got %d items, want 79 and Sài Gòn's on-time rate", len(figs.Items))
	}
	checkValue(t, "79 as closed", figs.Items[0].Closed, [3]any{0.6, 3.0, 5.0})
	// It can be reopened like any other close.
	if _, err := f.e.Reopen(ctx, october, "admin-ha", "checking the migration"); err != nil {
		t.Fatal(err)
	}
}
