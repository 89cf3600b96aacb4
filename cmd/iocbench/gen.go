package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/simulator"
)

// generatorVersion names the data shape: a change to the generator that
// changes the rows must change it, so that a rerun reloads.
const generatorVersion = "dossiers-v2"

const hierarchyName = "vn-2025"

var (
	zone = func() *time.Location {
		loc, err := time.LoadLocation("Asia/Ho_Chi_Minh")
		if err != nil {
			panic(err)
		}
		return loc
	}()
	// The data covers the two years before dataEnd, so that every figure
	// is reproducible whatever the day of the run.
	dataEnd   = time.Date(2026, 11, 1, 0, 0, 0, 0, zone)
	dataStart = dataEnd.AddDate(-2, 0, 0)
	dataDays  = int(dataEnd.Sub(dataStart) / (24 * time.Hour))
)

// universe is what the generator draws from: the communes (with uneven
// volumes) and the procedures.
type universe struct {
	seed        uint64
	communes    []string
	province    map[string]string // commune → province
	provinces   []string
	communesOf  map[string][]string
	communeCDF  []float64
	procedures  []procedure
	procCDF     []float64
	dayCDF      []float64 // cumulative share of the receipts up to the end of each day
	communeName map[string]string
}

type procedure struct {
	code, sector, level string
}

var sectors = []string{"civil_status", "land", "construction", "business", "transport", "labour", "justice", "health"}

func newUniverse(seed uint64) (*universe, error) {
	reg, err := geo.Builtin()
	if err != nil {
		return nil, err
	}
	h, ok := reg.Hierarchy(hierarchyName)
	if !ok {
		return nil, fmt.Errorf("hierarchy %s is not built in", hierarchyName)
	}
	u := &universe{seed: seed, province: map[string]string{}, communesOf: map[string][]string{}, communeName: map[string]string{}}
	for _, p := range h.Select("province", "") {
		u.provinces = append(u.provinces, p.Code)
	}
	r := rand.New(rand.NewPCG(seed, 0xC0FFEE))
	total := 0.0
	for _, c := range h.Select("commune", "") {
		u.communes = append(u.communes, c.Code)
		u.province[c.Code] = c.Parent
		u.communesOf[c.Parent] = append(u.communesOf[c.Parent], c.Code)
		u.communeName[c.Code] = c.Name
		total += math.Exp(r.NormFloat64()) // lognormal volumes, σ = 1
		u.communeCDF = append(u.communeCDF, total)
	}
	for i := range u.communeCDF {
		u.communeCDF[i] /= total
	}
	// 40 procedures in 8 sectors, with Zipf-like popularity.
	seen := map[string]bool{}
	total = 0
	for len(u.procedures) < 40 {
		code := fmt.Sprintf("%d.%06d", 1+r.IntN(2), 1000+r.IntN(12000))
		if seen[code] {
			continue
		}
		seen[code] = true
		level := "full"
		if r.Float64() < 0.4 {
			level = "partial"
		}
		u.procedures = append(u.procedures, procedure{code: code, sector: sectors[len(u.procedures)%len(sectors)], level: level})
		total += 1 / float64(len(u.procedures))
		u.procCDF = append(u.procCDF, total)
	}
	for i := range u.procCDF {
		u.procCDF[i] /= total
	}
	// Fewer dossiers on weekends.
	total = 0
	for d := 0; d < dataDays; d++ {
		w := 1.0
		switch dataStart.AddDate(0, 0, d).Weekday() {
		case time.Saturday:
			w = 0.3
		case time.Sunday:
			w = 0.1
		}
		total += w
		u.dayCDF = append(u.dayCDF, total)
	}
	for i := range u.dayCDF {
		u.dayCDF[i] /= total
	}
	return u, nil
}

func pick(cdf []float64, x float64) int {
	return min(sort.SearchFloat64s(cdf, x), len(cdf)-1)
}

// dayRange returns the indexes of the first dossier received on day d and
// of the first one after it, for n dossiers in all.
func (u *universe) dayRange(n int64, d int) (int64, int64) {
	lo := int64(0)
	if d > 0 {
		lo = int64(math.Round(u.dayCDF[d-1] * float64(n)))
	}
	return lo, int64(math.Round(u.dayCDF[d] * float64(n)))
}

// lifecycles is the shapes the benchmark's dossiers take: 70% received →
// processing → resolved → returned; 15% with one request for documents; 3%
// with two (late by rule); 5% rejected; 2% withdrawn; 5% left open. 88% of
// the simple ones and 80% of those paused once resolve in time.
var lifecycles = simulator.LifecycleMix{Simple: 0.70, OneRequest: 0.15, TwoRequests: 0.03, Rejected: 0.05, Withdrawn: 0.02,
	OnTime: 0.88, OnTimeAfterRequest: 0.8}

// plan is one dossier: its attributes and its lifecycle.
type plan struct {
	idx                                   int64
	area                                  string
	proc                                  procedure
	channel                               string
	digitized, reused, fee, paid, eResult bool
	received, due                         time.Time
	steps                                 []simulator.Transition
	events                                []dossier.Event // the steps before dataEnd, as stored
	derived                               []dossier.Contribution
}

// newPlan draws dossier idx, received on day d, from its own random stream,
// so that any dossier can be drawn again alone. steps is reused.
func (u *universe) newPlan(src *rand.PCG, r *rand.Rand, idx int64, d int, steps []simulator.Transition) plan {
	src.Seed(u.seed, uint64(idx)+1)
	p := plan{idx: idx}
	p.area = u.communes[pick(u.communeCDF, r.Float64())]
	p.proc = u.procedures[pick(u.procCDF, r.Float64())]
	switch x := r.Float64(); {
	case x < 0.85:
		p.channel = "online"
	case x < 0.98:
		p.channel = "in_person"
	default:
		p.channel = "postal"
	}
	p.digitized = r.Float64() < 0.7
	p.reused = r.Float64() < 0.3
	p.fee = r.Float64() < 0.4
	p.paid = p.fee && r.Float64() < 0.6
	p.eResult = r.Float64() < 0.5
	day := dataStart.AddDate(0, 0, d)
	var offset time.Duration
	if p.channel == "online" {
		offset = 6*time.Hour + time.Duration(r.Float64()*float64(16*time.Hour))
	} else {
		offset = 7*time.Hour + 30*time.Minute + time.Duration(r.Float64()*float64(9*time.Hour))
	}
	p.received = day.Add(offset).Truncate(time.Second)
	p.due = simulator.AddWorkingDays(day, 3+r.IntN(13), nil).Add(17 * time.Hour)
	p.steps = simulator.PlanLifecycle(r, lifecycles, p.received, p.due, steps)
	return p
}

// stored counts the steps that happen before dataEnd.
func (p *plan) stored() int {
	n := 0
	for _, s := range p.steps {
		if s.At.Before(dataEnd) {
			n++
		}
	}
	return n
}

func dossierID(idx int64) string {
	return "bench-" + strconv.FormatInt(idx, 10)
}

// materialize turns the steps before dataEnd into the events the writer
// would store: flags on every event, the electronic result on the
// resolution, due dates on the events of the open dossier.
func (p *plan) materialize() {
	id := dossierID(p.idx)
	recv := p.received.UTC()
	due := p.due.UTC()
	p.events = make([]dossier.Event, 0, len(p.steps))
	for i, s := range p.steps {
		if !s.At.Before(dataEnd) {
			break
		}
		e := dossier.Event{
			EventID: id + "-" + strconv.Itoa(i+1), Area: p.area, Status: s.Status, OccurredAt: s.At.UTC(),
			ReceivedAt: &recv, Channel: p.channel, Sector: p.proc.sector, Procedure: p.proc.code,
			OnlineLevel: p.proc.level, Digitized: p.digitized, PaidOnline: p.paid, ReusedData: p.reused,
			FeeRequired: p.fee,
		}
		switch s.Status {
		case "received", "processing", "supplement_requested", "resolved":
			e.DueAt = &due
		}
		if s.Status == "resolved" || s.Status == "returned" {
			e.EResult = p.eResult
		}
		p.events = append(p.events, e)
	}
	p.steps = nil
}

// delta is what storing event i changes in the dossier's figures, as the
// writer derives it: from the events before it to the events up to it.
// Events must be taken in order.
func (p *plan) delta(i int) []dossier.Contribution {
	after := dossier.Derive(p.events[:i+1])
	d := dossier.Delta(p.derived, after)
	p.derived = after
	if i == len(p.events)-1 {
		p.derived = nil
	}
	return d
}

// row is event i as the writer's validated record.
func (p *plan) row(i int) ingest.Dossier {
	e := p.events[i]
	return ingest.Dossier{
		EventID: e.EventID, DossierID: dossierID(p.idx), ProcedureCode: e.Procedure, Sector: e.Sector,
		Hierarchy: hierarchyName, AreaCode: e.Area, Channel: e.Channel, Status: e.Status, OccurredAt: e.OccurredAt,
		ReceivedAt: e.ReceivedAt, DueAt: e.DueAt, OnlineLevel: e.OnlineLevel, Digitized: e.Digitized,
		EResult: e.EResult, PaidOnline: e.PaidOnline, ReusedData: e.ReusedData, FeeRequired: e.FeeRequired,
	}
}

// countEvents returns the events n dossiers store before dataEnd.
func (u *universe) countEvents(n int64) int64 {
	src := rand.NewPCG(0, 0)
	r := rand.New(src)
	var steps []simulator.Transition
	var total int64
	for d := 0; d < dataDays; d++ {
		lo, hi := u.dayRange(n, d)
		for idx := lo; idx < hi; idx++ {
			p := u.newPlan(src, r, idx, d, steps)
			steps = p.steps
			total += int64(p.stored())
		}
	}
	return total
}

// dossiersFor returns how many dossiers to draw so that they store at
// least events events before dataEnd, with little to spare: the load stops
// at exactly events, in time order, so the spare is what the last hours of
// the data lack (1/5000 of the events: a few hours of the last day).
func (u *universe) dossiersFor(events int64) int64 {
	spare := events/5000 + 100
	n := max(events/4, 1)
	for range 20 {
		got := u.countEvents(n)
		if got >= events && got <= events+spare {
			return n
		}
		// The count is close to proportional: aim at the middle of the spare.
		n = max(int64(float64(n)*float64(events+spare/2)/float64(max(got, 1))+0.5), n/2, 1)
	}
	// Converging is not needed, only enough events.
	for u.countEvents(n) < events {
		n += n/1000 + 1
	}
	return n
}

// sortItems orders a day's events by time, then dossier, then step.
func sortItems(items []item) {
	slices.SortFunc(items, func(a, b item) int {
		if c := a.p.events[a.i].OccurredAt.Compare(b.p.events[b.i].OccurredAt); c != 0 {
			return c
		}
		if a.p.idx != b.p.idx {
			if a.p.idx < b.p.idx {
				return -1
			}
			return 1
		}
		return int(a.i) - int(b.i)
	})
}
