package ingest

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/openioc/ioc/device"
)

// SensorReadingWire is one measurement as sent on the wire
// (POST /api/v1/ingest/sensor-readings, MQTT ioc/sensors/{id}/readings).
// EventID is optional: without it the sensor, kind and time identify the
// reading, so a resent reading is still counted once.
type SensorReadingWire struct {
	EventID    string   `json:"event_id,omitempty"`
	SensorID   string   `json:"sensor_id"`
	Kind       string   `json:"kind"`
	Value      *float64 `json:"value"`
	Unit       string   `json:"unit,omitempty"`
	Lat        *float64 `json:"lat,omitempty"`
	Lon        *float64 `json:"lon,omitempty"`
	ObservedAt string   `json:"observed_at"`
	// AlertLevel and DangerLevel are the site's own thresholds, as water
	// level gauges report them; optional.
	AlertLevel  *float64 `json:"alert_level,omitempty"`
	DangerLevel *float64 `json:"danger_level,omitempty"`
	// DatasetID tells apart the instances of an NGSI-LD attribute that
	// has several (its datasetId); it goes into the derived event id, so
	// each instance is a reading of its own. Not on the wire.
	DatasetID string `json:"-"`
}

// Reading is a validated sensor reading in its kind's unit, placed in a unit
// of the current hierarchy.
type Reading struct {
	EventID     string
	SensorID    string
	Kind        string
	Value       float64
	Unit        string
	AlertLevel  *float64
	DangerLevel *float64
	Hierarchy   string
	AreaCode    string
	Lat, Lon    float64
	ObservedAt  time.Time // UTC, whole seconds
	// NewDevice is the sensor to register, when this is its first report.
	NewDevice *device.Device
}

// ValidateReading checks e, converts it to its kind's unit and places it:
// by its own position, else by its registered sensor's. Its error is an
// *InvalidError listing every problem.
func (r Rules) ValidateReading(e SensorReadingWire, now time.Time) (Reading, error) {
	rd := Reading{EventID: e.EventID, SensorID: e.SensorID, Kind: e.Kind}
	var p problems
	p.require(map[string]string{"sensor_id": e.SensorID, "kind": e.Kind, "observed_at": e.ObservedAt},
		"sensor_id", "kind", "observed_at")
	p.checkIDs(map[string]string{"event_id": e.EventID, "sensor_id": e.SensorID}, "event_id", "sensor_id")
	k, known := device.LookupSensorKind(e.Kind)
	if p.ok("kind") && !known {
		p.fail("kind", "kind %q is not one of %s", e.Kind, strings.Join(device.SensorKindIDs(), ", "))
	}
	factor := 1.0
	if known && e.Unit != "" && e.Unit != k.Unit {
		if f, ok := k.Accepted[e.Unit]; ok {
			factor = f
		} else {
			p.fail("unit", "unit %q is not one for %s: use %s", e.Unit, k.ID, acceptedUnits(k))
		}
	}
	switch {
	case e.Value == nil && known:
		p.fail("value", "value is required: the measured %s in %s", k.ID, unitName(k.Unit))
	case e.Value == nil:
		p.fail("value", "value is required")
	default:
		if v, err := finite("value", *e.Value); err != nil {
			p.fail("value", "%v", err)
		} else if known && p.ok("unit") {
			rd.Value, rd.Unit = v*factor, k.Unit
			if rd.Value < k.Min || rd.Value > k.Max {
				p.fail("value", "value %v %s is outside the plausible range of %s (%v to %v %s); check the unit",
					rd.Value, unitName(k.Unit), k.ID, k.Min, k.Max, unitName(k.Unit))
			}
		}
	}
	for _, l := range []struct {
		name string
		in   *float64
		out  **float64
	}{{"alert_level", e.AlertLevel, &rd.AlertLevel}, {"danger_level", e.DangerLevel, &rd.DangerLevel}} {
		if l.in == nil {
			continue
		}
		v, err := finite(l.name, *l.in)
		if err != nil {
			p.fail(l.name, "%v", err)
			continue
		}
		v *= factor
		*l.out = &v
	}
	if p.ok("observed_at") {
		t, err := r.eventTime("observed_at", e.ObservedAt, now)
		if err != nil {
			p.fail("observed_at", "%v", err)
		}
		rd.ObservedAt = t
	}
	if rd.EventID == "" && p.ok("sensor_id", "kind", "observed_at") {
		id := e.SensorID + "/" + e.Kind + "/" + strconv.FormatInt(rd.ObservedAt.Unix(), 10)
		if e.DatasetID != "" {
			// Another instance of the same attribute at the same time is
			// another reading.
			id = boundedID(id + "/" + e.DatasetID)
		}
		rd.EventID = id
	}
	if p.ok("sensor_id") {
		pl, err := r.place(device.Sensor, e.SensorID, e.Lat, e.Lon, now)
		if err != nil {
			p.addErr(err)
		}
		rd.Hierarchy, rd.AreaCode, rd.Lat, rd.Lon, rd.NewDevice = pl.hierarchy, pl.area, pl.lat, pl.lon, pl.newDevice
	}
	return rd, p.err()
}

func finite(field string, v float64) (float64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s must be a finite number, got %v", field, v)
	}
	return v, nil
}

func unitName(u string) string {
	if u == "" {
		return "(no unit)"
	}
	return u
}

func acceptedUnits(k device.SensorKind) string {
	us := []string{unitName(k.Unit)}
	for u := range k.Accepted {
		us = append(us, u)
	}
	sort.Strings(us[1:])
	return strings.Join(us, ", ")
}

// placement is where a camera event or reading counts.
type placement struct {
	hierarchy, area string
	lat, lon        float64
	newDevice       *device.Device
}

// place finds the unit of a device's report: from the report's position
// when it has one, else from the registered device's. An unregistered
// device with a position is registered by its first report.
func (r Rules) place(kind, id string, lat, lon *float64, now time.Time) (placement, error) {
	if err := device.CheckID(id); err != nil {
		return placement{}, err
	}
	d, known := device.Device{}, false
	if r.Devices != nil {
		d, known = r.Devices.Device(id)
	}
	if known && d.Kind != kind {
		return placement{}, fmt.Errorf("device %s is registered as a %s, not a %s; use another id", id, d.Kind, kind)
	}
	switch {
	case (lat == nil) != (lon == nil):
		return placement{}, fmt.Errorf("lat and lon go together: send both or neither")
	case lat == nil && known:
		return placement{hierarchy: d.Hierarchy, area: d.AreaCode, lat: d.Lat, lon: d.Lon}, nil
	case lat == nil:
		return placement{}, fmt.Errorf("lat and lon are required: %s %s is not registered (register it with PUT /api/v1/devices/%s, or send its position)", kind, id, id)
	}
	code, err := r.locate(*lat, *lon)
	if err != nil {
		return placement{}, err
	}
	p := placement{hierarchy: r.Hierarchy, area: code, lat: *lat, lon: *lon}
	if !known {
		p.newDevice = &device.Device{ID: id, Kind: kind, Name: id, Lat: *lat, Lon: *lon,
			Hierarchy: r.Hierarchy, AreaCode: code, Source: "first_report", UpdatedAt: now.UTC().Truncate(time.Second)}
	}
	return p, nil
}

// locate returns the finest unit of the current hierarchy at a position.
func (r Rules) locate(lat, lon float64) (string, error) {
	switch {
	case math.IsNaN(lat) || lat < -90 || lat > 90:
		return "", fmt.Errorf("lat %v is out of range -90..90", lat)
	case math.IsNaN(lon) || lon < -180 || lon > 180:
		return "", fmt.Errorf("lon %v is out of range -180..180", lon)
	case r.Places == nil:
		return "", fmt.Errorf("positions cannot be placed: %s has no boundaries", r.Hierarchy)
	}
	chain := r.Places.Locate(orb.Point{lon, lat})
	if len(chain) == 0 {
		return "", fmt.Errorf("position lat %v, lon %v is outside every unit of %s; check that lat and lon are not swapped", lat, lon, r.Hierarchy)
	}
	return chain[len(chain)-1].Code, nil
}

// eventTime parses a report's time and refuses one too far ahead of now.
func (r Rules) eventTime(field, s string, now time.Time) (time.Time, error) {
	t, err := parseTime(field, s)
	if err != nil {
		return t, err
	}
	if ahead := t.Sub(now); ahead > r.MaxFuture {
		return t, fmt.Errorf("%s %s is %s in the future; the limit is %s (check the sender's clock and time zone offset)",
			field, s, ahead.Round(time.Second), r.MaxFuture)
	}
	return t, nil
}
