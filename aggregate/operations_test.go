package aggregate

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/ingest/ingesttest"
)

type fakeOps struct {
	devices map[string]device.Counts
	alarms  map[string]uint64
}

func (f fakeOps) AreaCounts(context.Context) (map[string]device.Counts, error) { return f.devices, nil }
func (f fakeOps) OpenCounts(context.Context) (map[string]uint64, error)        { return f.alarms, nil }

func TestCameraSensorDeviceAndAlarmFigures(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC) // 10:30 local
	a, s, _ := newTestAggregator(t, now)
	a.q.ops = fakeOps{
		devices: map[string]device.Counts{"26740": {CamerasOnline: 2, CamerasOffline: 1, SensorsOnline: 1}, "26743": {SensorsOffline: 1}},
		alarms:  map[string]uint64{"26743": 2},
	}
	at := func(d time.Duration) time.Time { return now.Add(d) }
	var cams []ingest.CameraEvent
	cam := func(id, area, typ, sev string, when time.Time) {
		cams = append(cams, ingest.CameraEvent{EventID: id, CameraID: "CAM-1", Type: typ, Severity: sev, Hierarchy: "vn-2025",
			AreaCode: area, Lat: 10.77, Lon: 106.7, OccurredAt: when, Attrs: "{}"})
	}
	var readings []ingest.Reading
	reading := func(id, area, kind string, v float64, when time.Time) {
		readings = append(readings, ingest.Reading{EventID: id, SensorID: "S-1", Kind: kind, Value: v, Hierarchy: "vn-2025",
			AreaCode: area, Lat: 10.77, Lon: 106.7, ObservedAt: when})
	}
	cam("c1", "26740", "traffic_violation", "warning", at(-time.Hour))
	cam("c2", "26740", "traffic_violation", "warning", at(-10*time.Minute))
	cam("c3", "26743", "accident", "critical", at(-5*time.Minute))
	cam("c4", "26743", "heartbeat", "info", at(-5*time.Minute)) // not an event
	cam("c5", "26740", "congestion", "warning", at(-48*time.Hour))
	reading("r1", "26740", "pm25", 40, at(-2*time.Hour))
	reading("r2", "26740", "pm25", 60, at(-10*time.Minute))
	reading("r3", "26743", "pm25", 20, at(-time.Minute))
	reading("r4", "26743", "water_level", 1.62, at(-time.Minute))
	reading("r5", "26743", "water_level", 2.5, at(-72*time.Hour))
	ingesttest.CameraEvents(t, s, cams)
	ingesttest.Readings(t, s, readings)

	keys := []string{"camera_events", "camera_events_critical", "camera_events_by_type", "cameras_online", "cameras_offline",
		"sensors_online", "sensors_offline", "pm25_max", "pm25_avg", "water_level_max", "alarms_open"}
	f := func(code string, w Window, want string) {
		t.Helper()
		snap, err := a.Snapshot(ctx, "vn-2025", code, w)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]any{}
		for _, k := range keys {
			got[k] = snap.KPIs[k]
		}
		b, _ := json.Marshal(got)
		if string(b) != want {
			t.Errorf("%s %s:\n got %s\nwant %s", code, w, b, want)
		}
	}
	f("26740", Today, `{"alarms_open":0,"camera_events":2,"camera_events_by_type":{"traffic_violation":2},"camera_events_critical":0,"cameras_offline":1,"cameras_online":2,"pm25_avg":50,"pm25_max":60,"sensors_offline":0,"sensors_online":1,"water_level_max":null}`)
	f("26743", Today, `{"alarms_open":2,"camera_events":1,"camera_events_by_type":{"accident":1},"camera_events_critical":1,"cameras_offline":0,"cameras_online":0,"pm25_avg":20,"pm25_max":20,"sensors_offline":1,"sensors_online":0,"water_level_max":1.62}`)
	// The province combines maxima as the maximum and means from sums and counts.
	f("79", Today, `{"alarms_open":2,"camera_events":3,"camera_events_by_type":{"accident":1,"traffic_violation":2},"camera_events_critical":1,"cameras_offline":1,"cameras_online":2,"pm25_avg":40,"pm25_max":60,"sensors_offline":1,"sensors_online":1,"water_level_max":1.62}`)
	f("79", Last7, `{"alarms_open":2,"camera_events":4,"camera_events_by_type":{"accident":1,"congestion":1,"traffic_violation":2},"camera_events_critical":1,"cameras_offline":1,"cameras_online":2,"pm25_avg":40,"pm25_max":60,"sensors_offline":1,"sensors_online":1,"water_level_max":2.5}`)
	f("01", Today, `{"alarms_open":0,"camera_events":0,"camera_events_by_type":{},"camera_events_critical":0,"cameras_offline":0,"cameras_online":0,"pm25_avg":null,"pm25_max":null,"sensors_offline":0,"sensors_online":0,"water_level_max":null}`)
}
