package ingest

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest/cameraxml"
)

// CameraEventWire is one AI detection of a camera as sent on the wire
// (POST /api/v1/ingest/camera-events, MQTT ioc/cameras/{id}/events).
type CameraEventWire struct {
	EventID    string         `json:"event_id"`
	CameraID   string         `json:"camera_id"`
	Type       string         `json:"type"`
	Severity   string         `json:"severity,omitempty"`
	Lat        *float64       `json:"lat,omitempty"`
	Lon        *float64       `json:"lon,omitempty"`
	OccurredAt string         `json:"occurred_at"`
	Attrs      map[string]any `json:"attrs,omitempty"`
}

// maxAttrsBytes bounds a camera event's attributes as stored JSON.
const maxAttrsBytes = 4096

// cameraAlertEvent maps a camera platform's alert to a camera event of
// cameraID; loc is the zone of times sent without an offset. The alert's
// key becomes the event id, bounded as every derived id is.
func cameraAlertEvent(a cameraxml.Alert, cameraID string, loc *time.Location) (CameraEventWire, error) {
	e, err := a.Event(cameraID, loc)
	if err != nil {
		return CameraEventWire{}, err
	}
	return CameraEventWire{EventID: boundedID(e.Key), CameraID: cameraID, Type: e.Type, Severity: e.Severity, OccurredAt: e.OccurredAt, Attrs: e.Attrs}, nil
}

// CameraEvent is a validated camera event, placed in a unit of the current
// hierarchy.
type CameraEvent struct {
	EventID    string
	CameraID   string
	Type       string
	Severity   string
	Hierarchy  string
	AreaCode   string
	Lat, Lon   float64
	OccurredAt time.Time // UTC, whole seconds
	Attrs      string    // JSON object, "{}" when none
	// NewDevice is the camera to register, when this is its first report.
	NewDevice *device.Device
}

// ValidateCamera checks e and places it: by its own position, else by its
// registered camera's. Its error is an *InvalidError listing every problem.
func (r Rules) ValidateCamera(e CameraEventWire, now time.Time) (CameraEvent, error) {
	c := CameraEvent{EventID: e.EventID, CameraID: e.CameraID, Type: e.Type, Severity: e.Severity}
	var p problems
	p.require(map[string]string{"event_id": e.EventID, "camera_id": e.CameraID, "type": e.Type, "occurred_at": e.OccurredAt},
		"event_id", "camera_id", "type", "occurred_at")
	p.checkIDs(map[string]string{"event_id": e.EventID, "camera_id": e.CameraID}, "event_id", "camera_id")
	if p.ok("type") && !slices.Contains(device.CameraEventTypes, e.Type) {
		p.fail("type", "type %q is not one of %s", e.Type, strings.Join(device.CameraEventTypes, ", "))
	}
	if c.Severity == "" {
		c.Severity = "info"
	}
	if !slices.Contains(device.CameraSeverities, c.Severity) {
		p.fail("severity", "severity %q is not one of %s (or leave it out for info)", e.Severity, strings.Join(device.CameraSeverities, ", "))
	}
	attrs := []byte("{}")
	if len(e.Attrs) > 0 {
		b, err := json.Marshal(e.Attrs)
		switch {
		case err != nil:
			p.fail("attrs", "attrs cannot be stored: %v", err)
		case len(b) > maxAttrsBytes:
			p.fail("attrs", "attrs are %d bytes as JSON; the limit is %d", len(b), maxAttrsBytes)
		default:
			attrs = b
		}
	}
	c.Attrs = string(attrs)
	if p.ok("occurred_at") {
		t, err := r.eventTime("occurred_at", e.OccurredAt, now)
		if err != nil {
			p.fail("occurred_at", "%v", err)
		}
		c.OccurredAt = t
	}
	if p.ok("camera_id") {
		pl, err := r.place(device.Camera, e.CameraID, e.Lat, e.Lon, now)
		if err != nil {
			p.addErr(err)
		}
		c.Hierarchy, c.AreaCode, c.Lat, c.Lon, c.NewDevice = pl.hierarchy, pl.area, pl.lat, pl.lon, pl.newDevice
	}
	return c, p.err()
}
