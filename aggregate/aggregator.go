package aggregate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/chstore"
)

// Config tunes an Aggregator. Zero fields take the defaults.
type Config struct {
	// Hierarchy is the deployment's current hierarchy; default vn-2025.
	Hierarchy string
	// Location is the deployment's time zone, for the today window and the
	// offsets of as_of; default Asia/Ho_Chi_Minh.
	Location *time.Location
	// RefreshInterval is how often every unit is recomputed, so that sliding
	// windows and due dates move on screens without new records; default 15s.
	RefreshInterval time.Duration
	// MinRecompute spaces recomputations triggered by new records, folding
	// bursts of flushes into one; default 250ms.
	MinRecompute time.Duration
	// MinuteRetention is how long minute rollups are kept (the edge of the
	// longest window needs them); default 32 days.
	MinuteRetention time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.Hierarchy == "" {
		c.Hierarchy = "vn-2025"
	}
	if c.Location == nil {
		loc, err := time.LoadLocation("Asia/Ho_Chi_Minh")
		if err != nil {
			return c, fmt.Errorf("load default time zone: %w", err)
		}
		c.Location = loc
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = 15 * time.Second
	}
	if c.MinRecompute <= 0 {
		c.MinRecompute = 250 * time.Millisecond
	}
	if c.MinuteRetention <= 0 {
		c.MinuteRetention = 32 * 24 * time.Hour
	}
	return c, nil
}

// Publisher carries snapshots to every node's screens.
type Publisher interface {
	Publish(ctx context.Context, msgs ...bus.Message) error
}

// Errors for units and hierarchies that do not exist.
var (
	ErrUnknownHierarchy = errors.New("unknown hierarchy")
	ErrUnknownArea      = errors.New("unknown area")
)

// Aggregator computes snapshots on demand and keeps screens current.
type Aggregator struct {
	cfg    Config
	q      querier
	geo    *geo.Registry
	h      *geo.Hierarchy
	pub    Publisher
	logger *slog.Logger
	now    func() time.Time
	m      metrics

	mu    sync.Mutex
	dirty map[string]time.Time // unit code → when first marked since the last recompute
	wake  chan struct{}

	// last holds the KPIs last published per topic; only Run touches it.
	last map[string][]byte
}

type metrics struct {
	recompute *prometheus.HistogramVec
	published prometheus.Counter
	latency   prometheus.Histogram
	errors    prometheus.Counter
}

// New returns an aggregator over store's rollups for the units of reg. ops,
// if not nil, gives the device and alarm figures.
func New(cfg Config, store *chstore.Store, reg *geo.Registry, pub Publisher, ops Operations, logger *slog.Logger, promReg prometheus.Registerer) (*Aggregator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h, ok := reg.Hierarchy(cfg.Hierarchy)
	if !ok {
		return nil, fmt.Errorf("%w %q: known are %v", ErrUnknownHierarchy, cfg.Hierarchy, reg.Names())
	}
	a := &Aggregator{
		cfg: cfg, q: querier{conn: store.Conn(), db: store.Database(), ops: ops}, geo: reg, h: h, pub: pub,
		logger: logger, now: time.Now,
		dirty: map[string]time.Time{}, wake: make(chan struct{}, 1), last: map[string][]byte{},
		m: metrics{
			recompute: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: "ioc_aggregate_recompute_duration_seconds", Help: "Time to recompute snapshots, by trigger (records or refresh).",
				Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"trigger"}),
			published: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_aggregate_snapshots_published_total", Help: "Changed snapshots published on the bus."}),
			latency: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "ioc_aggregate_publish_latency_seconds", Help: "Time from records being stored to their units' snapshots being published.",
				Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
			errors: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_aggregate_errors_total", Help: "Recomputations or publications that failed."}),
		},
	}
	if promReg != nil {
		promReg.MustRegister(a.m.recompute, a.m.published, a.m.latency, a.m.errors)
	}
	return a, nil
}

// Hierarchy is the deployment's current hierarchy.
func (a *Aggregator) Hierarchy() *geo.Hierarchy { return a.h }

// Location is the deployment's time zone.
func (a *Aggregator) Location() *time.Location { return a.cfg.Location }

func (a *Aggregator) unit(hierarchy, code string) (*geo.Hierarchy, geo.Unit, error) {
	h, ok := a.geo.Hierarchy(hierarchy)
	if !ok {
		return nil, geo.Unit{}, fmt.Errorf("%w %q", ErrUnknownHierarchy, hierarchy)
	}
	u, ok := h.Unit(code)
	if !ok {
		return nil, geo.Unit{}, fmt.Errorf("%w %q in %s", ErrUnknownArea, code, hierarchy)
	}
	return h, u, nil
}

// Snapshot computes the figures of one unit for one window.
func (a *Aggregator) Snapshot(ctx context.Context, hierarchy, code string, w Window) (Snapshot, error) {
	h, u, err := a.unit(hierarchy, code)
	if err != nil {
		return Snapshot{}, err
	}
	now := a.now()
	counts, err := a.q.counts(ctx, scope{h: h, codes: h.Subtree(code)}, []Window{w}, now, a.cfg.Location)
	if err != nil {
		return Snapshot{}, err
	}
	return newSnapshot(h, u, w, counts[w][code], a.asOf(now)), nil
}

// ChildSnapshots computes the figures of each direct child of a unit, ordered
// by code.
func (a *Aggregator) ChildSnapshots(ctx context.Context, hierarchy, code string, w Window) ([]Snapshot, error) {
	h, _, err := a.unit(hierarchy, code)
	if err != nil {
		return nil, err
	}
	now := a.now()
	counts, err := a.q.counts(ctx, scope{h: h, codes: h.Subtree(code)}, []Window{w}, now, a.cfg.Location)
	if err != nil {
		return nil, err
	}
	children := h.Children(code)
	out := make([]Snapshot, 0, len(children))
	for _, c := range children {
		out = append(out, newSnapshot(h, c, w, counts[w][c.Code], a.asOf(now)))
	}
	return out, nil
}

// MapSnapshot computes the figures of every direct child of a unit.
func (a *Aggregator) MapSnapshot(ctx context.Context, hierarchy, code string, w Window) (MapSnapshot, error) {
	h, u, err := a.unit(hierarchy, code)
	if err != nil {
		return MapSnapshot{}, err
	}
	now := a.now()
	counts, err := a.q.counts(ctx, scope{h: h, codes: h.Subtree(code)}, []Window{w}, now, a.cfg.Location)
	if err != nil {
		return MapSnapshot{}, err
	}
	return newMapSnapshot(h, u, w, counts[w], a.asOf(now)), nil
}

// LevelSnapshots computes the figures of every unit at level (every level
// when empty) under parent (anywhere when empty), ordered by code: what a
// choropleth of one level needs, in one pass over the rollups.
func (a *Aggregator) LevelSnapshots(ctx context.Context, hierarchy, level, parent string, w Window) ([]Snapshot, error) {
	h, ok := a.geo.Hierarchy(hierarchy)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownHierarchy, hierarchy)
	}
	sc := scope{h: h}
	if parent != "" {
		if _, ok := h.Unit(parent); !ok {
			return nil, fmt.Errorf("%w %q in %s", ErrUnknownArea, parent, hierarchy)
		}
		sc.codes = h.Subtree(parent)
	}
	now := a.now()
	counts, err := a.q.counts(ctx, sc, []Window{w}, now, a.cfg.Location)
	if err != nil {
		return nil, err
	}
	units := h.Select(level, parent)
	out := make([]Snapshot, 0, len(units))
	for _, u := range units {
		out = append(out, newSnapshot(h, u, w, counts[w][u.Code], a.asOf(now)))
	}
	return out, nil
}

func (a *Aggregator) asOf(now time.Time) time.Time {
	return now.In(a.cfg.Location).Truncate(time.Second)
}

// MarkDirty notes that units gained records; Run recomputes them and their
// ancestors soon. It never blocks.
func (a *Aggregator) MarkDirty(hierarchy string, codes []string) {
	if hierarchy != a.h.Name() {
		return // only the current hierarchy is live on screens
	}
	now := time.Now()
	a.mu.Lock()
	for _, c := range codes {
		if _, ok := a.dirty[c]; !ok {
			a.dirty[c] = now
		}
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Run keeps published snapshots current until ctx ends: units touched by new
// records at once, every unit every RefreshInterval, and old minute rollups
// dropped hourly.
func (a *Aggregator) Run(ctx context.Context) error {
	// Learn what screens already show without publishing it again.
	if err := a.refresh(ctx, false); err != nil && ctx.Err() == nil {
		a.logger.Warn("initial computation failed; retrying at the next refresh", "err", err)
	}
	a.dropExpiredMinutes(ctx)
	refresh := time.NewTicker(a.cfg.RefreshInterval)
	defer refresh.Stop()
	retention := time.NewTicker(time.Hour)
	defer retention.Stop()
	var lastRun time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.wake:
			if wait := a.cfg.MinRecompute - time.Since(lastRun); wait > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			}
			lastRun = time.Now()
			if err := a.recomputeDirty(ctx); err != nil && ctx.Err() == nil {
				a.m.errors.Inc()
				a.logger.Warn("recompute after new records failed; the next refresh catches up", "err", err)
			}
		case <-refresh.C:
			if err := a.refresh(ctx, true); err != nil && ctx.Err() == nil {
				a.m.errors.Inc()
				a.logger.Warn("refresh failed", "err", err)
			}
		case <-retention.C:
			a.dropExpiredMinutes(ctx)
		}
	}
}

func (a *Aggregator) recomputeDirty(ctx context.Context) error {
	a.mu.Lock()
	dirty := a.dirty
	a.dirty = map[string]time.Time{}
	a.mu.Unlock()
	if len(dirty) == 0 {
		return nil
	}
	start := time.Now()
	// Every affected unit is a dirty one or an ancestor; computing the whole
	// subtrees of their top-level units gives each of them complete sums.
	affected := map[string]time.Time{}
	roots := map[string]bool{}
	for code, at := range dirty {
		if _, ok := a.h.Unit(code); !ok {
			continue
		}
		top := code
		for c := code; c != ""; {
			if prev, ok := affected[c]; !ok || at.Before(prev) {
				affected[c] = at
			}
			top = c
			u, _ := a.h.Unit(c)
			c = u.Parent
		}
		roots[top] = true
	}
	var codes []string
	for r := range roots {
		codes = append(codes, a.h.Subtree(r)...)
	}
	now := a.now()
	counts, err := a.q.counts(ctx, scope{h: a.h, codes: codes}, Windows, now, a.cfg.Location)
	if err != nil {
		return err
	}
	for code, at := range affected {
		if err := a.publish(ctx, code, counts, now, true); err != nil {
			return err
		}
		a.m.latency.Observe(time.Since(at).Seconds())
	}
	a.m.recompute.WithLabelValues("records").Observe(time.Since(start).Seconds())
	return nil
}

// refresh recomputes every unit; with publish false it only records what
// the current figures are.
func (a *Aggregator) refresh(ctx context.Context, publish bool) error {
	start := time.Now()
	now := a.now()
	counts, err := a.q.counts(ctx, scope{h: a.h}, Windows, now, a.cfg.Location)
	if err != nil {
		return err
	}
	for _, code := range a.allCodes() {
		if err := a.publish(ctx, code, counts, now, publish); err != nil {
			return err
		}
	}
	a.m.recompute.WithLabelValues("refresh").Observe(time.Since(start).Seconds())
	return nil
}

func (a *Aggregator) allCodes() []string {
	var out []string
	for _, r := range a.h.Roots() {
		out = append(out, a.h.Subtree(r.Code)...)
	}
	return out
}

// publish sends the unit's snapshots, and the map of its children, whose
// figures changed since last sent.
func (a *Aggregator) publish(ctx context.Context, code string, counts map[Window]map[string]Counts, now time.Time, send bool) error {
	u, _ := a.h.Unit(code)
	hasChildren := len(a.h.ChildCodes(code)) > 0
	for _, w := range Windows {
		s := newSnapshot(a.h, u, w, counts[w][code], a.asOf(now))
		if err := a.publishIfChanged(ctx, w.Topic(code), s.KPIs, s, send); err != nil {
			return err
		}
		if hasChildren {
			m := newMapSnapshot(a.h, u, w, counts[w], a.asOf(now))
			if err := a.publishIfChanged(ctx, w.MapTopic(code), m.Children, m, send); err != nil {
				return err
			}
		}
	}
	return nil
}

// publishIfChanged publishes payload on topic when figures differ from what
// the topic last carried; as_of alone changing is not news.
func (a *Aggregator) publishIfChanged(ctx context.Context, topic string, figures, payload any, send bool) error {
	key, err := json.Marshal(figures)
	if err != nil {
		return fmt.Errorf("encode %s: %w", topic, err)
	}
	if prev, ok := a.last[topic]; ok && bytes.Equal(prev, key) {
		return nil
	}
	if send {
		b, err := json.Marshal(payload)
		if err != nil {
			return fmt.Errorf("encode %s: %w", topic, err)
		}
		if err := a.pub.Publish(ctx, bus.Message{Topic: topic, Payload: b}); err != nil {
			return fmt.Errorf("publish %s: %w", topic, err)
		}
		a.m.published.Inc()
	}
	a.last[topic] = key
	return nil
}
