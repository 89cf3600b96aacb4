package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/ingest/backfill"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/config"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/redisconn"
)

// importCommand runs iocd import until it ends or SIGINT/SIGTERM stops it;
// a second signal ends the process at once.
func importCommand(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // after the first signal, the next one kills
	return importRecords(ctx, args, os.Stdin, os.Stdout, os.Stderr, isTerminal(os.Stderr))
}

// importRecords backfills history:
//
//	iocd import dossiers|camera-events|sensor-readings [flags] FILE…
//
// A FILE of "-" is stdin (with --state, so that it can be resumed).
// It opens ClickHouse and migrates the schema as a node does, and writes
// through the node's own writer of the kind (journal, duplicate check,
// derivation, rollups) under the same leases: Redis's when IOC_REDIS_ADDR
// is set, so that it takes turns with the running nodes' writers; its own
// otherwise, and then it refuses while a node writes to the database. It
// runs a reconciler as a node does: a batch of its own whose rollups fail
// is finished at once, and before it exits it waits for every batch begun
// earlier to be finished (that of an import killed before it, once the
// grace a node allows has passed), so that the figures are exact when it
// ends. The summary goes to stdout, progress and logs to stderr.
func importRecords(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, terminal bool) error {
	f := config.New("iocd import")
	f.SetOutput(flagOutput)
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "Usage: iocd import dossiers|camera-events|sensor-readings [flags] FILE…\n\n"+
			"Loads history through the validation, duplicate check and derivation of live ingest. Files are NDJSON\n"+
			"(.ndjson, .jsonl, .json: one wire-format object per line) or CSV (.csv: a header row naming the wire\n"+
			"fields), gzip-compressed or not. A FILE of - reads standard input (NDJSON unless --format csv; --state\n"+
			"required): e.g. gunzip -c old.ndjson.gz | iocd import dossiers --state old.state -. An interrupted import\n"+
			"resumes where it stopped when the same command is run again (for -, with the same records piped in\n"+
			"again: what was imported is read and dropped). Progress goes to stderr, the summary to stdout, each\n"+
			"rejected record to the rejects file. Flags come before the files:\n\n")
		f.PrintDefaults()
	}
	clickhouse := clickHouseFlags(f)
	tz := timezoneFlag(f)
	redisConn := redisconn.Flags(f, "Redis shared by the nodes: the import writes under their leases; empty (and no sentinels): this process's own leases, and no node may write meanwhile")
	redisPrefix := f.String("redis-prefix", "IOC_REDIS_PREFIX", "ioc:", "prefix of the Redis keys")
	leaseTTL := f.Duration("lease-ttl", "IOC_LEASE_TTL", 3*time.Second, "how long a lease outlives a process that died holding it")
	hierarchyName := f.String("hierarchy", "IOC_HIERARCHY", "vn-2025", "current hierarchy of administrative units")
	geoDir := f.String("geo-dir", "IOC_GEO_DIR", "", "directory of hierarchies installed with iocd import-units")
	maxFuture := f.Duration("ingest-max-future", "IOC_INGEST_MAX_FUTURE", 5*time.Minute, "how far ahead of the clock a record may be stamped")
	flushTimeout := f.Duration("ingest-flush-timeout", "IOC_INGEST_FLUSH_TIMEOUT", 15*time.Second, "longest the storing of a batch may take, and again the writing of its rollups")
	startup := f.Duration("startup-timeout", "IOC_STARTUP_TIMEOUT", 60*time.Second, "how long to wait for ClickHouse and Redis at start")
	makeLogger := loggerFlags(f)
	debugAddr := f.String("debug-addr", "IOC_DEBUG_ADDR", "", "address to serve Go's profiles on (/debug/pprof/) while the import runs, e.g. 127.0.0.1:6060; empty: off")
	historyEvents := f.Int("history-events", "IOC_INGEST_HISTORY_EVENTS", ingest.DefaultHistoryEvents, "stored dossier events the import remembers so as not to look them up again; more saves lookups of dossiers met again days later, but costs memory and garbage collection")
	format := f.FlagSet.String("format", "", "ndjson or csv for every file; empty: by each file's name")
	statePath := f.FlagSet.String("state", "", "state file that makes the import resumable; empty: <first file>.import-<hash>.state.json in the current directory, the hash of the kind and the files' absolute paths")
	rejectsPath := f.FlagSet.String("rejects", "", "file listing each rejected record (NDJSON: file, line, problems, raw text); empty: beside the state file")
	restart := f.FlagSet.Bool("restart", false, "start over, forgetting where an earlier import of the same files stopped (records stored already are counted once)")
	batchRows := f.FlagSet.Int("batch-rows", 50000, "records stored as one batch")
	inFlight := f.FlagSet.Int("in-flight", 3, "batches being stored while the next is read")
	maxRecord := f.FlagSet.Int("max-record-bytes", 1<<20, "longest record; a longer one is rejected")
	every := f.FlagSet.Duration("progress-interval", 10*time.Second, "how often progress is written when stderr is not a terminal (a terminal's line is rewritten in place)")
	kind, files, err := kindAndFiles(f, args)
	if err != nil {
		return err
	}
	for _, file := range files {
		if strings.HasPrefix(file, "-") && file != backfill.Stdin {
			return fmt.Errorf("%s comes after the files: give the flags before them (iocd import KIND [flags] FILE…; a file named so: ./%s)", file, file)
		}
	}
	if kind == "" {
		return fmt.Errorf("say what to import: iocd import %s [flags] FILE…", strings.Join(ingest.ImportKinds, "|"))
	}
	if *batchRows < 1 || *inFlight < 1 {
		return errors.New("--batch-rows and --in-flight must be at least 1")
	}
	if in, ok := stdin.(*os.File); ok && slices.Contains(files, backfill.Stdin) && isTerminal(in) {
		return fmt.Errorf("- reads the records from standard input, which is a terminal here: pipe them in, e.g. "+
			"gunzip -c FILE.ndjson.gz | iocd import %s --state FILE.state -", kind)
	}

	// The progress line and the logs share stderr; bf is set before the
	// progress runs.
	var bf *backfill.Backfill
	progress := backfill.NewProgress(stderr, terminal, *every, func() backfill.Stats { return bf.Stats() }, nil)
	logger := makeLogger(progress)
	importLogger := logger.With("component", "import")

	// The files and the state first: a changed file is refused before
	// anything is connected.
	storeTimeout := 2*(*flushTimeout)*time.Duration(*inFlight+1) + time.Minute
	bf, err = backfill.Open(backfill.Config{Kind: kind, Files: files, Format: *format, State: *statePath, Rejects: *rejectsPath,
		Restart: *restart, ChunkRecords: *batchRows, InFlight: *inFlight, MaxRecordBytes: *maxRecord, StoreTimeout: storeTimeout,
		Stdin: stdin}, importLogger)
	if err != nil {
		return err
	}
	if bf.Done() {
		fmt.Fprintln(stdout, bf.Summary())
		fmt.Fprintf(stdout, "every record of these files was imported already (state %s); give --restart to import them again\n", bf.StatePath())
		return nil
	}
	importLogger.Info("importing", "kind", kind, "files", len(files), "resumed", bf.Resumed(), "state", bf.StatePath(), "rejects", bf.RejectsPath())

	units, err := loadUnits(*geoDir)
	if err != nil {
		return err
	}
	hierarchy, ok := units.Hierarchy(*hierarchyName)
	if !ok {
		return fmt.Errorf("IOC_HIERARCHY=%q is unknown; known: %v", *hierarchyName, units.Names())
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("IOC_TIMEZONE=%q: %w", *tz, err)
	}

	startCtx, cancelStart := context.WithTimeout(ctx, *startup)
	defer cancelStart()
	store, err := openStore(startCtx, clickhouse(*tz), logger.With("component", "chstore"))
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(startCtx); err != nil {
		return fmt.Errorf("migrate clickhouse schema: %w", err)
	}
	if err := checkZone(startCtx, store); err != nil {
		return err
	}
	var leases ingest.Leaser = lease.NewLocal()
	if shared := redisConn(); shared.Enabled() {
		rdb, err := redisconn.Dial(startCtx, shared)
		if err != nil {
			return err
		}
		defer rdb.Close()
		leases = lease.NewRedis(rdb, lease.RedisConfig{Prefix: *redisPrefix, TTL: *leaseTTL})
	} else if err := noNodeWrites(startCtx, store); err != nil {
		return err
	}
	devices, err := device.New(device.Config{}, store, hierarchy, nil, nil, logger.With("component", "device"), nil)
	if err != nil {
		return err
	}
	if err := devices.Load(startCtx); err != nil {
		return err
	}
	cancelStart()

	// The writer of the kind, as a node has it, with a reconciler, for
	// each shard (one on one server): each chunk is handed over whole and
	// flushed as its own batch in each shard (MaxRows 1), so that neither
	// the age timer nor a chunk's missing rejects hold it back.
	grace := 2*(*flushTimeout) + 2*(*leaseTTL)
	batch := ingest.BatchConfig{MaxRows: 1, QueueRows: *inFlight * *batchRows, FlushTimeout: *flushTimeout, HistoryEvents: *historyEvents,
		SkipExpired: true}
	shards := store.Shards()
	if shards == nil {
		shards = []*chstore.Store{store}
	}
	var reconcilers []*ingest.Reconciler
	var runWriters []func(context.Context) error
	var perShard []shardWriters
	for i, shard := range shards {
		shardLogger := logger
		if len(shards) > 1 {
			shardLogger = logger.With("shard", i+1)
		}
		reconciler, err := ingest.NewReconciler(ingest.ReconcilerConfig{Grace: grace}, shard, leases, nil, shardLogger.With("component", "reconcile"), nil)
		if err != nil {
			return err
		}
		reconcilers = append(reconcilers, reconciler)
		deps := ingest.WriterDeps{Store: shard, Leases: leases, Recover: reconciler, Logger: shardLogger.With("component", "ingest")}
		var sw shardWriters
		var run func(context.Context) error
		switch kind {
		case ingest.KindDossiers:
			sw.dossiers, err = ingest.NewWriter(batch, deps)
			if err == nil {
				run = sw.dossiers.Run
			}
		case ingest.KindCameraEvents:
			sw.cameras, err = ingest.NewCameraWriter(batch, deps, nil)
			if err == nil {
				run = sw.cameras.Run
			}
		case ingest.KindSensorReadings:
			sw.readings, err = ingest.NewReadingWriter(batch, deps, nil)
			if err == nil {
				run = sw.readings.Run
			}
		}
		if err != nil {
			return err
		}
		if run != nil {
			perShard, runWriters = append(perShard, sw), append(runWriters, run)
		}
	}
	writers := routeWriters(perShard, units)
	svc := ingest.NewPipeline(ingest.PipelineConfig{WaitTimeout: storeTimeout, Location: loc}, ingest.Rules{
		Hierarchy: *hierarchyName, Areas: units, MaxFuture: *maxFuture, Places: hierarchy, Devices: devices,
	}, writers, devices, nil)
	imp, err := svc.Import(kind)
	if err != nil {
		return err
	}

	if *debugAddr != "" {
		stopDebug, err := serveDebug(*debugAddr, logger.With("component", "debug"))
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	// The parts run until the import is over, each stopped in turn.
	var wg sync.WaitGroup
	start := func(f func(ctx context.Context)) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		wg.Go(func() { defer close(done); f(ctx) })
		return func() { cancel(); <-done }
	}
	defer wg.Wait()
	var stopWriters, stopReconcilers []func()
	for _, run := range runWriters {
		stopWriters = append(stopWriters, start(ignoreErr(run)))
	}
	for _, r := range reconcilers {
		stopReconcilers = append(stopReconcilers, start(ignoreErr(r.Run)))
	}
	stopProgress := start(progress.Run)

	sum, runErr := bf.Run(ctx, imp)
	for _, stop := range stopWriters {
		stop()
	}
	// Finish what is unfinished: after an interruption only this
	// process's own batches, at once; after the end also every earlier
	// one, within the grace after which a node takes it for abandoned.
	settleCtx, cancelSettle := context.WithTimeout(context.Background(), grace+*flushTimeout+30*time.Second)
	var before time.Time
	if runErr == nil {
		before = time.Now()
	}
	var settleErrs []error
	for _, r := range reconcilers {
		settleErrs = append(settleErrs, r.Settle(settleCtx, before))
	}
	settleErr := errors.Join(settleErrs...)
	cancelSettle()
	for _, stop := range stopReconcilers {
		stop()
	}
	stopProgress()

	fmt.Fprintln(stdout, sum)
	if sum.Rejected > 0 {
		fmt.Fprintf(stdout, "%d records were rejected; each is listed with its problems in %s\n", sum.Rejected, sum.Rejects)
	}
	switch {
	case runErr != nil:
		return runErr
	case settleErr != nil:
		return fmt.Errorf("the records are stored, but the figures of some batches are not finished: %w; "+
			"a running node finishes them, or run iocd verify --repair", settleErr)
	}
	return nil
}

// kindAndFiles parses the arguments of iocd import and export, KIND
// [flags] FILE…: the kind may also come after some flags (iocd import
// --restart dossiers …), and the flags after it count too.
func kindAndFiles(f *config.FlagSet, args []string) (kind string, files []string, err error) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		kind, args = args[0], args[1:]
	}
	if err := f.Parse(args); err != nil {
		return "", nil, err
	}
	files = f.Args()
	if kind == "" && len(files) > 0 {
		kind = files[0]
		if err := f.Parse(files[1:]); err != nil {
			return "", nil, err
		}
		files = f.Args()
	}
	return kind, files, nil
}

// checkZone refuses to write rollups cut in another time zone than the
// nodes' (they cut them again at start when IOC_TIMEZONE changes).
func checkZone(ctx context.Context, store *chstore.Store) error {
	was, err := store.SettleZone(ctx)
	if err != nil {
		return err
	}
	if was != "" {
		return fmt.Errorf("the day and month rollups are cut in %s, not IOC_TIMEZONE=%s: set IOC_TIMEZONE=%s as the nodes have it, "+
			"or start a node with %s first, which cuts them again", was, store.TimeZone(), was, store.TimeZone())
	}
	return store.RecordZone(ctx)
}

// noNodeWrites refuses an import with leases of its own while a node
// writes to the database: their writes would not take turns. A node on
// this machine whose process is gone (killed) does not count.
func noNodeWrites(ctx context.Context, store *chstore.Store) error {
	nodes, err := ingest.RunningNodes(ctx, store, 30*time.Second)
	if err != nil {
		return err
	}
	var live []string
	for _, n := range nodes {
		if !goneFromHere(n) {
			live = append(live, n)
		}
	}
	if len(live) > 0 {
		return fmt.Errorf("iocd is writing to this database (%s) and IOC_REDIS_ADDR is not set: set IOC_REDIS_ADDR as the nodes have it, "+
			"so that the import writes under their leases, or stop them first", strings.Join(live, ", "))
	}
	return nil
}

// goneFromHere says whether node (host:pid, as the journal names writers)
// is a process of this machine that no longer runs.
func goneFromHere(node string) bool {
	i := strings.LastIndexByte(node, ':')
	if i < 0 {
		return false
	}
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(node[i+1:])
	if node[:i] != host || err != nil || pid <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// isTerminal says whether f is a terminal, where the progress line is
// rewritten in place and from which no records are piped. (Being a
// character device is not enough: /dev/null is one.)
func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}

// ignoreErr adapts a Run whose error the import does not act on: a writer
// and the reconciler return nil once stopped.
func ignoreErr(f func(context.Context) error) func(context.Context) {
	return func(ctx context.Context) { _ = f(ctx) }
}
