package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/simulator"
)

// historySeed fixes the simulated history: the same province gets the same
// past on every machine, and a history written twice is found stored.
const historySeed = 79

// simHistory writes the simulated province's past, before the simulators
// start, into a database that holds no dossier event at all; a database
// with any (a restart, real data) is left alone. The node is not ready
// meanwhile: a screen opened during the backfill would see the figures of
// weeks jump as their days land, and make run prints its URL only once the
// wall has something true to show.
//
// The records go through the import path of iocd import, with writers of
// their own beside the node's (the same leases, journal, reconciler and
// live figures, which they tell of what they add), so that they take their
// turn with live ingest and the figures stay exact; camera detections of
// the past do not scroll through the live ticker.
type simHistory struct {
	days    int
	cfg     serveConfig
	store   *chstore.Store
	leases  ingest.Leaser
	recover *ingest.Reconciler
	agg     *aggregate.Aggregator
	units   *geo.Registry
	h       *geo.Hierarchy
	devices *device.Registry
	loc     *time.Location
	indexed <-chan struct{} // closed once the spatial index that places readings is built
	logger  *slog.Logger
	stage   atomic.Int32 // what run is doing: looking, writing, done
}

// Stages of simHistory.run.
const (
	historyLooking = iota // whether the database holds dossier events
	historyWriting
	historyDone
)

// ready is the node's readiness check while the history is written.
func (s *simHistory) ready(context.Context) error {
	switch s.stage.Load() {
	case historyLooking:
		return api.NotReady("looking for dossier events in the database, to write the simulator's history into an empty one")
	case historyWriting:
		return api.NotReady(fmt.Sprintf("writing %d days of simulated history before the simulator starts (about half a minute at IOC_SIMULATE=20, "+
			"logged by the simulator component; IOC_SIMULATE_HISTORY_DAYS=0 skips it)", s.days))
	}
	return nil
}

// historyConfig is the history of the simulated province as the simulators
// of cfg see it, ending at end.
func historyConfig(cfg serveConfig, h *geo.Hierarchy, loc *time.Location, end time.Time) (simulator.HistoryConfig, error) {
	province, areas, err := simulatorAreas(cfg, h)
	if err != nil {
		return simulator.HistoryConfig{}, err
	}
	hc := simulator.HistoryConfig{End: end, Days: cfg.SimulateHistoryDays, Rate: cfg.Simulate, Areas: areas, ProvinceArea: province,
		Location: loc, Seed: historySeed}
	if cfg.SimulateDevices {
		dc, err := deviceConfig(cfg, h, loc)
		if err != nil {
			return simulator.HistoryConfig{}, err
		}
		hc.Devices = &dc
	}
	return hc, nil
}

// run writes the history when the database has no dossier event and
// returns what the live simulator is to continue (nil when it wrote
// nothing). It tries again while storage fails, until ctx ends. Whatever
// the outcome, the node is ready afterwards: the history is a picture of
// the past, and the live simulator runs without it.
func (s *simHistory) run(ctx context.Context) *simulator.Carry {
	defer s.stage.Store(historyDone)
	select {
	case <-s.indexed:
	case <-ctx.Done():
		return nil
	}
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		stored, err := ingest.AnyDossierEvent(ctx, s.store)
		if err == nil && stored {
			s.logger.Info("the database holds dossier events: no simulated history is written")
			return nil
		}
		if err == nil {
			break
		}
		s.logger.Warn("cannot tell whether the database holds dossier events; will ask again", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	s.stage.Store(historyWriting)
	hc, err := historyConfig(s.cfg, s.h, s.loc, s.cfg.clock()())
	if err != nil {
		s.logger.Error("no simulated history", "err", err)
		return nil
	}
	history, err := simulator.NewHistory(hc)
	if err != nil {
		s.logger.Error("no simulated history", "err", err)
		return nil
	}
	carry, err := s.write(ctx, history)
	switch {
	case ctx.Err() != nil:
		s.logger.Warn("stopped while writing the simulated history; the days written stay, and a restart, finding dossier events, writes no more",
			"err", err)
		return nil
	case err != nil:
		s.logger.Error("the simulated history could not be written whole", "err", err)
		return nil
	}
	return carry
}

// write stores history through an import of each kind, with writers of its
// own running meanwhile.
func (s *simHistory) write(ctx context.Context, history *simulator.History) (*simulator.Carry, error) {
	logger := s.logger
	ingestLogger := logger.With("part", "history")
	// Each chunk is one batch (as in iocd import), and rows of minute
	// rollups of days those no longer keep are left out.
	batch := ingest.BatchConfig{MaxRows: 1, QueueRows: simulator.HistoryQueueRows, FlushTimeout: s.cfg.FlushTimeout,
		HistoryEvents: s.cfg.HistoryEvents, SkipExpired: true}
	deps := ingest.WriterDeps{Store: s.store, Leases: s.leases, Recover: s.recover, Notify: s.agg, Logger: ingestLogger}
	dirty := func(areas []string) { s.agg.MarkDirty(s.cfg.Hierarchy, areas) }
	dossiers, err := ingest.NewWriter(batch, deps)
	if err != nil {
		return nil, err
	}
	cameras, err := ingest.NewCameraWriter(batch, deps, func(rows []ingest.CameraEvent) {
		dirty(areasOf(rows, func(e ingest.CameraEvent) string { return e.AreaCode }))
	})
	if err != nil {
		return nil, err
	}
	readings, err := ingest.NewReadingWriter(batch, deps, func(rows []ingest.Reading) {
		dirty(areasOf(rows, func(r ingest.Reading) string { return r.AreaCode }))
	})
	if err != nil {
		return nil, err
	}
	feedback, err := ingest.NewFeedbackWriter(batch, deps)
	if err != nil {
		return nil, err
	}
	svc := ingest.NewService(ingest.ServiceConfig{WaitTimeout: 2*s.cfg.FlushTimeout*(simulator.HistoryInFlight+1) + time.Minute, Location: s.loc},
		ingest.Rules{Hierarchy: s.cfg.Hierarchy, Areas: s.units, MaxFuture: s.cfg.MaxFuture, Places: s.h, Devices: s.devices},
		ingest.Writers{Dossiers: dossiers, Cameras: cameras, Readings: readings, Feedback: feedback}, s.devices, ingestLogger, nil)
	var sinks simulator.HistorySinks
	for kind, sink := range map[string]*simulator.Importer{ingest.KindDossiers: &sinks.Dossiers, ingest.KindFeedback: &sinks.Feedback,
		ingest.KindCameraEvents: &sinks.Cameras, ingest.KindSensorReadings: &sinks.Readings} {
		imp, err := svc.Import(kind)
		if err != nil {
			return nil, err
		}
		*sink = imp
	}

	// The writers run until every chunk is answered; stopping them flushes
	// what they hold.
	wctx, stopWriters := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{dossiers.Run, cameras.Run, readings.Run, feedback.Run} {
		wg.Go(func() { _ = run(wctx) })
	}
	stats, carry, err := history.Write(ctx, sinks, logger)
	stopWriters()
	wg.Wait()
	if err == nil && stats.Refused.Total() > 0 {
		err = fmt.Errorf("%d records were refused (their reasons are logged above)", stats.Refused.Total())
	}
	if err != nil {
		return nil, err
	}
	return carry, nil
}

// clock is the simulators' clock.
func (c serveConfig) clock() func() time.Time {
	if c.now != nil {
		return c.now
	}
	return time.Now
}
