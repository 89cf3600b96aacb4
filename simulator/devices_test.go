package simulator

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
)

// testSites lays out per positions in each of n communes.
func testSites(n, per int) []Site {
	var out []Site
	for a := range n {
		code := strconv.Itoa(26700 + 3*a)
		for i := range per {
			out = append(out, Site{Area: code, Lat: 10.60 + 0.01*float64(a), Lon: 106.50 + 0.03*float64(a%7) + 0.002*float64(i)})
		}
	}
	return out
}

func testDevicesConfig(seed int64) DevicesConfig {
	return DevicesConfig{BaseURL: "http://127.0.0.1:8080", Token: "tok", Sites: testSites(60, 3), Location: ict, Seed: seed}
}

func newTestDevices(t *testing.T, cfg DevicesConfig) *Devices {
	t.Helper()
	d, err := NewDevices(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// simulate advances w from start to end (inclusive) by step and returns
// everything it reported; each, if set, sees the world after every advance.
func simulate(w *deviceWorld, start, end time.Time, step time.Duration, each func(now time.Time)) deviceBatch {
	var b deviceBatch
	for now := start; !now.After(end); now = now.Add(step) {
		w.advance(now, &b)
		if each != nil {
			each(now)
		}
	}
	return b
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// anywhere places every position in one commune of province 79.
type anywhere struct{}

func (anywhere) Locate(orb.Point) []geo.Unit {
	return []geo.Unit{{Code: "79", Level: "province"}, {Code: "26734", Level: "commune", Parent: "79"}}
}

var (
	idRE    = regexp.MustCompile(`^(CAM|AQ|WL)-(\d+)-(\d+)$`)
	plateRE = regexp.MustCompile(`^\d\d[A-Z]-\d{3}\.\d{2}$`)
	evIDRE  = regexp.MustCompile(`^simdev-[0-9a-f]{8}-\d+$`)
)

func TestDevicesPlacement(t *testing.T) {
	cfg := testDevicesConfig(5)
	given := map[Site]bool{}
	for _, s := range cfg.Sites {
		given[s] = true
	}
	layout := func(d *Devices) []string {
		var out []string
		for _, dv := range d.world.devs {
			out = append(out, dv.id+"@"+strconv.FormatFloat(dv.site.Lat, 'f', 4, 64)+","+strconv.FormatFloat(dv.site.Lon, 'f', 4, 64))
		}
		return out
	}
	d := newTestDevices(t, cfg)
	if got := layout(newTestDevices(t, cfg)); !slices.Equal(got, layout(d)) {
		t.Errorf("a second simulator with the same sites and seed placed %v, want the same devices as %v", got, layout(d))
	}
	if a, b := layout(newTestDevices(t, testDevicesConfig(0))), layout(newTestDevices(t, testDevicesConfig(0))); !slices.Equal(a, b) {
		t.Errorf("seed 0 placed %v, then %v: want restarts to reuse the same devices", a, b)
	}
	w := d.world
	if len(w.cams) != 80 || len(w.airs) != 24 || len(w.gauges) != 12 {
		t.Errorf("got %d cameras, %d air sensors, %d gauges, want the defaults 80, 24, 12", len(w.cams), len(w.airs), len(w.gauges))
	}
	prefix := map[deviceKind]string{cameraDev: "CAM", airDev: "AQ", gaugeDev: "WL"}
	ids, used, perArea := map[string]bool{}, map[Site]bool{}, map[string]int{}
	for _, dv := range w.devs {
		m := idRE.FindStringSubmatch(dv.id)
		switch {
		case m == nil:
			t.Errorf("device id %q, want CAM|AQ|WL-<area>-<n>", dv.id)
			continue
		case m[1] != prefix[dv.kind]:
			t.Errorf("device %s of kind %d, want prefix %s", dv.id, dv.kind, prefix[dv.kind])
		case m[2] != dv.site.Area:
			t.Errorf("device %s stands in area %s, want its id to name it", dv.id, dv.site.Area)
		case !given[dv.site]:
			t.Errorf("device %s at %+v, want one of the given sites", dv.id, dv.site)
		case used[dv.site]:
			t.Errorf("device %s at %+v shares its site, want distinct sites", dv.id, dv.site)
		case ids[dv.id]:
			t.Errorf("device id %s used twice", dv.id)
		}
		ids[dv.id], used[dv.site] = true, true
		perArea[dv.site.Area]++
		if *dv.lat != dv.site.Lat || *dv.lon != dv.site.Lon {
			t.Errorf("device %s reports %v,%v, want its site %+v", dv.id, *dv.lat, *dv.lon, dv.site)
		}
	}
	// 116 devices over 60 communes: every commune has one or two.
	if len(perArea) != 60 {
		t.Errorf("devices stand in %d communes, want all 60", len(perArea))
	}
	for a, n := range perArea {
		if n > 2 {
			t.Errorf("commune %s has %d devices, want them spread at most 2 per commune", a, n)
		}
	}
	if len(w.hot) == 0 || len(w.hot) > len(w.cams)/10 {
		t.Errorf("got %d hot spots among %d cameras, want a few", len(w.hot), len(w.cams))
	}

	cfg.Cameras, cfg.Sensors, cfg.Gauges = 3, -1, 2
	w = newTestDevices(t, cfg).world
	if len(w.cams) != 3 || len(w.airs) != 0 || len(w.gauges) != 2 {
		t.Errorf("got %d cameras, %d air sensors, %d gauges, want 3, 0, 2", len(w.cams), len(w.airs), len(w.gauges))
	}
}

func TestDevicesReportsFollowWireContract(t *testing.T) {
	start := time.Date(2025, 11, 17, 7, 30, 0, 0, ict) // Monday, rush hour
	end := start.Add(20 * time.Minute)
	d := newTestDevices(t, testDevicesConfig(11))
	b := simulate(d.world, start, end, time.Second, nil)
	rules := ingest.Rules{Hierarchy: "vn-2025", MaxFuture: time.Minute, Places: anywhere{}}
	byID := map[string]*simDevice{}
	for _, dv := range d.world.devs {
		byID[dv.id] = dv
	}
	at := func(id string, lat, lon *float64) {
		t.Helper()
		dv := byID[id]
		switch {
		case dv == nil:
			t.Errorf("report from unknown device %s", id)
		case lat == nil || lon == nil || *lat != dv.site.Lat || *lon != dv.site.Lon:
			t.Errorf("report from %s without its position %+v", id, dv.site)
		}
	}
	checkTime := func(s string) {
		t.Helper()
		ts := parseTime(t, s)
		if !strings.HasSuffix(s, "+07:00") || ts.Before(start) || ts.After(end) {
			t.Errorf("time %q, want RFC 3339 with the +07:00 offset within the run", s)
		}
	}

	// Through JSON as the server reads it.
	var cams []ingest.CameraEventWire
	roundTrip(t, b.cams, &cams)
	seen := map[string]bool{}
	types := map[string]int{}
	heartbeats := map[string]int{}
	for _, e := range cams {
		if _, err := rules.ValidateCamera(e, end); err != nil {
			t.Errorf("invalid camera event %+v: %v", e, err)
		}
		if !evIDRE.MatchString(e.EventID) || seen[e.EventID] {
			t.Errorf("event_id %q, want a unique simdev-<run>-<n>", e.EventID)
		}
		seen[e.EventID] = true
		if !slices.Contains(device.CameraEventTypes, e.Type) || !slices.Contains(device.CameraSeverities, e.Severity) {
			t.Errorf("event %s: type %q severity %q, want known ones", e.EventID, e.Type, e.Severity)
		}
		checkTime(e.OccurredAt)
		at(e.CameraID, e.Lat, e.Lon)
		types[e.Type]++
		want := map[string]string{"heartbeat": "info", "traffic_violation": "warning", "congestion": "warning",
			"plate_read": "info", "accident": "critical", "crowd": "warning"}[e.Type]
		if e.Severity != want {
			t.Errorf("%s event with severity %s, want %s", e.Type, e.Severity, want)
		}
		switch e.Type {
		case "heartbeat":
			heartbeats[e.CameraID]++
		case "traffic_violation":
			p, _ := e.Attrs["plate"].(string)
			v, _ := e.Attrs["violation"].(string)
			if !plateRE.MatchString(p) || !slices.Contains([]string{"red_light", "speeding", "wrong_lane"}, v) {
				t.Errorf("violation attrs %v, want a plate like 51F-123.45 and red_light, speeding or wrong_lane", e.Attrs)
			}
		case "plate_read":
			if p, _ := e.Attrs["plate"].(string); !plateRE.MatchString(p) {
				t.Errorf("plate_read attrs %v, want a plate like 51F-123.45", e.Attrs)
			}
		}
	}
	for _, typ := range []string{"heartbeat", "traffic_violation", "congestion", "plate_read"} {
		if types[typ] == 0 {
			t.Errorf("got no %s in 20 rush-hour minutes; got %v", typ, types)
		}
	}
	for _, dv := range d.world.cams {
		if n := heartbeats[dv.id]; (n < 20 || n > 21) && dv.silentFrom.IsZero() {
			t.Errorf("camera %s sent %d heartbeats in 20 minutes, want one a minute", dv.id, n)
		}
	}

	var reads []ingest.SensorReadingWire
	roundTrip(t, b.reads, &reads)
	units := map[string]string{"pm25": "ug/m3", "pm10": "ug/m3", "temperature": "C", "humidity": "%", "water_level": "m"}
	kinds := map[string]map[string]int{}
	for _, r := range reads {
		if _, err := rules.ValidateReading(r, end); err != nil {
			t.Errorf("invalid reading %+v: %v", r, err)
		}
		if u, ok := units[r.Kind]; !ok || r.Unit != u || !slices.Contains(device.SensorKindIDs(), r.Kind) {
			t.Errorf("reading of %q in %q, want one of %v", r.Kind, r.Unit, units)
		}
		checkTime(r.ObservedAt)
		at(r.SensorID, r.Lat, r.Lon)
		if kinds[r.SensorID] == nil {
			kinds[r.SensorID] = map[string]int{}
		}
		kinds[r.SensorID][r.Kind]++
		gauge := r.Kind == "water_level"
		if gauge != strings.HasPrefix(r.SensorID, "WL-") || gauge != (r.AlertLevel != nil) || gauge != (r.DangerLevel != nil) {
			t.Errorf("reading %s of %s: alert %v danger %v, want gauges alone to read water levels and carry both levels", r.Kind, r.SensorID, r.AlertLevel, r.DangerLevel)
		} else if gauge && (*r.AlertLevel != 1.5 || *r.DangerLevel != 1.8) {
			t.Errorf("gauge %s: alert %v danger %v, want 1.5 and 1.8", r.SensorID, *r.AlertLevel, *r.DangerLevel)
		}
	}
	for _, dv := range append(slices.Clone(d.world.airs), d.world.gauges...) {
		if !dv.silentFrom.IsZero() {
			continue
		}
		want := []string{"pm25", "pm10", "temperature", "humidity"}
		if dv.kind == gaugeDev {
			want = []string{"water_level"}
		}
		for _, k := range want {
			if n := kinds[dv.id][k]; n < 20 || n > 21 {
				t.Errorf("%s sent %d %s readings in 20 minutes, want one a minute", dv.id, n, k)
			}
		}
	}

	// Another run must not reuse event ids, whatever the seed.
	b2 := simulate(newTestDevices(t, testDevicesConfig(11)).world, start, start, time.Second, nil)
	if len(b2.cams) > 0 && seen[b2.cams[0].EventID] || len(b2.cams) > 0 && strings.HasPrefix(b2.cams[0].EventID, d.world.evPrefix+"-") {
		t.Errorf("a second run sent event id %s, want ids of its own", b2.cams[0].EventID)
	}
}

func roundTrip[T any](t *testing.T, in []T, out *[]T) {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatal(err)
	}
}

type series struct {
	at []time.Time
	v  []float64
}

func readingsOf(t *testing.T, reads []ingest.SensorReadingWire, kind string) map[string]*series {
	t.Helper()
	out := map[string]*series{}
	for _, r := range reads {
		if r.Kind != kind {
			continue
		}
		s := out[r.SensorID]
		if s == nil {
			s = &series{}
			out[r.SensorID] = s
		}
		s.at = append(s.at, parseTime(t, r.ObservedAt))
		s.v = append(s.v, *r.Value)
	}
	return out
}

func TestDevicesEpisodes(t *testing.T) {
	start := time.Date(2025, 11, 17, 10, 0, 0, 0, ict)
	end := start.Add(15 * time.Minute)
	d := newTestDevices(t, testDevicesConfig(21))
	b := simulate(d.world, start, end, time.Second, nil)

	// PM2.5: a cluster of 2–4 stations above 55.5 for 8–12 minutes, then back.
	inEpisode := 0
	var longest time.Duration
	for id, s := range readingsOf(t, b.reads, "pm25") {
		first, last, back := -1, -1, false
		for i, v := range s.v {
			switch {
			case v >= 55.5 && back:
				t.Errorf("%s: PM2.5 %v at %s after the episode ended", id, v, s.at[i].Format(time.TimeOnly))
			case v >= 55.5:
				if first < 0 {
					first = i
				}
				if last >= 0 && last != i-1 {
					t.Errorf("%s: PM2.5 dips below 55.5 within the episode at %s", id, s.at[i-1].Format(time.TimeOnly))
				}
				last = i
				if v > 110*1.15 {
					t.Errorf("%s: PM2.5 %v, want episodes to peak at 60–110", id, v)
				}
			case first >= 0:
				back = true
			case v < 15 || v > 45:
				t.Errorf("%s: baseline PM2.5 %v at %s, want 15–45", id, v, s.at[i].Format(time.TimeOnly))
			}
		}
		if first < 0 {
			continue
		}
		inEpisode++
		if s.at[first].Before(start.Add(time.Minute)) || s.at[first].After(start.Add(2*time.Minute)) {
			t.Errorf("%s: episode starts at %s, want about a minute after the start", id, s.at[first].Format(time.TimeOnly))
		}
		if !back {
			t.Errorf("%s: PM2.5 still above 55.5 at the end of the first 15 minutes, want it back to baseline", id)
		}
		longest = max(longest, s.at[last].Sub(s.at[first]))
	}
	if inEpisode < 2 || inEpisode > 4 {
		t.Errorf("got %d stations in the first PM2.5 episode, want a cluster of 2–4", inEpisode)
	}
	if longest < 6*time.Minute {
		t.Errorf("the PM2.5 episode lasted %s, want at least 6 minutes above 55.5", longest)
	}

	// Water: one gauge crosses its alert level and falls back.
	flooded := 0
	for id, s := range readingsOf(t, b.reads, "water_level") {
		up, down := -1, -1
		for i, v := range s.v {
			switch {
			case v >= 1.5 && up < 0:
				up = i
			case v < 1.5 && up >= 0 && down < 0:
				down = i
			case v >= 1.5 && down >= 0:
				t.Errorf("%s: level %v after the flood receded", id, v)
			case v > 1.5 && v > 1.95:
				t.Errorf("%s: level %v, want crests of 1.55–1.9 m", id, v)
			case up < 0 && s.at[i].Before(start.Add(2*time.Minute)) && (v < 0.6 || v > 1.1):
				t.Errorf("%s: baseline level %v, want 0.6–1.1 m", id, v)
			}
		}
		if up < 0 {
			continue
		}
		flooded++
		if s.at[up].Before(start.Add(2*time.Minute)) || s.at[up].After(start.Add(7*time.Minute)) {
			t.Errorf("%s: level reaches 1.5 at %s, want a rise from about 2 minutes after the start over about 4", id, s.at[up].Format(time.TimeOnly))
		}
		if down < 0 {
			t.Errorf("%s: level above 1.5 at the end of the first 15 minutes, want it receded", id)
		} else if held := s.at[down].Sub(s.at[up]); held < 5*time.Minute {
			t.Errorf("%s: level at or above 1.5 for %s, want longer than the crest's 5 minutes", id, held)
		}
	}
	if flooded != 1 {
		t.Errorf("got %d gauges at their alert level, want 1", flooded)
	}
}

func TestDevicesRushHour(t *testing.T) {
	count := func(h int) (violations, detections int, perCam map[string][]time.Time) {
		start := time.Date(2025, 11, 17, h, 0, 0, 0, ict)
		d := newTestDevices(t, testDevicesConfig(4))
		b := simulate(d.world, start, start.Add(time.Hour), 5*time.Second, nil)
		perCam = map[string][]time.Time{}
		for _, e := range b.cams {
			if e.Type == device.HeartbeatType {
				continue
			}
			detections++
			if e.Type == "traffic_violation" {
				violations++
				perCam[e.CameraID] = append(perCam[e.CameraID], parseTime(t, e.OccurredAt))
			}
		}
		return violations, detections, perCam
	}
	rushV, rushD, perCam := count(7)
	nightV, nightD, _ := count(3)
	if nightV == 0 || rushV < 4*nightV {
		t.Errorf("got %d violations from 07:00 and %d from 03:00, want several times more in rush hour", rushV, nightV)
	}
	if rate := float64(rushD) / 3600; rate < 1 || rate > 3 {
		t.Errorf("got %.2f detections/s in rush hour, want 1–3 for the city", rate)
	}
	if rate := float64(nightD) / 3600; rate > 0.4 {
		t.Errorf("got %.2f detections/s at 03:00, want much less than at the peak", rate)
	}

	// Hot spots: ≥ 12 violations within 5 minutes, then quiet enough for
	// the alarm to resolve.
	window := func(ts []time.Time, from time.Time) int {
		n := 0
		for _, x := range ts {
			if !x.Before(from) && x.Before(from.Add(5*time.Minute)) {
				n++
			}
		}
		return n
	}
	bursts := 0
	for id, ts := range perCam {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		for _, x := range ts {
			if window(ts, x) < 12 {
				continue
			}
			bursts++
			quiet := false
			for from := x.Add(5 * time.Minute); from.Before(x.Add(20 * time.Minute)); from = from.Add(time.Minute) {
				quiet = quiet || window(ts, from) < 10
			}
			if !quiet {
				t.Errorf("camera %s: burst from %s never falls below 10 violations in 5 minutes", id, x.Format(time.TimeOnly))
			}
			break
		}
	}
	if bursts == 0 {
		t.Errorf("got no camera with 12 violations within 5 minutes in rush hour, want hot spots")
	}
}

func TestDevicesOutages(t *testing.T) {
	start := time.Date(2025, 11, 17, 10, 0, 0, 0, ict)
	end := start.Add(3 * time.Hour)
	d := newTestDevices(t, testDevicesConfig(8))
	w := d.world
	type outage struct {
		id          string
		from, until time.Time
	}
	var outages []outage
	known := map[outage]bool{}
	b := simulate(w, start, end, 5*time.Second, func(time.Time) {
		for _, dv := range w.devs {
			if o := (outage{dv.id, dv.silentFrom, dv.silentUntil}); !dv.silentFrom.IsZero() && !known[o] {
				known[o] = true
				outages = append(outages, o)
			}
		}
	})
	if len(outages) < 8 {
		t.Fatalf("got %d outages in 3 hours, want about one every 15 minutes", len(outages))
	}
	if first := outages[0].from.Sub(start); first < 2*time.Minute || first > 5*time.Minute {
		t.Errorf("first outage %s after the start, want a few minutes", first)
	}
	reports := map[string][]time.Time{}
	for _, e := range b.cams {
		reports[e.CameraID] = append(reports[e.CameraID], parseTime(t, e.OccurredAt))
	}
	for _, r := range b.reads {
		reports[r.SensorID] = append(reports[r.SensorID], parseTime(t, r.ObservedAt))
	}
	for i, o := range outages {
		if dur := o.until.Sub(o.from); dur < 13*time.Minute || dur > 16*time.Minute {
			t.Errorf("%s silent for %s, want 13–16 minutes", o.id, dur)
		}
		if i > 0 {
			if gap := o.from.Sub(outages[i-1].from); gap < 13*time.Minute || gap > 35*time.Minute {
				t.Errorf("outage of %s %s after the previous, want about 15 minutes", o.id, gap)
			}
		}
		silent := 0
		for _, p := range outages {
			if p.from.Compare(o.from) <= 0 && p.until.After(o.from) {
				silent++
			}
		}
		if silent > 2 {
			t.Errorf("%d devices silent at %s, want at most 2", silent, o.from.Format(time.TimeOnly))
		}
		before, after := false, false
		for _, ts := range reports[o.id] {
			switch {
			case !ts.Before(o.from) && ts.Before(o.until):
				t.Errorf("%s reported at %s during its outage %s–%s", o.id, ts.Format(time.TimeOnly),
					o.from.Format(time.TimeOnly), o.until.Format(time.TimeOnly))
			case ts.Before(o.from) && ts.After(o.from.Add(-2*time.Minute)):
				before = true
			case !ts.Before(o.until) && ts.Before(o.until.Add(2*time.Minute)):
				after = true
			}
		}
		if !before || !after && o.until.Add(2*time.Minute).Before(end) {
			t.Errorf("%s: reported just before its outage %v, just after %v; want both", o.id, before, after)
		}
		if dv := w.devs[slices.IndexFunc(w.devs, func(dv *simDevice) bool { return dv.id == o.id })]; dv.hot {
			t.Errorf("hot spot %s went silent, want hot spots spared", o.id)
		}
	}
}

func TestDevicesClockJump(t *testing.T) {
	start := time.Date(2025, 11, 17, 8, 0, 0, 0, ict)
	w := newTestDevices(t, testDevicesConfig(2)).world
	simulate(w, start, start.Add(time.Minute), time.Second, nil)
	var b deviceBatch
	w.advance(start.Add(24*time.Hour), &b)
	// At most maxCatchUp of reports: 116 devices a minute plus detections.
	if limit := int(maxCatchUp.Minutes()) * (116*4 + 300); len(b.cams)+len(b.reads) > limit {
		t.Errorf("got %d reports after a one-day jump, want at most about %d", len(b.cams)+len(b.reads), limit)
	}
}

func TestDevicesQueueDropsOldest(t *testing.T) {
	q := &queue[int]{limit: 100}
	if n := q.push(make([]int, 90)); n != 0 {
		t.Errorf("push under the limit dropped %d", n)
	}
	more := []int{}
	for i := range 20 {
		more = append(more, i+1)
	}
	if n := q.push(more); n != 35 {
		t.Errorf("push past the limit dropped %d, want 35 (down to 3/4 of the limit)", n)
	}
	got := q.take(q.len())
	if len(got) != 75 || !slices.Equal(got[55:], more) {
		t.Errorf("kept %d items ending %v, want the newest 75", len(got), got[len(got)-20:])
	}
}

// devicesServer records what the device simulator POSTs and validates it as
// the server does.
type devicesServer struct {
	t      *testing.T
	rules  ingest.Rules
	now    func() time.Time
	answer func(path string, call int) int // status; nil: always 202

	mu    sync.Mutex
	calls map[string]int
	ids   map[string][][]string
	cams  []ingest.CameraEventWire
	reads []ingest.SensorReadingWire
}

func (s *devicesServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := s.t
	if ct := r.Header.Get("Content-Type"); r.Method != http.MethodPost || ct != "application/json" || r.Header.Get("Authorization") != "Bearer tok" {
		t.Errorf("got %s %s as %q with %q, want POST application/json with Bearer tok", r.Method, r.URL.Path, ct, r.Header.Get("Authorization"))
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var ids []string
	var cams []ingest.CameraEventWire
	var reads []ingest.SensorReadingWire
	switch r.URL.Path {
	case "/api/v1/ingest/camera-events":
		if err := json.Unmarshal(body, &cams); err != nil {
			t.Errorf("camera events body: %v", err)
		}
		for _, e := range cams {
			if _, err := s.rules.ValidateCamera(e, s.now()); err != nil {
				t.Errorf("invalid camera event %+v: %v", e, err)
			}
			ids = append(ids, e.EventID)
		}
	case "/api/v1/ingest/sensor-readings":
		if err := json.Unmarshal(body, &reads); err != nil {
			t.Errorf("sensor readings body: %v", err)
		}
		for _, e := range reads {
			if _, err := s.rules.ValidateReading(e, s.now()); err != nil {
				t.Errorf("invalid reading %+v: %v", e, err)
			}
			ids = append(ids, e.SensorID+"/"+e.Kind+"/"+e.ObservedAt)
		}
	default:
		t.Errorf("POST to %s, want an ingest endpoint", r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	s.mu.Lock()
	s.calls[r.URL.Path]++
	call := s.calls[r.URL.Path]
	s.ids[r.URL.Path] = append(s.ids[r.URL.Path], ids)
	status := http.StatusAccepted
	if s.answer != nil {
		status = s.answer(r.URL.Path, call)
	}
	if status == http.StatusAccepted {
		s.cams = append(s.cams, cams...)
		s.reads = append(s.reads, reads...)
	}
	s.mu.Unlock()
	if status != http.StatusAccepted {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(status)
		return
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"accepted": len(ids), "rejected": 0, "errors": []any{}})
}

// devClock is a simulated clock the test moves on; Run reads it.
type devClock struct {
	mu    sync.Mutex
	t     time.Time
	reads int
}

func (c *devClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.t
}

func (c *devClock) Peek() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *devClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *devClock) read() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// newDevicesServer serves one test; answer may be nil (always 202).
func newDevicesServer(t *testing.T, now func() time.Time, answer func(path string, call int) int) (*devicesServer, string) {
	srv := &devicesServer{
		t: t, now: now, answer: answer, calls: map[string]int{}, ids: map[string][][]string{},
		rules: ingest.Rules{Hierarchy: "vn-2025", MaxFuture: time.Minute, Places: anywhere{}},
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return srv, hs.URL + "/"
}

// sameDevicesRun encodes reports with the run's id blanked out of event
// ids, which differs between runs even with one seed.
func sameDevicesRun(t *testing.T, cams []ingest.CameraEventWire, reads []ingest.SensorReadingWire) (c, r []string) {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, e := range cams {
		e.EventID = e.EventID[strings.LastIndexByte(e.EventID, '-')+1:]
		c = append(c, enc(e))
	}
	for _, e := range reads {
		r = append(r, enc(e))
	}
	return c, r
}

func TestDevicesThroughIngest(t *testing.T) {
	start := time.Date(2025, 11, 17, 7, 30, 0, 0, ict)
	end := start.Add(5 * time.Minute)
	clock := &devClock{t: start}
	// The first camera batch meets a busy server and goes again.
	srv, url := newDevicesServer(t, clock.Peek, func(path string, call int) int {
		if path == "/api/v1/ingest/camera-events" && call == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	cfg := testDevicesConfig(9)
	cfg.BaseURL = url
	reg := prometheus.NewRegistry()
	// The dossier simulator shares the registry without a clash.
	if _, err := New(Config{BaseURL: url, Token: "tok", Rate: 1, Areas: []string{"26734"}}, nil, reg); err != nil {
		t.Fatal(err)
	}
	d, err := NewDevices(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	// What the same seed reports when stepped to the same times.
	want := simulate(newTestDevices(t, cfg).world, start, end, 10*time.Second, nil)
	for now := start; !now.After(end); now = now.Add(10 * time.Second) {
		clock.set(now)
		if err := d.Step(now); err != nil {
			t.Fatal(err)
		}
		if err := d.Flush(context.Background()); err != nil {
			t.Fatalf("Flush at %s: %v", now.Format(time.TimeOnly), err)
		}
	}

	srv.mu.Lock()
	defer srv.mu.Unlock()
	camIDs := srv.ids["/api/v1/ingest/camera-events"]
	if len(camIDs) < 2 || !slices.Equal(camIDs[0], camIDs[1]) {
		t.Errorf("got camera batches %.3v, want the refused first batch sent again", camIDs)
	}
	if len(srv.cams) < 400 || len(srv.reads) < 400 {
		t.Errorf("got %d camera events and %d readings in 5 simulated minutes, want hundreds of each", len(srv.cams), len(srv.reads))
	}
	// Nothing lost, nothing twice.
	gotCams, gotReads := sameDevicesRun(t, srv.cams, srv.reads)
	wantCams, wantReads := sameDevicesRun(t, want.cams, want.reads)
	if !slices.Equal(gotCams, wantCams) || !slices.Equal(gotReads, wantReads) {
		t.Errorf("got %d camera events and %d readings, want the %d and %d the seed reports, in order",
			len(gotCams), len(gotReads), len(wantCams), len(wantReads))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sent := map[string]float64{}
	posts := -1.0
	for _, mf := range mfs {
		switch mf.GetName() {
		case "ioc_simulator_device_reports_sent_total":
			for _, m := range mf.GetMetric() {
				sent[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		case "ioc_simulator_device_post_errors_total":
			posts = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	// Every Flush returned once its batches were answered: the counts are exact.
	if sent["camera"] != float64(len(srv.cams)) || sent["sensor"] != float64(len(srv.reads)) {
		t.Errorf("reports_sent_total camera %v, sensor %v, want %d and %d", sent["camera"], sent["sensor"], len(srv.cams), len(srv.reads))
	}
	if posts != 1 {
		t.Errorf("post_errors_total %v, want 1", posts)
	}
}

// A refused token pauses sending for a simulated minute, not a real one.
func TestDevicesPauseAfterRefusedToken(t *testing.T) {
	start := time.Date(2025, 11, 17, 10, 0, 0, 0, ict)
	clock := &devClock{t: start}
	srv, url := newDevicesServer(t, clock.Peek, func(string, int) int { return http.StatusForbidden })
	cfg := testDevicesConfig(3)
	cfg.BaseURL = url
	d := newTestDevices(t, cfg)
	var errs []error
	for now := start; !now.After(start.Add(90 * time.Second)); now = now.Add(5 * time.Second) {
		clock.set(now)
		if err := d.Step(now); err != nil {
			t.Fatal(err)
		}
		errs = append(errs, d.Flush(context.Background()))
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	// The first Flush to have reports posts each kind once and is refused;
	// then nothing until a minute has passed; then once more each.
	if len(srv.calls) != 2 {
		t.Errorf("got requests to %v, want both endpoints", srv.calls)
	}
	for path, calls := range srv.calls {
		if calls != 2 {
			t.Errorf("%s: got %d requests in 90 simulated seconds, want 2, a minute apart", path, calls)
		}
	}
	paused := 0
	for _, err := range errs {
		if err != nil && strings.Contains(err.Error(), "paused") {
			paused++
		}
	}
	if paused == 0 || errs[len(errs)-1] == nil {
		t.Errorf("flush errors %v, want pauses after each refusal", errs)
	}
}

// Run is Step on its clock every Tick and Flush on the same beat: it sends
// exactly what stepping to the times it read sends.
func TestDevicesRunSendsWhatStepsSend(t *testing.T) {
	times := []time.Time{
		time.Date(2025, 11, 17, 7, 30, 0, 0, ict),
		time.Date(2025, 11, 17, 7, 31, 0, 0, ict),
		time.Date(2025, 11, 17, 7, 34, 30, 0, ict),
	}
	clock := &devClock{t: times[0]}
	srv, url := newDevicesServer(t, clock.Peek, nil)
	cfg := testDevicesConfig(9)
	cfg.BaseURL, cfg.Now, cfg.Tick = url, clock.Now, 5*time.Millisecond
	d := newTestDevices(t, cfg)
	ref := newTestDevices(t, cfg).world

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	defer stop()
	for deadline := time.Now().Add(10 * time.Second); clock.read() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Run never read its clock")
		}
	}
	if err := d.Step(times[0]); err == nil {
		t.Errorf("Step while Run runs: got no error, want one")
	}
	if err := d.Flush(ctx); err == nil {
		t.Errorf("Flush while Run runs: got no error, want one")
	}
	var want deviceBatch
	for _, now := range times {
		ref.advance(now, &want)
		wantCams, wantReads := sameDevicesRun(t, want.cams, want.reads)
		clock.set(now)
		var gotCams, gotReads []string
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			srv.mu.Lock()
			gotCams, gotReads = sameDevicesRun(t, srv.cams, srv.reads)
			srv.mu.Unlock()
			if len(gotCams) >= len(wantCams) && len(gotReads) >= len(wantReads) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("at %s got %d camera events and %d readings after 30s, want %d and %d",
					now.Format(time.TimeOnly), len(gotCams), len(gotReads), len(wantCams), len(wantReads))
			}
		}
		if !slices.Equal(gotCams, wantCams) || !slices.Equal(gotReads, wantReads) {
			t.Fatalf("at %s Run sent other reports than Step and Flush", now.Format(time.TimeOnly))
		}
	}
	if err := stop(); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	if err := d.Run(ctx); err != nil {
		t.Errorf("Run after the end: %v, want nil", err)
	}
}

func TestNewDevicesExplainsBadConfig(t *testing.T) {
	ok := testDevicesConfig(1)
	f := func(name string, mutate func(*DevicesConfig), want string) {
		t.Helper()
		cfg := ok
		cfg.Sites = slices.Clone(ok.Sites)
		mutate(&cfg)
		_, err := NewDevices(cfg, nil, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got error %v, want one mentioning %q", name, err, want)
		}
	}
	f("no url", func(c *DevicesConfig) { c.BaseURL = "" }, "BaseURL is required")
	f("relative url", func(c *DevicesConfig) { c.BaseURL = "localhost:8080" }, "absolute http")
	f("no token", func(c *DevicesConfig) { c.Token = "" }, "Token is required")
	f("no sites", func(c *DevicesConfig) { c.Sites = nil }, "Sites is empty")
	f("blank area", func(c *DevicesConfig) { c.Sites[3].Area = " " }, "Sites[3] has no Area")
	f("slash", func(c *DevicesConfig) { c.Sites[0].Area = "79/1" }, "cannot be part of a device id")
	f("swapped", func(c *DevicesConfig) { c.Sites[1].Lat, c.Sites[1].Lon = 106.7, 10.8 }, "not swapped")
	f("nan", func(c *DevicesConfig) { c.Sites[1].Lon = math.NaN() }, "out of range")
	f("few sites", func(c *DevicesConfig) { c.Sites = c.Sites[:100] }, "100 distinct positions for 116 devices")
	f("repeated sites", func(c *DevicesConfig) {
		for i := range c.Sites {
			c.Sites[i] = c.Sites[0]
		}
	}, "1 distinct positions")
	f("negative tick", func(c *DevicesConfig) { c.Tick = -time.Second }, "Tick -1s is negative")

	reg := prometheus.NewRegistry()
	if _, err := NewDevices(ok, nil, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDevices(ok, nil, reg); err == nil || !strings.Contains(err.Error(), "register metrics") {
		t.Errorf("second device simulator on one registry: got %v, want a registration error", err)
	}
}
