package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/topic"
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
		out[id] = t.In(r.loc)
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
		l.ObservedAt = l.ObservedAt.In(r.loc)
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

// Run refreshes the cache every RefreshInterval until ctx ends. One node
// at a time, the one holding the devices lease, also publishes the
// devices/ topics whose devices changed (joined, moved, went online or
// offline): status is derived from the clock as much as from stored data,
// so two nodes would compute it at slightly different moments, and only
// one computing and stamping versions with its lease token keeps a
// screen's devices from flickering back. Taking the lease republishes
// every topic; losing it stops publishing at once. It returns nil once ctx
// ends: a failed refresh is retried, never fatal.
func (r *Registry) Run(ctx context.Context) error {
	var won chan *lease.Lease
	var wg sync.WaitGroup // the election, and releases of lost leases
	defer wg.Wait()
	if r.pub != nil {
		won = make(chan *lease.Lease)
		wg.Go(func() { lease.Campaign(ctx, r.leases, r.lease, won, nil) })
	}
	t := time.NewTicker(r.cfg.RefreshInterval)
	defer t.Stop()
	var (
		held     *lease.Lease
		versions *bus.Versions
		termCtx  = ctx
		cancel   = func() {}
	)
	end := func() {
		cancel()
		wg.Go(held.Release)
		held, versions, termCtx, cancel = nil, nil, ctx, func() {}
	}
	defer func() {
		if held != nil {
			end()
		}
	}()
	for {
		err := r.refresh(termCtx, held, versions)
		switch {
		case held != nil && (errors.Is(err, bus.ErrStale) || errors.Is(err, bus.ErrExhausted) || termCtx.Err() != nil) && ctx.Err() == nil:
			r.logger.Warn("stopped publishing devices; waiting for the lease again", "token", held.Token(), "err", err)
			end()
		case err != nil && ctx.Err() == nil:
			r.logger.Warn("device refresh failed; retrying", "err", err)
		}
		var lost <-chan struct{}
		if held != nil {
			lost = held.Lost()
		}
		select {
		case <-ctx.Done():
			return nil
		case l := <-won:
			if held != nil {
				end() // lost, and the election was quicker to say so
			}
			held, versions = l, bus.NewVersions(l.Token())
			termCtx, cancel = context.WithCancel(ctx)
			tc, tcancel := termCtx, cancel
			wg.Go(func() {
				select {
				case <-l.Lost():
					tcancel()
				case <-tc.Done():
				}
			})
			clear(r.last) // republish every topic at once
			r.logger.Info("took the devices lease; publishing every devices topic", "token", l.Token())
		case <-lost:
			r.logger.Warn("lost the devices lease; stopped publishing devices", "token", held.Token())
			end()
		case <-t.C:
		}
	}
}

// refresh reloads the cache and the statuses; while held, it publishes the
// devices/ topics that changed, stamped with versions.
func (r *Registry) refresh(ctx context.Context, held *lease.Lease, versions *bus.Versions) error {
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
	if held == nil {
		return nil
	}
	var msgs []bus.Message
	keys := map[string]string{}
	for code, vs := range byTopic {
		// Readings change every minute; only who is where, and in which
		// state, is news for the map.
		var key strings.Builder
		for _, v := range vs {
			fmt.Fprintf(&key, "%s|%s|%s|%.6f|%.6f|%s\n", v.ID, v.Name, v.Status, v.Lat, v.Lon, v.AreaCode)
		}
		name := topic.Devices.Of(code).String()
		if r.last[name] == key.String() {
			continue
		}
		b, err := json.Marshal(Map{Area: code, AsOf: now.Truncate(time.Second), Devices: vs})
		if err != nil {
			return fmt.Errorf("encode %s: %w", name, err)
		}
		v, err := versions.Next()
		if err != nil {
			return err
		}
		msgs = append(msgs, bus.Message{Topic: name, Version: v, Payload: b})
		keys[name] = key.String()
	}
	if len(msgs) == 0 {
		return nil
	}
	if !held.Held() {
		return fmt.Errorf("publish devices: %w", context.Canceled)
	}
	if err := r.pub.Publish(ctx, msgs...); err != nil {
		// What went out is not known: the next refresh sends it again.
		return fmt.Errorf("publish %d devices topics: %w", len(msgs), err)
	}
	maps.Copy(r.last, keys)
	return nil
}
