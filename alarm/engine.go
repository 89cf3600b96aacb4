package alarm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/openioc/ioc/severity"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/topic"
)

// Config tunes an Engine. Zero fields take the defaults.
type Config struct {
	// Interval is how often every rule is evaluated, so that offline
	// devices and windows that slide past their events are noticed without
	// new records; default 5s.
	Interval time.Duration
	// MinInterval spaces evaluations triggered by new records, so that a
	// busy ingest does not have every rule evaluated for each batch;
	// default 1s.
	MinInterval time.Duration
	// SensorKinds and EventTypes are what rules may name.
	SensorKinds, EventTypes []string
	// Feeds tells how live the department datasets are; nil: rules of
	// kind dataset_feed find nothing.
	Feeds Feeds
}

// Feeds tells how live the department datasets' feeds are.
type Feeds interface {
	Feeds(ctx context.Context, now time.Time) ([]Feed, error)
}

// Feed is a dataset's liveness as a dataset_feed rule judges it.
type Feed struct {
	Dataset string
	// Area is the unit the dataset covers, where its alarm shows; "" for
	// the whole hierarchy.
	Area string
	// Late says the period Due has not come; Since is when it became
	// late, or when the connector's run failed.
	Late   bool
	Due    string
	Latest string
	// Completeness is the share of the dataset's units with values for
	// its latest period; nil for datasets of points.
	Completeness *float64
	// Failure is why the connector's last run failed; "" when it did not.
	Failure string
	Since   time.Time
}

// Leases serialise changes to alarms across nodes. Each acquisition's
// fencing token starts the versions of the alarms/ messages published
// under it, so a later change always carries a newer version, on any node.
type Leases interface {
	Acquire(ctx context.Context, name string) (*lease.Lease, error)
}

// Publisher carries alarms/ topics to every node's screens. It refuses a
// message whose version is not newer than its topic's with bus.ErrStale.
type Publisher interface {
	Publish(ctx context.Context, msgs ...bus.Message) error
}

// Devices is what the engine needs of the device registry.
type Devices interface {
	Device(id string) (device.Device, bool)
	List(areas []string, kind string) []device.Device
	LastSeen(ctx context.Context) (map[string]time.Time, error)
}

// Notifier learns which units' open-alarm counts changed. It must not block.
type Notifier interface {
	MarkDirty(hierarchy string, codes []string)
}

// Engine evaluates rules and runs the alarm lifecycle; see the package doc.
type Engine struct {
	cfg     Config
	conn    driver.Conn
	db      string
	h       *geo.Hierarchy
	devices Devices
	base    []Rule
	leases  Leases
	pub     Publisher
	notify  Notifier
	logger  *slog.Logger
	loc     *time.Location // of every time an alarm carries out
	now     func() time.Time
	wake    chan struct{}
	m       metrics

	mu      sync.Mutex
	lastErr error
	// unpublished are the units whose alarms/ message could not be
	// published; the next evaluation publishes their alarms again.
	unpublished map[string]bool
}

type metrics struct {
	evaluations prometheus.Histogram
	changes     *prometheus.CounterVec
	errors      prometheus.Counter
}

// New returns an engine over store for the units of h. base are the rules
// of the file, or the defaults; rules made through the API are stored in
// ClickHouse. notify may be nil.
func New(cfg Config, store *chstore.Store, h *geo.Hierarchy, devices Devices, base []Rule, leases Leases, pub Publisher,
	notify Notifier, logger *slog.Logger, reg prometheus.Registerer) (*Engine, error) {
	if store == nil || h == nil || devices == nil || leases == nil || pub == nil {
		return nil, errors.New("alarm engine needs a store, a hierarchy, the devices, leases and a publisher")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = time.Second
	}
	e := &Engine{
		cfg: cfg, conn: store.Conn(), db: store.Database(), h: h, devices: devices, base: base, leases: leases, pub: pub,
		notify: notify, logger: logger, loc: store.Location(), wake: make(chan struct{}, 1), unpublished: map[string]bool{},
		m: metrics{
			evaluations: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "ioc_alarm_evaluation_duration_seconds", Help: "Time to evaluate every rule once.",
				Buckets: prometheus.ExponentialBuckets(0.002, 2, 12)}),
			changes: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_alarm_changes_total", Help: "Alarm changes by action (opened, acknowledged, resolved)."}, []string{"action"}),
			errors: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_alarm_evaluation_errors_total", Help: "Evaluations that failed."}),
		},
	}
	// Alarms are stamped in the deployment's zone, as the rest of the API
	// writes times; instants compare the same in any zone.
	e.now = func() time.Time { return time.Now().In(e.loc) }
	if reg != nil {
		reg.MustRegister(e.m.evaluations, e.m.changes, e.m.errors)
	}
	return e, nil
}

// MarkDirty asks for an evaluation soon: new readings or events were
// stored. It never blocks.
func (e *Engine) MarkDirty() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run evaluates the rules on every MarkDirty (spaced by MinInterval) and
// every Interval until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	tick := time.NewTicker(e.cfg.Interval)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
			if wait := e.cfg.MinInterval - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			}
		case <-tick.C:
		}
		last = time.Now()
		if err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
			e.m.errors.Inc()
			e.mu.Lock()
			repeated := e.lastErr != nil
			e.lastErr = err
			e.mu.Unlock()
			if !repeated {
				e.logger.Warn("alarm evaluation failed; retrying", "err", err)
			}
		} else if err == nil {
			e.mu.Lock()
			e.lastErr = nil
			e.mu.Unlock()
		}
	}
}

// finding is one rule's verdict on one device.
type finding struct {
	deviceID  string
	area      string // where the evidence was filed, for devices not in the registry
	firing    bool
	value     float64
	threshold float64
	message   string
}

// Evaluate evaluates every rule once and applies the changes.
func (e *Engine) Evaluate(ctx context.Context) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := e.leases.Acquire(ctx, e.db+".alarms")
	if err != nil {
		return fmt.Errorf("lock alarms: %w", err)
	}
	defer l.Release()
	v := bus.NewVersions(l.Token())
	rules, err := e.Rules(ctx)
	if err != nil {
		return err
	}
	current, err := e.queryAlarms(ctx, "hierarchy = ? AND state != 'resolved'", 0, e.h.Name())
	if err != nil {
		return err
	}
	now := e.now().UTC().Truncate(time.Second)
	manual, err := e.manualResolves(ctx, now.Add(-maxAfter))
	if err != nil {
		return err
	}
	open := map[string]Alarm{}
	for _, a := range current {
		open[a.key()] = a
	}
	var seen map[string]time.Time // device reports, fetched once if a rule needs them
	var feeds []Feed              // the datasets' feeds, read once if a rule needs them
	feedsRead := false
	var changes []change
	active := map[string]bool{}
	for _, r := range rules {
		if r.Disabled {
			continue
		}
		active[r.ID] = true
		var fs []finding
		switch r.Kind {
		case Threshold:
			fs, err = e.thresholds(ctx, r, now, manual)
		case EventCount:
			fs, err = e.eventCounts(ctx, r, now, manual, open)
		case Offline:
			if seen == nil {
				if seen, err = e.devices.LastSeen(ctx); err != nil {
					return err
				}
			}
			fs = e.offline(r, now, manual, seen)
		case DatasetFeed:
			if !feedsRead && e.cfg.Feeds != nil {
				if feeds, err = e.cfg.Feeds.Feeds(ctx, now); err != nil {
					return fmt.Errorf("read the datasets' feeds: %w", err)
				}
			}
			feedsRead = true
			fs = datasetFeeds(r, feeds, manual)
		}
		if err != nil {
			return fmt.Errorf("evaluate rule %s: %w", r.ID, err)
		}
		for _, f := range fs {
			if r.Area != "" && !e.h.Contains(r.Area, e.areaOf(f)) {
				continue
			}
			k := r.ID + "\x00" + f.deviceID
			a, isOpen := open[k]
			switch {
			case f.firing && !isOpen:
				changes = append(changes, change{"opened", e.newAlarm(r, f, now)})
			case !f.firing && isOpen:
				changes = append(changes, change{"resolved", resolve(a, now, "", "", "cleared")})
			}
		}
	}
	for _, a := range current {
		if !active[a.RuleID] {
			changes = append(changes, change{"resolved", resolve(a, now, "", "", "rule_removed")})
		}
	}
	if err := e.apply(ctx, l, v, changes); err != nil {
		return err
	}
	if err := e.republish(ctx, l, v); err != nil {
		return err
	}
	e.m.evaluations.Observe(time.Since(start).Seconds())
	return nil
}

func (e *Engine) areaOf(f finding) string {
	if d, ok := e.devices.Device(f.deviceID); ok {
		return d.AreaCode
	}
	return f.area
}

// manualResolves returns, per rule and device, the latest time an operator
// resolved its alarm: a condition that still holds then does not reopen it,
// only fresh evidence does.
func (e *Engine) manualResolves(ctx context.Context, since time.Time) (map[string]time.Time, error) {
	rows, err := e.conn.Query(ctx, `SELECT rule_id, device_id, max(assumeNotNull(resolved_at)) FROM `+e.db+`.alarms FINAL
		WHERE hierarchy = ? AND state = 'resolved' AND resolution = 'manual' AND opened_at >= ?
		GROUP BY rule_id, device_id`, e.h.Name(), chstore.Time(since))
	if err != nil {
		return nil, fmt.Errorf("query manual resolutions: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var rule, dev string
		var t time.Time
		if err := rows.Scan(&rule, &dev, &t); err != nil {
			return nil, fmt.Errorf("read manual resolutions: %w", err)
		}
		out[rule+"\x00"+dev] = t.UTC()
	}
	return out, rows.Err()
}

type change struct {
	action string
	alarm  Alarm
}

func (e *Engine) newAlarm(r Rule, f finding, now time.Time) Alarm {
	a := Alarm{
		ID: newID(now), RuleID: r.ID, RuleName: r.Name, RuleKind: r.Kind, DeviceID: f.deviceID, DeviceName: f.deviceID,
		Hierarchy: e.h.Name(), AreaCode: f.area, Severity: r.Severity, State: Open, Message: f.message,
		Value: f.value, Threshold: f.threshold, OpenedAt: now, UpdatedAt: now, Version: uint64(now.UnixNano()),
	}
	if d, ok := e.devices.Device(f.deviceID); ok {
		a.DeviceKind, a.DeviceName, a.AreaCode, a.Lat, a.Lon = d.Kind, d.Name, d.AreaCode, d.Lat, d.Lon
	}
	return a
}

func newID(now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "ALM-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

func resolve(a Alarm, now time.Time, by, note, resolution string) Alarm {
	a.State, a.ResolvedAt, a.ResolvedBy, a.ResolveNote, a.Resolution = Resolved, &now, by, note, resolution
	return bump(a, now)
}

// bump stamps a change: versions grow even when the clock does not.
func bump(a Alarm, now time.Time) Alarm {
	a.UpdatedAt = now
	a.Version = max(a.Version+1, uint64(time.Now().UnixNano()))
	return a
}

// apply stores changes, then publishes them, stamped under the lease l,
// and tells the aggregator.
func (e *Engine) apply(ctx context.Context, l *lease.Lease, v *bus.Versions, changes []change) error {
	if len(changes) == 0 {
		return nil
	}
	as := make([]Alarm, len(changes))
	for i, c := range changes {
		as[i] = c.alarm
	}
	if err := e.writeAlarms(ctx, as); err != nil {
		return err
	}
	open, err := e.queryAlarms(ctx, "hierarchy = ? AND state != 'resolved'", 0, e.h.Name())
	if err != nil {
		return err
	}
	areas := map[string]bool{}
	var msgs []TopicMessage
	for _, c := range changes {
		e.m.changes.WithLabelValues(c.action).Inc()
		e.logger.Info("alarm "+c.action, "alarm", c.alarm.ID, "rule", c.alarm.RuleID, "device", c.alarm.DeviceID,
			"area", c.alarm.AreaCode, "by", c.alarm.AcknowledgedBy+c.alarm.ResolvedBy)
		areas[c.alarm.AreaCode] = true
		for _, u := range e.chain(c.alarm.AreaCode) {
			msgs = append(msgs, TopicMessage{Area: u, AsOf: e.now().Truncate(time.Second), Open: e.within(open, u),
				Change: &Change{Action: c.action, Alarm: c.alarm}})
		}
	}
	if err := e.publish(ctx, l, v, msgs); err != nil {
		return err
	}
	if e.notify != nil {
		codes := make([]string, 0, len(areas))
		for c := range areas {
			codes = append(codes, c)
		}
		e.notify.MarkDirty(e.h.Name(), codes)
	}
	return nil
}

// publish sends alarms/ messages in order, each with the next version of
// the lease, unless the lease was lost meanwhile: a node that may have been
// overtaken must not publish. Units whose message did not go out are kept
// for the next evaluation to publish again; the changes themselves are
// stored already.
func (e *Engine) publish(ctx context.Context, l *lease.Lease, v *bus.Versions, msgs []TopicMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]bus.Message, len(msgs))
	for i, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode %s: %w", topic.Alarms.Of(m.Area), err)
		}
		version, err := v.Next()
		if err != nil {
			return err
		}
		out[i] = bus.Message{Topic: topic.Alarms.Of(m.Area).String(), Version: version, Payload: b}
	}
	err := errors.New("the alarms lease was lost")
	if l.Held() {
		err = e.pub.Publish(ctx, out...)
	}
	if err == nil || bus.OnlyStale(err) {
		// A refused message was overtaken by a newer holder's, which
		// carries the newer state.
		return nil
	}
	e.logger.Warn("publish alarm changes; the next evaluation publishes them again", "topics", len(out), "err", err)
	e.mu.Lock()
	for _, m := range msgs {
		e.unpublished[m.Area] = true
	}
	e.mu.Unlock()
	return nil
}

// republish publishes again the alarms/ topics of the units whose last
// message did not go out (Redis was down, the lease lapsed), with every
// alarm still open and no change, so screens and the bus's latest values
// catch up.
func (e *Engine) republish(ctx context.Context, l *lease.Lease, v *bus.Versions) error {
	e.mu.Lock()
	units := e.unpublished
	e.unpublished = map[string]bool{}
	e.mu.Unlock()
	if len(units) == 0 {
		return nil
	}
	open, err := e.queryAlarms(ctx, "hierarchy = ? AND state != 'resolved'", 0, e.h.Name())
	if err != nil {
		e.mu.Lock()
		maps.Copy(e.unpublished, units)
		e.mu.Unlock()
		return err
	}
	msgs := make([]TopicMessage, 0, len(units))
	for _, u := range slices.Sorted(maps.Keys(units)) {
		msgs = append(msgs, TopicMessage{Area: u, AsOf: e.now().Truncate(time.Second), Open: e.within(open, u)})
	}
	return e.publish(ctx, l, v, msgs)
}

// chain is a unit and its ancestors.
func (e *Engine) chain(code string) []string {
	var out []string
	for c := code; c != ""; {
		out = append(out, c)
		u, ok := e.h.Unit(c)
		if !ok {
			break
		}
		c = u.Parent
	}
	return out
}

// within returns the alarms in the subtree of area, most severe and newest
// first.
func (e *Engine) within(as []Alarm, area string) []Alarm {
	out := []Alarm{}
	for _, a := range as {
		if e.h.Contains(area, a.AreaCode) {
			out = append(out, a)
		}
	}
	sortOpen(out)
	return out
}

func sortOpen(as []Alarm) {
	sort.SliceStable(as, func(i, j int) bool {
		if ri, rj := severity.Rank(as[i].Severity), severity.Rank(as[j].Severity); ri != rj {
			return ri > rj // the most serious first
		}
		if !as[i].OpenedAt.Equal(as[j].OpenedAt) {
			return as[i].OpenedAt.After(as[j].OpenedAt)
		}
		return as[i].ID < as[j].ID
	})
}

// TopicMessage is the payload of an alarms/{area} topic: every alarm not
// yet resolved in the unit's subtree, and the change that caused the
// message (none in a snapshot). Carrying the whole list means a screen that
// missed a message still shows the truth.
type TopicMessage struct {
	Area   string    `json:"area"`
	AsOf   time.Time `json:"as_of"`
	Open   []Alarm   `json:"open"`
	Change *Change   `json:"change,omitempty"`
}

// Change is one step of an alarm's lifecycle.
type Change struct {
	Action string `json:"action"` // opened, acknowledged or resolved
	Alarm  Alarm  `json:"alarm"`
}

// Snapshot returns the alarms/{area} payload now.
func (e *Engine) Snapshot(ctx context.Context, area string) (TopicMessage, error) {
	open, err := e.List(ctx, Query{Areas: []string{area}, States: []string{Open, Acknowledged}, Limit: 10000})
	if err != nil {
		return TopicMessage{}, err
	}
	sortOpen(open)
	return TopicMessage{Area: area, AsOf: e.now().Truncate(time.Second), Open: open}, nil
}

// Acknowledge records that by has taken an open alarm in hand.
func (e *Engine) Acknowledge(ctx context.Context, id, by, note string) (Alarm, error) {
	return e.act(ctx, id, func(a Alarm, now time.Time) (Alarm, string, error) {
		if a.State != Open {
			return a, "", fmt.Errorf("%w: alarm %s is %s%s; only an open alarm can be acknowledged", ErrState, id, a.State, who(a))
		}
		a.State, a.AcknowledgedAt, a.AcknowledgedBy, a.AckNote = Acknowledged, &now, by, note
		return bump(a, now), "acknowledged", nil
	})
}

// Resolve closes an alarm by hand. The condition, if it still holds, does
// not reopen it; fresh evidence does.
func (e *Engine) Resolve(ctx context.Context, id, by, note string) (Alarm, error) {
	return e.act(ctx, id, func(a Alarm, now time.Time) (Alarm, string, error) {
		if a.State == Resolved {
			return a, "", fmt.Errorf("%w: alarm %s is already resolved%s", ErrState, id, who(a))
		}
		return resolve(a, now, by, note, "manual"), "resolved", nil
	})
}

func who(a Alarm) string {
	switch {
	case a.State == Acknowledged:
		return fmt.Sprintf(" (by %s at %s)", a.AcknowledgedBy, a.AcknowledgedAt.Format(time.RFC3339))
	case a.State == Resolved && a.ResolvedBy != "":
		return fmt.Sprintf(" (by %s at %s)", a.ResolvedBy, a.ResolvedAt.Format(time.RFC3339))
	case a.State == Resolved:
		return fmt.Sprintf(" (%s at %s)", a.Resolution, a.ResolvedAt.Format(time.RFC3339))
	}
	return ""
}

func (e *Engine) act(ctx context.Context, id string, f func(Alarm, time.Time) (Alarm, string, error)) (Alarm, error) {
	l, err := e.leases.Acquire(ctx, e.db+".alarms")
	if err != nil {
		return Alarm{}, fmt.Errorf("lock alarms: %w", err)
	}
	defer l.Release()
	a, err := e.Get(ctx, id)
	if err != nil {
		return Alarm{}, err
	}
	a, action, err := f(a, e.now().UTC().Truncate(time.Second))
	if err != nil {
		return a, err
	}
	if err := e.apply(ctx, l, bus.NewVersions(l.Token()), []change{{action, a}}); err != nil {
		return a, err
	}
	return a, nil
}
