package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Far-future and far-past dates used to reach ClickHouse, which failed,
// and the client got a 503 with ClickHouse's text. They are a 400 naming
// the parameter and the range storage can hold.
func TestDatesStorageCannotHoldAre400(t *testing.T) {
	n := startNode(t, testConfig(t))
	for _, c := range []struct{ path, param string }{
		{"/api/v1/kpis/on_time_rate/series?area=79&from=9999-01-01&to=9999-12-31", "from"},
		{"/api/v1/kpis/on_time_rate/series?area=79&to=9999-12-31&step=month", "to"},
		{"/api/v1/kpis/on_time_rate/ranking?parent=79&level=commune&from=9999-12-01&to=9999-12-31", "from"},
		{"/api/v1/kpis/on_time_rate/ranking?parent=79&level=commune&from=2026-01-01&to=9999-12-31", "to"},
		{"/api/v1/kpis/on_time_rate/series?area=79&from=1900-01-01&to=1900-02-01", "from"},
		{"/api/v1/kpis/on_time_rate/series?area=79&from=2106-01-01&to=2106-02-06", "to"},
		{"/api/v1/alarms?to=9999-12-31T00:00:00Z", "to"},
		{"/api/v1/alarms?from=1960-01-01T00:00:00Z", "from"},
	} {
		code, body := n.getText(c.path, adminToken)
		if code != http.StatusBadRequest || !strings.Contains(body, c.param+" ") || !strings.Contains(body, "2106") {
			t.Errorf("%s: got %d %s, want 400 naming %s and the range up to 2106", c.path, code, body, c.param)
		}
	}
	// The last storable day still works.
	if code, body := n.getText("/api/v1/kpis/on_time_rate/series?area=79&from=2106-01-01&to=2106-02-05", adminToken); code != http.StatusOK {
		t.Errorf("a series to 2106-02-05: got %d %s, want 200", code, body)
	}
}

// getText asks for path and returns the status and the body as text.
func (n *node) getText(path, token string) (int, string) {
	n.t.Helper()
	resp := n.do("GET", path, token, "", nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// needPromtool finds Prometheus's promtool, which make test installs.
func needPromtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("this test checks /metrics with Prometheus's promtool: run scripts/install-deps.sh (it installs Debian's prometheus package): %v", err)
	}
	return p
}

// /metrics answered 500 for good after a few mixed requests: a label taken
// from a request's buffer changed under the registry once the buffer was
// reused. After 1,000 mixed requests on keep-alive connections (methods,
// routes, 2xx and 4xx), promtool must accept the exposition.
func TestMetricsPassPromtoolAfterMixedRequests(t *testing.T) {
	promtool := needPromtool(t)
	n := startNode(t, testConfig(t))
	type req struct {
		method, path, token, body string
	}
	reqs := []req{
		{"GET", "/api/v1/areas/79/kpis", adminToken, ""},
		{"GET", "/api/v1/areas/26740", adminToken, ""},
		{"GET", "/api/v1/areas/99999", adminToken, ""},
		{"GET", "/api/v1/kpis", "", ""},
		{"POST", "/api/v1/ingest/dossiers", adminToken, "not json"},
		{"POST", "/api/v1/alarms/none/ack", adminToken, `{"note":"x"}`},
		{"PUT", "/api/v1/rules/mixed-requests", adminToken, `{"broken":`},
		{"PUT", "/api/v1/devices/CAM-X", "", `{}`},
		{"OPTIONS", "/api/v1/kpis", "", ""},
		{"GET", "/api/v1/kpis/on_time_rate/series?area=79&to=9999-12-31", adminToken, ""},
		{"DELETE", "/api/v1/rules/none", adminToken, ""},
		{"GET", "/healthz", "", ""},
		{"GET", "/no/such/route", "", ""},
		{"HEAD", "/", "", ""},
	}
	// Four clients on keep-alive connections, so that buffers are reused.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 1000; i += 4 {
				r := reqs[i%len(reqs)]
				hr, err := http.NewRequest(r.method, n.base+r.path, strings.NewReader(r.body))
				if err != nil {
					errs <- err
					return
				}
				if r.token != "" {
					hr.Header.Set("Authorization", "Bearer "+r.token)
				}
				resp, err := client.Do(hr)
				if err != nil {
					errs <- fmt.Errorf("%s %s: %w", r.method, r.path, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // and it stays so
		resp := n.do("GET", "/metrics", adminToken, "", nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/metrics: got %d %s", resp.StatusCode, body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
		for _, want := range []string{`method="OPTIONS"`, `method="PUT"`, `code="404"`, `code="400"`} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("/metrics lacks a series with %s", want)
			}
		}
	}
}
