package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/internal/apitest"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/ingest/ingesttest"
	"github.com/openioc/ioc/internal/testenv"
)

// ingestServer serves the ingest routes over a real pipeline and real
// writers, on a database of the test's own; bodyLimit is the server's
// (0: the default).
func ingestServer(t *testing.T, bodyLimit int, cfg ingest.PipelineConfig) *Server {
	t.Helper()
	reg, h := apitest.Vn2025(t)
	rules := ingest.Rules{Hierarchy: "vn-2025", Areas: reg, MaxFuture: 5 * time.Minute, Places: h}
	return ingestFront(t, bodyLimit, ingesttest.Pipeline(t, testenv.Store(t), cfg, rules, nil))
}

// ingestFront is a server whose ingest routes hand their bodies to in.
func ingestFront(t *testing.T, bodyLimit int, in Ingest) *Server {
	t.Helper()
	reg, h := apitest.Vn2025(t)
	s, err := New(Config{BodyLimit: bodyLimit}, Deps{
		Geo: reg, KPIs: &apitest.Figures{Reg: reg, H: h}, Auth: auth.NewVerifier(apitest.Admin, apitest.Secret),
		Ingest: in, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// reply is an ingest answer: a Response, or a refusal with its reason.
type reply struct {
	ingest.Response
	Status int                 `json:"-"`
	Msg    string              `json:"error"`
	Header map[string][]string `json:"-"`
}

// post sends body to the ingest route path (under /api/v1/ingest) with the
// admin token.
func post(t *testing.T, s *Server, path, contentType, encoding string, body []byte) reply {
	t.Helper()
	req := httptest.NewRequest("POST", "/api/v1/ingest"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+apitest.Admin)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := s.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s answered %d with %q: %v", path, resp.StatusCode, raw, err)
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

// nowAt is the wall clock the pipeline validates against, ago before now,
// in Ho Chi Minh City.
func nowAt(ago time.Duration) string {
	return time.Now().Add(-ago).In(time.FixedZone("ICT", 7*3600)).Format(time.RFC3339)
}

func dossierLine(id string) string {
	return fmt.Sprintf(`{"event_id":%q,"dossier_id":"d-%s","area_code":"26740","channel":"online","status":"received","occurred_at":%q,"due_at":%q}`,
		id, id, nowAt(time.Hour), nowAt(-72*time.Hour))
}

// Item 3 and 4 at the handlers: the body limit applies once decoded, the
// records of one request are bounded, and refusals past those listed are
// only counted, the lowest indexes listed.
func TestIngestBodiesAreBounded(t *testing.T) {
	app := ingestServer(t, 64<<10, ingest.PipelineConfig{MaxRecords: 5, MaxErrors: 2})
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
	app := ingestServer(t, 0, ingest.PipelineConfig{})
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

// refusing is a pipeline that refuses every request with err.
type refusing struct{ err error }

func (r refusing) Dossiers(context.Context, io.Reader, bool) (ingest.Response, error) {
	return ingest.Response{}, r.err
}
func (r refusing) CameraEvents(context.Context, io.Reader, bool) (ingest.Response, error) {
	return ingest.Response{}, r.err
}
func (r refusing) SensorReadings(context.Context, io.Reader, bool) (ingest.Response, error) {
	return ingest.Response{}, r.err
}
func (r refusing) Feedback(context.Context, io.Reader, bool) (ingest.Response, error) {
	return ingest.Response{}, r.err
}
func (r refusing) NGSILD(context.Context, []byte) (ingest.Response, error) {
	return ingest.Response{}, r.err
}
func (r refusing) CameraXML(context.Context, []byte, string) (ingest.Response, error) {
	return ingest.Response{}, r.err
}

// Each error the pipeline refuses a request with is answered with its
// status, its reason and, for what storage could not take, when to retry;
// storage's own text stays out of the answer.
func TestIngestRefusalsAreAnswered(t *testing.T) {
	paths := []string{"/dossiers", "/camera-events", "/sensor-readings", "/feedback", "/ngsi-ld", "/camera-xml"}
	for _, c := range []struct {
		name       string
		err        error
		paths      []string // nil: every route
		status     int
		retryAfter string
		says       string
		hides      string
	}{
		{"queue full", &ingest.QueueFullError{Limit: 10}, nil, 503, "1", "ingest queue is full (10 rows waiting", ""},
		{"shutting down", ingest.ErrClosed, nil, 503, "5", "ingest is shutting down", ""},
		{"storage down", &ingest.StoreError{Err: errors.New("dial tcp 10.9.8.7:9000: connection refused")}, nil, 503, "5",
			"storage is unavailable, nothing from this request was acknowledged; retry the same request (ids already stored are skipped); request id ", "10.9.8.7"},
		{"wait ran out", &ingest.TimeoutError{Wait: 30 * time.Second, Err: context.DeadlineExceeded}, nil, 503, "5",
			"records were not stored within 30s; retry the same request (ids already stored are skipped)", ""},
		{"anything else", errors.New("secret detail"), nil, 503, "5",
			"records could not be stored right now, nothing from this request was acknowledged; retry the same request (ids already stored are skipped); request id ", "secret detail"},
		{"too many records", &ingest.BodyError{Err: &ingest.TooManyRecordsError{Limit: 5}}, nil, 413, "",
			"more than 5 records (the IOC_INGEST_MAX_RECORDS limit)", ""},
		{"malformed", &ingest.BodyError{Err: fmt.Errorf("%w: want a JSON array", ingest.ErrUnparseable)}, nil, 400, "", "want a JSON array", ""},
		{"the body's own refusal", &ingest.BodyError{Err: fiber.NewError(415, "Content-Encoding \"x\" is not supported")}, nil, 415, "", "is not supported", ""},
		{"out of scope", &ingest.OutOfScopeError{Err: errors.New("these are the credentials of camera A")}, []string{"/camera-xml"}, 403, "",
			"these are the credentials of camera A", ""},
		{"nothing taken", &ingest.RefusedError{Reason: "no registered camera matches"}, []string{"/camera-xml"}, 422, "", "no registered camera matches", ""},
	} {
		s := ingestFront(t, 0, refusing{c.err})
		on := paths
		if c.paths != nil {
			on = c.paths
		}
		for _, path := range on {
			r := post(t, s, path, "application/json", "", []byte("[]"))
			if r.Status != c.status || !strings.Contains(r.Msg, c.says) || (c.hides != "" && strings.Contains(r.Msg, c.hides)) {
				t.Errorf("%s, %s: got %d %q, want %d saying %q", c.name, path, r.Status, r.Msg, c.status, c.says)
			}
			if got := strings.Join(r.Header["Retry-After"], ","); got != c.retryAfter {
				t.Errorf("%s, %s: got Retry-After %q, want %q", c.name, path, got, c.retryAfter)
			}
		}
	}
	// A notification nothing of which was taken lists every entity's
	// problems with the reason.
	resp := ingest.Response{Rejected: 1, Errors: []ingest.RecordError{{Index: 0, Error: "entity type \"X\" is not supported", Problems: []string{"entity type \"X\" is not supported"}}}}
	r := post(t, ingestFront(t, 0, refusing{&ingest.RefusedError{Reason: "no reading of the notification was taken", Response: resp}}), "/ngsi-ld", "application/json", "", []byte("{}"))
	if r.Status != 422 || r.Msg != "no reading of the notification was taken" || r.Rejected != 1 || len(r.Errors) != 1 || r.Errors[0].Error != resp.Errors[0].Error {
		t.Errorf("NGSI-LD nothing taken: got %d %q %+v, want 422 with the reason and the entity's error", r.Status, r.Msg, r.Response)
	}
}
