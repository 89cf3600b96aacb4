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
	"github.com/openioc/ioc/simulator"
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
// It then hands the live simulator what it carries on: the written
// history's Carry; at field pace, when it wrote none, the history as the
// database holds it (stored by an earlier run and carried on since), from
// its last stored event, so that a restart fills the time the node was
// away (at most simulator.FieldCatchUp of it) and today goes on from there.
//
// The records go through the import path of iocd import, with writers of
// their own beside the node's (the same leases, journal, reconciler and
// live figures, which they tell of what they add), so that they take their
// turn with live ingest and the figures stay exact; camera detections of
// the past do not scroll through the live ticker.
type simHistory struct {
	days    int // to write into an empty database; 0: none
	pace    simulator.Pace
	cfg     serveConfig
	store   *chstore.Store
	leases  leaseSet
	shards  []*ingestShard // their stores and reconcilers
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
// returns what the live simulator is to continue: the written history's
// Carry, or at field pace, when none was written, the stored history's
// (see resume); nil when there is nothing to continue or ctx ended. It
// tries again while storage fails, until ctx ends. Whatever the outcome,
// the node is ready afterwards: the history is a picture of the past, and
// the live simulator runs without it.
func (s *simHistory) run(ctx context.Context) *simulator.Carry {
	defer s.stage.Store(historyDone)
	select {
	case <-s.indexed:
	case <-ctx.Done():
		return nil
	}
	var stored bool
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		var err error
		if stored, err = ingest.AnyDossierEvent(ctx, s.store); err == nil {
			break
		}
		s.logger.Warn("cannot tell whether the database holds dossier events; will ask again", "err", err, "retry_in", wait)
		if !sleepCtx(ctx, wait) {
			return nil
		}
	}
	switch {
	case stored && s.days > 0:
		s.logger.Info("the database holds dossier events: no simulated history is written")
	case !stored && s.days > 0:
		if carry := s.writeHistory(ctx); carry != nil || ctx.Err() != nil {
			return carry
		}
	}
	if s.pace != simulator.PaceField {
		return nil
	}
	s.stage.Store(historyDone)
	return s.resume(ctx)
}

// writeHistory writes the history up to now and returns its Carry, or nil
// when it could not be written whole.
func (s *simHistory) writeHistory(ctx context.Context) *simulator.Carry {
	s.stage.Store(historyWriting)
	history, err := s.history(s.cfg.clock()(), s.cfg.SimulateHistoryDays, true)
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

// history is the simulated history ending at end over days days, with
// the devices' reports when devices is set.
func (s *simHistory) history(end time.Time, days int, devices bool) (*simulator.History, error) {
	hc, err := historyConfig(s.cfg, s.h, s.loc, end)
	if err != nil {
		return nil, err
	}
	hc.Days = days
	if !devices {
		hc.Devices = nil
	}
	return simulator.NewHistory(hc)
}

// resume is the Carry of the simulated history as the database holds it,
// for the live simulator at field pace: found stored from its first to its
// last dossier event (by the history's event ids), the history over those
// days is generated again (a History's records depend on its seed, days
// and volume alone: IOC_SIMULATE changed since makes another) and carried
// on from the last one stored, so that the
// simulator sends first what the history holds for the time the node was
// away, at most simulator.FieldCatchUp of it, the rest being left a gap.
// With none stored (no history asked, or a database of other data) the
// history is carried on from now, with only the dossiers received from
// now on.
func (s *simHistory) resume(ctx context.Context) *simulator.Carry {
	now := s.cfg.clock()()
	probe, err := s.history(now, 1, false)
	if err != nil {
		s.logger.Error("the simulator cannot carry the simulated history on", "err", err)
		return nil
	}
	var first, last time.Time
	var found bool
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		if first, last, found, err = ingest.DossierEventSpan(ctx, s.store, probe.EventPrefix()); err == nil {
			break
		}
		s.logger.Warn("cannot tell how far the stored simulated history reaches; will ask again", "err", err, "retry_in", wait)
		if !sleepCtx(ctx, wait) {
			return nil
		}
	}
	if !found {
		s.logger.Info("no simulated history in the database: the simulator carries the history's model on from now")
		return probe.CarryOn(time.Time{})
	}
	from := last
	if gap := now.Sub(last); gap > simulator.FieldCatchUp {
		from = now.Add(-simulator.FieldCatchUp)
		s.logger.Warn("the stored simulated history stops long before now: the simulator fills only the last part of the gap",
			"stored_until", last.In(s.loc).Format(time.RFC3339), "gap", gap.Round(time.Minute), "filled", simulator.FieldCatchUp)
	}
	days := localDay(from, s.loc) - localDay(first, s.loc)
	history, err := s.history(from, min(max(days, 1), simulator.MaxHistoryDays), false)
	if err != nil {
		s.logger.Error("the simulator cannot carry the simulated history on", "err", err)
		return nil
	}
	began := time.Now()
	carry := history.CarryOn(last)
	events, states := carry.Len()
	s.logger.Info("carrying on the simulated history found in the database", "stored_from", first.In(s.loc).Format(time.RFC3339),
		"stored_until", last.In(s.loc).Format(time.RFC3339), "carried_events", events, "carried_feedback", states,
		"elapsed", time.Since(began).Round(time.Millisecond))
	return carry
}

// localDay numbers t's local day in loc.
func localDay(t time.Time, loc *time.Location) int {
	y, m, d := t.In(loc).Date()
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// sleepCtx waits d, or less if ctx ends first, and says whether it waited
// all of d.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
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
	d := ingestDeps{cfg: s.cfg, leases: s.leases, agg: s.agg, logger: ingestLogger}
	var writers []shardWriters
	for i, sh := range s.shards {
		w, err := newShardWriters(sh, batch, d.forShard(i, len(s.shards)))
		if err != nil {
			return nil, err
		}
		writers = append(writers, w)
	}
	svc := ingest.NewPipeline(ingest.PipelineConfig{WaitTimeout: 2*s.cfg.FlushTimeout*(simulator.HistoryInFlight+1) + time.Minute, Location: s.loc},
		ingest.Rules{Hierarchy: s.cfg.Hierarchy, Areas: s.units, MaxFuture: s.cfg.MaxFuture, Places: s.h, Devices: s.devices},
		routeWriters(writers, s.units), s.devices, nil)
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
	for _, w := range writers {
		for _, run := range w.runs() {
			wg.Go(func() { _ = run(wctx) })
		}
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
