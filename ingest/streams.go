package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

func (s *Service) dossierStream() stream[DossierEvent, Dossier] {
	return stream[DossierEvent, Dossier]{kind: "dossier", validate: Rules.Validate,
		device: func(Dossier) *device.Device { return nil }, write: s.w.Dossiers.Write,
		// The unit as sent: a token covers an older unit only when it
		// covers everything the unit went into.
		scope: func(d Dossier) (string, string, string) {
			u := d.sentUnit()
			return u.Hierarchy, u.AreaCode, ""
		}}
}

// outcome is what became of a request's stored records.
type outcome struct {
	accepted, duplicates int
}

// intake validates a request's records as they are decoded, so that none
// is kept in its wire form: it holds the valid rows, in order, and the
// refusals.
type intake[W, T any] struct {
	st    stream[W, T]
	scope Scope // of the request's credentials; nil: any unit (MQTT)
	rules Rules
	added *addedDevices // the devices this intake's records register
	// known, when set, also learns of them: the devices registered by the
	// earlier chunks of an import, which its later chunks see.
	known   *addedDevices
	now     time.Time
	rows    []T
	index   []int // the record index of each row
	refused refusals
}

// newIntake starts a request's records, in the scope ctx carries;
// maxErrors bounds the refusals kept (0 keeps all).
func newIntake[W, T any](ctx context.Context, s *Service, st stream[W, T], maxErrors int) *intake[W, T] {
	return newIntakeOver(ctx, s, st, maxErrors, nil)
}

// newIntakeOver is newIntake over the devices known registers besides the
// registry's (nil: none), which learns of those these records register.
func newIntakeOver[W, T any](ctx context.Context, s *Service, st stream[W, T], maxErrors int, known *addedDevices) *intake[W, T] {
	// A device's first report registers it for the reports after it in the
	// same request, which may then leave out the position.
	var base DeviceLookup = known
	if known == nil {
		base = s.rules.Devices
	}
	rules, added := s.rules, &addedDevices{base: base}
	rules.Devices = added
	return &intake[W, T]{st: st, scope: scopeFrom(ctx), rules: rules, added: added, known: known, now: time.Now(), refused: refusals{max: maxErrors}}
}

// take validates record i, or refuses it for the reason it did not
// decode. A record with fields of the wrong JSON type is still checked, so
// that its refusal lists every problem.
func (in *intake[W, T]) take(i int, w W, decodeErr error) {
	var te *fieldTypeError
	if decodeErr != nil && !errors.As(decodeErr, &te) {
		in.refused.add(recordError(i, decodeErr))
		return
	}
	v, err := in.st.validate(in.rules, w, in.now)
	switch {
	case te != nil:
		in.refused.add(recordError(i, withTypeErrors(te, err)))
		return
	case err != nil:
		in.refused.add(recordError(i, err))
		return
	}
	// Checked before the device is registered: a report outside the
	// request's scope registers nothing.
	h, code, dev := in.st.scope(v)
	if err := inScope(in.scope, h, code, dev); err != nil {
		in.refused.add(recordError(i, err))
		return
	}
	if d := in.st.device(v); d != nil {
		in.added.add(*d)
		if in.known != nil {
			in.known.add(*d)
		}
	}
	in.rows = append(in.rows, v)
	in.index = append(in.index, i)
}

// store registers the devices the records report first and stores the
// valid rows. An error means nothing was acknowledged.
func (in *intake[W, T]) store(ctx context.Context, s *Service) (outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WaitTimeout)
	defer cancel()
	if fresh := in.added.list; len(fresh) > 0 {
		if err := s.devices.Ensure(ctx, fresh); err != nil {
			s.records.WithLabelValues(in.st.kind, "failed").Add(float64(len(in.rows)))
			return outcome{}, &StoreError{Err: err}
		}
	}
	out, err := in.st.write(ctx, in.rows)
	if err != nil {
		s.records.WithLabelValues(in.st.kind, "failed").Add(float64(len(in.rows)))
		return outcome{}, err
	}
	accepted := s.count(in.st.kind, len(in.rows), out, in.index, &in.refused)
	return outcome{accepted: accepted, duplicates: out.Duplicates}, nil
}

// handle answers a JSON or NDJSON request of one stream: the body is
// decoded and each record validated as it is read, and the valid ones are
// stored once the whole body is read.
func handle[W, T any](s *Service, c *fiber.Ctx, st stream[W, T]) error {
	ndjson := strings.HasPrefix(string(c.Request().Header.ContentType()), "application/x-ndjson")
	body, err := s.bodies.Open(c)
	if err != nil {
		return err
	}
	in := newIntake(c.UserContext(), s, st, s.cfg.MaxErrors)
	if err := decodeStream(body, ndjson, s.cfg.MaxRecords, in.take); err != nil {
		return s.refuseBody(body, err)
	}
	o, err := in.store(c.UserContext(), s)
	if err != nil {
		return s.refuse(c, err)
	}
	return c.Status(fiber.StatusAccepted).JSON(s.response(o, &in.refused))
}

// CameraEvents handles POST /api/v1/ingest/camera-events.
func (s *Service) CameraEvents(c *fiber.Ctx) error { return handle(s, c, s.cameraStream()) }

// SensorReadings handles POST /api/v1/ingest/sensor-readings.
func (s *Service) SensorReadings(c *fiber.Ctx) error { return handle(s, c, s.readingStream()) }

// Refusal is the body of a 422 for a notification nothing of which was
// taken: the reason, with each entity's problems.
type Refusal struct {
	Error string `json:"error"`
	Response
}

// NGSILD handles POST /api/v1/ingest/ngsi-ld: a notification's entities
// become sensor readings. Errors are indexed by entity, one per entity with
// every problem of its attributes. A notification none of whose readings
// was taken is refused with 422, so that the context broker records the
// notification as failed instead of delivered.
func (s *Service) NGSILD(c *fiber.Ctx) error {
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	readings, errs, err := DecodeNGSILD(raw)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	if len(readings) > s.cfg.MaxRecords {
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, fmt.Sprintf(
			"the notification holds %d readings, more than the %d records (the IOC_INGEST_MAX_RECORDS limit) one request may; lower the subscription's batch size",
			len(readings), s.cfg.MaxRecords))
	}
	in := newIntake(c.UserContext(), s, s.readingStream(), 0) // every refusal, merged by entity below
	for i, r := range readings {
		in.take(i, r.Reading, nil)
	}
	o, err := in.store(c.UserContext(), s)
	if err != nil {
		return s.refuse(c, err)
	}
	// Validation names the reading; report it against its entity.
	byEntity := map[int]*problems{}
	var order []int
	entity := func(i int) *problems {
		p, ok := byEntity[i]
		if !ok {
			p = &problems{}
			byEntity[i] = p
			order = append(order, i)
		}
		return p
	}
	for _, e := range errs {
		for _, msg := range e.Problems {
			entity(e.Index).add("%s", msg)
		}
	}
	for _, e := range in.refused.list() {
		r := readings[e.Index]
		attr := clipText(r.Attribute)
		if ds := r.Reading.DatasetID; ds != "" {
			attr += " (datasetId " + clipText(ds) + ")"
		}
		for _, msg := range e.Problems {
			entity(r.Entity).add("entity %s attribute %q: %s", clipText(r.EntityID), attr, msg)
		}
	}
	slices.Sort(order)
	refused := refusals{max: s.cfg.MaxErrors}
	for _, i := range order {
		refused.add(recordError(i, byEntity[i].err()))
	}
	resp := s.response(o, &refused)
	if o.accepted == 0 && o.duplicates == 0 && refused.total > 0 {
		first := resp.Errors[0]
		return c.Status(fiber.StatusUnprocessableEntity).JSON(Refusal{Response: resp, Error: fmt.Sprintf(
			"no reading of the notification was taken: %d entities refused (errors lists each one's problems), the first (index %d) for: %s",
			refused.total, first.Index, first.Error)})
	}
	return c.Status(fiber.StatusAccepted).JSON(resp)
}

// CameraXML handles POST /api/v1/ingest/camera-xml: one camera-platform
// EventNotificationAlert, matched to its camera through the registry. A
// platform only reads the status, so an alert that cannot be stored is
// refused with 422 rather than listed in a 202.
func (s *Service) CameraXML(c *fiber.Ctx) error {
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	alert, err := DecodeCameraXML(raw, string(c.Request().Header.ContentType()))
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
	in := newIntake(c.UserContext(), s, s.cameraStream(), 0)
	in.take(0, ev, nil)
	o, err := in.store(c.UserContext(), s)
	if err != nil {
		return s.refuse(c, err)
	}
	if in.refused.total > 0 {
		return fiber.NewError(fiber.StatusUnprocessableEntity, in.refused.list()[0].Error)
	}
	return c.Status(fiber.StatusAccepted).JSON(s.response(o, &in.refused))
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
	in := newIntake(ctx, s, st, 0)
	for i, r := range recs {
		in.take(i, r, nil)
	}
	if _, err := in.store(ctx, s); err != nil {
		return nil, err
	}
	return in.refused.list(), nil
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
