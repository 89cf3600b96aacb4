package simulator_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/openioc/ioc/simulator"
)

var ict = time.FixedZone("ICT", 7*60*60)

type fakeAreas map[string]bool

func (a fakeAreas) HasUnit(h, code string) bool { return h == "vn-2025" && a[code] }
func (a fakeAreas) HasHierarchy(h string) bool  { return h == "vn-2025" }

// Attribute is never reached: the simulator files under the current hierarchy only.
func (a fakeAreas) Attribute(from, to, code string, at *orb.Point) (geo.Attribution, error) {
	return geo.Attribution{}, geo.ErrNoCrosswalk
}

// simClock is the simulated time the test has stepped to; the collector
// validates against it, as the server does against its clock.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *simClock) Now() time.Time {
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
	// unknown lists complaints that named a dossier the collector had not
	// taken when the complaint arrived.
	unknown []string
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

// harness is a simulator posting to a collector of its own, driven step by
// step by the test, so that what it sends depends on the seed and the
// simulated times alone, never on how fast the machine is.
type harness struct {
	t     *testing.T
	c     *collector
	sim   *simulator.Simulator
	reg   *prometheus.Registry
	clock *simClock
}

func newHarness(t *testing.T, cfg simulator.Config, answer func(int) (int, string)) *harness {
	t.Helper()
	areas := fakeAreas{}
	for _, a := range cfg.Areas {
		areas[a] = true
	}
	if cfg.ProvinceArea != "" {
		areas[cfg.ProvinceArea] = true
	}
	clock := &simClock{}
	c := &collector{
		t:      t,
		rules:  ingest.Rules{Hierarchy: "vn-2025", Areas: areas, MaxFuture: 5 * time.Minute},
		now:    clock.Now,
		answer: answer,
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL + "/"
	cfg.Token = "tok"
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	reg := prometheus.NewRegistry()
	sim, err := simulator.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, c: c, sim: sim, reg: reg, clock: clock}
}

// step advances the simulator to now and flushes what it generated; it
// returns Flush's error.
func (h *harness) step(now time.Time) error {
	h.t.Helper()
	h.clock.set(now)
	if err := h.sim.Step(now); err != nil {
		h.t.Fatalf("Step(%s): %v", now, err)
	}
	return h.sim.Flush(context.Background())
}

// drive steps from start to end (inclusive) by step, flushing after every
// step; flushed, if set, sees every Flush's error, otherwise an error fails
// the test.
func (h *harness) drive(start, end time.Time, step time.Duration, flushed func(now time.Time, err error)) {
	h.t.Helper()
	for now := start; !now.After(end); now = now.Add(step) {
		err := h.step(now)
		switch {
		case flushed != nil:
			flushed(now, err)
		case err != nil:
			h.t.Fatalf("Flush at %s: %v", now.Format(time.TimeOnly), err)
		}
	}
}

// run drives a simulator built from cfg by a step of step from start to end
// and returns what its collector took.
func run(t *testing.T, cfg simulator.Config, start, end time.Time, step time.Duration, answer func(int) (int, string)) (*collector, *prometheus.Registry) {
	t.Helper()
	h := newHarness(t, cfg, answer)
	h.drive(start, end, step, nil)
	return h.c, h.reg
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
	// A simulated minute per step.
	c, reg := run(t, cfg, start, start.Add(220*time.Minute), time.Minute, nil)
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

	// Every Flush returned once its batches were answered: the count is exact.
	if got := metric(t, reg, "ioc_simulator_events_sent_total"); got != float64(len(evs)) {
		t.Errorf("got events_sent_total %v, want %d", got, len(evs))
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
	c, reg := run(t, cfg, start, start.Add(4*time.Minute), 2*time.Second, func(call int) (int, string) {
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
	if got := metric(t, reg, "ioc_simulator_events_sent_total"); got != float64(len(c.events)) {
		t.Errorf("got events_sent_total %v, want all %d taken", got, len(c.events))
	}
}

func TestRefusedBatchIsDropped(t *testing.T) {
	start := time.Date(2025, 11, 24, 9, 0, 0, 0, ict)
	cfg := simulator.Config{Rate: 2, Areas: communes(3), Location: ict, Seed: 3, FlushInterval: 20 * time.Millisecond}
	type failure struct {
		at  time.Time
		err error
	}
	// f drives the simulator for a simulated minute, a step every 2s, against
	// a server that answers every dossier batch with status, and returns the
	// harness and the flushes that failed.
	f := func(status int) (*harness, []failure) {
		t.Helper()
		h := newHarness(t, cfg, func(int) (int, string) { return status, "" })
		var failed []failure
		h.drive(start, start.Add(time.Minute), 2*time.Second, func(now time.Time, err error) {
			if err != nil {
				failed = append(failed, failure{now, err})
			}
		})
		return h, failed
	}
	check := func(h *harness, status int) {
		t.Helper()
		c, reg := h.c, h.reg
		if len(c.requests) > 1 && slices.Equal(c.requests[0], c.requests[1]) {
			t.Errorf("status %d: the refused batch was resent, want it dropped", status)
		}
		refused := 0
		for _, ids := range c.requests {
			refused += len(ids)
		}
		if got := metric(t, reg, "ioc_simulator_events_rejected_total"); got != float64(refused) {
			t.Errorf("status %d: got events_rejected_total %v, want %d", status, got, refused)
		}
		if got, n := metric(t, reg, "ioc_simulator_post_errors_total"), len(c.requests); got != float64(n) {
			t.Errorf("status %d: got post_errors_total %v, want %d", status, got, n)
		}
	}

	h, failed := f(http.StatusBadRequest)
	// Every flush that had events posted them once, was refused and said so.
	if n := len(h.c.requests); n < 3 || len(failed) != n {
		t.Errorf("status 400: got %d requests and %d failed flushes in 30 steps, want at least 3 requests, each a failed flush", n, len(failed))
	}
	check(h, http.StatusBadRequest)

	// A bad token is not retried at the flush rate, but after a simulated
	// minute.
	h, failed = f(http.StatusUnauthorized)
	if n := len(h.c.requests); n != 1 || len(failed) == 0 {
		t.Fatalf("status 401: got %d requests and %d failed flushes in 30 steps, want 1 request, then flushes refused while paused", n, len(failed))
	}
	if err := failed[0].err; !strings.Contains(err.Error(), "refused the token") {
		t.Errorf("first failed flush: got %v, want it to say the token was refused", err)
	}
	for _, f := range failed[1:] {
		if !strings.Contains(f.err.Error(), "paused") {
			t.Errorf("flush at %s, within the pause: got %v, want an error saying sending is paused", f.at.Format(time.TimeOnly), f.err)
		}
	}
	if err := h.step(failed[0].at.Add(time.Minute)); err == nil || !strings.Contains(err.Error(), "refused the token") {
		t.Errorf("flush a minute after the refusal: got %v, want the token refused again", err)
	}
	if n := len(h.c.requests); n != 2 {
		t.Errorf("status 401: got %d requests, want a second one a minute after the first", n)
	}
	check(h, http.StatusUnauthorized)
}

// runIDRE matches what makes a run's ids its own (the run id in event ids,
// the run tag in dossier and feedback ids), which differs between runs
// even with one seed.
var runIDRE = regexp.MustCompile(`sim-[0-9a-f]{8}-|\bS[A-Z2-7]{5}-`)

// sameRun encodes records with their run's ids blanked out.
func sameRun[T any](t *testing.T, recs []T) []string {
	t.Helper()
	out := make([]string, len(recs))
	for i, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = runIDRE.ReplaceAllString(string(b), "RUN-")
	}
	return out
}

// firstDiff describes where two encoded streams part.
func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("record %d: %s\nvs %s", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

// What a simulator sends is a function of its seed and the times it is
// stepped to, whatever the machine's speed or the hour.
func TestSameSeedAndStepsSendTheSame(t *testing.T) {
	start := time.Date(2025, 11, 21, 15, 0, 0, 0, ict)
	cfg := simulator.Config{Rate: 2, Areas: communes(20), ProvinceArea: "79", Location: ict, Seed: 42, Feedback: 10}
	a, _ := run(t, cfg, start, start.Add(30*time.Minute), 30*time.Second, nil)
	b, _ := run(t, cfg, start, start.Add(30*time.Minute), 30*time.Second, nil)
	if ea, eb := sameRun(t, a.events), sameRun(t, b.events); len(ea) == 0 || !slices.Equal(ea, eb) {
		t.Errorf("dossier events of two runs differ (%d and %d): %s", len(ea), len(eb), firstDiff(ea, eb))
	}
	if fa, fb := sameRun(t, a.feedback), sameRun(t, b.feedback); len(fa) == 0 || !slices.Equal(fa, fb) {
		t.Errorf("feedback of two runs differs (%d and %d): %s", len(fa), len(fb), firstDiff(fa, fb))
	}
	if a.events[0].EventID == b.events[0].EventID {
		t.Errorf("two runs sent event id %s, want ids of their own", a.events[0].EventID)
	}
}

// stepClock is a clock the test moves on; Run reads it.
type stepClock struct {
	mu    sync.Mutex
	t     time.Time
	reads int
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.t
}

func (c *stepClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *stepClock) read() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// waitFor polls cond until it holds, failing t with what after d.
func waitFor(t *testing.T, d time.Duration, cond func() bool, what func() string) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what())
		}
	}
}

// Run is Step on its clock every FlushInterval and Flush on the same beat:
// it sends exactly what stepping to the times it read sends.
func TestRunSendsWhatStepsSend(t *testing.T) {
	times := []time.Time{
		time.Date(2025, 11, 24, 9, 0, 0, 0, ict),
		time.Date(2025, 11, 24, 9, 5, 0, 0, ict),
		time.Date(2025, 11, 24, 9, 12, 0, 0, ict),
	}
	// Without feedback: which dossiers a complaint may name depends on what
	// the server had taken at each step, which under Run is a matter of
	// timing.
	cfg := simulator.Config{Rate: 5, Areas: communes(10), Location: ict, Seed: 11, Feedback: -1, FlushInterval: 5 * time.Millisecond}
	ref := newHarness(t, cfg, nil)
	clock := &stepClock{t: times[0]}
	cfg.Now = clock.Now
	h := newHarness(t, cfg, nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.sim.Run(ctx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	defer stop()
	waitFor(t, 10*time.Second, func() bool { return clock.read() > 0 }, func() string { return "Run never read its clock" })
	if err := h.sim.Step(times[0]); err == nil {
		t.Errorf("Step while Run runs: got no error, want one")
	}
	if err := h.sim.Flush(ctx); err == nil {
		t.Errorf("Flush while Run runs: got no error, want one")
	}
	for _, now := range times {
		if err := ref.step(now); err != nil {
			t.Fatal(err)
		}
		want := sameRun(t, ref.c.events)
		h.clock.set(now) // what the collector validates against
		clock.set(now)
		var got []string
		waitFor(t, 30*time.Second, func() bool {
			h.c.mu.Lock()
			defer h.c.mu.Unlock()
			got = sameRun(t, h.c.events)
			return len(got) >= len(want)
		}, func() string {
			return fmt.Sprintf("at %s got %d events, want %d", now.Format(time.TimeOnly), len(got), len(want))
		})
		if !slices.Equal(got, want) {
			t.Fatalf("at %s Run sent other events than Step and Flush: %s", now.Format(time.TimeOnly), firstDiff(got, want))
		}
	}
	if err := stop(); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	if err := h.sim.Run(ctx); err != nil {
		t.Errorf("Run after the end: %v, want nil", err)
	}
	if err := h.sim.Step(times[2]); err != nil {
		t.Errorf("Step after Run: %v, want nil", err)
	}
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
	f("unknown pace", func(c *simulator.Config) { c.Pace = "fast" }, `pace "fast" is neither "field"`)

	// At field pace there is nothing to step without a history to carry on.
	field := ok
	field.Pace = simulator.PaceField
	sim, err := simulator.New(field, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{"Continue(nil)": sim.Continue(nil), "Step": sim.Step(time.Now()), "Run": sim.Run(context.Background())} {
		if err == nil || !strings.Contains(err.Error(), "call Continue with the Carry") {
			t.Errorf("%s at field pace without a history: got %v, want an error saying to call Continue with a Carry", name, err)
		}
	}

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
