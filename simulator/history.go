package simulator

import (
	"cmp"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openioc/ioc/ingest"
)

// A History is the simulated province's past: the dossiers its desks
// received over the days before End, with lifecycles over days and weeks
// (requests for documents, resolutions in time and late, refusals,
// withdrawals), the rhythm of office hours, weekdays and public holidays,
// the citizen feedback of the 1022 hotline, and, for the devices the
// device simulator places, hourly readings and camera detections. Write
// stores it through ingest's import; what its dossiers and feedback items
// do after End is left in a Carry, which the live simulator sends when its
// time comes.
//
// What a History generates depends only on its configuration: every
// dossier, item and reading is drawn from a random stream of its own,
// seeded by Seed and its local day (a reading by its device and time), so
// that a day's records are the same whatever the range around it, and End
// only cuts them (but for which dossier a complaint of the first ten days
// names: always one the history holds). Volumes follow the field: Binh
// Duong's desks took 299,637 dossiers from 1 December 2024 to 31 March
// 2025, about 2,500 a day, which is the history's average at the
// simulator's default rate (20 events a second) and scales with Rate
// (DossiersPerDay). A live simulator at field pace carries the history on
// past End, day after day, with the same records a History ending later
// would hold; at demo pace it compresses lifecycles into minutes and runs
// at many times that volume, and today's figures stand above the
// history's.
//
// A History is immutable and safe for concurrent use; each Write or
// Records generates it anew.
type History struct {
	cfg      HistoryConfig
	seed     uint64
	start    time.Time // local midnight of the first day
	days     int       // days generated, the last one ending at End
	tag      string    // in dossier and event ids: H and five characters of the seed
	provCode string
	areas    []string  // the busiest first
	cum      []float64 // cumulative Zipf weights over areas
	procCum  []float64
	perDay   float64 // dossiers on an average day
	fbPerDay float64 // feedback items on an average day
	fleet    *fleetHistory
}

// HistoryConfig says which past to generate.
type HistoryConfig struct {
	// End is when the history stops, usually now (whole seconds: what is
	// finer is cut). Required.
	End time.Time
	// Days is how many whole local days come before End's day, which is
	// generated up to End; zero means 90.
	Days int
	// Rate is the live simulator's Rate; dossiers scale with it: 2,500 a
	// day on average at 20, at most 25,000. Zero means 20.
	Rate float64
	// Areas are the unit codes dossiers are filed in, as for the live
	// simulator; required. ProvinceArea, if set, takes about 3% (the
	// provincial desk).
	Areas        []string
	ProvinceArea string
	// Feedback is how many citizen feedback items arrive on an average
	// day; zero means 100 at the default Rate, scaled as dossiers are;
	// negative none.
	Feedback float64
	// Location is the zone of local days and office hours; nil means
	// Asia/Ho_Chi_Minh, or a fixed +07:00 without tzdata.
	Location *time.Location
	// Seed decides everything drawn; zero is a seed like any other.
	Seed int64
	// Devices, if set, is the live device simulator's configuration: the
	// same devices (ids, positions) get hourly readings, a minute's in the
	// last hour, and camera detections. Its Seed places them, as for the
	// live simulator; BaseURL and Token are not used.
	Devices *DevicesConfig
}

const (
	defaultHistoryDays = 90
	// Binh Duong, 1 Dec 2024 – 31 Mar 2025: 299,637 dossiers in 121 days.
	fieldPerDay = 2500.0
	fieldRate   = 20.0 // the simulator's default rate, which fieldPerDay stands for
	// maxPerDay bounds the cost of a backfill at high rates: some five
	// minutes for 90 days on two cores.
	maxPerDay            = 10 * fieldPerDay
	fieldFeedbackPerDay  = 100.0
	historyOnline        = shareOnline
	historyPostal        = sharePostal
	historyComplaintDays = 10 // a complaint names a dossier received up to this many days before
	historyFeedbackDue   = 5  // working days to handle a feedback item
)

// MaxHistoryDays bounds HistoryConfig.Days: series by day reach three
// years.
const MaxHistoryDays = 3 * 366

// historyMix is how the history's dossiers end: most simply resolved,
// some after a request for documents, a few refused or withdrawn, one in
// two hundred stuck (overdue to this day). About 95% of resolutions come
// in time once the desks' work is moved into office hours, as in a
// province near the top of the national scoreboard.
var historyMix = LifecycleMix{Simple: 0.745, OneRequest: 0.15, TwoRequests: 0.02, Rejected: 0.04, Withdrawn: 0.04,
	OnTime: 0.98, OnTimeAfterRequest: 0.93}

// workDays is each catalog procedure's legal deadline in working days (the
// live simulator compresses them into minutes).
var workDays = map[string]int{
	"2.000908": 1, "1.001193": 1, "1.000894": 2, "1.004227": 10, "1.001612": 3, "1.009994": 15, "1.001776": 15,
	"2.000305": 5, "1.003005": 2, "1.000656": 20, "1.001695": 3, "1.000419": 1, "1.004873": 10, "2.001023": 3,
	"1.005462": 7, "2.002165": 1, "1.010749": 10, "1.012345": 20, "1.008003": 15, "2.000794": 20,
}

// weekdayWeight is a day's volume against an average day, before the
// mean of a week is divided out: Monday brings the weekend's backlog,
// Friday afternoons are quiet, a few desks open on Saturday morning, and
// on Sundays and holidays only online filing goes on.
var weekdayWeight = [7]float64{time.Sunday: 0.12, time.Monday: 1.25, time.Tuesday: 1.08, time.Wednesday: 1.02,
	time.Thursday: 1.0, time.Friday: 0.92, time.Saturday: 0.30}

// feedbackWeight is the same for the hotline, which answers every day.
var feedbackWeight = [7]float64{time.Sunday: 0.55, time.Monday: 1.2, time.Tuesday: 1.1, time.Wednesday: 1.05,
	time.Thursday: 1.0, time.Friday: 1.0, time.Saturday: 0.7}

func weekMean(w [7]float64) float64 {
	sum := 0.0
	for _, v := range w {
		sum += v
	}
	return sum / 7
}

// holidays are Vietnam's public holidays off the solar calendar's fixed
// dates: Tết (the lunar new year week, as decreed or as it falls) and the
// Hùng Kings' day, 2025–2030. Outside those years only the fixed dates are
// known.
var holidays = func() map[string]bool {
	out := map[string]bool{}
	span := func(from string, days int) {
		t, err := time.Parse(time.DateOnly, from)
		if err != nil {
			panic(err)
		}
		for i := range days {
			out[t.AddDate(0, 0, i).Format(time.DateOnly)] = true
		}
	}
	for _, tet := range []string{"2025-01-25", "2026-02-14", "2027-02-04", "2028-01-24", "2029-02-11", "2030-02-01"} {
		span(tet, 9)
	}
	for _, d := range []string{"2025-04-07", "2026-04-27", "2027-04-16", "2028-04-04", "2029-04-23", "2030-04-12"} {
		span(d, 1)
	}
	return out
}()

// dayOff says whether the one-stop desks are closed on local day d (a
// weekend or a public holiday).
func dayOff(d time.Time) bool {
	switch d.Weekday() {
	case time.Saturday, time.Sunday:
		return true
	}
	return holiday(d)
}

func holiday(d time.Time) bool {
	_, m, day := d.Date()
	switch {
	case m == time.January && day == 1, m == time.April && day == 30, m == time.May && day == 1,
		m == time.September && (day == 1 || day == 2):
		return true
	}
	return holidays[d.Format(time.DateOnly)]
}

// NewHistory checks cfg and builds a History; it generates nothing yet.
func NewHistory(cfg HistoryConfig) (*History, error) {
	switch {
	case cfg.End.IsZero():
		return nil, errors.New("simulator: history: End is required: the history ends there, usually at the node's start")
	case cfg.Days < 0 || cfg.Days > MaxHistoryDays:
		return nil, fmt.Errorf("simulator: history: Days %d must be between 1 and %d (zero for the default %d)", cfg.Days, MaxHistoryDays, defaultHistoryDays)
	case math.IsNaN(cfg.Rate) || cfg.Rate < 0 || cfg.Rate > maxRate:
		return nil, fmt.Errorf("simulator: history: Rate %v must be above 0 and at most %g events per second (zero for the default %g)", cfg.Rate, float64(maxRate), fieldRate)
	case math.IsNaN(cfg.Feedback) || cfg.Feedback > 1e6:
		return nil, fmt.Errorf("simulator: history: Feedback %v must be at most a million items a day (zero for the default, negative for none)", cfg.Feedback)
	case len(cfg.Areas) == 0:
		return nil, errors.New("simulator: history: Areas is empty: list the unit codes to file dossiers in, e.g. the province's commune codes")
	}
	seen := make(map[string]bool, len(cfg.Areas))
	for i, a := range cfg.Areas {
		switch {
		case strings.TrimSpace(a) == "":
			return nil, fmt.Errorf("simulator: history: Areas[%d] is empty; remove it", i)
		case seen[a]:
			return nil, fmt.Errorf("simulator: history: area %q is listed twice; list each unit once", a)
		}
		seen[a] = true
	}
	if cfg.Days == 0 {
		cfg.Days = defaultHistoryDays
	}
	if cfg.Rate == 0 {
		cfg.Rate = fieldRate
	}
	if cfg.Location == nil {
		cfg.Location = defaultLocation()
	}
	cfg.End = cfg.End.Truncate(time.Second)
	h := &History{cfg: cfg, seed: uint64(cfg.Seed), provCode: "00"}
	if cfg.ProvinceArea != "" {
		h.provCode = cfg.ProvinceArea
	}
	y, m, d := cfg.End.In(cfg.Location).Date()
	h.start = time.Date(y, m, d-cfg.Days, 0, 0, 0, 0, cfg.Location)
	h.days = cfg.Days + 1
	sum := fnv.New64a()
	_ = binary.Write(sum, binary.LittleEndian, h.seed)
	h.tag = "H" + base32.StdEncoding.EncodeToString(sum.Sum(nil))[:5]

	h.perDay = DossiersPerDay(cfg.Rate)
	switch {
	case cfg.Feedback > 0:
		h.fbPerDay = cfg.Feedback
	case cfg.Feedback == 0:
		h.fbPerDay = fieldFeedbackPerDay * h.perDay / fieldPerDay
	}
	// Which communes are busy is part of the seed, not of the order given.
	r := rand.New(rand.NewPCG(h.seed, 0x48495354))
	h.areas = slices.Clone(cfg.Areas)
	slices.Sort(h.areas)
	r.Shuffle(len(h.areas), func(i, j int) { h.areas[i], h.areas[j] = h.areas[j], h.areas[i] })
	total := 0.0
	for i := range h.areas {
		total += 1 / math.Pow(float64(i+1), zipfExponent)
		h.cum = append(h.cum, total)
	}
	total = 0
	for _, p := range catalog {
		if workDays[p.code] == 0 {
			return nil, fmt.Errorf("simulator: history: procedure %s has no deadline in working days", p.code)
		}
		total += p.weight
		h.procCum = append(h.procCum, total)
	}
	if cfg.Devices != nil {
		f, err := newFleetHistory(*cfg.Devices, h.seed)
		if err != nil {
			return nil, fmt.Errorf("simulator: history: %w", err)
		}
		h.fleet = f
	}
	return h, nil
}

// Start is the local midnight the history begins at; End the time it
// stops at.
func (h *History) Start() time.Time { return h.start }

// End is the time the history stops at.
func (h *History) End() time.Time { return h.cfg.End }

// Days is how many local days the history spans, the last one up to End.
func (h *History) Days() int { return h.days }

// EventPrefix starts the event id of every dossier event of the history
// (and of its camera events): none of the live simulator's ids does.
func (h *History) EventPrefix() string { return "hist-" + h.tag[1:] + "-" }

// stream returns r reseeded for one draw of the history: stream kind of
// local day key, item i.
func (h *History) stream(src *rand.PCG, key int64, kind uint64, i int) {
	src.Seed(h.seed^kind, uint64(key)<<24|uint64(i))
}

// Random streams of a day, told apart by the seed's first word.
const (
	streamDay      = 0x44415900 // a day's counts and receipt times
	streamDossier  = 0x444f5300 // a dossier's attributes and lifecycle
	streamFeedback = 0x46424b00
	streamCameras  = 0x43414d00
	streamBursts   = 0x42525300 // a hot spot's bursts of violations on a day
	streamAir      = 0x41495200 // a day's air-quality episode
	streamFlood    = 0x464c4400
	streamReading  = 0x52454100 // one device's report at one time
)

// dayKey numbers local days from 1 January 1970.
func dayKey(day time.Time) int64 {
	y, m, d := day.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// histDossier is one dossier of the history and its whole lifecycle.
type histDossier struct {
	id, evPrefix string // the dossier's id; its events' ids are evPrefix + step number
	area         string
	proc         *procedure
	channel      string
	level        string
	digitized    bool
	eResult      bool
	paidOnline   bool
	reusedData   bool
	received     time.Time
	due          time.Time
	steps        []Transition
}

// event is step i of d as sent.
func (d *histDossier) event(i int, loc *time.Location) ingest.DossierEvent {
	return ingest.DossierEvent{
		EventID:       d.evPrefix + strconv.Itoa(i+1),
		DossierID:     d.id,
		ProcedureCode: d.proc.code,
		Sector:        d.proc.sector,
		AreaCode:      d.area,
		Channel:       d.channel,
		Status:        d.steps[i].Status,
		OccurredAt:    d.steps[i].At.In(loc).Format(time.RFC3339),
		ReceivedAt:    d.received.In(loc).Format(time.RFC3339),
		DueAt:         d.due.In(loc).Format(time.RFC3339),
		OnlineLevel:   d.level,
		Digitized:     d.digitized,
		EResult:       d.eResult,
		PaidOnline:    d.paidOnline,
		ReusedData:    d.reusedData,
		FeeRequired:   d.proc.fee,
	}
}

// dayCount is how many dossiers the desks receive on local day date.
func (h *History) dayCount(src *rand.PCG, r *rand.Rand, date time.Time) int {
	h.stream(src, dayKey(date), streamDay, 0)
	w := weekdayWeight[date.Weekday()]
	if holiday(date) {
		w = weekdayWeight[time.Sunday]
	}
	noise := min(max(1+0.08*r.NormFloat64(), 0.75), 1.25)
	return int(math.Round(h.perDay * w / weekMean(weekdayWeight) * noise))
}

// deskHours are the local day d's office hours of the one-stop desks:
// 07:30–11:30 and 13:00–17:00 on working days, none on Sundays and
// holidays; on Saturdays the morning when saturday is set (a few desks
// take dossiers then, but the work on them waits for Monday).
func deskHours(d time.Time, saturday bool) [][2]time.Time {
	y, m, day := d.Date()
	at := func(h, min int) time.Time { return time.Date(y, m, day, h, min, 0, 0, d.Location()) }
	morning := [2]time.Time{at(7, 30), at(11, 30)}
	switch {
	case holiday(d) || d.Weekday() == time.Sunday:
		return nil
	case d.Weekday() == time.Saturday && saturday:
		return [][2]time.Time{morning}
	case d.Weekday() == time.Saturday:
		return nil
	}
	return [][2]time.Time{morning, {at(13, 0), at(17, 0)}}
}

// deskOpen says whether the desks are open at local time t, to take
// dossiers (saturday) or to work on them.
func deskOpen(t time.Time, saturday bool) bool {
	for _, h := range deskHours(t, saturday) {
		if !t.Before(h[0]) && t.Before(h[1]) {
			return true
		}
	}
	return false
}

// deskStep says whether a step is the desk's doing, which staff do in
// office hours: all but the receipt and a withdrawal. (A dossier goes back
// to processing after a request for documents when the desk takes in what
// the citizen sent.)
func deskStep(steps []Transition, i int) bool {
	return i > 0 && steps[i].Status != "withdrawn"
}

// officeSpread is how far into or before office hours a moved step lands.
const officeSpread = 90 * time.Minute

// toOfficeHours moves the desk's steps that fall outside office hours into
// them, as work left on Friday evening waits for Monday morning: forward
// into the next opening, except where that would turn a dossier late
// which was not: a request for documents moves back into the last opening
// (a later request would shorten the citizen's wait, which the deadline
// does not count), and so does a resolution in time that moving forward
// would take past its deadline (the due time pushed back by the waits so
// far). A move back must keep the step after the one before. Steps after a
// moved one keep their order.
func toOfficeHours(r *rand.Rand, steps []Transition, due time.Time) {
	var waits time.Duration
	for i := 1; i < len(steps); i++ {
		prev := steps[i-1].At
		s := &steps[i]
		if !s.At.After(prev) {
			s.At = prev.Add(time.Minute)
		}
		if deskStep(steps, i) && !deskOpen(s.At, false) {
			s.At = officeMove(r, s, prev, due.Add(waits))
		}
		if steps[i-1].Status == "supplement_requested" {
			waits += s.At.Sub(prev)
		}
	}
}

// officeMove is where toOfficeHours moves step s, which comes after prev,
// with the deadline as it stands.
func officeMove(r *rand.Rand, s *Transition, prev, deadline time.Time) time.Time {
	fwd, ok := nextOpening(s.At)
	if !ok {
		return s.At
	}
	fwd = fwd.Add(time.Duration(r.Int64N(int64(officeSpread)))).Truncate(time.Second)
	if s.Status == "supplement_requested" || s.Status == "resolved" && !s.At.After(deadline) && fwd.After(deadline) {
		if back, ok := lastOpening(s.At); ok {
			back = back.Add(-time.Duration(r.Int64N(int64(officeSpread)))).Truncate(time.Second)
			if back.After(prev) && deskOpen(back, false) {
				return back
			}
		}
	}
	return fwd
}

// lastOpening is the end of the last office hours before t, within two
// weeks.
func lastOpening(t time.Time) (time.Time, bool) {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	for range 15 {
		hours := deskHours(day, false)
		for k := len(hours) - 1; k >= 0; k-- {
			if hours[k][1].Before(t) || hours[k][1].Equal(t) {
				return hours[k][1], true
			}
		}
		day = day.AddDate(0, 0, -1)
	}
	return time.Time{}, false
}

// nextOpening is the start of the next office hours after t, within two
// weeks.
func nextOpening(t time.Time) (time.Time, bool) {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	for range 15 {
		for _, h := range deskHours(day, false) {
			if h[0].After(t) {
				return h[0], true
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	return time.Time{}, false
}

// timeOfDay draws a moment of local day date for a filing: online by the
// simulator's rhythm, at a desk within its hours.
func timeOfDay(r *rand.Rand, date time.Time, desk bool) time.Time {
	for {
		t := date.Add(time.Duration(r.Int64N(int64(24 * time.Hour)))).Truncate(time.Second)
		if desk && deskOpen(t, true) || !desk && r.Float64() < rhythm(t) {
			return t
		}
	}
}

// receipt is a dossier's time of receipt and channel, before the day's
// dossiers are numbered in time order.
type receipt struct {
	at      time.Time
	channel string
}

// dossiersOf draws the dossiers received on local day date, in order of
// receipt, appending them to out.
func (h *History) dossiersOf(src *rand.PCG, r *rand.Rand, date time.Time, out []*histDossier) []*histDossier {
	n := h.dayCount(src, r, date) // leaves the day's stream after the count
	saturday := date.Weekday() == time.Saturday && !holiday(date)
	open := !dayOff(date) || saturday
	rs := make([]receipt, n)
	for i := range rs {
		c := "online"
		if open && r.Float64() >= historyOnline {
			c = "in_person"
			if r.Float64() < historyPostal {
				c = "postal"
			}
		}
		rs[i] = receipt{timeOfDay(r, date, c != "online"), c}
	}
	slices.SortStableFunc(rs, func(a, b receipt) int { return a.at.Compare(b.at) })
	day := date.Format("060102")
	key := dayKey(date)
	for i, rc := range rs {
		h.stream(src, key, streamDossier, i+1)
		d := &histDossier{
			id:       fmt.Sprintf("000.00.%s.%s-%s-%04d", h.provCode, h.tag, day, i+1),
			evPrefix: fmt.Sprintf("hist-%s-%s-%d-", h.tag[1:], day, i+1),
			area:     h.area(r),
			channel:  rc.channel,
			received: rc.at,
		}
		d.proc = &catalog[pick(r, h.procCum)]
		d.digitized = r.Float64() < shareDigitized
		d.eResult = r.Float64() < shareEResult
		d.paidOnline = d.proc.fee && r.Float64() < sharePaidOnline
		d.reusedData = r.Float64() < shareReusedData
		if d.channel == "online" {
			d.level = "partial"
			if r.Float64() < shareOnlineFull {
				d.level = "full"
			}
		}
		d.due = AddWorkingDays(date, workDays[d.proc.code], dayOff).Add(17 * time.Hour)
		d.steps = PlanLifecycle(r, historyMix, d.received, d.due, nil)
		toOfficeHours(r, d.steps, d.due)
		out = append(out, d)
	}
	return out
}

// area draws the unit a dossier is filed in; it is the first draw of a
// dossier's stream, so that a complaint can name a dossier's unit without
// drawing the rest.
func (h *History) area(r *rand.Rand) string {
	x := r.Float64()
	if h.cfg.ProvinceArea != "" && x < shareProvince {
		return h.cfg.ProvinceArea
	}
	i, _ := slices.BinarySearch(h.cum, (x-shareProvince)/(1-shareProvince)*h.cum[len(h.cum)-1])
	return h.areas[min(i, len(h.areas)-1)]
}

// histFeedback is a feedback item of the history: its record with every
// change planned, and the rating's time (zero: never rated).
type histFeedback struct {
	rec      ingest.FeedbackRecord
	changes  []time.Time // of rec.StatusChanges
	rating   string
	ratedAt  time.Time
	received time.Time
}

// state is the item as known at t: the changes and rating made by then.
func (f *histFeedback) state(t time.Time) ingest.FeedbackRecord {
	r := f.rec
	n := 0
	for n < len(f.changes) && !f.changes[n].After(t) {
		n++
	}
	r.StatusChanges = slices.Clone(f.rec.StatusChanges[:n])
	if f.rating != "" && !f.ratedAt.After(t) {
		r.Rating = f.rating
	}
	return r
}

// moments are the times the item's state changes after receipt.
func (f *histFeedback) moments() []time.Time {
	out := slices.Clone(f.changes[1:]) // the first change is the receipt itself
	if f.rating != "" {
		out = append(out, f.ratedAt)
	}
	return out
}

// feedbackOf draws the feedback items received on local day i of the
// history (date), in order of receipt.
func (h *History) feedbackOf(src *rand.PCG, r *rand.Rand, i int, date time.Time, out []*histFeedback) []*histFeedback {
	if h.fbPerDay == 0 {
		return out
	}
	key := dayKey(date)
	h.stream(src, key, streamFeedback, 0)
	w := feedbackWeight[date.Weekday()]
	if holiday(date) {
		w = feedbackWeight[time.Sunday]
	}
	noise := min(max(1+0.1*r.NormFloat64(), 0.7), 1.3)
	n := int(math.Round(h.fbPerDay * w / weekMean(feedbackWeight) * noise))
	times := make([]time.Time, n)
	for k := range times {
		times[k] = timeOfDay(r, date, false)
	}
	slices.SortFunc(times, time.Time.Compare)
	cats, chans := cumulative(feedbackCategories), cumulative(feedbackChannels)
	day := date.Format("060102")
	due := AddWorkingDays(date, historyFeedbackDue, dayOff).Add(17 * time.Hour)
	loc := h.cfg.Location
	format := func(t time.Time) string { return t.In(loc).Format(time.RFC3339) }
	dsrc := rand.NewPCG(0, 0)
	dr := rand.New(dsrc)
	for k, t := range times {
		h.stream(src, key, streamFeedback, k+1)
		f := &histFeedback{received: t, rec: ingest.FeedbackRecord{
			FeedbackID: fmt.Sprintf("1022-%s-%s-%s-%05d", h.provCode, h.tag, day, k+1),
			Channel:    feedbackChannels[pick(r, chans)].value,
			ReceivedAt: format(t),
			DueAt:      format(due),
		}}
		if i > 0 && r.Float64() < shareFeedbackProcedure {
			// A complaint about a dossier of the days before, filed where
			// the dossier is.
			back := i - min(1+r.IntN(historyComplaintDays), i)
			bdate := h.start.AddDate(0, 0, back)
			rank := r.IntN(max(h.dayCount(dsrc, dr, bdate), 1))
			h.stream(dsrc, dayKey(bdate), streamDossier, rank+1)
			f.rec.Category = "procedure"
			f.rec.DossierID = fmt.Sprintf("000.00.%s.%s-%s-%04d", h.provCode, h.tag, bdate.Format("060102"), rank+1)
			f.rec.AreaCode = h.area(dr)
		} else {
			f.rec.Category = feedbackCategories[pick(r, cats)].value
			f.rec.AreaCode = h.area(r)
		}
		hours := func(lo, hi float64) time.Duration {
			return time.Duration((lo + (hi-lo)*r.Float64()) * float64(time.Hour)).Truncate(time.Second)
		}
		processing := t.Add(hours(1, 8))
		resolved := due.Add(hours(1, 1+24*r.ExpFloat64()*3)) // late
		if r.Float64() < shareFeedbackOnTime {
			resolved = processing.Add(time.Duration(r.Float64() * float64(max(due.Sub(processing), time.Hour)))).Truncate(time.Second)
		}
		if earliest := processing.Add(time.Minute); resolved.Before(earliest) {
			resolved = earliest
		}
		f.changes = []time.Time{t, processing, resolved}
		f.rec.StatusChanges = []ingest.FeedbackStatusChange{
			{Status: "received", At: format(t)}, {Status: "processing", At: format(processing)}, {Status: "resolved", At: format(resolved)}}
		if r.Float64() < shareFeedbackRated {
			f.rating = "dissatisfied"
			if r.Float64() < shareFeedbackSatisfied {
				f.rating = "satisfied"
			}
			f.ratedAt = resolved.Add(hours(4, 72))
		}
		out = append(out, f)
	}
	return out
}

// historyDay is what the history holds of one local day: the dossier
// events that happened on it, in time order; the feedback items received
// on it, as known at End; the devices' reports. A lead holds the devices'
// reports of the last days only.
type historyDay struct {
	date     time.Time
	lead     bool
	dossiers []ingest.DossierEvent
	feedback []ingest.FeedbackRecord
	cameras  []ingest.CameraEventWire
	readings []ingest.SensorReadingWire
}

func (d *historyDay) reset(date time.Time) {
	clear(d.dossiers)
	clear(d.feedback)
	clear(d.cameras)
	clear(d.readings)
	*d = historyDay{date: date, dossiers: d.dossiers[:0], feedback: d.feedback[:0], cameras: d.cameras[:0], readings: d.readings[:0]}
}

// stepRef is step i of dossier d.
type stepRef struct {
	d *histDossier
	i int
}

func (s stepRef) at() time.Time { return s.d.steps[s.i].At }

// historyGen generates a history day after day. Events of a dossier come
// on the days they happen, so a day's dossiers leave their later steps in
// pending until those days come; what happens at or after End goes to the
// Carry.
//
// The devices' reports of the last days, those that reach into the hour
// before End, come first of all, before any day: the first report that
// registers a device is then one of its last, and the alarm rule for
// silent devices, which reads when each device last reported, never sees
// them months silent while the rest is written.
type historyGen struct {
	h       *History
	src     *rand.PCG
	r       *rand.Rand
	next    int
	pending map[int][]stepRef // by day of the history
	carry   *Carry
	fleet   *fleetGen // nil without devices
	led     bool      // the last days' device reports are given
	lastDay int       // the first day whose device reports come first
	buf     []*histDossier
	fbBuf   []*histFeedback
}

func (h *History) generator() *historyGen {
	src := rand.NewPCG(0, 0)
	g := &historyGen{h: h, src: src, r: rand.New(src), pending: map[int][]stepRef{}, carry: h.newCarry(),
		lastDay: max(h.dayOf(h.cfg.End.Add(-historyDenseSpan)), 0)}
	if h.fleet != nil {
		g.fleet = h.fleet.generator(h)
	}
	return g
}

// dayOf is the day of the history local time t falls on.
func (h *History) dayOf(t time.Time) int {
	local := t.In(h.cfg.Location)
	return int(dayKey(local) - dayKey(h.start))
}

// day fills out with the next day (first the lead, with devices); it
// reports false after the last.
func (g *historyGen) day(out *historyDay) bool {
	h := g.h
	if !g.led {
		g.led = true
		if g.fleet != nil {
			out.reset(time.Time{})
			out.lead = true
			for i := g.lastDay; i < h.days; i++ {
				g.fleet.day(h.start.AddDate(0, 0, i), out)
			}
			// Latest first, so that the first chunk stored holds every
			// device's last minute. (Times of one zone compare as text.)
			slices.SortStableFunc(out.cameras, func(a, b ingest.CameraEventWire) int { return strings.Compare(b.OccurredAt, a.OccurredAt) })
			slices.SortStableFunc(out.readings, func(a, b ingest.SensorReadingWire) int { return strings.Compare(b.ObservedAt, a.ObservedAt) })
			return true
		}
	}
	if g.next >= h.days {
		return false
	}
	i := g.next
	g.next++
	date := h.start.AddDate(0, 0, i)
	out.reset(date)
	end := h.cfg.End
	g.buf = h.dossiersOf(g.src, g.r, date, g.buf[:0])
	for _, d := range g.buf {
		for s, st := range d.steps {
			ref := stepRef{d, s}
			if st.At.Before(end) {
				day := h.dayOf(st.At)
				g.pending[day] = append(g.pending[day], ref)
			} else {
				g.carry.addStep(ref)
			}
		}
	}
	clear(g.buf)
	refs := g.pending[i]
	delete(g.pending, i)
	slices.SortFunc(refs, func(a, b stepRef) int {
		if c := a.at().Compare(b.at()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.d.id, b.d.id); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	for _, ref := range refs {
		out.dossiers = append(out.dossiers, ref.d.event(ref.i, h.cfg.Location))
	}

	g.fbBuf = h.feedbackOf(g.src, g.r, i, date, g.fbBuf[:0])
	for _, f := range g.fbBuf {
		if !f.received.Before(end) {
			g.carry.feedback = append(g.carry.feedback, carriedFeedback{at: f.received, f: f})
		} else {
			out.feedback = append(out.feedback, f.state(end.Add(-time.Nanosecond))) // what happened before End
		}
		for _, t := range f.moments() {
			if !t.Before(end) {
				g.carry.feedback = append(g.carry.feedback, carriedFeedback{at: t, f: f})
			}
		}
	}
	clear(g.fbBuf)
	if g.fleet != nil && i < g.lastDay {
		g.fleet.day(date, out)
	}
	if g.next == h.days {
		g.carry.sort()
	}
	return true
}

// HistoryCounts is how many records of each kind a history holds.
type HistoryCounts struct {
	DossierEvents, Feedback, CameraEvents, Readings int
}

// Total is the records of every kind.
func (c HistoryCounts) Total() int { return c.DossierEvents + c.Feedback + c.CameraEvents + c.Readings }

// Records generates the history without writing it and counts its records
// of each kind, and what it leaves to the Carry.
func (h *History) Records() (HistoryCounts, *Carry) {
	g := h.generator()
	var c HistoryCounts
	var d historyDay
	for g.day(&d) {
		c.DossierEvents += len(d.dossiers)
		c.Feedback += len(d.feedback)
		c.CameraEvents += len(d.cameras)
		c.Readings += len(d.readings)
	}
	return c, g.carry
}
