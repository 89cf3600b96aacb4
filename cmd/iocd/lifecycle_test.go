package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/testenv"
)

// stopLog records the order in which parts saw their context end.
type stopLog struct {
	mu    sync.Mutex
	order []string
}

func (s *stopLog) part(name string, fail <-chan error) part {
	return part{name, func(ctx context.Context) error {
		select {
		case <-ctx.Done():
		case err := <-fail:
			s.add(name)
			return err
		}
		s.add(name)
		return nil
	}}
}

func (s *stopLog) add(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.order = append(s.order, name)
}

func (s *stopLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.order, " ")
}

// TestLifecyclePartFailureStopsTheNode: a part that fails while the node
// runs stops every part, in the order of the shutdown, and the node with
// its error, named and logged; iocd serve then exits 1 with it.
func TestLifecyclePartFailureStopsTheNode(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	var stops stopLog
	broker := make(chan error, 1)
	l := &lifecycle{logger: logger}
	l.add(stops.part("readiness", nil))
	l.add(stops.part("mqtt", broker), stops.part("simulators", nil))
	l.add(part{"verify", func(context.Context) error { return nil }}) // off: returns at once, stops nothing
	l.add(stops.part("http", nil))
	done := make(chan error, 1)
	go func() {
		done <- l.run(context.Background(), func() { broker <- errors.New("the broker refused the session") })
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not stop within 30s of a part failing")
	}
	if err == nil || err.Error() != "mqtt: the broker refused the session" {
		t.Fatalf("the node stopped with %v, want the failure named after its part", err)
	}
	// The failing part returned first; the others stop in their steps.
	if got := stops.String(); got != "mqtt readiness simulators http" {
		t.Errorf("parts stopped in the order %q, want mqtt (failed), then readiness, simulators, http", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), `level=ERROR msg="a part failed; shutting down" part=mqtt err="the broker refused the session"`) {
		t.Errorf("the failure is not logged with its part:\n%s", logs.String())
	}
}

// TestLifecycleStopsStepByStep: when ctx ends, a step is told to stop only
// once every part of the one before has returned, and the node stops with
// no error.
func TestLifecycleStopsStepByStep(t *testing.T) {
	var stops stopLog
	later := make(chan context.Context, 1)
	l := &lifecycle{logger: slog.New(slog.DiscardHandler)}
	l.add(part{"writers", func(ctx context.Context) error {
		<-ctx.Done()
		if (<-later).Err() != nil {
			t.Error("the second step was told to stop while the first still ran")
		}
		stops.add("writers")
		return nil
	}})
	l.add(part{"aggregate", func(ctx context.Context) error {
		later <- ctx
		<-ctx.Done()
		stops.add("aggregate")
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.run(ctx, nil); err != nil {
		t.Errorf("stopped on ctx with %v, want nil", err)
	}
	if got := stops.String(); got != "writers aggregate" {
		t.Errorf("stopped in the order %q, want writers aggregate", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestShutdownTurnsNotReadyBeforeIngestRefuses stops a node while the
// test holds the dossier writer's lease, so that its last flush waits and
// the node keeps serving; meanwhile, once ingest answers 503, /readyz
// already does.
func TestShutdownTurnsNotReadyBeforeIngestRefuses(t *testing.T) {
	cfg := testConfig(t)
	cfg.Redis.Addr = testenv.RedisAddr(t)
	cfg.BatchAge = time.Hour // nothing flushes until shutdown
	cfg.BatchRows = 1 << 20
	n := startNode(t, cfg)

	held := holdWriterLease(t, cfg.Redis.Addr, cfg.RedisPrefix, cfg.ClickHouse.Database, "dossier_history")
	replies := make(chan int, 1)
	go func() {
		code, r := n.ingest(event("q1", "d1", "26740", "received", "online", time.Minute))
		if code != 202 || r.Accepted != 1 {
			code = -code
		}
		replies <- code
	}()
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		return n.metric(`ioc_ingest_queue_rows{table="dossier_history"}`) >= 1, "the record is not queued"
	})
	stopped := make(chan struct{})
	go func() { n.stop(); close(stopped) }()

	probe := 0
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		probe++
		body, _ := json.Marshal([]map[string]any{{"event_id": fmt.Sprint("probe-", probe), "camera_id": "CAM-PROBE", "type": "congestion",
			"severity": "info", "lat": nhLat, "lon": nhLon, "occurred_at": stamp(time.Now())}})
		resp := n.do("POST", "/api/v1/ingest/camera-events", adminToken, "application/json", body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return false, fmt.Sprintf("ingest still answers %d", resp.StatusCode)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Error("ingest refuses without Retry-After")
		}
		var ready struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		if code := n.get("/readyz", "", &ready); code != http.StatusServiceUnavailable || ready.Checks["shutdown"] == "" {
			t.Fatalf("ingest refuses while /readyz answers %d %+v: a load balancer still sends records", code, ready)
		}
		return true, ""
	})
	releaseHeld(t, held)
	select {
	case <-stopped:
	case <-time.After(40 * time.Second):
		t.Fatal("the node did not stop within 40s of the lease being released")
	}
	if code := <-replies; code != 202 {
		t.Errorf("the record queued before the shutdown: got %d, want 202 once flushed", code)
	}
}
