package simulator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/simulator"
)

// serveFeedback takes a JSON array of feedback states, validating each like
// the server does.
func (c *collector) serveFeedback(w http.ResponseWriter, r *http.Request) {
	t := c.t
	if r.Method != http.MethodPost {
		t.Errorf("got %s %s, want POST", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("feedback: got Content-Type %q, want application/json", got)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer tok" {
		t.Errorf("feedback: got Authorization %q, want Bearer tok", got)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client gave up
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var recs []ingest.FeedbackRecord
	if err := dec.Decode(&recs); err != nil {
		t.Errorf("decode feedback %.200q: %v", body, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	for _, f := range recs {
		if _, err := c.rules.ValidateFeedback(f, c.now()); err != nil {
			t.Errorf("invalid feedback %+v: %v", f, err)
		}
	}
	c.mu.Lock()
	known := map[string]bool{}
	for _, e := range c.events {
		known[e.DossierID] = true
	}
	for _, f := range recs {
		if f.DossierID != "" && !known[f.DossierID] {
			c.unknown = append(c.unknown, f.FeedbackID+" names "+f.DossierID)
		}
	}
	c.feedback = append(c.feedback, recs...)
	c.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(map[string]any{"accepted": len(recs), "rejected": 0, "errors": []any{}})
}

var feedbackIDRE = regexp.MustCompile(`^1022-79-S[A-Z2-7]{5}-\d{6}$`)

func TestFeedbackSimulatedThroughIngest(t *testing.T) {
	// Friday 15:00: two office hours, then the evening.
	start := time.Date(2025, 11, 21, 15, 0, 0, 0, ict)
	end := start.Add(220 * time.Minute)
	cfg := simulator.Config{
		Rate: 2, Areas: communes(40), ProvinceArea: "79", Location: ict, Seed: 42,
		FlushInterval: 10 * time.Millisecond, Feedback: 6,
	}
	c, reg := run(t, cfg, start, end, time.Minute, nil)

	parse := func(s string) time.Time { t.Helper(); return parseTime(t, s) }
	share := func(name string, num, den int, want, tol float64) {
		t.Helper()
		checkShare(t, name, num, den, want, tol)
	}
	dossierArea := map[string]string{}
	for _, e := range c.events {
		dossierArea[e.DossierID] = e.AreaCode
	}
	var order []string
	states := map[string][]ingest.FeedbackRecord{}
	for _, f := range c.feedback {
		if states[f.FeedbackID] == nil {
			order = append(order, f.FeedbackID)
		}
		states[f.FeedbackID] = append(states[f.FeedbackID], f)
	}
	if len(order) < 500 {
		t.Fatalf("got %d feedback items, want at least 500", len(order))
	}

	lifecycle := []string{"received", "processing", "resolved"}
	var procedure, resolved, onTime, settled, rated, satisfied, officeItems int
	for _, id := range order {
		ss := states[id]
		first, last := ss[0], ss[len(ss)-1]
		if !feedbackIDRE.MatchString(id) {
			t.Errorf("feedback_id %q, want shaped like 1022-79-SXXXXX-NNNNNN", id)
		}
		received := parse(first.ReceivedAt)
		if len(first.StatusChanges) != 1 || first.StatusChanges[0] != (ingest.FeedbackStatusChange{Status: "received", At: first.ReceivedAt}) || first.Rating != "" {
			t.Errorf("%s: first state %+v, want only received at received_at", id, first)
		}
		// Five working days of the simulator's compressed calendar (6 minutes each).
		if due := parse(first.DueAt); due.Sub(received) != 30*time.Minute {
			t.Errorf("%s: due %s after receipt, want 30m", id, due.Sub(received))
		}
		for i, s := range ss {
			if s.ReceivedAt != first.ReceivedAt || s.DueAt != first.DueAt || s.Category != first.Category ||
				s.Channel != first.Channel || s.AreaCode != first.AreaCode || s.DossierID != first.DossierID {
				t.Errorf("%s: state %d %+v differs from the first %+v in a per-item field", id, i, s, first)
			}
			if i == 0 {
				continue
			}
			// Each state adds changes or the rating to the one before (both
			// when they fall within one step of the generator).
			prev := ss[i-1]
			extends := len(s.StatusChanges) >= len(prev.StatusChanges) &&
				slices.Equal(s.StatusChanges[:len(prev.StatusChanges)], prev.StatusChanges) &&
				(prev.Rating == "" || s.Rating == prev.Rating)
			adds := len(s.StatusChanges) > len(prev.StatusChanges) || s.Rating != prev.Rating
			if !extends || !adds {
				t.Errorf("%s: state %d %+v does not extend %+v", id, i, s, prev)
			}
		}
		var statuses []string
		for _, ch := range last.StatusChanges {
			statuses = append(statuses, ch.Status)
		}
		if !slices.Equal(statuses, lifecycle[:len(statuses)]) {
			t.Errorf("%s: statuses %v, want a prefix of %v", id, statuses, lifecycle)
		}
		if first.Category == "procedure" {
			procedure++
			if area, ok := dossierArea[first.DossierID]; !ok || area != first.AreaCode {
				t.Errorf("%s: procedure complaint about dossier %q in %s, want a simulated dossier in its area (%q)", id, first.DossierID, first.AreaCode, area)
			}
		} else if first.DossierID != "" {
			t.Errorf("%s: %s item names dossier %q, want none", id, first.Category, first.DossierID)
		}
		if received.Before(start.Add(2 * time.Hour)) {
			officeItems++
		}
		if len(statuses) < 3 {
			if last.Rating != "" {
				t.Errorf("%s: rated %s before it was resolved", id, last.Rating)
			}
			continue
		}
		resolved++
		at := parse(last.StatusChanges[2].At)
		if !at.After(parse(first.DueAt)) {
			onTime++
		}
		// A rating comes within minutes; count items that had the time.
		if at.Before(end.Add(-10 * time.Minute)) {
			settled++
			if last.Rating != "" {
				rated++
			}
			if last.Rating == "satisfied" {
				satisfied++
			}
		}
	}
	share("procedure share", procedure, len(order), 0.20, 0.05)
	share("on-time share of resolved", onTime, resolved, 0.85, 0.05)
	share("rated share of resolved", rated, settled, 0.60, 0.06)
	share("satisfied share of rated", satisfied, rated, 0.80, 0.06)
	if got := float64(officeItems) / 120; math.Abs(got-cfg.Feedback) > 0.2*cfg.Feedback {
		t.Errorf("got %.1f items per minute in office hours, want about %v", got, cfg.Feedback)
	}
	if onTime == resolved {
		t.Errorf("got every item resolved on time, want some late")
	}
	if len(c.unknown) > 0 {
		t.Errorf("%d complaints arrived before the dossier they name, e.g. %s; want complaints only about dossiers the server has", len(c.unknown), c.unknown[0])
	}
	// Every Flush returned once its batches were answered: the count is exact.
	if got := metric(t, reg, "ioc_simulator_feedback_sent_total"); got != float64(len(c.feedback)) {
		t.Errorf("got feedback_sent_total %v, want %d", got, len(c.feedback))
	}
	if got := metric(t, reg, "ioc_simulator_post_errors_total"); got != 0 {
		t.Errorf("got post_errors_total %v, want 0", got)
	}
}

func TestFeedbackSimulationCanBeOff(t *testing.T) {
	start := time.Date(2025, 11, 24, 9, 0, 0, 0, ict)
	cfg := simulator.Config{Rate: 2, Areas: communes(5), Location: ict, Seed: 7, FlushInterval: 10 * time.Millisecond, Feedback: -1}
	c, _ := run(t, cfg, start, start.Add(30*time.Minute), time.Minute, nil)
	if len(c.events) == 0 || len(c.feedback) != 0 {
		t.Errorf("got %d dossier events and %d feedback states, want dossiers only", len(c.events), len(c.feedback))
	}

	ok := simulator.Config{BaseURL: "http://127.0.0.1:8080", Token: "tok", Rate: 1, Areas: []string{"26734"}}
	for _, v := range []float64{math.NaN(), 5000} {
		cfg := ok
		cfg.Feedback = v
		if _, err := simulator.New(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "Feedback") {
			t.Errorf("Feedback %v: got error %v, want one naming Feedback", v, err)
		}
	}
}

// While the server is away the outbox fills up and drops dossiers it never
// sent; complaints filed meanwhile must not name them, at any hour of the
// simulated day (the rhythm, and so the volume, changes with it).
func TestComplaintsNameOnlyDossiersTheServerHas(t *testing.T) {
	for _, start := range []time.Time{
		time.Date(2025, 11, 21, 3, 0, 0, 0, ict),  // Friday night
		time.Date(2025, 11, 21, 14, 0, 0, 0, ict), // Friday office hours
	} {
		t.Run(start.Format("15h04"), func(t *testing.T) {
			// An hour away at 10 events/s fills the outbox (5000 events)
			// even at night, when a quarter of the peak rate comes in.
			cfg := simulator.Config{Rate: 10, Areas: communes(40), ProvinceArea: "79", Location: ict, Seed: 5, Feedback: 60}
			h := newHarness(t, cfg, nil)
			away, back := start.Add(10*time.Minute), start.Add(70*time.Minute)
			h.drive(start, away, time.Minute, nil)
			for now := away.Add(time.Minute); now.Before(back); now = now.Add(time.Minute) {
				h.clock.set(now)
				if err := h.sim.Step(now); err != nil {
					t.Fatal(err)
				}
			}
			h.drive(back, back.Add(5*time.Minute), time.Minute, nil)

			c := h.c
			// The outage dropped whole dossiers: their numbers are missing.
			seen := map[int]bool{}
			last := 0
			for _, e := range c.events {
				m := eventIDRE.FindStringSubmatch(e.EventID)
				if m == nil {
					t.Fatalf("event_id %q, want sim-<run>-<dossier>-<event>", e.EventID)
				}
				d, _ := strconv.Atoi(m[1])
				seen[d], last = true, max(last, d)
			}
			if len(seen) == last {
				t.Fatalf("got all %d dossiers, want some dropped unsent while the server was away", last)
			}
			sent := map[string]bool{}
			for _, e := range c.events {
				sent[e.DossierID] = true
			}
			duringOutage := 0
			items := map[string]bool{}
			for _, f := range c.feedback {
				if f.DossierID == "" || items[f.FeedbackID] {
					continue
				}
				items[f.FeedbackID] = true
				if !sent[f.DossierID] {
					t.Errorf("%s names dossier %s, which was never sent", f.FeedbackID, f.DossierID)
				}
				if at := parseTime(t, f.ReceivedAt); at.After(away) && at.Before(back) {
					duringOutage++
				}
			}
			if duringOutage == 0 {
				t.Errorf("got no complaint about a dossier filed while the server was away, want some")
			}
			if len(c.unknown) > 0 {
				t.Errorf("%d complaints arrived before the dossier they name, e.g. %s", len(c.unknown), c.unknown[0])
			}
		})
	}
}
