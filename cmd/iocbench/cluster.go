package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/devservices"
	"github.com/openioc/ioc/internal/lease"
)

// iocbench cluster measures what a ClickHouse cluster costs: the project's
// writer (path c of iocbench ingest: lookup, derivation, journal, raw rows,
// rollups) storing the same kind of dossier events, filed in two provinces
// that live on different shards, into
//
//	one    one ClickHouse server, as make run has it: the baseline
//	2x1    a cluster of two shards of one replica (sharding alone)
//	2x2    a cluster of two shards of two replicas (sharding and replication)
//
// all running at once on this machine, with one ZooKeeper, in -rounds
// rounds whose targets run one after the other (the order turning each
// round). It prints events/s and the ratios to one server per round, then
// checks that every target holds each event once and that its rollups
// equal its records (iocd verify's check, shard by shard), and asks each
// the same analyst questions of the rollups through its Distributed tables
// (received dossiers by commune and day; the top communes): the answers
// must be equal, and their latency is printed. On one
// machine a cluster cannot be faster: the point is the overhead, and that
// the figures stay exact.
type clusterOptions struct {
	events, rounds, clients, body, runs int
	dir                                 string
}

// clusterTarget is one of the stores measured.
type clusterTarget struct {
	name  string
	store *chstore.Store
}

func runCluster(args []string) error {
	var o clusterOptions
	f := flag.NewFlagSet("iocbench cluster", flag.ContinueOnError)
	f.IntVar(&o.events, "events", 60_000, "dossier events per target and round")
	f.IntVar(&o.rounds, "rounds", 3, "rounds; the ratios are per round")
	f.IntVar(&o.clients, "clients", 8, "writer goroutines")
	f.IntVar(&o.body, "body", 1000, "events per write")
	f.IntVar(&o.runs, "runs", 20, "timed runs of each analyst question on each target")
	f.StringVar(&o.dir, "dir", "", "directory for the servers (default: a temporary one, removed)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if o.events < o.body {
		return fmt.Errorf("-events must be at least -body")
	}
	ctx := context.Background()
	cleanup, err := scratchDir(&o.dir, "iocbench-cluster-")
	if err != nil {
		return err
	}
	defer cleanup()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// The servers: one, then ZooKeeper and both clusters, on one ZooKeeper
	// (the clusters' databases differ, so do their tables' paths).
	ch, err := devservices.StartClickHouse(ctx, devservices.Options{Dir: filepath.Join(o.dir, "one")})
	if err != nil {
		return err
	}
	defer ch.Stop()
	zk, err := devservices.StartZooKeeper(ctx, devservices.Options{Dir: filepath.Join(o.dir, "zookeeper")})
	if err != nil {
		return err
	}
	defer zk.Stop()
	var targets []clusterTarget
	one, err := chstore.Open(ctx, chstore.Config{Addr: ch.Addr, Database: "bench_one"}, logger)
	if err != nil {
		return err
	}
	defer one.Close()
	targets = append(targets, clusterTarget{"one", one})
	for _, c := range []struct {
		name     string
		replicas int
	}{{"2x1", 1}, {"2x2", 2}} {
		cl, err := devservices.StartClickHouseCluster(ctx, devservices.ClusterOptions{Dir: filepath.Join(o.dir, c.name),
			Name: "c" + strings.ReplaceAll(c.name, "x", "_"), Shards: 2, Replicas: c.replicas, ZooKeeper: []string{zk.Addr}})
		if err != nil {
			return err
		}
		defer cl.Stop()
		s, err := chstore.Open(ctx, chstore.Config{Addr: strings.Join(cl.Addrs(), ","), Database: "bench_" + strings.ReplaceAll(c.name, "x", "_"),
			Cluster: cl.Name}, logger)
		if err != nil {
			return err
		}
		defer s.Close()
		targets = append(targets, clusterTarget{c.name, s})
	}
	for _, t := range targets {
		start := time.Now()
		if _, err := t.store.Migrate(ctx); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		fmt.Printf("  %-4s schema in %s\n", t.name, time.Since(start).Round(10*time.Millisecond))
	}

	places, err := newBenchPlaces()
	if err != nil {
		return err
	}
	reg, err := geo.Builtin()
	if err != nil {
		return err
	}
	h, _ := reg.Hierarchy(hierarchyName)
	// Dossiers of Ho Chi Minh City (79) and Hanoi (01): two shards.
	places.communes = append(slices.Clone(places.communes), h.ChildCodes("01")...)
	if chstore.ShardOf("79", 2) == chstore.ShardOf("01", 2) {
		return fmt.Errorf("provinces 79 and 01 share a shard: choose two that do not")
	}
	leases := lease.NewLocal()
	dossiers := benchKinds[0]

	fmt.Printf("cluster: %d dossier events per target and round, %d rounds, %d writers of %d events, ClickHouse %s, %s\n",
		o.events, o.rounds, o.clients, o.body, clickhouseVersion(ctx, one), cpuModel())
	eps := map[string][]float64{}
	run := fmt.Sprint(time.Now().Unix())
	for round := 1; round <= o.rounds; round++ {
		order := slices.Clone(targets)
		for range round - 1 {
			order = append(order[1:], order[0])
		}
		// The same records for every target (each its own database), so
		// that their answers must be equal.
		recs := makeRecords(dossiers, places, fmt.Sprintf("c%s-r%d-", run, round), o.events, time.Now())
		for _, t := range order {
			took, err := writeSharded(ctx, t.store, h, leases, logger, recs, o)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round, t.name, err)
			}
			v := float64(o.events) / took.Seconds()
			eps[t.name] = append(eps[t.name], v)
			fmt.Printf("  round %d %-4s %9.0f events/s\n", round, t.name, v)
		}
	}

	// Exact on every target: each event once, every rollup equal to its
	// records, shard by shard.
	want := uint64(o.events * o.rounds)
	for _, t := range targets {
		var n, distinct uint64
		if err := t.store.Conn().QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM "+t.store.Database()+".dossier_history FINAL").Scan(&n, &distinct); err != nil {
			return fmt.Errorf("%s: count the stored events: %w", t.name, err)
		}
		if n != want || distinct != want {
			return fmt.Errorf("%s holds %d events (%d distinct), want %d", t.name, n, distinct, want)
		}
		cells, err := verifyShards(ctx, t.store)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		fmt.Printf("exact: %s holds each of the %d events once, and %d rollup cells equal what its records give\n", t.name, want, cells)
	}

	fmt.Println()
	fmt.Println("| target | events/s, round by round | mean | ÷ one server |")
	fmt.Println("| --- | --- | ---: | ---: |")
	for _, t := range targets {
		var rs []string
		for _, v := range eps[t.name] {
			rs = append(rs, fmt.Sprintf("%.0f", v))
		}
		fmt.Printf("| %s | %s | %.0f | %.2f |\n", t.name, strings.Join(rs, ", "), mean(eps[t.name]), mean(eps[t.name])/mean(eps["one"]))
	}
	return clusterQuestions(ctx, targets, o.runs)
}

// writeSharded stores recs into store through a writer per shard, each
// event to its province's shard, as a node does, and returns how long it
// took.
func writeSharded(ctx context.Context, store *chstore.Store, h *geo.Hierarchy, leases ingest.Leaser, logger *slog.Logger,
	recs *records, o clusterOptions) (time.Duration, error) {
	shards := store.Shards()
	if shards == nil {
		shards = []*chstore.Store{store}
	}
	var sinks []ingest.Sink[ingest.Dossier]
	var runs []func(context.Context) error
	for _, s := range shards {
		w, err := ingest.NewWriter(ingest.BatchConfig{}, ingest.WriterDeps{Store: s, Leases: leases, Logger: logger})
		if err != nil {
			return 0, err
		}
		sinks = append(sinks, w)
		runs = append(runs, w.Run)
	}
	route := ingest.NewShards(sinks, func(d ingest.Dossier) string { return h.Root(d.AreaCode) })
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{}, len(runs))
	for _, run := range runs {
		go func() { _ = run(wctx); done <- struct{}{} }()
	}
	start := time.Now()
	err := spread(o.clients, recs.n, o.body, func(from, to int) error {
		out, err := route.Write(ctx, recs.dossie[from:to])
		if err == nil && (out.Duplicates > 0 || len(out.Conflicts) > 0) {
			err = fmt.Errorf("the writer found %d duplicates and %d conflicts among new records", out.Duplicates, len(out.Conflicts))
		}
		return err
	})
	took := time.Since(start)
	stop()
	for range runs {
		<-done
	}
	return took, err
}

// verifyShards checks every rollup of each shard against its records and
// returns the cells compared.
func verifyShards(ctx context.Context, store *chstore.Store) (int, error) {
	shards := store.Shards()
	if shards == nil {
		shards = []*chstore.Store{store}
	}
	cells := 0
	for i, s := range shards {
		v, err := ingest.NewVerifier(s)
		if err != nil {
			return 0, err
		}
		checks, err := v.Check(ctx, ingest.VerifyOptions{From: time.Now().Add(-3 * time.Hour), To: time.Now().Add(time.Hour)})
		if err != nil {
			return 0, fmt.Errorf("verify shard %d: %w", i+1, err)
		}
		for _, c := range checks {
			if len(c.Differences) > 0 {
				return 0, fmt.Errorf("shard %d: %d cells of %s differ from the records", i+1, len(c.Differences), c.Table)
			}
			cells += c.Cells
		}
	}
	return cells, nil
}

// clusterQuestions asks each target the same questions of the rollups,
// through its Distributed tables on a cluster, checks that the answers are
// equal, and prints their latency.
func clusterQuestions(ctx context.Context, targets []clusterTarget, runs int) error {
	// A rollup row whose measures sum to zero is kept or merged away as a
	// server's merges happen to run: the answers leave such groups out.
	questions := []struct{ name, sql string }{
		{"received by commune and day", `SELECT toString(area_code), toString(d), toString(sum(received)) FROM {db}.dossier_flow_day
			WHERE hierarchy = 'vn-2025' GROUP BY area_code, d HAVING sum(received) != 0 ORDER BY area_code, d`},
		{"top 20 communes by received", `SELECT toString(area_code), toString(sum(received) AS r), toString(sum(resolved)) FROM {db}.dossier_flow_day
			WHERE hierarchy = 'vn-2025' GROUP BY area_code ORDER BY r DESC, area_code LIMIT 20`},
	}
	fmt.Println()
	fmt.Println("| question | target | p50 | p95 | answer |")
	fmt.Println("| --- | --- | ---: | ---: | --- |")
	for _, q := range questions {
		var first string
		for _, t := range targets {
			sql := strings.ReplaceAll(q.sql, "{db}", t.store.Database())
			var times []time.Duration
			var answer string
			for i := 0; i <= runs; i++ {
				start := time.Now()
				a, err := answerOf(ctx, t.store, sql)
				if err != nil {
					return fmt.Errorf("%s on %s: %w", q.name, t.name, err)
				}
				if i == 0 {
					answer = a // the first run warms the caches; it is not timed
					continue
				}
				times = append(times, time.Since(start))
			}
			same := "the baseline"
			if first == "" {
				first = answer
			} else if answer != first {
				return fmt.Errorf("%s: %s answers differently from one server:\n%s", q.name, t.name, firstDifference(first, answer))
			} else {
				same = "equal"
			}
			slices.Sort(times)
			fmt.Printf("| %s | %s | %s | %s | %s |\n", q.name, t.name, times[len(times)/2].Round(100*time.Microsecond),
				times[len(times)*95/100].Round(100*time.Microsecond), same)
		}
	}
	return nil
}

// answerOf is the rows of a query of three text columns, as text.
func answerOf(ctx context.Context, store *chstore.Store, sql string) (string, error) {
	rows, err := store.Conn().Query(ctx, sql)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var x, y, z string
		if err := rows.Scan(&x, &y, &z); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\n", x, y, z)
	}
	return b.String(), rows.Err()
}

// firstDifference shows the first line where two answers part.
func firstDifference(a, b string) string {
	as, bs := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(as), len(bs)) {
		var x, y string
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		if x != y {
			return fmt.Sprintf("line %d: one server %q, this one %q (%d and %d lines)", i+1, x, y, len(as), len(bs))
		}
	}
	return ""
}
