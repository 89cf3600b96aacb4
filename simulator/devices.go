package simulator

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest"
)

// Site is a candidate device position inside unit Area.
type Site struct {
	Area     string
	Lat, Lon float64
}

// DevicesConfig says where to send reports and where devices may stand.
type DevicesConfig struct {
	BaseURL string // server root, e.g. "http://127.0.0.1:8080"
	Token   string // bearer token with the ingest right
	// Sites are the candidate positions, several per commune; required.
	// Each device takes a distinct one, spread over as many areas as
	// possible.
	Sites []Site
	// Cameras, Sensors (air-quality stations) and Gauges (water-level
	// gauges) are how many of each to simulate; zero means 80, 24 and 12,
	// a negative number none.
	Cameras, Sensors, Gauges int
	// Location is the zone of the daily rhythm and of report times; nil
	// means Asia/Ho_Chi_Minh, or a fixed +07:00 without tzdata.
	Location *time.Location
	// Seed fixes which sites the devices take (zero is a seed like any
	// other, so that restarts reuse the same devices at the same places)
	// and what happens; zero draws what happens at random.
	Seed       int64
	Now        func() time.Time // nil means time.Now; the clock Run steps by
	Tick       time.Duration    // how often Run steps the world and sends reports; zero means 1s
	HTTPClient *http.Client     // nil means a client with a 30s timeout

	// Pace is PaceDemo (the zero value) or PaceField, at which the
	// devices report as a History's do: cameras detect a fiftieth as
	// often as at demo pace (some twenty a camera a day), hot spots burst
	// once or twice a rush hour rather than every half hour, and the
	// sensors have the history's weather (haze on one dry-season day in
	// five, a flood on one rainy-season day in eight, for hours) instead
	// of an episode every half hour, so that today's camera counts and
	// highest readings are like the history's days. Readings come every
	// minute and devices fall silent now and then at both paces.
	Pace Pace
}

// Devices simulates the cameras, air-quality stations and water-level
// gauges of a province and feeds their reports to the server through its
// real HTTP ingest endpoints: camera events (heartbeats and AI detections
// with a daily rhythm and rush-hour bursts at hot spots) and sensor readings
// (PM2.5 episodes over clusters of stations, floods at gauges). Devices drop
// offline now and then and come back. At demo pace episodes are compressed
// so that a demo sees the server's alarms open and close within minutes; at
// field pace the devices carry a History's on: its camera rates, its
// weather (haze and floods by season, lasting hours), with the demo's
// outages.
//
// Like Simulator, it is driven by Run on its clock, or step by step with
// Step and Flush; what it reports depends only on its seed and on the times
// it is stepped to.
//
// Concurrency: Run owns three goroutines, a generator that steps the world
// every Tick and one sender per endpoint that POSTs what was generated, so
// that one endpoint being away does not hold up the other. All exit when
// the context passed to Run is cancelled and Run waits for them. Step and
// Flush are refused while Run runs; one Step at a time and one Flush at a
// time, though a Step may overlap a Flush. Its metrics are safe to scrape
// at any time.
type Devices struct {
	cfg      DevicesConfig
	logger   *slog.Logger
	runID    string
	world    *deviceWorld
	camURL   string
	readURL  string
	cams     *queue[ingest.CameraEventWire]
	reads    *queue[ingest.SensorReadingWire]
	camSend  *sender[ingest.CameraEventWire]
	readSend *sender[ingest.SensorReadingWire]
	sent     *prometheus.CounterVec
	postErrs prometheus.Counter
	// stepping and flushing are held by Step and Flush while they run, and
	// by Run for its whole life.
	stepping, flushing atomic.Bool
	stepped            atomic.Int64 // simulated time of the latest Step, Unix nanoseconds
	batch              deviceBatch  // owned by the holder of stepping
}

const (
	defaultCameras = 80
	defaultSensors = 24
	defaultGauges  = 12
	defaultTick    = time.Second
	// deviceQueueLimit holds about 20 minutes of peak camera traffic; older
	// detections and readings are worth little to a control room.
	deviceQueueLimit = 5000
)

// NewDevices checks cfg and builds a Devices; it does not contact the
// server. Metrics are registered on reg unless it is nil.
func NewDevices(cfg DevicesConfig, logger *slog.Logger, reg prometheus.Registerer) (*Devices, error) {
	if err := checkTarget("simulator: devices", cfg.BaseURL, cfg.Token); err != nil {
		return nil, err
	}
	cfg, sites, err := cfg.fleet()
	if err != nil {
		return nil, err
	}
	pace, err := ParsePace(string(cfg.Pace))
	if err != nil {
		return nil, fmt.Errorf("simulator: devices: %w", err)
	}
	cfg.Pace = pace
	if cfg.Tick == 0 {
		cfg.Tick = defaultTick
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("simulator: devices: read random run id: %w", err)
	}
	seed := uint64(cfg.Seed)
	if seed == 0 {
		seed = binary.LittleEndian.Uint64(b[8:])
	}
	// The run id is random even with a fixed seed: two runs must never
	// share event ids, or the server would take the second's as duplicates.
	runID := hex.EncodeToString(b[:4])
	logger = logger.With("run", runID)
	place := placement(cfg.Seed)
	behave := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	root := strings.TrimRight(cfg.BaseURL, "/")
	d := &Devices{
		cfg:     cfg,
		logger:  logger,
		runID:   runID,
		camURL:  root + "/api/v1/ingest/camera-events",
		readURL: root + "/api/v1/ingest/sensor-readings",
		world: newDeviceWorld(place, behave, cfg.Location, sites, cfg.Cameras, cfg.Sensors, cfg.Gauges,
			"simdev-"+runID, logger),
		cams:  &queue[ingest.CameraEventWire]{limit: deviceQueueLimit},
		reads: &queue[ingest.SensorReadingWire]{limit: deviceQueueLimit},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_simulator_device_reports_sent_total",
			Help: "Camera events and sensor readings the server accepted from the device simulator, by kind (camera, sensor).",
		}, []string{"kind"}),
		postErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_simulator_device_post_errors_total",
			Help: "Device simulator ingest POSTs that did not end in 202 (network errors, 503, 4xx).",
		}),
	}
	if pace == PaceField {
		d.world.fieldCameras()
		d.world.field = true
	}
	d.sent.WithLabelValues("camera")
	d.sent.WithLabelValues("sensor")
	camSent, readSent := d.sent.WithLabelValues("camera"), d.sent.WithLabelValues("sensor")
	d.camSend = newSender(d.cams, d.poster(d.camURL), jsonArray[ingest.CameraEventWire],
		func(b []ingest.CameraEventWire, i int) string { return b[i].EventID },
		func(_ []ingest.CameraEventWire, a answer) {
			if !a.refused {
				camSent.Add(float64(a.accepted))
			}
		})
	d.readSend = newSender(d.reads, d.poster(d.readURL), jsonArray[ingest.SensorReadingWire],
		func(b []ingest.SensorReadingWire, i int) string {
			return b[i].SensorID + "/" + b[i].Kind + "/" + b[i].ObservedAt
		},
		func(_ []ingest.SensorReadingWire, a answer) {
			if !a.refused {
				readSent.Add(float64(a.accepted))
			}
		})
	if reg != nil {
		for _, c := range []prometheus.Collector{d.sent, d.postErrs} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("simulator: devices: register metrics (one device simulator per registry): %w", err)
			}
		}
	}
	return d, nil
}

// fleet checks the sites and the counts of cfg and fills in the defaults
// (counts, Location); it returns the distinct sites devices are placed on.
// The live simulator and the history place the same devices from them.
func (cfg DevicesConfig) fleet() (DevicesConfig, []Site, error) {
	switch {
	case len(cfg.Sites) == 0:
		return cfg, nil, errors.New("simulator: devices: Sites is empty: supply candidate positions, several per commune, each inside its unit")
	case cfg.Tick < 0:
		return cfg, nil, fmt.Errorf("simulator: devices: Tick %s is negative; use zero for the default %s", cfg.Tick, defaultTick)
	}
	for i, s := range cfg.Sites {
		switch {
		case strings.TrimSpace(s.Area) == "":
			return cfg, nil, fmt.Errorf("simulator: devices: Sites[%d] has no Area; give the code of the unit the position is in", i)
		case len(s.Area) > 64 || strings.ContainsAny(s.Area, "/+# ") || strings.ContainsFunc(s.Area, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return cfg, nil, fmt.Errorf("simulator: devices: Sites[%d] area %q cannot be part of a device id: use a unit code of at most 64 bytes without spaces, / + # or control characters", i, s.Area)
		case math.IsNaN(s.Lat) || s.Lat < -90 || s.Lat > 90 || math.IsNaN(s.Lon) || s.Lon < -180 || s.Lon > 180:
			return cfg, nil, fmt.Errorf("simulator: devices: Sites[%d] lat %v, lon %v is out of range -90..90, -180..180; check that they are not swapped", i, s.Lat, s.Lon)
		}
	}
	counts := []*int{&cfg.Cameras, &cfg.Sensors, &cfg.Gauges}
	for i, def := range []int{defaultCameras, defaultSensors, defaultGauges} {
		switch n := counts[i]; {
		case *n == 0:
			*n = def
		case *n < 0:
			*n = 0
		}
	}
	sites := distinctSites(cfg.Sites)
	if need := cfg.Cameras + cfg.Sensors + cfg.Gauges; need > len(sites) {
		return cfg, nil, fmt.Errorf("simulator: devices: Sites holds %d distinct positions for %d devices; supply more sites per unit or fewer Cameras, Sensors or Gauges",
			len(sites), need)
	}
	if cfg.Location == nil {
		cfg.Location = defaultLocation()
	}
	return cfg, sites, nil
}

// placement is the random stream that places devices: seeded by Seed
// alone, so that restarts and the history reuse the same devices at the
// same places.
func placement(seed int64) *mrand.Rand {
	return mrand.New(mrand.NewPCG(uint64(seed), 0x5851f42d4c957f2d))
}

// distinctSites drops repeated positions, keeping the first.
func distinctSites(sites []Site) []Site {
	seen := make(map[Site]bool, len(sites))
	out := make([]Site, 0, len(sites))
	for _, s := range sites {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Run steps the world on its clock every Tick and sends what it reports
// until ctx is cancelled, then returns nil. Reports still unsent at that
// point are discarded.
func (d *Devices) Run(ctx context.Context) error {
	if !d.stepping.CompareAndSwap(false, true) {
		return errDevicesBusy
	}
	defer d.stepping.Store(false)
	if !d.flushing.CompareAndSwap(false, true) {
		return errDevicesBusy
	}
	defer d.flushing.Store(false)
	w := d.world
	d.logger.Info("device simulator started", "pace", d.cfg.Pace, "cameras", len(w.cams), "air_sensors", len(w.airs),
		"gauges", len(w.gauges), "hot_spots", len(w.hot), "tick", d.cfg.Tick)

	// The senders' errors were logged as they happened.
	var wg sync.WaitGroup
	wg.Go(func() { every(ctx, d.cfg.Tick, func() { _ = d.camSend.flush(ctx, d.now()) }) })
	wg.Go(func() { every(ctx, d.cfg.Tick, func() { _ = d.readSend.flush(ctx, d.now()) }) })
	d.step(d.cfg.Now())
	every(ctx, d.cfg.Tick, func() { d.step(d.cfg.Now()) })
	wg.Wait()
	d.logger.Info("device simulator stopped")
	return nil
}

var errDevicesBusy = errors.New("simulator: devices: already driven: Run runs alone, and Step and Flush each once at a time, never while Run runs")

func (d *Devices) poster(endpoint string) poster {
	return poster{endpoint: endpoint, token: d.cfg.Token, contentType: "application/json",
		client: d.cfg.HTTPClient, logger: d.logger, postErrors: d.postErrs}
}

// Step advances the world to now and queues every report due by then, each
// stamped with its own time, for Flush to send; a time before the previous
// step's adds nothing. Reports more than ten minutes behind now are skipped
// rather than replayed in a burst. A queue past its bound (about twenty
// minutes of peak camera traffic) drops its oldest reports, as while the
// server is away. Step does not block.
func (d *Devices) Step(now time.Time) error {
	if !d.stepping.CompareAndSwap(false, true) {
		return errDevicesBusy
	}
	defer d.stepping.Store(false)
	d.step(now)
	return nil
}

// Flush sends every report Step has queued, camera events first, and
// returns once the server has answered every batch; a batch the server is
// busy for is resent until it is taken. It returns nil when the server took
// them all, ctx's error when ctx ended first, and otherwise what the server
// refused. After the server refuses the token, sending pauses for a minute
// of simulated time, and Flush says so at once until a Step reaches its end.
func (d *Devices) Flush(ctx context.Context) error {
	if !d.flushing.CompareAndSwap(false, true) {
		return errDevicesBusy
	}
	defer d.flushing.Store(false)
	now := d.now()
	err := d.camSend.flush(ctx, now)
	if ctx.Err() == nil {
		err = errors.Join(err, d.readSend.flush(ctx, now))
	}
	if err != nil {
		return fmt.Errorf("simulator: devices: flush: %w", err)
	}
	return nil
}

func (d *Devices) now() time.Time { return time.Unix(0, d.stepped.Load()) }

// step advances the world and queues its reports; the queues drop the
// oldest while the server is away. Only the holder of stepping calls it.
func (d *Devices) step(now time.Time) {
	if now.UnixNano() > d.stepped.Load() {
		d.stepped.Store(now.UnixNano())
	}
	b := &d.batch
	d.world.advance(now, b)
	if n := d.cams.push(b.cams); n > 0 {
		d.logger.Warn("camera event queue full while the server is unavailable; dropped the oldest", "events", n)
	}
	if n := d.reads.push(b.reads); n > 0 {
		d.logger.Warn("sensor reading queue full while the server is unavailable; dropped the oldest", "readings", n)
	}
	b.reset()
}

// deviceBatch is what one advance of the world reports.
type deviceBatch struct {
	cams  []ingest.CameraEventWire
	reads []ingest.SensorReadingWire
}

func (b *deviceBatch) reset() {
	clear(b.cams)
	clear(b.reads)
	b.cams, b.reads = b.cams[:0], b.reads[:0]
}

// Timings of the device world. Episodes are compressed against the server's
// default rules so that a demo sees alarms open and close within minutes:
// PM2.5 ≥ 55.5 sustained 5 minutes, a water level at its alert level, 10
// violations in 5 minutes at one camera, a device silent for 10 minutes.
const (
	reportPeriod = time.Minute // heartbeats and readings

	firstSmog             = time.Minute
	smogEvery, smogJitter = 30 * time.Minute, 20 * time.Minute // start to start: 30–50 min
	smogLen, smogLenJit   = 8 * time.Minute, 4 * time.Minute   // above the threshold: 8–12 min
	smogFloor             = 57.0                               // every reading of an episode is above 55.5

	firstFlood              = 2 * time.Minute
	floodEvery, floodJitter = 40 * time.Minute, 20 * time.Minute // 40–60 min
	floodRise               = 4 * time.Minute
	floodHold, floodHoldJit = 5 * time.Minute, 2 * time.Minute // at the crest: 5–7 min
	floodRecede             = 2 * time.Minute
	alertLevel, dangerLevel = 1.5, 1.8
	tidePeriod              = 12*time.Hour + 25*time.Minute // semi-diurnal tide

	firstOutage               = 3 * time.Minute
	outageEvery, outageJitter = 13 * time.Minute, 4 * time.Minute // 13–17 min
	outageLen, outageLenJit   = 13 * time.Minute, 3 * time.Minute // 13–16 min
	maxSilent                 = 2

	burstMin, burstExtra  = 12, 7                               // violations per burst: 12–18
	burstLen, burstLenJit = 150 * time.Second, 90 * time.Second // within 2.5–4 min
	burstGap, burstGapJit = 15 * time.Minute, 20 * time.Minute  // quiet between bursts: 15–35 min
	rushJitter            = 20 * time.Minute                    // hot spots do not all start at 07:00
)

// At field pace, and in the history, a hot spot bursts once or twice a rush
// hour rather than every half hour: the burst rule still trips in every
// rush hour, and the violations stay few, as the history's must to stay
// cheap to write.
const fieldBurstGap, fieldBurstGapJit = 75 * time.Minute, 30 * time.Minute // quiet between bursts: 75–105 min

type deviceKind int

const (
	cameraDev deviceKind = iota
	airDev
	gaugeDev
)

// simDevice is one simulated device; the world owns it.
type simDevice struct {
	id       string
	kind     deviceKind
	site     Site
	lat, lon *float64 // shared by every report, which only reads them
	next     time.Time
	// An outage: silent in [silentFrom, silentUntil).
	silentFrom, silentUntil time.Time

	// Cameras.
	weight    float64
	hot       bool
	burst     []time.Time // violations of the current burst still to report
	nextBurst time.Time

	// Air-quality stations: an episode is [epFrom, epUntil); baseline is
	// pmBase as placed, before the day's weather.
	pmBase, pm10Ratio float64
	baseline          float64
	epFrom, epUntil   time.Time
	epPeak            float64

	// Gauges: the flood rises from floodFrom, holds from floodTop, recedes
	// from floodHold and is over at floodEnd.
	tideMean, tideAmp, tidePhase             float64
	floodFrom, floodTop, floodHold, floodEnd time.Time
	floodPeak                                float64
}

func (d *simDevice) silent(t time.Time) bool {
	return !t.Before(d.silentFrom) && t.Before(d.silentUntil)
}

// busy reports whether an episode or outage of d meets [from, to).
func (d *simDevice) busy(from, to time.Time) bool {
	meets := func(a, b time.Time) bool { return a.Before(to) && b.After(from) }
	return meets(d.silentFrom, d.silentUntil) || meets(d.epFrom, d.epUntil) || meets(d.floodFrom, d.floodEnd)
}

// deviceWorld is the simulated network of devices: asked to advance to now,
// it reports everything due up to now, each stamped with its own time, so
// that what it reports does not depend on how often it is advanced. It is
// owned by one goroutine and not safe for concurrent use.
type deviceWorld struct {
	rng      *mrand.Rand
	loc      *time.Location
	evPrefix string
	logger   *slog.Logger

	devs                    []*simDevice
	cams, airs, gauges, hot []*simDevice
	camCum                  []float64
	candRate                float64 // candidate detections per second at full rhythm, before detectShare
	alert, danger           float64 // addressed by every gauge reading
	started                 bool
	nextDetect              time.Time
	nextSmog, nextFlood     time.Time // zero: none of the devices to have them
	nextOutage              time.Time
	seq                     uint64

	// detectShare thins the detections (bursts aside): 1 at demo pace,
	// the history's share at field pace; burstGap and burstGapJit are the
	// quiet between a hot spot's bursts.
	detectShare           float64
	burstGap, burstGapJit time.Duration
	// field has the sensors follow the history's weather (haze and floods
	// by season, planned each local day at nextDay) instead of the demo's
	// episodes; phase1 and phase2 are the phases of the slow weather that
	// moves PM2.5 from day to day.
	field          bool
	nextDay        time.Time
	phase1, phase2 float64
}

func newDeviceWorld(place, behave *mrand.Rand, loc *time.Location, sites []Site, cams, airs, gauges int, evPrefix string, logger *slog.Logger) *deviceWorld {
	w := &deviceWorld{rng: behave, loc: loc, evPrefix: evPrefix, logger: logger, alert: alertLevel, danger: dangerLevel, detectShare: 1,
		burstGap: burstGap, burstGapJit: burstGapJit}
	order := spread(place, sites)
	number := map[string]int{}
	add := func(kind deviceKind, prefix string, s Site) *simDevice {
		key := prefix + "-" + s.Area
		number[key]++
		lat, lon := s.Lat, s.Lon
		d := &simDevice{id: key + "-" + strconv.Itoa(number[key]), kind: kind, site: s, lat: &lat, lon: &lon}
		w.devs = append(w.devs, d)
		return d
	}
	for _, s := range order[:cams] {
		d := add(cameraDev, "CAM", s)
		d.weight = 0.6 + 0.8*place.Float64()
		w.cams = append(w.cams, d)
	}
	for _, s := range order[cams : cams+airs] {
		d := add(airDev, "AQ", s)
		d.pmBase = 22 + 10*place.Float64()
		d.baseline = d.pmBase
		d.pm10Ratio = 1.5 + 0.3*place.Float64()
		w.airs = append(w.airs, d)
	}
	for _, s := range order[cams+airs : cams+airs+gauges] {
		d := add(gaugeDev, "WL", s)
		d.tideMean = 0.82 + 0.06*place.Float64()
		d.tideAmp = 0.13 + 0.05*place.Float64()
		d.tidePhase = 0.5 * place.Float64() // gauges up and down river meet the tide at different times
		w.gauges = append(w.gauges, d)
	}
	if len(w.cams) > 0 {
		for _, i := range place.Perm(len(w.cams))[:max(1, len(w.cams)/16)] {
			w.cams[i].hot = true
			w.hot = append(w.hot, w.cams[i])
		}
		sum := 0.0
		for _, d := range w.cams {
			sum += d.weight
			w.camCum = append(w.camCum, sum)
		}
		w.candRate = sum * maxDetectPerMin / 60
	}
	return w
}

// spread orders sites so that devices taken from the front stand in as many
// areas as possible: one site of every area (in an order drawn from rng),
// then a second, and so on.
func spread(rng *mrand.Rand, sites []Site) []Site {
	byArea := map[string][]Site{}
	for _, s := range sites {
		byArea[s.Area] = append(byArea[s.Area], s)
	}
	areas := make([]string, 0, len(byArea))
	for a := range byArea {
		areas = append(areas, a)
	}
	slices.Sort(areas) // map order is random; the seed alone must decide
	rng.Shuffle(len(areas), func(i, j int) { areas[i], areas[j] = areas[j], areas[i] })
	for _, a := range areas {
		ss := byArea[a]
		rng.Shuffle(len(ss), func(i, j int) { ss[i], ss[j] = ss[j], ss[i] })
	}
	out := make([]Site, 0, len(sites))
	for r := 0; len(out) < len(sites); r++ {
		for _, a := range areas {
			if r < len(byArea[a]) {
				out = append(out, byArea[a][r])
			}
		}
	}
	return out
}

// uniform returns base plus a uniform share of jitter.
func (w *deviceWorld) uniform(base, jitter time.Duration) time.Duration {
	return base + time.Duration(w.rng.Int64N(int64(jitter)+1))
}

func (w *deviceWorld) begin(now time.Time) {
	w.started = true
	for _, d := range w.devs {
		// Spread the minute's reports so the server sees a steady stream.
		d.next = now.Add(time.Duration(w.rng.Int64N(int64(reportPeriod))))
	}
	for _, d := range w.hot {
		d.nextBurst = w.rushFrom(now)
	}
	w.nextDetect = now.Add(w.detectGap())
	if w.field {
		w.phase1, w.phase2 = 2*math.Pi*w.rng.Float64(), 2*math.Pi*w.rng.Float64()
		y, m, d := now.In(w.loc).Date()
		w.planDay(time.Date(y, m, d, 0, 0, 0, 0, w.loc))
	} else {
		if len(w.airs) > 0 {
			w.nextSmog = now.Add(firstSmog)
		}
		if len(w.gauges) > 0 {
			w.nextFlood = now.Add(firstFlood)
		}
	}
	if len(w.devs) > len(w.hot) {
		w.nextOutage = now.Add(firstOutage)
	}
}

// advance appends to b everything reported at or before now. Reports that
// fell behind by more than maxCatchUp (the host slept, the clock jumped) are
// skipped rather than replayed in a burst.
func (w *deviceWorld) advance(now time.Time, b *deviceBatch) {
	if !w.started {
		w.begin(now)
	}
	floor := now.Add(-maxCatchUp)
	// Plan what starts by now, earliest first, so that every plan sees the
	// ones made before it.
	for {
		next, which := time.Time{}, 0
		for i, t := range []time.Time{w.nextOutage, w.nextSmog, w.nextFlood, w.nextDay} {
			if !t.IsZero() && !t.After(now) && (next.IsZero() || t.Before(next)) {
				next, which = t, i+1
			}
		}
		if which == 0 {
			break
		}
		switch which {
		case 1:
			w.planOutage(next)
		case 2:
			w.planSmog(next)
		case 3:
			w.planFlood(next)
		case 4:
			w.planDay(next)
		}
	}
	for _, d := range w.devs {
		if d.next.Before(floor) {
			d.next = d.next.Add((floor.Sub(d.next)/reportPeriod + 1) * reportPeriod)
		}
		for ; !d.next.After(now); d.next = d.next.Add(reportPeriod) {
			if !d.silent(d.next) {
				w.report(d, d.next, b)
			}
		}
	}
	for _, d := range w.hot {
		w.bursts(d, now, floor, b)
	}
	w.detect(now, floor, b)
}

// report appends d's periodic report at t: a camera's heartbeat, a
// station's or gauge's readings.
func (w *deviceWorld) report(d *simDevice, t time.Time, b *deviceBatch) {
	switch d.kind {
	case cameraDev:
		b.cams = append(b.cams, w.camEvent(d, t, device.HeartbeatType, "info", nil))
	case airDev:
		pm := w.pm25(d, t)
		local := t.In(w.loc)
		// A warm afternoon, a humid night.
		day := math.Cos(2 * math.Pi * (hourOf(local) - 14) / 24)
		temp := 28.5 + 4*day + 0.3*w.rng.NormFloat64()
		hum := min(max(76-12*day+1.5*w.rng.NormFloat64(), 40), 98)
		pm10 := max(pm*d.pm10Ratio+3*w.rng.NormFloat64(), pm)
		b.reads = append(b.reads,
			w.reading(d, t, "pm25", "ug/m3", round(pm, 1)),
			w.reading(d, t, "pm10", "ug/m3", round(pm10, 1)),
			w.reading(d, t, "temperature", "C", round(temp, 1)),
			w.reading(d, t, "humidity", "%", round(hum, 1)))
	case gaugeDev:
		r := w.reading(d, t, "water_level", "m", round(w.level(d, t), 2))
		r.AlertLevel, r.DangerLevel = &w.alert, &w.danger
		b.reads = append(b.reads, r)
	}
}

func (w *deviceWorld) camEvent(d *simDevice, t time.Time, typ, severity string, attrs map[string]any) ingest.CameraEventWire {
	w.seq++
	return ingest.CameraEventWire{
		EventID:    w.evPrefix + "-" + strconv.FormatUint(w.seq, 10),
		CameraID:   d.id,
		Type:       typ,
		Severity:   severity,
		Lat:        d.lat,
		Lon:        d.lon,
		OccurredAt: t.In(w.loc).Format(time.RFC3339),
		Attrs:      attrs,
	}
}

// reading leaves the event id out: the server derives one from the
// sensor, kind and time, so a resent reading still counts once.
func (w *deviceWorld) reading(d *simDevice, t time.Time, kind, unit string, v float64) ingest.SensorReadingWire {
	return ingest.SensorReadingWire{
		SensorID: d.id, Kind: kind, Value: &v, Unit: unit, Lat: d.lat, Lon: d.lon,
		ObservedAt: t.In(w.loc).Format(time.RFC3339),
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

func hourOf(t time.Time) float64 {
	return float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600
}

func bump(h, centre, width float64) float64 {
	x := (h - centre) / width
	return math.Exp(-x * x / 2)
}

// pm25 is a station's PM2.5 at t: within an episode above the alarm
// threshold throughout, otherwise a baseline of 15–45 that is higher in
// rush hours and lower in the mid-afternoon, when the air mixes best.
func (w *deviceWorld) pm25(d *simDevice, t time.Time) float64 {
	if !t.Before(d.epFrom) && t.Before(d.epUntil) {
		// Up to the peak in the first quarter, down in the last fifth.
		span := d.epUntil.Sub(d.epFrom).Seconds()
		x := t.Sub(d.epFrom).Seconds() / span
		shape := min(1, x/0.25, (1-x)/0.2)
		v := smogFloor + 2 + (d.epPeak-smogFloor-2)*shape
		return max(v*(1+0.04*w.rng.NormFloat64()), smogFloor)
	}
	h := hourOf(t.In(w.loc))
	cycle := 1 + 0.3*bump(h, 8, 1) + 0.25*bump(h, 17.75, 1.2) - 0.3*bump(h, 15, 1.5)
	return min(max(d.pmBase*cycle+2.5*w.rng.NormFloat64(), 15), 45)
}

// tide is a gauge's level without a flood: 0.6–1.1 m with the
// semi-diurnal tide, on absolute time so that restarts continue it.
func (w *deviceWorld) tide(d *simDevice, t time.Time) float64 {
	phase := float64(t.UnixNano())/float64(tidePeriod) + d.tidePhase
	return d.tideMean + d.tideAmp*math.Cos(2*math.Pi*phase)
}

func (w *deviceWorld) level(d *simDevice, t time.Time) float64 {
	base := min(max(w.tide(d, t)+0.01*w.rng.NormFloat64(), 0.6), 1.1)
	switch {
	case t.Before(d.floodFrom) || !t.Before(d.floodEnd):
		return base
	case t.Before(d.floodTop):
		// The rise takes floodRise live, hours in the history's floods.
		x := t.Sub(d.floodFrom).Seconds() / d.floodTop.Sub(d.floodFrom).Seconds()
		return base + (d.floodPeak-base)*x
	case t.Before(d.floodHold):
		return max(d.floodPeak+0.01*w.rng.NormFloat64(), alertLevel+0.03)
	default:
		x := t.Sub(d.floodHold).Seconds() / d.floodEnd.Sub(d.floodHold).Seconds()
		return d.floodPeak - (d.floodPeak-base)*x
	}
}

// planDay gives the sensors the weather of local day date, as the history
// draws it (haze and floods by season, which may start that day), at field
// pace; an episode of the day before goes on.
func (w *deviceWorld) planDay(date time.Time) {
	weather := w.weather(date)
	for _, d := range w.airs {
		d.pmBase = d.baseline * weather
	}
	w.haze(date, time.Time{})
	w.flood(date, time.Time{})
	w.nextDay = date.AddDate(0, 0, 1)
}

// planSmog starts a PM2.5 episode at t over a cluster of 2–4 neighbouring
// stations that are reporting throughout.
func (w *deviceWorld) planSmog(t time.Time) {
	w.nextSmog = t.Add(w.uniform(smogEvery, smogJitter))
	dur := w.uniform(smogLen, smogLenJit)
	var free []*simDevice
	for _, d := range w.airs {
		if !d.busy(t, t.Add(dur)) {
			free = append(free, d)
		}
	}
	if len(free) == 0 {
		return
	}
	c := free[w.rng.IntN(len(free))]
	near := func(d *simDevice) float64 {
		dx := (d.site.Lon - c.site.Lon) * math.Cos(c.site.Lat*math.Pi/180)
		dy := d.site.Lat - c.site.Lat
		return dx*dx + dy*dy
	}
	slices.SortStableFunc(free, func(a, b *simDevice) int { return cmp.Compare(near(a), near(b)) })
	cluster := free[:min(2+w.rng.IntN(3), len(free))]
	peak := 75 + 35*w.rng.Float64()
	ids := make([]string, len(cluster))
	for i, d := range cluster {
		d.epFrom, d.epUntil = t, t.Add(dur)
		d.epPeak = 60 + (peak-60)*(0.6+0.4*w.rng.Float64()) // 60–110 µg/m³
		ids[i] = d.id
	}
	w.logger.Info("simulated PM2.5 episode", "sensors", ids, "from", t.In(w.loc).Format(time.TimeOnly), "minutes", dur.Minutes())
}

// planFlood starts a flood at t at one gauge that is reporting throughout.
func (w *deviceWorld) planFlood(t time.Time) {
	w.nextFlood = t.Add(w.uniform(floodEvery, floodJitter))
	hold := w.uniform(floodHold, floodHoldJit)
	end := t.Add(floodRise + hold + floodRecede)
	var free []*simDevice
	for _, d := range w.gauges {
		if !d.busy(t, end) {
			free = append(free, d)
		}
	}
	if len(free) == 0 {
		return
	}
	d := free[w.rng.IntN(len(free))]
	d.floodFrom, d.floodTop, d.floodHold, d.floodEnd = t, t.Add(floodRise), t.Add(floodRise+hold), end
	d.floodPeak = 1.55 + 0.35*w.rng.Float64()
	w.logger.Info("simulated flood", "gauge", d.id, "from", t.In(w.loc).Format(time.TimeOnly), "crest_m", round(d.floodPeak, 2))
}

// planOutage silences one device from t, unless maxSilent already are.
// Hot spots and devices in an episode are spared, so that each alarm the
// demo shows has one cause.
func (w *deviceWorld) planOutage(t time.Time) {
	w.nextOutage = t.Add(w.uniform(outageEvery, outageJitter))
	// Whole seconds, as report times are sent: a report stamped at the
	// boundary falls on the same side of it on both ends of the wire.
	t = t.Truncate(time.Second).Add(time.Second)
	dur := w.uniform(outageLen, outageLenJit).Truncate(time.Second)
	silent := 0
	var free []*simDevice
	for _, d := range w.devs {
		switch {
		case d.silentUntil.After(t):
			silent++
		case !d.hot && !d.busy(t, t.Add(dur)):
			free = append(free, d)
		}
	}
	if silent >= maxSilent || len(free) == 0 {
		return
	}
	d := free[w.rng.IntN(len(free))]
	d.silentFrom, d.silentUntil = t, t.Add(dur)
	w.logger.Info("simulated device outage", "device", d.id, "from", t.In(w.loc).Format(time.TimeOnly), "minutes", dur.Minutes())
}

// Detections a camera makes per minute at full activity, and their bound.
const (
	violationsPerMin = 0.35
	congestionPerMin = 0.15
	platesPerMin     = 0.8
	accidentsPerMin  = 0.0015
	crowdsPerMin     = 0.03
	maxDetectPerMin  = violationsPerMin + congestionPerMin + platesPerMin + accidentsPerMin + crowdsPerMin
)

// activityKnots is road traffic by hour of day, 1 in rush hours
// (07:00–09:00, 16:30–19:00); activity interpolates between them.
var activityKnots = [][2]float64{
	{0, 0.10}, {4.5, 0.08}, {5.5, 0.3}, {6.5, 0.7}, {7, 1}, {9, 1}, {9.5, 0.65}, {11.5, 0.6},
	{12.5, 0.5}, {13.5, 0.6}, {16, 0.7}, {16.5, 1}, {19, 1}, {19.5, 0.7}, {22, 0.45}, {23, 0.2}, {24, 0.10},
}

func activity(h float64) float64 {
	for i := 1; i < len(activityKnots); i++ {
		a, b := activityKnots[i-1], activityKnots[i]
		if h <= b[0] {
			return a[1] + (b[1]-a[1])*(h-a[0])/(b[0]-a[0])
		}
	}
	return activityKnots[len(activityKnots)-1][1]
}

func rushHour(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	return m >= 7*60 && m < 9*60 || m >= 16*60+30 && m < 19*60
}

var detectionTypes = [...]string{"traffic_violation", "congestion", "plate_read", "accident", "crowd"}

// detectionRates are a camera's detections per minute at local time t, in
// the order of detectionTypes.
func detectionRates(t time.Time) [len(detectionTypes)]float64 {
	h := hourOf(t)
	a := activity(h)
	plates := platesPerMin * 0.12 // number plates are hard to read at night
	if h >= 6 && h < 22 {
		plates = platesPerMin
	}
	crowds := crowdsPerMin * 0.07
	switch {
	case h >= 18 && h < 22: // walking streets and night markets
		crowds = crowdsPerMin
	case h >= 8 && h < 18:
		crowds = crowdsPerMin * 0.4
	}
	return [...]float64{violationsPerMin * a, congestionPerMin * a * a * a, plates, accidentsPerMin * a, crowds}
}

// fieldCameras has the cameras detect as a History's do.
func (w *deviceWorld) fieldCameras() {
	w.detectShare, w.burstGap, w.burstGapJit = historyDetectShare, fieldBurstGap, fieldBurstGapJit
}

func (w *deviceWorld) detectGap() time.Duration {
	if w.candRate == 0 {
		return 24 * time.Hour
	}
	return time.Duration(w.rng.ExpFloat64() / (w.candRate * w.detectShare) * float64(time.Second))
}

// detect draws candidate detections at the bound rate and keeps each with
// the rhythm's share at its time, which makes them an exact
// non-homogeneous Poisson process; a silent camera detects nothing.
func (w *deviceWorld) detect(now, floor time.Time, b *deviceBatch) {
	if len(w.cams) == 0 {
		return
	}
	if w.nextDetect.Before(floor) {
		w.nextDetect = floor.Add(w.detectGap())
	}
	for ; !w.nextDetect.After(now); w.nextDetect = w.nextDetect.Add(w.detectGap()) {
		t := w.nextDetect
		rates := detectionRates(t.In(w.loc))
		x := w.rng.Float64() * maxDetectPerMin
		typ := -1
		for i, r := range rates {
			if x < r {
				typ = i
				break
			}
			x -= r
		}
		if typ < 0 {
			continue
		}
		d := w.cams[pick(w.rng, w.camCum)]
		if d.silent(t) {
			continue
		}
		b.cams = append(b.cams, w.detection(d, t, detectionTypes[typ]))
	}
}

func (w *deviceWorld) detection(d *simDevice, t time.Time, typ string) ingest.CameraEventWire {
	switch typ {
	case "traffic_violation":
		return w.camEvent(d, t, typ, "warning", w.violation())
	case "congestion":
		return w.camEvent(d, t, typ, "warning", map[string]any{
			"speed_kmh": 3 + w.rng.IntN(12), "queue_m": 50 * (1 + w.rng.IntN(8)),
		})
	case "plate_read":
		return w.camEvent(d, t, typ, "info", map[string]any{
			"plate": w.plate(), "vehicle": [...]string{"car", "car", "car", "van", "truck", "bus"}[w.rng.IntN(6)],
		})
	case "accident":
		return w.camEvent(d, t, typ, "critical", map[string]any{"vehicles": 2 + w.rng.IntN(2)})
	default:
		return w.camEvent(d, t, typ, "warning", map[string]any{"people": 50 + 10*w.rng.IntN(25)})
	}
}

func (w *deviceWorld) violation() map[string]any {
	a := map[string]any{"plate": w.plate()}
	switch w.rng.IntN(3) {
	case 0:
		a["violation"] = "red_light"
	case 1:
		a["violation"] = "speeding"
		a["limit_kmh"] = 60
		a["speed_kmh"] = 66 + w.rng.IntN(30)
	default:
		a["violation"] = "wrong_lane"
	}
	return a
}

// plate draws a car plate of Ho Chi Minh City (50–59, 41) or of the
// provinces merged into it in 2025 (61 Binh Duong, 72 Ba Ria–Vung Tau).
func (w *deviceWorld) plate() string {
	codes := [...]string{"51", "51", "50", "59", "41", "61", "72"}
	const series = "ABCDEFGHKL"
	return fmt.Sprintf("%s%c-%03d.%02d", codes[w.rng.IntN(len(codes))], series[w.rng.IntN(len(series))],
		w.rng.IntN(1000), w.rng.IntN(100))
}

// rushFrom is when a hot spot's next burst may come at the earliest: soon
// if t is in rush hour, else a little after the next rush hour begins.
func (w *deviceWorld) rushFrom(t time.Time) time.Time {
	local := t.In(w.loc)
	if rushHour(local) {
		return t.Add(w.uniform(0, rushJitter/2))
	}
	y, m, day := local.Date()
	for i := 0; ; i++ {
		for _, at := range [][2]int{{7, 0}, {16, 30}} {
			if s := time.Date(y, m, day+i, at[0], at[1], 0, 0, w.loc); s.After(t) {
				return s.Add(w.uniform(0, rushJitter))
			}
		}
	}
}

// bursts reports a hot spot's burst violations due by now and plans the
// next burst: 12–18 within 4 minutes, well over the 10 in 5 minutes that
// alarm, then quiet for 15–35 minutes so that the alarm resolves.
func (w *deviceWorld) bursts(d *simDevice, now, floor time.Time, b *deviceBatch) {
	if d.nextBurst.Before(floor) {
		d.burst = nil
		d.nextBurst = w.rushFrom(floor)
	}
	for {
		if len(d.burst) > 0 {
			if d.burst[0].After(now) {
				return
			}
			b.cams = append(b.cams, w.camEvent(d, d.burst[0], "traffic_violation", "warning", w.violation()))
			d.burst = d.burst[1:]
			continue
		}
		t := d.nextBurst
		if t.After(now) {
			return
		}
		if !rushHour(t.In(w.loc)) {
			d.nextBurst = w.rushFrom(t)
			continue
		}
		dur := w.uniform(burstLen, burstLenJit)
		for range burstMin + w.rng.IntN(burstExtra) {
			d.burst = append(d.burst, t.Add(time.Duration(w.rng.Int64N(int64(dur)))))
		}
		slices.SortFunc(d.burst, func(a, b time.Time) int { return a.Compare(b) })
		d.nextBurst = t.Add(dur + w.uniform(w.burstGap, w.burstGapJit))
	}
}
