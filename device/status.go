package device

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/openioc/ioc/internal/bus"
)

// Latest is a sensor's most recent reading of one kind.
type Latest struct {
	Value      float64   `json:"value"`
	ObservedAt time.Time `json:"observed_at"`
}

// View is a device with its status now: what screens, lists and map layers
// show.
type View struct {
	Device
	Status   string            `json:"status"` // online or offline
	LastSeen *time.Time        `json:"last_seen"`
	Latest   map[string]Latest `json:"latest,omitempty"`
}

// Online reports whether v counts as online.
func (v View) Online() bool { return v.Status == "online" }

// Map is the payload of a devices/{area} topic.
type Map struct {
	Area    string    `json:"area"`
	AsOf    time.Time `json:"as_of"`
	Devices []View    `json:"devices"`
}

// LastSeen returns when each device last reported.
func (r *Registry) LastSeen(ctx context.Context) (map[string]time.Time, error) {
	rows, err := r.conn.Query(ctx, `SELECT device_id, max(seen) FROM `+r.db+`.device_last_seen GROUP BY device_id`)
	if err != nil {
		return nil, fmt.Errorf("query device_last_seen: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var t time.Time
		if err := rows.Scan(&id, &t); err != nil {
			return nil, fmt.Errorf("read device_last_seen: %w", err)
		}
		out[id] = t.UTC()
	}
	return out, rows.Err()
}

// LatestReadings returns each sensor's most recent reading per kind.
func (r *Registry) LatestReadings(ctx context.Context) (map[string]map[string]Latest, error) {
	rows, err := r.conn.Query(ctx, `SELECT sensor_id, kind, argMaxMerge(value), maxMerge(observed)
		FROM `+r.db+`.sensor_latest GROUP BY sensor_id, kind`)
	if err != nil {
		return nil, fmt.Errorf("query sensor_latest: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]Latest{}
	for rows.Next() {
		var id, kind string
		var l Latest
		if err := rows.Scan(&id, &kind, &l.Value, &l.ObservedAt); err != nil {
			return nil, fmt.Errorf("read sensor_latest: %w", err)
		}
		l.ObservedAt = l.ObservedAt.UTC()
		if out[id] == nil {
			out[id] = map[string]Latest{}
		}
		out[id][kind] = l
	}
	return out, rows.Err()
}

// Views returns the devices in the subtrees of areas (all when nil), of
// kind (any when empty), with their status at now, ordered by id.
func (r *Registry) Views(ctx context.Context, areas []string, kind string) ([]View, error) {
	seen, err := r.LastSeen(ctx)
	if err != nil {
		return nil, err
	}
	latest, err := r.LatestReadings(ctx)
	if err != nil {
		return nil, err
	}
	return r.views(r.List(areas, kind), seen, latest, r.now()), nil
}

func (r *Registry) views(ds []Device, seen map[string]time.Time, latest map[string]map[string]Latest, now time.Time) []View {
	out := make([]View, len(ds))
	for i, d := range ds {
		v := View{Device: d, Status: "offline", Latest: latest[d.ID]}
		if t, ok := seen[d.ID]; ok {
			v.LastSeen = &t
			if now.Sub(t) < r.Timeout(d) {
				v.Status = "online"
			}
		}
		out[i] = v
	}
	return out
}

// Counts are one unit's devices by kind and status, for the indicators.
type Counts struct {
	CamerasOnline, CamerasOffline, SensorsOnline, SensorsOffline uint64
}

// AreaCounts returns, per unit holding devices directly, its devices by
// kind and status now.
func (r *Registry) AreaCounts(ctx context.Context) (map[string]Counts, error) {
	seen, err := r.LastSeen(ctx)
	if err != nil {
		return nil, err
	}
	vs := r.views(r.List(nil, ""), seen, nil, r.now()) // status needs no readings
	out := map[string]Counts{}
	for _, v := range vs {
		c := out[v.AreaCode]
		switch {
		case v.Kind == Camera && v.Online():
			c.CamerasOnline++
		case v.Kind == Camera:
			c.CamerasOffline++
		case v.Online():
			c.SensorsOnline++
		default:
			c.SensorsOffline++
		}
		out[v.AreaCode] = c
	}
	return out, nil
}

// Snapshot returns the devices/{area} payload now.
func (r *Registry) Snapshot(ctx context.Context, area string) (Map, error) {
	vs, err := r.Views(ctx, []string{area}, "")
	if err != nil {
		return Map{}, err
	}
	return Map{Area: area, AsOf: r.now().Truncate(time.Second), Devices: vs}, nil
}

// Run refreshes the cache and publishes the devices/ topics whose devices
// changed (joined, moved, went online or offline) until ctx ends.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.RefreshInterval)
	defer t.Stop()
	for {
		if err := r.refresh(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("device refresh failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Registry) refresh(ctx context.Context) error {
	if err := r.Load(ctx); err != nil {
		return err
	}
	seen, err := r.LastSeen(ctx)
	if err != nil {
		return err
	}
	latest, err := r.LatestReadings(ctx)
	if err != nil {
		return err
	}
	now := r.now()
	all := r.views(r.List(nil, ""), seen, latest, now)
	byTopic := map[string][]View{}
	counts := map[[2]string]float64{}
	for _, v := range all {
		st := v.Status
		counts[[2]string{v.Kind, st}]++
		for code := v.AreaCode; code != ""; {
			byTopic[code] = append(byTopic[code], v)
			u, ok := r.h.Unit(code)
			if !ok {
				break
			}
			code = u.Parent
		}
	}
	for _, k := range Kinds {
		for _, st := range []string{"online", "offline"} {
			r.gauge.WithLabelValues(k, st).Set(counts[[2]string{k, st}])
		}
	}
	if r.pub == nil {
		return nil
	}
	for code, vs := range byTopic {
		// Readings change every minute; only who is where, and in which
		// state, is news for the map.
		var key strings.Builder
		for _, v := range vs {
			fmt.Fprintf(&key, "%s|%s|%s|%.6f|%.6f|%s\n", v.ID, v.Name, v.Status, v.Lat, v.Lon, v.AreaCode)
		}
		topic := Topic(code)
		if r.last[topic] == key.String() {
			continue
		}
		b, err := json.Marshal(Map{Area: code, AsOf: now.Truncate(time.Second), Devices: vs})
		if err != nil {
			return fmt.Errorf("encode %s: %w", topic, err)
		}
		if err := r.pub.Publish(ctx, bus.Message{Topic: topic, Payload: b}); err != nil {
			return fmt.Errorf("publish %s: %w", topic, err)
		}
		r.last[topic] = key.String()
	}
	return nil
}

// Topic is the live topic of the devices in a unit's subtree.
func Topic(area string) string { return "devices/" + area }
