package aggregate

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/ingest/ingesttest"
)

// step is one event of a dossier in overdueCases.
type step struct {
	status string
	at     time.Time
	due    time.Time // zero: the event reports no due date
}

// check is whether the dossier is overdue at a moment. No moment falls in
// the same minute as one of the dossier's turns, so that the minute the live
// figure is kept to cannot blur it.
type check struct {
	at   time.Time
	want bool
}

// lateDay is a local time on a day counted from Monday 2 March 2026.
func lateDay(day, hour, minute int) time.Time {
	return time.Date(2026, 3, 2+day, hour, minute, 0, 0, hcm).UTC()
}

// lateDue is the deadline of most cases: day 3, 17:30 local. Half past,
// so that a dossier turns late in the middle of an hour, and a moment
// earlier in that hour must not see it.
var lateDue = lateDay(3, 17, 30)

// overdueCases is the one table of what "overdue" means: each history with
// whether the dossier is open past its deadline at given moments, under the
// rules of dossier.Derive (time waiting for the citizen's documents does
// not count; a second request for documents makes it late at once).
// TestOverdueCasesAgreeWithTheHistory checks it against the derivation,
// TestLiveOverdueFollowsTheHistoryRules against the live snapshot.
var overdueCases = []struct {
	name   string
	steps  []step
	checks []check
}{
	{"received with a due date and still open", []step{
		{"received", lateDay(0, 8, 0), lateDue},
	}, []check{
		{lateDay(2, 10, 0), false},
		{lateDay(3, 17, 10), false}, // the same hour as the deadline, before it
		{lateDay(3, 17, 50), true},
		{lateDay(4, 9, 0), true},
		{lateDay(40, 9, 0), true}, // a month on
	}},
	{"received without a due date", []step{
		{"received", lateDay(0, 8, 0), time.Time{}},
	}, []check{
		{lateDay(40, 9, 0), false},
	}},
	{"paused for documents across the due date, then resumed", []step{
		// 1 day 9½ hours of the time allowed are left when the wait begins;
		// the wait lasts three days, so the deadline moves to day 6, 17:30.
		{"received", lateDay(0, 8, 0), lateDue},
		{"supplement_requested", lateDay(2, 8, 0), lateDue},
		{"processing", lateDay(5, 8, 0), lateDue},
	}, []check{
		{lateDay(4, 9, 0), false},  // waiting, the first deadline passed
		{lateDay(5, 12, 0), false}, // resumed, time is left
		{lateDay(6, 17, 10), false},
		{lateDay(6, 17, 50), true},
		{lateDay(8, 9, 0), true},
	}},
	{"paused for documents and still waiting", []step{
		{"received", lateDay(0, 8, 0), lateDue},
		{"supplement_requested", lateDay(2, 8, 0), lateDue},
	}, []check{
		{lateDay(10, 9, 0), false},
	}},
	{"paused after the due date had passed", []step{
		// The wait began too late to save it.
		{"received", lateDay(0, 8, 0), lateDue},
		{"supplement_requested", lateDay(4, 8, 0), lateDue},
	}, []check{
		{lateDay(3, 18, 0), true},
		{lateDay(5, 9, 0), true},
	}},
	{"asked twice for documents", []step{
		{"received", lateDay(0, 8, 0), lateDue},
		{"supplement_requested", lateDay(0, 10, 0), lateDue},
		{"processing", lateDay(0, 12, 0), lateDue},
		{"supplement_requested", lateDay(1, 8, 0), lateDue},
		{"processing", lateDay(1, 12, 0), lateDue},
	}, []check{
		{lateDay(0, 11, 0), false}, // the first wait
		{lateDay(1, 9, 0), true},   // the second request: late at once, while waiting
		{lateDay(1, 13, 0), true},  // and after, before the deadline
	}},
	{"resolved late", []step{
		{"received", lateDay(0, 8, 0), lateDue},
		{"resolved", lateDay(4, 8, 0), lateDue},
	}, []check{
		{lateDay(3, 18, 0), true},
		{lateDay(4, 9, 0), false},
	}},
	{"resolved on time", []step{
		{"received", lateDay(0, 8, 0), lateDue},
		{"resolved", lateDay(2, 8, 0), lateDue},
	}, []check{
		{lateDay(1, 9, 0), false},
		{lateDay(3, 18, 0), false},
	}},
	{"withdrawn while late", []step{
		{"received", lateDay(0, 8, 0), lateDue},
		{"withdrawn", lateDay(5, 8, 0), lateDue},
	}, []check{
		{lateDay(4, 9, 0), true},
		{lateDay(5, 9, 0), false},
	}},
	{"a supplement request arriving after resolution", []step{
		{"received", lateDay(0, 8, 0), lateDue},
		{"resolved", lateDay(2, 8, 0), lateDue},
		{"supplement_requested", lateDay(4, 8, 0), lateDue},
	}, []check{
		{lateDay(5, 9, 0), false},
	}},
	{"a processing event after resolution", []step{
		// A desk system that reports a step after the result: the dossier
		// closed at its resolution.
		{"received", lateDay(0, 8, 0), lateDue},
		{"resolved", lateDay(2, 8, 0), lateDue},
		{"processing", lateDay(4, 8, 0), lateDue},
	}, []check{
		{lateDay(5, 9, 0), false},
	}},
	{"deadline extended", []step{
		{"received", lateDay(0, 8, 0), lateDue},
		{"processing", lateDay(2, 8, 0), lateDay(8, 17, 30)},
	}, []check{
		{lateDay(5, 9, 0), false},
		{lateDay(9, 9, 0), true},
	}},
}

// overdueEvents are a case's events as stored, for the dossier with id in
// area.
func overdueEvents(id, area string, steps []step) []ingest.Dossier {
	out := make([]ingest.Dossier, len(steps))
	for i, s := range steps {
		out[i] = ingest.Dossier{EventID: fmt.Sprintf("%s-%d", id, i), DossierID: id, Hierarchy: "vn-2025", AreaCode: area,
			Channel: "online", Status: s.status, OccurredAt: s.at, Sector: "civil", ProcedureCode: "1.001"}
		if !s.due.IsZero() {
			due := s.due
			out[i].DueAt = &due
		}
	}
	return out
}

// derivedLate is the late-open balance the history derives for steps at
// a moment: the sum of the contributions stamped before it.
func derivedLate(steps []step, at time.Time) int64 {
	var events []dossier.Event
	for _, d := range overdueEvents("d", "26740", steps) {
		events = append(events, dossier.Event{EventID: d.EventID, Area: d.AreaCode, Status: d.Status,
			OccurredAt: d.OccurredAt, DueAt: d.DueAt, Channel: d.Channel, Sector: d.Sector, Procedure: d.ProcedureCode})
	}
	var late int64
	for _, r := range dossier.Derive(events) {
		if r.T.Before(at) {
			late += r.Measures[dossier.LateOpen]
		}
	}
	return late
}

// TestOverdueCasesAgreeWithTheHistory: each case's expectation is what the
// history derives: a dossier is overdue at a moment when its late-open
// contributions stamped before it sum to one.
func TestOverdueCasesAgreeWithTheHistory(t *testing.T) {
	for _, c := range overdueCases {
		for _, ch := range c.checks {
			late := derivedLate(c.steps, ch.at)
			if late != 0 && late != 1 {
				t.Errorf("%s at %s: late-open balance %d, want 0 or 1", c.name, ch.at.In(hcm).Format("Jan 2 15:04"), late)
			}
			if got := late == 1; got != ch.want {
				t.Errorf("%s at %s: history says overdue %v, the table %v", c.name, ch.at.In(hcm).Format("Jan 2 15:04"), got, ch.want)
			}
		}
	}
}

// TestLiveOverdueFollowsTheHistoryRules stores every case through the real
// writer, each dossier in a commune of its own, and reads the live
// snapshot's dossiers_overdue at each moment of the table.
func TestLiveOverdueFollowsTheHistoryRules(t *testing.T) {
	ctx := context.Background()
	a, s, _ := newTestAggregator(t, time.Time{})
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	var communes []string
	for _, u := range h.Select("commune", "79") {
		communes = append(communes, u.Code)
	}
	slices.Sort(communes)
	var all []ingest.Dossier
	for i, c := range overdueCases {
		all = append(all, overdueEvents(fmt.Sprintf("D%02d", i), communes[i], c.steps)...)
	}
	ingesttest.Dossiers(t, s, all)
	for i, c := range overdueCases {
		for _, ch := range c.checks {
			a.now = func() time.Time { return ch.at }
			snap, err := a.Snapshot(ctx, "vn-2025", communes[i], Today)
			if err != nil {
				t.Fatal(err)
			}
			want := uint64(0)
			if ch.want {
				want = 1
			}
			if got := snap.KPIs["dossiers_overdue"]; got != want {
				t.Errorf("%s at %s: live dossiers_overdue %v, want %d", c.name, ch.at.In(hcm).Format("Jan 2 15:04"), got, want)
			}
		}
	}
	// The province sums its communes: every case's dossier that the
	// history has late at the moment.
	for _, at := range []time.Time{lateDay(1, 13, 0), lateDay(3, 17, 10), lateDay(4, 9, 0), lateDay(5, 12, 0), lateDay(9, 9, 0)} {
		var want int64
		for _, c := range overdueCases {
			want += derivedLate(c.steps, at)
		}
		a.now = func() time.Time { return at }
		snap, err := a.Snapshot(ctx, "vn-2025", "79", Last7)
		if err != nil {
			t.Fatal(err)
		}
		if got := snap.KPIs["dossiers_overdue"]; got != uint64(want) {
			t.Errorf("79 at %s: live dossiers_overdue %v, want %d", at.In(hcm).Format("Jan 2 15:04"), got, want)
		}
	}
}
