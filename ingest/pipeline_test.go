package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/ingest/ingesttest"
	"github.com/openioc/ioc/internal/testenv"
)

// testPipeline is a Pipeline over real writers on a database of the
// test's own.
func testPipeline(t *testing.T, cfg ingest.PipelineConfig) *ingest.Pipeline {
	t.Helper()
	return pipelineWith(t, cfg, nil)
}

func pipelineWith(t *testing.T, cfg ingest.PipelineConfig, devices ingest.DeviceRegistrar) *ingest.Pipeline {
	t.Helper()
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	rules := ingest.Rules{Hierarchy: "vn-2025", Areas: reg, MaxFuture: 5 * time.Minute, Places: h}
	return ingesttest.Pipeline(t, testenv.Store(t), cfg, rules, devices)
}

// takeAt hands body to the pipeline's route of that path, as the HTTP
// handlers do: NDJSON when contentType says so.
func takeAt(t *testing.T, p *ingest.Pipeline, path, contentType string, body []byte) (ingest.Response, error) {
	t.Helper()
	ndjson := strings.HasPrefix(contentType, "application/x-ndjson")
	ctx := context.Background()
	switch path {
	case "/dossiers":
		return p.Dossiers(ctx, bytes.NewReader(body), ndjson)
	case "/camera-events":
		return p.CameraEvents(ctx, bytes.NewReader(body), ndjson)
	case "/sensor-readings":
		return p.SensorReadings(ctx, bytes.NewReader(body), ndjson)
	case "/feedback":
		return p.Feedback(ctx, bytes.NewReader(body), ndjson)
	case "/ngsi-ld":
		return p.NGSILD(ctx, body)
	case "/camera-xml":
		return p.CameraXML(ctx, body, contentType)
	}
	t.Fatalf("no route %s", path)
	return ingest.Response{}, nil
}

// nowAt is the wall clock the pipeline validates against, ago before now,
// in Ho Chi Minh City.
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
	p := testPipeline(t, ingest.PipelineConfig{})
	body := strings.Join([]string{
		dossierLine("ok-1"),
		// A misspelt status, no dossier_id and a time without offset.
		fmt.Sprintf(`{"event_id":"bad-1","area_code":"26740","channel":"online","status":"recieved","occurred_at":"2026-11-22T09:15:00","due_at":%q}`, nowAt(-time.Hour)),
		// A field of the wrong JSON type, and an unknown channel.
		fmt.Sprintf(`{"event_id":"bad-2","dossier_id":"d","area_code":"26740","channel":"fax","status":"received","occurred_at":%q,"due_at":%q,"digitized":"yes"}`, nowAt(time.Hour), nowAt(-time.Hour)),
	}, "\n")
	r, err := takeAt(t, p, "/dossiers", "application/x-ndjson", []byte(body))
	if err != nil || r.Accepted != 1 || r.Rejected != 2 || len(r.Errors) != 2 {
		t.Fatalf("got %v %+v, want 1 accepted and 2 errors", err, r)
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
		r, err := takeAt(t, p, c.path, "application/json", []byte(c.body))
		if err != nil || len(r.Errors) != 1 {
			t.Errorf("%s: got %v %+v, want one error", c.path, err, r)
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

// Item 3 and 4 in the pipeline: the records of one request are bounded,
// refusals past those listed are only counted, the lowest indexes listed,
// and a body that cannot be read is refused whole with the reader's own
// error, for the caller to answer as it words it (package api: the HTTP
// answers).
func TestPipelineBodiesAreBounded(t *testing.T) {
	p := testPipeline(t, ingest.PipelineConfig{MaxRecords: 5, MaxErrors: 2})
	lines := func(ids ...string) []byte {
		var b bytes.Buffer
		for _, id := range ids {
			b.WriteString(dossierLine(id) + "\n")
		}
		return b.Bytes()
	}
	if r, err := takeAt(t, p, "/dossiers", "application/x-ndjson", lines("ok-1", "ok-2")); err != nil || r.Accepted != 2 {
		t.Errorf("NDJSON: got %v %+v, want 2 accepted", err, r)
	}
	for _, c := range []struct {
		name, contentType string
		body              []byte
	}{
		{"NDJSON", "application/x-ndjson", lines("m1", "m2", "m3", "m4", "m5", "m6")},
		{"array", "application/json", []byte("[" + strings.TrimSuffix(strings.Repeat("{},", 6), ",") + "]")},
	} {
		_, err := takeAt(t, p, "/dossiers", c.contentType, c.body)
		var bad *ingest.BodyError
		var many *ingest.TooManyRecordsError
		if !errors.As(err, &bad) || !errors.As(err, &many) || !strings.Contains(err.Error(), "more than 5 records (the IOC_INGEST_MAX_RECORDS limit); split it into requests of at most 5 records") {
			t.Errorf("6 records as %s: got %v, want a BodyError of too many records naming IOC_INGEST_MAX_RECORDS", c.name, err)
		}
	}
	ngsi := `{"id":"x:AQ-1","type":"AirQualityObserved","dateObserved":"` + nowAt(time.Hour) + `","pm25":1,"pm10":2,"no2":3,"o3":4,"so2":5,"co":6}`
	_, err := takeAt(t, p, "/ngsi-ld", "application/json", []byte(ngsi))
	var many *ingest.TooManyRecordsError
	if !errors.As(err, &many) || !strings.Contains(err.Error(), "6 readings, more than the 5 records (the IOC_INGEST_MAX_RECORDS limit)") {
		t.Errorf("an NGSI-LD entity of 6 readings: got %v, want too many records naming IOC_INGEST_MAX_RECORDS", err)
	}
	// Five bad records: two listed, the first two, three counted.
	r, err := takeAt(t, p, "/dossiers", "application/json", []byte(`[{},7,{"event_id":"x"},{},{}]`))
	if err != nil || r.Rejected != 5 || len(r.Errors) != 2 || r.ErrorsOmitted != 3 || r.Errors[0].Index != 0 || r.Errors[1].Index != 1 {
		t.Errorf("5 bad records: got %v %+v, want 5 rejected, errors 0 and 1 listed, 3 omitted", err, r)
	}
	_, err = takeAt(t, p, "/dossiers", "application/json", []byte(`[{},{}`))
	var bad *ingest.BodyError
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "the body ends before the JSON array is closed") {
		t.Errorf("an unclosed array: got %v, want a BodyError", err)
	}
	// The reader's own error comes back as it was returned, so that the
	// caller answers it in its own words.
	cut := &readerError{}
	for _, path := range []string{"/dossiers", "/camera-events", "/sensor-readings", "/feedback"} {
		var got *readerError
		if _, err := readAt(p, path, io.MultiReader(strings.NewReader("["+dossierLine("r-1")+","), iotest.ErrReader(cut))); !errors.As(err, &bad) || !errors.As(err, &got) || got != cut {
			t.Errorf("%s, a body whose reading fails: got %v, want a BodyError wrapping the reader's error", path, err)
		}
	}
}

type readerError struct{}

func (*readerError) Error() string { return "body too large" }

// readAt hands a streamed body to the route of that path.
func readAt(p *ingest.Pipeline, path string, body io.Reader) (ingest.Response, error) {
	ctx := context.Background()
	switch path {
	case "/camera-events":
		return p.CameraEvents(ctx, body, false)
	case "/sensor-readings":
		return p.SensorReadings(ctx, body, false)
	case "/feedback":
		return p.Feedback(ctx, body, false)
	}
	return p.Dossiers(ctx, body, false)
}

// Item 18: a notification nothing of which can be taken is refused with
// every entity's reasons (a RefusedError, which the HTTP side answers 422),
// so that the broker records a failure; one that is partly taken, or only
// resent, is taken. Entities of several types and attributes of several
// instances, as Orion-LD sends them, are taken.
func TestNGSILDNotifications(t *testing.T) {
	p := testPipeline(t, ingest.PipelineConfig{})
	at := nowAt(10 * time.Minute)
	refused := `{"type":"Notification","data":[
		{"id":"urn:ngsi-ld:ParkingSpot:P1","type":"ParkingSpot","occupancy":1},
		{"id":"urn:ngsi-ld:AirQualityObserved:AQ-1","type":"AirQualityObserved","dateObserved":"` + at + `","pm25":"high","noise":3}]}`
	_, err := takeAt(t, p, "/ngsi-ld", "application/ld+json", []byte(refused))
	var none *ingest.RefusedError
	if !errors.As(err, &none) || none.Response.Accepted != 0 || none.Response.Rejected != 2 || len(none.Response.Errors) != 2 {
		t.Fatalf("every entity refused: got %v, want a RefusedError with both entities' errors", err)
	}
	if !strings.Contains(none.Reason, "no reading of the notification was taken: 2 entities refused") || !strings.Contains(none.Reason, `entity type "ParkingSpot" is not supported`) {
		t.Errorf("reason: got %q", none.Reason)
	}
	if p := none.Response.Errors[1].Problems; len(p) != 2 || !strings.Contains(p[0], `attribute "noise" is not mapped`) || !strings.Contains(p[1], `attribute "pm25" value is a string`) {
		t.Errorf("entity 1: got problems %q, want both attributes' problems", p)
	}
	// Readings that validation refuses count as refused too, an instance
	// named by its datasetId.
	implausible := `[{"id":"x:AQ-2","type":"AirQualityObserved","dateObserved":"` + at + `","location":{"type":"Point","coordinates":[106.7,10.8]},"pm25":[{"value":-5,"datasetId":"urn:b"}],"pm10":-1}]`
	_, err = takeAt(t, p, "/ngsi-ld", "application/json", []byte(implausible))
	if !errors.As(err, &none) || len(none.Response.Errors) != 1 || len(none.Response.Errors[0].Problems) != 2 ||
		!strings.Contains(none.Response.Errors[0].Problems[0], `entity x:AQ-2 attribute "pm10": value -1 ug/m3 is outside the plausible range`) ||
		!strings.Contains(none.Response.Errors[0].Problems[1], `entity x:AQ-2 attribute "pm25 (datasetId urn:b)": value -5`) {
		t.Errorf("implausible values: got %v, want a RefusedError with both attributes' problems for entity 0", err)
	}

	taken := `{"type":"Notification","data":[
		{"id":"urn:ngsi-ld:AirQualityObserved:AQ-3","type":["Device","AirQualityObserved"],"dateObserved":"` + at + `",
		 "location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[106.7,10.8]}},
		 "pm25":[{"type":"Property","value":10},{"type":"Property","value":12,"datasetId":"urn:ngsi-ld:Dataset:optical"}]},
		{"id":"urn:ngsi-ld:ParkingSpot:P2","type":"ParkingSpot"}]}`
	r, err := takeAt(t, p, "/ngsi-ld", "application/ld+json", []byte(taken))
	if err != nil || r.Accepted != 2 || r.Rejected != 1 || r.Errors[0].Index != 1 {
		t.Fatalf("several types and instances: got %v %+v, want both pm25 instances accepted and entity 1 refused", err, r)
	}
	r, err = takeAt(t, p, "/ngsi-ld", "application/ld+json", []byte(taken))
	if err != nil || r.Duplicates != 2 {
		t.Errorf("the same notification again: got %v %+v, want 2 duplicates", err, r)
	}
}

// A camera-platform alert that cannot be taken is refused whole: outside
// the request's scope, or its camera unknown.
func TestCameraXMLRefusals(t *testing.T) {
	p := testPipeline(t, ingest.PipelineConfig{})
	alert := []byte(`<EventNotificationAlert><ipAddress>10.0.0.9</ipAddress><channelID>1</channelID><dateTime>` + nowAt(time.Minute) +
		`</dateTime><eventType>VMD</eventType><eventState>active</eventState><channelName>Gate</channelName></EventNotificationAlert>`)
	ctx := ingest.WithScope(context.Background(), deviceScope("CAM-2"))
	_, err := p.CameraXML(ctx, alert, "application/xml")
	var scope *ingest.OutOfScopeError
	if !errors.As(err, &scope) || !strings.Contains(err.Error(), "CAM-2") {
		t.Errorf("another camera's credentials: got %v, want an OutOfScopeError", err)
	}
	p = pipelineWith(t, ingest.PipelineConfig{}, noCameras{&ingesttest.Registrar{}})
	_, err = p.CameraXML(context.Background(), alert, "application/xml")
	var none *ingest.RefusedError
	if !errors.As(err, &none) || !strings.Contains(none.Reason, `no registered camera matches channel name "Gate" or address 10.0.0.9/1`) {
		t.Errorf("an unknown camera: got %v, want a RefusedError naming its channel and address", err)
	}
}

// deviceScope is the scope of one device's own credentials.
type deviceScope string

func (deviceScope) Covers(string, string) error { return nil }
func (d deviceScope) CoversDevice(id string) error {
	if id != string(d) {
		return fmt.Errorf("these are the credentials of %s", string(d))
	}
	return nil
}

// noCameras is a registry without cameras.
type noCameras struct{ *ingesttest.Registrar }

func (noCameras) MatchCamera(string, string, string) (device.Device, bool) {
	return device.Device{}, false
}
