// Package simulator owns a synthetic province: it files administrative
// procedure dossiers at commune and provincial one-stop desks, moves them
// through a time-compressed lifecycle with the office-hours rhythm and the
// shares seen in the field, and feeds the resulting dossier events to the
// server through its real HTTP ingest endpoint, so that a demo or a load
// test exercises the same path as a production connector. Alongside, citizen
// feedback (hotline calls, portal complaints, some about those dossiers)
// goes to the feedback endpoint as each item advances.
//
// Concurrency: Run owns three goroutines, a generator that advances the
// simulation, an outbox sender that POSTs the dossier events and one that
// POSTs feedback, so that one endpoint being away does not hold up the
// other; all exit when the context passed to Run is cancelled and Run waits
// for them. A Simulator runs once at a time; its metrics are safe to scrape
// meanwhile.
package simulator

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
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
	BaseURL string  // server root, e.g. "http://127.0.0.1:8080"
	Token   string  // bearer token with the ingest right
	Rate    float64 // events per second at the office-hours peak; > 0
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
	Now           func() time.Time // nil means time.Now; the simulated clock
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
	running  atomic.Bool

	// Set by the sender only.
	maxBatch int
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
		maxBatch: maxBatch,
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
	if cfg.Feedback > 0 {
		// A stream of its own leaves the dossiers' draws, and so a seed's
		// dossiers, as they were.
		s.feedback = newFeedbackWorld(mrand.New(mrand.NewPCG(seed, seed^0xd1b54a32d192ed03)), cfg.Location, cfg.Feedback, s.world)
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

// Run generates and sends until ctx is cancelled, then returns nil. Events
// still unsent at that point are discarded.
func (s *Simulator) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("simulator: already running; call Run once at a time")
	}
	defer s.running.Store(false)
	s.logger.Info("simulator started", "endpoint", s.endpoint, "rate", s.cfg.Rate,
		"areas", len(s.cfg.Areas), "flush", s.cfg.FlushInterval)

	var wg sync.WaitGroup
	wg.Go(func() { s.generate(ctx) })
	if s.feedback != nil {
		batch := maxBatch
		p := poster{endpoint: s.fbURL, token: s.cfg.Token, contentType: "application/json",
			client: s.cfg.HTTPClient, logger: s.logger, postErrors: s.metrics.postErrors, maxBatch: &batch}
		wg.Go(func() {
			drain(ctx, s.cfg.FlushInterval, s.fbOut, p, func(b []ingest.FeedbackRecord, i int) string { return b[i].FeedbackID },
				func(n int) { s.metrics.feedbackSent.Add(float64(n)) })
		})
	}
	s.send(ctx)
	wg.Wait()
	s.logger.Info("simulator stopped")
	return nil
}

// generate advances the world every FlushInterval and hands the events to
// the outbox, which bounds what accumulates while the server is away.
func (s *Simulator) generate(ctx context.Context) {
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	var buf []item
	var fb []ingest.FeedbackRecord
	for {
		now := s.cfg.Now()
		buf = s.world.advance(now, buf[:0])
		if n := s.out.add(buf, s.world.drop); n > 0 {
			s.logger.Warn("outbox full while the server is unavailable; dropped unsent new dossiers", "dossiers", n)
		}
		clear(buf)
		if s.feedback != nil {
			fb = s.feedback.advance(now, fb[:0])
			if n := s.fbOut.push(fb); n > 0 {
				s.logger.Warn("feedback queue full while the server is unavailable; dropped the oldest states", "states", n)
			}
			clear(fb)
		}
		s.metrics.open.Set(float64(s.world.open))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
