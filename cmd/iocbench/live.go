package main

import (
	"cmp"
	"context"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/devservices"
)

// iocbench live measures iocd's live websocket hub against a minimal
// server on the centrifuge library (live_peer.go), side by side in one
// run, on one machine, with the same ~300-byte payloads on one topic:
//
//	iocd        a real `iocd serve` process on ClickHouse and Redis (the
//	            simulator off); clients on /api/v1/live with the admin
//	            token subscribe to events/79, a stream topic; the load
//	            tool publishes through the project's Redis bus as another
//	            node would.
//	centrifuge  `iocbench live-peer`, its Redis broker on the same Redis;
//	            clients speak centrifuge's JSON protocol over websocket;
//	            the load tool publishes through a centrifuge node of its
//	            own on that broker.
//
// For each side in turn (the order alternating over -rounds), it opens
// -clients websockets together (at most -dial-concurrency handshakes at a
// time) and times until every one holds its first message for the topic
// (iocd: the snapshot; centrifuge: the subscribe reply); then publishes
// exactly -rate × -duration messages (or -messages) at -rate a second,
// each carrying its sequence number and send time, and waits until every
// client has them all, or until no client has received anything for
// -drain: a message that comes late counts, with its latency, and one
// that never comes is lost. It reports the
// server process's CPU time over that phase (/proc/<pid>/stat) per
// delivery, publish-to-receive latency percentiles over every delivery,
// resident memory per connection ((VmRSS with the clients − VmRSS
// before) / clients), and the messages each client lost or received
// twice, from the sequence numbers. It exits non-zero when a client could
// not subscribe or was dropped, or a message was lost or duplicated; the
// performance targets are printed as met or NOT MET (and fail the run
// only with -strict).

type liveOptions struct {
	clients, concurrency, messages, payload, rounds int
	rate                                            float64
	duration, connectTimeout, drain, settle         time.Duration
	sides, topic, iocd, dir, chAddr, db, redisAddr  string
	ports, profile, prefix                          string
	history                                         int
	strict                                          bool

	// peer is the command that runs the centrifuge peer, before its
	// flags; default: this executable's live-peer. peerEnv is its
	// environment (default: this process's).
	peer, peerEnv []string
	// out receives the report; default os.Stdout.
	out io.Writer
}

// The targets of issue 14, at 10,000 connections.
const (
	liveTargetCurrent = 3 * time.Second
	liveTargetRatio   = 1.0 // iocd's deliveries per CPU-second over the peer's
	liveTargetP99     = 100 * time.Millisecond
	liveTargetPerConn = 25 << 10
)

func liveFlags(o *liveOptions, f *flag.FlagSet) {
	f.IntVar(&o.clients, "clients", 10000, "websocket clients per side, all on the one topic")
	f.IntVar(&o.concurrency, "dial-concurrency", 500, "websocket handshakes in flight at once while the clients open")
	f.Float64Var(&o.rate, "rate", 10, "messages published per second on the topic")
	f.DurationVar(&o.duration, "duration", 30*time.Second, "publishing phase: -rate × -duration messages are published")
	f.IntVar(&o.messages, "messages", 0, "messages to publish, instead of -rate × -duration")
	f.IntVar(&o.payload, "payload", 300, "bytes of each published payload (a JSON object)")
	f.IntVar(&o.rounds, "rounds", 1, "rounds; each measures both sides, the order alternating")
	f.StringVar(&o.sides, "sides", "iocd,centrifuge", "sides to measure")
	f.StringVar(&o.topic, "topic", "events/79", "topic the clients subscribe to (iocd: a stream topic, events/{area})")
	f.DurationVar(&o.connectTimeout, "connect-timeout", 2*time.Minute, "longest wait for every client to hold its first message")
	f.DurationVar(&o.drain, "drain", 10*time.Second, "after the last publication, how long no client may receive anything before the messages still missing are taken for lost")
	f.DurationVar(&o.settle, "settle", 2*time.Second, "pause between a server being ready and its memory being read, before the clients")
	f.StringVar(&o.iocd, "iocd", "", "iocd binary (default: go build ./cmd/iocd)")
	f.StringVar(&o.chAddr, "clickhouse", "", "ClickHouse native address for iocd (default: start one under -dir)")
	f.StringVar(&o.db, "db", "iocbench_live", "ClickHouse database of the iocd node")
	f.StringVar(&o.redisAddr, "redis", "", "Redis address shared by iocd's bus and centrifuge's broker (default: start one under -dir)")
	f.StringVar(&o.dir, "dir", "", "directory for logs and started servers (default: a temporary one, removed)")
	f.StringVar(&o.prefix, "redis-prefix", "iocbench-live", "prefix of the Redis keys and channels of both sides (iocd's <prefix>:, centrifuge's <prefix>-centrifuge)")
	f.StringVar(&o.ports, "ports", "", "range of ports for the servers this run starts, e.g. 47000-47999 (default: free ones)")
	f.IntVar(&o.history, "peer-history", 100, "publications centrifuge keeps per channel, which gives them offsets and makes subscriptions read the stream position, as iocd's stream topics do; 0: none")
	f.StringVar(&o.profile, "profile", "", "write a CPU profile of iocd over each publishing phase to <profile>-round<n>.pprof")
	f.BoolVar(&o.strict, "strict", false, "exit non-zero when a performance target is not met, too")
}

func runLive(ctx context.Context, args []string) error {
	return runBench(ctx, "iocbench live", args, liveFlags, liveBenchmark)
}

// runBench parses a benchmark's flags into its options and runs it until
// it ends or SIGINT or SIGTERM stops it.
func runBench[O, R any](ctx context.Context, name string, args []string, flags func(*O, *flag.FlagSet), bench func(context.Context, O) (R, error)) error {
	var o O
	f := flag.NewFlagSet(name, flag.ContinueOnError)
	flags(&o, f)
	if err := f.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	_, err := bench(ctx, o)
	return err
}

// sideResult is what one side measured in one round.
type sideResult struct {
	side                     string
	round                    int
	clients, current, failed int
	firstErrors              []string
	allCurrent, p50Current   time.Duration
	messages                 int
	deliveries               int64
	lost, dup, stray         int64
	lossyClients             int
	resnaps, foreign, errs   int
	cpu, wall, loaderCPU     time.Duration
	latP50, latP99, latMax   time.Duration
	rssBefore, rssWith       int64
}

func (r sideResult) perCPUSecond() float64 {
	if r.cpu <= 0 {
		return 0
	}
	return float64(r.deliveries) / r.cpu.Seconds()
}

func (r sideResult) perConn() float64 {
	if r.clients-r.failed <= 0 {
		return 0
	}
	return float64(r.rssWith-r.rssBefore) / float64(r.clients-r.failed)
}

// ok says whether the side's counts are right: every client subscribed
// and stayed, and got every message once.
func (r sideResult) ok() bool {
	return r.failed == 0 && r.current == r.clients && r.lost == 0 && r.dup == 0
}

type liveBench struct {
	o       liveOptions
	ports   *portRange
	nextSeq uint64
	hubPub  *bus.Redis
	cenPub  *centrifugePublisher
	pc      peerConfig
}

// liveBenchmark runs the benchmark, prints its report and returns what
// each side measured in each round.
func liveBenchmark(ctx context.Context, o liveOptions) ([]sideResult, error) {
	if o.out == nil {
		o.out = os.Stdout
	}
	if o.messages <= 0 {
		o.messages = int(o.rate*o.duration.Seconds() + 0.5)
	}
	if o.clients < 1 || o.messages < 1 || o.rate <= 0 || o.rounds < 1 {
		return nil, errors.New("-clients, -rounds, -rate and the messages (-rate × -duration, or -messages) must be positive")
	}
	if o.payload < 80 {
		return nil, errors.New("-payload must be at least 80 bytes: the sequence number and send time take up to 70")
	}
	sides := strings.Split(o.sides, ",")
	for _, s := range sides {
		if s != "iocd" && s != "centrifuge" {
			return nil, fmt.Errorf("-sides: unknown side %q: want iocd, centrifuge or both", s)
		}
	}
	if err := raiseFileLimit(o.clients); err != nil {
		return nil, err
	}
	ports, err := parsePortRange(o.ports)
	if err != nil {
		return nil, err
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "iocbench-live-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		o.dir = d
	} else if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return nil, err
	}
	if slices.Contains(sides, "iocd") {
		if o.iocd, err = buildIOCD(ctx, o.iocd, o.dir); err != nil {
			return nil, err
		}
	}
	stop, err := startServers(ctx, o.dir, ports, slices.Contains(sides, "iocd"), &o.chAddr, &o.redisAddr)
	defer stop()
	if err != nil {
		return nil, err
	}
	if o.peer == nil {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this executable to run the centrifuge peer: %w", err)
		}
		o.peer = []string{exe, "live-peer"}
	}
	if o.peerEnv == nil {
		o.peerEnv = os.Environ()
	}

	b := &liveBench{o: o, ports: ports, nextSeq: 1,
		pc: peerConfig{redisAddr: o.redisAddr, redisPrefix: o.prefix + "-centrifuge", history: o.history, historyTTL: 10 * time.Minute}}
	rdb := redis.NewClient(&redis.Options{Addr: o.redisAddr})
	defer rdb.Close()
	if b.hubPub, err = bus.NewRedis(rdb, bus.RedisConfig{Prefix: o.prefix + ":"}, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), nil); err != nil {
		return nil, err
	}
	if slices.Contains(sides, "centrifuge") {
		if b.cenPub, err = newCentrifugePublisher(b.pc); err != nil {
			return nil, err
		}
		defer b.cenPub.close()
	}

	fmt.Fprintf(o.out, "live: %d clients per side on %s, %d messages of %d bytes at %g/s, %d round(s)\n",
		o.clients, o.topic, o.messages, o.payload, o.rate, o.rounds)
	var results []sideResult
	for round := 1; round <= o.rounds; round++ {
		order := slices.Clone(sides)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, side := range order {
			r, err := b.runSide(ctx, side, round)
			if err != nil {
				return results, fmt.Errorf("round %d, %s: %w", round, side, err)
			}
			results = append(results, r)
			fmt.Fprintln(o.out, "  "+r.line())
		}
	}
	missed := printLiveTable(o.out, o, results)
	fmt.Fprintln(o.out, liveMachine(o.iocd))
	var bad []string
	for _, r := range results {
		if !r.ok() {
			bad = append(bad, fmt.Sprintf("round %d %s: %d of %d clients current, %d failed, %d lost, %d duplicated%s",
				r.round, r.side, r.current, r.clients, r.failed, r.lost, r.dup, firstErrorText(r.firstErrors)))
		}
	}
	if len(bad) > 0 {
		return results, fmt.Errorf("clients missed messages or could not subscribe:\n  %s", strings.Join(bad, "\n  "))
	}
	if o.strict && len(missed) > 0 {
		return results, fmt.Errorf("targets not met: %s", strings.Join(missed, "; "))
	}
	return results, nil
}

func firstErrorText(errs []string) string {
	if len(errs) == 0 {
		return ""
	}
	return "; first: " + strings.Join(errs, "; ")
}

// liveServer is a server process under measurement and where its clients go.
type liveServer struct {
	proc   *benchNode
	url    string
	header http.Header
	proto  liveProto
	topic  string
	pub    func(ctx context.Context, payload []byte) error
}

func (b *liveBench) startServer(ctx context.Context, side string) (*liveServer, error) {
	port, err := b.ports.next()
	if err != nil {
		return nil, err
	}
	switch side {
	case "iocd":
		debugPort, err := b.ports.next()
		if err != nil {
			return nil, err
		}
		// The hub's caps would refuse all but 50 sockets of one token and
		// 200 of one address: every client here is the admin token on
		// 127.0.0.1.
		limit := strconv.Itoa(b.o.clients + 100)
		n, err := startBenchNode(ctx, nodeSpec{iocd: b.o.iocd, dir: b.o.dir, chAddr: b.o.chAddr, db: b.o.db, redisAddr: b.o.redisAddr,
			port: port, debugPort: debugPort, readyTimeout: 3 * time.Minute,
			env: []string{"IOC_WS_MAX_PER_TOKEN=" + limit, "IOC_WS_MAX_PER_ADDRESS=" + limit, "IOC_SIMULATE=0", "IOC_REDIS_PREFIX=" + b.o.prefix + ":"}})
		if err != nil {
			return nil, err
		}
		h := http.Header{}
		h.Set("Authorization", "Bearer "+benchAdminToken)
		topic := b.o.topic
		return &liveServer{proc: n, url: fmt.Sprintf("ws://127.0.0.1:%d/api/v1/live", port), header: h, proto: protoHub, topic: topic,
			pub: func(ctx context.Context, p []byte) error {
				return b.hubPub.Publish(ctx, bus.Message{Topic: topic, Stream: true, Payload: p})
			}}, nil
	default:
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		n, err := startPeer(ctx, b.o.peer, b.o.peerEnv, addr, filepath.Join(b.o.dir, "centrifuge.log"), b.pc)
		if err != nil {
			return nil, err
		}
		topic := b.o.topic
		return &liveServer{proc: n, url: "ws://" + addr + "/connection/websocket", proto: protoCentrifuge, topic: topic,
			pub: func(ctx context.Context, p []byte) error { return b.cenPub.publish(ctx, topic, p) }}, nil
	}
}

// runSide measures one side: a server started for it alone, its clients
// opened together, the publishing phase, and the server stopped.
func (b *liveBench) runSide(ctx context.Context, side string, round int) (sideResult, error) {
	o := b.o
	res := sideResult{side: side, round: round, clients: o.clients, messages: o.messages}
	srv, err := b.startServer(ctx, side)
	if err != nil {
		return res, err
	}
	defer srv.proc.stop()
	pid := srv.proc.pid()
	if err := sleepCtx(ctx, o.settle); err != nil {
		return res, err
	}
	if res.rssBefore, err = processRSS(pid); err != nil {
		return res, err
	}

	run := &liveRun{proto: srv.proto, url: srv.url, header: srv.header, topic: srv.topic, dialer: newLiveDialer(o.connectTimeout)}
	first := b.nextSeq
	b.nextSeq += uint64(o.messages)
	openCtx, cancelOpen := context.WithTimeout(ctx, o.connectTimeout)
	defer cancelOpen()
	run.open(openCtx, o.clients, o.concurrency, first, o.messages)
	defer run.closeAll()
	waitUntil(ctx, o.connectTimeout, func() bool { return run.current.Load()+run.failed.Load() >= int64(o.clients) })
	rssConnected, err := processRSS(pid)
	if err != nil {
		return res, err
	}

	var profile chan error
	if o.profile != "" && side == "iocd" {
		profile = make(chan error, 1)
		secs := max(1, int(float64(o.messages)/o.rate+0.5))
		go func() { profile <- srv.proc.profile(fmt.Sprintf("%s-round%d.pprof", o.profile, round), secs) }()
	}
	cpu0, err := processCPU(pid)
	if err != nil {
		return res, err
	}
	self0, wall0 := selfCPU(), time.Now()
	interval := time.Duration(float64(time.Second) / o.rate)
	for i := range o.messages {
		if err := sleepCtx(ctx, time.Until(wall0.Add(time.Duration(i)*interval))); err != nil {
			return res, err
		}
		p := livePayload(first+uint64(i), time.Now().UnixNano(), o.payload)
		if err := srv.pub(ctx, p); err != nil {
			return res, fmt.Errorf("publish message %d: %w", i+1, err)
		}
	}
	waitQuiet(ctx, o.drain, run.delivered.Load, func() bool {
		return run.delivered.Load() >= (int64(o.clients)-run.failed.Load())*int64(o.messages)
	})
	cpu1, err := processCPU(pid)
	if err != nil {
		return res, err
	}
	res.loaderCPU, res.wall = selfCPU()-self0, time.Since(wall0)
	res.cpu = cpu1 - cpu0
	rssEnd, err := processRSS(pid)
	if err != nil {
		return res, err
	}
	res.rssWith = max(rssConnected, rssEnd)
	if profile != nil {
		if err := <-profile; err != nil {
			fmt.Fprintf(o.out, "  (profile of iocd: %v)\n", err)
		}
	}
	run.closeAll()
	res.collect(run)
	return res, nil
}

// collect reads the clients' accounts; their goroutines have ended.
func (r *sideResult) collect(run *liveRun) {
	var currents []int32
	var lats []int32
	for _, c := range run.clients {
		if c.err != nil {
			r.failed++
			if len(r.firstErrors) < 3 {
				r.firstErrors = append(r.firstErrors, c.err.Error())
			}
		}
		if c.current > 0 {
			r.current++
			currents = append(currents, int32(min(c.current.Microseconds(), 1<<31-1)))
		}
		r.resnaps += c.resnaps
		r.foreign += c.foreign
		r.errs += c.errs
		r.dup += int64(c.track.dup)
		r.stray += int64(c.track.stray)
		r.deliveries += int64(c.track.got)
		if c.err == nil {
			if l := c.track.lost(); l > 0 {
				r.lost += int64(l)
				r.lossyClients++
			}
		}
		lats = append(lats, c.lat...)
	}
	slices.Sort(currents)
	slices.Sort(lats)
	us := func(v int32) time.Duration { return time.Duration(v) * time.Microsecond }
	if len(currents) > 0 {
		r.allCurrent, r.p50Current = us(currents[len(currents)-1]), us(nearestRank(currents, 50))
	}
	if len(lats) > 0 {
		r.latP50, r.latP99, r.latMax = us(nearestRank(lats, 50)), us(nearestRank(lats, 99)), us(lats[len(lats)-1])
	}
}

func (r sideResult) line() string {
	s := fmt.Sprintf("round %d %-10s %d/%d clients current in %s (p50 %s), %d failed; %d messages → %d deliveries, %d lost (%d clients), %d duplicated; server %.2f CPU-s, %.0f deliveries/CPU-s; latency p50 %s p99 %s max %s; RSS %s → %s (%.1f KB/conn); load tool %.2f CPU-s",
		r.round, r.side, r.current, r.clients, dur(r.allCurrent), dur(r.p50Current), r.failed, r.messages, r.deliveries, r.lost, r.lossyClients, r.dup,
		r.cpu.Seconds(), r.perCPUSecond(), dur(r.latP50), dur(r.latP99), dur(r.latMax), mib(r.rssBefore), mib(r.rssWith), r.perConn()/1024, r.loaderCPU.Seconds())
	if r.resnaps+r.foreign+r.errs+int(r.stray) > 0 {
		s += fmt.Sprintf("; %d further snapshots, %d updates without a benchmark payload, %d error frames, %d messages of another round", r.resnaps, r.foreign, r.errs, r.stray)
	}
	return s
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// printLiveTable prints the comparison, and the targets of issue 14 as met
// or NOT MET for iocd (its worst round), and returns those missed.
func printLiveTable(w io.Writer, o liveOptions, results []sideResult) []string {
	by := map[string][]sideResult{}
	for _, r := range results {
		by[r.side] = append(by[r.side], r)
	}
	hub, peer := by["iocd"], by["centrifuge"]
	type measure struct {
		name     string
		value    func(sideResult) float64
		format   func(float64) string
		worstMax bool // larger is worse
	}
	secs := func(v float64) string { return dur(time.Duration(v)) }
	measures := []measure{
		{fmt.Sprintf("time for %d clients to open together and hold their first message", o.clients), func(r sideResult) float64 {
			if r.current < r.clients {
				return float64(o.connectTimeout) // did not all get there
			}
			return float64(r.allCurrent)
		}, secs, true},
		{"deliveries per CPU-second of the server process", sideResult.perCPUSecond, func(v float64) string { return fmt.Sprintf("%.0f", v) }, false},
		{"CPU-seconds per million deliveries", func(r sideResult) float64 {
			if r.deliveries == 0 {
				return 0
			}
			return r.cpu.Seconds() / float64(r.deliveries) * 1e6
		}, func(v float64) string { return fmt.Sprintf("%.2f", v) }, true},
		{"publish-to-receive latency p50", func(r sideResult) float64 { return float64(r.latP50) }, secs, true},
		{"publish-to-receive latency p99", func(r sideResult) float64 { return float64(r.latP99) }, secs, true},
		{"resident memory per connection", sideResult.perConn, func(v float64) string { return fmt.Sprintf("%.1f KB", v/1024) }, true},
		{"messages lost, over all clients", func(r sideResult) float64 { return float64(r.lost) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }, true},
		{"messages duplicated, over all clients", func(r sideResult) float64 { return float64(r.dup) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }, true},
		{"clients that could not subscribe or were dropped", func(r sideResult) float64 { return float64(r.failed) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }, true},
	}
	span := func(rs []sideResult, m measure) (lo, hi float64, text string) {
		if len(rs) == 0 {
			return 0, 0, "-"
		}
		lo, hi = m.value(rs[0]), m.value(rs[0])
		for _, r := range rs[1:] {
			lo, hi = min(lo, m.value(r)), max(hi, m.value(r))
		}
		if m.format(lo) == m.format(hi) {
			return lo, hi, m.format(lo)
		}
		return lo, hi, m.format(lo) + "–" + m.format(hi)
	}
	fmt.Fprintf(w, "\n| measure (%d clients, %d messages at %g/s, %d-byte payloads, topic %s) | iocd | centrifuge library | ratio iocd / centrifuge |\n| --- | --- | --- | --- |\n",
		o.clients, o.messages, o.rate, o.payload, o.topic)
	for _, m := range measures {
		hlo, hhi, ht := span(hub, m)
		plo, phi, pt := span(peer, m)
		ratio := "-"
		if len(hub) > 0 && len(peer) > 0 && plo > 0 && phi > 0 && !strings.HasPrefix(m.name, "messages") && !strings.HasPrefix(m.name, "clients") {
			a, z := hlo/phi, hhi/plo
			if fmt.Sprintf("%.2f", a) == fmt.Sprintf("%.2f", z) {
				ratio = fmt.Sprintf("%.2f", a)
			} else {
				ratio = fmt.Sprintf("%.2f–%.2f", a, z)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", m.name, ht, pt, ratio)
	}

	// Targets, on iocd's worst round.
	var missed []string
	target := func(name string, met bool, got string) {
		v := "met"
		if !met {
			v = "NOT MET"
			missed = append(missed, name+" ("+got+")")
		}
		fmt.Fprintf(w, "target: %s: %s (%s)\n", name, v, got)
	}
	fmt.Fprintln(w)
	if len(hub) == 0 {
		fmt.Fprintln(w, "targets: iocd not measured")
		return nil
	}
	worst := func(f func(sideResult) float64, larger bool) float64 {
		v := f(hub[0])
		for _, r := range hub[1:] {
			if larger {
				v = max(v, f(r))
			} else {
				v = min(v, f(r))
			}
		}
		return v
	}
	cur := worst(measures[0].value, true)
	allIn := true
	for _, r := range hub {
		allIn = allIn && r.current == r.clients
	}
	got := dur(time.Duration(cur))
	if !allIn {
		got = "not every client got its first message"
	}
	target(fmt.Sprintf("every client current within %.0f s of opening together", liveTargetCurrent.Seconds()),
		allIn && time.Duration(cur) <= liveTargetCurrent, got)
	if len(peer) > 0 {
		ratio := worst(sideResult.perCPUSecond, false) / max(1e-9, slices.MaxFunc(peer, func(a, b sideResult) int {
			return cmp.Compare(a.perCPUSecond(), b.perCPUSecond())
		}).perCPUSecond())
		target(fmt.Sprintf("CPU per delivery at most the peer's (deliveries per CPU-second iocd / centrifuge ≥ %.1f)", liveTargetRatio),
			ratio >= liveTargetRatio, fmt.Sprintf("%.2f, iocd's worst round against the peer's best", ratio))
	}
	p99 := worst(func(r sideResult) float64 { return float64(r.latP99) }, true)
	target(fmt.Sprintf("p99 ≤ %s at %g messages per second per topic", dur(liveTargetP99), o.rate), time.Duration(p99) <= liveTargetP99, dur(time.Duration(p99)))
	pc := worst(sideResult.perConn, true)
	target(fmt.Sprintf("≤ %d KB per connection", liveTargetPerConn>>10), pc <= liveTargetPerConn, fmt.Sprintf("%.1f KB", pc/1024))
	var lost, dup int64
	for _, r := range hub {
		lost, dup = lost+r.lost, dup+r.dup
	}
	target("no message of the stream topic lost or duplicated", lost == 0 && dup == 0, fmt.Sprintf("%d lost, %d duplicated", lost, dup))
	if o.clients < 10000 {
		fmt.Fprintf(w, "(the targets are set at 10,000 connections; this run had %d)\n", o.clients)
	}
	fmt.Fprintf(w, "method: each side a fresh server process; clients opened together, at most %d handshakes in flight; deliveries and CPU (utime+stime of /proc/<pid>/stat) over the publishing phase, until every client had every message or none received anything for %s (what had not come then is lost); memory: VmRSS with the clients (the larger of after subscribing and after publishing) − before, per client; latency from the publisher's clock to the client's receipt, over every delivery; iocd ran with IOC_WS_MAX_PER_TOKEN and IOC_WS_MAX_PER_ADDRESS raised to %d (the caps refuse all but 50 sockets of one token and 200 of one address) and the simulator off; centrifuge %s with its Redis broker, history %d, positioning on subscribe, single-flight reads\n",
		o.concurrency, dur(o.drain), o.clients+100, centrifugeVersion(), o.history)
	return missed
}

// centrifugeVersion is the version of the centrifuge module built in.
func centrifugeVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/centrifugal/centrifuge" {
				return d.Version
			}
		}
	}
	return "(version unknown)"
}

// liveMachine names what the figures were taken on, as lscpu does.
func liveMachine(iocd string) string {
	goVersion := runtime.Version()
	if iocd != "" {
		if bi, err := buildinfo.ReadFile(iocd); err == nil {
			goVersion = bi.GoVersion
		}
	}
	return fmt.Sprintf("machine: %s, %d cores, %s", cpuModel(), runtime.NumCPU(), goVersion)
}

// waitQuiet polls done until it holds, ctx ends, or progress has not
// changed for quiet: the benchmark's own wait, never a test's.
func waitQuiet(ctx context.Context, quiet time.Duration, progress func() int64, done func() bool) {
	last, since := progress(), time.Now()
	for !done() && ctx.Err() == nil {
		if p := progress(); p != last {
			last, since = p, time.Now()
		} else if time.Since(since) > quiet {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitUntil polls cond until it holds, limit passes or ctx ends: the
// benchmark's own waits, never a test's.
func waitUntil(ctx context.Context, limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// portRange hands out ports of a range that nothing listens on, or free
// ones when the range is empty.
type portRange struct{ lo, hi, at int }

func parsePortRange(s string) (*portRange, error) {
	if s == "" {
		return &portRange{}, nil
	}
	a, z, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(z)
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return nil, fmt.Errorf("-ports %q: want a range such as 47000-47999", s)
	}
	return &portRange{lo: lo, hi: hi, at: lo}, nil
}

// startServers starts, under dir, the servers a run needs and was not
// given: ClickHouse (with clickhouse, when *chAddr is empty) and Redis
// (when *redisAddr is empty), on ports from ports, and sets their
// addresses; stop stops what it started, also after an error.
func startServers(ctx context.Context, dir string, ports *portRange, clickhouse bool, chAddr, redisAddr *string) (stop func(), err error) {
	var started []interface{ Stop() error }
	stop = func() {
		for i := len(started) - 1; i >= 0; i-- {
			_ = started[i].Stop()
		}
	}
	if clickhouse && *chAddr == "" {
		port, err := ports.next()
		if err != nil {
			return stop, err
		}
		ch, err := devservices.StartClickHouse(ctx, devservices.Options{Dir: filepath.Join(dir, "clickhouse"), Port: port})
		if err != nil {
			return stop, err
		}
		started = append(started, ch)
		*chAddr = ch.Addr
	}
	if *redisAddr == "" {
		port, err := ports.next()
		if err != nil {
			return stop, err
		}
		rd, err := devservices.StartRedis(ctx, devservices.Options{Dir: filepath.Join(dir, "redis"), Port: port})
		if err != nil {
			return stop, err
		}
		started = append(started, rd)
		*redisAddr = rd.Addr
	}
	return stop, nil
}

func (p *portRange) next() (int, error) {
	if p.lo == 0 {
		return devservices.FreePort()
	}
	for ; p.at <= p.hi; p.at++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.at))
		if err != nil {
			continue
		}
		l.Close()
		p.at++
		return p.at - 1, nil
	}
	return 0, fmt.Errorf("no free port left in -ports %d-%d: widen the range", p.lo, p.hi)
}

// dur prints a duration for the report: milliseconds below a second,
// seconds above.
func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}
