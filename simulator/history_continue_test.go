package simulator_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/simulator"
)

// The dossiers and feedback items a history leaves open at its end go on
// with the live simulator: each later step is sent once, when its time
// comes, and every dossier's lifecycle ends as planned.
func TestContinueSendsWhatTheHistoryLeftOpen(t *testing.T) {
	end := time.Date(2025, 11, 21, 15, 0, 0, 0, ict) // a Friday afternoon
	areas := communes(20)
	h, err := simulator.NewHistory(simulator.HistoryConfig{End: end, Days: 3, Rate: 2, Areas: areas, ProvinceArea: "79",
		Location: ict, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	_, carry := h.Records()
	events, states := carry.Len()
	if events < 50 || states < 3 {
		t.Fatalf("the history left %d dossier events and %d feedback states to come, want some of each", events, states)
	}

	hs := newHarness(t, simulator.Config{Rate: 0.01, Areas: areas, ProvinceArea: "79", Location: ict, Seed: 1}, nil)
	if err := hs.sim.Continue(carry); err != nil {
		t.Fatal(err)
	}
	// Every four hours for four months, past the longest lifecycle.
	hs.drive(end, end.Add(120*24*time.Hour), 4*time.Hour, nil)
	if err := hs.sim.Continue(carry); err == nil {
		t.Error("Continue after the simulator stepped: no error, want one")
	}

	byDossier := map[string][]int{}
	last := map[string]string{}
	got := 0
	for _, e := range hs.c.events {
		if !strings.HasPrefix(e.EventID, h.EventPrefix()) {
			continue
		}
		got++
		n, err := strconv.Atoi(e.EventID[strings.LastIndexByte(e.EventID, '-')+1:])
		if err != nil {
			t.Fatalf("event id %s", e.EventID)
		}
		if at := parseTime(t, e.OccurredAt); at.Before(end) {
			t.Errorf("carried event %s at %s, before the history's end %s", e.EventID, e.OccurredAt, end)
		}
		byDossier[e.DossierID] = append(byDossier[e.DossierID], n)
		last[e.DossierID] = e.Status
	}
	if got != events {
		t.Errorf("the simulator sent %d of the %d events the history left to come", got, events)
	}
	for id, ns := range byDossier {
		want := make([]int, len(ns))
		for i := range want {
			want[i] = ns[0] + i
		}
		if !slices.Equal(ns, want) {
			t.Errorf("dossier %s: steps %v sent, want the rest of its lifecycle in order, once each", id, ns)
		}
		switch last[id] {
		case "returned", "rejected", "withdrawn", "processing": // processing: stuck, as one in two hundred is
		default:
			t.Errorf("dossier %s ends %s, want its lifecycle to its end", id, last[id])
		}
	}
	fb := 0
	for _, f := range hs.c.feedback {
		if strings.Contains(f.FeedbackID, "-H") {
			fb++
		}
	}
	if fb != states {
		t.Errorf("the simulator sent %d of the %d feedback states the history left to come", fb, states)
	}
}

// At field pace the simulator sends, through ingest, nothing but the
// history carried on: the dossiers the history left open go on to the end
// of their lifecycles, the days after its end bring dossiers and feedback
// items of their own, as valid as the history's, each event once and in
// order; there is no demo traffic besides.
func TestFieldPaceSendsTheHistoryThroughIngest(t *testing.T) {
	end := time.Date(2025, 11, 21, 15, 0, 0, 0, ict) // a Friday afternoon
	areas := communes(20)
	h, err := simulator.NewHistory(simulator.HistoryConfig{End: end, Days: 3, Rate: 2, Areas: areas, ProvinceArea: "79",
		Location: ict, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	_, carry := h.Records()
	carried, _ := carry.Len()
	hs := newHarness(t, simulator.Config{Pace: simulator.PaceField, Rate: 20, Areas: areas, ProvinceArea: "79", Location: ict}, nil)
	if err := hs.sim.Continue(carry); err != nil {
		t.Fatal(err)
	}
	later := end.Add(4 * 24 * time.Hour)
	hs.drive(end, later, 30*time.Minute, nil)

	byDossier := map[string][]int{}
	old, newDays := 0, map[string]int{}
	for _, e := range hs.c.events {
		if !strings.HasPrefix(e.EventID, h.EventPrefix()) {
			t.Fatalf("event %s sent at field pace, want only the history's (%s…)", e.EventID, h.EventPrefix())
		}
		n, err := strconv.Atoi(e.EventID[strings.LastIndexByte(e.EventID, '-')+1:])
		if err != nil {
			t.Fatalf("event id %s", e.EventID)
		}
		byDossier[e.DossierID] = append(byDossier[e.DossierID], n)
		recv := parseTime(t, e.ReceivedAt)
		switch {
		case recv.Before(end):
			old++
		case e.Status == "received":
			newDays[recv.In(ict).Format(time.DateOnly)]++
		}
	}
	for id, ns := range byDossier {
		want := make([]int, len(ns))
		for i := range want {
			want[i] = ns[0] + i
		}
		if !slices.Equal(ns, want) {
			t.Errorf("dossier %s: steps %v sent, want its lifecycle from the history's end in order, once each", id, ns)
		}
	}
	if old == 0 || old > carried {
		t.Errorf("%d events of dossiers received before the end, of %d carried: want the open ones carried on", old, carried)
	}
	for d := end; d.Before(later); d = d.AddDate(0, 0, 1) {
		if day := d.Format(time.DateOnly); newDays[day] == 0 {
			t.Errorf("no dossier received on %s at field pace; got %v", day, newDays)
		}
	}
	if newDays["2025-11-24"] < 3*newDays["2025-11-23"] {
		t.Errorf("%d dossiers received on Monday, %d on Sunday: want the history's weekly rhythm", newDays["2025-11-24"], newDays["2025-11-23"])
	}
	fb := 0
	for _, f := range hs.c.feedback {
		if !strings.Contains(f.FeedbackID, "-H") {
			t.Fatalf("feedback %s sent at field pace, want only the history's", f.FeedbackID)
		}
		fb++
	}
	if fb == 0 {
		t.Error("no feedback sent at field pace in four days")
	}
}
