// Command iocbench measures the analyst API (GET /api/v1/kpis/{id}/series,
// /kpis/{id}/ranking and /scoreboard, which read the dossier_flow rollups)
// against the same questions asked in SQL of the raw dossier_history table,
// in the same run, on the same ClickHouse.
//
// It loads -events dossier events (default 100 million) spanning the two
// years before 2026-11-01 (+07:00) across all 3,321 communes of vn-2025
// directly into ClickHouse, each with the change to its dossier's figures
// that the ingest writer would store, through the writer's own row layout.
// A bench_meta table remembers what was loaded, so that a rerun on the same
// database skips the load. Then it asks three questions:
//
//	series      a year of daily on-time rates of a province (-area, default 79)
//	ranking     a quarter's on-time rate of every commune of the province
//	scoreboard  the dossier indicators of all 34 provinces for 2025
//
// each of the raw table (one untimed run, whose figures are checked against
// the rollups, then -raw-runs timed runs) and of iocd, started as a
// subprocess (one untimed run, whose figures must equal the raw ones, then
// -runs timed runs; iocd keeps the answers of the first, as every range
// asked is over, and the first one's time is printed too). It prints p50
// and p95 of each, their ratios, and whether the targets hold: p95 ≤ 50 ms
// and at least 50× faster than the raw query, at p50 and at p95. It exits
// non-zero when figures differ or a target is missed.
//
//	iocbench -addr 127.0.0.1:19000 -events 100000000 [-iocd bin/iocd] [-skip-api]
//
// Four subcommands measure other paths: `iocbench ingest` (ingest.go),
// five ways of storing the same records; `iocbench cluster` (cluster.go),
// the writer on one server against two ClickHouse clusters, with and
// without replication; `iocbench live` (live.go), iocd's
// live websocket hub against a server on the centrifuge library, with up
// to 10,000 clients on one machine; and `iocbench wall` (wall.go), the
// control-room wall's pages in Chromium against a node with the simulator
// at ten times make run's rate: update-to-paint latency, JS heap over the
// run, CPU per screen.
package main

import (
	"context"
	"debug/buildinfo"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/chstore"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "live" {
		if err := runLive(context.Background(), os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "iocbench live:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "wall" {
		if err := runWall(context.Background(), os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "iocbench wall:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "live-peer" {
		// The centrifuge server iocbench live measures iocd against, run
		// by iocbench live as a process of its own.
		if err := runLivePeer(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "iocbench live-peer:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "cluster" {
		if err := runCluster(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "iocbench cluster:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "ingest" {
		if err := runIngest(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "iocbench ingest:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "iocbench:", err)
		os.Exit(1)
	}
}

type options struct {
	addr, db, area, iocd string
	events               int64
	seed                 uint64
	batch, inserters     int
	runs, rawRuns        int
	loadOnly, skipAPI    bool
	settle               time.Duration
	via                  string
}

func run() error {
	var o options
	defAddr := os.Getenv("IOC_CLICKHOUSE_ADDR")
	if defAddr == "" {
		defAddr = "127.0.0.1:9000"
	}
	flag.StringVar(&o.addr, "addr", defAddr, "ClickHouse native address (default $IOC_CLICKHOUSE_ADDR)")
	flag.StringVar(&o.db, "db", "iocbench", "ClickHouse database of the benchmark; dropped and loaded again when it does not hold -events of -seed")
	flag.Int64Var(&o.events, "events", 100_000_000, "dossier events to load")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the generated dossiers")
	flag.IntVar(&o.batch, "batch", 200_000, "rows per insert")
	flag.IntVar(&o.inserters, "inserters", 2, "concurrent inserts of -via direct")
	flag.StringVar(&o.via, "via", "import", "how the events are stored: import (piped as NDJSON into `iocd import dossiers -`, through validation, duplicate check and derivation, timed) or direct (derived here and inserted with the writer's own row layout)")
	flag.StringVar(&o.area, "area", "79", "province of the series and the ranking")
	flag.StringVar(&o.iocd, "iocd", "", "iocd binary to measure (default: go build ./cmd/iocd)")
	flag.IntVar(&o.runs, "runs", 30, "timed runs of each API request")
	flag.IntVar(&o.rawRuns, "raw-runs", 5, "timed runs of each raw query")
	flag.BoolVar(&o.loadOnly, "load-only", false, "load, then stop")
	flag.BoolVar(&o.skipAPI, "skip-api", false, "ask the raw table only")
	flag.DurationVar(&o.settle, "settle", 15*time.Minute, "longest wait for ClickHouse's merges after a load")
	printSQL := flag.Bool("sql", false, "print the raw and rollup queries, then stop")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of iocbench itself to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		// The load allocates a row's values and changes per event, and
		// holds ~2 GB: collect garbage less often, up to 6 GiB.
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(6 << 30)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	u, err := newUniverse(o.seed)
	if err != nil {
		return err
	}
	if _, ok := u.communesOf[o.area]; !ok {
		return fmt.Errorf("-area %q is not a province of %s", o.area, hierarchyName)
	}
	if *printSQL {
		for _, q := range questions(o.db, u, o.area) {
			fmt.Printf("-- %s\n-- raw:\n%s;\n\n-- rollups:\n%s;\n\n", q.name, strings.Join(q.raw, ";\n\n"), strings.Join(q.rollup, ";\n\n"))
		}
		return nil
	}
	cfg := chstore.Config{Addr: o.addr, Database: o.db, QueryTimeout: time.Hour, TimeZone: zone.String(), MaxOpenConns: 4}
	store, err := chstore.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if o.via != "import" && o.via != "direct" {
		return fmt.Errorf("-via %q: use import or direct", o.via)
	}
	work, err := os.MkdirTemp("", "iocbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	lc := loadConfig{events: o.events, seed: o.seed, batch: o.batch, inserters: o.inserters, logEvery: 10_000_000, via: o.via}
	ok, err := loaded(ctx, store.Conn(), o.db, lc)
	if err != nil {
		return err
	}
	var loadLine string
	if ok {
		loadLine = fmt.Sprintf("load: %s already holds %d events of seed %d (%s); skipped", o.db, o.events, o.seed, lc.generator())
		logger.Info(loadLine)
	} else {
		if err := prepareDatabase(ctx, store.Conn(), o.db); err != nil {
			return err
		}
		store.Close()
		if store, err = chstore.Open(ctx, cfg, logger); err != nil {
			return err
		}
		if _, err := store.Migrate(ctx); err != nil {
			return err
		}
		logger.Info("loading", "database", o.db, "events", o.events, "seed", o.seed)
		var took time.Duration
		if o.via == "import" {
			if o.iocd, err = buildIOCD(ctx, o.iocd, work); err != nil {
				return err
			}
			store.Close() // the import migrates and writes on its own
			if took, err = loadByImport(ctx, u, lc, importLoad{iocd: o.iocd, addr: o.addr, db: o.db, dir: work}, logger); err != nil {
				return err
			}
			if store, err = chstore.Open(ctx, cfg, logger); err != nil {
				return err
			}
			loadLine = fmt.Sprintf("load: %d events imported with iocd import in %s, %.0f events/s; target: under 30 minutes for 100 million (%.0f events/s): %s",
				o.events, took.Round(time.Second), float64(o.events)/took.Seconds(), 1e8/1800, metOrNot(float64(o.events)/took.Seconds() >= 1e8/1800))
		} else {
			if took, err = load(ctx, store, u, lc, logger); err != nil {
				return err
			}
			loadLine = fmt.Sprintf("load: %d events in %s, %.0f events/s (%d inserters, batches of %d)",
				o.events, took.Round(time.Second), float64(o.events)/took.Seconds(), o.inserters, o.batch)
		}
		if err := recordLoad(ctx, store.Conn(), o.db, u, lc, took); err != nil {
			return err
		}
		logger.Info(loadLine)
	}
	defer store.Close()
	if o.loadOnly {
		fmt.Println(loadLine)
		return nil
	}
	if err := settle(ctx, store.Conn(), o.db, o.settle, logger); err != nil {
		return err
	}

	qs := questions(o.db, u, o.area)
	type result struct {
		q          question
		raw        answer
		rawTimes   []time.Duration
		api        []time.Duration
		apiFirst   time.Duration // the untimed first request: its answer not yet kept by iocd
		apiNote    string
		mismatches []string
	}
	results := make([]*result, len(qs))
	failed := false
	conn := store.Conn()
	for i, q := range qs {
		r := &result{q: q}
		results[i] = r
		logger.Info("raw query", "question", q.name)
		a, took, err := ask(ctx, conn, q.raw, q.scan)
		if err != nil {
			return fmt.Errorf("%s, raw query: %w", q.name, err)
		}
		r.raw = a
		logger.Info("raw query answered", "question", q.name, "keys", len(a), "took", took.Round(time.Millisecond))
		roll, _, err := ask(ctx, conn, q.rollup, q.scan)
		if err != nil {
			return fmt.Errorf("%s, rollup query: %w", q.name, err)
		}
		if d := compare(a, roll); len(d) > 0 {
			failed = true
			fmt.Printf("MISMATCH %s: the rollups differ from the raw events at %d keys:\n  %s\n", q.name, len(d), strings.Join(first(d, 20), "\n  "))
		}
		for range o.rawRuns {
			_, took, err := ask(ctx, conn, q.raw, q.scan)
			if err != nil {
				return fmt.Errorf("%s, raw query: %w", q.name, err)
			}
			r.rawTimes = append(r.rawTimes, took)
		}
	}
	printFigures(qs[0].name, results[0].raw, qs[1].name, results[1].raw, results[2].raw, o.area)

	iocdBin := ""
	if !o.skipAPI {
		if o.iocd, err = buildIOCD(ctx, o.iocd, work); err != nil {
			return err
		}
		srv, err := startServer(ctx, o.iocd, work, o.addr, o.db)
		if err != nil {
			return err
		}
		defer srv.stop()
		iocdBin = srv.bin
		readers := []func([]byte) (answer, []string, error){seriesAnswer, rankingAnswer(u.communesOf[o.area]), scoreboardAnswer(o.area)}
		for i, r := range results {
			status, body, took, err := srv.get(r.q.path)
			r.apiFirst = took
			if err != nil {
				return fmt.Errorf("GET %s: %w", r.q.path, err)
			}
			if status == 404 && !strings.Contains(string(body), "unknown area") {
				r.apiNote = "route missing"
				fmt.Printf("API %s: route missing (404 %s)\n", r.q.path, trim(body, 200))
				continue
			}
			if status != 200 {
				failed = true
				r.apiNote = fmt.Sprintf("HTTP %d", status)
				fmt.Printf("API %s: HTTP %d %s\n", r.q.path, status, trim(body, 300))
				continue
			}
			got, problems, err := readers[i](body)
			if err != nil {
				failed = true
				r.apiNote = "bad answer"
				fmt.Printf("API %s: cannot read the answer: %v: %s\n", r.q.path, err, trim(body, 300))
				continue
			}
			want := r.raw
			if i == 2 {
				// The timed request is one province's; every province is checked.
				for _, p := range u.provinces {
					if p == o.area {
						continue
					}
					path := strings.Replace(r.q.path, "area="+o.area, "area="+p, 1)
					status, body, _, err := srv.get(path)
					if err != nil || status != 200 {
						problems = append(problems, fmt.Sprintf("GET %s: %d %v", path, status, err))
						continue
					}
					g, pr, err := scoreboardAnswer(p)(body)
					if err != nil {
						problems = append(problems, fmt.Sprintf("GET %s: %v", path, err))
						continue
					}
					problems = append(problems, pr...)
					for k, v := range g {
						got[k] = v
					}
				}
			}
			r.mismatches = append(problems, compare(want, got)...)
			if len(r.mismatches) > 0 {
				failed = true
				fmt.Printf("MISMATCH %s: the API differs from the raw events:\n  %s\n", r.q.name, strings.Join(first(r.mismatches, 30), "\n  "))
			} else {
				fmt.Printf("check %s: the API's numerators and denominators equal the raw events' (%d keys)\n", r.q.name, len(want))
			}
			for range o.runs {
				status, _, took, err := srv.get(r.q.path)
				if err != nil || status != 200 {
					return fmt.Errorf("GET %s: %d %v", r.q.path, status, err)
				}
				r.api = append(r.api, took)
			}
		}
	}

	fmt.Println()
	fmt.Println(loadLine)
	fmt.Printf("%-62s %9s %9s %9s %9s %9s %8s %8s  %s\n", "question", "API first", "API p50", "API p95", "raw p50", "raw p95", "×p50", "×p95",
		fmt.Sprintf("targets (p95 ≤ %s, ≥ %.0f×)", ms(targetP95), targetRatio))
	var missed []string
	for _, r := range results {
		rp50, rp95 := percentile(r.rawTimes, 50), percentile(r.rawTimes, 95)
		if len(r.api) == 0 {
			note := r.apiNote
			if note == "" {
				note = "not measured"
			}
			fmt.Printf("%-62s %9s %9s %9s %9s %9s %8s %8s  %s\n", r.q.name, "-", "-", "-", ms(rp50), ms(rp95), "-", "-", note)
			continue
		}
		ap50, ap95 := percentile(r.api, 50), percentile(r.api, 95)
		x50, x95 := float64(rp50)/float64(ap50), float64(rp95)/float64(ap95)
		verdict := "met"
		if m := missedTargets(ap95, x50, x95); len(m) > 0 {
			verdict = "NOT MET: " + strings.Join(m, ", ")
			missed = append(missed, r.q.name+" ("+strings.Join(m, ", ")+")")
		}
		if len(r.mismatches) > 0 {
			verdict += ", figures differ"
		}
		fmt.Printf("%-62s %9s %9s %9s %9s %9s %7.0f× %7.0f×  %s\n", r.q.name, ms(r.apiFirst), ms(ap50), ms(ap95), ms(rp50), ms(rp95), x50, x95, verdict)
	}
	fmt.Printf("(API: %d timed requests after one untimed, the first, which iocd answers from the rollups and keeps; raw: %d timed queries after one untimed; p95 is the nearest rank)\n", o.runs, o.rawRuns)
	fmt.Println(machine(ctx, conn, iocdBin))
	if failed {
		return fmt.Errorf("figures differ or requests failed: see MISMATCH above")
	}
	if len(missed) > 0 {
		return fmt.Errorf("targets missed: %s", strings.Join(missed, "; "))
	}
	return nil
}

// The targets of every question: the API's p95, and how many times faster
// than the raw question it is at p50 and at p95.
const (
	targetP95   = 50 * time.Millisecond
	targetRatio = 50.0
)

// missedTargets names the targets a question's timings miss.
func missedTargets(p95 time.Duration, x50, x95 float64) []string {
	var out []string
	if p95 > targetP95 {
		out = append(out, "p95 "+ms(p95)+" > "+ms(targetP95))
	}
	if x50 < targetRatio {
		out = append(out, fmt.Sprintf("%.1f× at p50 < %.0f×", x50, targetRatio))
	}
	if x95 < targetRatio {
		out = append(out, fmt.Sprintf("%.1f× at p95 < %.0f×", x95, targetRatio))
	}
	return out
}

// settle waits until ClickHouse has no merge running for 10 s in a row, so
// that the timings do not share the cores with the merges of the load.
func settle(ctx context.Context, conn driver.Conn, db string, limit time.Duration, logger *slog.Logger) error {
	deadline := time.Now().Add(limit)
	quiet := 0
	for quiet < 10 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = ?", db).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			quiet++
		} else {
			quiet = 0
		}
		if time.Now().After(deadline) {
			if n > 0 {
				logger.Warn("merges still running; measuring anyway", "merges", n)
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	var parts uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.parts WHERE database = ? AND active AND table = 'dossier_history'", db).Scan(&parts); err != nil {
		return err
	}
	logger.Info("merges settled", "dossier_history_parts", parts)
	return nil
}

// machine names what the timings were taken on: the CPU, its cores and
// memory, the Go that built iocd (else iocbench) and ClickHouse's version,
// since only figures measured on the same machine compare.
func machine(ctx context.Context, conn driver.Conn, iocd string) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		for _, line := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
				break
			}
		}
	}
	goVersion := runtime.Version()
	if iocd != "" {
		if bi, err := buildinfo.ReadFile(iocd); err == nil {
			goVersion = bi.GoVersion
		}
	}
	chVersion := "?"
	_ = conn.QueryRow(ctx, "SELECT version()").Scan(&chVersion)
	return fmt.Sprintf("machine: %s, %d cores%s, %s, ClickHouse %s", cpu, runtime.NumCPU(), mem, goVersion, chVersion)
}

// percentile is the nearest-rank percentile.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	case d < 10*time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

func trim(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// printFigures shows what the raw questions answered, to judge the data.
func printFigures(seriesName string, series answer, rankingName string, ranking, scoreboard answer, area string) {
	var tot ratio
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range series {
		tot.num += r.num
		tot.den += r.den
		if r.den > 0 {
			v := float64(r.num) / float64(r.den)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	fmt.Printf("raw %s: %d days with resolutions, %d resolved, on time %.4f (days %.3f..%.3f)\n",
		seriesName, len(series), tot.den, float64(tot.num)/math.Max(1, float64(tot.den)), lo, hi)
	tot = ratio{}
	for _, r := range ranking {
		tot.num += r.num
		tot.den += r.den
	}
	fmt.Printf("raw %s: %d communes with resolutions, %d resolved, on time %.4f\n",
		rankingName, len(ranking), tot.den, float64(tot.num)/math.Max(1, float64(tot.den)))
	fmt.Printf("raw scoreboard, province %s, 2025:", area)
	for _, id := range scoreboardIndicators {
		r := scoreboard[area+"/"+id]
		fmt.Printf(" %s %d/%d;", id, r.num, r.den)
	}
	fmt.Println()
}
