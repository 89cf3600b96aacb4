// Package feed owns the live ticker of camera events: it gathers the events
// each node stores and publishes them on events/{area} for the unit and
// every ancestor, at most once per interval per topic, with a count of the
// events folded away. It also reads recent events back for a subscriber's
// first message and for the event-density map layer.
//
// Concurrency: a Feed is safe for concurrent use. Add never blocks and
// keeps a bounded number of events per topic; Run, called once, owns the
// publishing loop until its context ends.
package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/paulmach/orb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/topic"
)

// Config tunes a Feed. Zero fields take the defaults.
type Config struct {
	// Interval is the least time between two messages of a topic; default
	// 250ms, so a ticker moves at most four times a second.
	Interval time.Duration
	// MaxPerMessage is how many of the newest events a message lists; the
	// rest are counted as folded. Default 10.
	MaxPerMessage int
}

// Publisher carries messages to every node's screens. Ticker messages are
// a stream, not a state: they carry no version, so the bus delivers every
// one and keeps none.
type Publisher interface {
	Publish(ctx context.Context, msgs ...bus.Message) error
}

// Event is a camera event as screens show it.
type Event struct {
	ID         string          `json:"event_id"`
	CameraID   string          `json:"camera_id"`
	Type       string          `json:"type"`
	Severity   string          `json:"severity"`
	AreaCode   string          `json:"area_code"`
	AreaName   string          `json:"area_name"`
	Lat        float64         `json:"lat"`
	Lon        float64         `json:"lon"`
	OccurredAt time.Time       `json:"occurred_at"`
	Attrs      json.RawMessage `json:"attrs"`
}

// Message is the payload of an events/{area} topic: the newest events,
// newest first, and how many more arrived since the last message.
type Message struct {
	Area   string    `json:"area"`
	AsOf   time.Time `json:"as_of"`
	Events []Event   `json:"events"`
	Folded int       `json:"folded"`
}

type pending struct {
	events []Event // oldest first, at most MaxPerMessage
	folded int
}

// Feed is the camera-event ticker; see the package doc.
type Feed struct {
	cfg    Config
	conn   driver.Conn
	db     string
	h      *geo.Hierarchy
	pub    Publisher
	logger *slog.Logger
	loc    *time.Location // of every time a message carries
	folded prometheus.Counter

	mu      sync.Mutex
	pending map[string]*pending
}

// New returns a feed over store's camera events for the units of h.
func New(cfg Config, store *chstore.Store, h *geo.Hierarchy, pub Publisher, logger *slog.Logger, reg prometheus.Registerer) *Feed {
	if cfg.Interval <= 0 {
		cfg.Interval = 250 * time.Millisecond
	}
	if cfg.MaxPerMessage <= 0 {
		cfg.MaxPerMessage = 10
	}
	f := &Feed{cfg: cfg, conn: store.Conn(), db: store.Database(), h: h, pub: pub, logger: logger,
		loc: store.Location(), pending: map[string]*pending{},
		folded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_feed_events_folded_total", Help: "Camera events counted in a ticker message rather than listed."}),
	}
	if reg != nil {
		reg.MustRegister(f.folded)
	}
	return f
}

// Add queues stored camera events for the tickers of their units and
// ancestors. Heartbeats are not events.
func (f *Feed) Add(events []ingest.CameraEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range events {
		if e.Type == device.HeartbeatType || e.Hierarchy != f.h.Name() {
			continue
		}
		ev := f.event(e.EventID, e.CameraID, e.Type, e.Severity, e.AreaCode, e.Lat, e.Lon, e.OccurredAt, e.Attrs)
		for code := e.AreaCode; code != ""; {
			u, ok := f.h.Unit(code)
			if !ok {
				break
			}
			p := f.pending[code]
			if p == nil {
				p = &pending{}
				f.pending[code] = p
			}
			p.events = append(p.events, ev)
			if len(p.events) > f.cfg.MaxPerMessage {
				p.events = p.events[1:]
				p.folded++
			}
			code = u.Parent
		}
	}
}

func (f *Feed) event(id, camera, typ, sev, area string, lat, lon float64, at time.Time, attrs string) Event {
	u, _ := f.h.Unit(area)
	if attrs == "" {
		attrs = "{}"
	}
	return Event{ID: id, CameraID: camera, Type: typ, Severity: sev, AreaCode: area, AreaName: u.Name,
		Lat: lat, Lon: lon, OccurredAt: at.In(f.loc), Attrs: json.RawMessage(attrs)}
}

// Run publishes what accumulated every Interval until ctx ends, then
// returns nil: a failed publication is logged, and the next one goes on.
func (f *Feed) Run(ctx context.Context) error {
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		f.mu.Lock()
		batch := f.pending
		f.pending = map[string]*pending{}
		f.mu.Unlock()
		now := time.Now().In(f.loc).Truncate(time.Second)
		msgs := make([]bus.Message, 0, len(batch))
		for code, p := range batch {
			m := Message{Area: code, AsOf: now, Events: make([]Event, len(p.events)), Folded: p.folded}
			for i, e := range p.events {
				m.Events[len(p.events)-1-i] = e
			}
			f.folded.Add(float64(p.folded))
			b, err := json.Marshal(m)
			if err != nil {
				f.logger.Warn("encode ticker message", "topic", topic.Events.Of(code).String(), "err", err)
				continue
			}
			msgs = append(msgs, bus.Message{Topic: topic.Events.Of(code).String(), Stream: true, Payload: b})
		}
		if len(msgs) == 0 {
			continue
		}
		if err := f.pub.Publish(ctx, msgs...); err != nil && ctx.Err() == nil {
			f.logger.Warn("publish ticker messages", "topics", len(msgs), "err", err)
		}
	}
}

// Snapshot returns the newest camera events of the last day in a unit's
// subtree: what a new subscriber sees first.
func (f *Feed) Snapshot(ctx context.Context, area string) (Message, error) {
	now := time.Now().In(f.loc)
	rows, err := f.conn.Query(ctx, `SELECT event_id, camera_id, type, toString(severity), area_code, lat, lon, occurred_at, attrs
		FROM `+f.db+`.camera_events
		WHERE hierarchy = ? AND area_code IN ? AND occurred_at >= ? AND type != 'heartbeat'
		ORDER BY occurred_at DESC, event_id LIMIT ?`,
		f.h.Name(), chstore.In(f.h.Subtree(area)), chstore.Time(now.Add(-24*time.Hour)), f.cfg.MaxPerMessage)
	if err != nil {
		return Message{}, fmt.Errorf("query recent camera events: %w", err)
	}
	defer rows.Close()
	m := Message{Area: area, AsOf: now.Truncate(time.Second), Events: []Event{}}
	for rows.Next() {
		var id, cam, typ, sev, code, attrs string
		var lat, lon float64
		var at time.Time
		if err := rows.Scan(&id, &cam, &typ, &sev, &code, &lat, &lon, &at, &attrs); err != nil {
			return Message{}, fmt.Errorf("read recent camera events: %w", err)
		}
		m.Events = append(m.Events, f.event(id, cam, typ, sev, code, lat, lon, at, attrs))
	}
	return m, rows.Err()
}

// Cell is one square of the event-density grid: its south-west corner,
// its size in degrees and the events in it.
type Cell struct {
	Lon, Lat float64
	Size     float64
	Events   uint64
	Critical uint64
}

// Density counts camera events since from in squares of size degrees over
// bound, for the subtrees of areas (all when nil).
func (f *Feed) Density(ctx context.Context, areas []string, bound orb.Bound, size float64, from time.Time) ([]Cell, error) {
	if size <= 0 || math.IsNaN(size) {
		return nil, fmt.Errorf("cell size must be positive")
	}
	where, args := "hierarchy = ? AND occurred_at >= ? AND type != 'heartbeat' AND lon >= ? AND lon < ? AND lat >= ? AND lat < ?",
		[]any{f.h.Name(), chstore.Time(from), bound.Min[0], bound.Max[0], bound.Min[1], bound.Max[1]}
	if areas != nil {
		var codes []string
		for _, a := range areas {
			codes = append(codes, f.h.Subtree(a)...)
		}
		where += " AND area_code IN ?"
		args = append(args, chstore.In(codes))
	}
	args = append([]any{size, size}, args...)
	rows, err := f.conn.Query(ctx, `SELECT toInt64(floor(lon / ?)) AS x, toInt64(floor(lat / ?)) AS y, count(), countIf(severity = 'critical')
		FROM `+f.db+`.camera_events WHERE `+where+` GROUP BY x, y ORDER BY y, x`, args...)
	if err != nil {
		return nil, fmt.Errorf("query event density: %w", err)
	}
	defer rows.Close()
	var out []Cell
	for rows.Next() {
		var x, y int64
		c := Cell{Size: size}
		if err := rows.Scan(&x, &y, &c.Events, &c.Critical); err != nil {
			return nil, fmt.Errorf("read event density: %w", err)
		}
		c.Lon, c.Lat = float64(x)*size, float64(y)*size
		out = append(out, c)
	}
	return out, rows.Err()
}
