package simulator_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/simulator"
)

var ict = time.FixedZone("ICT", 7*60*60)

type fakeAreas map[string]bool

func (a fakeAreas) HasUnit(h, code string) bool { return h == "vn-2025" && a[code] }
func (a fakeAreas) HasHierarchy(h string) bool  { return h == "vn-2025" }

// Attribute is never reached: the simulator files under the current hierarchy only.
func (a fakeAreas) Attribute(from, to, code string, at *orb.Point) (geo.Attribution, error) {
	return geo.Attribution{}, geo.ErrNoCrosswalk
}

// stepClock is the simulated clock: every reading by the simulator moves
// it on by step. Tied to the simulator's progress rather than to real time,
// it keeps the tests deterministic on a loaded machine.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// Peek reads the clock without moving it.
func (c *stepClock) Peek() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// collector is an ingest endpoint that validates every record like the
// server does and keeps what it accepted, in arrival order. answer, calls,
// requests and when concern dossiers; feedback is always taken.
type collector struct {
	t      *testing.T
	rules  ingest.Rules
	now    func() time.Time
	answer func(call int) (status int, retryAfter string) // nil: always 202

	mu       sync.Mutex
	calls    int
	requests [][]string // event ids per request, answered or not
	when     []time.Time
	events   []ingest.DossierEvent
	feedback []ingest.FeedbackRecord
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := c.t
	if r.URL.Path == "/api/v1/ingest/feedback" {
		c.serveFeedback(w, r)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/v1/ingest/dossiers" {
		t.Errorf("got %s %s, want POST /api/v1/ingest/dossiers", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Content-Type"); got != "application/x-ndjson" {
		t.Errorf("got Content-Type %q, want application/x-ndjson", got)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer tok" {
		t.Errorf("got Authorization %q, want Bearer tok", got)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client gave up
	}
	var evs []ingest.DossierEvent
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var e ingest.DossierEvent
		if err := dec.Decode(&e); err != nil {
			t.Errorf("decode %q: %v", sc.Text(), err)
			continue
		}
		if _, err := c.rules.Validate(e, c.now()); err != nil {
			t.Errorf("invalid record %+v: %v", e, err)
		}
		evs = append(evs, e)
		ids = append(ids, e.EventID)
	}
	c.mu.Lock()
	c.calls++
	call := c.calls
	c.requests = append(c.requests, ids)
	c.when = append(c.when, time.Now())
	status, retry := http.StatusAccepted, ""
	if c.answer != nil {
		status, retry = c.answer(call)
	}
	if status == http.StatusAccepted {
		c.events = append(c.events, evs...)
	}
	c.mu.Unlock()
	if retry != "" {
		w.Header().Set("Retry-After", retry)
	}
	w.WriteHeader(status)
	if status == http.StatusAccepted {
		json.NewEncoder(w).Encode(map[string]any{"accepted": len(evs), "rejected": 0, "errors": []any{}})
	}
}

// run feeds a collector until the clock reaches end and returns it once the
// simulator and the server have stopped.
func run(t *testing.T, cfg simulator.Config, clock *stepClock, end time.Time, answer func(int) (int, string)) (*collector, *prometheus.Registry) {
	t.Helper()
	areas := fakeAreas{}
	for _, a := range cfg.Areas {
		areas[a] = true
	}
	if cfg.ProvinceArea != "" {
		areas[cfg.ProvinceArea] = true
	}
	c := &collector{
		t:      t,
		rules:  ingest.Rules{Hierarchy: "vn-2025", Areas: areas, MaxFuture: 5 * time.Minute},
		now:    clock.Peek,
		answer: answer,
	}
	srv := httptest.NewServer(c)
	cfg.BaseURL = srv.URL + "/"
	cfg.Token = "tok"
	cfg.Now = clock.Now
	reg := prometheus.NewRegistry()
	sim, err := simulator.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	for deadline := time.Now().Add(15 * time.Second); clock.Peek().Before(end); {
		if time.Now().After(deadline) {
			t.Errorf("simulated clock at %s after 15s, want %s", clock.Peek(), end)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	srv.Close()
	return c, reg
}

func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func communes(n int) []string {
	var out []string
	for i := range n {
		out = append(out, strconv.Itoa(26700+3*i))
	}
	return out
}

var next = map[string][]string{
	"received":             {"processing", "withdrawn"},
	"processing":           {"supplement_requested", "resolved", "rejected", "withdrawn"},
	"supplement_requested": {"processing"},
	"resolved":             {"returned"},
}

var dossierIDRE = regexp.MustCompile(`^000\.00\.79\.S[A-Z2-7]{5}-\d{6}-\d{4,}$`)

func TestProvinceThroughIngest(t *testing.T) {
	// Friday 15:00: two office hours, then the evening.
	start := time.Date(2025, 11, 21, 15, 0, 0, 0, ict)
	cfg := simulator.Config{
		Rate:          2,
		Areas:         communes(40),
		ProvinceArea:  "79",
		Location:      ict,
		Seed:          42,
		FlushInterval: 10 * time.Millisecond,
	}
	// A simulated minute per 10ms tick.
	c, reg := run(t, cfg, &stepClock{t: start, step: time.Minute}, start.Add(220*time.Minute), nil)
	evs := c.events
	if len(evs) < 5000 {
		t.Fatalf("got %d events, want at least 5000", len(evs))
	}

	parse := func(s string) time.Time { t.Helper(); return parseTime(t, s) }
	share := func(name string, num, den int, want, tol float64) {
		t.Helper()
		checkShare(t, name, num, den, want, tol)
	}

	allowed := fakeAreas{"79": true}
	for _, a := range cfg.Areas {
		allowed[a] = true
	}
	seen := map[string]bool{}
	byDossier := map[string][]ingest.DossierEvent{}
	var order []string
	for _, e := range evs {
		if seen[e.EventID] {
			t.Errorf("event_id %s arrived twice, want unique ids", e.EventID)
		}
		seen[e.EventID] = true
		if !allowed[e.AreaCode] {
			t.Errorf("area_code %q, want one of the configured areas", e.AreaCode)
		}
		if byDossier[e.DossierID] == nil {
			order = append(order, e.DossierID)
		}
		byDossier[e.DossierID] = append(byDossier[e.DossierID], e)
	}

	var online, full, provincial, resolved, onTime, late int
	for _, id := range order {
		es := byDossier[id]
		first := es[0]
		if !dossierIDRE.MatchString(id) {
			t.Errorf("dossier_id %q, want shaped like 000.00.79.SXXXXX-yyMMdd-NNNN", id)
		}
		if first.Status != "received" || first.ReceivedAt != first.OccurredAt {
			t.Errorf("%s: first event %s at %s received %s, want received with received_at = occurred_at",
				id, first.Status, first.OccurredAt, first.ReceivedAt)
		}
		if first.Channel == "online" {
			online++
			if first.OnlineLevel == "full" {
				full++
			}
		} else if first.OnlineLevel != "" {
			t.Errorf("%s: %s dossier has online_level %q, want none", id, first.Channel, first.OnlineLevel)
		}
		if first.AreaCode == "79" {
			provincial++
		}
		for i, e := range es {
			if e.ReceivedAt != first.ReceivedAt || e.DueAt != first.DueAt || e.Channel != first.Channel ||
				e.AreaCode != first.AreaCode || e.Digitized != first.Digitized || e.PaidOnline != first.PaidOnline {
				t.Errorf("%s: event %d %+v differs from the first %+v in a per-dossier field", id, i, e, first)
			}
			if i == 0 {
				continue
			}
			prev := es[i-1]
			if !slices.Contains(next[prev.Status], e.Status) {
				t.Errorf("%s: %s after %s, want one of %v", id, e.Status, prev.Status, next[prev.Status])
			}
			if parse(e.OccurredAt).Before(parse(prev.OccurredAt)) {
				t.Errorf("%s: %s at %s before %s at %s", id, e.Status, e.OccurredAt, prev.Status, prev.OccurredAt)
			}
			if e.Status == "resolved" {
				resolved++
				if parse(e.OccurredAt).After(parse(e.DueAt)) {
					late++
				} else {
					onTime++
				}
			}
		}
	}
	share("online share", online, len(order), 0.985, 0.01)
	share("full online share", full, online, 0.80, 0.04)
	share("provincial share", provincial, len(order), 0.03, 0.015)
	share("on-time share of resolved", onTime, resolved, 0.95, 0.025)
	if late == 0 {
		t.Errorf("got no dossier resolved after its due time, want some overdue")
	}

	// Rhythm: new dossiers per simulated minute in office hours and after.
	intake := func(from, to time.Time) float64 {
		t.Helper()
		n := 0
		for _, id := range order {
			if ts := parse(byDossier[id][0].OccurredAt); !ts.Before(from) && ts.Before(to) {
				n++
			}
		}
		return float64(n) / to.Sub(from).Minutes()
	}
	at := func(h, m int) time.Time { return time.Date(2025, 11, 21, h, m, 0, 0, ict) }
	office, evening := intake(at(15, 0), at(17, 0)), intake(at(17, 0), at(18, 30))
	if office < 1.8*evening || evening == 0 {
		t.Errorf("got intake %.1f/min in office hours and %.1f/min after, want the first well above the second and both above zero", office, evening)
	}
	// Once the pipeline is full the total is about Rate.
	n := 0
	for _, e := range evs {
		if ts := parse(e.OccurredAt); !ts.Before(at(16, 0)) && ts.Before(at(17, 0)) {
			n++
		}
	}
	if got := float64(n) / 3600; math.Abs(got-cfg.Rate) > 0.25*cfg.Rate {
		t.Errorf("got %.2f events/s from 16:00 to 17:00, want about %.1f", got, cfg.Rate)
	}

	if got := metric(t, reg, "ioc_simulator_events_sent_total"); got == 0 || got > float64(len(evs)) {
		t.Errorf("got events_sent_total %v, want between 1 and %d", got, len(evs))
	}
	for _, name := range []string{"ioc_simulator_events_rejected_total", "ioc_simulator_post_errors_total"} {
		if got := metric(t, reg, name); got != 0 {
			t.Errorf("got %s %v, want 0", name, got)
		}
	}
	if got := metric(t, reg, "ioc_simulator_open_dossiers"); got <= 0 || got > 5000 {
		t.Errorf("got open_dossiers %v, want between 1 and 5000", got)
	}
}

var eventIDRE = regexp.MustCompile(`^sim-[0-9a-f]{8}-(\d+)-(\d+)$`)

func TestResendsAfterRetryAfter(t *testing.T) {
	start := time.Date(2025, 11, 24, 9, 0, 0, 0, ict) // Monday morning
	cfg := simulator.Config{
		Rate:          2,
		Areas:         communes(5),
		Location:      ict,
		Seed:          7,
		FlushInterval: 20 * time.Millisecond,
	}
	clock := &stepClock{t: start, step: 2 * time.Second}
	c, reg := run(t, cfg, clock, start.Add(4*time.Minute), func(call int) (int, string) {
		if call == 1 {
			return http.StatusServiceUnavailable, "1"
		}
		return http.StatusAccepted, ""
	})
	if len(c.requests) < 3 {
		t.Fatalf("got %d requests, want at least 3", len(c.requests))
	}
	if got, want := c.requests[1], c.requests[0]; !slices.Equal(got, want) {
		t.Errorf("second request carried %d ids %.80v, want the refused batch again: %d ids %.80v", len(got), got, len(want), want)
	}
	if gap := c.when[1].Sub(c.when[0]); gap < 900*time.Millisecond {
		t.Errorf("resent after %s, want Retry-After's 1s honoured", gap)
	}

	// Nothing lost: dossiers and their events are numbered without gaps.
	events := map[int][]int{}
	maxDossier := 0
	for _, e := range c.events {
		m := eventIDRE.FindStringSubmatch(e.EventID)
		if m == nil {
			t.Fatalf("event_id %q, want sim-<run>-<dossier>-<event>", e.EventID)
		}
		d, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		events[d] = append(events[d], n)
		maxDossier = max(maxDossier, d)
	}
	if len(events) != maxDossier {
		t.Errorf("got %d dossiers numbered up to %d, want no gaps", len(events), maxDossier)
	}
	for d, ns := range events {
		for i, n := range ns {
			if n != i+1 {
				t.Errorf("dossier %d: events numbered %v, want 1, 2, … in order", d, ns)
				break
			}
		}
	}
	if got := metric(t, reg, "ioc_simulator_post_errors_total"); got != 1 {
		t.Errorf("got post_errors_total %v, want 1", got)
	}
}

func TestRefusedBatchIsDropped(t *testing.T) {
	f := func(status int, wantRequests func(int) bool) {
		t.Helper()
		start := time.Date(2025, 11, 24, 9, 0, 0, 0, ict)
		cfg := simulator.Config{
			Rate: 2, Areas: communes(3), Location: ict, Seed: 3,
			FlushInterval: 20 * time.Millisecond,
		}
		clock := &stepClock{t: start, step: 2 * time.Second}
		c, reg := run(t, cfg, clock, start.Add(time.Minute), func(int) (int, string) { return status, "" })
		if !wantRequests(len(c.requests)) {
			t.Errorf("status %d: got %d requests in 30 flushes", status, len(c.requests))
		}
		if len(c.requests) > 1 && slices.Equal(c.requests[0], c.requests[1]) {
			t.Errorf("status %d: the refused batch was resent, want it dropped", status)
		}
		// The last answer may have been cut off by the end of the run.
		refused, last := 0, 0
		for _, ids := range c.requests {
			refused += len(ids)
			last = len(ids)
		}
		if got := metric(t, reg, "ioc_simulator_events_rejected_total"); got > float64(refused) || got < float64(refused-last) {
			t.Errorf("status %d: got events_rejected_total %v, want %d (or %d)", status, got, refused, refused-last)
		}
		if got, n := metric(t, reg, "ioc_simulator_post_errors_total"), len(c.requests); got > float64(n) || got < float64(n-1) {
			t.Errorf("status %d: got post_errors_total %v, want %d (or %d)", status, got, n, n-1)
		}
	}
	f(http.StatusBadRequest, func(n int) bool { return n >= 3 })
	// A bad token is not retried at the flush rate.
	f(http.StatusUnauthorized, func(n int) bool { return n == 1 })
}

func TestNewExplainsBadConfig(t *testing.T) {
	ok := simulator.Config{BaseURL: "http://127.0.0.1:8080", Token: "tok", Rate: 1, Areas: []string{"26734"}}
	f := func(name string, mutate func(*simulator.Config), want string) {
		t.Helper()
		cfg := ok
		mutate(&cfg)
		_, err := simulator.New(cfg, nil, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got error %v, want one mentioning %q", name, err, want)
		}
	}
	f("no url", func(c *simulator.Config) { c.BaseURL = "" }, "BaseURL is required")
	f("relative url", func(c *simulator.Config) { c.BaseURL = "localhost:8080" }, "absolute http")
	f("no token", func(c *simulator.Config) { c.Token = " " }, "Token is required")
	f("zero rate", func(c *simulator.Config) { c.Rate = 0 }, "Rate 0 must be above 0")
	f("nan rate", func(c *simulator.Config) { c.Rate = math.NaN() }, "must be above 0")
	f("no areas", func(c *simulator.Config) { c.Areas = nil }, "Areas is empty")
	f("blank area", func(c *simulator.Config) { c.Areas = []string{"26734", ""} }, "Areas[1] is empty")
	f("twice", func(c *simulator.Config) { c.Areas = []string{"26734", "26734"} }, "listed twice")
	f("negative flush", func(c *simulator.Config) { c.FlushInterval = -time.Second }, "negative")

	if _, err := simulator.New(ok, nil, nil); err != nil {
		t.Errorf("valid config: got %v, want no error", err)
	}
	reg := prometheus.NewRegistry()
	if _, err := simulator.New(ok, nil, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := simulator.New(ok, nil, reg); err == nil {
		t.Errorf("second simulator on one registry: got no error, want a registration error")
	}
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// checkShare fails t unless num/den is within tol of want.
func checkShare(t *testing.T, name string, num, den int, want, tol float64) {
	t.Helper()
	if den == 0 {
		t.Errorf("%s: no sample", name)
		return
	}
	if got := float64(num) / float64(den); math.Abs(got-want) > tol {
		t.Errorf("%s: got %.4f (%d/%d), want %.3f ± %.3f", name, got, num, den, want, tol)
	}
}
