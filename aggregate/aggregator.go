package aggregate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/rollup"
)

// Config tunes an Aggregator. Zero fields take the defaults.
type Config struct {
	// Hierarchy is the deployment's current hierarchy; default vn-2025.
	Hierarchy string
	// Location is the deployment's time zone, for the today window and the
	// offsets of as_of; default Asia/Ho_Chi_Minh.
	Location *time.Location
	// RefreshInterval is how often every unit's figures are read again, so
	// that sliding windows and due dates move on screens without new
	// records, and as the check of the figures the writers' deltas advanced;
	// default 15s.
	RefreshInterval time.Duration
	// Debounce spaces the publications of units whose figures changed,
	// folding bursts of flushes into one: at most one per Debounce; default
	// 1s.
	Debounce time.Duration
	// Lease names the lease held by the node that computes and publishes
	// live figures; default "<database>.aggregate".
	Lease string
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
	if c.Debounce <= 0 {
		c.Debounce = time.Second
	}
	return c, nil
}

// Publisher carries snapshots to every node's screens. It refuses a
// message whose version is not newer than its topic's with bus.ErrStale.
type Publisher interface {
	Publish(ctx context.Context, msgs ...bus.Message) error
}

// Leases elect the one node that computes and publishes live figures.
type Leases interface {
	Acquire(ctx context.Context, name string) (*lease.Lease, error)
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
	leases Leases
	marks  *Marks // units other parts marked, taken by Run; nil: none
	x      Extras // nil: none
	logger *slog.Logger
	// now is the clock of windows, as_of and the spacing of publications;
	// after waits for the next publication.
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	m     metrics

	mu sync.Mutex
	// Live figures, while this node holds the lease (see liveState).
	state    *liveState
	checking bool           // a check is reading
	inflight []rollup.Delta // deltas that arrived while it reads
	// dirty are the units whose figures may have changed since they were
	// last published, and since when; dirtyOverdue those whose overdue
	// dossiers may have (read again before publishing), dirtyCurrent says
	// device or alarm counts may have.
	dirty        map[string]time.Time
	dirtyOverdue map[string]bool
	dirtyCurrent bool
	// dirtyExtras says the extra figures may have changed (MarkExtras).
	dirtyExtras bool
	// recheck asks for every figure to be read again: a delta could not be
	// settled. unsettled says so since the last check, whose differences
	// then are no corrections.
	recheck, unsettled bool
	// arrived are the marked tables of the deltas that arrived since the
	// last check began to read; pending a difference it found that deltas
	// on their way may explain.
	arrived map[batchTable]bool
	pending *pendingCorrection
	taken   uint64 // deltas taken while leading, for tests
	// outbox holds this node's deltas to forward while another holds the
	// lease.
	outbox     []rollup.Delta
	outboxRows int
	// asked are the topics other nodes' hubs asked for again while this
	// node holds the lease (RepublishTopic).
	asked map[string]bool
	wake  chan struct{}

	// xcache is the extra figures last read for snapshots on demand, at
	// xat, on a node without the live state (demandExtras).
	xmu    sync.Mutex
	xcache *extras
	xat    time.Time

	// leading is set while this node holds the lease: deltas and units
	// forwarded by other nodes are taken only then. It changes under mu.
	leading atomic.Bool

	// last holds the figures last published per topic, bases what the
	// next message of each map topic may carry a delta against, heads and
	// childHeads the constant starts of payloads; only Run touches them.
	last, heads, childHeads map[string][]byte
	bases                   map[string]mapBase
}

type metrics struct {
	queries     *prometheus.CounterVec
	deltas      *prometheus.CounterVec
	corrections prometheus.Counter
	recompute   *prometheus.HistogramVec
	published   prometheus.Counter
	latency     prometheus.Histogram
	errors      prometheus.Counter
	leader      prometheus.Gauge
	takeovers   prometheus.Counter
}

// New returns an aggregator over store's rollups for the units of reg. ops,
// if not nil, gives the device and alarm figures, and extras, if not nil,
// the indicators snapshots carry besides the catalog's; marks, if not nil, says
// which units' counts changed, as MarkDirty does, from parts built before
// the aggregator. Of all the nodes sharing leases, the one holding the
// aggregate lease publishes on pub.
func New(cfg Config, store *chstore.Store, reg *geo.Registry, pub Publisher, leases Leases, ops Operations, extras Extras, marks *Marks, logger *slog.Logger, promReg prometheus.Registerer) (*Aggregator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h, ok := reg.Hierarchy(cfg.Hierarchy)
	if !ok {
		return nil, fmt.Errorf("%w %q: known are %v", ErrUnknownHierarchy, cfg.Hierarchy, reg.Names())
	}
	if pub == nil || leases == nil {
		return nil, errors.New("new aggregator: needs a publisher and leases")
	}
	if cfg.Lease == "" {
		cfg.Lease = store.Database() + ".aggregate"
	}
	rollups, err := rollup.NewReader(store)
	if err != nil {
		return nil, err
	}
	a := &Aggregator{
		cfg: cfg, q: querier{rollups: rollups, ops: ops}, geo: reg, h: h, pub: pub, leases: leases, marks: marks, x: extras,
		logger: logger, now: time.Now, after: time.After,
		dirty: map[string]time.Time{}, dirtyOverdue: map[string]bool{}, arrived: map[batchTable]bool{},
		wake: make(chan struct{}, 1), asked: map[string]bool{}, last: map[string][]byte{}, heads: map[string][]byte{}, childHeads: map[string][]byte{}, bases: map[string]mapBase{},
		m: metrics{
			queries: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_aggregate_queries_total",
				Help: "Reads of ClickHouse for figures, by reason: check (every unit, each refresh and takeover), recheck (a delta its markers could not settle), day (today began again), overdue and current (overdue dossiers, devices and alarms of marked units), snapshot (REST and new subscriptions)."},
				[]string{"reason"}),
			deltas: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_aggregate_deltas_total",
				Help: "Writers' deltas: taken by the node holding the lease, forwarded to it, dropped (too many waiting to be forwarded), unsettled (read again instead)."},
				[]string{"outcome"}),
			corrections: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_aggregate_live_corrections_total",
				Help: "Units whose today figures a check found different from what the writers' deltas had produced (0 unless a delta was lost)."}),
			recompute: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: "ioc_aggregate_recompute_duration_seconds", Help: "Time to compute and publish changed snapshots, by trigger (records, check, recheck, day).",
				Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"trigger"}),
			published: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_aggregate_snapshots_published_total", Help: "Changed snapshots published on the bus."}),
			latency: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "ioc_aggregate_publish_latency_seconds", Help: "Time from records being stored to their units' snapshots being published.",
				Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
			errors: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_aggregate_errors_total", Help: "Recomputations or publications that failed."}),
			leader: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "ioc_aggregate_leader", Help: "1 while this node holds the lease to compute and publish live figures."}),
			takeovers: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_aggregate_takeovers_total", Help: "Times this node took the lease and republished every topic."}),
		},
	}
	a.q.queries = a.m.queries
	if promReg != nil {
		promReg.MustRegister(a.m.queries, a.m.deltas, a.m.corrections, a.m.recompute, a.m.published, a.m.latency, a.m.errors, a.m.leader, a.m.takeovers)
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
	counts, x, err := a.onDemand(ctx, scope{h: h, codes: h.Subtree(code)}, w, now)
	if err != nil {
		return Snapshot{}, err
	}
	return newSnapshot(h, u, w, counts[w][code], x, a.asOf(now)), nil
}

// ChildSnapshots computes the figures of each direct child of a unit, ordered
// by code.
func (a *Aggregator) ChildSnapshots(ctx context.Context, hierarchy, code string, w Window) ([]Snapshot, error) {
	h, _, err := a.unit(hierarchy, code)
	if err != nil {
		return nil, err
	}
	now := a.now()
	counts, x, err := a.onDemand(ctx, scope{h: h, codes: h.Subtree(code)}, w, now)
	if err != nil {
		return nil, err
	}
	children := h.Children(code)
	out := make([]Snapshot, 0, len(children))
	for _, c := range children {
		out = append(out, newSnapshot(h, c, w, counts[w][c.Code], x, a.asOf(now)))
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
	counts, x, err := a.onDemand(ctx, scope{h: h, codes: h.Subtree(code)}, w, now)
	if err != nil {
		return MapSnapshot{}, err
	}
	return newMapSnapshot(h, u, w, counts[w], x, a.asOf(now)), nil
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
	counts, x, err := a.onDemand(ctx, sc, w, now)
	if err != nil {
		return nil, err
	}
	units := h.Select(level, parent)
	out := make([]Snapshot, 0, len(units))
	for _, u := range units {
		out = append(out, newSnapshot(h, u, w, counts[w][u.Code], x, a.asOf(now)))
	}
	return out, nil
}

// onDemand reads the counts of sc over w, and the extra figures, for a
// snapshot computed on the spot.
func (a *Aggregator) onDemand(ctx context.Context, sc scope, w Window, now time.Time) (map[Window]map[string]Counts, *extras, error) {
	counts, err := a.q.counts(ctx, "snapshot", sc, []Window{w}, now, a.cfg.Location)
	if err != nil {
		return nil, nil, err
	}
	x, err := a.demandExtras(ctx, sc.h, now)
	if err != nil {
		return nil, nil, fmt.Errorf("read the datasets' figures: %w", err)
	}
	return counts, x, nil
}

func (a *Aggregator) asOf(now time.Time) time.Time {
	return now.In(a.cfg.Location).Truncate(time.Second)
}
