package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/dataset"
)

// fixedRuns stands in for the connectors: their runs are
// dataset.Connectors's to test.
type fixedRuns map[string]dataset.ConnectorState

func (f fixedRuns) Runs(id string) dataset.ConnectorState { return f[id] }

// TestADatasetsConnectorSaysHowItRan: a definition saved with a connector
// answers GET …/connector with how it ran, for admins; one without a
// connector answers 404, and a server that runs no connectors 503.
func TestADatasetsConnectorSaysHowItRan(t *testing.T) {
	e := newDatasetEnv(t)
	if r := e.call(t, "GET", "/api/v1/datasets/enrolment/connector", docAdminToken, ""); r.Code != 404 || !strings.Contains(string(r.Body), "has no connector") {
		t.Fatalf("a dataset without a connector: %d %s", r.Code, r.Body)
	}
	def := enrolmentYAML + "connector: {kind: postgres, every: 24h, dsn: \"postgres://ioc@db.sogd.example/ts\", password_env: IOC_PG_EDU_PASSWORD," +
		" query: \"SELECT ma_xa AS \\\"Mã xã\\\", nam AS \\\"Năm học\\\", hs AS \\\"Số học sinh\\\" FROM ts WHERE nam >= :from AND nam < :to\"}\n"
	if r := e.call(t, "PUT", "/api/v1/datasets/enrolment", docAdminToken, def, "Content-Type", "application/yaml"); r.Code/100 != 2 {
		t.Fatalf("PUT a definition with a connector: %d %s", r.Code, r.Body)
	}
	if r := e.call(t, "GET", "/api/v1/datasets/enrolment/connector", docAdminToken, ""); r.Code != 503 {
		t.Errorf("no connectors on the server: %d %s", r.Code, r.Body)
	}
	failed := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	e.s.d.Connectors = fixedRuns{"enrolment": {Dataset: "enrolment", Kind: "postgres", Every: "24h0m0s", LastRun: &failed, Error: "connect to the database: refused",
		Failures: 1, FailingSince: &failed}}
	r := e.call(t, "GET", "/api/v1/datasets/enrolment/connector", docAdminToken, "")
	var got map[string]any
	if err := json.Unmarshal(r.Body, &got); err != nil || r.Code != 200 {
		t.Fatalf("GET …/connector: %d %s", r.Code, r.Body)
	}
	if got["error"] != "connect to the database: refused" || got["consecutive_failures"] != 1.0 || got["last_run"] != "2026-03-02T02:00:00Z" || got["rows"] != 0.0 {
		t.Errorf("GET …/connector: %s", r.Body)
	}
	if r := e.call(t, "PUT", "/api/v1/datasets/enrolment", docAdminToken, strings.Replace(def, "postgres://ioc@", "postgres://ioc:secret@", 1),
		"Content-Type", "application/yaml"); r.Code != 400 || !strings.Contains(string(r.Body), "connector.dsn") || strings.Contains(string(r.Body), "secret") {
		t.Errorf("a DSN with a password: %d %s; want it refused at connector.dsn, without repeating it", r.Code, r.Body)
	}
}
