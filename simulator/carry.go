package simulator

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/openioc/ioc/ingest"
)

// Carry is what a history's dossiers and feedback items do at or after its
// End: later steps of dossiers still open, later states of feedback items.
// Simulator.Continue sends them as their time comes, so that the dossiers
// open at the end of the history move on instead of turning overdue one
// after the other. At field pace the simulator also has the Carry take on
// the history's days after End, each as it begins, so that what it sends
// is the history carried on: the records a History ending later would
// hold.
//
// A Carry is owned by whoever steps the simulator continuing it.
type Carry struct {
	h        *History
	dossiers []stepRef // in time order
	feedback []carriedFeedback
	// tokens stand for the carried dossiers in a simulator's outbox, one
	// a dossier from its first carried step to its last: a dossier dropped
	// before the server saw its receipt (a full outbox while the server
	// is away) is forgotten with its later steps.
	tokens map[*histDossier]*dossier
	next   int // the first day of the history not generated yet
	src    *rand.PCG
	r      *rand.Rand
	buf    []*histDossier
	fbBuf  []*histFeedback
}

// carriedFeedback is item f's state at its change at.
type carriedFeedback struct {
	at time.Time
	f  *histFeedback
}

func (h *History) newCarry() *Carry {
	src := rand.NewPCG(0, 0)
	return &Carry{h: h, tokens: map[*histDossier]*dossier{}, next: h.days, src: src, r: rand.New(src)}
}

// CarryOn is the Carry a live simulator continues h with when h is stored
// up to stored, by an earlier run (its Write, or a simulator that carried it
// on), without generating the history's records: the steps at or after End
// of the dossiers received by stored, the later states of its feedback
// items, and everything of those received from End on. What was received
// between stored and End is left out, as it never reached the database
// (the node was away), and so are the steps it would have taken.
//
// With stored at End it is the Carry Write returns, but for dossiers
// received more than 120 days before End, whose lifecycles are over by
// then; with zero stored nothing of h is stored, and the Carry holds only
// what is received from End on.
func (h *History) CarryOn(stored time.Time) *Carry {
	c := h.newCarry()
	end := h.cfg.End
	last := h.days - 1
	keep := func(received time.Time) bool { return !received.Before(end) }
	first, storedDay := last, -1
	if !stored.IsZero() {
		stored = minTime(stored, end)
		storedDay = h.dayOf(stored)
		first = max(0, min(storedDay, last)-carryLookback)
		keep = func(received time.Time) bool { return !received.After(stored) || !received.Before(end) }
	}
	for i := first; i <= last; i++ {
		if i > storedDay && i < last {
			continue // nothing received on these days is stored
		}
		c.addDay(i, h.start.AddDate(0, 0, i), end, keep)
	}
	c.sort()
	return c
}

// End is the end of the history the Carry continues: what it holds comes
// at or after it.
func (c *Carry) End() time.Time { return c.h.cfg.End }

// addStep takes on step ref, and a token for its dossier.
func (c *Carry) addStep(ref stepRef) {
	c.dossiers = append(c.dossiers, ref)
	if c.tokens[ref.d] == nil {
		c.tokens[ref.d] = &dossier{id: ref.d.id, area: ref.d.area, carried: true, heapIdx: -1}
	}
}

// addDay generates day i of the history (date) and takes on, of the
// dossiers and feedback items received that day as keep says (nil: all),
// the steps and changes at or after from.
func (c *Carry) addDay(i int, date, from time.Time, keep func(received time.Time) bool) {
	h := c.h
	c.buf = h.dossiersOf(c.src, c.r, date, c.buf[:0])
	for _, d := range c.buf {
		if keep != nil && !keep(d.received) {
			continue
		}
		for s, st := range d.steps {
			if !st.At.Before(from) {
				c.addStep(stepRef{d, s})
			}
		}
	}
	clear(c.buf)
	c.fbBuf = h.feedbackOf(c.src, c.r, i, date, c.fbBuf[:0])
	for _, f := range c.fbBuf {
		if keep != nil && !keep(f.received) {
			continue
		}
		if !f.received.Before(from) {
			c.feedback = append(c.feedback, carriedFeedback{at: f.received, f: f})
		}
		for _, t := range f.moments() {
			if !t.Before(from) {
				c.feedback = append(c.feedback, carriedFeedback{at: t, f: f})
			}
		}
	}
	clear(c.fbBuf)
}

// extend takes on the history's days that begin by now, whole: the
// dossiers and feedback items received on them, with all they do later.
// A day is drawn as the History draws it, from streams of its own, so it
// holds what a History ending later would.
func (c *Carry) extend(now time.Time) {
	added := false
	for {
		date := c.h.start.AddDate(0, 0, c.next)
		if date.After(now) {
			break
		}
		c.addDay(c.next, date, date, nil)
		c.next++
		added = true
	}
	if added {
		c.sort()
	}
}

func (c *Carry) sort() {
	slices.SortStableFunc(c.dossiers, func(a, b stepRef) int { return a.at().Compare(b.at()) })
	slices.SortStableFunc(c.feedback, func(a, b carriedFeedback) int { return a.at.Compare(b.at) })
}

// Len is how many dossier events and feedback states the carry holds.
func (c *Carry) Len() (dossierEvents, feedbackStates int) {
	if c == nil {
		return 0, 0
	}
	return len(c.dossiers), len(c.feedback)
}

// open is how many carried dossiers have steps to come.
func (c *Carry) open() int { return len(c.tokens) }

// dossierEvents appends the events due at or before now, removing them,
// each with its dossier's token; the steps of a dossier dropped unsent are
// skipped.
func (c *Carry) dossierEvents(now time.Time, out []item) []item {
	n := 0
	for n < len(c.dossiers) && !c.dossiers[n].at().After(now) {
		ref := c.dossiers[n]
		n++
		tok := c.tokens[ref.d]
		if ref.i == len(ref.d.steps)-1 {
			delete(c.tokens, ref.d)
		}
		if tok == nil || tok.closed {
			continue
		}
		out = append(out, item{ev: ref.d.event(ref.i, c.h.cfg.Location), d: tok})
	}
	clear(c.dossiers[:n])
	c.dossiers = c.dossiers[n:]
	return out
}

// feedbackStates appends the states due at or before now, removing them.
func (c *Carry) feedbackStates(now time.Time, out []ingest.FeedbackRecord) []ingest.FeedbackRecord {
	n := 0
	for n < len(c.feedback) && !c.feedback[n].at.After(now) {
		out = append(out, c.feedback[n].f.state(c.feedback[n].at))
		n++
	}
	clear(c.feedback[:n])
	c.feedback = c.feedback[n:]
	return out
}
