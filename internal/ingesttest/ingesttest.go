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
	Run(ctx context.Context)
	Write(ctx context.Context, rows []T) (int, error)
}

func write[T any](t testing.TB, w runner[T], rows []T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if _, err := w.Write(ctx, rows); err != nil {
		t.Fatalf("write records: %v", err)
	}
}

// Dossiers stores ds in order, in one batch, and fails t on any error.
func Dossiers(t testing.TB, s *chstore.Store, ds []ingest.Dossier) {
	t.Helper()
	w, err := ingest.NewWriter(ingest.BatchConfig{}, s, lease.NewLocal(), nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	write[ingest.Dossier](t, w, ds)
}

// Feedback stores fs and fails t on any error.
func Feedback(t testing.TB, s *chstore.Store, fs []ingest.Feedback) {
	t.Helper()
	w, err := ingest.NewFeedbackWriter(ingest.BatchConfig{}, s, lease.NewLocal(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	write[ingest.Feedback](t, w, fs)
}
