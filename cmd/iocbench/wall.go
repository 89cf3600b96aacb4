package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/headless"
)

// iocbench wall measures the control-room wall as it runs: a real `iocd
// serve` with the simulator feeding province 79 at -rate events a second
// and the default wall provisioned (wall-79, 3×2 screens s1…s6 spanning
// playlist pl-79), and -screens kiosk pages, each in a headless Chromium
// process of its own at 1920×1080, opened with a kiosk token of its
// screen, for -duration after every page has painted and -settle more.
//
// What it reports, per screen and over all of them:
//
//   - update-to-paint latency: for every update of a kpi/ or map/ topic a
//     page applied, from its publication to the frame that shows it
//     rendered. The page records when it painted (dashboards/static/wall/
//     measure.js, on with ?measure=1); the publication is the moment the
//     aggregator's message reached the Redis bus's subscribers, which this
//     benchmark is one of (the same moment iocd's hub receives it), joined
//     to the page's sample by topic and version. Both clocks are this
//     machine's. Also from the figures' as_of, which the aggregator
//     truncates to the second (an upper bound, up to a second above);
//   - the page's JS heap after a forced collection (HeapProfiler.
//     collectGarbage, then Runtime.getHeapUsage) and the renderer's DOM
//     nodes (Memory.getDOMCounters), at the start, every -sample and at the
//     end; and, once the page is warm (it has shown every dashboard of the
//     playlist, whose first showings fill caches that stay), the growth
//     from a dashboard's first reading to its last and the least-squares
//     slope, one intercept per dashboard, since each holds a different
//     amount;
//   - the CPU time of each browser's whole process tree (utime+stime, and
//     cutime+cstime of children that ended, from /proc) over the
//     measurement, as a share of one core, and iocd's;
//   - the rotations and takeovers each page went through, so the reader
//     knows the screens did the real work.
//
// It exits non-zero when a target is missed: publication-to-paint p95 ≤
// -target-p95 (1 s: a page that paints slower than the aggregator
// publishes, about once a second, falls behind) on every screen, and the
// heap flat once warm on every screen (same-dashboard growth ≤
// -target-growth percent, slope ≤ -target-slope MiB an hour), every page's
// first full render ≤ -target-first-render (3 s), or when the measurement
// did not work (a page painted no update).

type wallOptions struct {
	screens                      int
	rate                         float64
	pace                         string
	historyDays                  int
	duration, settle, sample     time.Duration
	readyTimeout, renderTimeout  time.Duration
	iocd, chAddr, redisAddr, db  string
	dir, ports, chromium, prefix string
	targetP95, targetFirstRender time.Duration
	targetGrowth, targetSlope    float64
	snapshots                    string // directory for heap snapshots, if any
	out                          io.Writer
}

// The wall the defaults provision, and the province it shows.
const (
	wallID       = "wall-79"
	wallPlaylist = "pl-79"
	wallArea     = "79"
	wallMaxScr   = 6
)

func wallFlags(o *wallOptions, f *flag.FlagSet) {
	f.IntVar(&o.screens, "screens", 6, "kiosk pages, one Chromium process each: screens s1… of wall-79 (at most 6)")
	f.Float64Var(&o.rate, "rate", 200, "events per second of iocd's simulator (IOC_SIMULATE; make run uses 20, so the default is ten times that)")
	f.StringVar(&o.pace, "pace", "demo", "the simulator's pace (IOC_SIMULATE_PACE): demo, where -rate is events a second at the office-hours peak, a load; field carries the history on at its daily volume, a few events a second even at ten times make run's")
	f.DurationVar(&o.duration, "duration", 10*time.Minute, "measurement, after every page has painted and -settle")
	f.DurationVar(&o.settle, "settle", 30*time.Second, "wait after every page has painted its first dashboard, before the first reading")
	f.DurationVar(&o.sample, "sample", time.Minute, "interval of the heap readings (each after a forced collection) and of emptying the pages' samples")
	f.IntVar(&o.historyDays, "history-days", 7, "days of simulated history iocd writes before it is ready (IOC_SIMULATE_HISTORY_DAYS); kept small so that the run does not spend minutes writing history, and enough for the comparisons and sparklines")
	f.DurationVar(&o.readyTimeout, "ready-timeout", 10*time.Minute, "longest wait for iocd to be ready (it writes the history first)")
	f.DurationVar(&o.renderTimeout, "render-timeout", 3*time.Minute, "longest wait for every page to paint its first dashboard")
	f.StringVar(&o.iocd, "iocd", "", "iocd binary (default: go build ./cmd/iocd)")
	f.StringVar(&o.chAddr, "clickhouse", "", "ClickHouse native address for iocd (default: start one under -dir)")
	f.StringVar(&o.db, "db", "iocbench_wall", "ClickHouse database of the iocd node; it must not exist (the run needs the defaults provisioned and the history written afresh) and is dropped at the end")
	f.StringVar(&o.redisAddr, "redis", "", "Redis address of iocd's bus (default: start one under -dir)")
	f.StringVar(&o.prefix, "redis-prefix", "iocbench-wall", "prefix of iocd's Redis keys and channels")
	f.StringVar(&o.dir, "dir", "", "directory for logs, browser profiles and started servers (default: a temporary one, removed)")
	f.StringVar(&o.ports, "ports", "", "range of ports for the servers this run starts, e.g. 48000-48099 (default: free ones)")
	f.StringVar(&o.chromium, "chromium", headless.Chromium, "Chromium binary (Debian's chromium package)")
	f.DurationVar(&o.targetP95, "target-p95", time.Second, "target: publication-to-paint p95 of every screen at most this")
	f.DurationVar(&o.targetFirstRender, "target-first-render", 3*time.Second, "target: every page's first full render (its wall-first-render, from its HTML to every widget drawn) at most this")
	f.Float64Var(&o.targetGrowth, "target-growth", 10, "target: once a page is warm, its JS heap after GC at most this many percent above the first reading of the same dashboard")
	f.StringVar(&o.snapshots, "heap-snapshots", "", "directory where every heap reading also writes the page's heap snapshot (SCREEN-SECONDS-DASHBOARD.heapsnapshot, tens of MiB each), to open in Chromium's DevTools and compare what a page keeps")
	f.Float64Var(&o.targetSlope, "target-slope", 2, "target: once a page is warm, its JS heap's slope at most this many MiB an hour (least squares over the readings after GC, one intercept per dashboard)")
}

func runWall(ctx context.Context, args []string) error {
	return runBench(ctx, "iocbench wall", args, wallFlags, wallBenchmark)
}

// wallResult is what a run measured.
type wallResult struct {
	screens       []*wallScreen
	wall          time.Duration // the measurement
	iocdCPU       time.Duration
	selfCPU       time.Duration
	busy          float64       // share of the machine's cores busy
	historyWrite  time.Duration // iocd start to ready
	rendered      time.Duration // pages opened to every one painted
	start         time.Time     // of the measurement
	playlist      []string      // the dashboards of the wall's playlist
	chromeVersion string
}

func wallBenchmark(ctx context.Context, o wallOptions) (*wallResult, error) {
	if o.out == nil {
		o.out = os.Stdout
	}
	switch {
	case o.screens < 1 || o.screens > wallMaxScr:
		return nil, fmt.Errorf("-screens %d: want 1 to %d, the screens of %s", o.screens, wallMaxScr, wallID)
	case o.rate <= 0:
		return nil, errors.New("-rate must be above 0: the wall needs the simulator's figures")
	case o.duration < o.sample || o.sample <= 0:
		return nil, fmt.Errorf("-duration %s must be at least -sample %s, which must be above 0", o.duration, o.sample)
	case o.historyDays < 0:
		return nil, errors.New("-history-days must be 0 or more")
	}
	if _, err := os.Stat(o.chromium); err != nil {
		return nil, fmt.Errorf("the wall runs in Chromium: install Debian's chromium package (apt-get install chromium) or pass -chromium: %w", err)
	}
	ports, err := parsePortRange(o.ports)
	if err != nil {
		return nil, err
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "iocbench-wall-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		o.dir = d
	} else if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return nil, err
	}
	if o.iocd, err = buildIOCD(ctx, o.iocd, o.dir); err != nil {
		return nil, err
	}
	stop, err := startServers(ctx, o.dir, ports, true, &o.chAddr, &o.redisAddr)
	defer stop()
	if err != nil {
		return nil, err
	}
	dropDB, err := claimDatabase(ctx, o.chAddr, o.db)
	if err != nil {
		return nil, err
	}
	defer dropDB()

	// The bus's view of every publication, from before iocd starts.
	rdb := redis.NewClient(&redis.Options{Addr: o.redisAddr})
	defer rdb.Close()
	busLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rb, err := bus.NewRedis(rdb, bus.RedisConfig{Prefix: o.prefix + ":"}, busLog, nil)
	if err != nil {
		return nil, err
	}
	pubs := newPublications(wallArea)
	sub, err := rb.Subscribe(ctx, pubs.record, nil)
	if err != nil {
		return nil, err
	}
	defer sub.Close()

	fmt.Fprintf(o.out, "wall: iocd with the simulator at %g events/s for province %s (%d days of history first), %d screens of %s in Chromium at %d×%d, %s measured after %s\n",
		o.rate, wallArea, o.historyDays, o.screens, wallID, wallWidth, wallHeight, o.duration, o.settle)
	port, err := ports.next()
	if err != nil {
		return nil, err
	}
	debugPort, err := ports.next()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	node, err := startBenchNode(ctx, nodeSpec{iocd: o.iocd, dir: o.dir, chAddr: o.chAddr, db: o.db, redisAddr: o.redisAddr,
		port: port, debugPort: debugPort, readyTimeout: o.readyTimeout,
		env: []string{"IOC_SIMULATE=" + strconv.FormatFloat(o.rate, 'f', -1, 64), "IOC_SIMULATE_AREA=" + wallArea, "IOC_SIMULATE_PACE=" + o.pace,
			"IOC_SIMULATE_HISTORY_DAYS=" + strconv.Itoa(o.historyDays), "IOC_REDIS_PREFIX=" + o.prefix + ":"}})
	if err != nil {
		return nil, err
	}
	defer node.stop()
	res := &wallResult{historyWrite: time.Since(t0)}
	fmt.Fprintf(o.out, "  iocd ready in %s (history written)\n", dur(res.historyWrite))
	if res.playlist, err = playlistDashboards(ctx, node.base, wallPlaylist); err != nil {
		return nil, err
	}

	// Kiosk tokens, and every page opened together.
	urls := make([]string, o.screens)
	for i := range o.screens {
		id := fmt.Sprintf("s%d", i+1)
		tok, err := issueKioskToken(ctx, node.base, id)
		if err != nil {
			return nil, err
		}
		urls[i] = fmt.Sprintf("%s/wall/?screen=%s&measure=1&access_token=%s", node.base, id, tok)
	}
	t1 := time.Now()
	res.screens = make([]*wallScreen, o.screens)
	errs := make([]error, o.screens)
	var wg sync.WaitGroup
	for i := range o.screens {
		wg.Go(func() {
			s, err := openScreen(ctx, o.chromium, o.dir, fmt.Sprintf("s%d", i+1), urls[i])
			if err == nil {
				res.screens[i] = s
				err = s.waitRendered(ctx, o.renderTimeout)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	defer func() {
		for _, s := range res.screens {
			if s != nil {
				s.stop()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	res.rendered = time.Since(t1)
	res.chromeVersion, _ = res.screens[0].eval(`navigator.userAgent.match(/Chrom(e|ium)\/[0-9.]+/)?.[0] || navigator.userAgent`)
	firsts := make([]string, 0, o.screens)
	for _, s := range res.screens {
		firsts = append(firsts, s.id+" "+s.firstRender+" ms")
	}
	fmt.Fprintf(o.out, "  %d pages painted in %s (wall-first-render: %s); settling %s\n", o.screens, dur(res.rendered), strings.Join(firsts, ", "), o.settle)
	if err := sleepCtx(ctx, o.settle); err != nil {
		return nil, err
	}

	// The start: what each page shows, its heap, and every CPU counter.
	for _, s := range res.screens {
		d, err := s.drain() // the samples of the first render and the settling are not measured
		if err != nil {
			return nil, err
		}
		s.first, s.early = d.now, d.views
		p, err := s.readHeap(ctx, 0, o.snapshots)
		if err != nil {
			return nil, err
		}
		s.heap = append(s.heap, p)
	}
	start := time.Now()
	res.start = start
	procs0, err := readProcs()
	if err != nil {
		return nil, err
	}
	machine0, err := readMachineTicks()
	if err != nil {
		return nil, err
	}
	iocd0, err := processCPU(node.pid())
	if err != nil {
		return nil, err
	}
	self0 := selfCPU()
	pubs.begin(start)
	fmt.Fprintf(o.out, "  measuring from %s for %s\n", start.Format("15:04:05"), o.duration)

	for next := o.sample; ; next += o.sample {
		at := min(next, o.duration)
		if err := sleepCtx(ctx, time.Until(start.Add(at))); err != nil {
			return nil, err
		}
		if err := node.alive(); err != nil {
			return nil, err
		}
		var shown []string
		for _, s := range res.screens {
			d, err := s.drain()
			if err != nil {
				return nil, err
			}
			s.collect(d)
			p, err := s.readHeap(ctx, time.Since(start), o.snapshots)
			if err != nil {
				return nil, err
			}
			s.heap = append(s.heap, p)
			shown = append(shown, fmt.Sprintf("%s %s %.2f MiB (objects %.2f, code %.2f) %d nodes", s.id, p.view, p.used/(1<<20), p.objects/(1<<20), p.code/(1<<20), p.nodes))
		}
		fmt.Fprintf(o.out, "  %s: %s\n", dur(at), strings.Join(shown, ", "))
		if at >= o.duration {
			break
		}
	}
	res.wall = time.Since(start)
	pubs.end()
	procs1, err := readProcs()
	if err != nil {
		return nil, err
	}
	machine1, err := readMachineTicks()
	if err != nil {
		return nil, err
	}
	iocd1, err := processCPU(node.pid())
	if err != nil {
		return nil, err
	}
	res.iocdCPU, res.selfCPU, res.busy = iocd1-iocd0, selfCPU()-self0, busyShare(machine0, machine1)
	for _, s := range res.screens {
		c0, _ := s.treeCPU(procs0)
		c1, n := s.treeCPU(procs1)
		s.cpu, s.processes = c1-c0, n
	}

	missed, bad := printWallReport(o.out, o, res, pubs)
	fmt.Fprintln(o.out, liveMachine(o.iocd))
	if len(bad) > 0 {
		return res, fmt.Errorf("the measurement did not work: %s", strings.Join(bad, "; "))
	}
	if len(missed) > 0 {
		return res, fmt.Errorf("targets not met: %s", strings.Join(missed, "; "))
	}
	return res, nil
}

// claimDatabase checks that db does not exist on the ClickHouse at addr,
// and returns what drops it after the run.
func claimDatabase(ctx context.Context, addr, db string) (func(), error) {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("connect to ClickHouse at %s: %w", addr, err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", db).Scan(&n); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ask ClickHouse at %s for database %s: %w", addr, db, err)
	}
	if n > 0 {
		conn.Close()
		return nil, fmt.Errorf("database %s already exists on %s: the run needs it new (the default wall is provisioned, and the history written, only into an empty one); drop it (DROP DATABASE %s) or pick another -db", db, addr, db)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	}, nil
}

// issueKioskToken asks iocd for a kiosk token of screen, as an admin does.
func issueKioskToken(ctx context.Context, base, screen string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/screens/"+screen+"/tokens", strings.NewReader(`{}`))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+benchAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("issue a kiosk token for %s: %w", screen, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &v) != nil || v.Token == "" {
		return "", fmt.Errorf("issue a kiosk token for %s: iocd answered %d: %s", screen, resp.StatusCode, trim(raw, 300))
	}
	return v.Token, nil
}

// playlistDashboards reads the dashboards a playlist shows.
func playlistDashboards(ctx context.Context, base, id string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/playlists/"+id, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+benchAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read playlist %s: %w", id, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v struct {
		Items []struct {
			Dashboard string `json:"dashboard"`
		} `json:"items"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &v) != nil || len(v.Items) == 0 {
		return nil, fmt.Errorf("read playlist %s: iocd answered %d: %s (the default wall was not provisioned?)", id, resp.StatusCode, trim(raw, 300))
	}
	var out []string
	for _, it := range v.Items {
		if !slices.Contains(out, it.Dashboard) {
			out = append(out, it.Dashboard)
		}
	}
	return out, nil
}

// alive says whether the node still runs.
func (n *benchNode) alive() error {
	select {
	case err := <-n.done:
		n.done <- err // stop waits on it too
		return fmt.Errorf("iocd exited during the run (%v); see its log", err)
	default:
		return nil
	}
}

// publications records when the bus delivered each message of the area's
// kpi/ and map/ topics (every window), by topic and version, so that a
// page's sample can be measured from it, and when each topic was published
// during the measurement.
type publications struct {
	area string

	mu       sync.Mutex
	at       map[string]int64 // publicationKey → Unix ms
	from, to int64            // the measurement, Unix ms
	during   map[string][]int64
}

func newPublications(area string) *publications {
	return &publications{area: area, at: map[string]int64{}, during: map[string][]int64{}, from: 1<<63 - 1}
}

// record is the bus handler: it must not block.
func (p *publications) record(m bus.Message) {
	now := time.Now().UnixMilli()
	if m.Version == "" || !p.watched(m.Topic) {
		return
	}
	p.mu.Lock()
	p.at[publicationKey(m.Topic, m.Version)] = now
	if now >= p.from && (p.to == 0 || now <= p.to) {
		p.during[m.Topic] = append(p.during[m.Topic], now)
	}
	p.mu.Unlock()
}

func (p *publications) watched(topic string) bool {
	for _, k := range []string{"kpi/", "map/"} {
		if rest, ok := strings.CutPrefix(topic, k+p.area); ok && (rest == "" || rest[0] == '/') {
			return true
		}
	}
	return false
}

func (p *publications) begin(t time.Time) {
	p.mu.Lock()
	p.from = t.UnixMilli()
	p.mu.Unlock()
}

func (p *publications) end() {
	p.mu.Lock()
	p.to = time.Now().UnixMilli()
	p.mu.Unlock()
}

func (p *publications) times() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.at)
}

// cadence says how often topic was published during the measurement.
func (p *publications) cadence(topic string) string {
	p.mu.Lock()
	at := slices.Clone(p.during[topic])
	p.mu.Unlock()
	if len(at) < 2 {
		return fmt.Sprintf("%d times", len(at))
	}
	gaps := make([]int32, 0, len(at)-1)
	for i := 1; i < len(at); i++ {
		gaps = append(gaps, clampMS(at[i]-at[i-1]))
	}
	slices.Sort(gaps)
	return fmt.Sprintf("%d times, every %s at the median (shortest %s, longest %s)", len(at),
		dur(time.Duration(nearestRank(gaps, 50))*time.Millisecond), dur(time.Duration(gaps[0])*time.Millisecond), dur(time.Duration(gaps[len(gaps)-1])*time.Millisecond))
}

// screenFigures are one screen's results.
type screenFigures struct {
	name               string
	painted            int
	p50, p95, p99, max int32 // publication → paint, ms
	unmatched, dropped int
	start, end         heapPoint
	// Once the page had shown every dashboard of the playlist (warm,
	// from warm after the measurement began; judged is false when it
	// never was, or no dashboard was read twice after): the growth from
	// the first reading of a dashboard to its last, the largest, and the
	// slope with one intercept per dashboard, of the page's objects (the
	// targets), of the whole heap and of the DOM nodes.
	warm                          time.Duration
	judged                        bool
	heapLike, usedLike, nodesLike float64 // fractions
	heapLikeView, usedLikeView    string
	nodesLikeView                 string
	slopePlain, slopeView         float64 // bytes an hour
	usedSlope                     float64
	cpuShare                      float64 // of one core
	rotations, takeovers          int
}

func figuresOf(s *wallScreen, published map[string]int64, res *wallResult) screenFigures {
	l := joinLatencies(s.samples, published)
	f := screenFigures{name: s.id, painted: len(s.samples), unmatched: l.unmatched, dropped: s.dropped}
	f.p50, f.p95, f.p99, f.max = quantiles(l.publish)
	if len(s.heap) > 0 {
		f.start, f.end = s.heap[0], s.heap[len(s.heap)-1]
	}
	start := res.start.UnixMilli()
	if at, ok := warmFrom(append(slices.Clone(s.early), s.views...), res.playlist); ok {
		f.warm = max(0, time.Duration(at-start)*time.Millisecond)
		warm := warmPoints(s.heap, start, at)
		objects := func(p heapPoint) float64 { return p.objects }
		used := func(p heapPoint) float64 { return p.used }
		f.heapLike, f.heapLikeView, f.judged = likeForLike(warm, objects)
		f.usedLike, f.usedLikeView, _ = likeForLike(warm, used)
		f.nodesLike, f.nodesLikeView, _ = likeForLike(warm, func(p heapPoint) float64 { return float64(p.nodes) })
		f.slopePlain, f.slopeView, _ = heapSlopes(warm, objects)
		_, f.usedSlope, _ = heapSlopes(warm, used)
	}
	if res.wall > 0 {
		f.cpuShare = s.cpu.Seconds() / res.wall.Seconds()
	}
	f.rotations, f.takeovers = countViews(s.first, s.views)
	return f
}

// printWallReport prints the machine line, the tables and the targets; it
// returns the targets missed, and what makes the measurement void.
func printWallReport(w io.Writer, o wallOptions, res *wallResult, pubs *publications) (missed, bad []string) {
	published := pubs.times()
	var figs []screenFigures
	var all []pageSample
	var cpuSum time.Duration
	for _, s := range res.screens {
		f := figuresOf(s, published, res)
		figs = append(figs, f)
		all = append(all, s.samples...)
		cpuSum += s.cpu
		if f.painted == 0 {
			bad = append(bad, s.id+" painted no update of a kpi/ or map/ topic")
		}
		if f.dropped > 0 {
			bad = append(bad, fmt.Sprintf("%s left %d samples out (read the pages more often: -sample)", s.id, f.dropped))
		}
	}
	pooled := joinLatencies(all, published)
	p50, p95, p99, most := quantiles(pooled.publish)
	_, asOf95, _, _ := quantiles(pooled.asOf)
	_, render95, _, _ := quantiles(pooled.render)
	n := len(res.screens)
	meanCPU := cpuSum.Seconds() / res.wall.Seconds() / float64(n)
	iocdCPU := res.iocdCPU.Seconds() / res.wall.Seconds()
	worst := slices.MaxFunc(figs, func(a, b screenFigures) int { return cmp.Compare(a.p95, b.p95) })
	mib := func(b float64) string { return fmt.Sprintf("%.2f MiB", b/(1<<20)) }
	mibh := func(b float64) string { return fmt.Sprintf("%+.2f MiB/h", b/(1<<20)) }
	pct := func(v float64) string { return fmt.Sprintf("%.1f%%", v*100) }
	signed := func(v float64) string { return fmt.Sprintf("%+.1f%%", v*100) }
	count := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	ms := func(v int32) string { return dur(time.Duration(v) * time.Millisecond) }
	judged := !slices.ContainsFunc(figs, func(f screenFigures) bool { return !f.judged })
	// spread is the range of a figure over the screens.
	spread := func(get func(screenFigures) float64, format func(float64) string) string {
		lo := slices.MinFunc(figs, func(a, b screenFigures) int { return cmp.Compare(get(a), get(b)) })
		hi := slices.MaxFunc(figs, func(a, b screenFigures) int { return cmp.Compare(get(a), get(b)) })
		if format(get(lo)) == format(get(hi)) {
			return format(get(lo))
		}
		return format(get(lo)) + " – " + format(get(hi))
	}
	// warmSpread is spread over the screens whose heap could be judged.
	warmSpread := func(get func(screenFigures) float64, format func(float64) string) string {
		if !judged {
			return "not judged"
		}
		return spread(get, format)
	}
	heapStart := spread(func(f screenFigures) float64 { return f.start.used }, mib)
	heapEnd := spread(func(f screenFigures) float64 { return f.end.used }, mib)
	objectsStart := spread(func(f screenFigures) float64 { return f.start.objects }, mib)
	objectsEnd := spread(func(f screenFigures) float64 { return f.end.objects }, mib)
	codeStart := spread(func(f screenFigures) float64 { return f.start.code }, mib)
	codeEnd := spread(func(f screenFigures) float64 { return f.end.code }, mib)
	nodesStart := spread(func(f screenFigures) float64 { return float64(f.start.nodes) }, count)
	nodesEnd := spread(func(f screenFigures) float64 { return float64(f.end.nodes) }, count)
	var rot, tko []string
	for _, f := range figs {
		rot = append(rot, strconv.Itoa(f.rotations))
		tko = append(tko, strconv.Itoa(f.takeovers))
	}

	fmt.Fprintf(w, "\nwall: %d screens, %s, simulator %g/s: %d updates painted; publication→paint p50 %s p95 %s p99 %s max %s (worst screen's p95 %s); JS heap after GC %s → %s; the page's objects once warm, same dashboard %s, slope %s; DOM nodes %s → %s; CPU %.1f%% of a core per screen, iocd %.1f%%; machine %s busy\n",
		n, res.wall.Round(time.Second), o.rate, len(all), ms(p50), ms(p95), ms(p99), ms(most), ms(worst.p95), heapStart, heapEnd,
		warmSpread(func(f screenFigures) float64 { return f.heapLike }, signed), warmSpread(func(f screenFigures) float64 { return f.slopeView }, mibh),
		nodesStart, nodesEnd, meanCPU*100, iocdCPU*100, pct(res.busy))

	fmt.Fprintf(w, "\n| measure | value |\n| --- | --- |\n")
	fmt.Fprintf(w, "| screens | %d of %s (playlist %s: %s), each in a headless Chromium of its own at %d×%d |\n", n, wallID, wallPlaylist, strings.Join(res.playlist, ", "), wallWidth, wallHeight)
	fmt.Fprintf(w, "| duration measured | %s, after every page had painted and %s more |\n", res.wall.Round(time.Second), o.settle)
	fmt.Fprintf(w, "| simulator rate | %g events/s in province %s |\n", o.rate, wallArea)
	fmt.Fprintf(w, "| kpi/%s published | %s |\n", wallArea, pubs.cadence("kpi/"+wallArea))
	fmt.Fprintf(w, "| updates painted per screen (kpi/ and map/ of %s, every window) | %s |\n", wallArea, spread(func(f screenFigures) float64 { return float64(f.painted) }, count))
	fmt.Fprintf(w, "| publication → paint p50 / p95 / p99 | %s / %s / %s |\n", ms(p50), ms(p95), ms(p99))
	fmt.Fprintf(w, "| of which in the page: handed to the widgets → paint, p95 | %s |\n", ms(render95))
	fmt.Fprintf(w, "| as_of → paint p95 (as_of is cut to the second: up to 1 s more) | %s |\n", ms(asOf95))
	fmt.Fprintf(w, "| JS heap after GC, start → end | %s → %s |\n", heapStart, heapEnd)
	fmt.Fprintf(w, "| of which the page's objects, start → end | %s → %s |\n", objectsStart, objectsEnd)
	fmt.Fprintf(w, "| of which compiled code, start → end | %s → %s |\n", codeStart, codeEnd)
	fmt.Fprintf(w, "| the page's objects once warm, same dashboard, first → last reading | %s |\n", warmSpread(func(f screenFigures) float64 { return f.heapLike }, signed))
	fmt.Fprintf(w, "| the page's objects' slope once warm (least squares, one intercept per dashboard) | %s |\n", warmSpread(func(f screenFigures) float64 { return f.slopeView }, mibh))
	fmt.Fprintf(w, "| whole JS heap once warm, same dashboard, first → last reading; slope | %s; %s |\n", warmSpread(func(f screenFigures) float64 { return f.usedLike }, signed), warmSpread(func(f screenFigures) float64 { return f.usedSlope }, mibh))
	fmt.Fprintf(w, "| DOM nodes, start → end | %s → %s |\n", nodesStart, nodesEnd)
	fmt.Fprintf(w, "| DOM nodes once warm, same dashboard, first → last reading | %s |\n", warmSpread(func(f screenFigures) float64 { return f.nodesLike }, signed))
	fmt.Fprintf(w, "| CPU per screen (the browser's process tree), of one core | %s (mean %.1f%%) |\n", spread(func(f screenFigures) float64 { return f.cpuShare }, pct), meanCPU*100)
	fmt.Fprintf(w, "| iocd CPU, of one core | %.1f%% |\n", iocdCPU*100)
	fmt.Fprintf(w, "| machine busy (%d cores, everything on it) | %s |\n", runtime.NumCPU(), pct(res.busy))
	fmt.Fprintf(w, "| rotations / takeovers seen, per screen | %s / %s |\n", strings.Join(rot, ", "), strings.Join(tko, ", "))

	fmt.Fprintf(w, "\n| screen | painted | publication → paint p50 / p95 / p99 / max | JS heap start → end | warm after | once warm, the page's objects: same dashboard, slope | DOM nodes start → end | once warm, same dashboard | CPU, of a core | rotations | takeovers |\n| --- | ---: | --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: |\n")
	for _, f := range figs {
		warm, like, nodes := "never", "-", "-"
		if f.judged {
			warm = f.warm.Round(time.Second).String()
			like = fmt.Sprintf("%s (%s), %s", signed(f.heapLike), f.heapLikeView, mibh(f.slopeView))
			nodes = fmt.Sprintf("%s (%s)", signed(f.nodesLike), f.nodesLikeView)
		}
		fmt.Fprintf(w, "| %s | %d | %s / %s / %s / %s | %s (%s) → %s (%s) | %s | %s | %d → %d | %s | %s | %d | %d |\n",
			f.name, f.painted, ms(f.p50), ms(f.p95), ms(f.p99), ms(f.max), mib(f.start.used), f.start.view, mib(f.end.used), f.end.view,
			warm, like, f.start.nodes, f.end.nodes, nodes, pct(f.cpuShare), f.rotations, f.takeovers)
	}
	fmt.Fprintln(w)

	target := func(name string, met bool, got string) {
		v := "met"
		if !met {
			v = "NOT MET"
			missed = append(missed, name+" ("+got+")")
		}
		fmt.Fprintf(w, "target: %s: %s (%s)\n", name, v, got)
	}
	target(fmt.Sprintf("publication-to-paint p95 ≤ %s on every screen", dur(o.targetP95)),
		worst.painted > 0 && time.Duration(worst.p95)*time.Millisecond <= o.targetP95, fmt.Sprintf("worst %s on %s", ms(worst.p95), worst.name))
	slowest, slowestOn := -1, ""
	for _, s := range res.screens {
		if v, err := strconv.Atoi(s.firstRender); err != nil {
			slowest, slowestOn = math.MaxInt, s.id+" (none measured)"
		} else if v > slowest {
			slowest, slowestOn = v, s.id
		}
	}
	target(fmt.Sprintf("first full render ≤ %s on every screen", dur(o.targetFirstRender)),
		slowest >= 0 && time.Duration(slowest)*time.Millisecond <= o.targetFirstRender, fmt.Sprintf("slowest %d ms on %s", slowest, slowestOn))
	growthName := fmt.Sprintf("the page's objects flat: once warm, at most %+.0f%% from the first reading of a dashboard after GC to its last, on every screen", o.targetGrowth)
	slopeName := fmt.Sprintf("the page's objects flat: once warm, slope at most %.1f MiB/h on every screen", o.targetSlope)
	if judged {
		like := slices.MaxFunc(figs, func(a, b screenFigures) int { return cmp.Compare(a.heapLike, b.heapLike) })
		target(growthName, like.heapLike*100 <= o.targetGrowth, fmt.Sprintf("largest %s on %s, %s", signed(like.heapLike), like.name, like.heapLikeView))
		steep := slices.MaxFunc(figs, func(a, b screenFigures) int { return cmp.Compare(a.slopeView, b.slopeView) })
		target(slopeName, steep.slopeView <= o.targetSlope*(1<<20), fmt.Sprintf("steepest %s on %s", mibh(steep.slopeView), steep.name))
	} else {
		why := fmt.Sprintf("a screen had not shown every dashboard of %s, then one of them at two readings: run longer", wallPlaylist)
		fmt.Fprintf(w, "target: %s: not judged (%s)\ntarget: %s: not judged (%[2]s)\n", growthName, why, slopeName)
	}
	unmatched := 0
	for _, f := range figs {
		unmatched += f.unmatched
	}
	if unmatched > 0 {
		fmt.Fprintf(w, "(%d samples of %d had no publication seen on the bus: left out of publication → paint)\n", unmatched, len(all))
	}
	fmt.Fprintf(w, "method: a real iocd serve with IOC_SIMULATE=%g (IOC_SIMULATE_PACE=%s), IOC_SIMULATE_HISTORY_DAYS=%d and Redis, the default wall provisioned; kiosk tokens from POST /api/v1/screens/{id}/tokens; each page /wall/?screen=sN&measure=1 in a headless %s process of its own (its own profile), opened together. "+
		"Publication = the moment the Redis bus delivered the aggregator's message to its subscribers (this benchmark's subscription, beside iocd's hub); paint = the page's Date.now() in a task posted from the requestAnimationFrame callback that follows the widgets' redraw (the frame rendered); joined by topic and version; both clocks this machine's; updates only, not the snapshots a page gets as it subscribes. "+
		"Heap = Runtime.getHeapUsage usedSize after HeapProfiler.collectGarbage, read every %s with one board on the page (a forced full collection each time, in every page); the page's objects = the self sizes of the nodes of a heap snapshot taken then, but compiled code (V8's, which grows while hot functions are optimised, bounded by the page's code) and the browser's own objects (native and synthetic nodes: DOM, performance timeline, the DevTools agent's buffers, bounded by the browser); DOM nodes = Memory.getDOMCounters of the renderer (they follow the open alarms and events the widgets list: no target); "+
		"warm = once the page had shown every dashboard of the playlist (each first showing fills caches and compiles code that stay), and readings compare on the same dashboard (takeovers apart), since each holds a different amount. "+
		"CPU = utime+stime (and cutime+cstime) of the browser's process tree from /proc over the measurement, the readings included; iocd's likewise; this benchmark used %.1f CPU-s\n",
		o.rate, o.pace, o.historyDays, res.chromeVersion, o.sample, res.selfCPU.Seconds())
	return missed, bad
}
