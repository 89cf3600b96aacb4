package simulator

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// departmentAPI stands in for the server's dataset endpoints: what the
// feeder decides to send is the logic under test; the endpoints have
// their own tests against ClickHouse.
type departmentAPI struct {
	mu      sync.Mutex
	latest  map[string]string           // dataset → latest period received
	periods map[string][]string         // dataset → periods received, in order
	rows    map[string][]map[string]any // dataset → rows received
}

func (a *departmentAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer tok" {
		http.Error(w, "no token", http.StatusUnauthorized)
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/api/v1/datasets/health" {
		var feeds []feed
		for _, id := range []string{"enrolment", "enterprises", "population", "not_simulated"} {
			feeds = append(feeds, feed{Dataset: id, LatestPeriod: a.latest[id]})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"datasets": feeds})
		return
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/api/v1/datasets/")
	id, ok2 := strings.CutSuffix(id, "/values")
	if !ok || !ok2 || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-ndjson" {
		http.NotFound(w, r)
		return
	}
	period := simulated[id].period
	sc := bufio.NewScanner(r.Body)
	n := 0
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p := row[period].(string)
		if !slices.Contains(a.periods[id], p) {
			a.periods[id] = append(a.periods[id], p)
		}
		if p > a.latest[id] {
			a.latest[id] = p
		}
		a.rows[id] = append(a.rows[id], row)
		n++
	}
	_ = json.NewEncoder(w).Encode(map[string]int{"stored": n, "refused": 0})
}

// TestDatasetsFeedEachEndedPeriodOnceAndResume: each period goes once it
// has ended, for every unit; a step with nothing new sends nothing; the
// next year's periods go when they end; and the figures hang together.
func TestDatasetsFeedEachEndedPeriodOnceAndResume(t *testing.T) {
	api := &departmentAPI{latest: map[string]string{}, periods: map[string][]string{}, rows: map[string][]map[string]any{}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	hcm := time.FixedZone("ICT", 7*3600)
	now := time.Date(2026, 12, 3, 0, 30, 0, 0, hcm) // 2 December in UTC: the zone decides
	s, err := NewDatasets(DatasetsConfig{BaseURL: srv.URL, Token: "tok", Units: []string{"26740", "26743"}, Location: hcm,
		Now: func() time.Time { return now }, Years: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Step(ctx); err != nil { // nothing new has ended
		t.Fatal(err)
	}
	months := []string{"2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"}
	want := map[string][]string{"population": {"2025"}, "enrolment": {"2025"}, "enterprises": months}
	for id, periods := range want {
		if !slices.Equal(api.periods[id], periods) || len(api.rows[id]) != 2*len(periods) {
			t.Errorf("%s: sent %v in %d rows, want %v for both communes once", id, api.periods[id], len(api.rows[id]), periods)
		}
	}
	if _, ok := api.rows["not_simulated"]; ok {
		t.Error("a dataset the simulator does not know was fed")
	}
	now = time.Date(2027, 1, 1, 0, 5, 0, 0, hcm)
	if err := s.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if api.latest["population"] != "2026" || api.latest["enterprises"] != "2026-12" || len(api.rows["enterprises"]) != 2*13 {
		t.Errorf("a new year: latest %v, %d enterprise rows; want 2026 and 2026-12 added", api.latest, len(api.rows["enterprises"]))
	}
	for _, row := range api.rows["enrolment"] {
		pop := residents(row["Mã xã"].(string), 2025)
		if p := row["Học sinh"].(float64); p <= 0 || p >= pop/4 || row["Giáo viên"].(float64) <= 0 {
			t.Errorf("enrolment %v does not follow the commune's %v residents", row, pop)
		}
	}
}
