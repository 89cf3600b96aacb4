// Package dossierload stores dossier events through the real writer, so
// that tests see the figures the writer derives, not rows typed by hand.
//
// Concurrency: Write may be called from concurrent tests; each call runs
// its own writer.
package dossierload

import (
	"context"
	"log/slog"
	"testing"

	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/clusterlock"
)

// Write stores ds in order, in one batch, and fails t on any error.
func Write(t testing.TB, s *chstore.Store, ds []ingest.Dossier) {
	t.Helper()
	w, err := ingest.NewWriter(ingest.BatchConfig{}, s, clusterlock.NewLocal(), nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if _, err := w.Write(ctx, ds); err != nil {
		t.Fatalf("write dossier events: %v", err)
	}
}
