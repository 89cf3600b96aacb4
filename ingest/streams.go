package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest/cameraxml"
	"github.com/openioc/ioc/ingest/wire"
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

func (p *Pipeline) cameraStream() stream[CameraEventWire, CameraEvent] {
	return stream[CameraEventWire, CameraEvent]{kind: "camera_event", validate: Rules.ValidateCamera,
		device: func(e CameraEvent) *device.Device { return e.NewDevice }, write: p.w.Cameras.Write,
		scope: func(e CameraEvent) (string, string, string) { return e.Hierarchy, e.AreaCode, e.CameraID }}
}

func (p *Pipeline) readingStream() stream[SensorReadingWire, Reading] {
	return stream[SensorReadingWire, Reading]{kind: "sensor_reading", validate: Rules.ValidateReading,
		device: func(r Reading) *device.Device { return r.NewDevice }, write: p.w.Readings.Write,
		scope: func(r Reading) (string, string, string) { return r.Hierarchy, r.AreaCode, r.SensorID }}
}

func (p *Pipeline) dossierStream() stream[DossierEvent, Dossier] {
	return stream[DossierEvent, Dossier]{kind: "dossier", validate: Rules.Validate,
		device: func(Dossier) *device.Device { return nil }, write: p.w.Dossiers.Write,
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
func newIntake[W, T any](ctx context.Context, p *Pipeline, st stream[W, T], maxErrors int) *intake[W, T] {
	return newIntakeOver(ctx, p, st, maxErrors, nil)
}

// newIntakeOver is newIntake over the devices known registers besides the
// registry's (nil: none), which learns of those these records register.
func newIntakeOver[W, T any](ctx context.Context, p *Pipeline, st stream[W, T], maxErrors int, known *addedDevices) *intake[W, T] {
	// A device's first report registers it for the reports after it in the
	// same request, which may then leave out the position.
	var base DeviceLookup = known
	if known == nil {
		base = p.rules.Devices
	}
	rules, added := p.rules, &addedDevices{base: base}
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
func (in *intake[W, T]) store(ctx context.Context, p *Pipeline) (outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.WaitTimeout)
	defer cancel()
	if fresh := in.added.list; len(fresh) > 0 {
		if err := p.devices.Ensure(ctx, fresh); err != nil {
			p.records.WithLabelValues(in.st.kind, "failed").Add(float64(len(in.rows)))
			return outcome{}, &StoreError{Err: err}
		}
	}
	out, err := in.st.write(ctx, in.rows)
	if err != nil {
		p.records.WithLabelValues(in.st.kind, "failed").Add(float64(len(in.rows)))
		return outcome{}, err
	}
	accepted := p.count(in.st.kind, len(in.rows), out, in.index, &in.refused)
	return outcome{accepted: accepted, duplicates: out.Duplicates}, nil
}

// take decodes the records of one stream from body, validating each as it
// is read, and stores the valid ones once the whole body is read.
func take[W, T any](ctx context.Context, p *Pipeline, st stream[W, T], body io.Reader, ndjson bool) (Response, error) {
	in := newIntake(ctx, p, st, p.cfg.MaxErrors)
	if err := decodeStream(body, ndjson, p.cfg.MaxRecords, in.take); err != nil {
		return Response{}, &BodyError{Err: err}
	}
	o, err := in.store(ctx, p)
	if err != nil {
		return Response{}, p.unstored(err)
	}
	return p.response(o, &in.refused), nil
}

// CameraEvents takes the camera events of body (POST
// /api/v1/ingest/camera-events), as Dossiers does.
func (p *Pipeline) CameraEvents(ctx context.Context, body io.Reader, ndjson bool) (Response, error) {
	return take(ctx, p, p.cameraStream(), body, ndjson)
}

// SensorReadings takes the sensor readings of body (POST
// /api/v1/ingest/sensor-readings), as Dossiers does.
func (p *Pipeline) SensorReadings(ctx context.Context, body io.Reader, ndjson bool) (Response, error) {
	return take(ctx, p, p.readingStream(), body, ndjson)
}

// NGSILD takes an NGSI-LD notification (POST /api/v1/ingest/ngsi-ld): its
// entities become sensor readings. Errors are indexed by entity, one per
// entity with every problem of its attributes. A notification none of
// whose readings was taken is a *RefusedError, so that the context broker
// records the notification as failed instead of delivered.
func (p *Pipeline) NGSILD(ctx context.Context, raw []byte) (Response, error) {
	readings, errs, err := decodeNGSILD(raw)
	if err != nil {
		return Response{}, &BodyError{Err: err}
	}
	if len(readings) > p.cfg.MaxRecords {
		return Response{}, &BodyError{Err: &TooManyRecordsError{Limit: p.cfg.MaxRecords, Readings: len(readings)}}
	}
	in := newIntake(ctx, p, p.readingStream(), 0) // every refusal, merged by entity below
	for i, r := range readings {
		in.take(i, ngsiReadingWire(r), nil)
	}
	o, err := in.store(ctx, p)
	if err != nil {
		return Response{}, p.unstored(err)
	}
	// Validation names the reading; report it against its entity.
	byEntity := map[int]*problems{}
	var order []int
	entity := func(i int) *problems {
		e, ok := byEntity[i]
		if !ok {
			e = &problems{}
			byEntity[i] = e
			order = append(order, i)
		}
		return e
	}
	for _, e := range errs {
		for _, msg := range e.Problems {
			entity(e.Index).add("%s", msg)
		}
	}
	for _, e := range in.refused.list() {
		r := readings[e.Index]
		attr := wire.Clip(r.Attribute)
		if ds := r.DatasetID; ds != "" {
			attr += " (datasetId " + wire.Clip(ds) + ")"
		}
		for _, msg := range e.Problems {
			entity(r.Entity).add("entity %s attribute %q: %s", wire.Clip(r.EntityID), attr, msg)
		}
	}
	slices.Sort(order)
	refused := refusals{max: p.cfg.MaxErrors}
	for _, i := range order {
		refused.add(recordError(i, byEntity[i].err()))
	}
	resp := p.response(o, &refused)
	if o.accepted == 0 && o.duplicates == 0 && refused.total > 0 {
		first := resp.Errors[0]
		return resp, &RefusedError{Response: resp, Reason: fmt.Sprintf(
			"no reading of the notification was taken: %d entities refused (errors lists each one's problems), the first (index %d) for: %s",
			refused.total, first.Index, first.Error)}
	}
	return resp, nil
}

// CameraXML takes one camera-platform EventNotificationAlert (POST
// /api/v1/ingest/camera-xml), matched to its camera through the registry;
// contentType is the one the body was sent with. A platform only reads
// whether the alert was taken, so an alert that cannot be stored is a
// *RefusedError rather than an error listed in the Response.
func (p *Pipeline) CameraXML(ctx context.Context, raw []byte, contentType string) (Response, error) {
	alert, err := cameraxml.Decode(raw, contentType)
	if err != nil {
		return Response{}, &BodyError{Err: err}
	}
	cam, ok := p.devices.MatchCamera(alert.ChannelName, alert.IPAddress, alert.ChannelID)
	if !ok {
		p.records.WithLabelValues("camera_event", "rejected").Inc()
		return Response{}, &RefusedError{Reason: fmt.Sprintf(
			"no registered camera matches channel name %q or address %s/%s: register it with PUT /api/v1/devices/{id} "+
				"giving channel_name, or address as \"ip/channel\"", alert.ChannelName, alert.IPAddress, alert.ChannelID)}
	}
	// A camera's own credentials post that camera's alerts only; a token,
	// the cameras of its areas.
	if err := inScope(scopeFrom(ctx), cam.Hierarchy, cam.AreaCode, cam.ID); err != nil {
		p.records.WithLabelValues("camera_event", "rejected").Inc()
		return Response{}, &OutOfScopeError{Err: err}
	}
	ev, err := cameraAlertEvent(alert, cam.ID, p.cfg.Location)
	if err != nil {
		p.records.WithLabelValues("camera_event", "rejected").Inc()
		return Response{}, &RefusedError{Reason: err.Error()}
	}
	in := newIntake(ctx, p, p.cameraStream(), 0)
	in.take(0, ev, nil)
	o, err := in.store(ctx, p)
	if err != nil {
		return Response{}, p.unstored(err)
	}
	resp := p.response(o, &in.refused)
	if in.refused.total > 0 {
		return resp, &RefusedError{Reason: resp.Errors[0].Error, Response: resp}
	}
	return resp, nil
}

// StoreReadings validates and stores readings that came by MQTT.
func (p *Pipeline) StoreReadings(ctx context.Context, recs []SensorReadingWire) ([]RecordError, error) {
	return storeWire(ctx, p, p.readingStream(), recs)
}

// StoreCameraEvents validates and stores camera events that came by MQTT.
func (p *Pipeline) StoreCameraEvents(ctx context.Context, recs []CameraEventWire) ([]RecordError, error) {
	return storeWire(ctx, p, p.cameraStream(), recs)
}

func storeWire[W, T any](ctx context.Context, p *Pipeline, st stream[W, T], recs []W) ([]RecordError, error) {
	in := newIntake(ctx, p, st, 0)
	for i, r := range recs {
		in.take(i, r, nil)
	}
	if _, err := in.store(ctx, p); err != nil {
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
