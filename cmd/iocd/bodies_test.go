package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func gzipBytes(t *testing.T, b []byte) []byte {
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

// send makes a request with a Content-Encoding and returns the status and
// the answer's body.
func (n *node) send(method, path, contentType, encoding string, body []byte) (int, string) {
	n.t.Helper()
	req, err := http.NewRequest(method, n.base+path, bytes.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// Every route that reads a body reads it through the bounded reader, so
// the body limit holds once the Content-Encoding is undone; and a
// compressed body within it is read. Fiber's Ctx.Body, which the routes
// read before, inflated any amount.
func TestBodiesAreBoundedOnceDecodedOnEveryRoute(t *testing.T) {
	cfg := testConfig(t)
	cfg.BodyLimit = 1 << 20
	n := startNode(t, cfg)
	bomb := gzipBytes(t, gzipBytes(t, make([]byte, 32<<20)))
	for _, r := range []struct{ method, path string }{
		{"POST", "/api/v1/ingest/dossiers"}, {"POST", "/api/v1/ingest/camera-events"}, {"POST", "/api/v1/ingest/sensor-readings"},
		{"POST", "/api/v1/ingest/feedback"}, {"POST", "/api/v1/ingest/ngsi-ld"}, {"POST", "/api/v1/ingest/camera-xml"},
		{"PUT", "/api/v1/devices/CAM-B"}, {"POST", "/api/v1/alarms/a-1/ack"}, {"POST", "/api/v1/alarms/a-1/resolve"},
		{"PUT", "/api/v1/rules/r-1"}, {"POST", "/api/v1/periods/2026-10/close"}, {"POST", "/api/v1/periods/2026-10/reopen"},
	} {
		code, body := n.send(r.method, r.path, "application/json", "gzip, gzip", bomb)
		if code != 413 || !strings.Contains(body, "larger than 1048576 bytes once decoded (Content-Encoding: gzip, gzip) (IOC_HTTP_BODY_LIMIT)") {
			t.Errorf("%s %s with a gzip-of-gzip bomb: got %d %.200s, want 413 naming IOC_HTTP_BODY_LIMIT", r.method, r.path, code, body)
		}
		if code, body := n.send(r.method, r.path, "application/json", "gzip, gzip, gzip", []byte("x")); code != 415 || !strings.Contains(body, "at most 2 are undone") {
			t.Errorf("%s %s with three codings: got %d %.200s, want 415", r.method, r.path, code, body)
		}
	}
	device := []byte(`{"kind":"camera","name":"Cổng chợ Bến Thành","lat":10.7725,"lon":106.698}`)
	if code, body := n.send("PUT", "/api/v1/devices/CAM-GZ", "application/json", "gzip", gzipBytes(t, device)); code != 201 || !strings.Contains(body, "Cổng chợ Bến Thành") {
		t.Errorf("a device registered with a gzip body: got %d %.300s, want 201", code, body)
	}
}

// Item 18 from the outside: a record's problems come in one answer, an
// NGSI-LD notification nothing of which is taken is a 422, and entities of
// several types with attributes of several instances are taken.
func TestRefusalsSayEverythingAtOnce(t *testing.T) {
	n := startNode(t, testConfig(t))
	at := time.Now().Add(-10 * time.Minute).In(hcm).Format(time.RFC3339)
	bad := fmt.Sprintf(`{"event_id":"e-1","area_code":"26740","channel":"online","status":"recieved","occurred_at":"2026-11-22T09:15:00","due_at":%q}`, at)
	code, body := n.send("POST", "/api/v1/ingest/dossiers", "application/x-ndjson", "", []byte(bad))
	var r struct {
		Accepted int    `json:"accepted"`
		Error    string `json:"error"`
		Errors   []struct {
			Index    int      `json:"index"`
			Error    string   `json:"error"`
			Problems []string `json:"problems"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%d %s", code, body)
	}
	if code != 202 || len(r.Errors) != 1 || len(r.Errors[0].Problems) != 3 ||
		!strings.Contains(r.Errors[0].Error, `dossier_id is required; status "recieved" is not one of`) ||
		!strings.Contains(r.Errors[0].Error, `; occurred_at "2026-11-22T09:15:00" is not an RFC 3339 time with offset`) {
		t.Errorf("a record with three problems: got %d %s, want one error listing all three", code, body)
	}

	refused := `{"type":"Notification","data":[{"id":"urn:ngsi-ld:ParkingSpot:P1","type":"ParkingSpot","occupancy":1}]}`
	code, body = n.send("POST", "/api/v1/ingest/ngsi-ld", "application/ld+json", "", []byte(refused))
	if code != 422 || !strings.Contains(body, `entity type \"ParkingSpot\" is not supported`) || !strings.Contains(body, `"rejected":1`) {
		t.Errorf("a notification every entity of which is refused: got %d %s, want 422 with the reason", code, body)
	}

	taken := `{"type":"Notification","data":[{"id":"urn:ngsi-ld:AirQualityObserved:AQ-MULTI","type":["AirQualityObserved","Device"],
		"dateObserved":"` + at + `","location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[106.7,10.78]}},
		"pm25":[{"type":"Property","value":20},{"type":"Property","value":22,"datasetId":"urn:ngsi-ld:Dataset:optical"}]}]}`
	code, body = n.send("POST", "/api/v1/ingest/ngsi-ld", "application/ld+json", "", []byte(taken))
	if code != 202 || !strings.Contains(body, `"accepted":2`) || !strings.Contains(body, `"rejected":0`) {
		t.Errorf("an entity of two types with two pm25 instances: got %d %s, want 202 with both readings", code, body)
	}
}
