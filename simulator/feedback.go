package simulator

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/openioc/ioc/ingest"
)

// Citizen feedback (the 1022 hotline and portal complaints). Like dossier
// due windows, the calendar is compressed so that a demo sees items
// resolved and rated within the hour: a working day lasts
// feedbackWorkingDay, and an item is due feedbackDueDays of them after it
// is received.
const (
	defaultFeedbackRate    = 4.0 // items per minute at the office-hours peak
	maxFeedbackRate        = 1000
	feedbackWorkingDay     = 6 * time.Minute
	feedbackDueDays        = 5
	shareFeedbackProcedure = 0.20 // complaints about a dossier
	shareFeedbackOnTime    = 0.85 // of resolved items
	shareFeedbackRated     = 0.60 // of resolved items
	shareFeedbackSatisfied = 0.80 // of ratings
	maxOpenFeedback        = 2000
	// feedbackQueueLimit bounds unsent states; dropping one loses little,
	// as the next state of the item carries its whole history.
	feedbackQueueLimit = 5000
)

type weighted struct {
	value  string
	weight float64
}

// Categories other than procedure, which is drawn first, and channels, as a
// city hotline sees them: street order, environment and traffic lead.
var (
	feedbackCategories = []weighted{
		{"environment", 16}, {"traffic", 14}, {"urban_order", 16}, {"security", 6},
		{"utilities", 12}, {"health", 6}, {"education", 4}, {"other", 6},
	}
	feedbackChannels = []weighted{
		{"hotline", 50}, {"app", 20}, {"portal", 20}, {"email", 5}, {"in_person", 5},
	}
)

func cumulative(ws []weighted) []float64 {
	out := make([]float64, len(ws))
	sum := 0.0
	for i, w := range ws {
		sum += w.weight
		out[i] = sum
	}
	return out
}

// feedbackItem is an open item: its state so far and the steps still to
// come; a step with an empty status is the citizen's rating.
type feedbackItem struct {
	rec    ingest.FeedbackRecord
	steps  []step
	next   int
	rating string
}

// feedbackWorld files feedback items in the province's units and moves them
// received → processing → resolved, then maybe rated; every change emits
// the item's whole state, which replaces the earlier one on the server. It
// is owned by whoever steps the simulator, like world, whose dossiers
// procedure complaints are about.
type feedbackWorld struct {
	rng      *rand.Rand
	loc      *time.Location
	lambda   float64 // items per second at full rhythm
	dossiers *world
	idPrefix string
	catCum   []float64
	chanCum  []float64

	started     bool
	nextArrival time.Time
	seq         int
	open        []*feedbackItem
}

func newFeedbackWorld(rng *rand.Rand, loc *time.Location, perMinute float64, dossiers *world) *feedbackWorld {
	return &feedbackWorld{
		rng: rng, loc: loc, lambda: perMinute / 60, dossiers: dossiers,
		// The run tag keeps two runs from replacing each other's items.
		idPrefix: fmt.Sprintf("1022-%s-%s-", dossiers.provCode, dossiers.runTag),
		catCum:   cumulative(feedbackCategories),
		chanCum:  cumulative(feedbackChannels),
	}
}

func (f *feedbackWorld) chance(p float64) bool { return f.rng.Float64() < p }

func (f *feedbackWorld) arrivalGap() time.Duration {
	return time.Duration(f.rng.ExpFloat64() / f.lambda * float64(time.Second))
}

// advance appends the state of every item that changed up to now: new
// items arrive as a Poisson process thinned by the office-hours rhythm.
func (f *feedbackWorld) advance(now time.Time, out []ingest.FeedbackRecord) []ingest.FeedbackRecord {
	if !f.started {
		f.started = true
		f.nextArrival = now.Add(f.arrivalGap())
	}
	if floor := now.Add(-maxCatchUp); f.nextArrival.Before(floor) {
		f.nextArrival = floor.Add(f.arrivalGap())
	}
	for ; !f.nextArrival.After(now); f.nextArrival = f.nextArrival.Add(f.arrivalGap()) {
		if len(f.open) < maxOpenFeedback && f.chance(rhythm(f.nextArrival.In(f.loc))) {
			it := f.receive(f.nextArrival)
			f.open = append(f.open, it)
			out = append(out, f.state(it))
		}
	}
	kept := f.open[:0]
	for _, it := range f.open {
		changed := false
		for it.next < len(it.steps) && !it.steps[it.next].at.After(now) {
			s := it.steps[it.next]
			if s.status == "" {
				it.rec.Rating = it.rating
			} else {
				it.rec.StatusChanges = append(it.rec.StatusChanges, ingest.FeedbackStatusChange{Status: s.status, At: f.format(s.at)})
			}
			it.next++
			changed = true
		}
		if changed {
			out = append(out, f.state(it))
		}
		if it.next < len(it.steps) {
			kept = append(kept, it)
		}
	}
	clear(f.open[len(kept):])
	f.open = kept
	return out
}

// state is a copy of the item's record: the queue keeps it while the item
// goes on changing.
func (f *feedbackWorld) state(it *feedbackItem) ingest.FeedbackRecord {
	r := it.rec
	r.StatusChanges = slices.Clone(r.StatusChanges)
	return r
}

func (f *feedbackWorld) format(t time.Time) string { return t.In(f.loc).Format(time.RFC3339) }

// receive files an item at t and plans its life, so that the due date and
// the outcome are fixed from the start.
func (f *feedbackWorld) receive(t time.Time) *feedbackItem {
	f.seq++
	t = t.Truncate(time.Second) // as stored, so that changes never precede receipt
	window := feedbackDueDays * feedbackWorkingDay
	due := t.Add(window)
	it := &feedbackItem{rec: ingest.FeedbackRecord{
		FeedbackID: fmt.Sprintf("%s%06d", f.idPrefix, f.seq),
		Channel:    feedbackChannels[pick(f.rng, f.chanCum)].value,
		ReceivedAt: f.format(t),
		DueAt:      f.format(due),
	}}
	var d *dossier
	if f.chance(shareFeedbackProcedure) {
		d = f.dossier()
	}
	if d != nil {
		// A complaint about a dossier is filed where the dossier is.
		it.rec.Category, it.rec.DossierID, it.rec.AreaCode = "procedure", d.id, d.area
	} else {
		it.rec.Category = feedbackCategories[pick(f.rng, f.catCum)].value
		it.rec.AreaCode = f.dossiers.areas[pick(f.rng, f.dossiers.cum)]
	}
	it.rec.StatusChanges = []ingest.FeedbackStatusChange{{Status: "received", At: f.format(t)}}
	at := func(from time.Time, lo, hi float64) time.Time {
		return from.Add(time.Duration((lo + (hi-lo)*f.rng.Float64()) * float64(window))).Truncate(time.Second)
	}
	processing := at(t, 0.03, 0.15)
	resolved := at(due, 0.05, 0.40) // late
	if f.chance(shareFeedbackOnTime) {
		resolved = at(t, 0.25, 0.95)
	}
	it.steps = []step{{"processing", processing}, {"resolved", resolved}}
	if f.chance(shareFeedbackRated) {
		it.rating = "dissatisfied"
		if f.chance(shareFeedbackSatisfied) {
			it.rating = "satisfied"
		}
		it.steps = append(it.steps, step{"", at(resolved, 0.02, 0.15)})
	}
	return it
}

// dossier picks an open dossier of the dossier world whose received event
// the server has taken, or nil when there is none at hand. A complaint
// must not name a dossier the server does not know: one whose events are
// still queued may yet be dropped unsent from a full outbox, and its events
// go through another sender than the complaint, so they could arrive after
// it or, at shutdown, never.
func (f *feedbackWorld) dossier() *dossier {
	w := f.dossiers
	for range 8 {
		if len(w.byAge) == 0 {
			return nil
		}
		if d := w.byAge[f.rng.IntN(len(w.byAge))]; !d.closed && d.delivered.Load() {
			return d
		}
	}
	return nil
}
