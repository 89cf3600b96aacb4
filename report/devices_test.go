package report

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/ingest/ingesttest"
)

// TestCameraAndReadingHistoryMatchesTheHandCount: camera events and
// readings over a range, by step, by breakdown and by unit, are what was
// stored: heartbeats, other kinds and other provinces left out.
func TestCameraAndReadingHistoryMatchesTheHandCount(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	camera := func(id, area, typ, severity string, at time.Time) ingest.CameraEvent {
		return ingest.CameraEvent{EventID: id, CameraID: "CAM-" + area, Type: typ, Severity: severity, Hierarchy: "vn-2025",
			AreaCode: area, Lat: 10.77, Lon: 106.7, OccurredAt: at, Attrs: "{}"}
	}
	ingesttest.CameraEvents(t, f.s, []ingest.CameraEvent{
		camera("c1", saiGon, "accident", "warning", oct(3, 9)),
		camera("c2", saiGon, "accident", "warning", oct(3, 10)),
		camera("c3", saiGon, "congestion", "critical", oct(3, 11)),
		camera("c4", benThanh, "accident", "critical", oct(10, 9)),
		camera("c5", benThanh, device.HeartbeatType, "info", oct(10, 10)),
		camera("c6", hanoiW, "accident", "critical", oct(10, 11)),
	})
	reading := func(id, area, kind string, v float64, at time.Time) ingest.Reading {
		return ingest.Reading{EventID: id, SensorID: "S-" + area + "-" + kind, Kind: kind, Value: v, Hierarchy: "vn-2025", AreaCode: area,
			Lat: 10.78, Lon: 106.69, ObservedAt: at}
	}
	ingesttest.Readings(t, f.s, []ingest.Reading{
		reading("r1", saiGon, "pm25", 30.5, oct(3, 9)),
		reading("r2", saiGon, "pm25", 50.25, oct(4, 9)),
		reading("r3", benThanh, "pm25", 70, oct(10, 9)),
		reading("r4", benThanh, "water_level", 1.5, oct(10, 9)),
		reading("r5", benThanh, "temperature", 33, oct(10, 9)),
		reading("r6", hanoiW, "pm25", 150, oct(10, 9)),
	})

	month := func(kpi, by string) Series {
		t.Helper()
		s, err := f.e.Series(ctx, SeriesQuery{KPI: kpi, Area: "79", Range: october(), Step: Month, By: by})
		if err != nil {
			t.Fatalf("%s by %q: %v", kpi, by, err)
		}
		return s
	}
	for _, c := range []struct {
		kpi  string
		want [3]any
	}{
		{"camera_events", [3]any{4.0, 4.0, nil}},
		{"camera_events_critical", [3]any{2.0, 2.0, nil}},
		{"pm25_max", [3]any{70.0, 70.0, nil}},
		{"pm25_avg", [3]any{50.25, 150.75, 3.0}},
		{"water_level_max", [3]any{1.5, 1.5, nil}},
	} {
		checkValue(t, c.kpi+" of 79", month(c.kpi, "").Points[0].Value, c.want)
	}
	shares := func(kpi, by string) string {
		var out string
		for _, s := range month(kpi, by).Points[0].Breakdown {
			out += fmt.Sprintf("%s=%v ", s.Key, val(s.Value.Value))
		}
		return out
	}
	for _, c := range []struct{ kpi, by, want string }{
		{"camera_events", "type", "accident=3 congestion=1 "},
		{"camera_events", "severity", "critical=2 warning=2 "},
		{"camera_events_critical", "type", "accident=1 congestion=1 "},
	} {
		if got := shares(c.kpi, c.by); got != c.want {
			t.Errorf("%s by %s: %s, want %s", c.kpi, c.by, got, c.want)
		}
	}
	days, err := f.e.Series(ctx, SeriesQuery{KPI: "camera_events", Area: "79", Range: Range{october().From, october().From.AddDate(0, 0, 11)}, Step: Day})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]any{}
	for _, p := range days.Points {
		if v := val(p.Value.Value); v != 0.0 {
			got[p.T.Day()] = v
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(map[int]any{3: 3.0, 10: 1.0}) {
		t.Errorf("camera events by day: %v, want 3 on the 3rd and 1 on the 10th", got)
	}
	for _, c := range []struct {
		kpi, by string
		want    string
	}{
		{"camera_events", "", saiGon + "=3 " + benThanh + "=1 "},
		{"pm25_max", "", saiGon + "=50.25 " + benThanh + "=70 "}, // lower is better: first
	} {
		r, err := f.e.Ranking(ctx, RankingQuery{KPI: c.kpi, Parent: "79", Range: october(), By: c.by, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, it := range r.Items {
			got += fmt.Sprintf("%s=%v ", it.Area, val(it.Value.Value))
		}
		if got != c.want {
			t.Errorf("ranking by %s: %s, want %s", c.kpi, got, c.want)
		}
	}
}
