package simulator

import (
	"cmp"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// The devices' history is sparser than the live simulator's minute: an
// hourly report per device, enough for environment charts over months,
// then a report a minute in the last hour, so that every device is seen
// shortly before the live simulator takes over. Camera detections come at
// a fiftieth of the demo pace's rate (about twenty a camera a day), and
// the hot spots have their rush-hour bursts of violations, as the live
// simulator makes both at field pace, so that a day's camera counts are
// the same before and after End. Haze and floods last hours, not the live
// simulator's minutes, and end at least two hours before End, as do the
// bursts, so that no alarm rule, which looks at the last half hour, fires
// on the history.
const (
	historyReportEvery   = time.Hour
	historyDenseSpan     = time.Hour // before End, reports come every reportPeriod
	historyDetectShare   = 0.02
	historyEpisodeMargin = 2 * time.Hour
)

// fleetHistory is the live device simulator's devices, as placed from its
// configuration.
type fleetHistory struct {
	cfg   DevicesConfig
	sites []Site
}

func newFleetHistory(cfg DevicesConfig, seed uint64) (*fleetHistory, error) {
	cfg, sites, err := cfg.fleet()
	if err != nil {
		return nil, err
	}
	return &fleetHistory{cfg: cfg, sites: sites}, nil
}

// fleetGen generates the devices' days. Its world holds the devices, placed
// as the live simulator places them; its random stream is reseeded for
// every day's detections and every report, so that a report depends only
// on the seed, its device and its time.
type fleetGen struct {
	h     *History
	w     *deviceWorld
	src   *rand.PCG // the world's stream
	index map[*simDevice]int
	// hourly and dense are each device's offsets into the hour and into
	// the minute, drawn from its id, which spread the reports.
	hourly, dense []time.Duration
}

func (f *fleetHistory) generator(h *History) *fleetGen {
	src := rand.NewPCG(0, 0)
	w := newDeviceWorld(placement(f.cfg.Seed), rand.New(src), f.cfg.Location, f.sites, f.cfg.Cameras, f.cfg.Sensors, f.cfg.Gauges,
		"", slog.New(slog.DiscardHandler))
	w.fieldCameras() // the live simulator's cameras at field pace
	g := &fleetGen{h: h, w: w, src: src, index: map[*simDevice]int{}}
	for k, d := range w.devs {
		g.index[d] = k
		sum := fnv.New64a()
		sum.Write([]byte(d.id))
		src.Seed(h.seed^streamReading, sum.Sum64())
		g.hourly = append(g.hourly, time.Duration(w.rng.Int64N(int64(historyReportEvery))).Truncate(time.Second))
		g.dense = append(g.dense, time.Duration(w.rng.Int64N(int64(reportPeriod))).Truncate(time.Second))
	}
	src.Seed(h.seed^streamAir, 0)
	w.phase1, w.phase2 = 2*math.Pi*w.rng.Float64(), 2*math.Pi*w.rng.Float64()
	return g
}

// day appends the devices' records of local day date to out.
func (g *fleetGen) day(date time.Time, out *historyDay) {
	h, w := g.h, g.w
	next := date.AddDate(0, 0, 1)
	end := h.cfg.End
	// The weather of the day, then the haze and floods of the day before
	// that last into it, and the day's own, each drawn from a stream of
	// its day; none that would still be under way two hours before End.
	g.h.stream(g.src, dayKey(date), streamAir, 1)
	weather := w.weather(date)
	for _, d := range w.airs {
		d.pmBase = d.baseline * weather
		d.epFrom, d.epUntil = time.Time{}, time.Time{}
	}
	for _, d := range w.gauges {
		d.floodFrom, d.floodTop, d.floodHold, d.floodEnd = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	}
	margin := end.Add(-historyEpisodeMargin)
	for _, day := range []time.Time{date.AddDate(0, 0, -1), date} {
		g.h.stream(g.src, dayKey(day), streamAir, 2)
		w.haze(day, margin)
		g.h.stream(g.src, dayKey(day), streamFlood, 0)
		w.flood(day, margin)
	}

	b := deviceBatch{cams: out.cameras, reads: out.readings}
	g.detections(date, next, &b)
	g.bursts(date, next, &b)
	dense := end.Add(-historyDenseSpan)
	for _, d := range w.devs {
		k := g.index[d]
		if d.kind != cameraDev {
			for t := date.Add(g.hourly[k]); t.Before(next) && t.Before(dense); t = t.Add(historyReportEvery) {
				g.report(d, k, t, &b)
			}
		}
		from := dense.Add(g.dense[k])
		if from.Before(date) {
			from = from.Add((date.Sub(from) + reportPeriod - 1) / reportPeriod * reportPeriod)
		}
		for t := from; t.Before(next) && t.Before(end); t = t.Add(reportPeriod) {
			g.report(d, k, t, &b)
		}
	}
	out.cameras, out.readings = b.cams, b.reads
}

// report appends device d's report at t, drawn from a stream of its own.
func (g *fleetGen) report(d *simDevice, k int, t time.Time, b *deviceBatch) {
	g.src.Seed(g.h.seed^streamReading+uint64(k+1)<<32, uint64(t.Unix()))
	n := len(b.cams)
	g.w.report(d, t, b)
	if len(b.cams) > n { // a camera's heartbeat: named by camera and time
		b.cams[n].EventID = g.h.EventPrefix() + "hb-" + d.id + "-" + strconv.FormatInt(t.Unix(), 10)
	}
}

// weather is the share of its baseline an air station's PM2.5 is at on
// local day date: slow swings of a few days and weeks, higher in the dry
// season (December to April), when haze settles over the city. The
// history's weather, and the live simulator's at field pace.
func (w *deviceWorld) weather(date time.Time) float64 {
	key := float64(dayKey(date))
	f := 1 + 0.3*math.Sin(2*math.Pi*key/23+w.phase1) + 0.15*math.Sin(2*math.Pi*key/7.3+w.phase2) + 0.1*w.rng.NormFloat64()
	if m := date.Month(); m == time.December || m <= time.April {
		f *= 1.15
	}
	return min(max(f, 0.55), 1.6)
}

// haze may start a PM2.5 episode of a few hours on local day date over 2–4
// neighbouring stations: one day in five in the dry season, one in twelve
// in the wet; not one that would last past until (zero: any).
func (w *deviceWorld) haze(date, until time.Time) {
	if len(w.airs) == 0 {
		return
	}
	r := w.rng
	p := 1.0 / 12
	if m := date.Month(); m == time.December || m <= time.April {
		p = 1.0 / 5
	}
	if r.Float64() >= p {
		return
	}
	c := w.airs[r.IntN(len(w.airs))]
	from := date.Add(time.Duration((5 + 14*r.Float64()) * float64(time.Hour))).Truncate(time.Second)
	to := from.Add(time.Duration((3 + 6*r.Float64()) * float64(time.Hour))).Truncate(time.Second)
	peak := 75 + 35*r.Float64()
	size := 2 + r.IntN(3)
	if !until.IsZero() && to.After(until) {
		return
	}
	near := func(d *simDevice) float64 {
		dx := (d.site.Lon - c.site.Lon) * math.Cos(c.site.Lat*math.Pi/180)
		dy := d.site.Lat - c.site.Lat
		return dx*dx + dy*dy
	}
	cluster := slices.Clone(w.airs)
	slices.SortStableFunc(cluster, func(a, b *simDevice) int { return cmp.Compare(near(a), near(b)) })
	cluster = cluster[:min(size, len(cluster))]
	for _, d := range cluster {
		d.epFrom, d.epUntil = from, to
		d.epPeak = 60 + (peak-60)*(0.6+0.4*r.Float64())
	}
	if w.field {
		ids := make([]string, len(cluster))
		for i, d := range cluster {
			ids[i] = d.id
		}
		w.logger.Info("simulated haze", "sensors", ids, "from", from.In(w.loc).Format(time.DateTime), "hours", round(to.Sub(from).Hours(), 1))
	}
}

// flood may raise one gauge above its alert level for half a day on local
// day date: one day in eight in the rainy season (June to November), one in
// thirty otherwise; not one that would last past until (zero: any).
func (w *deviceWorld) flood(date, until time.Time) {
	if len(w.gauges) == 0 {
		return
	}
	r := w.rng
	p := 1.0 / 30
	if m := date.Month(); m >= time.June && m <= time.November {
		p = 1.0 / 8
	}
	if r.Float64() >= p {
		return
	}
	d := w.gauges[r.IntN(len(w.gauges))]
	from := date.Add(time.Duration(20 * r.Float64() * float64(time.Hour))).Truncate(time.Second)
	hold := time.Duration((3 + 3*r.Float64()) * float64(time.Hour)).Truncate(time.Second)
	peak := 1.55 + 0.35*r.Float64()
	end := from.Add(2*time.Hour + hold + 3*time.Hour)
	if !until.IsZero() && end.After(until) {
		return
	}
	d.floodFrom, d.floodTop, d.floodHold, d.floodEnd = from, from.Add(2*time.Hour), from.Add(2*time.Hour+hold), end
	d.floodPeak = peak
	if w.field {
		w.logger.Info("simulated flood", "gauge", d.id, "from", from.In(w.loc).Format(time.DateTime), "crest_m", round(peak, 2))
	}
}

// detections appends the cameras' detections over [from, to) and before
// End: the live simulator's process of detections by hour of day, thinned
// to historyDetectShare, drawn from the day's stream. Ids number them in
// time order within the day.
func (g *fleetGen) detections(from, to time.Time, b *deviceBatch) {
	w := g.w
	if len(w.cams) == 0 {
		return
	}
	to = minTime(to, g.h.cfg.End)
	g.h.stream(g.src, dayKey(from), streamCameras, 0)
	r := w.rng
	rate := w.candRate * historyDetectShare
	prefix := g.h.EventPrefix() + "cam-" + from.Format("060102") + "-"
	seq := 0
	for t := from; ; {
		t = t.Add(time.Duration(r.ExpFloat64() / rate * float64(time.Second)))
		if !t.Before(to) {
			return
		}
		rates := detectionRates(t.In(w.loc))
		x := r.Float64() * maxDetectPerMin
		typ := -1
		for i, v := range rates {
			if x < v {
				typ = i
				break
			}
			x -= v
		}
		if typ < 0 {
			continue
		}
		d := w.cams[pick(r, w.camCum)]
		ev := w.detection(d, t.Truncate(time.Second), detectionTypes[typ])
		seq++
		ev.EventID = prefix + strconv.Itoa(seq)
		b.cams = append(b.cams, ev)
	}
}

// bursts appends the hot spots' rush-hour bursts of violations over
// [from, to), a local day, as the live simulator makes them, each hot
// spot's drawn from a stream of its own for the day; none in the last
// hours before End. Ids number a hot spot's violations of the day in time
// order.
func (g *fleetGen) bursts(from, to time.Time, b *deviceBatch) {
	w := g.w
	until := minTime(to, g.h.cfg.End.Add(-historyEpisodeMargin)).Add(-time.Nanosecond)
	if until.Before(from) {
		return
	}
	for k, d := range w.hot {
		g.h.stream(g.src, dayKey(from), streamBursts, k)
		d.burst, d.nextBurst = nil, w.rushFrom(from)
		n := len(b.cams)
		w.bursts(d, until, from, b)
		prefix := g.h.EventPrefix() + "burst-" + from.Format("060102") + "-" + d.id + "-"
		for i := n; i < len(b.cams); i++ {
			b.cams[i].EventID = prefix + strconv.Itoa(i-n+1)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
