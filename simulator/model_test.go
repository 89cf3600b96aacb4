package simulator

import (
	"math/rand/v2"
	"testing"
	"time"
)

var ict = time.FixedZone("ICT", 7*60*60)

func newTestWorld(rate float64) *world {
	return newWorld(rand.New(rand.NewPCG(1, 2)), ict, rate, []string{"26734", "26737", "26740"}, "79", "STEST0", "sim-test")
}

func TestRhythm(t *testing.T) {
	f := func(day, h, m int, want float64) {
		t.Helper()
		at := time.Date(2025, 11, day, h, m, 0, 0, ict) // 17 Nov 2025 is a Monday
		if got := rhythm(at); got != want {
			t.Errorf("rhythm(%s) = %v, want %v", at.Format("Mon 15:04"), got, want)
		}
	}
	f(17, 7, 29, 0.35)
	f(17, 7, 30, 1)
	f(17, 11, 29, 1)
	f(17, 12, 0, 0.45)
	f(21, 13, 0, 1)
	f(21, 16, 59, 1)
	f(21, 17, 0, 0.35)
	f(21, 23, 0, rhythmFloor)
	f(22, 9, 0, 0.5) // Saturday morning
	f(22, 14, 0, 0.35)
	f(23, 9, 0, 0.35) // Sunday
	f(23, 3, 0, rhythmFloor)
}

func TestPopulationIsBounded(t *testing.T) {
	f := func(rate float64, limit int) {
		t.Helper()
		w := newTestWorld(rate)
		if limit > 0 {
			w.maxOpen = limit
		}
		now := time.Date(2025, 11, 17, 8, 0, 0, 0, ict) // office hours
		const minutes = 20
		n, resolved, onTime := 0, 0, 0
		var buf []item
		for range minutes * 6 {
			now = now.Add(10 * time.Second)
			buf = w.advance(now, buf[:0])
			n += len(buf)
			for _, it := range buf {
				at, _ := time.Parse(time.RFC3339, it.ev.OccurredAt)
				if at.After(now) {
					t.Fatalf("event at %s emitted at %s, want none in the future", it.ev.OccurredAt, now)
				}
				if it.ev.Status == "resolved" {
					resolved++
					if due, _ := time.Parse(time.RFC3339, it.ev.DueAt); !at.After(due) {
						onTime++
					}
				}
			}
			if w.open > w.maxOpen {
				t.Fatalf("rate %v: got %d open dossiers, want at most %d", rate, w.open, w.maxOpen)
			}
		}
		if got := float64(n) / (minutes * 60); got < 0.85*rate || got > 1.1*rate {
			t.Errorf("rate %v cap %d: got %.1f events/s, want about %v", rate, w.maxOpen, got, rate)
		}
		if len(w.byAge) > 2*w.open+64 {
			t.Errorf("rate %v: got %d dossiers tracked by age for %d open, want closed ones pruned", rate, len(w.byAge), w.open)
		}
		if limit == 0 {
			// Shorter windows, same shape.
			if got := float64(onTime) / float64(resolved); got < 0.92 || got > 0.98 {
				t.Errorf("rate %v: got on-time share %.3f, want about 0.95", rate, got)
			}
		}
	}
	f(100, 0)  // would outgrow the cap without shorter windows
	f(20, 100) // the cap itself holds
}

func TestClockJumpSkipsIntake(t *testing.T) {
	w := newTestWorld(10)
	now := time.Date(2025, 11, 17, 9, 0, 0, 0, ict)
	w.advance(now, nil)
	// The host slept for a day: no day's worth of intake in one burst.
	got := w.advance(now.Add(24*time.Hour), nil)
	if limit := int(10 * maxCatchUp.Seconds() * 1.5); len(got) > limit+w.open*6 {
		t.Errorf("got %d events after a one-day jump, want at most about %d", len(got), limit)
	}
}

func TestOutboxDropsOnlyUnsentNewDossiers(t *testing.T) {
	w := newTestWorld(20)
	o := newOutbox(300)
	now := time.Date(2025, 11, 17, 9, 0, 0, 0, ict)
	sent := map[*dossier]bool{}
	followUps := 0
	step := func() int {
		t.Helper()
		now = now.Add(5 * time.Second)
		items := w.advance(now, nil)
		for _, it := range items {
			if sent[it.d] {
				followUps++
			}
		}
		return o.add(items, w.drop)
	}
	for o.len() < 100 {
		step()
	}
	// These are on their way to the server; their dossiers must go on.
	for _, it := range o.take(o.len()) {
		sent[it.d] = true
	}
	dropped := 0
	for range 400 {
		dropped += step()
		if n := o.len(); n > 300+6*len(sent) {
			t.Fatalf("outbox holds %d events, want it bounded near 300", n)
		}
	}
	if dropped == 0 {
		t.Fatalf("got no dossier dropped, want the oldest unsent ones dropped")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	received := map[*dossier]bool{}
	for _, it := range o.items {
		switch {
		case it.ev.Status == "received":
			received[it.d] = true
		case !sent[it.d] && !received[it.d]:
			t.Errorf("event %s (%s) kept without its dossier's received event", it.ev.EventID, it.ev.Status)
		}
	}
	kept := 0
	for _, it := range o.items {
		if sent[it.d] {
			kept++
		}
	}
	if kept != followUps || kept == 0 {
		t.Errorf("got %d follow-ups of sent dossiers in the outbox, want all %d generated", kept, followUps)
	}
}

func TestRetryAfter(t *testing.T) {
	f := func(h string, want time.Duration) {
		t.Helper()
		if got := retryAfter(h); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", h, got, want)
		}
	}
	f("", time.Second)
	f("3", 3*time.Second)
	f("0", 0)
	f("-1", time.Second)
	f("soon", time.Second)
	f("86400", maxRetryAfter)
	f("Mon, 02 Jan 2006 15:04:05 GMT", 0) // a date in the past
}
