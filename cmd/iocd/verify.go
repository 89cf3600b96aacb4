package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/config"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/redisconn"
)

// verify checks every rollup against the distinct stored records, and with
// --repair corrects what differs. A repair pauses ingest: it takes every
// writer's lease (through Redis when nodes share one), so that no batch is
// half-written while the figures are compared.
func verify(args []string, out io.Writer) error {
	f := config.New("iocd verify")
	clickhouse := clickHouseFlags(f)
	tz := timezoneFlag(f)
	redisConn := redisconn.Flags(f, "Redis shared by the nodes, whose leases a repair takes; empty (and no sentinels): a single node, which must be stopped for a repair")
	redisPrefix := f.String("redis-prefix", "IOC_REDIS_PREFIX", "ioc:", "prefix of the Redis keys")
	from := f.FlagSet.String("from", "", "first day or time checked (2026-11-01 or RFC 3339), in IOC_TIMEZONE; empty: the beginning")
	to := f.FlagSet.String("to", "", "end of the range, excluded; empty: now")
	repair := f.FlagSet.Bool("repair", false, "correct the differences found (pauses ingest while it runs)")
	format := f.FlagSet.String("format", "text", "text or json")
	confirm := f.FlagSet.Duration("confirm", 5*time.Second, "without --repair, check again after this long and report only the differences found both times (live ingest moves the newest figures); 0 reports at once")
	if err := f.Parse(args); err != nil {
		return err
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("IOC_TIMEZONE=%q: %w", *tz, err)
	}
	var opts ingest.VerifyOptions
	if opts.From, err = parseWhen("--from", *from, loc); err != nil {
		return err
	}
	if opts.To, err = parseWhen("--to", *to, loc); err != nil {
		return err
	}
	opts.Repair = *repair
	if *format != "text" && *format != "json" {
		return fmt.Errorf("--format %q: use text or json", *format)
	}

	ctx := context.Background()
	logger := newLogger("warn", "text")
	chcfg := clickhouse(*tz)
	store, err := chstore.Open(ctx, chcfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("bring the schema up to date: %w", err)
	}
	var leases ingest.Leaser = lease.NewLocal()
	shared := redisConn()
	if shared.Enabled() {
		rdb, err := redisconn.Dial(ctx, shared)
		if err != nil {
			return err
		}
		defer rdb.Close()
		leases = lease.NewRedis(rdb, lease.RedisConfig{Prefix: *redisPrefix})
	}
	// On a cluster each shard is checked in turn, as a server of its own.
	shards := store.Shards()
	if shards == nil {
		shards = []*chstore.Store{store}
	}
	var checks []ingest.TableCheck
	for i, shard := range shards {
		c, err := verifyShard(ctx, shard, leases, shared.Enabled(), opts, *confirm, logger)
		if err != nil {
			return err
		}
		if len(shards) > 1 {
			for k := range c {
				c[k].Table = fmt.Sprintf("%s (shard %d)", c[k].Table, i+1)
			}
		}
		checks = append(checks, c...)
	}
	if *format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(checks); err != nil {
			return err
		}
	} else {
		printChecks(out, checks, loc)
	}
	left := 0
	for _, c := range checks {
		left += len(c.Differences) - c.Repaired
	}
	switch {
	case left > 0 && opts.Repair:
		return fmt.Errorf("%d differences could not be repaired (a stored maximum above every reading): cut the table again from the records", left)
	case left > 0:
		return fmt.Errorf("found %d differences; run again with --repair to correct them", left)
	}
	return nil
}

// verifyShard checks (and repairs) the rollups of one server, or of one
// shard of a cluster.
func verifyShard(ctx context.Context, store *chstore.Store, leases ingest.Leaser, shared bool, opts ingest.VerifyOptions,
	confirm time.Duration, logger *slog.Logger) ([]ingest.TableCheck, error) {
	if opts.Repair {
		if !shared {
			if err := ingestIsQuiet(ctx, store); err != nil {
				return nil, err
			}
		}
		release, err := pauseIngest(ctx, leases, store.Scope())
		if err != nil {
			return nil, err
		}
		defer release()
	}
	rec, err := ingest.NewReconciler(ingest.ReconcilerConfig{}, store, leases, nil, logger, nil)
	if err != nil {
		return nil, err
	}
	if opts.Repair {
		if _, err := rec.Finish(ctx); err != nil {
			return nil, err
		}
	}
	v, err := ingest.NewVerifier(store)
	if err != nil {
		return nil, err
	}
	checks, err := v.Check(ctx, opts)
	if err != nil {
		return nil, err
	}
	if !opts.Repair && confirm > 0 && hasDifferences(checks) {
		time.Sleep(confirm)
		later, err := v.Check(ctx, opts)
		if err != nil {
			return nil, err
		}
		checks = ingest.Persistent(checks, later)
	}
	return checks, nil
}

func hasDifferences(checks []ingest.TableCheck) bool {
	for _, c := range checks {
		if len(c.Differences) > 0 {
			return true
		}
	}
	return false
}

// parseWhen reads a day (the start of that local day) or an RFC 3339 time.
func parseWhen(flag, s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: give a day such as 2026-11-01 or a time such as 2026-11-01T08:00:00+07:00", flag, s)
	}
	return t, nil
}

// pauseIngest takes the write lease of every table the writers keep
// rollups of, and the reconciler's, and returns what gives them back. scope
// is the store's (Store.Scope), as the writers name their leases.
func pauseIngest(ctx context.Context, leases ingest.Leaser, scope string) (func(), error) {
	var held []*lease.Lease
	release := func() {
		for _, l := range held {
			l.Release()
		}
	}
	for _, table := range ingest.RawTables() {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		l, err := leases.Acquire(wctx, scope+"."+table)
		cancel()
		if err != nil {
			release()
			return nil, fmt.Errorf("pause ingest of %s for the repair: %w", table, err)
		}
		held = append(held, l)
	}
	return release, nil
}

// ingestIsQuiet refuses a repair while a node without Redis runs: its
// leases are in its own process, so this one cannot pause its writers.
func ingestIsQuiet(ctx context.Context, store *chstore.Store) error {
	// A node says it runs every few seconds; one that died says nothing.
	nodes, err := ingest.RunningNodes(ctx, store, 30*time.Second)
	if err != nil {
		return err
	}
	if len(nodes) > 0 {
		return fmt.Errorf("iocd is running (%s): stop it before --repair, or set IOC_REDIS_ADDR (as the nodes have it) "+
			"so that the repair pauses ingest through their leases", strings.Join(nodes, ", "))
	}
	return nil
}

// printChecks writes a table per rollup and the differences, as an
// operator reads them after an incident.
func printChecks(out io.Writer, checks []ingest.TableCheck, loc *time.Location) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tCELLS\tDIFFERENCES\tREPAIRED")
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", c.Table, c.Cells, len(c.Differences), c.Repaired)
	}
	_ = tw.Flush()
	const show = 50
	for _, c := range checks {
		if len(c.Differences) == 0 {
			continue
		}
		fmt.Fprintf(out, "\n%s:\n", c.Table)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HIERARCHY\tAREA\tBUCKET\tDIMENSIONS\tMEASURE\tSTORED\tFROM RECORDS")
		for i, d := range c.Differences {
			if i == show {
				fmt.Fprintf(tw, "… %d more\t\t\t\t\t\t\n", len(c.Differences)-show)
				break
			}
			bucket := d.Bucket.In(loc).Format("2006-01-02 15:04")
			if strings.Contains(c.Table, "_day") || strings.Contains(c.Table, "_month") {
				bucket = d.Bucket.Format("2006-01-02")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%v\n", d.Hierarchy, d.Area, bucket, strings.Join(d.Dims, "/"), d.Measure, d.Stored, d.Expected)
		}
		_ = tw.Flush()
	}
}
