// Package ingesttest stores records through the real ingest writers, so
// that tests see the figures the writers derive, not rows typed by hand.
//
// Concurrency: each call runs its own writer and may run alongside others.
package ingesttest

import (
	"context"
	"log/slog"
	"testing"

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
