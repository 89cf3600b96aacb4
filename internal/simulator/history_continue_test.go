package simulator_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/simulator"
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
