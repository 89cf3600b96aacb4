package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/chstore"
)

// item is one event to store: event i of a dossier, with its change.
type item struct {
	p     *plan
	i     int32
	delta []dossier.Contribution
}

type loadConfig struct {
	events    int64
	seed      uint64
	batch     int
	inserters int
	logEvery  int64
	// via is how the events are stored: "direct" (derived here, stored
	// with ingest.StoreDerived) or "import" (through iocd import).
	via string
	// noDeltas leaves each event's change underived: iocd import derives
	// it.
	noDeltas bool
}

// generator names the data and how it was stored, as bench_meta records it.
func (c loadConfig) generator() string { return generatorVersion + "/" + c.via }

// loaded says whether the database holds exactly what cfg would load.
func loaded(ctx context.Context, conn driver.Conn, db string, cfg loadConfig) (bool, error) {
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'bench_meta'", db).Scan(&n); err != nil {
		return false, err
	}
	if n == 0 {
		return false, nil
	}
	var events, seed uint64
	var gen string
	err := conn.QueryRow(ctx, "SELECT events, seed, generator FROM "+db+".bench_meta ORDER BY loaded_at DESC LIMIT 1").Scan(&events, &seed, &gen)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if int64(events) != cfg.events || seed != cfg.seed || gen != cfg.generator() {
		return false, nil
	}
	var stored uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".dossier_history").Scan(&stored); err != nil {
		return false, err
	}
	return int64(stored) == cfg.events, nil
}

// prepareDatabase empties the bench database for a fresh load: it drops it,
// but only when iocbench made it (a bench_meta table) or it holds no
// dossier events, so that a wrong -db never wipes real data.
func prepareDatabase(ctx context.Context, conn driver.Conn, db string) error {
	var tables uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ?", db).Scan(&tables); err != nil {
		return err
	}
	if tables > 0 {
		var meta, events uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'bench_meta'", db).Scan(&meta); err != nil {
			return err
		}
		if meta == 0 {
			var has uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'dossier_history'", db).Scan(&has); err != nil {
				return err
			}
			if has > 0 {
				if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".dossier_history").Scan(&events); err != nil {
					return err
				}
			}
			if events > 0 {
				return fmt.Errorf("database %s holds %d dossier events that iocbench did not load: pick another -db", db, events)
			}
		}
	}
	return conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
}

// load draws the dossiers and stores exactly cfg.events of their events, in
// time order, through the writer's row layout.
func load(ctx context.Context, store *chstore.Store, u *universe, cfg loadConfig, logger *slog.Logger) (time.Duration, error) {
	conn := store.Conn()
	t0 := time.Now()
	n := u.dossiersFor(cfg.events)
	logger.Info("drawing dossiers", "dossiers", n, "events", cfg.events, "took", time.Since(t0).Round(time.Millisecond))

	// Current releases refuse an insert that spans more than 100 partitions
	// unless told otherwise; a batch's changes reach back and forth by the
	// dossiers' lifetimes, over the daily partitions of the minute rollup.
	insertCtx := ctx
	var known uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.settings WHERE name = 'max_partitions_per_insert_block'").Scan(&known); err != nil {
		return 0, err
	}
	if known > 0 {
		insertCtx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_partitions_per_insert_block": 0}))
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	batches := make(chan []item, cfg.inserters)
	var inserted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	ingestedAt := start.UTC().Truncate(time.Second)
	var logMu sync.Mutex
	nextLog := cfg.logEvery
	for range cfg.inserters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if ctx.Err() != nil {
					continue
				}
				if err := insert(insertCtx, store, b, ingestedAt); err != nil {
					cancel(err)
					continue
				}
				done := inserted.Add(int64(len(b)))
				logMu.Lock()
				for done >= nextLog {
					el := time.Since(start)
					logger.Info("loaded", "events", nextLog, "elapsed", el.Round(time.Second),
						"events_per_s", int(float64(done)/el.Seconds()))
					nextLog += cfg.logEvery
				}
				logMu.Unlock()
			}
		}()
	}

	err := produce(ctx, u, n, cfg, batches)
	close(batches)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return 0, cause
	}
	if err != nil {
		return 0, err
	}
	if got := inserted.Load(); got != cfg.events {
		return 0, fmt.Errorf("stored %d events, want %d", got, cfg.events)
	}
	return time.Since(start), nil
}

// recordLoad notes in bench_meta what was loaded, so that a rerun skips
// the load.
func recordLoad(ctx context.Context, conn driver.Conn, db string, u *universe, cfg loadConfig, took time.Duration) error {
	n := u.dossiersFor(cfg.events)
	if err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+db+`.bench_meta (
		events UInt64, seed UInt64, generator String, dossiers UInt64, load_seconds Float64, loaded_at DateTime('UTC')
	) ENGINE = MergeTree ORDER BY loaded_at`); err != nil {
		return err
	}
	meta, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".bench_meta (events, seed, generator, dossiers, load_seconds, loaded_at)")
	if err != nil {
		return err
	}
	if err := meta.Append(uint64(cfg.events), cfg.seed, cfg.generator(), uint64(n), took.Seconds(), time.Now().UTC()); err != nil {
		return err
	}
	if err := meta.Send(); err != nil {
		return fmt.Errorf("insert into bench_meta: %w", err)
	}
	return nil
}

// produce draws the dossiers day by day and hands the events, in time
// order, to the inserters in batches, until cfg.events.
func produce(ctx context.Context, u *universe, n int64, cfg loadConfig, out chan<- []item) error {
	src := rand.NewPCG(0, 0)
	r := rand.New(src)
	buckets := make([][]item, dataDays)
	workers := runtime.GOMAXPROCS(0)
	remaining := cfg.events
	batch := make([]item, 0, cfg.batch)
	for d := 0; d < dataDays && remaining > 0; d++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		lo, hi := u.dayRange(n, d)
		for idx := lo; idx < hi; idx++ {
			p := u.newPlan(src, r, idx, d, nil)
			p.materialize()
			pp := &p
			for i, e := range p.events {
				b := int(e.OccurredAt.Sub(dataStart) / (24 * time.Hour))
				buckets[b] = append(buckets[b], item{p: pp, i: int32(i)})
			}
		}
		items := buckets[d]
		buckets[d] = nil
		sortItems(items)
		// Each dossier's events go to one worker, in order.
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range items {
					if it := &items[k]; !cfg.noDeltas && it.p.idx%int64(workers) == int64(w) {
						it.delta = it.p.delta(int(it.i))
					}
				}
			}()
		}
		wg.Wait()
		if int64(len(items)) > remaining {
			items = items[:remaining]
		}
		remaining -= int64(len(items))
		for len(items) > 0 {
			k := min(cfg.batch-len(batch), len(items))
			batch = append(batch, items[:k]...)
			items = items[k:]
			if len(batch) == cfg.batch || (remaining == 0 && len(items) == 0) {
				select {
				case out <- batch:
				case <-ctx.Done():
					return ctx.Err()
				}
				batch = make([]item, 0, cfg.batch)
			}
		}
	}
	if len(batch) > 0 {
		out <- batch
	}
	if remaining > 0 {
		return fmt.Errorf("the dossiers drawn stored %d events too few", remaining)
	}
	return nil
}

func insert(ctx context.Context, store *chstore.Store, items []item, ingestedAt time.Time) error {
	rows := make([]ingest.Derived, len(items))
	for i, it := range items {
		r := it.p.row(int(it.i))
		r.Hierarchy = hierarchyName
		rows[i] = ingest.Derived{Record: r, Delta: it.delta}
	}
	if err := ingest.StoreDerived(ctx, store, rows, ingestedAt); err != nil {
		return fmt.Errorf("store a batch of the load: %w", err)
	}
	return nil
}
