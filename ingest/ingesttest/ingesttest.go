// Package ingesttest stores records through the real ingest writers, so
// that tests see the figures the writers derive, not rows typed by hand.
//
// Concurrency: each call runs its own writer and may run alongside others.
package ingesttest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
)

// runner is what both kinds of writer offer.
type runner[T any] interface {
	Run(ctx context.Context) error
	Write(ctx context.Context, rows []T) (ingest.Outcome, error)
}

func write[T any](t testing.TB, w runner[T], rows []T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	out, err := w.Write(ctx, rows)
	if err != nil {
		t.Fatalf("write records: %v", err)
	}
	if len(out.Conflicts) > 0 {
		t.Fatalf("write records: %s", out.Conflicts[0].Error)
	}
}

// Dossiers stores ds in order, in one batch, and fails t on any error.
func Dossiers(t testing.TB, s *chstore.Store, ds []ingest.Dossier) {
	t.Helper()
	DossiersTo(t, s, nil, ds)
}

// DossiersTo stores ds like Dossiers, and tells n (if not nil) what the
// batch added to the rollups before it returns.
func DossiersTo(t testing.TB, s *chstore.Store, n ingest.Notifier, ds []ingest.Dossier) {
	t.Helper()
	d := deps(s)
	d.Notify = n
	w, err := ingest.NewWriter(ingest.BatchConfig{}, d)
	if err != nil {
		t.Fatal(err)
	}
	write[ingest.Dossier](t, w, ds)
}

// Feedback stores fs and fails t on any error.
func Feedback(t testing.TB, s *chstore.Store, fs []ingest.Feedback) {
	t.Helper()
	w, err := ingest.NewFeedbackWriter(ingest.BatchConfig{}, deps(s))
	if err != nil {
		t.Fatal(err)
	}
	write[ingest.Feedback](t, w, fs)
}

func deps(s *chstore.Store) ingest.WriterDeps {
	return ingest.WriterDeps{Store: s, Leases: lease.NewLocal(), Logger: slog.New(slog.DiscardHandler)}
}

// CameraEvents stores es and fails t on any error.
func CameraEvents(t testing.TB, s *chstore.Store, es []ingest.CameraEvent) {
	t.Helper()
	CameraEventsTo(t, s, nil, es)
}

// CameraEventsTo stores es like CameraEvents, and tells n (if not nil)
// what the batch added to the rollups before it returns.
func CameraEventsTo(t testing.TB, s *chstore.Store, n ingest.Notifier, es []ingest.CameraEvent) {
	t.Helper()
	d := deps(s)
	d.Notify = n
	w, err := ingest.NewCameraWriter(ingest.BatchConfig{}, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	write[ingest.CameraEvent](t, w, es)
}

// Readings stores rs and fails t on any error.
func Readings(t testing.TB, s *chstore.Store, rs []ingest.Reading) {
	t.Helper()
	ReadingsTo(t, s, nil, rs)
}

// ReadingsTo stores rs like Readings, and tells n (if not nil) what the
// batch added to the rollups before it returns.
func ReadingsTo(t testing.TB, s *chstore.Store, n ingest.Notifier, rs []ingest.Reading) {
	t.Helper()
	d := deps(s)
	d.Notify = n
	w, err := ingest.NewReadingWriter(ingest.BatchConfig{}, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	write[ingest.Reading](t, w, rs)
}

// Registrar stands in for the device registry: it registers what it is
// told and matches every camera-platform alert to camera CAM-1.
type Registrar struct {
	mu   sync.Mutex
	seen []device.Device
}

// Ensure records ds as registered.
func (r *Registrar) Ensure(_ context.Context, ds []device.Device) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, ds...)
	return nil
}

// MatchCamera matches every alert to camera CAM-1.
func (r *Registrar) MatchCamera(string, string, string) (device.Device, bool) {
	return device.Device{ID: "CAM-1", Kind: device.Camera}, true
}

// Pipeline is a Pipeline over real writers, running until the test ends,
// on s, validating by rules, registering devices with devices (nil: a
// Registrar).
func Pipeline(t testing.TB, s *chstore.Store, cfg ingest.PipelineConfig, rules ingest.Rules, devices ingest.DeviceRegistrar) *ingest.Pipeline {
	t.Helper()
	d := deps(s)
	batch := ingest.BatchConfig{MaxAge: 10 * time.Millisecond}
	dossiers, err := ingest.NewWriter(batch, d)
	if err != nil {
		t.Fatal(err)
	}
	cameras, err := ingest.NewCameraWriter(batch, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	readings, err := ingest.NewReadingWriter(batch, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	feedback, err := ingest.NewFeedbackWriter(batch, d)
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
	if devices == nil {
		devices = &Registrar{}
	}
	return ingest.NewPipeline(cfg, rules, ingest.Writers{Dossiers: dossiers, Cameras: cameras, Readings: readings, Feedback: feedback},
		devices, prometheus.NewRegistry())
}
