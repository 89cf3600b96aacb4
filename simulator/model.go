package simulator

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/openioc/ioc/ingest"
)

// Shares the model is calibrated to (field figures where known) and its
// bounds.
const (
	shareOnline       = 0.985 // Binh Duong 2024–25: 98.53% of dossiers filed online
	shareOnlineFull   = 0.80  // of online dossiers
	sharePostal       = 0.20  // of offline dossiers; the rest are filed in person
	shareDigitized    = 0.90
	shareEResult      = 0.85
	sharePaidOnline   = 0.60 // of dossiers whose procedure bears a fee
	shareReusedData   = 0.40
	shareAskedTwice   = 0.15 // of dossiers asked for documents
	shareProvince     = 0.03 // filed at the provincial desk rather than a commune's
	shareWithdrawn    = 0.015
	shareWithdrawnIn  = 0.50 // of withdrawn dossiers, those withdrawn once in processing
	shareRejected     = 0.02 // of dossiers not withdrawn
	shareSupplement   = 0.10 // of dossiers not withdrawn
	shareOnTime       = 0.95 // of resolved dossiers
	zipfExponent      = 0.8
	rhythmFloor       = 0.25
	maxOpen           = 5000
	maxCatchUp        = 10 * time.Minute
	minReturnInterval = 5 * time.Second
	minWindow         = 30 * time.Second
	lifeShare         = 0.8 // of the due window, from reception to closing
)

// eventsPerDossier is the expected length of a lifecycle; dividing the event
// rate by it gives the intake rate that keeps the total near Config.Rate.
var eventsPerDossier = func() float64 {
	withdrawn := 2 + shareWithdrawnIn
	rest := 2 + 2*shareSupplement + shareRejected*1 + (1-shareRejected)*2
	return shareWithdrawn*withdrawn + (1-shareWithdrawn)*rest
}()

// procedure is a catalog entry. Due windows are compressed so that a demo
// shows whole lifecycles within the hour, keeping the order of the legal
// deadlines: a certified copy within the day, land registration in weeks.
type procedure struct {
	code, sector   string
	weight         float64
	dueMin, dueMax time.Duration
	fee            bool
}

// catalog is illustrative: the codes are shaped like the national database's
// and the shares follow a commune desk's usual mix (certified copies and
// civil status dominate; land and construction are rarer and slower).
var catalog = []procedure{
	{"2.000908", "justice", 24, 3 * time.Minute, 5 * time.Minute, true},          // certified copy
	{"1.001193", "civil_status", 16, 4 * time.Minute, 6 * time.Minute, false},    // birth registration
	{"1.000894", "civil_status", 6, 5 * time.Minute, 8 * time.Minute, false},     // marriage registration
	{"1.004227", "land", 10, 25 * time.Minute, 40 * time.Minute, true},           // land change registration
	{"1.001612", "business", 9, 10 * time.Minute, 15 * time.Minute, true},        // household business
	{"1.009994", "construction", 5, 20 * time.Minute, 30 * time.Minute, true},    // house building permit
	{"1.001776", "social_welfare", 7, 15 * time.Minute, 25 * time.Minute, false}, // social allowance
	{"2.000305", "social_welfare", 4, 10 * time.Minute, 20 * time.Minute, false}, // health insurance card
	{"1.003005", "justice", 3, 8 * time.Minute, 12 * time.Minute, true},          // contract authentication
	{"1.000656", "land", 4, 30 * time.Minute, 45 * time.Minute, true},            // land use certificate
	{"1.001695", "business", 3, 10 * time.Minute, 15 * time.Minute, true},        // household business change
	{"1.000419", "civil_status", 9, 3 * time.Minute, 5 * time.Minute, false},     // death registration
	{"1.004873", "construction", 2, 15 * time.Minute, 25 * time.Minute, true},    // construction planning info
	{"2.001023", "civil_status", 3, 5 * time.Minute, 8 * time.Minute, false},     // residence confirmation
	{"1.005462", "social_welfare", 2, 15 * time.Minute, 25 * time.Minute, false}, // poor household confirmation
	{"2.002165", "justice", 2, 5 * time.Minute, 10 * time.Minute, true},          // signature certification
	{"1.010749", "business", 1, 12 * time.Minute, 20 * time.Minute, true},        // liquor retail licence
	{"1.012345", "land", 1, 30 * time.Minute, 40 * time.Minute, true},            // land lease
	{"1.008003", "construction", 1, 20 * time.Minute, 30 * time.Minute, true},    // repair permit
	{"2.000794", "social_welfare", 1, 10 * time.Minute, 20 * time.Minute, false}, // disability allowance
}

// rhythm is the share of the configured rate that applies at t (in the
// deployment's zone): desks are busiest Mon–Fri in office hours, Saturday
// mornings a few desks open, and online filing never stops.
func rhythm(t time.Time) float64 {
	m := t.Hour()*60 + t.Minute()
	office := m >= 7*60+30 && m < 11*60+30 || m >= 13*60 && m < 17*60
	lunch := m >= 11*60+30 && m < 13*60
	awake := m >= 6*60 && m < 22*60
	switch wd := t.Weekday(); {
	case wd >= time.Monday && wd <= time.Friday && office:
		return 1
	case wd >= time.Monday && wd <= time.Friday && lunch:
		return 0.45
	case wd == time.Saturday && office && m < 12*60:
		return 0.5
	case awake:
		return 0.35
	default:
		return rhythmFloor
	}
}

type step struct {
	status string
	at     time.Time
}

type dossier struct {
	seq        uint64
	id         string
	area       string
	proc       *procedure
	channel    string
	level      string
	digitized  bool
	eResult    bool
	paidOnline bool
	reusedData bool
	receivedAt time.Time
	dueAt      time.Time
	steps      []step
	next       int // index in steps of the next event to emit
	heapIdx    int
	closed     bool // last step emitted, or dropped unsent
	// carried marks a token that stands for a Carry's dossier in the
	// outbox: not the world's, which is never asked to drop it.
	carried bool
	// delivered is set by the sender once the server has taken the
	// received event; the generator reads it to pick dossiers that
	// complaints may name.
	delivered atomic.Bool
}

// item is one generated event waiting in the outbox; d lets the generator
// recognise the dossier when it has to drop unsent new dossiers.
type item struct {
	ev ingest.DossierEvent
	d  *dossier
}

// pending orders open dossiers by the time of their next step.
type pending []*dossier

func (p pending) Len() int { return len(p) }
func (p pending) Less(i, j int) bool {
	return p[i].steps[p[i].next].at.Before(p[j].steps[p[j].next].at)
}
func (p pending) Swap(i, j int) {
	p[i], p[j] = p[j], p[i]
	p[i].heapIdx, p[j].heapIdx = i, j
}
func (p *pending) Push(x any) { d := x.(*dossier); d.heapIdx = len(*p); *p = append(*p, d) }
func (p *pending) Pop() any {
	old := *p
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*p = old[:len(old)-1]
	d.heapIdx = -1
	return d
}

// world is the synthetic province: a discrete-event simulation that, asked
// to advance to now, emits every event due up to now in time order. It is
// owned by one goroutine and not safe for concurrent use.
type world struct {
	rng      *rand.Rand
	loc      *time.Location
	lambda   float64 // dossiers per second at full rhythm
	areas    []string
	cum      []float64 // cumulative Zipf weights over areas
	province string
	provCode string // inside dossier ids
	runTag   string // makes dossier ids unique per run
	evPrefix string // makes event ids unique per run
	procCum  []float64
	maxOpen  int
	// scale shortens due windows at rates whose population would otherwise
	// outgrow maxOpen, so that lifecycles keep their shape.
	scale float64

	started     bool
	nextArrival time.Time
	seq         uint64
	day         string
	daySeq      int
	queue       pending
	byAge       []*dossier // open dossiers, oldest first; closed ones pruned lazily
	open        int
}

func newWorld(rng *rand.Rand, loc *time.Location, rate float64, areas []string, province, runTag, evPrefix string) *world {
	w := &world{
		rng: rng, loc: loc, lambda: rate / eventsPerDossier,
		areas: slices.Clone(areas), province: province, provCode: "00",
		runTag: runTag, evPrefix: evPrefix, maxOpen: maxOpen,
	}
	if province != "" {
		w.provCode = province
	}
	// Which communes are busy is part of the seed, not of the order given.
	rng.Shuffle(len(w.areas), func(i, j int) { w.areas[i], w.areas[j] = w.areas[j], w.areas[i] })
	sum := 0.0
	for i := range w.areas {
		sum += 1 / math.Pow(float64(i+1), zipfExponent)
		w.cum = append(w.cum, sum)
	}
	sum = 0
	window := 0.0
	for _, p := range catalog {
		sum += p.weight
		w.procCum = append(w.procCum, sum)
		window += p.weight * (p.dueMin + p.dueMax).Seconds() / 2
	}
	// A dossier stays open for about 0.8 of its window on average; aim at
	// 70% of the cap at the peak to leave room for chance.
	life := lifeShare * window / sum
	w.scale = min(1, 0.7*float64(w.maxOpen)/(w.lambda*life))
	return w
}

func pick(rng *rand.Rand, cum []float64) int {
	i, _ := slices.BinarySearch(cum, rng.Float64()*cum[len(cum)-1])
	return min(i, len(cum)-1)
}

func (w *world) chance(p float64) bool { return w.rng.Float64() < p }

// frac returns start + a uniform share in [lo, hi) of d.
func (w *world) frac(start time.Time, d time.Duration, lo, hi float64) time.Time {
	return start.Add(time.Duration((lo + (hi-lo)*w.rng.Float64()) * float64(d)))
}

// arrivalGap draws candidate arrivals at the peak rate; advance thins them
// by the rhythm, which makes the intake an exact non-homogeneous Poisson
// process.
func (w *world) arrivalGap() time.Duration {
	return time.Duration(w.rng.ExpFloat64() / w.lambda * float64(time.Second))
}

// advance emits every event due at or before now, appending them to out in
// time order. Intake that fell behind by more than maxCatchUp (the host
// slept, the clock jumped) is skipped rather than replayed in a burst; steps
// of open dossiers are always emitted.
func (w *world) advance(now time.Time, out []item) []item {
	if !w.started {
		w.started = true
		w.nextArrival = now.Add(w.arrivalGap())
	}
	if floor := now.Add(-maxCatchUp); w.nextArrival.Before(floor) {
		w.nextArrival = floor.Add(w.arrivalGap())
	}
	for {
		if len(w.queue) > 0 {
			d := w.queue[0]
			if at := d.steps[d.next].at; !at.After(w.nextArrival) && !at.After(now) {
				out = w.emit(d, at, out)
				continue
			}
		}
		t := w.nextArrival
		if t.After(now) {
			return out
		}
		w.nextArrival = t.Add(w.arrivalGap())
		if !w.chance(rhythm(t.In(w.loc))) {
			continue
		}
		if w.open >= w.maxOpen {
			// Make room by closing the oldest dossier now: the total event
			// rate stays what was asked and the population stays bounded.
			if d := w.oldest(); d != nil {
				for !d.closed {
					out = w.emit(d, t, out)
				}
			}
		}
		out = w.emit(w.receive(t), t, out)
	}
}

func (w *world) oldest() *dossier {
	for len(w.byAge) > 0 && w.byAge[0].closed {
		w.byAge[0] = nil
		w.byAge = w.byAge[1:]
	}
	if len(w.byAge) == 0 {
		return nil
	}
	return w.byAge[0]
}

// emit writes d's next step stamped at (which is never after the caller's
// now) and reschedules or closes d.
func (w *world) emit(d *dossier, at time.Time, out []item) []item {
	s := d.steps[d.next]
	d.next++
	ev := ingest.DossierEvent{
		EventID:       fmt.Sprintf("%s-%d-%d", w.evPrefix, d.seq, d.next),
		DossierID:     d.id,
		ProcedureCode: d.proc.code,
		Sector:        d.proc.sector,
		AreaCode:      d.area,
		Channel:       d.channel,
		Status:        s.status,
		OccurredAt:    at.In(w.loc).Format(time.RFC3339),
		ReceivedAt:    d.receivedAt.In(w.loc).Format(time.RFC3339),
		DueAt:         d.dueAt.In(w.loc).Format(time.RFC3339),
		OnlineLevel:   d.level,
		Digitized:     d.digitized,
		EResult:       d.eResult,
		PaidOnline:    d.paidOnline,
		ReusedData:    d.reusedData,
		FeeRequired:   d.proc.fee,
	}
	if d.next < len(d.steps) {
		heap.Fix(&w.queue, d.heapIdx)
	} else {
		w.close(d)
	}
	return append(out, item{ev: ev, d: d})
}

func (w *world) close(d *dossier) {
	if d.closed {
		return
	}
	d.closed = true
	w.open--
	if d.heapIdx >= 0 {
		heap.Remove(&w.queue, d.heapIdx)
	}
	if len(w.byAge) > 2*w.open+64 {
		w.byAge = slices.DeleteFunc(w.byAge, func(d *dossier) bool { return d.closed })
	}
}

// receive opens a dossier received at t and plans its whole lifecycle, so
// that due_at and the outcome are fixed from the start.
func (w *world) receive(t time.Time) *dossier {
	w.seq++
	local := t.In(w.loc)
	if day := local.Format("060102"); day != w.day {
		w.day, w.daySeq = day, 0
	}
	w.daySeq++
	p := &catalog[pick(w.rng, w.procCum)]
	d := &dossier{
		seq:        w.seq,
		id:         fmt.Sprintf("000.00.%s.%s-%s-%04d", w.provCode, w.runTag, w.day, w.daySeq),
		proc:       p,
		channel:    "online",
		digitized:  w.chance(shareDigitized),
		eResult:    w.chance(shareEResult),
		paidOnline: p.fee && w.chance(sharePaidOnline),
		reusedData: w.chance(shareReusedData),
		// Whole seconds, as stored: keeps received_at == occurred_at of the
		// first event and on-time comparisons exact.
		receivedAt: t.Truncate(time.Second),
	}
	if w.province != "" && w.chance(shareProvince) {
		d.area = w.province
	} else {
		d.area = w.areas[pick(w.rng, w.cum)]
	}
	switch {
	case w.chance(shareOnline):
		d.level = "partial"
		if w.chance(shareOnlineFull) {
			d.level = "full"
		}
	case w.chance(sharePostal):
		d.channel = "postal"
	default:
		d.channel = "in_person"
	}
	due := p.dueMin + time.Duration(w.rng.Int64N(int64(p.dueMax-p.dueMin)+1))
	due = max(time.Duration(float64(due)*w.scale), minWindow).Truncate(time.Second)
	d.dueAt = d.receivedAt.Add(due)
	d.steps = w.plan(t, d.dueAt, due)

	w.open++
	heap.Push(&w.queue, d)
	w.byAge = append(w.byAge, d)
	return d
}

// plan lays out the lifecycle: received → processing → (supplement_requested
// → processing) → resolved → returned, or rejected/withdrawn on the way. A
// late dossier stays open past its due time, which keeps the overdue figure
// above zero, and is resolved late.
func (w *world) plan(r, due time.Time, window time.Duration) []step {
	steps := []step{{"received", r}}
	processing := w.frac(r, window, 0.02, 0.10)
	if w.chance(shareWithdrawn) {
		if w.chance(shareWithdrawnIn) {
			steps = append(steps, step{"processing", processing})
		}
		return append(steps, step{"withdrawn", w.frac(r, window, 0.15, 0.50)})
	}
	steps = append(steps, step{"processing", processing})
	cursor := processing
	if w.chance(shareSupplement) {
		asked := w.frac(r, window, 0.15, 0.35)
		cursor = w.frac(asked, window, 0.05, 0.20)
		steps = append(steps, step{"supplement_requested", asked}, step{"processing", cursor})
		// Asked twice, the dossier is late whatever the clock says.
		if w.chance(shareAskedTwice) {
			again := w.frac(cursor, window, 0.02, 0.08)
			cursor = w.frac(again, window, 0.02, 0.08)
			steps = append(steps, step{"supplement_requested", again}, step{"processing", cursor})
		}
	}
	if w.chance(shareRejected) {
		return append(steps, step{"rejected", w.frac(cursor, window, 0.10, 0.30)})
	}
	var resolved time.Time
	if w.chance(shareOnTime) {
		// cursor is at most 0.65 of the window in, so this stays at least 3%
		// of the window before due.
		resolved = w.frac(r, window, 0.30, 0.97)
		if earliest := cursor.Add(window / 20); resolved.Before(earliest) {
			resolved = earliest
		}
	} else {
		resolved = w.frac(due, window, 0.10, 0.80)
	}
	returned := w.frac(resolved, window, 0.02, 0.15)
	if returned.Sub(resolved) < minReturnInterval {
		returned = resolved.Add(minReturnInterval)
	}
	return append(steps, step{"resolved", resolved}, step{"returned", returned})
}

// drop forgets a dossier none of whose events has been sent.
func (w *world) drop(d *dossier) { w.close(d) }
