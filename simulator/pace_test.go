package simulator

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest"
)

// fieldRun steps a simulator at field pace that continues carry from the
// carry's end to until (the last step exactly there) by every, and returns
// every dossier event and feedback state it queued, as a server that takes
// them all at once receives them.
func fieldRun(t *testing.T, carry *Carry, until time.Time, every time.Duration) ([]ingest.DossierEvent, []ingest.FeedbackRecord) {
	t.Helper()
	s, err := New(Config{BaseURL: "http://127.0.0.1:1", Token: "tok", Pace: PaceField, Rate: 20, Areas: []string{"26734"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Continue(carry); err != nil {
		t.Fatal(err)
	}
	var evs []ingest.DossierEvent
	var fb []ingest.FeedbackRecord
	for now := carry.End(); ; now = now.Add(every) {
		now = minTime(now, until)
		if err := s.Step(now); err != nil {
			t.Fatal(err)
		}
		for _, it := range s.out.take(1 << 30) {
			evs = append(evs, it.ev)
		}
		fb = append(fb, s.fbOut.take(1<<30)...)
		if now.Equal(until) {
			return evs, fb
		}
	}
}

// localDay is the local date of an RFC 3339 time, in the zone of the tests.
func localDay(t *testing.T, s string) string {
	t.Helper()
	return parseTime(t, s).In(ict).Format(time.DateOnly)
}

// At field pace the live simulator is the history carried on: a History
// written up to End, then the simulator stepped on to a later time, make
// the same records, day by day, as a History written straight to that
// time — the same dossiers (ids, counts, every event), and feedback items
// in the same state — whatever the hour, weekday or holiday End falls on.
// The dossiers the history left open go on among them.
func TestFieldPaceCarriesTheHistoryOn(t *testing.T) {
	for _, end := range []time.Time{
		time.Date(2026, 3, 18, 3, 0, 0, 0, ict),   // a Wednesday, before dawn
		time.Date(2026, 3, 18, 14, 0, 0, 0, ict),  // a Wednesday afternoon, desks open
		time.Date(2026, 3, 22, 14, 0, 0, 0, ict),  // a Sunday
		time.Date(2026, 4, 27, 10, 17, 9, 0, ict), // the Hùng Kings' day, a public holiday (a Monday)
	} {
		t.Run(end.Format("Mon 2006-01-02 15:04"), func(t *testing.T) {
			cfg := testHistoryConfig(30, 12)
			cfg.End, cfg.Rate, cfg.Seed = end, 2, 11
			h := newTestHistory(t, cfg)
			days, carry := historyDays(h)
			carried, _ := carry.Len()

			later := end.Add(50 * time.Hour) // over two midnights
			live, fb := fieldRun(t, carry, later.Add(-time.Second), 7*time.Minute)

			long := cfg
			long.End = later
			long.Days = cfg.Days + int(dayKey(later.In(ict))-dayKey(end.In(ict)))
			want, _ := historyDays(newTestHistory(t, long))

			// Dossier events by local day, as JSON.
			byDay := func(evs []ingest.DossierEvent, into map[string]map[string]string) {
				for _, e := range evs {
					day := localDay(t, e.OccurredAt)
					if into[day] == nil {
						into[day] = map[string]string{}
					}
					b, _ := json.Marshal(e)
					if _, dup := into[day][e.EventID]; dup {
						t.Errorf("event %s twice", e.EventID)
					}
					into[day][e.EventID] = string(b)
				}
			}
			got, exp := map[string]map[string]string{}, map[string]map[string]string{}
			for _, d := range days {
				byDay(d.dossiers, got)
			}
			byDay(live, got)
			for _, d := range want {
				byDay(d.dossiers, exp)
			}
			fromCarry, received := 0, 0
			for _, e := range live {
				at := parseTime(t, e.OccurredAt)
				if at.Before(end) || !at.Before(later) {
					t.Fatalf("live event %s at %s, want it in [%s, %s)", e.EventID, e.OccurredAt, end, later)
				}
				if parseTime(t, e.ReceivedAt).Before(end) {
					fromCarry++
				}
				if e.Status == "received" {
					received++
				}
			}
			if fromCarry == 0 || fromCarry > carried || received == 0 {
				t.Errorf("%d live events of dossiers the history received (of %d carried), %d received live: want both", fromCarry, carried, received)
			}
			t.Logf("%d events of the history, then %d live (%d of dossiers it received, %d receipts), %d feedback states live",
				func() (n int) {
					for _, d := range days {
						n += len(d.dossiers)
					}
					return n
				}(), len(live), fromCarry, received, len(fb))
			var dates []string
			for day := range exp {
				dates = append(dates, day)
			}
			slices.Sort(dates)
			for _, day := range dates {
				g, w := got[day], exp[day]
				if len(g) != len(w) {
					t.Errorf("%s: %d dossier events, the history ending later holds %d", day, len(g), len(w))
				}
				for id, v := range w {
					if g[id] != v {
						t.Fatalf("%s: event %s is\n%s\nwant the later history's\n%s", day, id, g[id], v)
					}
				}
			}
			for day := range got {
				if exp[day] == nil {
					t.Errorf("%s: %d events, a day the later history does not hold", day, len(got[day]))
				}
			}

			// Feedback: the latest state of each item, from the history
			// then from the live simulator, is the later history's.
			state := map[string]string{}
			put := func(f ingest.FeedbackRecord) {
				b, _ := json.Marshal(f)
				state[f.FeedbackID] = string(b)
			}
			for _, d := range days {
				for _, f := range d.feedback {
					put(f)
				}
			}
			for _, f := range fb {
				put(f)
			}
			n := 0
			for _, d := range want {
				for _, f := range d.feedback {
					n++
					b, _ := json.Marshal(f)
					if state[f.FeedbackID] != string(b) {
						t.Fatalf("feedback %s is\n%s\nwant the later history's\n%s", f.FeedbackID, state[f.FeedbackID], b)
					}
				}
			}
			if n != len(state) || len(fb) == 0 {
				t.Errorf("%d feedback items sent or written, the later history holds %d; %d states sent live", len(state), n, len(fb))
			}
		})
	}
}

// A whole day at field pace files the dossiers the history's model gives
// that day: a province's 2,500 or so at the default rate, not the demo's
// hundreds of thousands.
func TestFieldPaceDayIsAHistoryDay(t *testing.T) {
	cfg := testHistoryConfig(168, 10)
	cfg.End = time.Date(2026, 3, 16, 23, 30, 0, 0, ict) // a Monday night; the rate is the default
	h := newTestHistory(t, cfg)
	_, carry := historyDays(h)
	tuesday := time.Date(2026, 3, 17, 0, 0, 0, 0, ict)
	live, _ := fieldRun(t, carry, tuesday.AddDate(0, 0, 1).Add(-time.Second), 10*time.Minute)
	got := 0
	for _, e := range live {
		if e.Status == "received" && localDay(t, e.OccurredAt) == "2026-03-17" {
			got++
		}
	}
	g := h.generator()
	want := h.dayCount(g.src, g.r, tuesday)
	t.Logf("%d dossiers received on Tuesday at field pace; the model's %d", got, want)
	if got != want {
		t.Errorf("%d dossiers received on Tuesday 2026-03-17 at field pace, the history's model files %d", got, want)
	}
	if per := DossiersPerDay(20); float64(got) < 0.75*per || float64(got) > 1.6*per {
		t.Errorf("%d dossiers received on a Tuesday at the default rate, want about %.0f, as in the history", got, per)
	}
}

// A day's camera detections at field pace are as many as the history's
// for such a day (hot spots' bursts included), not the demo's fifty times
// more; the demo pace keeps its rate.
func TestFieldPaceCamerasDetectAsTheHistory(t *testing.T) {
	day := time.Date(2026, 3, 17, 0, 0, 0, 0, ict)
	dc := testDevicesConfig(0)
	cfg := testHistoryConfig(60, 3)
	cfg.End, cfg.Devices = day.AddDate(0, 0, 1).Add(3*time.Hour), &dc
	hist, _ := historyDays(newTestHistory(t, cfg))
	detections := func(cams []ingest.CameraEventWire) (n, bursts int) {
		for _, e := range cams {
			if e.Type != device.HeartbeatType && localDay(t, e.OccurredAt) == day.Format(time.DateOnly) {
				n++
				if strings.Contains(e.EventID, "-burst-") {
					bursts++
				}
			}
		}
		return n, bursts
	}
	var want, wantBursts int
	for _, d := range hist {
		n, b := detections(d.cameras)
		want, wantBursts = want+n, wantBursts+b
	}
	live := func(pace Pace) int {
		c := dc
		c.Pace, c.Seed = pace, 5
		d := newTestDevices(t, c)
		b := simulate(d.world, day, day.AddDate(0, 0, 1).Add(-time.Second), 20*time.Second, nil)
		n, _ := detections(b.cams)
		return n
	}
	field, demo := live(PaceField), live(PaceDemo)
	t.Logf("a day's camera detections: history %d (%d in bursts), field pace %d, demo pace %d", want, wantBursts, field, demo)
	if wantBursts < 150 {
		t.Errorf("the history's hot spots burst %d times a day, want the live simulator's rush-hour bursts", wantBursts)
	}
	if r := float64(field) / float64(want); r < 0.85 || r > 1.15 {
		t.Errorf("%d camera detections on a day at field pace, the history has %d (×%.2f): want the same within 15%%", field, want, r)
	}
	if demo < 20*want {
		t.Errorf("%d camera detections on a day at demo pace, want the demo's many times the history's %d", demo, want)
	}
}

// drain takes every event and state out of c, as JSON sorted by id and
// time, with the times each dossier was received.
func drain(t *testing.T, c *Carry) (events, states []string, received map[string]time.Time) {
	t.Helper()
	far := c.End().AddDate(1, 0, 0)
	received = map[string]time.Time{}
	for _, it := range c.dossierEvents(far, nil) {
		b, _ := json.Marshal(it.ev)
		events = append(events, string(b))
		received[string(b)] = parseTime(t, it.ev.ReceivedAt)
	}
	for _, f := range c.feedbackStates(far, nil) {
		b, _ := json.Marshal(f)
		states = append(states, string(b))
		received[string(b)] = parseTime(t, f.ReceivedAt)
	}
	slices.Sort(events)
	slices.Sort(states)
	return events, states, received
}

// A node that finds the history stored by an earlier run carries it on
// with CarryOn: stored up to the end, it is the Carry Write returned;
// stored up to an earlier time (the node was away since), it leaves out
// what was received in between, which the database never got; with
// nothing stored, it holds only what comes from the end on.
func TestCarryOnIsTheCarryOfAStoredHistory(t *testing.T) {
	cfg := testHistoryConfig(30, 12)
	cfg.Rate = 2
	h := newTestHistory(t, cfg)
	end := h.End()
	_, written := h.Records()
	wantEvents, wantStates, received := drain(t, written)
	if len(wantEvents) < 500 || len(wantStates) < 20 {
		t.Fatalf("the history carries %d events and %d states, want more to compare", len(wantEvents), len(wantStates))
	}
	gotEvents, gotStates, _ := drain(t, h.CarryOn(end))
	if !slices.Equal(gotEvents, wantEvents) || !slices.Equal(gotStates, wantStates) {
		t.Fatalf("CarryOn(End): %d events and %d states, Write's carry %d and %d: want the same", len(gotEvents), len(gotStates), len(wantEvents), len(wantStates))
	}

	filter := func(keep func(time.Time) bool, recs []string) []string {
		var out []string
		for _, r := range recs {
			if keep(received[r]) {
				out = append(out, r)
			}
		}
		return out
	}
	for _, stored := range []time.Time{end.Add(-30 * time.Hour), end.AddDate(0, 0, -5), {}} {
		keep := func(r time.Time) bool { return !stored.IsZero() && !r.After(stored) || !r.Before(end) }
		gotEvents, gotStates, _ := drain(t, h.CarryOn(stored))
		if want := filter(keep, wantEvents); !slices.Equal(gotEvents, want) {
			t.Errorf("CarryOn(%s): %d events, want the %d of dossiers received by then or from the end on", stored, len(gotEvents), len(want))
		}
		if want := filter(keep, wantStates); !slices.Equal(gotStates, want) {
			t.Errorf("CarryOn(%s): %d feedback states, want the %d of items received by then or from the end on", stored, len(gotStates), len(want))
		}
	}
}

// dailyMaxima runs a device simulator of pace for days from start, a
// step an hour, and returns each local day's highest PM2.5 and water level.
func dailyMaxima(t *testing.T, pace Pace, start time.Time, days int) (pm25, water []float64) {
	t.Helper()
	c := testDevicesConfig(0)
	c.Cameras, c.Pace, c.Seed = 4, pace, 9
	w := newTestDevices(t, c).world
	pm25, water = make([]float64, days), make([]float64, days)
	var b deviceBatch
	for now := start; now.Before(start.AddDate(0, 0, days)); now = now.Add(time.Hour) {
		w.advance(now, &b)
		for _, r := range b.reads {
			day := int(dayKey(parseTime(t, r.ObservedAt).In(ict)) - dayKey(start))
			switch {
			case day < 0 || day >= days:
			case r.Kind == "pm25":
				pm25[day] = max(pm25[day], *r.Value)
			case r.Kind == "water_level":
				water[day] = max(water[day], *r.Value)
			}
		}
		b.reset()
	}
	return pm25, water
}

// At field pace the sensors have the history's weather: haze on some days
// of the dry season and floods on some of the rainy one, lasting hours, so
// that a day's highest PM2.5 and water level are like the history's days
// (at most 45 µg/m³ and 1.1 m without them), not the demo's episode every
// half hour, which makes every day look like the worst of the history.
func TestFieldPaceSensorsHaveTheHistorysWeather(t *testing.T) {
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, ict) // the rainy season
	const days = 10
	pm25, water := dailyMaxima(t, PaceField, start, days)
	hazy, flooded := 0, 0
	for i := range days {
		if pm25[i] > 45 {
			hazy++
		}
		if water[i] > 1.1 {
			flooded++
		}
		if pm25[i] > 125 || water[i] > 2 || pm25[i] < 15 || water[i] < 0.6 {
			t.Errorf("day %d: PM2.5 up to %v, water up to %v m: want the history's ranges", i, pm25[i], water[i])
		}
	}
	t.Logf("field pace, ten days of June: PM2.5 maxima %v, water maxima %v", pm25, water)
	// The history: haze one day in twelve, a flood one in eight.
	if hazy > 4 || flooded > 5 {
		t.Errorf("%d hazy and %d flooded days of %d at field pace, want about one of each, as in the history", hazy, flooded, days)
	}
	demoPM, demoWater := dailyMaxima(t, PaceDemo, start, 2)
	if demoPM[1] < 57 || demoWater[1] < 1.5 {
		t.Errorf("a day at demo pace: PM2.5 up to %v, water up to %v m, want the demo's episodes", demoPM[1], demoWater[1])
	}
}
