package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/alarm"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/internal/apitest"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/report"
)

// storageText is what a failing ClickHouse says: a query, an address and
// a table, none of which a client may see.
const storageText = "code: 62, message: Syntax error at 10.20.30.40:9000: SELECT secret_column FROM ioc.dossier_history"

// logBuffer collects log lines written from the server's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type failingFigures struct{ noFigures }

func (failingFigures) Snapshot(context.Context, string, string, aggregate.Window) (aggregate.Snapshot, error) {
	return aggregate.Snapshot{}, errors.New(storageText)
}

type failingReports struct{ noReports }

func (failingReports) Series(context.Context, report.SeriesQuery) (report.Series, error) {
	return report.Series{}, errors.New(storageText)
}

type failingAlarms struct{ noAlarms }

func (failingAlarms) List(context.Context, alarm.Query) ([]alarm.Alarm, error) {
	return nil, errors.New(storageText)
}

const testAdmin = "middleware-test-admin-token"

// frameServer builds a server whose storage fails, logging into logs.
func frameServer(t *testing.T, cfg Config, logs io.Writer) *Server {
	t.Helper()
	units, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := units.Hierarchy("vn-2025")
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg, Deps{
		Geo: units, KPIs: failingFigures{noFigures{h}}, Auth: auth.NewVerifier(testAdmin, []byte("middleware-test-secret")),
		Devices: noDevices{}, Alarms: failingAlarms{}, Events: noEvents{}, Reports: failingReports{},
		Ready: map[string]Check{
			"clickhouse": func(context.Context) error { return errors.New(storageText) },
			"live":       func(context.Context) error { return NotReady("live figures not published yet") },
		},
		Logger: logger, AccessLogger: logger.With("component", "http"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends method target with token (none when empty) and headers as
// name, value pairs.
func do(t *testing.T, s *Server, method, target, token string, headers ...string) apitest.Reply {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.App().Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apitest.Reply{Code: resp.StatusCode, Header: resp.Header, Body: b}
}

// A storage failure used to be answered with ClickHouse's own text
// (queries, addresses). Now the client is told what was unavailable, to
// retry, and a request id; the detail is in the log under that id.
func TestStorageErrorsAreLoggedNotShown(t *testing.T) {
	var logs logBuffer
	s := frameServer(t, Config{}, &logs)
	for _, c := range []struct{ target, what string }{
		{"/api/v1/areas/79/kpis", "figures are unavailable"},
		{"/api/v1/kpis/on_time_rate/series?area=79", "figures are unavailable"},
		{"/api/v1/alarms", "alarms are unavailable"},
	} {
		r := do(t, s, http.MethodGet, c.target, testAdmin)
		id := r.Header.Get("X-Request-Id")
		if id == "" {
			t.Errorf("%s: no X-Request-Id", c.target)
		}
		apitest.WantError(t, r, http.StatusServiceUnavailable, c.what)
		apitest.WantError(t, r, http.StatusServiceUnavailable, "retry")
		apitest.WantError(t, r, http.StatusServiceUnavailable, "request id "+id)
		if strings.Contains(string(r.Body), "10.20.30.40") || strings.Contains(string(r.Body), "secret_column") {
			t.Errorf("%s: the answer carries storage's text: %s", c.target, r.Body)
		}
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", c.target)
		}
		if !strings.Contains(logs.String(), "request_id="+id) || !strings.Contains(logs.String(), "secret_column") {
			t.Errorf("%s: the log lacks the detail under request id %s:\n%s", c.target, id, logs.String())
		}
	}

	// Readiness names the dependency, not its error; a check's own
	// explanation is shown.
	r := do(t, s, http.MethodGet, "/readyz", "")
	var ready readiness
	if err := json.Unmarshal(r.Body, &ready); err != nil || r.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz: got %d %s, want 503 JSON", r.Code, r.Body)
	}
	if got := ready.Checks["clickhouse"]; got != notAnswering {
		t.Errorf("readyz clickhouse: got %q, want %q", got, notAnswering)
	}
	if got := ready.Checks["live"]; got != "live figures not published yet" {
		t.Errorf("readyz live: got %q, want the check's own explanation", got)
	}
	// A load balancer probing again does not fill the log.
	do(t, s, http.MethodGet, "/readyz", "")
	if n := strings.Count(logs.String(), `msg="not ready" check=clickhouse`); n != 1 {
		t.Errorf("logged a failing check %d times over two probes, want once", n)
	}

	// A proxy's request id is kept; a malformed one is replaced.
	r = do(t, s, http.MethodGet, "/healthz", "", "X-Request-Id", "nginx-4f2a")
	if got := r.Header.Get("X-Request-Id"); got != "nginx-4f2a" {
		t.Errorf("proxy's request id: got %q, want it kept", got)
	}
	r = do(t, s, http.MethodGet, "/healthz", "", "X-Request-Id", "bad id\" injected=1")
	if got := r.Header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " \"=") {
		t.Errorf("malformed request id: got %q, want a fresh one", got)
	}
}

func TestSecurityHeaders(t *testing.T) {
	s := frameServer(t, Config{}, io.Discard)
	page := do(t, s, http.MethodGet, "/", "")
	if page.Code != http.StatusOK || !strings.Contains(string(page.Body), "<html") {
		t.Fatalf("page: got %d, want 200 HTML", page.Code)
	}
	api := do(t, s, http.MethodGet, "/api/v1/kpis", testAdmin)
	refusal := do(t, s, http.MethodGet, "/api/v1/kpis", "")
	for name, r := range map[string]apitest.Reply{"page": page, "API": api, "refusal": refusal} {
		for h, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"X-Frame-Options":        "DENY",
		} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("%s %s: got %q, want %q", name, h, got, want)
			}
		}
		if got := r.Header.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("%s over plain HTTP: Strict-Transport-Security %q, want none", name, got)
		}
	}
	if got := page.Header.Get("Content-Security-Policy"); got != pageCSP {
		t.Errorf("page CSP: got %q, want %q", got, pageCSP)
	}
	for _, part := range []string{"default-src 'self'", "frame-ancestors 'none'", "script-src 'self'"} {
		if !strings.Contains(pageCSP, part) {
			t.Errorf("page CSP lacks %q", part)
		}
	}
	if got := api.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("figures: Cache-Control %q, want no-store", got)
	}
	if got := api.Header.Get("Content-Security-Policy"); got != apiCSP {
		t.Errorf("API CSP: got %q, want %q", got, apiCSP)
	}
	// What may be cached says so itself.
	if got := do(t, s, http.MethodGet, "/api/v1/openapi.json", "").Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("openapi.json: Cache-Control %q, want its own no-cache", got)
	}

	tls := frameServer(t, Config{HSTS: true}, io.Discard)
	if got := do(t, tls, http.MethodGet, "/", "").Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Errorf("over TLS: Strict-Transport-Security %q, want max-age", got)
	}
}

func TestCORS(t *testing.T) {
	const origin = "https://maps.example.gov.vn"
	s := frameServer(t, Config{CORSOrigins: []string{origin, "http://127.0.0.1:8081"}}, io.Discard)

	pre := do(t, s, http.MethodOptions, "/tiles/vn-2025.commune.json", "",
		"Origin", origin, "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization")
	if pre.Code != http.StatusNoContent {
		t.Fatalf("preflight: got %d %s, want 204", pre.Code, pre.Body)
	}
	for h, want := range map[string]string{
		"Access-Control-Allow-Origin":  origin,
		"Access-Control-Allow-Methods": corsMethods,
		"Access-Control-Allow-Headers": corsHeaders,
	} {
		if got := pre.Header.Get(h); got != want {
			t.Errorf("preflight %s: got %q, want %q", h, got, want)
		}
	}
	if got := pre.Header.Get("Access-Control-Allow-Credentials"); got != "" {
		t.Errorf("preflight allows credentials (%q): tokens are bearer headers, never cookies", got)
	}

	get := do(t, s, http.MethodGet, "/api/v1/kpis", testAdmin, "Origin", origin)
	if got := get.Header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("GET from %s: Access-Control-Allow-Origin %q", origin, got)
	}
	if got := get.Header.Get("Vary"); !strings.Contains(got, "Origin") {
		t.Errorf("GET: Vary %q, want Origin", got)
	}
	// A refusal carries them too, so that the page can read why.
	if got := do(t, s, http.MethodGet, "/api/v1/kpis", "", "Origin", origin).Header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("401 from %s: Access-Control-Allow-Origin %q", origin, got)
	}

	other := do(t, s, http.MethodOptions, "/api/v1/kpis", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "GET")
	apitest.WantError(t, other, http.StatusForbidden, "IOC_CORS_ORIGINS")
	if got := other.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("preflight from an origin not listed: Access-Control-Allow-Origin %q", got)
	}
	if got := do(t, s, http.MethodGet, "/api/v1/kpis", testAdmin, "Origin", "https://evil.example").Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("GET from an origin not listed: Access-Control-Allow-Origin %q", got)
	}

	// Without IOC_CORS_ORIGINS no page elsewhere is allowed; OPTIONS is
	// still answered.
	none := frameServer(t, Config{}, io.Discard)
	if r := do(t, none, http.MethodOptions, "/api/v1/kpis", "", "Origin", origin, "Access-Control-Request-Method", "GET"); r.Code != http.StatusForbidden {
		t.Errorf("preflight with no origins configured: got %d, want 403", r.Code)
	}
	if r := do(t, none, http.MethodOptions, "/api/v1/kpis", ""); r.Code != http.StatusNoContent || r.Header.Get("Allow") == "" {
		t.Errorf("plain OPTIONS: got %d Allow %q, want 204 with Allow", r.Code, r.Header.Get("Allow"))
	}

	anyOrigin := frameServer(t, Config{CORSOrigins: []string{"*"}}, io.Discard)
	if got := do(t, anyOrigin, http.MethodGet, "/api/v1/kpis", testAdmin, "Origin", origin).Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf(`with "*": Access-Control-Allow-Origin %q, want *`, got)
	}

	for _, bad := range [][]string{{"maps.example.gov.vn"}, {"https://a.example/path"}, {"*", origin}, {"ftp://a.example"}} {
		if _, err := parseCORS(bad); err == nil || !strings.Contains(err.Error(), "IOC_CORS_ORIGINS") {
			t.Errorf("origins %q: got %v, want a refusal naming IOC_CORS_ORIGINS", bad, err)
		}
	}
}

func TestAccessLog(t *testing.T) {
	var logs logBuffer
	s := frameServer(t, Config{}, &logs)
	tok, err := auth.Issue([]byte("middleware-test-secret"), auth.Principal{Subject: "analyst-7", Role: auth.Viewer, Areas: []string{"79"}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A GIS client's route, which takes the token in the query.
	r := do(t, s, http.MethodGet, "/ogc/collections/vn-2025.commune/items/26740?access_token="+tok, tok)
	if r.Code != http.StatusOK {
		t.Fatalf("got %d %s", r.Code, r.Body)
	}
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "component=http") {
			line = l
		}
	}
	for _, want := range []string{"level=INFO", "msg=request", "method=GET", "route=/ogc/collections/:collectionId/items/:featureId", "status=200", "duration=", "bytes=", "subject=analyst-7", "role=viewer", "request_id=" + r.Header.Get("X-Request-Id")} {
		if !strings.Contains(line, want) {
			t.Errorf("access log line %q lacks %q", line, want)
		}
	}
	if strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), "26740") {
		t.Errorf("the log carries the token or the path: %s", logs.String())
	}

	var quiet logBuffer
	off := frameServer(t, Config{AccessLog: "off"}, &quiet)
	do(t, off, http.MethodGet, "/healthz", "")
	if strings.Contains(quiet.String(), "component=http") {
		t.Errorf("IOC_ACCESS_LOG=off still logs: %s", quiet.String())
	}
	if _, err := New(Config{AccessLog: "loud"}, Deps{Geo: s.d.Geo, KPIs: s.d.KPIs, Auth: s.d.Auth, Logger: s.logger}); err == nil || !strings.Contains(err.Error(), "IOC_ACCESS_LOG") {
		t.Errorf("IOC_ACCESS_LOG=loud: got %v, want a refusal naming it", err)
	}
}
