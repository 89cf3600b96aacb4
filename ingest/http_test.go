package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

// registrar stands in for the device registry: it registers what it is
// told and matches every camera-platform alert to camera CAM-1.
type registrar struct {
	mu   sync.Mutex
	seen []device.Device
}

func (r *registrar) Ensure(_ context.Context, ds []device.Device) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, ds...)
	return nil
}

func (r *registrar) MatchCamera(string, string, string) (device.Device, bool) {
	return device.Device{ID: "CAM-1", Kind: device.Camera}, true
}

// ingestApp serves every ingest endpoint of a Service over real writers on
// a database of the test's own.
func ingestApp(t *testing.T, cfg ServiceConfig) *fiber.App {
	t.Helper()
	store := testenv.Store(t)
	d := WriterDeps{Store: store, Leases: lease.NewLocal(), Logger: slog.New(slog.DiscardHandler)}
	batch := BatchConfig{MaxAge: 10 * time.Millisecond}
	dossiers, err := NewWriter(batch, d)
	if err != nil {
		t.Fatal(err)
	}
	cameras, err := NewCameraWriter(batch, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	readings, err := NewReadingWriter(batch, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	feedback, err := NewFeedbackWriter(batch, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{dossiers.Run, cameras.Run, readings.Run, feedback.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	rules := testRules
	rules.Places = h
	svc := NewService(cfg, rules, Writers{Dossiers: dossiers, Cameras: cameras, Readings: readings, Feedback: feedback},
		&registrar{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	app := fiber.New(fiber.Config{BodyLimit: 64 << 20})
	app.Post("/dossiers", svc.Dossiers)
	app.Post("/camera-events", svc.CameraEvents)
	app.Post("/sensor-readings", svc.SensorReadings)
	app.Post("/feedback", svc.Feedback)
	app.Post("/ngsi-ld", svc.NGSILD)
	app.Post("/camera-xml", svc.CameraXML)
	return app
}

// reply is an ingest answer: a Response, or a refusal with its reason.
type reply struct {
	Response
	Status int    `json:"-"`
	Msg    string `json:"error"`
}

func post(t *testing.T, app *fiber.App, path, contentType, encoding string, body []byte) reply {
	t.Helper()
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("%s answered %d with %q: %v", path, resp.StatusCode, raw, err)
		}
	} else {
		r.Msg = string(raw) // Fiber's own refusals are text
	}
	return r
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// now is the wall clock the handlers validate against, in Ho Chi Minh City.
func nowAt(ago time.Duration) string {
	return time.Now().Add(-ago).In(time.FixedZone("ICT", 7*3600)).Format(time.RFC3339)
}

func dossierLine(id string) string {
	return fmt.Sprintf(`{"event_id":%q,"dossier_id":"d-%s","area_code":"26740","channel":"online","status":"received","occurred_at":%q,"due_at":%q}`,
		id, id, nowAt(time.Hour), nowAt(-72*time.Hour))
}

// Item 18: a record with several problems gets them all in one answer, in
// one error entry: its error joins them and problems lists them.
func TestEveryProblemOfARecordIsReported(t *testing.T) {
	app := ingestApp(t, ServiceConfig{})
	body := strings.Join([]string{
		dossierLine("ok-1"),
		// A misspelt status, no dossier_id and a time without offset.
		fmt.Sprintf(`{"event_id":"bad-1","area_code":"26740","channel":"online","status":"recieved","occurred_at":"2026-11-22T09:15:00","due_at":%q}`, nowAt(-time.Hour)),
		// A field of the wrong JSON type, and an unknown channel.
		fmt.Sprintf(`{"event_id":"bad-2","dossier_id":"d","area_code":"26740","channel":"fax","status":"received","occurred_at":%q,"due_at":%q,"digitized":"yes"}`, nowAt(time.Hour), nowAt(-time.Hour)),
	}, "\n")
	r := post(t, app, "/dossiers", "application/x-ndjson", "", []byte(body))
	if r.Status != 202 || r.Accepted != 1 || r.Rejected != 2 || len(r.Errors) != 2 {
		t.Fatalf("got %d %+v, want 202 with 1 accepted and 2 errors", r.Status, r.Response)
	}
	want := map[int][]string{
		1: {"dossier_id is required", `status "recieved" is not one of`, `occurred_at "2026-11-22T09:15:00" is not an RFC 3339 time with offset`},
		2: {"digitized must be a boolean (true or false), got a JSON string", `channel "fax" is not one of online, in_person, postal`},
	}
	for _, e := range r.Errors {
		w := want[e.Index]
		if len(e.Problems) != len(w) || e.Error != strings.Join(e.Problems, "; ") {
			t.Errorf("record %d: got problems %q (error %q), want %d problems joined with \"; \"", e.Index, e.Problems, e.Error, len(w))
			continue
		}
		for i := range w {
			if !strings.Contains(e.Problems[i], w[i]) {
				t.Errorf("record %d problem %d: got %q, want it to say %q", e.Index, i, e.Problems[i], w[i])
			}
		}
	}

	// Camera events, readings and feedback list every problem too.
	for _, c := range []struct {
		path, body string
		want       []string
	}{
		{"/camera-events", `[{"camera_id":"CAM-9","type":"explosion","severity":"dire","occurred_at":"yesterday"}]`,
			[]string{"event_id is required", `type "explosion" is not one of`, `severity "dire" is not one of`, `occurred_at "yesterday" is not an RFC 3339 time`, "lat and lon are required"}},
		{"/sensor-readings", `[{"sensor_id":"AQ-9","kind":"pm25","value":5,"unit":"ppm","observed_at":"2026-11-22 09:00","lat":10.8}]`,
			[]string{`unit "ppm" is not one for pm25`, `observed_at "2026-11-22 09:00" is not an RFC 3339 time`, "lat and lon go together"}},
		{"/feedback", `[{"feedback_id":"f-1","area_code":"99999","category":"noise","rating":"meh","received_at":"` + nowAt(time.Hour) + `","status_changes":[{"status":"done","at":"` + nowAt(time.Hour) + `"},{"status":"closed"}]}]`,
			[]string{`category "noise" is not one of`, `rating "meh" is not one of`, `area_code "99999" is not a unit of vn-2025`, `status_changes[0].status "done" is not one of`, "status_changes[1].at is required"}},
	} {
		r := post(t, app, c.path, "application/json", "", []byte(c.body))
		if r.Status != 202 || len(r.Errors) != 1 {
			t.Errorf("%s: got %d %+v, want 202 with one error", c.path, r.Status, r.Response)
			continue
		}
		got := r.Errors[0].Problems
		if len(got) != len(c.want) {
			t.Errorf("%s: got problems %q, want %d: %q", c.path, got, len(c.want), c.want)
			continue
		}
		for i := range c.want {
			if !strings.Contains(got[i], c.want[i]) {
				t.Errorf("%s problem %d: got %q, want it to say %q", c.path, i, got[i], c.want[i])
			}
		}
	}
}

// Item 3 and 4 at the handlers: the body limit applies once decoded, the
// records of one request are bounded, and refusals past those listed are
// only counted, the lowest indexes listed.
func TestIngestBodiesAreBounded(t *testing.T) {
	app := ingestApp(t, ServiceConfig{BodyLimit: 64 << 10, MaxRecords: 5, MaxErrors: 2})
	lines := func(ids ...string) []byte {
		var b bytes.Buffer
		for _, id := range ids {
			b.WriteString(dossierLine(id) + "\n")
		}
		return b.Bytes()
	}
	if r := post(t, app, "/dossiers", "application/x-ndjson", "gzip", gzipped(t, lines("gz-1", "gz-2"))); r.Status != 202 || r.Accepted != 2 {
		t.Errorf("gzip NDJSON: got %d %+v %s, want 202 with 2 accepted", r.Status, r.Response, r.Msg)
	}
	bomb := gzipped(t, gzipped(t, make([]byte, 8<<20)))
	for _, path := range []string{"/dossiers", "/camera-events", "/sensor-readings", "/feedback", "/ngsi-ld", "/camera-xml"} {
		r := post(t, app, path, "application/json", "gzip, gzip", bomb)
		if r.Status != 413 || !strings.Contains(r.Msg, "larger than 65536 bytes once decoded (Content-Encoding: gzip, gzip) (IOC_HTTP_BODY_LIMIT)") {
			t.Errorf("%s, gzip of gzip of 8 MiB: got %d %q, want 413 naming IOC_HTTP_BODY_LIMIT", path, r.Status, r.Msg)
		}
		if r := post(t, app, path, "application/json", "compress", []byte("x")); r.Status != 415 || !strings.Contains(r.Msg, "gzip, deflate or br") {
			t.Errorf("%s, Content-Encoding compress: got %d %q, want 415 naming the codings undone", path, r.Status, r.Msg)
		}
	}
	// Too large whatever it starts with: a bomb of valid records too.
	many := bytes.Repeat([]byte(dossierLine("same")+"\n"), 2000)
	if r := post(t, app, "/dossiers", "application/x-ndjson", "gzip", gzipped(t, many)); r.Status != 413 || !strings.Contains(r.Msg, "IOC_HTTP_BODY_LIMIT") {
		t.Errorf("gzip of records over the limit: got %d %q, want 413 naming IOC_HTTP_BODY_LIMIT", r.Status, r.Msg)
	}
	for _, c := range []struct {
		name, contentType string
		body              []byte
	}{
		{"NDJSON", "application/x-ndjson", lines("m1", "m2", "m3", "m4", "m5", "m6")},
		{"array", "application/json", []byte("[" + strings.TrimSuffix(strings.Repeat("{},", 6), ",") + "]")},
	} {
		r := post(t, app, "/dossiers", c.contentType, "", c.body)
		if r.Status != 413 || !strings.Contains(r.Msg, "more than 5 records (the IOC_INGEST_MAX_RECORDS limit); split it into requests of at most 5 records") {
			t.Errorf("6 records as %s: got %d %q, want 413 naming IOC_INGEST_MAX_RECORDS", c.name, r.Status, r.Msg)
		}
	}
	ngsi := `{"id":"x:AQ-1","type":"AirQualityObserved","dateObserved":"` + nowAt(time.Hour) + `","pm25":1,"pm10":2,"no2":3,"o3":4,"so2":5,"co":6}`
	if r := post(t, app, "/ngsi-ld", "application/json", "", []byte(ngsi)); r.Status != 413 || !strings.Contains(r.Msg, "6 readings, more than the 5 records (the IOC_INGEST_MAX_RECORDS limit)") {
		t.Errorf("an NGSI-LD entity of 6 readings: got %d %q, want 413 naming IOC_INGEST_MAX_RECORDS", r.Status, r.Msg)
	}
	// Five bad records: two listed, the first two, three counted.
	r := post(t, app, "/dossiers", "application/json", "", []byte(`[{},7,{"event_id":"x"},{},{}]`))
	if r.Status != 202 || r.Rejected != 5 || len(r.Errors) != 2 || r.ErrorsOmitted != 3 || r.Errors[0].Index != 0 || r.Errors[1].Index != 1 {
		t.Errorf("5 bad records: got %d %+v, want 202 with 5 rejected, errors 0 and 1 listed, 3 omitted", r.Status, r.Response)
	}
	if r := post(t, app, "/dossiers", "application/json", "gzip", []byte("not gzip")); r.Status != 400 || !strings.Contains(r.Msg, "not valid gzip") {
		t.Errorf("a body that is not gzip: got %d %q, want 400", r.Status, r.Msg)
	}
	if r := post(t, app, "/dossiers", "application/json", "", []byte(`[{},{}`)); r.Status != 400 || !strings.Contains(r.Msg, "the body ends before the JSON array is closed") {
		t.Errorf("an unclosed array: got %d %q, want 400", r.Status, r.Msg)
	}
}

// Item 18: a notification nothing of which can be taken is refused with
// 422 and every entity's reasons, so that the broker records a failure; one
// that is partly taken, or only resent, is a 202. Entities of several types
// and attributes of several instances, as Orion-LD sends them, are taken.
func TestNGSILDNotifications(t *testing.T) {
	app := ingestApp(t, ServiceConfig{})
	at := nowAt(10 * time.Minute)
	refused := `{"type":"Notification","data":[
		{"id":"urn:ngsi-ld:ParkingSpot:P1","type":"ParkingSpot","occupancy":1},
		{"id":"urn:ngsi-ld:AirQualityObserved:AQ-1","type":"AirQualityObserved","dateObserved":"` + at + `","pm25":"high","noise":3}]}`
	r := post(t, app, "/ngsi-ld", "application/ld+json", "", []byte(refused))
	if r.Status != 422 || r.Accepted != 0 || r.Rejected != 2 || len(r.Errors) != 2 {
		t.Fatalf("every entity refused: got %d %+v %q, want 422 with both entities' errors", r.Status, r.Response, r.Msg)
	}
	if !strings.Contains(r.Msg, "no reading of the notification was taken: 2 entities refused") || !strings.Contains(r.Msg, `entity type "ParkingSpot" is not supported`) {
		t.Errorf("422 reason: got %q", r.Msg)
	}
	if p := r.Errors[1].Problems; len(p) != 2 || !strings.Contains(p[0], `attribute "noise" is not mapped`) || !strings.Contains(p[1], `attribute "pm25" value is a string`) {
		t.Errorf("entity 1: got problems %q, want both attributes' problems", p)
	}
	// Readings that validation refuses count as refused too, an instance
	// named by its datasetId.
	implausible := `[{"id":"x:AQ-2","type":"AirQualityObserved","dateObserved":"` + at + `","location":{"type":"Point","coordinates":[106.7,10.8]},"pm25":[{"value":-5,"datasetId":"urn:b"}],"pm10":-1}]`
	r = post(t, app, "/ngsi-ld", "application/json", "", []byte(implausible))
	if r.Status != 422 || len(r.Errors) != 1 || len(r.Errors[0].Problems) != 2 ||
		!strings.Contains(r.Errors[0].Problems[0], `entity x:AQ-2 attribute "pm10": value -1 ug/m3 is outside the plausible range`) ||
		!strings.Contains(r.Errors[0].Problems[1], `entity x:AQ-2 attribute "pm25 (datasetId urn:b)": value -5`) {
		t.Errorf("implausible values: got %d %+v, want 422 with both attributes' problems for entity 0", r.Status, r.Response)
	}

	taken := `{"type":"Notification","data":[
		{"id":"urn:ngsi-ld:AirQualityObserved:AQ-3","type":["Device","AirQualityObserved"],"dateObserved":"` + at + `",
		 "location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[106.7,10.8]}},
		 "pm25":[{"type":"Property","value":10},{"type":"Property","value":12,"datasetId":"urn:ngsi-ld:Dataset:optical"}]},
		{"id":"urn:ngsi-ld:ParkingSpot:P2","type":"ParkingSpot"}]}`
	r = post(t, app, "/ngsi-ld", "application/ld+json", "", []byte(taken))
	if r.Status != 202 || r.Accepted != 2 || r.Rejected != 1 || r.Errors[0].Index != 1 {
		t.Fatalf("several types and instances: got %d %+v %q, want 202 with both pm25 instances accepted and entity 1 refused", r.Status, r.Response, r.Msg)
	}
	r = post(t, app, "/ngsi-ld", "application/ld+json", "gzip", gzipped(t, []byte(taken)))
	if r.Status != 202 || r.Duplicates != 2 {
		t.Errorf("the same notification again, gzipped: got %d %+v %q, want 202 with 2 duplicates", r.Status, r.Response, r.Msg)
	}
}
