// Command iocd is the intelligent operations center backend: it ingests
// records, keeps indicators per administrative unit, and serves them over
// REST and a live websocket. One process runs every part; several processes
// sharing ClickHouse and Redis scale out behind a load balancer.
//
//	iocd [serve]                          run the node (configured by IOC_* variables or flags)
//	iocd token --role viewer --area 26740 print a signed access token
//	iocd token --kiosk s1 --area 79       print a screen's kiosk token and its short URL
//	iocd token revoke --reason … ID       revoke a token on every node (iocd token revoked lists them)
//	iocd migrate                          apply the ClickHouse schema and exit
//	iocd verify [--from --to --repair]    check every rollup against the stored records (and correct it)
//	iocd import-units --name … --levels … install a hierarchy from GeoJSON (and a unit list)
//	iocd import dossiers FILE…|-          backfill history from NDJSON or CSV files or stdin (resumable)
//	iocd version                          print the version, the commit and the Go it was built with
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
	_ "time/tzdata" // IOC_TIMEZONE works on hosts without a zone database

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/alarm"
	"github.com/openioc/ioc/api"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/hub"
	"github.com/openioc/ioc/dataset"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/feed"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/redisconn"
	"github.com/openioc/ioc/report"
	"github.com/openioc/ioc/simulator"
	"github.com/openioc/ioc/topic"
	"github.com/openioc/ioc/versioned"
	"github.com/openioc/ioc/wall"
)

// usage is what iocd -h prints before the settings of serve.
const usage = `iocd: the intelligent operations center backend.

Usage:
  iocd [serve] [flags]                   run a node (the default command)
  iocd token --role viewer --area 26740  print a signed access token (--ttl, --sub)
  iocd token --kiosk s1 --area 79        print a screen's kiosk token, its short URL and the URL's QR code
                                         (--qr=false: no QR code; iocd token qr LINK prints it again)
  iocd migrate                           apply the ClickHouse schema and exit
  iocd verify [--from --to] [--repair]   check every rollup against the stored records, and correct it
  iocd import-units --name … --levels …  install a hierarchy of administrative units from GeoJSON
  iocd import KIND [flags] FILE…         backfill dossiers, camera-events or sensor-readings from NDJSON
                                         or CSV files (gzip too; - reads stdin, with --state), resumable:
                                         rerun the same command
  iocd export KIND [flags] [FILE]        write the stored records of a kind as NDJSON that iocd import
                                         reads (.gz: compressed; none: stdout), e.g. into a cluster
  iocd version                           print the version (also iocd --version)
  iocd help                              print this (also iocd -h)

Every setting is an IOC_* environment variable and a flag; a flag wins.
"iocd COMMAND -h" lists a command's settings. Those of serve:

`

// flagOutput is where a command's -h writes its settings: stderr, as the
// flag package does, except for iocd -h, which writes all of it to stdout.
var flagOutput io.Writer = os.Stderr

func main() {
	cmd, args := "serve", os.Args[1:]
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-h", "-help", "--help":
			cmd = "help"
		case "-version", "--version":
			cmd = "version"
		}
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args)
	case "token":
		err = token(args, os.Stdout, os.Stderr)
	case "migrate":
		err = migrate(args)
	case "verify":
		err = verify(args, os.Stdout)
	case "import-units":
		err = importUnits(args, os.Stdout)
	case "import":
		err = importCommand(args)
	case "export":
		err = exportCommand(args)
	case "version":
		err = printVersion(os.Stdout)
	case "help":
		fmt.Print(usage)
		flagOutput = os.Stdout
		_, err = parseServeConfig([]string{"-h"})
	default:
		err = fmt.Errorf("unknown command %q: use serve, token, migrate, verify, import-units, import, export, version or help", cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0) // asked for: the settings are printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "iocd:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	cfg, err := parseServeConfig(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return run(ctx, cfg, newLogger(cfg.LogLevel, cfg.LogFormat), nil)
}

// run builds a node from cfg, serves until ctx ends (SIGINT or SIGTERM),
// then shuts down in order. started, if not nil, learns the HTTP address.
func run(ctx context.Context, cfg serveConfig, logger *slog.Logger, started func(addr net.Addr)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(reg)

	// Geography: the units every record and figure is keyed by.
	units, err := loadUnits(cfg.GeoDir)
	if err != nil {
		return err
	}
	hierarchy, ok := units.Hierarchy(cfg.Hierarchy)
	if !ok {
		return fmt.Errorf("IOC_HIERARCHY=%q is unknown; known: %v", cfg.Hierarchy, units.Names())
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return fmt.Errorf("IOC_TIMEZONE=%q: %w", cfg.Timezone, err)
	}
	// The spatial index that places records takes about half a second to
	// build: build it while storage starts rather than on the first record
	// with a position. The node is not ready before it is built.
	indexed := make(chan struct{})
	go func() { defer close(indexed); hierarchy.Prepare() }()

	startCtx, cancelStart := context.WithTimeout(context.Background(), cfg.StartupTimeout)
	defer cancelStart()

	// ClickHouse: raw records, rollups and the schema that ties them.
	store, err := openStore(startCtx, cfg.ClickHouse, logger.With("component", "chstore"))
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(startCtx); err != nil {
		return fmt.Errorf("migrate clickhouse schema: %w", err)
	}

	// Bus and leases: in-process on one node, Redis across several. The bus
	// keeps each topic's latest message; leases elect the node that
	// publishes figures and devices, and serialise writes and alarms.
	var (
		pub    liveBus
		leases leaseSet
		ready  = map[string]api.Check{"clickhouse": store.Ping}
	)
	if cfg.Redis.Enabled() {
		rdb, err := redisconn.Dial(startCtx, cfg.Redis) // one server, or the master its sentinels name
		if err != nil {
			return err
		}
		defer rdb.Close()
		rb, err := bus.NewRedis(rdb, bus.RedisConfig{Prefix: cfg.RedisPrefix}, logger.With("component", "bus"), reg)
		if err != nil {
			return err
		}
		pub, leases = rb, lease.NewRedis(rdb, lease.RedisConfig{Prefix: cfg.RedisPrefix, TTL: cfg.LeaseTTL})
		ready["redis"] = func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	} else {
		mb := bus.NewMemory()
		pub, leases = mb, lease.NewLocal()
	}

	ready["live"] = liveReady(pub)
	ready["geo"] = func(context.Context) error {
		select {
		case <-indexed:
			return nil
		default:
			return api.NotReady("the spatial index of " + cfg.Hierarchy + " is still being built")
		}
	}

	// Revoked tokens: kept in ClickHouse, read every few seconds, announced
	// on the bus so that every node refuses them at once.
	revocations := auth.NewRevocations(auth.RevocationsConfig{}, auth.NewClickHouseRevocations(store), pub, logger.With("component", "auth"))
	if err := revocations.Load(startCtx); err != nil {
		return err
	}

	// Devices: the registry of cameras and sensors, their status and the
	// devices/ topics.
	devices, err := device.New(device.Config{CameraTimeout: cfg.CameraTimeout, SensorTimeout: cfg.SensorTimeout},
		store, hierarchy, pub, leases, logger.With("component", "device"), reg)
	if err != nil {
		return err
	}
	if err := devices.Load(startCtx); err != nil {
		return err
	}

	// Documents: the wall's dashboards and the datasets' definitions, with
	// every version.
	documents, err := versioned.NewDocuments(versioned.DocumentsConfig{}, store, leases.Acquire)
	if err != nil {
		return err
	}

	// Datasets: other departments' data, defined as documents of the same
	// store (IOC_DATASETS_DIR's are stored when they changed, and every
	// node reads them again now and then), their values in dataset_values.
	// Storing values marks the live snapshots' dataset figures on marks,
	// made before the aggregator that takes them (as the alarms' below).
	marks := aggregate.NewMarks()
	datasets, err := dataset.New(dataset.Config{Values: dataset.ValuesConfig{Stored: marks.MarkExtras}},
		store, documents, hierarchy, logger.With("component", "datasets"))
	if err != nil {
		return err
	}
	if err := api.ProvisionDatasets(startCtx, documents, datasets, hierarchy, cfg.DatasetsDir, logger.With("component", "datasets")); err != nil {
		return err
	}
	// Dashboards: the folder's are stored when they changed, and the
	// defaults go into a store that has no dashboard, before any request
	// can read them; after the datasets, whose indicators they may show.
	if err := api.ProvisionDocuments(startCtx, documents, hierarchy, datasets, cfg.DashboardsDir, logger.With("component", "dashboards")); err != nil {
		return err
	}
	// Their connectors pull values from the departments' own systems, on
	// one node at a time.
	connectors, err := dataset.NewConnectors(dataset.ConnectorsConfig{Lease: cfg.ClickHouse.Database + ".dataset_connectors", Location: loc},
		datasets, hierarchy, leases, logger.With("component", "connectors"), reg)
	if err != nil {
		return err
	}

	// Alarms: rules evaluated against what is stored, one open alarm per
	// rule and device, the alarms/ topics. The aggregator reads the
	// engine's open-alarm counts, so the engine cannot be handed it: it
	// marks the units whose counts changed on marks, made before either,
	// and the aggregator takes them.
	rules := alarm.DefaultRules()
	if cfg.RulesFile != "" {
		if rules, err = alarm.ReadRulesFile(cfg.RulesFile, device.SensorKindIDs(), device.CameraEventTypes, hierarchyHas(hierarchy)); err != nil {
			return fmt.Errorf("IOC_RULES_FILE: %w", err)
		}
	}
	alarms, err := alarm.New(alarm.Config{Interval: cfg.AlarmInterval, SensorKinds: device.SensorKindIDs(), EventTypes: device.CameraEventTypes,
		Feeds: dataset.AlarmFeeds{Datasets: datasets, Hierarchy: hierarchy, Failing: connectors.Failures}},
		store, hierarchy, devices, rules, leases, pub, marks, logger.With("component", "alarm"), reg)
	if err != nil {
		return err
	}

	// Aggregate: figures per unit and window, published when they change,
	// with the datasets' latest figures.
	agg, err := aggregate.New(aggregate.Config{
		Hierarchy: cfg.Hierarchy, Location: loc, RefreshInterval: cfg.RefreshInterval, Debounce: cfg.LiveDebounce,
	}, store, units, pub, leases, operations{devices, alarms}, dataset.Live{Datasets: datasets, Location: loc}, marks,
		logger.With("component", "aggregate"), reg)
	if err != nil {
		return err
	}

	// Reports: series, rankings, the scoreboard and closed periods, read
	// from the rollups on demand, and the datasets' series and rankings.
	reports, err := report.New(report.Config{QueryTimeout: cfg.QueryTimeout, Datasets: datasets}, store, hierarchy, leases, logger.With("component", "report"))
	if err != nil {
		return err
	}

	// Feed: the ticker of camera events on the events/ topics.
	events := feed.New(feed.Config{}, store, hierarchy, pub, logger.With("component", "feed"), reg)

	// Ingest: validate, deduplicate, batch, acknowledge once stored; what a
	// batch added to the rollups advances the live figures (the writers tell
	// the aggregator), and what is stored wakes the alarm engine, the device
	// counts and the ticker. Each
	// batch is journaled, and the reconciler finishes any batch a writer
	// began and could not finish (a failed insert, a node that died).
	// On a ClickHouse cluster there is a set of writers, reconciler and
	// checker per shard, and each record goes to its province's shard.
	shards, err := newIngestShards(store, ingestDeps{cfg: cfg, leases: leases, agg: agg, alarms: alarms, events: events, logger: logger, reg: reg})
	if err != nil {
		return err
	}
	if err := settleZone(startCtx, store, shards); err != nil {
		return err
	}
	ingestSvc := ingest.NewPipeline(ingest.PipelineConfig{Location: loc, MaxRecords: cfg.MaxRecords}, ingest.Rules{
		Hierarchy: cfg.Hierarchy, Areas: units, MaxFuture: cfg.MaxFuture, Places: hierarchy, Devices: devices,
	}, routeWriters(nodeWriters(shards), units), devices, reg)
	var mqtt *ingest.MQTT
	if cfg.MQTT.URL != "" {
		if mqtt, err = ingest.NewMQTT(cfg.MQTT, ingestSvc, logger.With("component", "mqtt"), reg); err != nil {
			return err
		}
		ready["mqtt"] = func(context.Context) error {
			if !mqtt.Connected() {
				return api.NotReady(fmt.Sprintf("not connected to the MQTT broker at %s (IOC_MQTT_URL)", cfg.MQTT.URL))
			}
			return nil
		}
	}

	// Walls: the screens' rotation, commands and alarm takeover, run by
	// the node holding the walls lease and published on screen/ topics,
	// from the documents of the dashboards store.
	var wallDocs wall.Documents = storedDocuments{documents}
	if cfg.wallDocs != nil {
		wallDocs = cfg.wallDocs
	}
	walls, err := wall.New(wall.Config{Lease: cfg.ClickHouse.Database + ".walls", Build: buildID(), Location: loc},
		wallDocs, hierarchy, pub, leases, logger.With("component", "wall"), reg)
	if err != nil {
		return err
	}
	if err := walls.Load(startCtx); err != nil {
		logger.Warn("read the wall documents; retrying in the background", "err", err)
	}
	// Kiosk tokens' short links are kept in ClickHouse, and die with their
	// token's revocation.
	kiosks := auth.NewKiosks([]byte(cfg.JWTSecret), auth.NewClickHouseKioskLinks(store), revocations)

	// The simulators' history, written before they start (see simHistory);
	// the node is ready once it is. At field pace the live simulator
	// carries it on, also when it was written by an earlier run.
	var history *simHistory
	if cfg.Simulate > 0 {
		history = &simHistory{days: cfg.SimulateHistoryDays, pace: simulatePace(cfg), cfg: cfg, store: store, leases: leases, shards: shards,
			agg: agg, units: units, h: hierarchy, devices: devices, loc: loc, indexed: indexed, logger: logger.With("component", "simulator")}
		if cfg.SimulateHistoryDays > 0 {
			ready["simulator history"] = history.ready
		}
	}

	// API: REST, websocket hub, health, metrics and the built-in page.
	server, err := api.New(api.Config{BodyLimit: cfg.BodyLimit, PublicURL: cfg.PublicURL, TrustedProxies: cfg.TrustedProxies,
		AllowedOrigins: cfg.AllowedOrigins, AuthFailuresPerMinute: cfg.AuthFailuresPerMinute,
		CORSOrigins: cfg.CORSOrigins, AccessLog: cfg.AccessLog, HSTS: cfg.TLSCert != "",
		Hub: hub.Config{MaxPerToken: cfg.WSMaxPerToken, MaxPerAddress: cfg.WSMaxPerAddress}}, api.Deps{
		Geo: units, KPIs: agg, Auth: auth.NewVerifier(cfg.AdminToken, []byte(cfg.JWTSecret)), Revocations: revocations,
		Devices: devices, Alarms: alarms, Events: events, Reports: reports, Documents: documents, Datasets: datasets, Connectors: connectors,
		Screens: walls, Kiosks: kiosks, Ingest: ingestSvc,
		Latest: pub, Republisher: agg, Ready: ready,
		Gatherer: reg, Registerer: reg, Logger: logger.With("component", "api"), AccessLogger: logger.With("component", "http"),
	})
	if err != nil {
		return err
	}
	// The subscription lives until Close at shutdown, not with the start-up context.
	busSub, err := pub.Subscribe(context.WithoutCancel(startCtx), route(server, agg, walls), server.Resync)
	if err != nil {
		return fmt.Errorf("subscribe to the bus: %w", err)
	}
	defer busSub.Close() // after every part has stopped
	ln, cert, err := listenHTTP(cfg)
	if err != nil {
		return err
	}
	defer ln.Close() // shutting the server down closes it too; this is for a return before it runs
	var sources []part
	if cfg.Simulate > 0 {
		p, err := simulatorsPart(cfg, history, ln.Addr(), cert, hierarchy, loc, logger.With("component", "simulator"), reg)
		if err != nil {
			return err
		}
		sources = append(sources, p)
	}
	if mqtt != nil {
		sources = append(sources, part{"mqtt", mqtt.Run})
	}
	// The shutdown gives clients IOC_SHUTDOWN_TIMEOUT from when it begins.
	nodeParts := &lifecycle{logger: logger, timeout: cfg.ShutdownTimeout}
	var servers []part
	if cfg.RedirectAddr != "" {
		p, rln, err := redirectPart(redirectServer(cfg.RedirectAddr, ln.Addr().(*net.TCPAddr).Port, logger.With("component", "http")), nodeParts.stopping)
		if err != nil {
			return err
		}
		defer rln.Close()
		servers = append(servers, p)
	}
	if cfg.DebugAddr != "" {
		p, dln, err := debugPart(cfg.DebugAddr, nodeParts.stopping, logger.With("component", "debug"))
		if err != nil {
			return err
		}
		defer dln.Close()
		servers = append(servers, p)
	}
	cancelStart()

	// Every part is built: run them all. Each stops in its step of the
	// shutdown, in this order, a step once the previous one has returned:
	// 1. Not ready: /readyz answers 503 at once, so that load balancers
	//    move on while the node still takes what they sent.
	nodeParts.add(part{"readiness", func(ctx context.Context) error { <-ctx.Done(); server.Stopping(); return nil }})
	// 2. Stop the sources: the simulators stop feeding ingest, and MQTT
	//    takes no more messages (those not yet stored stay unacknowledged
	//    and the broker delivers them again after the restart).
	nodeParts.add(sources...)
	// 3. Stop ingest: new records are refused with 503 and Retry-After,
	//    queued ones are flushed and their requests get their
	//    acknowledgement.
	writerParts, reconcileParts := ingestParts(shards)
	nodeParts.add(writerParts...)
	// 4. Then the reconcilers: a batch the writers could not finish stays
	//    in the journal, and any node finishes it.
	nodeParts.add(reconcileParts...)
	// 5. Stop the aggregator, the alarm engine, the device registry, the
	//    ticker, the walls, the datasets' re-reading and their connectors
	//    (a run under way is abandoned, unrecorded): screens keep
	//    what they have.
	nodeParts.add(part{"aggregate", agg.Run}, part{"alarms", alarms.Run}, part{"devices", devices.Run},
		part{"feed", events.Run}, part{"walls", walls.Run}, part{"revocations", revocations.Run}, part{"datasets", datasets.Run},
		part{"connectors", connectors.Run})
	// 6. Stop HTTP: websockets close with 1001 (going away), requests in
	//    flight finish. Deferred calls then close the bus subscription,
	//    Redis and ClickHouse: after HTTP, so that no request finds its
	//    storage gone.
	nodeParts.add(append(servers, serverPart("http", func() error { return server.Serve(ln) }, server.Shutdown, nodeParts.stopping))...)

	err = nodeParts.run(ctx, func() {
		logger.Info("iocd is up", "addr", ln.Addr().String(), "tls", cert != nil, "hierarchy", cfg.Hierarchy,
			"timezone", cfg.Timezone, "redis", cfg.Redis.Enabled(), "simulate", cfg.Simulate, "simulate_pace", simulatePace(cfg))
		if started != nil {
			started(ln.Addr())
		}
	})
	logger.Info("stopped")
	return err
}

// simulatorsPart builds the simulators of dossiers and, with
// IOC_SIMULATE_DEVICES, of devices, posting to the node at addr, and
// returns the part that writes the history first, then runs them from
// where it ends.
func simulatorsPart(cfg serveConfig, history *simHistory, addr net.Addr, cert *tls.Certificate, h *geo.Hierarchy, loc *time.Location,
	logger *slog.Logger, reg prometheus.Registerer) (part, error) {
	sim, err := newSimulator(cfg, addr, cert, h, loc, logger, reg)
	if err != nil {
		return part{}, err
	}
	var dsim *simulator.Devices
	if cfg.SimulateDevices {
		if dsim, err = newDeviceSimulator(cfg, addr, cert, h, loc, logger, reg); err != nil {
			return part{}, err
		}
	}
	// The departments' datasets (those of deploy/datasets the node
	// defines), each period once it has ended.
	_, communes, err := simulatorAreas(cfg, h)
	if err != nil {
		return part{}, err
	}
	tok, err := simulatorToken(cfg)
	if err != nil {
		return part{}, err
	}
	dssim, err := simulator.NewDatasets(simulator.DatasetsConfig{BaseURL: selfURL(addr, cert), HTTPClient: selfClient(cert), Token: tok,
		Units: communes, Location: loc, Now: cfg.now}, logger)
	if err != nil {
		return part{}, err
	}
	return part{"simulators", func(ctx context.Context) error {
		live := sim
		carry := history.run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if carry != nil || simulatePace(cfg) == simulator.PaceField {
			if err := live.Continue(carry); err != nil {
				logger.Error("the simulator cannot continue the history; no dossiers are simulated", "err", err)
				live = nil
			}
		}
		var devicesErr, liveErr error
		var wg sync.WaitGroup
		if dsim != nil {
			wg.Go(func() { devicesErr = dsim.Run(ctx) })
		}
		wg.Go(func() { _ = dssim.Run(ctx) }) // it logs what fails and tries again
		if live != nil {
			liveErr = live.Run(ctx)
		}
		wg.Wait()
		return errors.Join(liveErr, devicesErr)
	}}, nil
}

func openStore(ctx context.Context, cfg chstore.Config, logger *slog.Logger) (*chstore.Store, error) {
	// ClickHouse may still be starting next to us: retry until start-up times out.
	for {
		store, err := chstore.Open(ctx, cfg, logger)
		if err == nil {
			return store, nil
		}
		logger.Warn("clickhouse not reachable yet", "addr", cfg.Addr, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (IOC_CLICKHOUSE_ADDR=%s; is ClickHouse running?)", err, cfg.Addr)
		case <-time.After(time.Second):
		}
	}
}

func newSimulator(cfg serveConfig, addr net.Addr, cert *tls.Certificate, h *geo.Hierarchy, loc *time.Location, logger *slog.Logger, reg prometheus.Registerer) (*simulator.Simulator, error) {
	province, areas, err := simulatorAreas(cfg, h)
	if err != nil {
		return nil, err
	}
	tok, err := simulatorToken(cfg)
	if err != nil {
		return nil, err
	}
	return simulator.New(simulator.Config{
		BaseURL: selfURL(addr, cert), HTTPClient: selfClient(cert), Token: tok, Pace: simulatePace(cfg), Rate: cfg.Simulate,
		Areas: areas, ProvinceArea: province, Location: loc, Now: cfg.now,
	}, logger, reg)
}

// simulatePace is the simulators' pace: field unless demo is asked for.
func simulatePace(cfg serveConfig) simulator.Pace {
	if cfg.SimulatePace == simulator.PaceDemo {
		return simulator.PaceDemo
	}
	return simulator.PaceField
}

// simulatorAreas are the province the simulator files dossiers in and its
// units (the province alone when it has none).
func simulatorAreas(cfg serveConfig, h *geo.Hierarchy) (province string, areas []string, err error) {
	p, ok := h.Unit(cfg.SimulateArea)
	if !ok {
		return "", nil, fmt.Errorf("IOC_SIMULATE_AREA=%q is not a unit of %s", cfg.SimulateArea, h.Name())
	}
	areas = h.ChildCodes(p.Code)
	if len(areas) == 0 {
		areas = []string{p.Code}
	}
	return p.Code, areas, nil
}

func newDeviceSimulator(cfg serveConfig, addr net.Addr, cert *tls.Certificate, h *geo.Hierarchy, loc *time.Location, logger *slog.Logger, reg prometheus.Registerer) (*simulator.Devices, error) {
	tok, err := simulatorToken(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := deviceConfig(cfg, h, loc)
	if err != nil {
		return nil, err
	}
	dc.BaseURL, dc.HTTPClient, dc.Token, dc.Now, dc.Pace = selfURL(addr, cert), selfClient(cert), tok, cfg.now, simulatePace(cfg)
	return simulator.NewDevices(dc, logger, reg)
}

// deviceConfig places the simulated cameras and sensors in the province;
// the history's devices are the same.
func deviceConfig(cfg serveConfig, h *geo.Hierarchy, loc *time.Location) (simulator.DevicesConfig, error) {
	sites := simulatorSites(h, cfg.SimulateArea, 3, 1)
	if len(sites) == 0 {
		return simulator.DevicesConfig{}, fmt.Errorf("IOC_SIMULATE_AREA=%q has no units with boundaries to place cameras and sensors in", cfg.SimulateArea)
	}
	return simulator.DevicesConfig{Sites: sites, Location: loc}, nil
}

// selfURL is the node's own address for the simulators, over HTTPS when
// it serves it.
func selfURL(addr net.Addr, cert *tls.Certificate) string {
	scheme := "http"
	if cert != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, addr.(*net.TCPAddr).Port)
}

// selfClient is the simulators' client: nil (the default) over plain
// HTTP, one that trusts the node's certificate over HTTPS.
func selfClient(cert *tls.Certificate) *http.Client {
	if cert == nil {
		return nil
	}
	return pinnedClient(cert)
}

// simulatorToken is the bearer token the simulators ingest with.
func simulatorToken(cfg serveConfig) (string, error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, nil
	}
	tok, err := auth.Issue([]byte(cfg.JWTSecret), auth.Principal{Subject: "simulator", Role: auth.Ingest, Areas: []string{cfg.SimulateArea}}, 365*24*time.Hour, time.Now())
	if err != nil {
		return "", fmt.Errorf("issue the simulator's token: %w", err)
	}
	return tok, nil
}

// leaseSet is the node's leases: in process, or Redis.
type leaseSet interface {
	Lock(ctx context.Context, name string) (unlock func(), err error)
	Acquire(ctx context.Context, name string) (*lease.Lease, error)
}

// storedDocuments gives the walls the latest documents of the store.
type storedDocuments struct{ store *versioned.Documents }

func (d storedDocuments) List(ctx context.Context, kind string) ([]json.RawMessage, error) {
	docs, err := d.store.List(ctx, kind)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(docs))
	for i, doc := range docs {
		out[i] = doc.Body
	}
	return out, nil
}

// liveBus is the bus as the node uses it: in process, or Redis.
type liveBus interface {
	Publish(ctx context.Context, msgs ...bus.Message) error
	Latest(ctx context.Context, topics []string) (map[string]bus.Message, error)
	History(ctx context.Context, topic, epoch string, after uint64) (bus.History, error)
	Subscribe(ctx context.Context, h bus.Handler, gap func()) (*bus.Subscription, error)
}

// route hands bus messages to the websocket hub, except internal ones,
// which no screen may see: deltas and units forwarded to the node that
// publishes figures go to its aggregator, commands to screens to the
// walls. The walls also see alarms/ messages, for takeovers.
func route(server *api.Server, agg *aggregate.Aggregator, walls *wall.Walls) bus.Handler {
	return func(m bus.Message) {
		switch k := topic.KindOf(m.Topic); {
		case k == topic.AggregateDelta:
			agg.ForwardedDeltas(m.Payload)
		case k == topic.AggregateDirty:
			agg.Forwarded(m.Payload)
		case k == topic.AggregateRepublish:
			agg.Requested(m.Payload)
		case k == topic.Revoked:
			server.Revoked(m.Payload)
		case k == topic.ScreenCommand:
			walls.Observe(m)
		case k.Internal():
		case k == topic.Alarms:
			walls.Observe(m)
			server.Deliver(m)
		default:
			server.Deliver(m)
		}
	}
}

// liveReady says whether live figures have been published since the bus's
// latest values were last empty: until then, a screen would be served
// figures computed on the spot and would see them all again as updates.
func liveReady(b liveBus) api.Check {
	return func(ctx context.Context) error {
		m, err := b.Latest(ctx, []string{aggregate.TermTopic})
		if err != nil {
			return err
		}
		if len(m) == 0 {
			return api.NotReady("live figures not published yet: the node holding the aggregate lease is still publishing them, or none holds it (see the aggregate component's log)")
		}
		return nil
	}
}

// operations gives the aggregator the figures of devices and alarms.
type operations struct {
	*device.Registry
	*alarm.Engine
}

// areasOf lists the distinct units of stored rows.
func areasOf[T any](rows []T, area func(T) string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rows {
		if a := area(r); !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

func hierarchyHas(h *geo.Hierarchy) func(string) bool {
	return func(code string) bool { _, ok := h.Unit(code); return ok }
}

func newLogger(level, format string) *slog.Logger {
	return newLoggerTo(os.Stderr, level, format)
}

// newLoggerTo is newLogger writing to w.
func newLoggerTo(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
