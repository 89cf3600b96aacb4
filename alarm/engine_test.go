package alarm

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus/bustest"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

type fakeDevices struct {
	mu      sync.Mutex
	devices map[string]device.Device
	seen    map[string]time.Time
}

func (f *fakeDevices) Device(id string) (device.Device, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devices[id]
	return d, ok
}

func (f *fakeDevices) List(areas []string, kind string) []device.Device {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []device.Device
	for _, d := range f.devices {
		if kind == "" || d.Kind == kind {
			out = append(out, d)
		}
	}
	return out
}

func (f *fakeDevices) LastSeen(context.Context) (map[string]time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]time.Time{}
	for k, v := range f.seen {
		out[k] = v
	}
	return out, nil
}

type rig struct {
	t       *testing.T
	e       *Engine
	s       *chstore.Store
	devices *fakeDevices
	pub     *bustest.Capture[TopicMessage]
	now     time.Time
}

func newRig(t *testing.T, rules ...Rule) *rig {
	t.Helper()
	s := testenv.Store(t)
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	r := &rig{t: t, s: s, devices: &fakeDevices{devices: map[string]device.Device{}, seen: map[string]time.Time{}},
		pub: &bustest.Capture[TopicMessage]{}, now: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)}
	r.e, err = New(Config{SensorKinds: []string{"pm25", "water_level"}, EventTypes: []string{"traffic_violation", "congestion", "heartbeat"}},
		s, h, r.devices, rules, lease.NewLocal(), r.pub, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.e.now = func() time.Time { return r.now }
	return r
}

func (r *rig) insert(table, columns string, rows ...[]any) {
	r.t.Helper()
	b, err := r.s.Conn().PrepareBatch(context.Background(), "INSERT INTO "+r.s.Database()+"."+table+" ("+columns+")")
	if err != nil {
		r.t.Fatal(err)
	}
	for _, row := range rows {
		if err := b.Append(row...); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) camera(id, camera, typ string, at time.Time) {
	r.insert("camera_events", "event_id, camera_id, type, severity, hierarchy, area_code, lat, lon, occurred_at, attrs, ingested_at",
		[]any{id, camera, typ, "warning", "vn-2025", "26740", 10.7769, 106.7009, at, "{}", r.now})
}

func (r *rig) reading(id, sensor string, v float64, alert *float64, at time.Time) {
	kind := "pm25"
	if alert != nil {
		kind = "water_level"
	}
	r.insert("sensor_readings", "event_id, sensor_id, kind, value, unit, alert_level, danger_level, hierarchy, area_code, lat, lon, observed_at, ingested_at",
		[]any{id, sensor, kind, v, "", alert, (*float64)(nil), "vn-2025", "26740", 10.7769, 106.7009, at, r.now})
}

// evaluate runs one evaluation and returns the changes published on
// alarms/79, the province.
func (r *rig) evaluate() []Change {
	r.t.Helper()
	if err := r.e.Evaluate(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	var out []Change
	for _, m := range r.pub.Take()["alarms/79"] {
		out = append(out, *m.Change)
	}
	return out
}

func actions(cs []Change) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Action+" "+c.Alarm.RuleID+" "+c.Alarm.DeviceID)
	}
	return strings.Join(s, "; ")
}

func TestEventCountRuleOpensAtTheCountAndResolvesWhenTheWindowSlides(t *testing.T) {
	r := newRig(t, Rule{ID: "burst", Name: "burst", Kind: EventCount, Severity: "warning", EventType: "traffic_violation",
		Count: 3, Within: device.Duration(5 * time.Minute), Source: "file"})
	r.camera("e1", "CAM-A", "traffic_violation", r.now.Add(-4*time.Minute))
	r.camera("e2", "CAM-A", "traffic_violation", r.now.Add(-2*time.Minute))
	r.camera("e3", "CAM-A", "congestion", r.now.Add(-time.Minute)) // another type
	r.camera("e4", "CAM-B", "traffic_violation", r.now.Add(-time.Minute))
	if got := actions(r.evaluate()); got != "" {
		t.Fatalf("two of three: got %q, want nothing", got)
	}
	r.camera("e5", "CAM-A", "traffic_violation", r.now.Add(-30*time.Second))
	got := r.evaluate()
	if actions(got) != "opened burst CAM-A" || got[0].Alarm.Value != 3 || got[0].Alarm.AreaCode != "26740" {
		t.Fatalf("three of three: got %q %+v, want burst opened for CAM-A with value 3 in 26740", actions(got), got)
	}
	if got := actions(r.evaluate()); got != "" {
		t.Fatalf("still three: got %q, want no second alarm", got)
	}
	// Three minutes on, e1 is out of the window.
	r.now = r.now.Add(3 * time.Minute)
	if got := actions(r.evaluate()); got != "resolved burst CAM-A" {
		t.Fatalf("window slid: got %q, want the alarm resolved", got)
	}
	as, err := r.e.List(context.Background(), Query{Areas: []string{"79"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].State != Resolved || as[0].Resolution != "cleared" || as[0].ResolvedBy != "" {
		t.Errorf("history: got %+v, want one alarm resolved as cleared", as)
	}
	if len(as) == 1 && (as[0].OpenedAt.Format("-07:00") != "+07:00" || as[0].ResolvedAt == nil || as[0].ResolvedAt.Format("-07:00") != "+07:00") {
		t.Errorf("history: opened %s resolved %v, want both with the deployment's +07:00 offset", as[0].OpenedAt, as[0].ResolvedAt)
	}
}

func TestThresholdMustHoldForItsDuration(t *testing.T) {
	r := newRig(t, Rule{ID: "pm", Name: "pm", Kind: Threshold, Severity: "warning", SensorKind: "pm25", Value: ptr(55.5),
		For: device.Duration(5 * time.Minute), Source: "file"},
		Rule{ID: "flood", Name: "flood", Kind: Threshold, Severity: "critical", SensorKind: "water_level", ValueField: "alert_level", Source: "file"})
	r.reading("r1", "AQ-1", 40, nil, r.now.Add(-10*time.Minute))
	r.reading("r2", "AQ-1", 60, nil, r.now.Add(-4*time.Minute))
	r.reading("r3", "AQ-1", 61, nil, r.now.Add(-time.Minute))
	if got := actions(r.evaluate()); got != "" {
		t.Fatalf("above for 3 minutes: got %q, want nothing", got)
	}
	r.reading("r4", "AQ-1", 58, nil, r.now.Add(time.Minute))
	if got := actions(r.evaluate()); got != "opened pm AQ-1" {
		t.Fatalf("above for 5 minutes: got %q, want pm opened", got)
	}
	// A gauge at its own alert level opens at once; below it, it clears.
	r.reading("w1", "WL-1", 1.5, ptr(1.5), r.now)
	if got := actions(r.evaluate()); got != "opened flood WL-1" {
		t.Fatalf("at the alert level: got %q, want flood opened", got)
	}
	r.reading("w2", "WL-1", 1.4, ptr(1.5), r.now.Add(time.Second))
	r.reading("r5", "AQ-1", 50, nil, r.now.Add(2*time.Minute))
	if got := actions(r.evaluate()); got != "resolved flood WL-1; resolved pm AQ-1" {
		t.Fatalf("below: got %q, want both resolved", got)
	}
}

func TestOfflineAlarmAfterAManualResolveWaitsForTheDeviceToReturn(t *testing.T) {
	r := newRig(t, Rule{ID: "off", Name: "off", Kind: Offline, Severity: "warning", After: device.Duration(10 * time.Minute), Source: "file"})
	r.devices.devices["CAM-A"] = device.Device{ID: "CAM-A", Kind: device.Camera, AreaCode: "26740", UpdatedAt: r.now.Add(-time.Hour)}
	r.devices.seen["CAM-A"] = r.now.Add(-9 * time.Minute)
	if got := actions(r.evaluate()); got != "" {
		t.Fatalf("silent 9 minutes: got %q", got)
	}
	r.now = r.now.Add(time.Minute)
	got := r.evaluate()
	if actions(got) != "opened off CAM-A" {
		t.Fatalf("silent 10 minutes: got %q", actions(got))
	}
	id := got[0].Alarm.ID
	if _, err := r.e.Acknowledge(context.Background(), id, "op-anna", "calling the contractor"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.e.Acknowledge(context.Background(), id, "op-binh", ""); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "op-anna") {
		t.Errorf("second ack: got %v, want ErrState naming op-anna", err)
	}
	a, err := r.e.Resolve(context.Background(), id, "op-anna", "camera replaced")
	if err != nil || a.State != Resolved || a.Resolution != "manual" || a.AcknowledgedBy != "op-anna" || a.ResolveNote != "camera replaced" {
		t.Fatalf("resolve: got %+v, %v", a, err)
	}
	r.pub.Take()
	r.now = r.now.Add(5 * time.Minute)
	if got := actions(r.evaluate()); got != "" {
		t.Fatalf("still silent after a manual resolve: got %q, want nothing until it returns", got)
	}
	r.devices.seen["CAM-A"] = r.now
	r.now = r.now.Add(11 * time.Minute)
	if got := actions(r.evaluate()); got != "opened off CAM-A" {
		t.Fatalf("back, then silent again: got %q, want a new alarm", got)
	}
}

func TestRulesFromTheAPIChangeTheDefaultsButNotTheFile(t *testing.T) {
	defaults := DefaultRules()
	defaults = append(defaults, Rule{ID: "from-file", Name: "f", Kind: Offline, Severity: "info", After: device.Duration(time.Hour), Source: "file"})
	r := newRig(t, defaults...)
	ctx := context.Background()
	r.devices.devices["S-1"] = device.Device{ID: "S-1", Kind: device.Sensor, AreaCode: "26740", UpdatedAt: r.now.Add(-2 * time.Hour)}
	if got := actions(r.evaluate()); got != "opened device-offline S-1; opened from-file S-1" {
		t.Fatalf("got %q", got)
	}
	if _, _, err := r.e.PutRule(ctx, Rule{ID: "from-file", Kind: Offline, Severity: "info", After: device.Duration(time.Minute)}, "admin"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("changing a file rule: got %v, want ErrReadOnly", err)
	}
	var bad *InvalidRuleError
	if _, _, err := r.e.PutRule(ctx, Rule{ID: "x", Kind: Threshold, Severity: "warning", SensorKind: "pm25"}, "admin"); !errors.As(err, &bad) {
		t.Errorf("threshold without a value: got %v, want InvalidRuleError", err)
	}
	rule, created, err := r.e.PutRule(ctx, Rule{ID: "pm25-unhealthy", Kind: Threshold, Severity: "critical", SensorKind: "pm25", Value: ptr(150)}, "admin")
	if err != nil || created || rule.Source != "api" {
		t.Errorf("replacing a default: got %+v created=%v err=%v", rule, created, err)
	}
	if err := r.e.DeleteRule(ctx, "device-offline", "admin"); err != nil {
		t.Fatal(err)
	}
	if err := r.e.DeleteRule(ctx, "nope", "admin"); !errors.Is(err, ErrRuleNotFound) {
		t.Errorf("deleting an unknown rule: got %v", err)
	}
	rules, err := r.e.Rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range rules {
		ids = append(ids, x.ID+"/"+x.Source)
	}
	if got := strings.Join(ids, " "); got != "dataset-feed-late/default from-file/file pm25-unhealthy/api traffic-violations-burst/default water-alert-level/default" {
		t.Errorf("rules: got %s", got)
	}
	got := r.evaluate()
	if actions(got) != "resolved device-offline S-1" || got[0].Alarm.Resolution != "rule_removed" {
		t.Errorf("after deleting its rule: got %q %+v, want the alarm resolved as rule_removed", actions(got), got)
	}
}

func TestRulesFileIsCheckedField(t *testing.T) {
	kinds, types := []string{"pm25"}, []string{"traffic_violation"}
	f := func(body, want string) {
		t.Helper()
		_, err := readRules(strings.NewReader(body), "rules.json", kinds, types, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", body, err, want)
		}
	}
	f(`{"rules":[{"id":"a","kind":"threshold","severity":"warning","sensor_kind":"pm25","value":55.5,"colour":"red"}]}`, `unknown field "colour"`)
	f(`{"rules":[{"id":"a","kind":"sometimes","severity":"warning"}]}`, `kind "sometimes" is not one of`)
	f(`{"rules":[{"id":"a","kind":"threshold","severity":"warning","sensor_kind":"pm10","value":1}]}`, `sensor_kind "pm10"`)
	f(`{"rules":[{"id":"a","kind":"event_count","severity":"warning","event_type":"traffic_violation","count":10}]}`, `within must be above 0`)
	f(`{"rules":[{"id":"a","kind":"offline","severity":"warning","after":"10m"},{"id":"a","kind":"offline","severity":"warning","after":"1m"}]}`, `appears twice`)
	f(`{"rules":[{"id":"a","kind":"offline","severity":"loud","after":"10m"}]}`, `severity "loud"`)
	rs, err := readRules(strings.NewReader(`{"rules":[{"id":"jam","kind":"event_count","severity":"warning","event_type":"traffic_violation","count":5,"within":"2m"}]}`),
		"rules.json", kinds, types, nil)
	if err != nil || len(rs) != 1 || rs[0].Source != "file" || time.Duration(rs[0].Within) != 2*time.Minute || rs[0].Name != "jam" {
		t.Errorf("valid file: got %+v, %v", rs, err)
	}
}
