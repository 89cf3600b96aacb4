package aggregate

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/ingest/ingesttest"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/bus/bustest"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var hcm = mustLoc("Asia/Ho_Chi_Minh")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

func TestWindowStart(t *testing.T) {
	now := time.Date(2026, 11, 22, 2, 15, 42, 0, time.UTC) // 09:15:42 in Ho Chi Minh City
	f := func(w Window, want time.Time) {
		t.Helper()
		if got := w.Start(now, hcm); !got.Equal(want) {
			t.Errorf("%s: got %v, want %v", w, got, want)
		}
	}
	f(Today, time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC))
	f(Last24, time.Date(2026, 11, 21, 2, 15, 0, 0, time.UTC))
	f(Last7, time.Date(2026, 11, 15, 2, 15, 0, 0, time.UTC))
	f(Last30, time.Date(2026, 10, 23, 2, 15, 0, 0, time.UTC))
	// Just after local midnight, today is minutes old.
	if got, want := Today.Start(time.Date(2026, 11, 22, 17, 1, 0, 0, time.UTC), hcm), time.Date(2026, 11, 22, 17, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("today after midnight: got %v, want %v", got, want)
	}
}

func TestParseWindow(t *testing.T) {
	for _, s := range []string{"", "today", "24h", "7d", "30d"} {
		if _, err := ParseWindow(s); err != nil {
			t.Errorf("ParseWindow(%q): %v", s, err)
		}
	}
	if _, err := ParseWindow("1y"); err == nil || err.Error() != `unknown window "1y": use today, 24h, 7d or 30d` {
		t.Errorf("ParseWindow(1y): got %v", err)
	}
}

func TestKPIArithmetic(t *testing.T) {
	k := KPIs(Counts{Received: 1234, Online: 1216, Resolved: 1100, OnTime: 1067, Overdue: 12})
	rate := func(id string) any {
		if p := k[id].(*float64); p != nil {
			return *p
		}
		return nil
	}
	if got, want := rate("online_rate"), 0.9854; got != want {
		t.Errorf("online_rate: got %v, want %v", got, want)
	}
	if got, want := rate("on_time_rate"), 0.97; got != want {
		t.Errorf("on_time_rate: got %v, want %v", got, want)
	}
	if got := k["dossiers_overdue"]; got != uint64(12) {
		t.Errorf("dossiers_overdue: got %v, want 12", got)
	}
	empty := KPIs(Counts{})
	b, _ := json.Marshal(empty)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if m["online_rate"] != nil || m["on_time_rate"] != nil {
		t.Errorf("rates over no dossiers: got %s, want null", b)
	}
	live := 0
	for _, d := range Catalog() {
		if d.Live {
			live++
		}
	}
	if live != len(k) {
		t.Errorf("catalog has %d live indicators, snapshot %d", live, len(k))
	}
	// Summing counts then dividing is not the mean of rates.
	var sum Counts
	sum.Add(Counts{Received: 1, Online: 1})
	sum.Add(Counts{Received: 99, Online: 49})
	if got, want := *KPIs(sum)["online_rate"].(*float64), 0.5; got != want {
		t.Errorf("rolled-up online_rate: got %v, want %v (not the 0.7475 mean of rates)", got, want)
	}
}

type row struct {
	id, dossier, area, channel, status string
	at, due                            time.Time
}

// insert stores rows through the dossier writer, which derives what each
// event changes in its dossier's figures.
func insert(t *testing.T, s *chstore.Store, rows ...row) {
	t.Helper()
	insertTo(t, s, nil, rows...)
}

// insertTo stores rows like insert, through a writer that tells n what the
// batch added to the rollups before it returns.
func insertTo(t *testing.T, s *chstore.Store, n ingest.Notifier, rows ...row) {
	t.Helper()
	ds := make([]ingest.Dossier, len(rows))
	for i, r := range rows {
		ds[i] = ingest.Dossier{EventID: r.id, DossierID: r.dossier, Hierarchy: "vn-2025", AreaCode: r.area,
			Channel: r.channel, Status: r.status, OccurredAt: r.at}
		if !r.due.IsZero() {
			due := r.due
			ds[i].DueAt = &due
		}
	}
	ingesttest.DossiersTo(t, s, n, ds)
}

func newTestAggregator(t *testing.T, now time.Time) (*Aggregator, *chstore.Store, *bustest.Capture[Snapshot]) {
	t.Helper()
	s := testenv.Store(t)
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	pub := &bustest.Capture[Snapshot]{}
	a, err := New(Config{Location: hcm}, s, reg, pub, lease.NewLocal(), nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return now }
	return a, s, pub
}

func TestExactFiguresAtCommuneAndProvince(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC) // 10:30 local
	a, s, _ := newTestAggregator(t, now)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	insert(t, s,
		// Sài Gòn (26740): 3 received today (2 online), one yesterday evening.
		row{"e1", "d1", "26740", "online", "received", at(-2 * time.Hour), at(48 * time.Hour)},
		row{"e2", "d2", "26740", "online", "received", at(-90 * time.Minute), at(-time.Hour)}, // open and overdue
		row{"e3", "d3", "26740", "in_person", "received", at(-10 * time.Minute), at(time.Hour)},
		row{"e4", "d4", "26740", "online", "received", at(-12 * time.Hour), at(-11 * time.Hour)},
		// d4 resolved late today, d1 resolved on time.
		row{"e5", "d4", "26740", "online", "resolved", at(-30 * time.Minute), at(-11 * time.Hour)},
		row{"e6", "d1", "26740", "online", "resolved", at(-5 * time.Minute), at(48 * time.Hour)},
		// Tân Định (26734 is gone in 2025; use Bến Thành 26743): 1 received online, processing, past due.
		row{"e7", "d7", "26743", "online", "received", at(-3 * time.Hour), at(-2 * time.Hour)},
		row{"e8", "d7", "26743", "online", "processing", at(-150 * time.Minute), at(-2 * time.Hour)},
		// Waiting for the citizen: not overdue.
		row{"e9", "d9", "26743", "online", "received", at(-3 * time.Hour), at(-2 * time.Hour)},
		row{"e10", "d9", "26743", "online", "supplement_requested", at(-150 * time.Minute), at(-2 * time.Hour)},
		// A province-level desk.
		row{"e11", "d11", "79", "postal", "received", at(-time.Hour), at(time.Hour)},
		// Another province: must not leak into 79.
		row{"e12", "d12", "00004", "online", "received", at(-time.Hour), at(-30 * time.Minute)},
		// 8 days ago: only in 30d.
		row{"e13", "d13", "26740", "online", "received", at(-8 * 24 * time.Hour), at(-7 * 24 * time.Hour)},
		row{"e14", "d13", "26740", "online", "returned", at(-7 * 24 * time.Hour), time.Time{}},
	)
	f := func(code string, w Window, want map[string]any) {
		t.Helper()
		snap, err := a.Snapshot(ctx, "vn-2025", code, w)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := want["records_approximate"]; !ok {
			want["records_approximate"] = 0 // nothing here came through a crosswalk
		}
		// Only the dossier figures are under test here.
		got := map[string]any{}
		for k := range want {
			got[k] = snap.KPIs[k]
		}
		b, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(b) != string(wb) {
			t.Errorf("%s %s:\n got %s\nwant %s", code, w, b, wb)
		}
	}
	f("26740", Today, map[string]any{
		"dossiers_received": 3, "dossiers_online": 2, "online_rate": 0.6667,
		"dossiers_resolved": 2, "dossiers_on_time": 1, "on_time_rate": 0.5, "dossiers_overdue": 1,
	})
	f("26740", Last24, map[string]any{
		"dossiers_received": 4, "dossiers_online": 3, "online_rate": 0.75,
		"dossiers_resolved": 2, "dossiers_on_time": 1, "on_time_rate": 0.5, "dossiers_overdue": 1,
	})
	// d13 went straight to returned, at its deadline: a returned result
	// resolves a dossier that never reported resolved.
	f("26740", Last30, map[string]any{
		"dossiers_received": 5, "dossiers_online": 4, "online_rate": 0.8,
		"dossiers_resolved": 3, "dossiers_on_time": 2, "on_time_rate": 0.6667, "dossiers_overdue": 1,
	})
	f("26743", Today, map[string]any{
		"dossiers_received": 2, "dossiers_online": 2, "online_rate": 1,
		"dossiers_resolved": 0, "dossiers_on_time": 0, "on_time_rate": nil, "dossiers_overdue": 1,
	})
	// The province sums its communes' numerators and denominators, plus its own desk.
	f("79", Today, map[string]any{
		"dossiers_received": 6, "dossiers_online": 4, "online_rate": 0.6667,
		"dossiers_resolved": 2, "dossiers_on_time": 1, "on_time_rate": 0.5, "dossiers_overdue": 2,
	})
	f("01", Today, map[string]any{
		"dossiers_received": 1, "dossiers_online": 1, "online_rate": 1,
		"dossiers_resolved": 0, "dossiers_on_time": 0, "on_time_rate": nil, "dossiers_overdue": 1,
	})
	// A unit with nothing has zeros and null rates.
	f("26758", Last7, map[string]any{
		"dossiers_received": 0, "dossiers_online": 0, "online_rate": nil,
		"dossiers_resolved": 0, "dossiers_on_time": 0, "on_time_rate": nil, "dossiers_overdue": 0,
	})

	kids, err := a.ChildSnapshots(ctx, "vn-2025", "79", Today)
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 168 {
		t.Fatalf("children of 79: got %d, want 168", len(kids))
	}
	for _, k := range kids {
		if k.Area == "26740" && k.KPIs["dossiers_received"] != uint64(3) {
			t.Errorf("child 26740: got %v received, want 3", k.KPIs["dossiers_received"])
		}
		if k.Level != "commune" || k.Hierarchy != "vn-2025" || k.Window != Today {
			t.Errorf("child %s: got level %s hierarchy %s window %s", k.Area, k.Level, k.Hierarchy, k.Window)
		}
	}
	snap, _ := a.Snapshot(ctx, "vn-2025", "79", Today)
	if got, want := snap.AsOf.Format(time.RFC3339), "2026-11-22T10:30:00+07:00"; got != want {
		t.Errorf("as_of: got %s, want %s", got, want)
	}
	if snap.Name != "Hồ Chí Minh" || snap.Level != "province" {
		t.Errorf("province snapshot: got name %q level %q", snap.Name, snap.Level)
	}
	if _, err := a.Snapshot(ctx, "vn-2025", "99999", Today); err == nil {
		t.Error("unknown area: got no error")
	}
}

func TestRecomputePublishesChangedUnitsAndAncestors(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	a, s, pub := newTestAggregator(t, now)
	term := lead(t, a)
	// The first refresh of a term publishes every topic.
	if err := a.refresh(ctx, term, "check"); err != nil {
		t.Fatal(err)
	}
	topics := 0
	for _, c := range a.allCodes() {
		topics += len(Windows)
		if len(a.h.ChildCodes(c)) > 0 {
			topics += len(Windows) // and its map
		}
	}
	if got := len(pub.Take()); got != topics {
		t.Errorf("first refresh published %d topics, want all %d", got, topics)
	}
	insertTo(t, s, a, row{"e1", "d1", "26740", "online", "received", now.Add(-time.Minute), now.Add(72 * time.Hour)})
	if err := a.publishDirty(ctx, term); err != nil {
		t.Fatal(err)
	}
	got := pub.Take()
	for _, topic := range []string{"kpi/26740", "kpi/26740/24h", "kpi/26740/7d", "kpi/26740/30d", "kpi/79", "kpi/79/24h", "kpi/79/7d", "kpi/79/30d"} {
		if len(got[topic]) != 1 || got[topic][0].KPIs["dossiers_received"] != float64(1) {
			t.Errorf("%s: got %v, want one snapshot with 1 received", topic, got[topic])
		}
	}
	// The province's map carries the commune's new figures.
	for _, topic := range []string{"map/79", "map/79/24h", "map/79/7d", "map/79/30d"} {
		if len(got[topic]) != 1 {
			t.Errorf("%s: got %d messages, want 1", topic, len(got[topic]))
		}
	}
	if len(got) != 12 {
		t.Errorf("published %d topics, want 12 (the commune and its province, and the province's map, 4 windows each)", len(got))
	}
	// Nothing changed: nothing published.
	a.MarkDirty("vn-2025", []string{"26740"})
	if err := a.publishDirty(ctx, term); err != nil {
		t.Fatal(err)
	}
	if got := pub.Take(); len(got) != 0 {
		t.Errorf("unchanged figures republished: %v", got)
	}
	// Time passing moves a window without new records: a refresh publishes it.
	a.now = func() time.Time { return now.Add(24 * time.Hour) }
	if err := a.refresh(ctx, term, "check"); err != nil {
		t.Fatal(err)
	}
	got = pub.Take()
	if s := got["kpi/26740/24h"]; len(s) != 1 || s[0].KPIs["dossiers_received"] != float64(0) {
		t.Errorf("24h window a day later: got %v, want 0 received", s)
	}
	if _, ok := got["kpi/26740/7d"]; ok {
		t.Error("7d window republished although its figures did not change")
	}
}

// lead makes a the node holding the lease, running alone, as Run does on
// taking it (without its first check), and returns its term.
func lead(t *testing.T, a *Aggregator) *term {
	t.Helper()
	l, err := lease.NewLocal().Acquire(context.Background(), "aggregate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Release)
	a.mu.Lock()
	a.resetLive()
	a.leading.Store(true)
	a.mu.Unlock()
	return &term{lease: l, versions: bus.NewVersions(l.Token())}
}

// TestEveryHistoryIndicatorNamesItsSources: reads over a range sum the
// sources an indicator names in its typed Sources, whatever its Source text
// says; so every indicator with history names at least one, every
// breakdown it offers is one of its sources', and the text stays out of it
// (changing it changes nothing read).
func TestEveryHistoryIndicatorNamesItsSources(t *testing.T) {
	for _, d := range Catalog() {
		if d.History && len(d.Sources) == 0 {
			t.Errorf("%s has history but names no source to read it from", d.ID)
		}
		for _, by := range d.Breakdowns {
			offered := false
			for _, s := range d.Sources {
				offered = offered || slices.Contains(s.Breakdowns(), by)
			}
			if !offered {
				t.Errorf("%s breaks down by %s, which none of its sources %v has", d.ID, by, d.Sources)
			}
		}
		b, _ := json.Marshal(d)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if m["source"] != d.Source || len(m) == 0 {
			t.Errorf("%s: the catalog's JSON says source %v, want %q", d.ID, m["source"], d.Source)
		}
		if _, ok := m["sources"]; ok {
			t.Errorf("%s: the catalog's JSON carries the typed sources", d.ID)
		}
	}
	flow := 0
	for _, d := range Catalog() {
		if slices.Contains(d.Sources, SourceDossierFlow) {
			flow++
		}
	}
	if flow == 0 {
		t.Error("no indicator reads the dossier flow")
	}
}

// TestCountsCarryEveryMeasure: the figures of a range carry every dossier
// measure of dossier.Table in Flow, balances left out, and the fields the
// catalog names are the same figures.
func TestCountsCarryEveryMeasure(t *testing.T) {
	var m dossier.Measures
	for i := range m {
		m[i] = int64(i + 1)
	}
	m[dossier.Reused] = -3 // a damaged table does not wrap around
	c := FlowCounts(m)
	for i, want := range m {
		if dossier.Table[i].Balance || want < 0 {
			want = 0
		}
		if c.Flow[i] != want {
			t.Errorf("%s: %d, want %d", dossier.Table[i].Column, c.Flow[i], want)
		}
	}
	named := map[dossier.Index]uint64{dossier.Received: c.Received, dossier.ReceivedOnline: c.Online, dossier.Digitized: c.Digitized,
		dossier.Reused: c.Reused, dossier.FeeBearing: c.FeeBearing, dossier.PaidOnline: c.PaidOnline, dossier.Resolved: c.Resolved,
		dossier.OnTime: c.OnTime, dossier.Timed: c.Timed, dossier.ResolutionSeconds: c.ResolutionSeconds, dossier.EResult: c.EResult,
		dossier.Approximate: c.Approximate}
	for i, v := range named {
		if int64(v) != c.Flow[i] {
			t.Errorf("%s: the named field says %d, Flow %d", dossier.Table[i].Column, v, c.Flow[i])
		}
	}
	var sum Counts
	sum.Add(c)
	sum.Add(c)
	if sum.Flow[dossier.Received] != 2*c.Flow[dossier.Received] || sum.Received != 2*c.Received {
		t.Errorf("adding figures: received %d (flow %d), want %d", sum.Received, sum.Flow[dossier.Received], 2*c.Received)
	}
}
