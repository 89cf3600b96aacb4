package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/paulmach/orb"

	"github.com/openioc/ioc/alarm"
	"github.com/openioc/ioc/api/answer"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/feed"
	"github.com/openioc/ioc/report"
)

// Devices is how the API reads and registers cameras and sensors.
type Devices interface {
	Device(id string) (device.Device, bool)
	Views(ctx context.Context, areas []string, kind string) ([]device.View, error)
	Put(ctx context.Context, d device.Device) (device.Device, bool, error)
	Snapshot(ctx context.Context, area string) (device.Map, error)
}

// Alarms is how the API reads alarms and rules and acts on them.
type Alarms interface {
	List(ctx context.Context, q alarm.Query) ([]alarm.Alarm, error)
	Get(ctx context.Context, id string) (alarm.Alarm, error)
	Acknowledge(ctx context.Context, id, by, note string) (alarm.Alarm, error)
	Resolve(ctx context.Context, id, by, note string) (alarm.Alarm, error)
	Snapshot(ctx context.Context, area string) (alarm.TopicMessage, error)
	Rules(ctx context.Context) ([]alarm.Rule, error)
	PutRule(ctx context.Context, r alarm.Rule, by string) (alarm.Rule, bool, error)
	DeleteRule(ctx context.Context, id, by string) error
}

// Events is how the API reads camera events: the recent ones, and their
// density on a grid for the map.
type Events interface {
	Snapshot(ctx context.Context, area string) (feed.Message, error)
	// Density counts events since from in squares of size degrees over
	// bound, for the subtrees of areas (all when nil).
	Density(ctx context.Context, areas []string, bound orb.Bound, size float64, from time.Time) ([]feed.Cell, error)
}

func (s *Server) operationsRoutes(v1 fiber.Router, reader fiber.Handler) {
	if s.d.Devices != nil {
		v1.Get("/devices", reader, requireRead, s.listDevices)
		v1.Get("/devices/:id", reader, requireRead, s.getDevice)
		v1.Put("/devices/:id", reader, requireRegister, s.putDevice)
	}
	if s.d.Alarms != nil {
		v1.Get("/alarms", reader, requireRead, s.listAlarms)
		v1.Get("/alarms/:id", reader, requireRead, s.getAlarm)
		v1.Post("/alarms/:id/ack", reader, requireAct, s.ackAlarm)
		v1.Post("/alarms/:id/resolve", reader, requireAct, s.resolveAlarm)
		v1.Get("/rules", reader, requireRead, s.listRules)
		v1.Put("/rules/:id", reader, requireAdmin, s.putRule)
		v1.Delete("/rules/:id", reader, requireAdmin, s.deleteRule)
	}
}

// requireRegister lets operators and admins register and change devices;
// an ingest token registers a device only by its first report.
func requireRegister(c *fiber.Ctx) error {
	if !principal(c).CanAct() {
		return fiber.NewError(fiber.StatusForbidden, "registering or changing a device needs an operator or admin token (an ingest token registers a device by its first report, in its areas)")
	}
	return c.Next()
}

func requireAct(c *fiber.Ctx) error {
	if !principal(c).CanAct() {
		return fiber.NewError(fiber.StatusForbidden, "acting on alarms needs an operator or admin token")
	}
	return c.Next()
}

// scopeAreas returns the subtrees a list covers: ?area= if the token may
// read it, else the token's own areas (nil: everything).
func (s *Server) scopeAreas(c *fiber.Ctx) ([]string, error) {
	p := principal(c)
	h := s.d.KPIs.Hierarchy()
	if a := c.Query("area"); a != "" {
		if _, ok := h.Unit(a); !ok {
			return nil, fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("unknown area %q in %s", a, h.Name()))
		}
		if !p.MayRead(h, a) {
			return nil, fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("your token does not cover area %s (it covers %s)", a, strings.Join(p.Areas, ", ")))
		}
		return []string{a}, nil
	}
	if p.Unrestricted() {
		return nil, nil
	}
	return p.Areas, nil
}

type deviceList struct {
	Count   int           `json:"count"`
	Devices []device.View `json:"devices"`
}

func (s *Server) listDevices(c *fiber.Ctx) error {
	csv, err := wantsCSV(c)
	if err != nil {
		return err
	}
	areas, err := s.scopeAreas(c)
	if err != nil {
		return err
	}
	kind, status := c.Query("kind"), c.Query("status")
	if kind != "" && !slices.Contains(device.Kinds, kind) {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("kind %q is not one of %s", kind, strings.Join(device.Kinds, ", ")))
	}
	if status != "" && status != "online" && status != "offline" {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("status %q is not online or offline", status))
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	vs, err := s.d.Devices.Views(ctx, areas, kind)
	if err != nil {
		return answer.Unavailable(err)
	}
	out := deviceList{Devices: []device.View{}}
	for _, v := range vs {
		if status == "" || v.Status == status {
			out.Devices = append(out.Devices, v)
		}
	}
	out.Count = len(out.Devices)
	if !csv {
		return c.JSON(out)
	}
	rows := make([][]string, 0, len(out.Devices))
	for _, v := range out.Devices {
		seen := ""
		if v.LastSeen != nil {
			seen = stamp(*v.LastSeen)
		}
		rows = append(rows, []string{v.ID, v.Kind, v.Name, v.AreaCode, num(&v.Lat), num(&v.Lon), v.Status, seen, v.Source})
	}
	return sendCSV(c, "devices", []string{"id", "kind", "name", "area", "lat [degrees]", "lon [degrees]", "status", "last_seen", "source"}, rows)
}

// readableDevice finds :id among the devices the token may read; one
// outside the scope is as unknown as one that does not exist.
func (s *Server) readableDevice(c *fiber.Ctx) (device.View, error) {
	id := c.Params("id")
	d, ok := s.d.Devices.Device(id)
	if !ok || !principal(c).MayRead(s.d.KPIs.Hierarchy(), d.AreaCode) {
		return device.View{}, fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no device %q in your scope; list devices with GET /api/v1/devices", id))
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	vs, err := s.d.Devices.Views(ctx, []string{d.AreaCode}, d.Kind)
	if err != nil {
		return device.View{}, answer.Unavailable(err)
	}
	for _, v := range vs {
		if v.ID == id {
			return v, nil
		}
	}
	return device.View{Device: d, Status: "offline"}, nil
}

func (s *Server) getDevice(c *fiber.Ctx) error {
	v, err := s.readableDevice(c)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// deviceBody is a registration: the device, and for a camera optionally
// the password of its own HTTP Basic credentials, which is kept hashed
// and never returned.
type deviceBody struct {
	device.Device
	Password *string `json:"password"`
}

func (s *Server) putDevice(c *fiber.Ctx) error {
	var body deviceBody
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	if err := strictJSON(raw, &body); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, "device: "+err.Error()+
			` (send {"kind":"camera","name":"…","lat":10.77,"lon":106.70,"channel_name":"…","address":"ip/channel","offline_after":"5m","password":"…"})`)
	}
	d := body.Device
	id := strings.Clone(c.Params("id")) // the cache keeps it beyond the request's buffer
	if d.ID != "" && d.ID != id {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("body id %q differs from the path's %q", d.ID, id))
	}
	d.ID = id
	d.SecretHash, d.Credentials = "", false // set only from a password
	// Within scope: the unit the device stands in now, and the one its new
	// position places it in.
	p, h := principal(c), s.d.KPIs.Hierarchy()
	if was, ok := s.d.Devices.Device(id); ok && !p.Covers(h, was.AreaCode) {
		return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("device %q is registered in a unit your token does not cover (it covers %s); choose another id", id, p.AreasText()))
	}
	if chain := h.Locate(orb.Point{d.Lon, d.Lat}); len(chain) > 0 {
		if code := chain[len(chain)-1].Code; !p.Covers(h, code) {
			return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("the position lat %v, lon %v lies in unit %s, which your token does not cover (it covers %s)", d.Lat, d.Lon, code, p.AreasText()))
		}
	}
	if body.Password != nil {
		if d.Kind != device.Camera {
			return fiber.NewError(fiber.StatusUnprocessableEntity, "password: only cameras take credentials of their own (for POST /api/v1/ingest/camera-xml)")
		}
		hash, err := auth.HashSecret(*body.Password)
		if err != nil {
			return fiber.NewError(fiber.StatusUnprocessableEntity, "password: "+err.Error())
		}
		d.SecretHash = hash
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	d, created, err := s.d.Devices.Put(ctx, d)
	var bad *device.InvalidError
	switch {
	case errors.As(err, &bad):
		return fiber.NewError(fiber.StatusUnprocessableEntity, bad.Error())
	case err != nil:
		return answer.Unavailable(err)
	case created:
		c.Status(fiber.StatusCreated)
	}
	return c.JSON(d)
}

type alarmList struct {
	Count  int           `json:"count"`
	Alarms []alarm.Alarm `json:"alarms"`
}

func (s *Server) listAlarms(c *fiber.Ctx) error {
	csv, err := wantsCSV(c)
	if err != nil {
		return err
	}
	areas, err := s.scopeAreas(c)
	if err != nil {
		return err
	}
	q := alarm.Query{Areas: areas}
	if st := c.Query("state"); st != "" {
		for _, v := range strings.Split(st, ",") {
			switch {
			case v == "active":
				q.States = append(q.States, alarm.Open, alarm.Acknowledged)
			case slices.Contains(alarm.States, v):
				q.States = append(q.States, v)
			default:
				return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("state %q is not one of open, acknowledged, resolved, active (open or acknowledged)", v))
			}
		}
	}
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if v := c.Query(b.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s %q is not an RFC 3339 time, e.g. 2026-11-22T00:00:00+07:00", b.name, v))
			}
			if err := report.CheckTime(b.name, v, t); err != nil {
				return fiber.NewError(fiber.StatusBadRequest, err.Error())
			}
			*b.t = t
		}
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return fiber.NewError(fiber.StatusBadRequest, "limit must be a number from 1 to 10000")
		}
		q.Limit = n
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	as, err := s.d.Alarms.List(ctx, q)
	if err != nil {
		return answer.Unavailable(err)
	}
	if !csv {
		return c.JSON(alarmList{Count: len(as), Alarms: as})
	}
	when := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return stamp(*t)
	}
	rows := make([][]string, 0, len(as))
	for _, a := range as {
		rows = append(rows, []string{a.ID, a.RuleID, a.RuleName, a.DeviceID, a.DeviceName, a.AreaCode, a.Severity, a.State,
			a.Message, num(&a.Value), num(&a.Threshold), stamp(a.OpenedAt), when(a.AcknowledgedAt), a.AcknowledgedBy,
			when(a.ResolvedAt), a.ResolvedBy, a.Resolution})
	}
	return sendCSV(c, "alarms", []string{"id", "rule_id", "rule_name", "device_id", "device_name", "area", "severity", "state",
		"message", "value", "threshold", "opened_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "resolution"}, rows)
}

// readableAlarm finds :id among the alarms the token may read.
func (s *Server) readableAlarm(c *fiber.Ctx) (alarm.Alarm, error) {
	id := c.Params("id")
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	a, err := s.d.Alarms.Get(ctx, id)
	switch {
	case errors.Is(err, alarm.ErrNotFound) || err == nil && !principal(c).MayRead(s.d.KPIs.Hierarchy(), a.AreaCode):
		return a, fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no alarm %q in your scope; list alarms with GET /api/v1/alarms", id))
	case err != nil:
		return a, answer.Unavailable(err)
	}
	return a, nil
}

func (s *Server) getAlarm(c *fiber.Ctx) error {
	a, err := s.readableAlarm(c)
	if err != nil {
		return err
	}
	return c.JSON(a)
}

type actionBody struct {
	Note string `json:"note"`
}

func (s *Server) ackAlarm(c *fiber.Ctx) error { return s.actOnAlarm(c, s.d.Alarms.Acknowledge) }

func (s *Server) resolveAlarm(c *fiber.Ctx) error { return s.actOnAlarm(c, s.d.Alarms.Resolve) }

func (s *Server) actOnAlarm(c *fiber.Ctx, act func(ctx context.Context, id, by, note string) (alarm.Alarm, error)) error {
	var body actionBody
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	if len(raw) > 0 {
		if err := strictJSON(raw, &body); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, `body: `+err.Error()+` (send {"note":"…"} or nothing)`)
		}
	}
	if len(body.Note) > 2000 {
		return fiber.NewError(fiber.StatusBadRequest, "note is longer than 2000 bytes")
	}
	a, err := s.readableAlarm(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	a, err = act(ctx, a.ID, actor(principal(c)), body.Note)
	switch {
	case errors.Is(err, alarm.ErrState):
		return fiber.NewError(fiber.StatusConflict, err.Error())
	case err != nil:
		return answer.Unavailable(err)
	}
	return c.JSON(a)
}

// actor names who acted, as the alarm's history shows it.
func actor(p auth.Principal) string {
	if p.Subject != "" {
		return p.Subject
	}
	return string(p.Role)
}

type ruleList struct {
	Rules []alarm.Rule `json:"rules"`
}

func (s *Server) listRules(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	rs, err := s.d.Alarms.Rules(ctx)
	if err != nil {
		return answer.Unavailable(err)
	}
	return c.JSON(ruleList{Rules: rs})
}

func (s *Server) putRule(c *fiber.Ctx) error {
	var r alarm.Rule
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	if err := strictJSON(raw, &r); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, "rule: "+err.Error())
	}
	id := strings.Clone(c.Params("id"))
	if r.ID != "" && r.ID != id {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("body id %q differs from the path's %q", r.ID, id))
	}
	r.ID = id
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	r, created, err := s.d.Alarms.PutRule(ctx, r, actor(principal(c)))
	var bad *alarm.InvalidRuleError
	switch {
	case errors.As(err, &bad):
		return fiber.NewError(fiber.StatusUnprocessableEntity, "rule: "+bad.Error())
	case errors.Is(err, alarm.ErrReadOnly):
		return fiber.NewError(fiber.StatusConflict, err.Error())
	case err != nil:
		return answer.Unavailable(err)
	case created:
		c.Status(fiber.StatusCreated)
	}
	return c.JSON(r)
}

func (s *Server) deleteRule(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	err := s.d.Alarms.DeleteRule(ctx, c.Params("id"), actor(principal(c)))
	switch {
	case errors.Is(err, alarm.ErrRuleNotFound):
		return fiber.NewError(fiber.StatusNotFound, err.Error())
	case errors.Is(err, alarm.ErrReadOnly):
		return fiber.NewError(fiber.StatusConflict, err.Error())
	case err != nil:
		return answer.Unavailable(err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// strictJSON decodes one JSON object, refusing unknown fields so that a
// misspelt field is reported rather than ignored.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}
