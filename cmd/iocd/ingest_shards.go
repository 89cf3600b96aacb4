package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/alarm"
	"github.com/openioc/ioc/feed"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/chstore"
)

// ingestShard is what stores records in one shard's tables (on one server,
// in the whole store): the writers, the reconciler that finishes the
// batches they could not, and the checker of their rollups. Each works
// under leases named for its shard, so shards write side by side.
type ingestShard struct {
	store      *chstore.Store
	reconciler *ingest.Reconciler
	checker    *ingest.Checker
	writers    shardWriters
}

// shardWriters are a shard's writer of each kind.
type shardWriters struct {
	dossiers *ingest.Writer
	cameras  *ingest.RecordWriter[ingest.CameraEvent]
	readings *ingest.RecordWriter[ingest.Reading]
	feedback *ingest.RecordWriter[ingest.Feedback]
}

// ingestDeps are what every shard's parts are built from. Alarms and
// events may be nil: the simulator's history tells neither.
type ingestDeps struct {
	cfg    serveConfig
	leases leaseSet
	agg    *aggregate.Aggregator
	alarms *alarm.Engine
	events *feed.Feed
	logger *slog.Logger          // each part adds its component
	reg    prometheus.Registerer // nil: metrics unregistered
}

// forShard labels what a shard's parts log and measure, on a cluster.
func (d ingestDeps) forShard(i int, of int) ingestDeps {
	if of > 1 {
		if d.reg != nil {
			d.reg = prometheus.WrapRegistererWith(prometheus.Labels{"shard": strconv.Itoa(i + 1)}, d.reg)
		}
		d.logger = d.logger.With("shard", i+1)
	}
	return d
}

// newIngestShards builds the parts of each shard of store: one set on one
// server, a set per shard on a cluster, their metrics labelled shard="N".
func newIngestShards(store *chstore.Store, d ingestDeps) ([]*ingestShard, error) {
	stores := store.Shards()
	if stores == nil {
		stores = []*chstore.Store{store}
	}
	cfg := d.cfg
	// A batch another node began is taken for abandoned once its flush
	// (storing its rows, then writing its rollups: each bounded by the
	// flush timeout) must have ended and that node's lease lapsed.
	grace := 2*cfg.FlushTimeout + 2*cfg.LeaseTTL
	verifyEvery := cfg.VerifyInterval
	if verifyEvery == 0 {
		verifyEvery = -1 // off
	}
	batch := ingest.BatchConfig{MaxRows: cfg.BatchRows, MaxAge: cfg.BatchAge, QueueRows: cfg.QueueRows, FlushTimeout: cfg.FlushTimeout,
		HistoryEvents: cfg.HistoryEvents}
	var out []*ingestShard
	for i, s := range stores {
		d := d.forShard(i, len(stores))
		sh := &ingestShard{store: s}
		var err error
		if sh.reconciler, err = ingest.NewReconciler(ingest.ReconcilerConfig{Grace: grace}, s, d.leases, d.agg, d.logger.With("component", "reconcile"), d.reg); err != nil {
			return nil, err
		}
		if sh.checker, err = ingest.NewChecker(ingest.CheckerConfig{Interval: verifyEvery}, s, d.leases, d.logger.With("component", "verify"), d.reg); err != nil {
			return nil, err
		}
		if sh.writers, err = newShardWriters(sh, batch, d); err != nil {
			return nil, err
		}
		out = append(out, sh)
	}
	return out, nil
}

// newShardWriters builds a writer of each kind for the shard, which its
// reconciler backs.
func newShardWriters(sh *ingestShard, batch ingest.BatchConfig, d ingestDeps) (shardWriters, error) {
	var w shardWriters
	deps := ingest.WriterDeps{Store: sh.store, Leases: d.leases, Recover: sh.reconciler, Notify: d.agg,
		Logger: d.logger.With("component", "ingest"), Registerer: d.reg}
	dirty := func(areas []string) {
		d.agg.MarkDirty(d.cfg.Hierarchy, areas)
		if d.alarms != nil {
			d.alarms.MarkDirty()
		}
	}
	var err error
	if w.dossiers, err = ingest.NewWriter(batch, deps); err != nil {
		return w, err
	}
	// A report brings its device online: the device counts of its unit are
	// read again.
	if w.cameras, err = ingest.NewCameraWriter(batch, deps, func(rows []ingest.CameraEvent) {
		dirty(areasOf(rows, func(e ingest.CameraEvent) string { return e.AreaCode }))
		if d.events != nil {
			d.events.Add(rows)
		}
	}); err != nil {
		return w, err
	}
	if w.readings, err = ingest.NewReadingWriter(batch, deps, func(rows []ingest.Reading) {
		dirty(areasOf(rows, func(r ingest.Reading) string { return r.AreaCode }))
	}); err != nil {
		return w, err
	}
	w.feedback, err = ingest.NewFeedbackWriter(batch, deps)
	return w, err
}

// runs are the writers' Run, for their owner to run.
func (w shardWriters) runs() []func(context.Context) error {
	return []func(context.Context) error{w.dossiers.Run, w.cameras.Run, w.readings.Run, w.feedback.Run}
}

// settleZone cuts the local day and month rollups again when IOC_TIMEZONE
// changed since they were cut: after finishing each shard's unfinished
// batches, whose missing parts a rebuild from the records would otherwise
// count twice.
func settleZone(ctx context.Context, store *chstore.Store, shards []*ingestShard) error {
	was, err := store.SettleZone(ctx)
	if err != nil {
		return err
	}
	if was != "" {
		for _, sh := range shards {
			if _, err := sh.reconciler.Finish(ctx); err != nil {
				return fmt.Errorf("finish unfinished batches before cutting the rollups in %s: %w", store.TimeZone(), err)
			}
			v, err := ingest.NewVerifier(sh.store)
			if err != nil {
				return err
			}
			if err := v.Rebuild(ctx); err != nil {
				return err
			}
		}
	}
	return store.RecordZone(ctx)
}

// routeWriters routes each kind of record to the writer of its shard, by
// the province of its unit; a kind whose writers are nil (an import takes
// one kind) stays nil.
func routeWriters(ws []shardWriters, units *geo.Registry) ingest.Writers {
	province := shardKey(units)
	var sinks struct {
		dossiers []ingest.Sink[ingest.Dossier]
		cameras  []ingest.Sink[ingest.CameraEvent]
		readings []ingest.Sink[ingest.Reading]
		feedback []ingest.Sink[ingest.Feedback]
	}
	for _, w := range ws {
		if w.dossiers != nil {
			sinks.dossiers = append(sinks.dossiers, w.dossiers)
		}
		if w.cameras != nil {
			sinks.cameras = append(sinks.cameras, w.cameras)
		}
		if w.readings != nil {
			sinks.readings = append(sinks.readings, w.readings)
		}
		if w.feedback != nil {
			sinks.feedback = append(sinks.feedback, w.feedback)
		}
	}
	var out ingest.Writers
	if sinks.dossiers != nil {
		out.Dossiers = ingest.NewShards(sinks.dossiers, func(r ingest.Dossier) string { return province(r.Hierarchy, r.AreaCode) })
	}
	if sinks.cameras != nil {
		out.Cameras = ingest.NewShards(sinks.cameras, func(r ingest.CameraEvent) string { return province(r.Hierarchy, r.AreaCode) })
	}
	if sinks.readings != nil {
		out.Readings = ingest.NewShards(sinks.readings, func(r ingest.Reading) string { return province(r.Hierarchy, r.AreaCode) })
	}
	if sinks.feedback != nil {
		out.Feedback = ingest.NewShards(sinks.feedback, func(r ingest.Feedback) string { return province(r.Hierarchy, r.AreaCode) })
	}
	return out
}

// shardKey names the province of a unit of a hierarchy: the key a record
// is routed to its shard by.
func shardKey(units *geo.Registry) func(hierarchy, area string) string {
	return func(hierarchy, area string) string {
		if h, ok := units.Hierarchy(hierarchy); ok {
			return h.Root(area)
		}
		return area
	}
}

// nodeWriters are the shards' writers that live ingest uses.
func nodeWriters(shards []*ingestShard) []shardWriters {
	out := make([]shardWriters, len(shards))
	for i, sh := range shards {
		out[i] = sh.writers
	}
	return out
}

// ingestParts are the shards' parts in their steps of the shutdown: the
// writers, then the reconcilers and checkers.
func ingestParts(shards []*ingestShard) (writers, reconcilers []part) {
	for i, sh := range shards {
		suffix := ""
		if len(shards) > 1 {
			suffix = fmt.Sprintf(" (shard %d)", i+1)
		}
		w := sh.writers
		writers = append(writers, part{"ingest dossiers" + suffix, w.dossiers.Run}, part{"ingest cameras" + suffix, w.cameras.Run},
			part{"ingest readings" + suffix, w.readings.Run}, part{"ingest feedback" + suffix, w.feedback.Run})
		reconcilers = append(reconcilers, part{"reconcile" + suffix, sh.reconciler.Run}, part{"verify" + suffix, sh.checker.Run})
	}
	return writers, reconcilers
}
