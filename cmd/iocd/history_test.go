package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/testenv"
	"github.com/openioc/ioc/simulator"
)

type seriesAnswer struct {
	Points []struct {
		T           string   `json:"t"`
		Value       *float64 `json:"value"`
		Numerator   *float64 `json:"numerator"`
		Denominator *float64 `json:"denominator"`
		Previous    *struct {
			Value *float64 `json:"value"`
		} `json:"previous"`
	} `json:"points"`
}

func (n *node) series(kpi, query string) seriesAnswer {
	n.t.Helper()
	var s seriesAnswer
	if code := n.get("/api/v1/kpis/"+kpi+"/series?area=79&"+query, adminToken, &s); code != 200 || len(s.Points) == 0 {
		n.t.Fatalf("series of %s (%s): status %d, %d points", kpi, query, code, len(s.Points))
	}
	return s
}

func value(v *float64) float64 {
	if v == nil {
		return 0
	}
	return *v
}

// historyCounts are the simulated history's records in the database:
// those stamped before its end, so that the live simulator's are left out.
func historyCounts(t *testing.T, db string, end time.Time) simulator.HistoryCounts {
	t.Helper()
	store := testenv.StoreOn(t, db)
	count := func(q string) int {
		t.Helper()
		var n, distinct uint64
		if err := store.Conn().QueryRow(context.Background(), fmt.Sprintf(q, db), end.Unix()).Scan(&n, &distinct); err != nil {
			t.Fatal(err)
		}
		if n != distinct {
			t.Errorf("%d records stored, %d distinct: want each once (%s)", n, distinct, q)
		}
		return int(n)
	}
	return simulator.HistoryCounts{
		DossierEvents: count(`SELECT count(), uniqExact(event_id) FROM %s.dossier_history WHERE event_id LIKE 'hist-%%' AND occurred_at < toDateTime(?)`),
		Feedback:      count(`SELECT count(), uniqExact(feedback_id) FROM %s.feedback FINAL WHERE feedback_id LIKE '1022-79-H%%' AND received_at < toDateTime(?)`),
		CameraEvents:  count(`SELECT count(), uniqExact(event_id) FROM %s.camera_events WHERE event_id LIKE 'hist-%%' AND occurred_at < toDateTime(?)`),
		Readings: count(`SELECT count(), uniqExact(sensor_id, kind, observed_at) FROM %s.sensor_readings
			WHERE (sensor_id LIKE 'AQ-%%' OR sensor_id LIKE 'WL-%%') AND observed_at < toDateTime(?)`),
	}
}

// With the simulator on, a node that finds no dossier event writes the
// simulated province's past before it is ready, so that charts, period
// comparisons and the scoreboard have months to show; a node that finds
// some writes none. The clock is injected and frozen, so the live
// simulators add nothing and the history is the one its end makes.
func TestSimulatorBackfillsHistoryIntoAnEmptyDatabase(t *testing.T) {
	runsBesideOthers(t)
	loc, err := time.LoadLocation("Asia/Ho_Chi_Minh")
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 6, 3, 10, 30, 0, 0, loc) // a Wednesday
	cfg := testConfig(t)
	cfg.Simulate, cfg.SimulateArea, cfg.SimulateHistoryDays, cfg.SimulateDevices = 2, "79", 34, true // the whole of May
	cfg.now = func() time.Time { return end }
	n := startNode(t, cfg) // ready once the history is written

	// Every day has dossiers; weekdays more than weekends.
	daily := n.series("dossiers_received", "from=2026-04-30&to=2026-06-02&step=day")
	if len(daily.Points) != 34 {
		t.Fatalf("%d daily points, want 34", len(daily.Points))
	}
	var weekday, weekend []float64
	for _, p := range daily.Points {
		v := value(p.Value)
		if v == 0 {
			t.Errorf("no dossier received on %s", p.T)
		}
		day, _ := time.Parse(time.RFC3339, p.T)
		switch day.Weekday() {
		case time.Saturday, time.Sunday:
			weekend = append(weekend, v)
		default:
			weekday = append(weekday, v)
		}
	}
	mean := func(vs []float64) float64 {
		s := 0.0
		for _, v := range vs {
			s += v
		}
		return s / float64(len(vs))
	}
	if mean(weekday) < 2*mean(weekend) {
		t.Errorf("%.0f dossiers a weekday, %.0f a weekend day: want weekends quiet", mean(weekday), mean(weekend))
	}

	// This month against the last: both sides.
	month := n.series("dossiers_received", "from=2026-06-01&to=2026-06-03&step=month&compare=previous")
	if p := month.Points[0]; value(p.Value) == 0 || p.Previous == nil || value(p.Previous.Value) == 0 {
		t.Errorf("June so far against May: %+v, want both months with dossiers", p)
	}

	// Resolutions in time and late.
	may := n.series("on_time_rate", "from=2026-05-01&to=2026-05-31&step=month").Points[0]
	if num, den := value(may.Numerator), value(may.Denominator); num == 0 || num >= den {
		t.Errorf("May: %v of %v resolutions in time, want some in time and some late", num, den)
	}

	// Environment charts have the whole range too.
	for _, p := range n.series("pm25_avg", "from=2026-04-30&to=2026-06-02&step=day").Points {
		if p.Value == nil {
			t.Errorf("no PM2.5 on %s", p.T)
		}
	}
	for _, p := range n.series("camera_events", "from=2026-04-30&to=2026-06-02&step=day").Points {
		if value(p.Value) == 0 {
			t.Errorf("no camera event on %s", p.T)
		}
	}

	// The 766 scoreboard answers for the province.
	var board struct {
		Total struct {
			Points float64 `json:"points"`
		} `json:"total"`
		Groups []struct {
			ID     string  `json:"id"`
			Points float64 `json:"points"`
		} `json:"groups"`
	}
	if code := n.get("/api/v1/scoreboard?area=79&period=2026-05", adminToken, &board); code != 200 || board.Total.Points < 50 {
		t.Errorf("scoreboard of 79 for May 2026: status %d, %+v; want points from a month of dossiers and feedback", code, board)
	}
	for _, g := range board.Groups {
		if g.ID != "publicity" && g.Points == 0 { // publicity is not measured from ingested data
			t.Errorf("scoreboard group %s scored 0", g.ID)
		}
	}

	// What the generator made is what is stored, each record once.
	h, err := n.history(cfg, end)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := h.Records()
	got := historyCounts(t, cfg.ClickHouse.Database, end)
	if got != want {
		t.Errorf("stored %+v, the history holds %+v", got, want)
	}
	if want.DossierEvents < 27000 || want.Feedback < 270 || want.CameraEvents < 27000 || want.Readings < 68000 {
		t.Errorf("the history holds %+v, want 34 days of a province at rate 2", want)
	}

	// A second start finds dossier events and writes no history, not even
	// one ending later. (At demo pace: at field pace the live simulator
	// would carry the stored history on over the five days, as
	// TestFieldPaceCarriesTheStoredHistoryOn shows.)
	n.stop()
	cfg.now = func() time.Time { return end.AddDate(0, 0, 5) }
	cfg.SimulatePace = simulator.PaceDemo
	startNode(t, cfg)
	if again := historyCounts(t, cfg.ClickHouse.Database, end.AddDate(0, 0, 5)); again != got {
		t.Errorf("after a second start: %+v stored, want the first start's %+v", again, got)
	}
}

// testClock is a simulators' clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// At field pace, the default, the live simulator is the simulated history
// carried on: once the node has written the history, the hours that pass
// bring what a history written up to then would hold, no more (not the
// demo's hundreds of times more); a node restarted later finds the history
// stored, sends first what it holds for the time the node was away, and
// goes on. The clock is injected and moved by the test.
func TestFieldPaceCarriesTheStoredHistoryOn(t *testing.T) {
	runsBesideOthers(t)
	loc, err := time.LoadLocation("Asia/Ho_Chi_Minh")
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 6, 19, 15, 20, 0, 0, loc) // a Friday afternoon
	clock := &testClock{t: end}
	cfg := testConfig(t)
	cfg.Simulate, cfg.SimulateArea, cfg.SimulateHistoryDays, cfg.SimulateDevices = 2, "79", 3, false
	cfg.now = clock.now
	db := cfg.ClickHouse.Database
	n := startNode(t, cfg)
	if cfg.SimulatePace != simulator.PaceField {
		t.Fatalf("IOC_SIMULATE_PACE defaults to %q, want field", cfg.SimulatePace)
	}

	// stored waits until what is stored before at is what the history
	// written up to at holds.
	stored := func(at time.Time) simulator.HistoryCounts {
		t.Helper()
		later := cfg
		later.SimulateHistoryDays = cfg.SimulateHistoryDays + localDay(at, loc) - localDay(end, loc)
		h, err := n.history(later, at)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := h.Records()
		var checked time.Time
		var got simulator.HistoryCounts
		testenv.Eventually(t, time.Minute, func() (bool, string) {
			if time.Since(checked) >= 200*time.Millisecond { // ask ClickHouse five times a second
				checked, got = time.Now(), historyCounts(t, db, at)
			}
			return got == want, fmt.Sprintf("stored before %s: %+v, a history written up to then holds %+v", at.Format(time.RFC3339), got, want)
		})
		return want
	}
	first := stored(end)

	// The clock moves past midnight into Saturday.
	later := end.Add(20 * time.Hour)
	clock.set(later)
	then := stored(later)
	if then.DossierEvents <= first.DossierEvents || then.DossierEvents > first.DossierEvents+2000 {
		t.Errorf("%d dossier events in the 20 hours after the history, want those of the history's volume (%d before)",
			then.DossierEvents-first.DossierEvents, first.DossierEvents)
	}

	// Stopped, then started again a day and a half later: the gap is filled.
	n.stop()
	clock.set(later.Add(36 * time.Hour))
	startNode(t, cfg)
	stored(later.Add(36 * time.Hour))

	var other uint64
	store := testenv.StoreOn(t, db)
	if err := store.Conn().QueryRow(context.Background(), `SELECT count() FROM `+db+`.dossier_history WHERE event_id NOT LIKE 'hist-%'`).Scan(&other); err != nil {
		t.Fatal(err)
	}
	if other != 0 {
		t.Errorf("%d dossier events not of the history: want none at field pace", other)
	}
}

// IOC_SIMULATE_PACE is field unless demo is asked for, and anything else
// is refused with the two choices.
func TestSimulatePaceConfig(t *testing.T) {
	base := []string{"-admin-token", "0123456789abcdef"}
	for args, want := range map[string]simulator.Pace{"": simulator.PaceField, "field": simulator.PaceField, "demo": simulator.PaceDemo} {
		a := base
		if args != "" {
			a = append(a, "-simulate-pace", args)
		}
		if cfg, err := parseServeConfig(a); err != nil || cfg.SimulatePace != want {
			t.Errorf("IOC_SIMULATE_PACE=%q: got %q, %v; want %q", args, cfg.SimulatePace, err, want)
		}
	}
	_, err := parseServeConfig(append(base, "-simulate-pace", "fast"))
	if err == nil || !strings.Contains(err.Error(), "IOC_SIMULATE_PACE") || !strings.Contains(err.Error(), `"field"`) || !strings.Contains(err.Error(), `"demo"`) {
		t.Errorf("IOC_SIMULATE_PACE=fast: got %v, want a refusal naming the variable and both paces", err)
	}
}

// history is the simulated history the node of cfg writes at end.
func (n *node) history(cfg serveConfig, end time.Time) (*simulator.History, error) {
	units, err := loadUnits(cfg.GeoDir)
	if err != nil {
		return nil, err
	}
	h, _ := units.Hierarchy(cfg.Hierarchy)
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, err
	}
	hc, err := historyConfig(cfg, h, loc, end)
	if err != nil {
		return nil, err
	}
	return simulator.NewHistory(hc)
}
