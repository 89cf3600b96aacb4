package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openioc/ioc/internal/devservices"
	"github.com/openioc/ioc/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// fakeSink keeps what it stores. It refuses readings of kind "bogus" as
// validation would, fails while down is set, and panics while panics > 0.
type fakeSink struct {
	down   atomic.Bool
	panics atomic.Int32

	mu       sync.Mutex
	readings []SensorReadingWire
	events   []CameraEventWire
}

func (s *fakeSink) StoreReadings(ctx context.Context, recs []SensorReadingWire) ([]RecordError, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []RecordError
	for i, r := range recs {
		if r.Kind == "bogus" {
			errs = append(errs, RecordError{Index: i, Error: `kind "bogus" is not one of pm25, ...`})
			continue
		}
		s.readings = append(s.readings, r)
	}
	return errs, nil
}

func (s *fakeSink) StoreCameraEvents(ctx context.Context, recs []CameraEventWire) ([]RecordError, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, recs...)
	return nil, nil
}

func (s *fakeSink) check() error {
	if s.panics.Add(-1) >= 0 {
		panic("sink exploded")
	}
	if s.down.Load() {
		return errors.New("storage is down")
	}
	return nil
}

// readingsOf returns the stored readings with event id eventID.
func (s *fakeSink) readingsOf(eventID string) []SensorReadingWire {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SensorReadingWire
	for _, r := range s.readings {
		if r.EventID == eventID {
			out = append(out, r)
		}
	}
	return out
}

func (s *fakeSink) eventsOf(eventID string) []CameraEventWire {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CameraEventWire
	for _, e := range s.events {
		if e.EventID == eventID {
			out = append(out, e)
		}
	}
	return out
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func uniqueID(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// subscriber is a running MQTT with its metrics and logs.
type subscriber struct {
	*MQTT
	logs *syncBuffer
}

// startSubscriber runs an MQTT until the test ends and waits until it is
// subscribed. The broker session is dropped at the end, so that the shared
// broker does not queue messages for it forever.
func startSubscriber(t *testing.T, cfg MQTTConfig, sink MQTTSink) subscriber {
	t.Helper()
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("subscriber logs:\n%s", logs)
		}
	})
	m, err := NewMQTT(cfg, sink, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: got %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of its context ending")
		}
		if m.Connected() {
			t.Errorf("Connected after Run returned: got true, want false")
		}
	})
	eventually(t, "subscriber connected", m.Connected)
	return subscriber{m, logs}
}

// dropSession removes the broker's session for clientID.
func dropSession(t *testing.T, brokerURL, clientID string) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID(clientID).SetCleanSession(true))
	if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(100)
	}
}

func (s subscriber) messages(stream, outcome string) float64 {
	return testutil.ToFloat64(s.met.messages.WithLabelValues(stream, outcome))
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// publisher returns a function publishing with QoS 1 on the broker.
func publisher(t *testing.T, brokerURL string) func(topic, payload string) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID(uniqueID("test-pub")).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect publisher to %s: %v", brokerURL, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return func(topic, payload string) {
		t.Helper()
		if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish to %s: %v", topic, tok.Error())
		}
	}
}

// mosquittoPub publishes as an operator would, with mosquitto_pub -q 1.
func mosquittoPub(t *testing.T, brokerURL, topic, payload string) {
	t.Helper()
	bin, err := devservices.LookPath("mosquitto_pub")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatalf("parse %s: %v", brokerURL, err)
	}
	out, err := exec.Command(bin, "-h", u.Hostname(), "-p", u.Port(), "-q", "1", "-t", topic, "-m", payload).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
}

func readingJSON(eventID, sensorID, kind string) string {
	id := ""
	if sensorID != "" {
		id = fmt.Sprintf(`"sensor_id":%q,`, sensorID)
	}
	return fmt.Sprintf(`{"event_id":%q,%s"kind":%q,"value":35.2,"observed_at":"2026-11-22T09:15:00+07:00"}`, eventID, id, kind)
}

// On the shared broker: what operators send with mosquitto_pub reaches the
// sink under the topic's device id, and a camera event spread over lines
// is one record.
func TestMQTTDeliversToSink(t *testing.T) {
	brokerURL := testenv.MQTTURL(t)
	clientID := uniqueID("test-deliver")
	t.Cleanup(func() { dropSession(t, brokerURL, clientID) })
	sink := &fakeSink{}
	sub := startSubscriber(t, MQTTConfig{URL: brokerURL, ClientID: clientID}, sink)

	sensor, camera := uniqueID("AQ"), uniqueID("CAM")
	mosquittoPub(t, brokerURL, "ioc/sensors/"+sensor+"/readings", readingJSON("r-"+sensor, "", "pm25"))
	eventually(t, "reading stored", func() bool { return len(sink.readingsOf("r-"+sensor)) == 1 })
	if got := sink.readingsOf("r-" + sensor)[0].SensorID; got != sensor {
		t.Errorf("sensor_id: got %q, want the topic's %q", got, sensor)
	}

	publisher(t, brokerURL)("ioc/cameras/"+camera+"/events",
		"{\n  \"event_id\": \"e-"+camera+"\",\n  \"type\": \"fire\",\n  \"occurred_at\": \"2026-11-22T09:15:00+07:00\"\n}\n")
	eventually(t, "camera event stored", func() bool { return len(sink.eventsOf("e-"+camera)) == 1 })
	if got := sink.eventsOf("e-" + camera)[0].CameraID; got != camera {
		t.Errorf("camera_id: got %q, want the topic's %q", got, camera)
	}
	if got := sub.messages(streamCameras, "stored"); got < 1 {
		t.Errorf("camera messages stored: got %v, want at least 1", got)
	}
}

// A record naming another device is refused, and so is one the sink
// refuses; their siblings are stored, and the refusals are counted and
// logged by their position in the message.
func TestMQTTRefusesRecordsOneByOne(t *testing.T) {
	srv := testenv.StartMosquitto(t)
	sink := &fakeSink{}
	sub := startSubscriber(t, MQTTConfig{URL: devservices.MQTTURL(srv), ClientID: uniqueID("test-refuse")}, sink)

	payload := strings.Join([]string{
		readingJSON("a", "", "pm25"),
		readingJSON("b", "AQ-OTHER", "pm25"),
		readingJSON("c", "AQ-1", "bogus"),
		readingJSON("d", "AQ-1", "pm10"),
	}, "\n")
	publisher(t, devservices.MQTTURL(srv))("ioc/sensors/AQ-1/readings", payload)
	eventually(t, "message handled", func() bool { return sub.messages(streamSensors, "partly_rejected") == 1 })

	for _, c := range []struct {
		id   string
		want int
	}{{"a", 1}, {"b", 0}, {"c", 0}, {"d", 1}} {
		if got := len(sink.readingsOf(c.id)); got != c.want {
			t.Errorf("record %s stored %d times, want %d", c.id, got, c.want)
		}
	}
	if got := testutil.ToFloat64(sub.met.rejected.WithLabelValues(streamSensors)); got != 2 {
		t.Errorf("records rejected: got %v, want 2", got)
	}
	logs := sub.logs.String()
	for _, want := range []string{"refused=2", "records=4", "first_index=1", `differs from the topic's device \"AQ-1\"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

// An invalid message is counted, logged and acknowledged: the subscriber
// carries on, and neither it nor a stored message comes back after a
// reconnect with the same session.
func TestMQTTInvalidMessageCarriesOn(t *testing.T) {
	srv := testenv.StartMosquitto(t)
	brokerURL, clientID := devservices.MQTTURL(srv), uniqueID("test-invalid")
	publish := publisher(t, brokerURL)
	sink := &fakeSink{}
	cfg := MQTTConfig{URL: brokerURL, ClientID: clientID, MaxPayload: 1024}

	// The first subscriber stops when its subtest ends.
	t.Run("first", func(t *testing.T) {
		sub := startSubscriber(t, cfg, sink)
		publish("ioc/sensors/AQ-1/readings", "this is not JSON")
		publish("ioc/sensors/AQ-1/readings", `[]`)
		publish("ioc/sensors/AQ-1/readings", readingJSON("big", "", "pm25")+strings.Repeat(" ", 2000))
		publish("ioc/cameras//events", `{"event_id":"x"}`)
		publish("ioc/sensors/AQ-1/readings", readingJSON("after", "", "pm25"))
		// Messages are handled concurrently, so in any order.
		eventually(t, "valid message after the invalid ones stored", func() bool { return len(sink.readingsOf("after")) == 1 })
		eventually(t, "3 invalid sensor messages counted", func() bool { return sub.messages(streamSensors, "invalid") == 3 })
		eventually(t, "1 invalid camera message counted", func() bool { return sub.messages(streamCameras, "invalid") == 1 })
		if got := len(sink.readingsOf("big")); got != 0 {
			t.Errorf("oversize message stored %d records, want none", got)
		}
		// A refusal is counted before its line is logged: wait for the
		// lines too.
		for _, want := range []string{"payload is 2", "the limit is 1024", "device id is empty", "holds no records", "not JSON"} {
			eventually(t, "the log line with "+want, func() bool { return strings.Contains(sub.logs.String(), want) })
		}
	})

	sub := startSubscriber(t, cfg, sink)
	publish("ioc/sensors/AQ-1/readings", readingJSON("marker", "", "pm25"))
	eventually(t, "marker stored", func() bool { return len(sink.readingsOf("marker")) == 1 })
	if got := sub.messages(streamSensors, "invalid") + sub.messages(streamCameras, "invalid"); got != 0 {
		t.Errorf("invalid messages after the reconnect: got %v, want 0 (they were acknowledged)", got)
	}
	if got := len(sink.readingsOf("after")); got != 1 {
		t.Errorf("stored message delivered %d times in all, want 1", got)
	}
}

// While the sink fails nothing is acknowledged: the broker delivers the
// message again (DUP) until it is stored; once stored it does not come back,
// not even after the broker restarts.
func TestMQTTRedeliversUntilStored(t *testing.T) {
	srv := testenv.StartMosquitto(t)
	brokerURL := devservices.MQTTURL(srv)
	publish := publisher(t, brokerURL)
	sink := &fakeSink{}
	sink.down.Store(true)
	sub := startSubscriber(t, MQTTConfig{URL: brokerURL, ClientID: uniqueID("test-redeliver"),
		RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond}, sink)

	publish("ioc/sensors/AQ-1/readings", readingJSON("r1", "", "pm25"))
	eventually(t, "several failed attempts", func() bool { return sub.messages(streamSensors, "store_failed") >= 3 })
	if got := len(sink.readingsOf("r1")); got != 0 {
		t.Fatalf("stored %d records while the sink was down", got)
	}
	sink.down.Store(false)
	eventually(t, "stored once the sink works", func() bool { return len(sink.readingsOf("r1")) == 1 })
	redelivered := testutil.ToFloat64(sub.met.redelivered.WithLabelValues(streamSensors))
	if redelivered < 1 {
		t.Errorf("redelivered: got %v, want at least 1", redelivered)
	}
	eventually(t, "connected again", sub.Connected)

	srv.Stop()
	eventually(t, "disconnected by the broker's stop", func() bool { return !sub.Connected() })
	testenv.RestartMosquitto(t, srv)
	eventually(t, "reconnected after the broker's restart", sub.Connected)
	publish("ioc/sensors/AQ-1/readings", readingJSON("r2", "", "pm25"))
	eventually(t, "message after the restart stored", func() bool { return len(sink.readingsOf("r2")) == 1 })
	if got := len(sink.readingsOf("r1")); got != 1 {
		t.Errorf("acknowledged message stored %d times, want 1", got)
	}
	if got := testutil.ToFloat64(sub.met.redelivered.WithLabelValues(streamSensors)); got != redelivered {
		t.Errorf("redelivered after the restart: got %v, want still %v", got, redelivered)
	}
}

// A panicking sink counts as a storage failure: the message comes again.
func TestMQTTSinkPanicIsAStorageFailure(t *testing.T) {
	srv := testenv.StartMosquitto(t)
	sink := &fakeSink{}
	sink.panics.Store(1)
	sub := startSubscriber(t, MQTTConfig{URL: devservices.MQTTURL(srv), ClientID: uniqueID("test-panic"),
		RetryMin: 20 * time.Millisecond}, sink)
	publisher(t, devservices.MQTTURL(srv))("ioc/sensors/AQ-1/readings", readingJSON("p1", "", "pm25"))
	eventually(t, "stored after the panic", func() bool { return len(sink.readingsOf("p1")) == 1 })
	if got := sub.messages(streamSensors, "store_failed"); got != 1 {
		t.Errorf("store_failed: got %v, want 1", got)
	}
	if !strings.Contains(sub.logs.String(), "sink exploded") {
		t.Errorf("logs lack the panic")
	}
}

// Subscribers of one shared group split the stream: each message is stored
// once in all.
func TestMQTTSharedGroupSplitsStream(t *testing.T) {
	srv := testenv.StartMosquitto(t)
	brokerURL := devservices.MQTTURL(srv)
	sink := &fakeSink{}
	var subs []subscriber
	for i := range 2 {
		subs = append(subs, startSubscriber(t, MQTTConfig{URL: brokerURL, ClientID: uniqueID(fmt.Sprintf("test-shared-%d", i)), SharedGroup: "iocd"}, sink))
	}
	publish := publisher(t, brokerURL)
	const n = 40
	for i := range n {
		publish("ioc/sensors/AQ-1/readings", readingJSON(fmt.Sprint("s", i), "", "pm25"))
	}
	stored := func() float64 {
		return subs[0].messages(streamSensors, "stored") + subs[1].messages(streamSensors, "stored")
	}
	eventually(t, "every message stored", func() bool { return stored() >= n })
	time.Sleep(100 * time.Millisecond) // room for a copy that should not come
	if got := stored(); got != n {
		t.Errorf("messages stored by the group: got %v, want %d", got, n)
	}
	for i, s := range subs {
		if got := s.messages(streamSensors, "stored"); got == 0 {
			t.Errorf("subscriber %d stored nothing; want a share of the stream", i)
		}
	}
}

func TestDecodeMQTT(t *testing.T) {
	const topic = "ioc/sensors/AQ-1/readings"
	type want struct {
		readings, events int
		errs             []int  // indices refused
		failed           string // part of err, or "" for none
	}
	f := func(topic, payload string, max int, w want) {
		t.Helper()
		readings, events, errs, err := decodeMQTT(topic, []byte(payload), max)
		if w.failed != "" {
			if err == nil || !strings.Contains(err.Error(), w.failed) {
				t.Errorf("%s %q: got error %v, want one with %q", topic, payload, err, w.failed)
			}
			return
		}
		if err != nil {
			t.Errorf("%s %q: got error %v, want none", topic, payload, err)
			return
		}
		if len(readings) != w.readings || len(events) != w.events {
			t.Errorf("%s %q: got %d readings and %d events, want %d and %d", topic, payload, len(readings), len(events), w.readings, w.events)
		}
		var got []int
		for _, e := range errs {
			got = append(got, e.Index)
		}
		if fmt.Sprint(got) != fmt.Sprint(w.errs) {
			t.Errorf("%s %q: got refused %v, want %v (%v)", topic, payload, got, w.errs, errs)
		}
	}
	f(topic, `{"kind":"pm25"}`, 1024, want{readings: 1})
	f(topic, "{\n \"kind\": \"pm25\"\n}", 1024, want{readings: 1})
	f(topic, `[{"kind":"pm25"},{"sensor_id":"AQ-1"},{"sensor_id":"AQ-2"}]`, 1024, want{readings: 2, errs: []int{2}})
	f(topic, "{\"kind\":1}\n{\"sensor_id\":\"AQ-9\"}\n{}\n", 1024, want{readings: 1, errs: []int{0, 1}})
	f("ioc/cameras/CAM-1/events", `{"type":"fire","camera_id":"CAM-1"}`, 1024, want{events: 1})
	f(topic, `{"kind":"pm25"}`, 10, want{failed: "the limit is 10"})
	f(topic, `nope`, 1024, want{failed: "cannot be parsed"})
	f(topic, `[]`, 1024, want{failed: "no records"})
	f("ioc/sensors/AQ-1", `{}`, 1024, want{failed: "is neither"})
	f("ioc/sensors//readings", `{}`, 1024, want{failed: "device id is empty"})
	f("ioc/cameras/CAM-1/readings", `{}`, 1024, want{failed: "is neither"})
	f("other/sensors/AQ-1/readings", `{}`, 1024, want{failed: "is neither"})
}

// FuzzDecodeMQTT checks that no message makes the decoder panic, and that
// every record it returns belongs to the topic's device.
func FuzzDecodeMQTT(f *testing.F) {
	f.Add("ioc/sensors/AQ-1/readings", []byte(`{"kind":"pm25","value":1}`))
	f.Add("ioc/cameras/CAM-1/events", []byte(`[{"camera_id":"CAM-2"},{"type":"fire"}]`))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		readings, events, errs, err := decodeMQTT(topic, payload, 4096)
		if err != nil {
			if readings != nil || events != nil || errs != nil {
				t.Fatalf("failed decode returned %d readings, %d events, %d errors", len(readings), len(events), len(errs))
			}
			return
		}
		stream, id, terr := parseTopic(topic)
		if terr != nil {
			t.Fatalf("decoded a message of topic %q, which parseTopic refuses: %v", topic, terr)
		}
		if (stream == streamSensors && len(events) > 0) || (stream == streamCameras && len(readings) > 0) {
			t.Fatalf("topic %q gave %d readings and %d events", topic, len(readings), len(events))
		}
		for _, r := range readings {
			if r.SensorID != id {
				t.Fatalf("reading of sensor %q from topic %q", r.SensorID, topic)
			}
		}
		for _, e := range events {
			if e.CameraID != id {
				t.Fatalf("event of camera %q from topic %q", e.CameraID, topic)
			}
		}
		for _, e := range errs {
			if e.Error == "" {
				t.Fatalf("record %d refused without a reason", e.Index)
			}
		}
	})
}
