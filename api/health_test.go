package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestReadyzAnswersNotReadyAtOnceOnceStopping: a node that is stopping
// tells load balancers at once, without waiting for its checks, while it
// still serves everything else.
func TestReadyzAnswersNotReadyAtOnceOnceStopping(t *testing.T) {
	var runs atomic.Int32
	s := frameServer(t, Config{}, io.Discard)
	s.d.Ready = map[string]Check{"clickhouse": func(context.Context) error { runs.Add(1); return nil }}
	if r := do(t, s, http.MethodGet, "/readyz", ""); r.Code != http.StatusOK {
		t.Fatalf("readyz before stopping: got %d %s, want 200", r.Code, r.Body)
	}
	s.Stopping()
	s.Stopping() // twice is the same
	before := runs.Load()
	r := do(t, s, http.MethodGet, "/readyz", "")
	var ready readiness
	if err := json.Unmarshal(r.Body, &ready); err != nil || r.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz while stopping: got %d %s, want 503 JSON", r.Code, r.Body)
	}
	if ready.Status != "not ready" || ready.Checks["shutdown"] != stoppingReason || len(ready.Checks) != 1 {
		t.Errorf("readyz while stopping: got %+v, want not ready for the shutdown alone", ready)
	}
	if runs.Load() != before {
		t.Error("readyz ran its checks while stopping; it answers at once")
	}
	if r := do(t, s, http.MethodGet, "/healthz", ""); r.Code != http.StatusOK {
		t.Errorf("healthz while stopping: got %d, want 200: the node still serves", r.Code)
	}
}
