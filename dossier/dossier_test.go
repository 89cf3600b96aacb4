package dossier

import (
	"math/rand/v2"
	"testing"
	"time"
)

var day0 = time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC) // 08:00 in Hanoi

func at(days, hours float64) time.Time {
	return day0.Add(time.Duration((days*24 + hours) * float64(time.Hour)))
}

func ptr(t time.Time) *time.Time { return &t }

func ev(id, status string, t time.Time) Event {
	return Event{EventID: id, Area: "26734", Status: status, OccurredAt: t, Channel: "online", Sector: "land", Procedure: "1.004227"}
}

func withDue(e Event, due time.Time) Event { e.DueAt = &due; return e }

// total sums every row's measures.
func total(rows []Contribution) Measures {
	var m Measures
	for _, r := range rows {
		m.Add(r.Measures)
	}
	return m
}

// balanceAt sums the rows strictly before t, as a period ending at t does.
func balanceAt(rows []Contribution, t time.Time) Measures {
	var m Measures
	for _, r := range rows {
		if r.T.Before(t) {
			m.Add(r.Measures)
		}
	}
	return m
}

func TestDeriveAppliesTheDeadlineRules(t *testing.T) {
	due := at(3, 9) // day 3, 17:00 local
	for _, c := range []struct {
		name   string
		events []Event
		want   Measures
	}{
		{"resolved before the deadline", []Event{
			withDue(ev("a1", "received", at(0, 0)), due),
			withDue(ev("a2", "resolved", at(2, 0)), due),
		}, Measures{Received: 1, ReceivedOnline: 1, Resolved: 1, OnTime: 1, Timed: 1, ResolutionSeconds: 2 * 86400}},
		{"resolved exactly at the deadline", []Event{
			withDue(ev("a1", "received", at(0, 0)), due),
			withDue(ev("a2", "resolved", due), due),
		}, Measures{Received: 1, ReceivedOnline: 1, Resolved: 1, OnTime: 1, Timed: 1, ResolutionSeconds: int64(due.Sub(at(0, 0)).Seconds())}},
		{"resolved a day late", []Event{
			withDue(ev("a1", "received", at(0, 0)), due),
			withDue(ev("a2", "resolved", at(4, 9)), due),
		}, Measures{Received: 1, ReceivedOnline: 1, Resolved: 1, Timed: 1, ResolutionSeconds: int64(at(4, 9).Sub(at(0, 0)).Seconds())}},
		{"a two-day wait for documents makes a day-late resolution on time", []Event{
			withDue(ev("a1", "received", at(0, 0)), due),
			withDue(ev("a2", "supplement_requested", at(1, 0)), due),
			withDue(ev("a3", "processing", at(3, 0)), due),
			withDue(ev("a4", "resolved", at(4, 9)), due),
		}, Measures{Received: 1, ReceivedOnline: 1, Resolved: 1, OnTime: 1, Timed: 1, ResolutionSeconds: int64(at(4, 9).Sub(at(0, 0)).Seconds()) - 2*86400}},
		{"a second request for documents makes it late", []Event{
			withDue(ev("a1", "received", at(0, 0)), due),
			withDue(ev("a2", "supplement_requested", at(0, 2)), due),
			withDue(ev("a3", "processing", at(0, 4)), due),
			withDue(ev("a4", "supplement_requested", at(0, 6)), due),
			withDue(ev("a5", "processing", at(0, 8)), due),
			withDue(ev("a6", "resolved", at(1, 0)), due),
		}, Measures{Received: 1, ReceivedOnline: 1, Resolved: 1, Timed: 1, ResolutionSeconds: 86400 - 4*3600}},
		{"a wait that began after the deadline does not save it", []Event{
			withDue(ev("a1", "received", at(0, 0)), due),
			withDue(ev("a2", "supplement_requested", at(3, 10)), due),
			withDue(ev("a3", "resolved", at(5, 0)), due),
		}, Measures{Received: 1, ReceivedOnline: 1, Resolved: 1, Timed: 1, ResolutionSeconds: int64(at(5, 0).Sub(at(0, 0)).Seconds()) - int64(at(5, 0).Sub(at(3, 10)).Seconds())}},
		{"rejected at intake closes without resolving", []Event{
			withDue(ev("a1", "received", at(0, 0)), due),
			ev("a2", "rejected", at(0, 1)),
		}, Measures{Received: 1, ReceivedOnline: 1}},
		{"flags reported later hold for the dossier", []Event{
			withDue(ev("a1", "received", at(0, 0)), due),
			func() Event {
				e := withDue(ev("a2", "resolved", at(1, 0)), due)
				e.Digitized, e.EResult, e.PaidOnline = true, true, true
				return e
			}(),
		}, Measures{Received: 1, ReceivedOnline: 1, Digitized: 1, FeeBearing: 1, PaidOnline: 1, Resolved: 1, OnTime: 1, Timed: 1, ResolutionSeconds: 86400, EResult: 1}},
		{"resolved without a known receipt counts but is not timed", []Event{
			withDue(ev("a2", "resolved", at(1, 0)), due),
		}, Measures{Resolved: 1, OnTime: 1}},
		{"no deadline is never on time", []Event{
			ev("a1", "received", at(0, 0)),
			ev("a2", "resolved", at(1, 0)),
		}, Measures{Received: 1, ReceivedOnline: 1, Resolved: 1, Timed: 1, ResolutionSeconds: 86400}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := total(Derive(c.events)); got != c.want {
				t.Errorf("got %+v,\nwant %+v", got, c.want)
			}
		})
	}
}

func TestOpenDossiersTurnLateAtTheirDeadline(t *testing.T) {
	due := at(3, 9)
	f := func(name string, events []Event, end time.Time, wantOpen, wantLate int64) {
		t.Helper()
		got := balanceAt(Derive(events), end)
		if got[Open] != wantOpen || got[LateOpen] != wantLate {
			t.Errorf("%s: got open %d late %d at %s, want %d and %d", name, got[Open], got[LateOpen], end, wantOpen, wantLate)
		}
	}
	open := []Event{withDue(ev("a1", "received", at(0, 0)), due), withDue(ev("a2", "processing", at(1, 0)), due)}
	f("before the deadline", open, at(3, 0), 1, 0)
	f("at the deadline", open, due, 1, 0)
	f("after the deadline", open, at(3, 10), 1, 1)
	f("before receipt", open, at(0, 0), 0, 0)
	waiting := append(open[:1:1], withDue(ev("a3", "supplement_requested", at(2, 0)), due))
	f("waiting for documents", waiting, at(9, 0), 1, 0)
	resumed := append(waiting[:2:2], withDue(ev("a4", "processing", at(4, 0)), due))
	// Two days of waiting move the deadline to day 5, 17:00.
	f("after the wait, before the moved deadline", resumed, at(5, 9), 1, 0)
	f("after the wait, past the moved deadline", resumed, at(5, 10), 1, 1)
	late := append(resumed[:3:3], withDue(ev("a5", "resolved", at(6, 0)), due))
	f("resolved late, after closure", late, at(7, 0), 0, 0)
	f("resolved late, before closure", late, at(5, 12), 1, 1)
}

// TestDeltasSumToTheWholeHistory applies a dossier's events one by one in
// every arrival order: the stored changes must always add up to what its
// full history derives.
func TestDeltasSumToTheWholeHistory(t *testing.T) {
	due := at(3, 9)
	events := []Event{
		withDue(ev("a1", "received", at(0, 0)), due),
		withDue(ev("a2", "supplement_requested", at(1, 0)), due),
		withDue(ev("a3", "processing", at(3, 0)), due),
		func() Event { e := withDue(ev("a4", "resolved", at(4, 9)), due); e.EResult = true; return e }(),
		ev("a5", "returned", at(5, 0)),
	}
	want := Derive(events)
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		order := r.Perm(len(events))
		sum := map[Key]Measures{}
		var seen []Event
		prev := Derive(nil)
		for _, i := range order {
			seen = append(seen, events[i])
			next := Derive(seen)
			for _, d := range Delta(prev, next) {
				m := sum[d.Key]
				m.Add(d.Measures)
				sum[d.Key] = m
			}
			prev = next
		}
		got := map[Key]Measures{}
		for k, m := range sum {
			if m != (Measures{}) {
				got[k] = m
			}
		}
		if len(got) != len(want) {
			t.Fatalf("order %v: got %d rows, want %d", order, len(got), len(want))
		}
		for _, w := range want {
			if got[w.Key] != w.Measures {
				t.Fatalf("order %v: at %s got %+v, want %+v", order, w.T, got[w.Key], w.Measures)
			}
		}
	}
}

func TestASupersedingEventReplacesTheOneItNames(t *testing.T) {
	due := at(3, 9)
	wrong := withDue(ev("r1", "resolved", at(4, 9)), due) // sent as a day late
	fixed := withDue(ev("r2", "resolved", at(2, 0)), due) // corrected: resolved early
	fixed.Supersedes = "r1"
	received := withDue(ev("a1", "received", at(0, 0)), due)

	want := Derive([]Event{received, withDue(ev("r2", "resolved", at(2, 0)), due)})
	if got := total(want); got[OnTime] != 1 || got[Resolved] != 1 {
		t.Fatalf("corrected history: got %+v, want one dossier resolved on time", got)
	}
	// Whatever the order of arrival, the stored changes sum to the
	// corrected history: the wrong resolution counts for nothing.
	for _, order := range [][]Event{{received, wrong, fixed}, {received, fixed, wrong}, {fixed, wrong, received}} {
		sum := map[Key]Measures{}
		var seen []Event
		prev := Derive(nil)
		for _, e := range order {
			seen = append(seen, e)
			next := Derive(seen)
			for _, d := range Delta(prev, next) {
				m := sum[d.Key]
				m.Add(d.Measures)
				sum[d.Key] = m
			}
			prev = next
		}
		var got Measures
		for _, m := range sum {
			got.Add(m)
		}
		if got != total(want) {
			t.Errorf("arrival %s, %s, %s: got %+v, want %+v", order[0].EventID, order[1].EventID, order[2].EventID, got, total(want))
		}
	}
}

// TestAMeasureMoreIsOneEntry: a measure added to the table is derived
// from the dossier's facts at its moments with nothing else changed, and
// the measures already there keep their values.
func TestAMeasureMoreIsOneEntry(t *testing.T) {
	postal := Measure{Column: "received_postal", AtReceipt: func(f Facts) int64 { return b(f.Channel == "postal") }}
	table := append(Table[:len(Table):len(Table)], postal)
	due := at(3, 9)
	for _, c := range []struct {
		channel string
		want    int64
	}{{"postal", 1}, {"online", 0}} {
		received := withDue(ev("a1", "received", at(0, 0)), due)
		received.Channel = c.channel
		events := []Event{received, withDue(ev("a2", "resolved", at(1, 0)), due)}
		_, f, when, ok := history(events)
		if !ok || when.receipt == nil || when.closure == nil || when.late != nil {
			t.Fatalf("%s: want a receipt and a closure, on time, in %v", c.channel, events)
		}
		var sum Measures
		for _, r := range Derive(events) {
			sum.Add(r.Measures)
		}
		var got [len(Table) + 1]int64
		for _, at := range []moment{atReceipt, atClosure} { // it does not turn late
			v := make([]int64, len(table))
			at.values(table, f, v)
			for i := range v {
				got[i] += v[i]
			}
		}
		if got[len(Table)] != c.want {
			t.Errorf("%s: received_postal %d, want %d", c.channel, got[len(Table)], c.want)
		}
		if Measures(got[:len(Table)]) != sum {
			t.Errorf("%s: with a measure more the others are %v, want %v", c.channel, Measures(got[:len(Table)]), sum)
		}
	}
}

// TestEveryMeasureHasAMoment: a measure that no moment gives is always 0.
func TestEveryMeasureHasAMoment(t *testing.T) {
	for i, m := range Table {
		if m.AtReceipt == nil && m.AtClosure == nil && m.AtLate == nil {
			t.Errorf("Table[%d] (%s) has no moment", i, m.Column)
		}
		if m.Balance != (Index(i) == Open || Index(i) == LateOpen) {
			t.Errorf("Table[%d] (%s): balance %v", i, m.Column, m.Balance)
		}
	}
	if len(Columns) != len(Table) || Columns[Open] != "open" || Columns[LateOpen] != "late_open" {
		t.Errorf("columns %v", Columns)
	}
}
