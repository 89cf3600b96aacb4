package ingest

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// TestQueueRoomIsFreeOnceAnswered: a client that keeps exactly QueueRows
// rows in flight, sending the next ones as soon as it is answered (iocd
// import does), is never told the queue is full: the rows of a flush give
// their room back before their requests are answered.
func TestQueueRoomIsFreeOnceAnswered(t *testing.T) {
	flush := func(_ context.Context, rows []int) ([]rowResult, *storedBatch, error) {
		return make([]rowResult, len(rows)), nil, nil
	}
	b := newBatcher(BatchConfig{MaxRows: 1, QueueRows: 3, FlushTimeout: time.Second}, flush, nil, slog.New(slog.DiscardHandler), newWriterMetrics(nil, "test"))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := range 2000 {
		if _, err := b.submit(t.Context(), []int{i, i, i}); err != nil {
			var full *QueueFullError
			if errors.As(err, &full) {
				t.Fatalf("request %d, sent once the one before was answered: %v", i, err)
			}
			t.Fatal(err)
		}
	}
}
