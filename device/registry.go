package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/paulmach/orb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
)

// Config tunes a Registry. Zero fields take the defaults.
type Config struct {
	// CameraTimeout: a camera silent this long counts as offline; default 3m.
	CameraTimeout time.Duration
	// SensorTimeout: a sensor silent this long counts as offline; default 5m.
	SensorTimeout time.Duration
	// RefreshInterval is how often the cache learns of devices registered on
	// other nodes and statuses are recomputed; default 5s.
	RefreshInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.CameraTimeout <= 0 {
		c.CameraTimeout = 3 * time.Minute
	}
	if c.SensorTimeout <= 0 {
		c.SensorTimeout = 5 * time.Minute
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = 5 * time.Second
	}
	return c
}

// Locator finds the units of the current hierarchy at a point, top down.
type Locator interface {
	Locate(p orb.Point) []geo.Unit
}

// Publisher carries device maps to every node's screens. It refuses a
// message whose version is not newer than its topic's with bus.ErrStale.
type Publisher interface {
	Publish(ctx context.Context, msgs ...bus.Message) error
}

// Leases elect the one node that publishes the devices/ topics.
type Leases interface {
	Acquire(ctx context.Context, name string) (*lease.Lease, error)
}

// InvalidError is a registration refused for what it says.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Registry is the device registry; see the package doc.
type Registry struct {
	cfg    Config
	conn   driver.Conn
	db     string
	h      *geo.Hierarchy
	pub    Publisher
	leases Leases
	lease  string // name of the publishing lease
	logger *slog.Logger
	loc    *time.Location // of every time a device carries out
	now    func() time.Time
	gauge  *prometheus.GaugeVec

	mu      sync.RWMutex
	devices map[string]Device
	// changes counts the devices this node stored; changed holds, for each,
	// the count when it was, so that a Load whose read began before it
	// keeps it rather than the older row it read.
	changes uint64
	changed map[string]uint64

	// last holds what each devices/ topic last carried; only Run touches it.
	last map[string]string
}

// New returns a registry over store for the units of h. Of the nodes
// sharing leases, the one holding "<database>.devices" publishes on pub;
// with pub nil, nothing is published.
func New(cfg Config, store *chstore.Store, h *geo.Hierarchy, pub Publisher, leases Leases, logger *slog.Logger, reg prometheus.Registerer) (*Registry, error) {
	if store == nil || h == nil {
		return nil, errors.New("device registry needs a store and a hierarchy")
	}
	if pub != nil && leases == nil {
		return nil, errors.New("device registry needs leases to publish")
	}
	r := &Registry{
		cfg: cfg.withDefaults(), conn: store.Conn(), db: store.Database(), h: h, pub: pub, leases: leases,
		lease: store.Database() + ".devices", logger: logger, loc: store.Location(),
		devices: map[string]Device{}, last: map[string]string{},
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ioc_devices", Help: "Registered devices by kind and status (online, offline)."}, []string{"kind", "status"}),
	}
	// Times are stamped in the deployment's zone, as the rest of the API
	// writes them; instants compare the same in any zone.
	r.now = func() time.Time { return time.Now().In(r.loc) }
	if reg != nil {
		reg.MustRegister(r.gauge)
	}
	return r, nil
}

// Load fills the cache from ClickHouse.
func (r *Registry) Load(ctx context.Context) error {
	r.mu.RLock()
	began := r.changes
	r.mu.RUnlock()
	rows, err := r.conn.Query(ctx, `SELECT id, toString(kind), name, lat, lon, hierarchy, area_code, channel_name, address,
		offline_after_s, source, updated_at, secret_hash FROM `+r.db+`.devices FINAL`)
	if err != nil {
		return fmt.Errorf("load devices: %w", err)
	}
	defer rows.Close()
	all := map[string]Device{}
	for rows.Next() {
		var d Device
		var off uint32
		if err := rows.Scan(&d.ID, &d.Kind, &d.Name, &d.Lat, &d.Lon, &d.Hierarchy, &d.AreaCode, &d.ChannelName, &d.Address,
			&off, &d.Source, &d.UpdatedAt, &d.SecretHash); err != nil {
			return fmt.Errorf("read devices: %w", err)
		}
		d.OfflineAfter = Duration(time.Duration(off) * time.Second)
		d.UpdatedAt = d.UpdatedAt.In(r.loc)
		d.Credentials = d.SecretHash != ""
		all[d.ID] = d
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read devices: %w", err)
	}
	r.replace(all, began)
	return nil
}

// replace makes all, read from the store since the count of changes was
// began, the registry, but for the devices this node stored since.
func (r *Registry) replace(all map[string]Device, began uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, at := range r.changed {
		if at > began {
			all[id] = r.devices[id] // stored after the read began: the read may predate it
		} else {
			delete(r.changed, id)
		}
	}
	r.devices = all
}

// stored records devices this node stored. r.mu is held.
func (r *Registry) stored(d Device) {
	if r.changed == nil {
		r.changed = map[string]uint64{}
	}
	r.changes++
	r.devices[d.ID], r.changed[d.ID] = d, r.changes
}

// Device returns a registered device.
func (r *Registry) Device(id string) (Device, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.devices[id]
	return d, ok
}

// List returns the registered devices in the subtrees of areas (all when
// areas is nil), of kind (any when empty), ordered by id.
func (r *Registry) List(areas []string, kind string) []Device {
	r.mu.RLock()
	out := make([]Device, 0, len(r.devices))
	for _, d := range r.devices {
		if (kind == "" || d.Kind == kind) && r.inAreas(areas, d.AreaCode) {
			out = append(out, d)
		}
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (r *Registry) inAreas(areas []string, code string) bool {
	if areas == nil {
		return true
	}
	for _, a := range areas {
		if r.h.Contains(a, code) {
			return true
		}
	}
	return false
}

// MatchCamera finds the camera a platform notification comes from: by its
// channel name (the registered one, or one that starts with the camera's
// id), else by address as "ip/channel" or "ip".
func (r *Registry) MatchCamera(channelName, ip, channel string) (Device, bool) {
	channelName = strings.TrimSpace(channelName)
	first, _, _ := strings.Cut(channelName, " ")
	r.mu.RLock()
	defer r.mu.RUnlock()
	var byAddr, byIP *Device
	for _, d := range r.devices {
		if d.Kind != Camera {
			continue
		}
		if channelName != "" && (d.ChannelName == channelName || d.ID == first) {
			return d, true
		}
		if ip != "" && d.Address != "" {
			if d.Address == ip+"/"+channel {
				byAddr = &d
			} else if d.Address == ip && byIP == nil {
				byIP = &d
			}
		}
	}
	switch {
	case byAddr != nil:
		return *byAddr, true
	case byIP != nil:
		return *byIP, true
	}
	return Device{}, false
}

// Put registers or updates a device from the API: it checks d, places it by
// its position, and stores it. created says the id was new. A d without
// SecretHash keeps the credentials the device had.
func (r *Registry) Put(ctx context.Context, d Device) (Device, bool, error) {
	if err := r.check(&d); err != nil {
		return d, false, err
	}
	now := r.now().In(r.loc)
	d.Source, d.UpdatedAt = "api", now.Truncate(time.Second)
	was, existed := r.Device(d.ID)
	if d.SecretHash == "" {
		d.SecretHash = was.SecretHash
	}
	d.Credentials = d.SecretHash != ""
	if err := r.insert(ctx, []Device{d}, uint64(now.UnixNano())); err != nil {
		return d, false, err
	}
	r.mu.Lock()
	r.stored(d)
	r.mu.Unlock()
	return d, !existed, nil
}

// Ensure registers devices first seen in reports, unless already known.
func (r *Registry) Ensure(ctx context.Context, ds []Device) error {
	var fresh []Device
	seen := map[string]bool{}
	for _, d := range ds {
		if _, ok := r.Device(d.ID); !ok && !seen[d.ID] {
			seen[d.ID] = true
			fresh = append(fresh, d)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	// Version 1: a registration through the API, made anywhere, wins.
	if err := r.insert(ctx, fresh, 1); err != nil {
		return err
	}
	r.mu.Lock()
	for _, d := range fresh {
		if _, ok := r.devices[d.ID]; !ok {
			r.stored(d)
		}
	}
	r.mu.Unlock()
	return nil
}

func (r *Registry) insert(ctx context.Context, ds []Device, version uint64) error {
	b, err := r.conn.PrepareBatch(ctx, `INSERT INTO `+r.db+`.devices (id, kind, name, lat, lon, hierarchy, area_code,
		channel_name, address, offline_after_s, source, updated_at, version, secret_hash)`)
	if err != nil {
		return fmt.Errorf("prepare insert into devices: %w", err)
	}
	for _, d := range ds {
		if err := b.Append(d.ID, d.Kind, d.Name, d.Lat, d.Lon, d.Hierarchy, d.AreaCode, d.ChannelName, d.Address,
			uint32(time.Duration(d.OfflineAfter)/time.Second), d.Source, d.UpdatedAt, version, d.SecretHash); err != nil {
			b.Abort()
			return fmt.Errorf("append to devices batch: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into devices: %w", err)
	}
	return nil
}

func (r *Registry) check(d *Device) error {
	bad := func(format string, args ...any) error { return &InvalidError{Msg: fmt.Sprintf(format, args...)} }
	if err := CheckID(d.ID); err != nil {
		return bad("%v", err)
	}
	if !slices.Contains(Kinds, d.Kind) {
		return bad("kind %q is not one of %s", d.Kind, strings.Join(Kinds, ", "))
	}
	if d.Name == "" {
		d.Name = d.ID
	}
	for _, f := range []struct{ name, v string }{{"name", d.Name}, {"channel_name", d.ChannelName}, {"address", d.Address}} {
		if len(f.v) > 200 || !utf8.ValidString(f.v) {
			return bad("%s must be valid UTF-8 of at most 200 bytes", f.name)
		}
	}
	if d.OfflineAfter < 0 || time.Duration(d.OfflineAfter) > 7*24*time.Hour {
		return bad("offline_after %s is out of range: use 0 (the kind's default) up to 168h", time.Duration(d.OfflineAfter))
	}
	switch {
	case math.IsNaN(d.Lat) || d.Lat < -90 || d.Lat > 90:
		return bad("lat %v is out of range -90..90", d.Lat)
	case math.IsNaN(d.Lon) || d.Lon < -180 || d.Lon > 180:
		return bad("lon %v is out of range -180..180", d.Lon)
	case d.Lat == 0 && d.Lon == 0:
		return bad("lat and lon are required: the device's position places it in its unit")
	}
	chain := r.h.Locate(orb.Point{d.Lon, d.Lat})
	if len(chain) == 0 {
		return bad("position lat %v, lon %v is outside every unit of %s; check that lat and lon are not swapped", d.Lat, d.Lon, r.h.Name())
	}
	d.Hierarchy, d.AreaCode = r.h.Name(), chain[len(chain)-1].Code
	return nil
}

// Timeout is how long d may stay silent before it counts as offline.
func (r *Registry) Timeout(d Device) time.Duration {
	switch {
	case d.OfflineAfter > 0:
		return time.Duration(d.OfflineAfter)
	case d.Kind == Camera:
		return r.cfg.CameraTimeout
	default:
		return r.cfg.SensorTimeout
	}
}
