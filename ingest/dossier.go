package ingest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/geo"
)

// DossierEvent is one status change of an administrative-procedure dossier
// as sent on the wire (POST /api/v1/ingest/dossiers). Times are RFC 3339
// strings with an offset; they are kept as text here so that a bad value is
// reported against its field.
type DossierEvent struct {
	EventID       string `json:"event_id"`
	DossierID     string `json:"dossier_id"`
	ProcedureCode string `json:"procedure_code,omitempty"`
	Sector        string `json:"sector,omitempty"`
	Hierarchy     string `json:"hierarchy,omitempty"`
	AreaCode      string `json:"area_code"`
	Channel       string `json:"channel"`
	Status        string `json:"status"`
	OccurredAt    string `json:"occurred_at"`
	ReceivedAt    string `json:"received_at,omitempty"`
	DueAt         string `json:"due_at,omitempty"`
	OnlineLevel   string `json:"online_level,omitempty"`
	Digitized     bool   `json:"digitized,omitempty"`
	EResult       bool   `json:"e_result,omitempty"`
	PaidOnline    bool   `json:"paid_online,omitempty"`
	ReusedData    bool   `json:"reused_data,omitempty"`
	// FeeRequired says the procedure carries a fee or financial obligation:
	// such dossiers make up the online payment rate's denominator.
	FeeRequired bool `json:"fee_required,omitempty"`
	// Lat and Lon place the record where a split unit's successors need
	// telling apart; optional.
	Lat *float64 `json:"lat,omitempty"`
	Lon *float64 `json:"lon,omitempty"`
	// Supersedes names an earlier event of the same dossier that this one
	// corrects: the figures then count this event and not that one. An
	// event_id is stored once, so a correction is always a new event.
	Supersedes string `json:"supersedes,omitempty"`
}

// statusNeedsDue lists the statuses whose KPIs depend on the due date: a
// dossier still open, or just resolved, must say when it is due.
var statusNeedsDue = map[string]bool{"received": true, "processing": true, "supplement_requested": true, "resolved": true}

// Dossier is a validated dossier event, ready to store.
type Dossier struct {
	EventID       string
	DossierID     string
	ProcedureCode string
	Sector        string
	Hierarchy     string
	AreaCode      string
	Channel       string
	Status        string
	OccurredAt    time.Time // UTC
	ReceivedAt    *time.Time
	DueAt         *time.Time
	OnlineLevel   string
	Digitized     bool
	EResult       bool
	PaidOnline    bool
	ReusedData    bool
	FeeRequired   bool
	Lat, Lon      *float64
	Supersedes    string
	// Recorded is the unit as sent when it belongs to another hierarchy
	// that has a crosswalk to the current one; the record is then stored
	// under both. Approximate says the crosswalk could only guess.
	Recorded    *Placement
	Approximate bool
}

// Placement is a unit of a hierarchy.
type Placement struct {
	Hierarchy string
	AreaCode  string
}

// AreaChecker says whether a hierarchy has a unit and where a unit of an
// older hierarchy counts today; the ingest validator needs nothing more of
// geography.
type AreaChecker interface {
	HasUnit(hierarchy, code string) bool
	HasHierarchy(hierarchy string) bool
	Attribute(from, to, code string, at *orb.Point) (geo.Attribution, error)
}

// Locator finds the units of the current hierarchy at a point, top down.
type Locator interface {
	Locate(p orb.Point) []geo.Unit
}

// DeviceLookup finds registered cameras and sensors.
type DeviceLookup interface {
	Device(id string) (device.Device, bool)
}

// Rules are what validation checks against.
type Rules struct {
	Hierarchy string        // the deployment's hierarchy, for events that name none
	Areas     AreaChecker   // units that exist
	MaxFuture time.Duration // how far ahead of now an event may be stamped
	Places    Locator       // places camera events and readings by position
	Devices   DeviceLookup  // registered devices, for reports without a position
}

// earliest is the oldest time ClickHouse's DateTime stores without wrapping.
var earliest = time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)

// latest keeps due dates inside DateTime's range (it ends in 2106).
var latest = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

// Validate checks e and returns the record to store, or an *InvalidError
// that lists every problem, each saying what is wrong and how to fix it.
func (r Rules) Validate(e DossierEvent, now time.Time) (Dossier, error) {
	d := Dossier{
		EventID: e.EventID, DossierID: e.DossierID, ProcedureCode: e.ProcedureCode, Sector: e.Sector,
		Hierarchy: e.Hierarchy, AreaCode: e.AreaCode, Channel: e.Channel, Status: e.Status, OnlineLevel: e.OnlineLevel,
		Digitized: e.Digitized, EResult: e.EResult, PaidOnline: e.PaidOnline, ReusedData: e.ReusedData,
		FeeRequired: e.FeeRequired, Supersedes: e.Supersedes,
	}
	var p problems
	p.require(map[string]string{"event_id": e.EventID, "dossier_id": e.DossierID, "area_code": e.AreaCode,
		"channel": e.Channel, "status": e.Status, "occurred_at": e.OccurredAt},
		"event_id", "dossier_id", "area_code", "channel", "status", "occurred_at")
	p.checkIDs(map[string]string{"event_id": e.EventID, "dossier_id": e.DossierID, "procedure_code": e.ProcedureCode,
		"sector": e.Sector, "area_code": e.AreaCode, "hierarchy": e.Hierarchy, "supersedes": e.Supersedes},
		"event_id", "dossier_id", "procedure_code", "sector", "area_code", "hierarchy", "supersedes")
	if e.Supersedes != "" && e.Supersedes == e.EventID {
		p.fail("supersedes", "supersedes names the event itself (%q): name the earlier event this one corrects", e.Supersedes)
	}
	if p.ok("status") && !slices.Contains(dossier.Statuses, e.Status) {
		p.fail("status", "status %q is not one of %s", e.Status, strings.Join(dossier.Statuses, ", "))
	}
	if p.ok("channel") && !slices.Contains(dossier.Channels, e.Channel) {
		p.fail("channel", "channel %q is not one of %s", e.Channel, strings.Join(dossier.Channels, ", "))
	}
	if e.OnlineLevel != "" && !slices.Contains(dossier.OnlineLevels, e.OnlineLevel) {
		p.fail("online_level", "online_level %q is not one of %s (or leave it out)", e.OnlineLevel, strings.Join(dossier.OnlineLevels, ", "))
	}
	var at *orb.Point
	switch {
	case (e.Lat == nil) != (e.Lon == nil):
		p.fail("lat", "lat and lon go together: send both or neither")
	case e.Lat != nil:
		if *e.Lat < -90 || *e.Lat > 90 || math.IsNaN(*e.Lat) {
			p.fail("lat", "lat %v is out of range -90..90", *e.Lat)
		}
		if *e.Lon < -180 || *e.Lon > 180 || math.IsNaN(*e.Lon) {
			p.fail("lon", "lon %v is out of range -180..180", *e.Lon)
		}
		if p.ok("lat", "lon") {
			d.Lat, d.Lon = e.Lat, e.Lon
			at = &orb.Point{*e.Lon, *e.Lat}
		}
	}
	if p.ok("area_code", "hierarchy") {
		if h, err := r.checkUnit(d.Hierarchy, d.AreaCode); err != nil {
			p.fail("area_code", "%v", err)
		} else if p.ok("lat", "lon") {
			d.Hierarchy = h
			placed, recorded, approximate, err := r.placeUnit(d.Hierarchy, d.AreaCode, at)
			if err != nil {
				p.fail("area_code", "%v", err)
			}
			d.Hierarchy, d.AreaCode, d.Recorded, d.Approximate = placed.Hierarchy, placed.AreaCode, recorded, approximate
		}
	}
	if p.ok("occurred_at") {
		if t, err := parseTime("occurred_at", e.OccurredAt); err != nil {
			p.fail("occurred_at", "%v", err)
		} else if ahead := t.Sub(now); ahead > r.MaxFuture {
			p.fail("occurred_at", "occurred_at %s is %s in the future; the limit is %s (check the sender's clock and time zone offset)",
				e.OccurredAt, ahead.Round(time.Second), r.MaxFuture)
		} else {
			d.OccurredAt = t
		}
	}
	if e.ReceivedAt != "" {
		t, err := parseTime("received_at", e.ReceivedAt)
		switch {
		case err != nil:
			p.fail("received_at", "%v", err)
		case p.ok("occurred_at") && t.After(d.OccurredAt):
			p.fail("received_at", "received_at %s is after occurred_at %s; a dossier is received before anything else happens to it", e.ReceivedAt, e.OccurredAt)
		default:
			d.ReceivedAt = &t
		}
	}
	if e.DueAt != "" {
		t, err := parseTime("due_at", e.DueAt)
		if err != nil {
			p.fail("due_at", "%v", err)
		} else {
			d.DueAt = &t
		}
	} else if p.ok("status") && statusNeedsDue[e.Status] {
		p.fail("due_at", "due_at is required when status is %s: the on-time and overdue figures need it", e.Status)
	}
	return d, p.err()
}

// checkUnit checks that a record's unit exists and returns its hierarchy:
// the one named, else the deployment's.
func (r Rules) checkUnit(hierarchy, area string) (string, error) {
	if hierarchy == "" {
		hierarchy = r.Hierarchy
	}
	if !r.Areas.HasHierarchy(hierarchy) {
		return hierarchy, fmt.Errorf("hierarchy %q is unknown; leave it out to use %s", hierarchy, r.Hierarchy)
	}
	if !r.Areas.HasUnit(hierarchy, area) {
		return hierarchy, fmt.Errorf("area_code %q is not a unit of %s; use an official code such as a commune's 5 digits (see GET /api/v1/areas?hierarchy=%s)", area, hierarchy, hierarchy)
	}
	return hierarchy, nil
}

// placeUnit places a unit of an older hierarchy in the current one through
// the crosswalk; at, when known, settles a split unit. recorded is the unit
// as sent when it was placed; a unit of the current hierarchy, or of one
// without a crosswalk to it, stays where it is.
func (r Rules) placeUnit(hierarchy, area string, at *orb.Point) (placed Placement, recorded *Placement, approximate bool, err error) {
	sent := Placement{Hierarchy: hierarchy, AreaCode: area}
	if hierarchy == r.Hierarchy {
		return sent, nil, false, nil
	}
	a, err := r.Areas.Attribute(hierarchy, r.Hierarchy, area, at)
	switch {
	case errors.Is(err, geo.ErrNoCrosswalk):
		// Kept under its own hierarchy only, whose figures it feeds.
		return sent, nil, false, nil
	case err != nil:
		return sent, nil, false, fmt.Errorf("area_code %q of %s cannot be placed in %s: %v", area, hierarchy, r.Hierarchy, err)
	}
	return Placement{Hierarchy: r.Hierarchy, AreaCode: a.Code}, &sent, a.Approximate, nil
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time with offset, e.g. 2026-11-22T09:15:00+07:00", field, s)
	}
	if t.Before(earliest) || t.After(latest) {
		return time.Time{}, fmt.Errorf("%s %s is out of range (1970-01-02 to 2100-01-01)", field, s)
	}
	// DateTime keeps whole seconds; truncating here keeps on-time comparisons
	// the same in Go and in ClickHouse.
	return time.Unix(t.Unix(), 0).UTC(), nil
}
