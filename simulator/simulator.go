// Package simulator owns a synthetic province: it files administrative
// procedure dossiers at commune and provincial one-stop desks, moves them
// through their lifecycles with the office-hours rhythm and the shares seen
// in the field, and feeds the resulting dossier events to the server
// through its real HTTP ingest endpoint, so that a demo or a load test
// exercises the same path as a production connector. Alongside, citizen
// feedback (hotline calls, portal complaints, some about those dossiers)
// goes to the feedback endpoint as each item advances. Devices does the same
// for cameras and sensors. It is the province that iocd --simulate runs and
// that cmd/iocbench generates its data from, so it lives outside internal/,
// beside the domain packages it feeds.
//
// A History is the province's past at field volume, with lifecycles over
// days and weeks (PlanLifecycle, shared with the benchmark's data), written
// not over HTTP but through ingest's import, chunk by chunk, before the
// live simulators start. Continue has a Simulator carry on the dossiers it
// left open. At field pace (PaceField) the Simulator is that history
// carried on in real time: each day after its End brings the dossiers and
// feedback items the History would hold for it. At demo pace (PaceDemo, the
// zero value) it compresses lifecycles into minutes and files Rate events
// a second at the office-hours peak, many times the field's volume.
//
// A simulator is driven in one of two ways. Run drives it on its clock
// (Config.Now, real time by default), as iocd does. A caller that wants a
// deterministic run (a test, a replay) drives it itself: Step advances the
// model to a given simulated time and queues what happened by then, Flush
// sends everything queued and returns once the server has answered it.
// What a simulator generates depends only on its seed (at field pace, its
// history) and on the times it is stepped to; Run is nothing but a Step
// every FlushInterval (Tick for Devices) and senders that Flush on the same
// beat.
//
// Concurrency: Run owns three goroutines, a generator that steps the
// model, and one sender per endpoint that POSTs what was generated, so
// that one endpoint being away does not hold up the other; all exit when
// the context passed to Run is cancelled and Run waits for them. Step and
// Flush are refused while Run runs; one Step at a time and one Flush at a
// time, though a Step may overlap a Flush (that is what Run does). The
// model is owned by whoever steps; the queues between it and the senders
// are locked. Metrics are safe to scrape at any time. A History is
// immutable; its Write owns the goroutines that store chunks and log
// progress, and waits for them. A Carry belongs to the simulator that
// continues it.
package simulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/ingest"
)

// Config says where to send events and what the province looks like.
type Config struct {
	BaseURL string // server root, e.g. "http://127.0.0.1:8080"
	Token   string // bearer token with the ingest right
	// Pace is PaceDemo (the zero value) or PaceField. At field pace the
	// dossiers and feedback items are those of the History that Continue
	// names, which decides their volume, units and seed: Rate then only
	// sizes the queue, and Areas, ProvinceArea, Seed and Feedback are not
	// used (but checked).
	Pace Pace
	// Rate is the events per second at the office-hours peak, at demo
	// pace; > 0.
	Rate float64
	// Areas are the unit codes dossiers are filed in, e.g. the communes of
	// the province; required.
	Areas []string
	// ProvinceArea, if set, receives about 3% of dossiers (the provincial
	// desk).
	ProvinceArea string
	// Location is the zone of the office-hours rhythm and of the event
	// times; nil means Asia/Ho_Chi_Minh, or a fixed +07:00 without tzdata.
	Location *time.Location
	Seed     int64 // 0 means random
	// Feedback is how many feedback items arrive per minute at the
	// office-hours peak; zero means 4, a negative number none.
	Feedback float64
	// FlushInterval is how often accumulated events are POSTed; zero means
	// 250ms.
	FlushInterval time.Duration
	HTTPClient    *http.Client     // nil means a client with a 30s timeout
	Now           func() time.Time // nil means time.Now; the clock Run steps by
}

// Simulator generates dossier events and sends them; see the package doc.
type Simulator struct {
	cfg      Config
	endpoint string
	logger   *slog.Logger
	runID    string
	world    *world
	out      *outbox
	feedback *feedbackWorld // nil when Config.Feedback is negative
	fbURL    string
	fbOut    *queue[ingest.FeedbackRecord]
	metrics  metrics
	dossiers *sender[item]
	fbSend   *sender[ingest.FeedbackRecord] // nil when Config.Feedback is negative
	// stepping and flushing are held by Step and Flush while they run, and
	// by Run for its whole life.
	stepping, flushing atomic.Bool
	// stepped is the simulated time of the latest Step, in Unix
	// nanoseconds; the senders pace a pause after a refused token by it.
	stepped atomic.Int64
	// carry is what a history's dossiers and feedback items do after it
	// ends, sent as its time comes, and at field pace the history's later
	// days; owned by whoever steps.
	carry *Carry
}

type metrics struct {
	sent, rejected, postErrors prometheus.Counter
	open                       prometheus.Gauge
	feedbackSent               prometheus.Counter
}

const (
	defaultFlush = 250 * time.Millisecond
	maxRate      = 1e5
)

// New checks cfg and builds a Simulator; it does not contact the server.
// Metrics are registered on reg unless it is nil.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Simulator, error) {
	if err := checkTarget("simulator", cfg.BaseURL, cfg.Token); err != nil {
		return nil, err
	}
	pace, err := ParsePace(string(cfg.Pace))
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	cfg.Pace = pace
	switch {
	case math.IsNaN(cfg.Rate) || cfg.Rate <= 0 || cfg.Rate > maxRate:
		return nil, fmt.Errorf("simulator: Rate %v must be above 0 and at most %g events per second", cfg.Rate, float64(maxRate))
	case len(cfg.Areas) == 0:
		return nil, errors.New("simulator: Areas is empty: list the unit codes to file dossiers in, e.g. the province's commune codes")
	case cfg.FlushInterval < 0:
		return nil, fmt.Errorf("simulator: FlushInterval %s is negative; use zero for the default %s", cfg.FlushInterval, defaultFlush)
	case math.IsNaN(cfg.Feedback) || cfg.Feedback > maxFeedbackRate:
		return nil, fmt.Errorf("simulator: Feedback %v must be at most %d items per minute (zero for the default %g, negative for none)",
			cfg.Feedback, maxFeedbackRate, defaultFeedbackRate)
	}
	seen := make(map[string]bool, len(cfg.Areas))
	for i, a := range cfg.Areas {
		if strings.TrimSpace(a) == "" {
			return nil, fmt.Errorf("simulator: Areas[%d] is empty; remove it", i)
		}
		if seen[a] {
			return nil, fmt.Errorf("simulator: area %q is listed twice; list each unit once", a)
		}
		seen[a] = true
	}
	if cfg.Location == nil {
		cfg.Location = defaultLocation()
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = defaultFlush
	}
	if cfg.Feedback == 0 {
		cfg.Feedback = defaultFeedbackRate
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	seed := uint64(cfg.Seed)
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("simulator: read random run id: %w", err)
	}
	if seed == 0 {
		seed = binary.LittleEndian.Uint64(b[8:])
	}
	// The run id is random even with a fixed seed: two runs must never
	// share event or dossier ids, or the server would deduplicate them.
	runID := hex.EncodeToString(b[:4])
	runTag := "S" + base32.StdEncoding.EncodeToString(b[4:8])[:5]

	s := &Simulator{
		cfg:      cfg,
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/api/v1/ingest/dossiers",
		fbURL:    strings.TrimRight(cfg.BaseURL, "/") + "/api/v1/ingest/feedback",
		fbOut:    &queue[ingest.FeedbackRecord]{limit: feedbackQueueLimit},
		logger:   logger.With("run", runID),
		runID:    runID,
		out:      newOutbox(outboxLimit(cfg.Rate)),
		metrics: metrics{
			sent: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_simulator_events_sent_total",
				Help: "Dossier events the server accepted from the simulator.",
			}),
			rejected: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_simulator_events_rejected_total",
				Help: "Dossier events the server refused, one by one or with their whole batch.",
			}),
			postErrors: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_simulator_post_errors_total",
				Help: "Ingest POSTs that did not end in 202 (network errors, 503, 4xx).",
			}),
			open: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "ioc_simulator_open_dossiers",
				Help: "Simulated dossiers received and not yet closed.",
			}),
			feedbackSent: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_simulator_feedback_sent_total",
				Help: "Feedback item states the server accepted from the simulator (one per change of an item).",
			}),
		},
	}
	s.world = newWorld(mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), cfg.Location,
		cfg.Rate, cfg.Areas, cfg.ProvinceArea, runTag, "sim-"+runID)
	if cfg.Feedback > 0 && cfg.Pace == PaceDemo {
		// A stream of its own leaves the dossiers' draws, and so a seed's
		// dossiers, as they were.
		s.feedback = newFeedbackWorld(mrand.New(mrand.NewPCG(seed, seed^0xd1b54a32d192ed03)), cfg.Location, cfg.Feedback, s.world)
	}
	s.dossiers = newSender(&s.out.queue, s.poster(s.endpoint, "application/x-ndjson"), encodeNDJSON,
		func(b []item, i int) string { return b[i].ev.EventID }, s.recordDossiers)
	if s.feedback != nil || cfg.Pace == PaceField {
		s.fbSend = newSender(s.fbOut, s.poster(s.fbURL, "application/json"), jsonArray[ingest.FeedbackRecord],
			func(b []ingest.FeedbackRecord, i int) string { return b[i].FeedbackID },
			func(b []ingest.FeedbackRecord, a answer) {
				if !a.refused {
					s.metrics.feedbackSent.Add(float64(a.accepted))
				}
			})
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.metrics.sent, s.metrics.rejected, s.metrics.postErrors, s.metrics.open, s.metrics.feedbackSent} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("simulator: register metrics (one simulator per registry): %w", err)
			}
		}
	}
	return s, nil
}

// Continue has the simulator send, as their time comes, the later steps
// of the dossiers and feedback items a History left open at its end (the
// Carry its Write returned, or CarryOn's for a history stored earlier). At
// demo pace they go alongside what the simulator generates itself (nil is
// nothing to continue); at field pace the simulator carries the history
// on from its End, day after day, and needs it. Call it before the
// simulator is stepped or run.
func (s *Simulator) Continue(c *Carry) error {
	if !s.stepping.CompareAndSwap(false, true) {
		return errBusy
	}
	defer s.stepping.Store(false)
	switch {
	case s.stepped.Load() != 0:
		return errors.New("simulator: Continue comes before the first Step or Run")
	case c == nil && s.cfg.Pace == PaceField:
		return errNoHistory
	}
	s.carry = c
	if s.cfg.Pace == PaceField {
		s.out.mu.Lock()
		s.out.limit = fieldOutboxLimit(c.h.perDay)
		s.out.mu.Unlock()
	}
	return nil
}

// errNoHistory refuses to step a simulator at field pace that has no
// history to carry on.
var errNoHistory = errors.New("simulator: at field pace the simulator carries a history on: " +
	"call Continue with the Carry of History.Write or History.CarryOn first (or use PaceDemo)")

// checkTarget checks the server a simulator posts to and its token.
func checkTarget(who, baseURL, token string) error {
	u, err := url.Parse(baseURL)
	switch {
	case baseURL == "":
		return fmt.Errorf("%s: BaseURL is required, e.g. http://127.0.0.1:8080", who)
	case err != nil:
		return fmt.Errorf("%s: BaseURL %q: %w", who, baseURL, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("%s: BaseURL %q must be an absolute http or https URL, e.g. http://127.0.0.1:8080", who, baseURL)
	case strings.TrimSpace(token) == "":
		return fmt.Errorf("%s: Token is required: use a bearer token that holds the ingest right", who)
	}
	return nil
}

func defaultLocation() *time.Location {
	if loc, err := time.LoadLocation("Asia/Ho_Chi_Minh"); err == nil {
		return loc
	}
	return time.FixedZone("ICT", 7*60*60)
}

func (s *Simulator) poster(endpoint, contentType string) poster {
	return poster{endpoint: endpoint, token: s.cfg.Token, contentType: contentType,
		client: s.cfg.HTTPClient, logger: s.logger, postErrors: s.metrics.postErrors}
}

// encodeNDJSON writes a batch of dossier events one per line, as the
// dossier endpoint takes them.
func encodeNDJSON(batch []item) ([]byte, error) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for _, it := range batch {
		if err := enc.Encode(it.ev); err != nil {
			return nil, fmt.Errorf("encode dossier event %s: %w", it.ev.EventID, err)
		}
	}
	return body.Bytes(), nil
}

// recordDossiers counts what became of a batch of dossier events and marks
// the dossiers whose received event the server took: only those may be
// named by a complaint. It runs on the sending goroutine; the mark is
// atomic because the generating goroutine reads it.
func (s *Simulator) recordDossiers(batch []item, a answer) {
	if a.refused {
		s.metrics.rejected.Add(float64(len(batch)))
		return
	}
	s.metrics.sent.Add(float64(a.accepted))
	s.metrics.rejected.Add(float64(a.rejected))
	for i, it := range batch {
		if it.ev.Status == "received" && !a.rejectedAt[i] {
			it.d.delivered.Store(true)
		}
	}
}

// errBusy refuses a second driver.
var errBusy = errors.New("simulator: already driven: Run runs alone, and Step and Flush each once at a time, never while Run runs")

// Run steps the simulator on its clock every FlushInterval and sends what it
// generates until ctx is cancelled, then returns nil. Events still unsent at
// that point are discarded. At field pace a clock far past the history's
// end (a node that was away) is caught up an hour of simulated time per
// step, as fast as the server takes it. At field pace without a history to
// carry on it returns an error at once.
func (s *Simulator) Run(ctx context.Context) error {
	if !s.stepping.CompareAndSwap(false, true) {
		return errBusy
	}
	defer s.stepping.Store(false)
	if !s.flushing.CompareAndSwap(false, true) {
		return errBusy
	}
	defer s.flushing.Store(false)
	if s.cfg.Pace == PaceField && s.carry == nil {
		return errNoHistory
	}
	if s.cfg.Pace == PaceField {
		h := s.carry.h
		s.logger.Info("simulator started at field pace, carrying the history on", "endpoint", s.endpoint,
			"from", h.cfg.End.In(h.cfg.Location).Format(time.RFC3339), "dossiers_a_day", int(h.perDay),
			"feedback_a_day", int(h.fbPerDay), "areas", len(h.areas), "flush", s.cfg.FlushInterval)
		if behind := s.cfg.Now().Sub(h.cfg.End); behind > fieldCatchUpSlice {
			s.logger.Info("sending what the history holds for the time the node was away first", "behind", behind.Round(time.Second))
		}
	} else {
		s.logger.Info("simulator started at demo pace", "endpoint", s.endpoint, "rate", s.cfg.Rate,
			"areas", len(s.cfg.Areas), "flush", s.cfg.FlushInterval)
	}

	// The senders' errors were logged as they happened; a pause after a
	// refused token ends with the simulated minute.
	var wg sync.WaitGroup
	wg.Go(func() {
		s.step(s.clockStep())
		every(ctx, s.cfg.FlushInterval, func() { s.step(s.clockStep()) })
	})
	if s.fbSend != nil {
		wg.Go(func() { every(ctx, s.cfg.FlushInterval, func() { _ = s.fbSend.flush(ctx, s.now()) }) })
	}
	every(ctx, s.cfg.FlushInterval, func() { _ = s.dossiers.flush(ctx, s.now()) })
	wg.Wait()
	s.logger.Info("simulator stopped")
	return nil
}

// Step advances the simulated province to now and queues every dossier
// event and feedback state that happened by then, for Flush to send; a time
// before the previous step's adds nothing. At demo pace, intake more than
// ten minutes behind now is skipped rather than replayed in a burst, so
// step often, as the clock of a control room moves; at field pace
// everything the history holds up to now is queued. A queue that outgrows
// its bound (about five minutes of peak traffic at demo pace, a day's
// dossier events at field pace) drops the dossiers the server has not
// seen, as while the server is away. Step does not block.
func (s *Simulator) Step(now time.Time) error {
	if !s.stepping.CompareAndSwap(false, true) {
		return errBusy
	}
	defer s.stepping.Store(false)
	if s.cfg.Pace == PaceField && s.carry == nil {
		return errNoHistory
	}
	s.step(now)
	return nil
}

// Flush sends everything Step has queued, dossier events first, and
// returns once the server has answered every batch; a batch the server is
// busy for is resent until it is taken. It returns nil when the server took
// them all (records refused one by one are logged and counted in the
// metrics), ctx's error when ctx ended first, and otherwise what the server
// refused. After the server refuses the token, sending pauses for a minute
// of simulated time: Flush returns at once with an error saying so until a
// Step reaches the end of the pause.
func (s *Simulator) Flush(ctx context.Context) error {
	if !s.flushing.CompareAndSwap(false, true) {
		return errBusy
	}
	defer s.flushing.Store(false)
	now := s.now()
	err := s.dossiers.flush(ctx, now)
	if s.fbSend != nil && ctx.Err() == nil {
		err = errors.Join(err, s.fbSend.flush(ctx, now))
	}
	if err != nil {
		return fmt.Errorf("simulator: flush: %w", err)
	}
	return nil
}

// now is the simulated time of the latest step.
func (s *Simulator) now() time.Time { return time.Unix(0, s.stepped.Load()) }

// clockStep is the time Run steps to: its clock's, but at field pace at
// most an hour past the latest step while a gap is being filled (the node
// was away), and no further while the queue holds half its bound, so that
// days of a history go out as fast as the server takes them without
// piling up in memory.
func (s *Simulator) clockStep() time.Time {
	now := s.cfg.Now()
	if s.cfg.Pace != PaceField {
		return now
	}
	last := s.carry.End()
	if s.stepped.Load() != 0 {
		last = s.now()
	}
	if now.Sub(last) <= fieldCatchUpSlice {
		return now
	}
	if s.out.len() > s.outLimit()/2 {
		return last
	}
	return last.Add(fieldCatchUpSlice)
}

func (s *Simulator) outLimit() int {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	return s.out.limit
}

// drop forgets a dossier none of whose events the server has seen.
func (s *Simulator) drop(d *dossier) {
	if d.carried {
		d.closed = true // its later steps are skipped as they come
		return
	}
	s.world.drop(d)
}

// step advances the world and the feedback to now and queues what they
// generated; the outbox bounds what accumulates while the server is away.
// Only the holder of stepping calls it.
func (s *Simulator) step(now time.Time) {
	if now.UnixNano() > s.stepped.Load() {
		s.stepped.Store(now.UnixNano())
	}
	field := s.cfg.Pace == PaceField
	var buf []item
	if s.carry != nil {
		if field {
			s.carry.extend(now)
		}
		buf = s.carry.dossierEvents(now, buf)
	}
	if !field {
		buf = s.world.advance(now, buf)
	}
	if n := s.out.add(buf, s.drop); n > 0 {
		s.logger.Warn("outbox full while the server is unavailable; dropped unsent new dossiers", "dossiers", n)
	}
	if s.feedback != nil || field {
		var fb []ingest.FeedbackRecord
		if s.carry != nil {
			fb = s.carry.feedbackStates(now, fb)
		}
		if s.feedback != nil {
			fb = s.feedback.advance(now, fb)
		}
		if n := s.fbOut.push(fb); n > 0 {
			s.logger.Warn("feedback queue full while the server is unavailable; dropped the oldest states", "states", n)
		}
	}
	if field {
		s.metrics.open.Set(float64(s.carry.open()))
	} else {
		s.metrics.open.Set(float64(s.world.open))
	}
}
