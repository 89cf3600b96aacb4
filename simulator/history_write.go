package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openioc/ioc/ingest"
)

// Importer takes records of one kind chunk by chunk, as *ingest.Import
// does: each record validated as it is added, the chunk stored as one batch
// of the kind's writer (journal, duplicate check, derivation, rollups).
type Importer interface {
	Chunk(capacity int) *ingest.Chunk
}

// HistorySinks are where Write stores each kind of record. A kind the
// history generates needs its sink: Dossiers always, Feedback unless
// HistoryConfig.Feedback is negative, Cameras and Readings with Devices.
type HistorySinks struct {
	Dossiers, Feedback, Cameras, Readings Importer
}

// How Write stores: chunks of HistoryChunk records, HistoryInFlight of
// them stored at once while the next is generated. A writer behind an
// Importer must queue HistoryQueueRows rows.
const (
	HistoryChunk     = 20000
	HistoryInFlight  = 3
	HistoryQueueRows = HistoryChunk * (HistoryInFlight + 1)
	historyProgress  = 5 * time.Second
	historyLogged    = 3 // refused records logged with their reasons
	// historyStoreTimeout bounds a chunk's store, retried until it lands;
	// one in flight when Write is stopped still gets this long.
	historyStoreTimeout = 2 * time.Minute
)

// HistoryStats is what Write did: the records it generated of each kind,
// and of those the ones stored, found stored already (an earlier write of
// the same history), or refused (the problems are logged).
type HistoryStats struct {
	Generated, Stored, Duplicates, Refused HistoryCounts
	Days                                   int // days written whole
	Elapsed                                time.Duration
}

// Write generates the history day after day and stores it through sinks,
// every kind in time order, logging progress every few seconds. A chunk
// the store fails is sent again until it lands (its records that did land
// count as duplicates then) or ctx ends. It returns once every chunk it
// handed over is answered: with ctx's error if ctx ended first (the days
// after are not written), or nil. The Carry holds what the history's
// dossiers and feedback items do from End on; it is whole only when Write
// returned nil.
//
// Write owns its goroutines (the stores in flight and the progress log)
// and waits for them before it returns.
func (h *History) Write(ctx context.Context, sinks HistorySinks, logger *slog.Logger) (HistoryStats, *Carry, error) {
	switch {
	case sinks.Dossiers == nil:
		return HistoryStats{}, nil, errors.New("simulator: history: no sink for dossier events")
	case sinks.Feedback == nil && h.fbPerDay > 0:
		return HistoryStats{}, nil, errors.New("simulator: history: no sink for feedback: give one, or set Feedback negative")
	case h.fleet != nil && (sinks.Cameras == nil || sinks.Readings == nil):
		return HistoryStats{}, nil, errors.New("simulator: history: no sink for camera events or sensor readings: give both, or no Devices")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	began := time.Now()
	w := &historyWriter{logger: logger, slots: make(chan struct{}, HistoryInFlight)}
	w.kinds = [4]*historyKind{
		{name: "dossier events", imp: sinks.Dossiers, stats: &w.dossiers},
		{name: "feedback", imp: sinks.Feedback, stats: &w.feedback},
		{name: "camera events", imp: sinks.Cameras, stats: &w.cameras},
		{name: "sensor readings", imp: sinks.Readings, stats: &w.readings},
	}
	logger.Info("writing simulated history", "from", h.start.Format(time.DateOnly), "to", h.cfg.End.In(h.cfg.Location).Format(time.RFC3339),
		"days", h.days, "dossiers_a_day", int(h.perDay), "feedback_a_day", int(h.fbPerDay), "devices", h.fleet != nil)

	var done atomic.Int64 // days handed over whole
	stopProgress := make(chan struct{})
	var progress sync.WaitGroup
	progress.Go(func() {
		tick := time.NewTicker(historyProgress)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
				logger.Info("writing simulated history", "days_done", done.Load(), "days", h.days,
					"records_stored", w.stored(), "elapsed", time.Since(began).Round(time.Second))
			}
		}
	})

	g := h.generator()
	var day historyDay
	var buf []byte
	var err error
	for err == nil && g.day(&day) {
		if err = ctx.Err(); err != nil {
			break
		}
		add := func(k *historyKind, rec any) {
			if err != nil {
				return
			}
			if buf, err = appendJSON(buf[:0], rec); err == nil {
				err = w.add(ctx, k, buf)
			}
		}
		for i := range day.dossiers {
			add(w.kinds[0], &day.dossiers[i])
		}
		for i := range day.feedback {
			add(w.kinds[1], &day.feedback[i])
		}
		for i := range day.cameras {
			add(w.kinds[2], &day.cameras[i])
		}
		for i := range day.readings {
			add(w.kinds[3], &day.readings[i])
		}
		if err == nil && !day.lead {
			done.Add(1)
		}
	}
	for _, k := range w.kinds {
		if err == nil && k.chunk != nil {
			err = w.send(ctx, k)
		}
	}
	w.stores.Wait()
	close(stopProgress)
	progress.Wait()

	stats := HistoryStats{Days: int(done.Load()), Elapsed: time.Since(began)}
	for i, c := range []*HistoryCounts{&stats.Generated, &stats.Stored, &stats.Duplicates, &stats.Refused} {
		c.DossierEvents, c.Feedback, c.CameraEvents, c.Readings = w.dossiers.get(i), w.feedback.get(i), w.cameras.get(i), w.readings.get(i)
	}
	if err == nil {
		err = w.failed()
	}
	if err != nil {
		return stats, nil, fmt.Errorf("simulator: history: written %d of %d days: %w", stats.Days, h.days, err)
	}
	dossiers, states := g.carry.Len()
	logger.Info("simulated history written", "days", h.days, "dossier_events", stats.Stored.DossierEvents,
		"feedback", stats.Stored.Feedback, "camera_events", stats.Stored.CameraEvents, "readings", stats.Stored.Readings,
		"already_stored", stats.Duplicates.Total(), "refused", stats.Refused.Total(), "elapsed", stats.Elapsed.Round(time.Millisecond),
		"carried_events", dossiers, "carried_feedback", states)
	return stats, g.carry, nil
}

// appendJSON encodes rec as one JSON object.
func appendJSON(buf []byte, rec any) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return buf, fmt.Errorf("encode a record: %w", err)
	}
	return append(buf, b...), nil
}

// historyWriter fills a chunk per kind and stores full ones, at most
// HistoryInFlight at once. Only Write's goroutine adds and sends; the
// stores update the counts.
type historyWriter struct {
	logger                                *slog.Logger
	kinds                                 [4]*historyKind
	dossiers, feedback, cameras, readings kindStats
	slots                                 chan struct{}
	stores                                sync.WaitGroup
	mu                                    sync.Mutex
	err                                   error // the first store that failed for good
	logged                                int
}

// historyKind is the chunk being filled for one kind.
type historyKind struct {
	name  string
	imp   Importer
	stats *kindStats
	chunk *ingest.Chunk
	n     int
}

// kindStats counts one kind's records: generated, stored, duplicates,
// refused.
type kindStats [4]atomic.Int64

func (s *kindStats) get(i int) int { return int(s[i].Load()) }

func (w *historyWriter) stored() int64 {
	return w.dossiers[1].Load() + w.feedback[1].Load() + w.cameras[1].Load() + w.readings[1].Load()
}

func (w *historyWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// add adds one record to its kind's chunk, sending the chunk once full.
func (w *historyWriter) add(ctx context.Context, k *historyKind, raw []byte) error {
	if k.chunk == nil {
		k.chunk = k.imp.Chunk(HistoryChunk)
	}
	k.chunk.AddJSON(k.n, raw)
	k.n++
	k.stats[0].Add(1)
	if k.n < HistoryChunk {
		return nil
	}
	return w.send(ctx, k)
}

// send hands k's chunk to a store of its own, once a slot is free.
func (w *historyWriter) send(ctx context.Context, k *historyKind) error {
	ch, n := k.chunk, k.n
	k.chunk, k.n = nil, 0
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := w.failed(); err != nil {
		<-w.slots
		return err
	}
	w.stores.Go(func() {
		defer func() { <-w.slots }()
		if err := w.store(ctx, k, ch, n); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	})
	return nil
}

// store stores one chunk of n records of k, again after a failure until it
// lands or ctx ends.
func (w *historyWriter) store(ctx context.Context, k *historyKind, ch *ingest.Chunk, n int) error {
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		// A chunk handed over is stored to its end also when ctx ends:
		// it is then found stored rather than half known.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), historyStoreTimeout)
		out, err := ch.Store(sctx)
		cancel()
		if err == nil {
			k.stats[1].Add(int64(out.Stored))
			k.stats[2].Add(int64(out.Duplicates))
			k.stats[3].Add(int64(len(out.Refused)))
			w.logRefused(k, out.Refused)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("store %d %s: %w", n, k.name, err)
		}
		w.logger.Warn("storing simulated history failed; will try again", "records", n, "kind", k.name,
			"attempt", attempt, "retry_in", backoff, "err", err)
		if !sleep(ctx, backoff) {
			return fmt.Errorf("store %d %s: %w", n, k.name, err)
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// logRefused logs the first records refused: the history is made to pass
// every check, so a refusal is a fault of the generator.
func (w *historyWriter) logRefused(k *historyKind, refused []ingest.RecordError) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range refused {
		if w.logged >= historyLogged {
			return
		}
		w.logged++
		w.logger.Error("a simulated history record was refused", "kind", k.name, "record", r.Index, "reason", r.Error)
	}
}
