package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/devservices"
	"github.com/openioc/ioc/internal/testenv"
)

// Nguyễn Huệ walking street, in Sài Gòn ward of Ho Chi Minh City (79).
const nhLat, nhLon = 10.7769, 106.7009

type alarmJSON struct {
	ID             string  `json:"id"`
	RuleID         string  `json:"rule_id"`
	DeviceID       string  `json:"device_id"`
	AreaCode       string  `json:"area_code"`
	State          string  `json:"state"`
	Value          float64 `json:"value"`
	AcknowledgedBy string  `json:"acknowledged_by"`
	AckNote        string  `json:"ack_note"`
	ResolvedBy     string  `json:"resolved_by"`
	Resolution     string  `json:"resolution"`
}

type alarmTopic struct {
	Area   string      `json:"area"`
	Open   []alarmJSON `json:"open"`
	Change *struct {
		Action string    `json:"action"`
		Alarm  alarmJSON `json:"alarm"`
	} `json:"change"`
}

func (m wsMessage) alarms(t testing.TB) alarmTopic {
	t.Helper()
	var a alarmTopic
	if err := json.Unmarshal(m.Data, &a); err != nil {
		t.Fatalf("alarm message %q: %v", m.Data, err)
	}
	return a
}

// withMQTT gives the node a broker of the test's own, so that no other
// test's messages reach it.
func withMQTT(t *testing.T, cfg *serveConfig) *devservices.Server {
	t.Helper()
	broker := testenv.StartMosquitto(t)
	cfg.MQTT.URL = devservices.MQTTURL(broker)
	cfg.MQTT.ClientID = "iocd-" + cfg.ClickHouse.Database
	cfg.MQTT.RetryMin, cfg.MQTT.RetryMax = 100*time.Millisecond, time.Second
	return broker
}

// publish sends one message with QoS 1 as operators do, with mosquitto_pub.
func publish(t *testing.T, broker *devservices.Server, topic string, msg any) {
	t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(broker.Addr, ":")
	out, err := exec.Command("mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-t", topic, "-m", string(b)).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
}

// waitReady waits until /readyz answers 200 (the broker connected too,
// and the figures of every unit published once: on a busy machine that
// takes a while).
func (n *node) waitReady() {
	n.t.Helper()
	n.waitReadyWithin(60 * time.Second)
}

// waitReadyWithin is waitReady with a deadline of its own, for a node that
// writes the simulated history first.
func (n *node) waitReadyWithin(d time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var body map[string]any
		if n.get("/readyz", "", &body) == 200 {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("node not ready: %v", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventually retries f until it reports done, failing with its last word
// after d.
func eventually(t *testing.T, d time.Duration, f func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, d, f)
}

func (n *node) communeAt(lat, lon float64) string {
	n.t.Helper()
	var r struct {
		Units []struct {
			Code  string `json:"code"`
			Level string `json:"level"`
		} `json:"units"`
	}
	if code := n.get(fmt.Sprintf("/api/v1/geo/lookup?lat=%v&lon=%v", lat, lon), adminToken, &r); code != 200 || len(r.Units) == 0 {
		n.t.Fatalf("lookup answered %d: %+v", code, r)
	}
	return r.Units[len(r.Units)-1].Code
}

func (n *node) post(path, token, contentType string, body []byte, v any) int {
	n.t.Helper()
	resp := n.do("POST", path, token, contentType, body)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if v != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, v); err != nil {
			n.t.Fatalf("POST %s answered %d with %q", path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

func (n *node) put(path, token string, body any) (int, string) {
	n.t.Helper()
	b, _ := json.Marshal(body)
	resp := n.do("PUT", path, token, "application/json", b)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func stamp(t time.Time) string { return t.In(hcm).Format(time.RFC3339) }

func TestMQTTReadingFeedsIndicatorsAndOpensThenClosesAnAlarm(t *testing.T) {
	cfg := testConfig(t)
	broker := withMQTT(t, &cfg)
	n := startNode(t, cfg)
	n.waitReady()
	commune := n.communeAt(nhLat, nhLon)

	ws := n.live(issueToken(t, auth.Viewer, "79"))
	ws.send("subscribe", "alarms/79")
	if m := ws.next(5 * time.Second); m.Type != "snapshot" || len(m.alarms(t).Open) != 0 {
		t.Fatalf("first message: got %s %s, want a snapshot with no open alarm", m.Type, m.Data)
	}

	now := time.Now().Truncate(time.Second)
	reading := func(v float64, at time.Time) map[string]any {
		return map[string]any{"kind": "pm25", "value": v, "unit": "ug/m3", "lat": nhLat, "lon": nhLon, "observed_at": stamp(at)}
	}
	// The sensor id comes from the topic; the first report registers it.
	publish(t, broker, "ioc/sensors/AQ-T1/readings", reading(60, now.Add(-6*time.Minute)))
	eventually(t, 10*time.Second, func() (bool, string) {
		s := n.kpis(commune, "24h")
		return num(s.KPIs["pm25_max"]) == 60, fmt.Sprintf("commune %s pm25_max %v, want 60", commune, s.KPIs["pm25_max"])
	})
	if s := n.kpis("79", "24h"); num(s.KPIs["pm25_max"]) != 60 || num(s.KPIs["sensors_online"]) != 0 {
		// The reading is six minutes old: past the sensor's 5-minute timeout.
		t.Errorf("province: got pm25_max %v sensors_online %v, want 60 and 0", s.KPIs["pm25_max"], s.KPIs["sensors_online"])
	}

	// Above 55.5 for six minutes: the default rule opens an alarm.
	start := time.Now()
	publish(t, broker, "ioc/sensors/AQ-T1/readings", reading(62, now.Add(-30*time.Second)))
	m := ws.until(2*time.Second, func(m wsMessage) bool { return m.alarms(t).Change != nil })
	opened := m.alarms(t)
	if opened.Change.Action != "opened" || opened.Change.Alarm.DeviceID != "AQ-T1" || opened.Change.Alarm.RuleID != "pm25-unhealthy" ||
		opened.Change.Alarm.AreaCode != commune || len(opened.Open) != 1 {
		t.Fatalf("got %s, want pm25-unhealthy opened for AQ-T1 in %s with one open alarm", m.Data, commune)
	}
	t.Logf("alarm seen %s after the reading was published", time.Since(start).Round(time.Millisecond))
	if s := n.kpis("79", "today"); num(s.KPIs["alarms_open"]) != 1 && num(s.KPIs["alarms_open"]) != 0 {
		t.Errorf("alarms_open %v", s.KPIs["alarms_open"])
	}

	// A normal reading closes it.
	publish(t, broker, "ioc/sensors/AQ-T1/readings", reading(20, now))
	m = ws.until(5*time.Second, func(m wsMessage) bool { return m.alarms(t).Change != nil })
	closed := m.alarms(t)
	if closed.Change.Action != "resolved" || closed.Change.Alarm.ID != opened.Change.Alarm.ID ||
		closed.Change.Alarm.Resolution != "cleared" || len(closed.Open) != 0 {
		t.Fatalf("got %s, want alarm %s resolved as cleared and none open", m.Data, opened.Change.Alarm.ID)
	}
	var list struct {
		Alarms []alarmJSON `json:"alarms"`
	}
	n.get("/api/v1/alarms?area=79", adminToken, &list)
	if len(list.Alarms) != 1 || list.Alarms[0].State != "resolved" {
		t.Errorf("history: got %+v, want the one alarm, resolved", list.Alarms)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		s := n.kpis(commune, "today")
		return num(s.KPIs["alarms_open"]) == 0 && num(s.KPIs["sensors_online"]) == 1,
			fmt.Sprintf("alarms_open %v sensors_online %v, want 0 and 1", s.KPIs["alarms_open"], s.KPIs["sensors_online"])
	})
}

func TestSamplesOfNGSILDAndCameraXMLAreAcceptedAndCounted(t *testing.T) {
	n := startNode(t, testConfig(t))
	ngsi, err := os.ReadFile("../../ingest/ngsild/testdata/ngsi-ld-notification.json")
	if err != nil {
		t.Fatal(err)
	}
	xml, err := os.ReadFile("../../ingest/cameraxml/testdata/camera-event-notification.xml")
	if err != nil {
		t.Fatal(err)
	}
	var r ingestReply
	if code := n.post("/api/v1/ingest/ngsi-ld", adminToken, "application/json", ngsi, &r); code != 202 || r.Accepted != 4 || r.Rejected != 0 {
		t.Fatalf("ngsi-ld: got %d %+v, want 202 with 4 readings (pm25, pm10, temperature, water_level)", code, r)
	}

	// The XML names its camera by channel; until it is registered it is refused.
	if code := n.post("/api/v1/ingest/camera-xml", adminToken, "application/xml", xml, &r); code != 422 || !strings.Contains(r.Error, "PUT /api/v1/devices/") {
		t.Fatalf("unregistered camera: got %d %q, want 422 saying how to register it", code, r.Error)
	}
	cam := map[string]any{"kind": "camera", "name": "Nguyễn Huệ / Lê Lợi", "lat": nhLat, "lon": nhLon,
		"channel_name": "HCM-Q1-017 Nguyen Hue / Le Loi", "address": "10.20.30.41/1"}
	if code, body := n.put("/api/v1/devices/HCM-Q1-017", adminToken, cam); code != 201 {
		t.Fatalf("register camera: got %d %s, want 201", code, body)
	}
	if code := n.post("/api/v1/ingest/camera-xml", adminToken, "application/xml", xml, &r); code != 202 || r.Accepted != 1 || r.Duplicates != 0 {
		t.Fatalf("camera-xml: got %d %+v, want 202 with one event", code, r)
	}
	if code := n.post("/api/v1/ingest/camera-xml", adminToken, "application/xml", xml, &r); code != 202 || r.Duplicates != 1 {
		t.Fatalf("camera-xml again: got %d %+v, want the event counted once", code, r)
	}

	// Counted: in the ingest metrics, and as devices with their latest readings.
	metrics := n.metrics()
	for _, want := range []string{
		`ioc_ingest_records_total{kind="sensor_reading",outcome="accepted"} 4`,
		`ioc_ingest_records_total{kind="camera_event",outcome="accepted"} 1`,
		`ioc_ingest_records_total{kind="camera_event",outcome="duplicate"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	var aq struct {
		Kind     string `json:"kind"`
		AreaCode string `json:"area_code"`
		Source   string `json:"source"`
		Latest   map[string]struct {
			Value float64 `json:"value"`
		} `json:"latest"`
	}
	if code := n.get("/api/v1/devices/HCM-AQ-012", adminToken, &aq); code != 200 || aq.Kind != "sensor" || aq.Source != "first_report" ||
		aq.Latest["pm25"].Value != 57.2 || aq.Latest["pm10"].Value != 81 || aq.Latest["temperature"].Value != 31.4 {
		t.Errorf("HCM-AQ-012: got %d %+v, want a sensor registered by its first report with pm25 57.2, pm10 81, temperature 31.4", code, aq)
	}
	if code := n.get("/api/v1/devices/HCM-WL-003", adminToken, &aq); code != 200 || aq.Latest["water_level"].Value != 1.62 {
		t.Errorf("HCM-WL-003: got %d %+v, want water_level 1.62", code, aq)
	}

	// The same notification and alert, happening now, show in the figures.
	shift := func(b []byte, from, to string) []byte { return bytes.ReplaceAll(b, []byte(from), []byte(to)) }
	now := time.Now().UTC().Truncate(time.Second)
	ngsiNow := shift(shift(shift(ngsi, "2026-11-22T02:15:00Z", now.Format(time.RFC3339)), "2026-11-22T02:14:30Z", now.Format(time.RFC3339)),
		"2026-11-22T02:15:05.120Z", now.Format(time.RFC3339))
	if code := n.post("/api/v1/ingest/ngsi-ld", adminToken, "application/json", ngsiNow, &r); code != 202 || r.Accepted != 4 {
		t.Fatalf("ngsi-ld now: got %d %+v", code, r)
	}
	xmlNow := shift(xml, "2026-11-22T09:15:03+07:00", stamp(now))
	if code := n.post("/api/v1/ingest/camera-xml", adminToken, "application/xml", xmlNow, &r); code != 202 || r.Accepted != 1 {
		t.Fatalf("camera-xml now: got %d %+v", code, r)
	}
	// The sample's own alert counts too while it is less than a day old.
	want := 1.0
	if time.Since(time.Date(2026, 11, 22, 2, 15, 3, 0, time.UTC)) < 24*time.Hour {
		want = 2
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		s := n.kpis("79", "24h")
		byType, _ := s.KPIs["camera_events_by_type"].(map[string]any)
		return num(s.KPIs["pm25_max"]) == 57.2 && num(s.KPIs["water_level_max"]) == 1.62 && num(byType["traffic_violation"]) == want &&
				num(s.KPIs["camera_events"]) == want && num(s.KPIs["cameras_online"]) == 1 && num(s.KPIs["sensors_online"]) == 2,
			fmt.Sprintf("got %v, want %v traffic violations", s.KPIs, want)
	})
	// 1.62 m is above the gauge's own alert level of 1.5 m.
	eventually(t, 10*time.Second, func() (bool, string) {
		var list struct {
			Alarms []alarmJSON `json:"alarms"`
		}
		n.get("/api/v1/alarms?state=open", adminToken, &list)
		return len(list.Alarms) == 1 && list.Alarms[0].RuleID == "water-alert-level" && list.Alarms[0].DeviceID == "HCM-WL-003",
			fmt.Sprintf("open alarms %+v, want water-alert-level of HCM-WL-003", list.Alarms)
	})
}

func (n *node) metrics() string {
	n.t.Helper()
	resp := n.do("GET", "/metrics", adminToken, "", nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metric returns the value of one series of /metrics, 0 when absent.
func (n *node) metric(series string) float64 {
	n.t.Helper()
	sc := bufio.NewScanner(strings.NewReader(n.metrics()))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			var v float64
			fmt.Sscanf(rest, "%g", &v)
			return v
		}
	}
	return 0
}

func issueTokenAs(t testing.TB, subject string, role auth.Role, areas ...string) string {
	t.Helper()
	tok, err := auth.Issue([]byte(jwtSecret), auth.Principal{Subject: subject, Role: role, Areas: areas}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (n *node) readings(token string, recs ...map[string]any) (int, ingestReply) {
	n.t.Helper()
	b, _ := json.Marshal(recs)
	var r ingestReply
	code := n.post("/api/v1/ingest/sensor-readings", token, "application/json", b, &r)
	return code, r
}

func TestAcknowledgedAlarmShowsWhoAndWhen(t *testing.T) {
	n := startNode(t, testConfig(t))
	now := time.Now().Truncate(time.Second)
	if code, r := n.readings(adminToken, map[string]any{"sensor_id": "WL-T1", "kind": "water_level", "value": 1.7, "unit": "m",
		"alert_level": 1.5, "danger_level": 1.8, "lat": nhLat, "lon": nhLon, "observed_at": stamp(now)}); code != 202 || r.Accepted != 1 {
		t.Fatalf("reading: got %d %+v", code, r)
	}
	var a alarmJSON
	eventually(t, 10*time.Second, func() (bool, string) {
		var list struct {
			Alarms []alarmJSON `json:"alarms"`
		}
		n.get("/api/v1/alarms?state=open&area=79", adminToken, &list)
		if len(list.Alarms) == 1 {
			a = list.Alarms[0]
		}
		return len(list.Alarms) == 1, fmt.Sprintf("open alarms %+v", list.Alarms)
	})
	if a.RuleID != "water-alert-level" || a.Value != 1.7 {
		t.Fatalf("got %+v, want the water alert at 1.7", a)
	}
	note := []byte(`{"note":"team dispatched to the pumping station"}`)
	path := "/api/v1/alarms/" + a.ID + "/ack"
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"a viewer may not act", issueToken(t, auth.Viewer, "79"), 403},
		{"an ingest token may not act", issueToken(t, auth.Ingest), 403},
		{"an operator of another province does not see it", issueTokenAs(t, "op-hanoi", auth.Operator, "01"), 404},
		{"the province's operator acknowledges it", issueTokenAs(t, "op-anna", auth.Operator, "79"), 200},
		{"twice is a conflict", issueTokenAs(t, "op-binh", auth.Operator, "79"), 409},
	} {
		var body map[string]any
		if got := n.post(path, c.token, "application/json", note, &body); got != c.want {
			t.Errorf("%s: got %d %v, want %d", c.name, got, body, c.want)
		}
	}
	var got alarmJSON
	n.get("/api/v1/alarms/"+a.ID, issueToken(t, auth.Viewer, "79"), &got)
	if got.State != "acknowledged" || got.AcknowledgedBy != "op-anna" || got.AckNote != "team dispatched to the pumping station" {
		t.Errorf("after ack: got %+v, want acknowledged by op-anna with the note", got)
	}
	var full map[string]any
	n.get("/api/v1/alarms/"+a.ID, adminToken, &full)
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(full["acknowledged_at"])); err != nil {
		t.Errorf("acknowledged_at %v is not a time", full["acknowledged_at"])
	}
	if code := n.post("/api/v1/alarms/"+a.ID+"/resolve", issueTokenAs(t, "op-anna", auth.Operator, "79"), "", nil, &got); code != 200 ||
		got.State != "resolved" || got.ResolvedBy != "op-anna" || got.Resolution != "manual" || got.AcknowledgedBy != "op-anna" {
		t.Errorf("resolve: got %d %+v, want resolved by hand by op-anna, still showing who acknowledged", code, got)
	}
	// The level is still high, but an operator closed it: it does not reopen
	// until the water drops and rises again. The readings come after the
	// resolve, however long the steps above took.
	now = time.Now().Truncate(time.Second)
	if code, r := n.readings(adminToken, map[string]any{"sensor_id": "WL-T1", "kind": "water_level", "value": 1.75, "alert_level": 1.5,
		"observed_at": stamp(now.Add(time.Second))}); code != 202 || r.Accepted != 1 {
		t.Fatalf("reading after the resolve: got %d %+v", code, r)
	}
	// The reading is stored: once an evaluation that began after this point
	// has finished (the one under way may have begun before), it has been
	// judged.
	evaluations := func() float64 { return n.metric("ioc_alarm_evaluation_duration_seconds_count") }
	before := evaluations()
	eventually(t, 20*time.Second, func() (bool, string) {
		got := evaluations()
		return got >= before+2, fmt.Sprintf("%v evaluations since the reading, want 2", got-before)
	})
	var list struct {
		Alarms []alarmJSON `json:"alarms"`
	}
	if n.get("/api/v1/alarms?state=active", adminToken, &list); len(list.Alarms) != 0 {
		t.Errorf("after a manual resolve: got %+v open, want none", list.Alarms)
	}
	n.readings(adminToken,
		map[string]any{"sensor_id": "WL-T1", "kind": "water_level", "value": 1.2, "alert_level": 1.5, "observed_at": stamp(now.Add(2 * time.Second))},
		map[string]any{"sensor_id": "WL-T1", "kind": "water_level", "value": 1.6, "alert_level": 1.5, "observed_at": stamp(now.Add(3 * time.Second))})
	eventually(t, 10*time.Second, func() (bool, string) {
		n.get("/api/v1/alarms?state=open", adminToken, &list)
		return len(list.Alarms) == 1 && list.Alarms[0].ID != a.ID, fmt.Sprintf("open %+v, want a new alarm", list.Alarms)
	})
}

func TestBrokerMessageIsNotAcknowledgedWhileClickHouseIsDown(t *testing.T) {
	runsBesideOthers(t)
	ch := testenv.StartClickHouse(t)
	cfg := testConfig(t)
	cfg.ClickHouse.Addr, cfg.ClickHouse.Database = ch.Addr, testenv.DatabaseOn(t, ch.Addr)
	broker := withMQTT(t, &cfg)
	n := startNode(t, cfg)
	n.waitReady()

	if err := ch.Stop(); err != nil {
		t.Fatal(err)
	}
	publish(t, broker, "ioc/sensors/AQ-DOWN/readings", map[string]any{"kind": "pm25", "value": 33.0, "lat": nhLat, "lon": nhLon,
		"observed_at": stamp(time.Now())})
	eventually(t, 20*time.Second, func() (bool, string) {
		v := n.metric(`ioc_mqtt_messages_total{outcome="store_failed",stream="sensors"}`)
		return v >= 1, fmt.Sprintf("store_failed %v", v)
	})
	if v := n.metric(`ioc_mqtt_messages_total{outcome="stored",stream="sensors"}`); v != 0 {
		t.Fatalf("stored %v while ClickHouse is down", v)
	}

	testenv.RestartClickHouse(t, ch)
	eventually(t, 60*time.Second, func() (bool, string) {
		var d struct {
			Latest map[string]struct {
				Value float64 `json:"value"`
			} `json:"latest"`
		}
		code := n.get("/api/v1/devices/AQ-DOWN", adminToken, &d)
		return code == 200 && d.Latest["pm25"].Value == 33, fmt.Sprintf("device answered %d %+v", code, d)
	})
	if v := n.metric(`ioc_mqtt_redelivered_total{stream="sensors"}`); v < 1 {
		t.Errorf("redelivered %v, want the broker to have delivered the message again", v)
	}
	// The registry learns of a stored reading before the subscriber counts
	// its message: wait for the count.
	eventually(t, 10*time.Second, func() (bool, string) {
		v := n.metric(`ioc_mqtt_messages_total{outcome="stored",stream="sensors"}`)
		return v == 1, fmt.Sprintf("stored %v, want 1", v)
	})
}

func TestScopeHoldsOnDevicesAlarmsAndTheirTopics(t *testing.T) {
	n := startNode(t, testConfig(t))
	here := n.communeAt(nhLat, nhLon)
	// Thủ Đức, in another commune of the same province.
	const tdLat, tdLon = 10.8494, 106.7537
	there := n.communeAt(tdLat, tdLon)
	if here == there {
		t.Fatalf("both points in %s", here)
	}
	viewer := issueToken(t, auth.Viewer, here)
	ws := n.live(viewer)
	ws.send("subscribe", "devices/"+here)
	if m := ws.next(5 * time.Second); m.Type != "snapshot" {
		t.Fatalf("devices/%s: got %s %s", here, m.Type, m.Error)
	}
	ws.send("subscribe", "events/"+here)
	if m := ws.next(5 * time.Second); m.Type != "snapshot" {
		t.Fatalf("events/%s: got %s %s", here, m.Type, m.Error)
	}

	now := time.Now().Truncate(time.Second)
	n.readings(adminToken,
		map[string]any{"sensor_id": "AQ-HERE", "kind": "pm25", "value": 200, "lat": nhLat, "lon": nhLon, "observed_at": stamp(now.Add(-10 * time.Minute))},
		map[string]any{"sensor_id": "AQ-HERE", "kind": "pm25", "value": 210, "observed_at": stamp(now)}, // placed as registered just before
		map[string]any{"sensor_id": "AQ-THERE", "kind": "pm25", "value": 200, "lat": tdLat, "lon": tdLon, "observed_at": stamp(now.Add(-10 * time.Minute))},
		map[string]any{"sensor_id": "AQ-THERE", "kind": "pm25", "value": 210, "observed_at": stamp(now)})
	var events []map[string]any
	for i := range 30 {
		events = append(events, map[string]any{"event_id": fmt.Sprintf("ev-%d", i), "camera_id": "CAM-HERE", "type": "traffic_violation",
			"severity": "warning", "lat": nhLat, "lon": nhLon, "occurred_at": stamp(now), "attrs": map[string]any{"plate": "51F-123.45"}})
	}
	b, _ := json.Marshal(events)
	var r ingestReply
	if code := n.post("/api/v1/ingest/camera-events", adminToken, "application/json", b, &r); code != 202 || r.Accepted != 30 {
		t.Fatalf("camera events: got %d %+v", code, r)
	}
	// The ticker lists the newest events and counts the rest.
	m := ws.until(5*time.Second, func(m wsMessage) bool { return m.Topic == "events/"+here })
	var tick struct {
		Events []map[string]any `json:"events"`
		Folded int              `json:"folded"`
	}
	json.Unmarshal(m.Data, &tick)
	if len(tick.Events)+tick.Folded != 30 || len(tick.Events) > 10 {
		t.Errorf("ticker: got %d events and %d folded, want at most 10 listed and 30 in all", len(tick.Events), tick.Folded)
	}
	m = ws.until(15*time.Second, func(m wsMessage) bool { return m.Topic == "devices/"+here && m.Type == "update" })
	var devs struct {
		Devices []struct {
			ID string `json:"id"`
		} `json:"devices"`
	}
	json.Unmarshal(m.Data, &devs)
	for _, d := range devs.Devices {
		if d.ID == "AQ-THERE" {
			t.Errorf("devices/%s carries AQ-THERE of %s", here, there)
		}
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		var list struct {
			Alarms []alarmJSON `json:"alarms"`
		}
		n.get("/api/v1/alarms?state=open", adminToken, &list)
		return len(list.Alarms) == 3, fmt.Sprintf("open alarms %+v, want two PM2.5 alarms and a burst of violations", list.Alarms)
	})

	// REST: the commune token sees its commune's devices and alarms only.
	var dl struct {
		Devices []struct {
			ID string `json:"id"`
		} `json:"devices"`
	}
	if code := n.get("/api/v1/devices", viewer, &dl); code != 200 || len(dl.Devices) != 2 {
		t.Errorf("devices: got %d %+v, want AQ-HERE and CAM-HERE", code, dl.Devices)
	}
	var al struct {
		Alarms []alarmJSON `json:"alarms"`
	}
	// AQ-HERE's PM2.5 and CAM-HERE's burst of violations.
	if code := n.get("/api/v1/alarms", viewer, &al); code != 200 || len(al.Alarms) != 2 || al.Alarms[0].AreaCode != here || al.Alarms[1].AreaCode != here {
		t.Errorf("alarms: got %d %+v, want the two of %s", code, al.Alarms, here)
	}
	var other alarmJSON
	n.get("/api/v1/alarms?state=open&area="+there, adminToken, &al)
	if len(al.Alarms) == 1 {
		other = al.Alarms[0]
	}
	camera := `{"kind":"camera","lat":10.8,"lon":106.7}`
	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/v1/devices/AQ-THERE", viewer, 404},
		{"GET", "/api/v1/devices/AQ-HERE", viewer, 200},
		{"GET", "/api/v1/devices?area=79", viewer, 403},
		{"GET", "/api/v1/alarms?area=" + there, viewer, 403},
		{"GET", "/api/v1/alarms/" + other.ID, viewer, 404},
		{"POST", "/api/v1/alarms/" + other.ID + "/ack", issueToken(t, auth.Operator, here), 404},
		{"GET", "/api/v1/devices", issueToken(t, auth.Ingest), 403},
		{"PUT", "/api/v1/devices/CAM-NEW", viewer, 403},
		{"PUT", "/api/v1/rules/my-rule", issueToken(t, auth.Operator, "*"), 403},
		{"GET", "/api/v1/rules", viewer, 200},
		{"GET", "/api/v1/devices", "", 401},
	} {
		var body []byte
		if c.method == "PUT" {
			body = []byte(camera)
		}
		resp := n.do(c.method, c.path, c.token, "application/json", body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: got %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}
	// Topics beyond the token's commune are refused.
	for _, topic := range []string{"alarms/79", "events/79", "devices/79", "alarms/" + there} {
		ws.send("subscribe", topic)
		if m := ws.until(5*time.Second, func(m wsMessage) bool { return m.Topic == topic }); m.Type != "error" {
			t.Errorf("%s: got %s, want an error", topic, m.Type)
		}
	}
	ws.send("subscribe", "alarms/"+here)
	m = ws.until(5*time.Second, func(m wsMessage) bool { return m.Topic == "alarms/"+here })
	if a := m.alarms(t); m.Type != "snapshot" || len(a.Open) != 2 {
		t.Errorf("alarms/%s: got %s %s, want a snapshot of the two alarms of %s", here, m.Type, m.Data, here)
	}
}
