package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/devservices"
	"github.com/openioc/ioc/internal/lease"
)

// iocbench ingest measures, side by side on one ClickHouse and the same
// records, five ways of storing them:
//
//	a  clickhouse-client INSERT … FORMAT JSONEachRow, blocks of -block rows,
//	   into a plain MergeTree with the raw table's columns
//	b  clickhouse-go, one columnar block of -block rows per insert, into
//	   another such plain table: the baseline
//	c  the project's writer in this process (lookup, derivation, journal,
//	   raw rows, rollups), -clients goroutines writing -body records each
//	d  HTTP ingest of an iocd node (Redis, live figures running), -clients
//	   connections posting NDJSON bodies of -body records
//	e  `iocd import` of an NDJSON file
//
// for dossier events, camera events and sensor readings, in -rounds
// rounds whose paths run one after the other (the order turning each
// round). It prints events/s, ClickHouse's CPU seconds per 100,000 events
// (from /proc), the loader's, and the ratios d÷b and e÷b per round. The
// iocd node runs throughout, so every path runs with the live figures
// being computed. Stored counts are checked after every path and the
// rollups against the raw rows at the end: a path that loses or doubles
// a record fails the run.

type ingestOptions struct {
	events, rounds, clients, body, block int
	kinds, paths                         string
	iocd, dir, profile                   string
}

type pathResult struct {
	kind, path       string
	round            int
	events           int
	wall             time.Duration
	chCPU, loaderCPU time.Duration
	eventsPerSecond  float64
	chCPUPer100k     float64
	loaderCPUPer100k float64
}

const benchDB = "ioc"

var pathNames = map[string]string{
	"a": "clickhouse-client JSONEachRow",
	"b": "clickhouse-go plain MergeTree",
	"c": "writer, in process",
	"d": "HTTP ingest (iocd)",
	"e": "iocd import",
}

func runIngest(args []string) error {
	var o ingestOptions
	f := flag.NewFlagSet("iocbench ingest", flag.ContinueOnError)
	f.IntVar(&o.events, "events", 200_000, "records of each kind per path and round")
	f.IntVar(&o.rounds, "rounds", 3, "rounds; the ratios are per round")
	f.IntVar(&o.clients, "clients", 8, "concurrent HTTP connections (d) and writer goroutines (c)")
	f.IntVar(&o.body, "body", 1000, "records per HTTP request (d) and per write (c)")
	f.IntVar(&o.block, "block", 5000, "rows per insert of the plain paths (a, b), the server's IOC_INGEST_BATCH_ROWS")
	f.StringVar(&o.kinds, "kinds", "dossiers,camera-events,sensor-readings", "kinds to measure")
	f.StringVar(&o.paths, "paths", "a,b,c,d,e", "paths to measure")
	f.StringVar(&o.iocd, "iocd", "", "iocd binary (default: go build ./cmd/iocd)")
	f.StringVar(&o.profile, "profile", "", "write CPU profiles of the iocd node taken during path d to <profile>-<kind>.pprof (8s each)")
	f.StringVar(&o.dir, "dir", "", "directory for the servers and files (default: a temporary one, removed)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if o.events < o.body || o.events%3 != 0 {
		return fmt.Errorf("-events must be a multiple of 3 and at least -body")
	}
	ctx := context.Background()
	cleanup, err := scratchDir(&o.dir, "iocbench-ingest-")
	if err != nil {
		return err
	}
	defer cleanup()
	if o.iocd == "" {
		o.iocd = filepath.Join(o.dir, "iocd")
		if out, err := exec.Command("go", "build", "-o", o.iocd, "./cmd/iocd").CombinedOutput(); err != nil {
			return fmt.Errorf("build iocd: %v\n%s", err, out)
		}
	}
	client, err := exec.LookPath("clickhouse-client")
	if err != nil {
		return fmt.Errorf("clickhouse-client is needed for path a: %w", err)
	}

	ch, err := devservices.StartClickHouse(ctx, devservices.Options{Dir: filepath.Join(o.dir, "clickhouse")})
	if err != nil {
		return err
	}
	defer ch.Stop()
	rd, err := devservices.StartRedis(ctx, devservices.Options{Dir: filepath.Join(o.dir, "redis")})
	if err != nil {
		return err
	}
	defer rd.Stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := chstore.Open(ctx, chstore.Config{Addr: ch.Addr, Database: benchDB}, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		return err
	}
	node, err := startBenchNode(ctx, nodeSpec{iocd: o.iocd, dir: o.dir, chAddr: ch.Addr, redisAddr: rd.Addr})
	if err != nil {
		return err
	}
	defer node.stop()

	places, err := newBenchPlaces()
	if err != nil {
		return err
	}
	kinds := map[string]kind{}
	for _, k := range benchKinds {
		kinds[k.name] = k
	}
	var selected []kind
	for _, name := range strings.Split(o.kinds, ",") {
		k, ok := kinds[name]
		if !ok {
			return fmt.Errorf("unknown kind %q: want dossiers, camera-events or sensor-readings", name)
		}
		selected = append(selected, k)
		for _, p := range []string{"a", "b"} {
			if err := createPlain(ctx, store, k.raw, plainTable(k, p)); err != nil {
				return err
			}
		}
	}
	paths := strings.Split(o.paths, ",")
	for _, p := range paths {
		if pathNames[p] == "" {
			return fmt.Errorf("unknown path %q: want a, b, c, d or e", p)
		}
	}
	redisClient := redis.NewClient(&redis.Options{Addr: rd.Addr})
	defer redisClient.Close()
	leases := lease.NewRedis(redisClient, lease.RedisConfig{})
	b := &ingestBench{o: o, store: store, ch: ch, clientBin: client, node: node, leases: leases, logger: logger}

	fmt.Printf("ingest: %d records of each kind per path and round, %d rounds, ClickHouse %s, %s\n",
		o.events, o.rounds, clickhouseVersion(ctx, store), cpuModel())
	var results []pathResult
	run := fmt.Sprint(time.Now().Unix())
	for round := 1; round <= o.rounds; round++ {
		for _, k := range selected {
			// Every path gets its own ids: the writer paths would take a
			// second copy for a resend.
			recs := map[string]*records{}
			for _, p := range paths {
				recs[p] = makeRecords(k, places, fmt.Sprintf("b%s-r%d-%s-", run, round, p), o.events, time.Now())
			}
			order := slices.Clone(paths)
			for range round - 1 {
				order = append(order[1:], order[0])
			}
			for _, p := range order {
				res, err := b.measure(ctx, k, p, recs[p])
				if err != nil {
					return fmt.Errorf("round %d, %s, path %s: %w", round, k.name, p, err)
				}
				res.round = round
				results = append(results, res)
				fmt.Printf("  round %d %-16s %s %-30s %9.0f events/s  ClickHouse %6.2f CPU-s/100k  loader %6.2f CPU-s/100k\n",
					round, k.name, p, pathNames[p], res.eventsPerSecond, res.chCPUPer100k, res.loaderCPUPer100k)
			}
		}
	}
	if err := b.checkExact(ctx); err != nil {
		return err
	}
	printIngestTable(results, selected, paths, o.rounds)
	return printStorage(ctx, store, selected)
}

type ingestBench struct {
	o         ingestOptions
	store     *chstore.Store
	ch        *devservices.Server
	clientBin string
	node      *benchNode
	leases    *lease.Redis
	logger    *slog.Logger
}

func plainTable(k kind, path string) string {
	return "plain_" + strings.ReplaceAll(k.name, "-", "_") + "_" + path
}

// createPlain makes a plain MergeTree with the columns, partitioning and
// sort key of the raw table src: no engine that folds rows, no views.
func createPlain(ctx context.Context, store *chstore.Store, src, name string) error {
	var engine string
	if err := store.Conn().QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = ? AND name = ?", benchDB, src).Scan(&engine); err != nil {
		return fmt.Errorf("read the engine of %s: %w", src, err)
	}
	i := strings.Index(engine, " PARTITION BY ")
	if i < 0 {
		i = strings.Index(engine, " ORDER BY ")
	}
	if i < 0 {
		return fmt.Errorf("engine of %s has no sort key: %s", src, engine)
	}
	q := "CREATE TABLE IF NOT EXISTS " + benchDB + "." + name + " AS " + benchDB + "." + src + " ENGINE = MergeTree" + engine[i:]
	if err := store.Conn().Exec(ctx, q); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return nil
}

// measure stores recs by path p and checks that each was stored once.
func (b *ingestBench) measure(ctx context.Context, k kind, p string, recs *records) (pathResult, error) {
	prepare, table := func() (func() (time.Duration, error), error) { return nil, nil }, k.raw
	switch p {
	case "a":
		table = plainTable(k, p)
		prepare = func() (func() (time.Duration, error), error) { return b.prepareClient(ctx, k, recs) }
	case "b":
		table = plainTable(k, p)
		prepare = func() (func() (time.Duration, error), error) { return b.preparePlain(ctx, k, recs), nil }
	case "c":
		prepare = func() (func() (time.Duration, error), error) { return b.prepareWriter(ctx, k, recs) }
	case "d":
		prepare = func() (func() (time.Duration, error), error) { return b.prepareHTTP(k, recs), nil }
	case "e":
		prepare = func() (func() (time.Duration, error), error) { return b.prepareImport(k, recs) }
	}
	run, err := prepare()
	if err != nil {
		return pathResult{}, err
	}
	// Parts of earlier paths are merged before the clock starts, so that a
	// path does not pay for the one before it.
	if err := b.settle(ctx); err != nil {
		return pathResult{}, err
	}
	chBefore, err := processCPU(b.ch.PID)
	if err != nil {
		return pathResult{}, err
	}
	start := time.Now()
	loader, err := run()
	wall := time.Since(start)
	if err != nil {
		return pathResult{}, err
	}
	chAfter, err := processCPU(b.ch.PID)
	if err != nil {
		return pathResult{}, err
	}
	prefix := recs.firstID()
	prefix = prefix[:strings.LastIndexByte(prefix, '-')+1]
	var rows, ids uint64
	if err := b.store.Conn().QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM "+benchDB+"."+table+" WHERE startsWith(event_id, ?)", prefix).Scan(&rows, &ids); err != nil {
		return pathResult{}, fmt.Errorf("count stored records: %w", err)
	}
	if ids != uint64(recs.n) || rows != ids {
		return pathResult{}, fmt.Errorf("%s holds %d rows of %d distinct records of this path, want %d", table, rows, ids, recs.n)
	}
	n := float64(recs.n)
	return pathResult{kind: k.name, path: p, events: recs.n, wall: wall, chCPU: chAfter - chBefore, loaderCPU: loader,
		eventsPerSecond: n / wall.Seconds(), chCPUPer100k: (chAfter - chBefore).Seconds() * 1e5 / n, loaderCPUPer100k: loader.Seconds() * 1e5 / n}, nil
}

func (r *records) firstID() string {
	switch {
	case len(r.dossie) > 0:
		return r.dossie[0].EventID
	case len(r.camera) > 0:
		return r.camera[0].EventID
	default:
		return r.reads[0].EventID
	}
}

// settle waits until ClickHouse merges nothing and the node has no rows
// waiting.
func (b *ingestBench) settle(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var merges uint64
		if err := b.store.Conn().QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&merges); err != nil {
			return fmt.Errorf("read merges: %w", err)
		}
		if merges == 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil // merging for long: measure anyway
}

// prepareClient writes recs as the raw rows in JSONEachRow, exported by
// ClickHouse itself from a scratch table, and returns the timed load.
func (b *ingestBench) prepareClient(ctx context.Context, k kind, recs *records) (func() (time.Duration, error), error) {
	scratch := plainTable(k, "scratch")
	if err := createPlain(ctx, b.store, k.raw, scratch); err != nil {
		return nil, err
	}
	defer b.store.Conn().Exec(ctx, "DROP TABLE IF EXISTS "+benchDB+"."+scratch)
	if err := insertPlain(ctx, b.store, k, scratch, recs, len(recs.wire)); err != nil {
		return nil, err
	}
	file := filepath.Join(b.o.dir, "client.ndjson")
	out, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	host, port := splitAddr(b.ch.Addr)
	cmd := exec.Command(b.clientBin, "--host", host, "--port", port, "--query", "SELECT * FROM "+benchDB+"."+scratch+" FORMAT JSONEachRow")
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	out.Close()
	if err != nil {
		return nil, fmt.Errorf("export JSONEachRow: %v: %s", err, stderr.String())
	}
	return func() (time.Duration, error) {
		in, err := os.Open(file)
		if err != nil {
			return 0, err
		}
		defer in.Close()
		cmd := exec.Command(b.clientBin, "--host", host, "--port", port, "--max_insert_block_size", strconv.Itoa(b.o.block),
			"--query", "INSERT INTO "+benchDB+"."+plainTable(k, "a")+" FORMAT JSONEachRow")
		cmd.Stdin = in
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("clickhouse-client: %v: %s", err, stderr.String())
		}
		return childCPU(cmd.ProcessState), nil
	}, nil
}

// preparePlain returns the timed clickhouse-go load of recs into path b's
// plain table.
func (b *ingestBench) preparePlain(ctx context.Context, k kind, recs *records) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		before := selfCPU()
		err := insertPlain(ctx, b.store, k, plainTable(k, "b"), recs, b.o.block)
		return selfCPU() - before, err
	}
}

// insertPlain inserts recs as the writer's raw rows into table, block rows
// per insert.
func insertPlain(ctx context.Context, store *chstore.Store, k kind, table string, recs *records, block int) error {
	now := time.Now().UTC().Truncate(time.Second)
	for from := 0; from < recs.n; from += block {
		to := min(from+block, recs.n)
		var err error
		switch k.name {
		case "dossiers":
			err = ingest.InsertRawDossiers(ctx, store.Conn(), benchDB, table, recs.derive[from:to], 1, now)
		case "camera-events":
			err = ingest.InsertRawCameraEvents(ctx, store.Conn(), benchDB, table, recs.camera[from:to], 1, now)
		default:
			err = ingest.InsertRawReadings(ctx, store.Conn(), benchDB, table, recs.reads[from:to], 1, now)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// prepareWriter starts the project's writer of k in this process, under
// the same Redis leases as the node, and returns the timed writes.
func (b *ingestBench) prepareWriter(ctx context.Context, k kind, recs *records) (func() (time.Duration, error), error) {
	deps := ingest.WriterDeps{Store: b.store, Leases: b.leases, Logger: b.logger}
	var write func(ctx context.Context, from, to int) (ingest.Outcome, error)
	var runWriter func(ctx context.Context) error
	switch k.name {
	case "dossiers":
		w, err := ingest.NewWriter(ingest.BatchConfig{}, deps)
		if err != nil {
			return nil, err
		}
		write = func(ctx context.Context, from, to int) (ingest.Outcome, error) {
			return w.Write(ctx, recs.dossie[from:to])
		}
		runWriter = w.Run
	case "camera-events":
		w, err := ingest.NewCameraWriter(ingest.BatchConfig{}, deps, nil)
		if err != nil {
			return nil, err
		}
		write = func(ctx context.Context, from, to int) (ingest.Outcome, error) {
			return w.Write(ctx, recs.camera[from:to])
		}
		runWriter = w.Run
	default:
		w, err := ingest.NewReadingWriter(ingest.BatchConfig{}, deps, nil)
		if err != nil {
			return nil, err
		}
		write = func(ctx context.Context, from, to int) (ingest.Outcome, error) {
			return w.Write(ctx, recs.reads[from:to])
		}
		runWriter = w.Run
	}
	return func() (time.Duration, error) {
		before := selfCPU()
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = runWriter(wctx) }()
		err := spread(b.o.clients, recs.n, b.o.body, func(from, to int) error {
			out, err := write(ctx, from, to)
			if err == nil && (out.Duplicates > 0 || len(out.Conflicts) > 0) {
				err = fmt.Errorf("the writer found %d duplicates and %d conflicts among new records", out.Duplicates, len(out.Conflicts))
			}
			return err
		})
		stop()
		<-done
		return selfCPU() - before, err
	}, nil
}

// spread runs f over [0, n) in chunks of size, on workers goroutines.
func spread(workers, n, size int, f func(from, to int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for {
				from := int(next.Add(int64(size))) - size
				if from >= n {
					return
				}
				if err := f(from, min(from+size, n)); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// prepareHTTP encodes the bodies and returns the timed posts.
func (b *ingestBench) prepareHTTP(k kind, recs *records) func() (time.Duration, error) {
	var bodies [][]byte
	for from := 0; from < recs.n; from += b.o.body {
		bodies = append(bodies, recs.ndjson(from, min(from+b.o.body, recs.n)))
	}
	return func() (time.Duration, error) {
		before, err := processCPU(b.node.cmd.Process.Pid)
		if err != nil {
			return 0, err
		}
		profiled := make(chan struct{})
		if b.o.profile != "" {
			go func() {
				defer close(profiled)
				if err := b.node.profile(b.o.profile+"-"+k.name+".pprof", 8); err != nil {
					fmt.Fprintln(os.Stderr, "profile:", err)
				}
			}()
		} else {
			close(profiled)
		}
		defer func() { <-profiled }()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: b.o.clients}}
		err = spread(b.o.clients, len(bodies), 1, func(i, _ int) error {
			body := bodies[i]
			for {
				req, _ := http.NewRequest("POST", b.node.base+k.endpoint, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+benchAdminToken)
				req.Header.Set("Content-Type", "application/x-ndjson")
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 503 {
					// A full queue says to come back: a client does.
					time.Sleep(100 * time.Millisecond)
					continue
				}
				var r ingest.Response
				if resp.StatusCode != 202 || json.Unmarshal(raw, &r) != nil || r.Accepted != bytes.Count(body, []byte("\n")) {
					return fmt.Errorf("ingest answered %d: %.300s", resp.StatusCode, raw)
				}
				return nil
			}
		})
		after, cpuErr := processCPU(b.node.cmd.Process.Pid)
		if b.o.profile != "" {
			b.node.printMetrics("ioc_ingest_batch_rows", "ioc_ingest_flush_duration_seconds", "ioc_ingest_lookups_total")
		}
		return after - before, errors.Join(err, cpuErr)
	}
}

// prepareImport writes the NDJSON file and returns the timed import.
func (b *ingestBench) prepareImport(k kind, recs *records) (func() (time.Duration, error), error) {
	file := filepath.Join(b.o.dir, k.name+".ndjson")
	out, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	for from := 0; from < recs.n; from += 10000 {
		if _, err := out.Write(recs.ndjson(from, min(from+10000, recs.n))); err != nil {
			out.Close()
			return nil, err
		}
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	return func() (time.Duration, error) {
		state := filepath.Join(b.o.dir, k.name+".state")
		rejects := filepath.Join(b.o.dir, k.name+".rejects")
		os.Remove(state)
		os.Remove(rejects)
		cmd := exec.Command(b.o.iocd, "import", k.name, "--state", state, "--rejects", rejects, file)
		// The node's settings, less its profile listener, which it holds.
		cmd.Env = append(slices.Clone(b.node.env), "IOC_DEBUG_ADDR=")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("iocd import: %v: %s", err, lastLines(stderr.String(), 5))
		}
		return childCPU(cmd.ProcessState), nil
	}, nil
}

// checkExact compares every rollup with what the stored records give.
func (b *ingestBench) checkExact(ctx context.Context) error {
	v, err := ingest.NewVerifier(b.store)
	if err != nil {
		return err
	}
	checks, err := v.Check(ctx, ingest.VerifyOptions{From: time.Now().Add(-3 * time.Hour), To: time.Now().Add(time.Hour)})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	diffs, cells := 0, 0
	for _, c := range checks {
		diffs += len(c.Differences)
		cells += c.Cells
	}
	if diffs > 0 {
		return fmt.Errorf("verify found %d rollup cells that differ from the stored records", diffs)
	}
	fmt.Printf("exact: every stored record once, and %d rollup cells equal what the stored records give\n", cells)
	return nil
}

func printIngestTable(results []pathResult, kinds []kind, paths []string, rounds int) {
	fmt.Println()
	fmt.Println("| kind | path | events/s (mean of rounds) | ClickHouse CPU-s per 100k | loader CPU-s per 100k |")
	fmt.Println("| --- | --- | ---: | ---: | ---: |")
	for _, k := range kinds {
		for _, p := range paths {
			var eps, ch, ld []float64
			for _, r := range results {
				if r.kind == k.name && r.path == p {
					eps, ch, ld = append(eps, r.eventsPerSecond), append(ch, r.chCPUPer100k), append(ld, r.loaderCPUPer100k)
				}
			}
			fmt.Printf("| %s | %s %s | %.0f | %.2f | %.2f |\n", k.name, p, pathNames[p], mean(eps), mean(ch), mean(ld))
		}
	}
	fmt.Println()
	fmt.Println("| kind | ratio | per round | mean | target |")
	fmt.Println("| --- | --- | --- | ---: | --- |")
	for _, k := range kinds {
		for _, num := range []string{"c", "d", "e"} {
			if !slices.Contains(paths, num) || !slices.Contains(paths, "b") {
				continue
			}
			var per []float64
			for round := 1; round <= rounds; round++ {
				var x, base float64
				for _, r := range results {
					if r.kind == k.name && r.round == round {
						switch r.path {
						case num:
							x = r.eventsPerSecond
						case "b":
							base = r.eventsPerSecond
						}
					}
				}
				per = append(per, x/base)
			}
			target := ""
			if num != "c" {
				target = "≥ 0.9"
				if mean(per) >= 0.9 {
					target += " (met)"
				} else {
					target += " (not met)"
				}
			}
			var s []string
			for _, v := range per {
				s = append(s, fmt.Sprintf("%.2f", v))
			}
			fmt.Printf("| %s | %s ÷ b | %s | %.2f | %s |\n", k.name, num, strings.Join(s, " "), mean(per), target)
		}
	}
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func childCPU(ps *os.ProcessState) time.Duration { return ps.UserTime() + ps.SystemTime() }

func splitAddr(addr string) (host, port string) {
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func clickhouseVersion(ctx context.Context, store *chstore.Store) string {
	var v string
	if err := store.Conn().QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "?"
	}
	return v
}

// cpuModel names the processor, as lscpu does.
func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// scratchDir makes *dir a temporary directory when it is empty, and
// returns what removes it (nothing when the caller named one).
func scratchDir(dir *string, pattern string) (cleanup func(), err error) {
	if *dir != "" {
		return func() {}, nil
	}
	d, err := os.MkdirTemp("", pattern)
	if err != nil {
		return nil, err
	}
	*dir = d
	return func() { os.RemoveAll(d) }, nil
}
