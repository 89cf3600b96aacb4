package ingest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/device"
)

// stream is how one kind of device report is validated and stored.
type stream[W, T any] struct {
	kind     string // metric label
	validate func(Rules, W, time.Time) (T, error)
	device   func(T) *device.Device
	write    func(context.Context, []T) (Outcome, error)
	// scope names what a record is checked against the request's Scope:
	// its unit's hierarchy and code, and its device ("" for none).
	scope func(T) (hierarchy, code, device string)
}

func (s *Service) cameraStream() stream[CameraEventWire, CameraEvent] {
	return stream[CameraEventWire, CameraEvent]{kind: "camera_event", validate: Rules.ValidateCamera,
		device: func(e CameraEvent) *device.Device { return e.NewDevice }, write: s.w.Cameras.Write,
		scope: func(e CameraEvent) (string, string, string) { return e.Hierarchy, e.AreaCode, e.CameraID }}
}

func (s *Service) readingStream() stream[SensorReadingWire, Reading] {
	return stream[SensorReadingWire, Reading]{kind: "sensor_reading", validate: Rules.ValidateReading,
		device: func(r Reading) *device.Device { return r.NewDevice }, write: s.w.Readings.Write,
		scope: func(r Reading) (string, string, string) { return r.Hierarchy, r.AreaCode, r.SensorID }}
}

// outcome is what became of a request's records.
type outcome struct {
	accepted, duplicates int
	errs                 []RecordError
}

// storeAll validates recs, registers the devices they report first, and
// stores the valid ones. An error means nothing was acknowledged.
func storeAll[W, T any](ctx context.Context, s *Service, st stream[W, T], recs []decoded[W], errs []RecordError) (outcome, error) {
	now := time.Now()
	rows := make([]T, 0, len(recs))
	index := make([]int, 0, len(recs)) // the record index of each row
	// A device's first report registers it for the reports after it in the
	// same request, which may then leave out the position.
	rules, added := s.rules, &addedDevices{base: s.rules.Devices}
	rules.Devices = added
	scope := scopeFrom(ctx)
	for _, r := range recs {
		v, err := st.validate(rules, r.value, now)
		if err == nil {
			// Checked before the device is registered: a report outside the
			// scope registers nothing.
			h, code, dev := st.scope(v)
			err = inScope(scope, h, code, dev)
		}
		if err != nil {
			errs = append(errs, RecordError{Index: r.index, Error: err.Error()})
			continue
		}
		if d := st.device(v); d != nil {
			added.add(*d)
		}
		rows = append(rows, v)
		index = append(index, r.index)
	}
	fresh := added.list
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WaitTimeout)
	defer cancel()
	if len(fresh) > 0 {
		if err := s.devices.Ensure(ctx, fresh); err != nil {
			s.records.WithLabelValues(st.kind, "failed").Add(float64(len(rows)))
			return outcome{}, &StoreError{Err: err}
		}
	}
	out, err := st.write(ctx, rows)
	if err != nil {
		s.records.WithLabelValues(st.kind, "failed").Add(float64(len(rows)))
		return outcome{}, err
	}
	accepted, errs := s.count(st.kind, len(rows), out, index, errs)
	return outcome{accepted: accepted, duplicates: out.Duplicates, errs: errs}, nil
}

// handle answers a JSON or NDJSON request of one stream.
func handle[W, T any](s *Service, c *fiber.Ctx, st stream[W, T]) error {
	ndjson := strings.HasPrefix(string(c.Request().Header.ContentType()), "application/x-ndjson")
	recs, errs, err := decodeRecords[W](c.Body(), ndjson)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	o, err := storeAll(c.UserContext(), s, st, recs, errs)
	if err != nil {
		return s.refuse(c, err)
	}
	return c.Status(fiber.StatusAccepted).JSON(s.response(o.accepted, o.duplicates, o.errs))
}

// CameraEvents handles POST /api/v1/ingest/camera-events.
func (s *Service) CameraEvents(c *fiber.Ctx) error { return handle(s, c, s.cameraStream()) }

// SensorReadings handles POST /api/v1/ingest/sensor-readings.
func (s *Service) SensorReadings(c *fiber.Ctx) error { return handle(s, c, s.readingStream()) }

// NGSILD handles POST /api/v1/ingest/ngsi-ld: a notification's entities
// become sensor readings. Errors are indexed by entity.
func (s *Service) NGSILD(c *fiber.Ctx) error {
	readings, errs, err := DecodeNGSILD(c.Body())
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	recs := make([]decoded[SensorReadingWire], len(readings))
	for i, r := range readings {
		recs[i] = decoded[SensorReadingWire]{index: i, value: r.Reading}
	}
	o, err := storeAll(c.UserContext(), s, s.readingStream(), recs, nil)
	if err != nil {
		return s.refuse(c, err)
	}
	// Validation errors name the reading; report them against its entity.
	for i, e := range o.errs {
		r := readings[e.Index]
		o.errs[i] = RecordError{Index: r.Entity, Error: fmt.Sprintf("entity %s attribute %q: %s", r.EntityID, r.Attribute, e.Error)}
	}
	return c.Status(fiber.StatusAccepted).JSON(s.response(o.accepted, o.duplicates, append(errs, o.errs...)))
}

// CameraXML handles POST /api/v1/ingest/camera-xml: one camera-platform
// EventNotificationAlert, matched to its camera through the registry. A
// platform only reads the status, so an alert that cannot be stored is
// refused with 422 rather than listed in a 202.
func (s *Service) CameraXML(c *fiber.Ctx) error {
	alert, err := DecodeCameraXML(c.Body(), string(c.Request().Header.ContentType()))
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	cam, ok := s.devices.MatchCamera(alert.ChannelName, alert.IPAddress, alert.ChannelID)
	if !ok {
		s.records.WithLabelValues("camera_event", "rejected").Inc()
		return fiber.NewError(fiber.StatusUnprocessableEntity, fmt.Sprintf(
			"no registered camera matches channel name %q or address %s/%s: register it with PUT /api/v1/devices/{id} "+
				"giving channel_name, or address as \"ip/channel\"", alert.ChannelName, alert.IPAddress, alert.ChannelID))
	}
	// A camera's own credentials post that camera's alerts only; a token,
	// the cameras of its areas.
	if err := inScope(scopeFrom(c.UserContext()), cam.Hierarchy, cam.AreaCode, cam.ID); err != nil {
		s.records.WithLabelValues("camera_event", "rejected").Inc()
		return fiber.NewError(fiber.StatusForbidden, err.Error())
	}
	ev, err := alert.Event(cam.ID, s.cfg.Location)
	if err != nil {
		s.records.WithLabelValues("camera_event", "rejected").Inc()
		return fiber.NewError(fiber.StatusUnprocessableEntity, err.Error())
	}
	o, err := storeAll(c.UserContext(), s, s.cameraStream(), []decoded[CameraEventWire]{{value: ev}}, nil)
	if err != nil {
		return s.refuse(c, err)
	}
	if len(o.errs) > 0 {
		return fiber.NewError(fiber.StatusUnprocessableEntity, o.errs[0].Error)
	}
	return c.Status(fiber.StatusAccepted).JSON(s.response(o.accepted, o.duplicates, nil))
}

// StoreReadings validates and stores readings that came by MQTT.
func (s *Service) StoreReadings(ctx context.Context, recs []SensorReadingWire) ([]RecordError, error) {
	return storeWire(ctx, s, s.readingStream(), recs)
}

// StoreCameraEvents validates and stores camera events that came by MQTT.
func (s *Service) StoreCameraEvents(ctx context.Context, recs []CameraEventWire) ([]RecordError, error) {
	return storeWire(ctx, s, s.cameraStream(), recs)
}

func storeWire[W, T any](ctx context.Context, s *Service, st stream[W, T], recs []W) ([]RecordError, error) {
	ds := make([]decoded[W], len(recs))
	for i, r := range recs {
		ds[i] = decoded[W]{index: i, value: r}
	}
	o, err := storeAll(ctx, s, st, ds, nil)
	return o.errs, err
}

// addedDevices is the registry as a request sees it: with the devices its
// earlier records registered.
type addedDevices struct {
	base DeviceLookup
	list []device.Device
	byID map[string]int
}

func (a *addedDevices) Device(id string) (device.Device, bool) {
	if i, ok := a.byID[id]; ok {
		return a.list[i], true
	}
	if a.base == nil {
		return device.Device{}, false
	}
	return a.base.Device(id)
}

func (a *addedDevices) add(d device.Device) {
	if a.byID == nil {
		a.byID = map[string]int{}
	}
	a.byID[d.ID] = len(a.list)
	a.list = append(a.list, d)
}
