// Package dossier owns what the events of an administrative-procedure
// dossier mean for the indicators: from a dossier's events it derives
// contributions, additive rows placed at the moments they count (receipt,
// closure, the moment it turns late), which the rollups sum.
//
// Events may arrive late or out of order, so a dossier's contributions are
// derived again from its whole history whenever it gains an event, and the
// change (Delta) is what gets stored. Summing the stored changes of a
// dossier always gives the contributions of its history as known now.
//
// Concurrency: the functions are pure and safe for concurrent use.
package dossier

import (
	"cmp"
	"slices"
	"time"
)

// Event is what the derivation needs of one dossier event.
type Event struct {
	EventID     string
	Area        string
	Status      string
	OccurredAt  time.Time
	ReceivedAt  *time.Time
	DueAt       *time.Time
	Channel     string
	Sector      string
	Procedure   string
	OnlineLevel string
	Digitized   bool
	EResult     bool
	PaidOnline  bool
	ReusedData  bool
	FeeRequired bool
	Approximate bool
	// Supersedes names an earlier event of the dossier that this one
	// corrects: the derivation leaves the named event out, whenever either
	// arrives.
	Supersedes string
}

// statusRank orders events stamped in the same second by lifecycle step.
var statusRank = map[string]int{
	"received": 1, "processing": 2, "supplement_requested": 3, "resolved": 4,
	"returned": 5, "rejected": 6, "withdrawn": 7,
}

// Measures are the additive figures of a contribution. Open and LateOpen are
// balances: their sum over every row before a moment is the number of
// dossiers open (and open past their deadline) at that moment.
type Measures struct {
	Received          int64 // dossier received, at receipt
	ReceivedOnline    int64 // … through the online channel
	Digitized         int64 // … with components and result digitized
	Reused            int64 // … reusing already-digitized data
	FeeBearing        int64 // … of a procedure with a fee or financial obligation
	PaidOnline        int64 // … of which paid online
	Resolved          int64 // dossier resolved, at resolution
	OnTime            int64 // … on time under the supplement rules
	Timed             int64 // … with a known receipt time
	ResolutionSeconds int64 // … their processing time, waits for the citizen excluded
	EResult           int64 // … with an electronic result
	Open              int64 // +1 at receipt, −1 at closure
	LateOpen          int64 // +1 when an open dossier turns late, −1 at its closure
	Approximate       int64 // receipts placed by a crosswalk's guess
}

// Key is where a contribution counts: a moment, a unit and the dossier's
// dimensions.
type Key struct {
	T           time.Time
	Area        string
	Sector      string
	Procedure   string
	Channel     string
	OnlineLevel string
}

// Contribution is one row of a dossier's figures.
type Contribution struct {
	Key
	Measures
}

// Columns name the measures as the rollup tables (and the delta.* arrays of
// stored events) name them, in the order of Fields. Every reader and writer
// of the rollups lists measures from here.
var Columns = []string{"received", "received_online", "digitized", "reused", "fee_bearing", "paid_online",
	"resolved", "on_time", "timed", "resolution_seconds", "e_result", "open", "late_open", "approximate"}

// Fields are m's measures in the order of Columns.
func (m *Measures) Fields() [14]*int64 {
	return [14]*int64{&m.Received, &m.ReceivedOnline, &m.Digitized, &m.Reused, &m.FeeBearing, &m.PaidOnline,
		&m.Resolved, &m.OnTime, &m.Timed, &m.ResolutionSeconds, &m.EResult, &m.Open, &m.LateOpen, &m.Approximate}
}

func (m *Measures) add(o Measures, sign int64) {
	m.Received += sign * o.Received
	m.ReceivedOnline += sign * o.ReceivedOnline
	m.Digitized += sign * o.Digitized
	m.Reused += sign * o.Reused
	m.FeeBearing += sign * o.FeeBearing
	m.PaidOnline += sign * o.PaidOnline
	m.Resolved += sign * o.Resolved
	m.OnTime += sign * o.OnTime
	m.Timed += sign * o.Timed
	m.ResolutionSeconds += sign * o.ResolutionSeconds
	m.EResult += sign * o.EResult
	m.Open += sign * o.Open
	m.LateOpen += sign * o.LateOpen
	m.Approximate += sign * o.Approximate
}

// Add sums o into m.
func (m *Measures) Add(o Measures) { m.add(o, 1) }

// pause is a wait for the citizen's additional documents: from a
// supplement request to the dossier's next event; open-ended (end nil)
// while nothing has followed the request.
type pause struct {
	start time.Time
	end   *time.Time
}

// Derive returns the contributions of a dossier's events, in any order.
//
// The rules:
//   - The dossier is received at its received event, else at the earliest
//     received_at any event reports; without either it has no receipt.
//   - It closes at its first resolved, returned, rejected or withdrawn
//     event; resolved and returned resolve it.
//   - Its deadline is the latest due_at reported up to its closure.
//   - Time waiting for additional documents does not count: it turns late
//     once the time it has spent outside such waits passes the deadline,
//     and a second request for documents makes it late at once.
//   - A flag (digitized, e_result, paid_online, reused_data, fee_required)
//     reported on any event holds for the dossier.
//   - An event named by another's supersedes is left out: a sender corrects
//     an event by sending a new one that supersedes it.
func Derive(events []Event) []Contribution {
	evs := current(events)
	if len(evs) == 0 {
		return nil
	}
	slices.SortFunc(evs, func(a, b Event) int {
		return cmp.Or(a.OccurredAt.Compare(b.OccurredAt), cmp.Compare(statusRank[a.Status], statusRank[b.Status]), cmp.Compare(a.EventID, b.EventID))
	})
	key := Key{Area: evs[0].Area, Channel: evs[0].Channel}
	var flags Event
	var received *time.Time
	var fallbackReceipt *time.Time
	closeAt := -1
	for i, e := range evs {
		if key.Sector == "" {
			key.Sector = e.Sector
		}
		if key.Procedure == "" {
			key.Procedure = e.Procedure
		}
		if key.OnlineLevel == "" {
			key.OnlineLevel = e.OnlineLevel
		}
		flags.Digitized = flags.Digitized || e.Digitized
		flags.EResult = flags.EResult || e.EResult
		flags.PaidOnline = flags.PaidOnline || e.PaidOnline
		flags.ReusedData = flags.ReusedData || e.ReusedData
		flags.FeeRequired = flags.FeeRequired || e.FeeRequired || e.PaidOnline
		flags.Approximate = flags.Approximate || e.Approximate
		if e.Status == "received" && received == nil {
			t := e.OccurredAt
			received = &t
			key.Channel = e.Channel
		}
		if e.ReceivedAt != nil && (fallbackReceipt == nil || e.ReceivedAt.Before(*fallbackReceipt)) {
			t := *e.ReceivedAt
			fallbackReceipt = &t
		}
		if closeAt < 0 && closes(e.Status) {
			closeAt = i
		}
	}
	if received == nil {
		received = fallbackReceipt
	}
	// The clock runs up to the closure; later events only lend their flags.
	upto := evs
	if closeAt >= 0 {
		upto = evs[:closeAt+1]
	}
	var due *time.Time
	var pauses []pause
	requests := 0
	var secondRequest *time.Time
	for i, e := range upto {
		if e.DueAt != nil {
			due = e.DueAt
		}
		if e.Status != "supplement_requested" || i == closeAt {
			continue
		}
		requests++
		if requests == 2 {
			t := e.OccurredAt
			secondRequest = &t
		}
		p := pause{start: e.OccurredAt}
		if i+1 < len(evs) {
			t := evs[i+1].OccurredAt
			p.end = &t
		}
		pauses = append(pauses, p)
	}
	late := lateSince(due, pauses)
	if secondRequest != nil && (late == nil || secondRequest.Before(*late)) {
		late = secondRequest
	}

	var out []Contribution
	row := func(t time.Time, m Measures) {
		k := key
		k.T = t
		out = append(out, Contribution{Key: k, Measures: m})
	}
	if received != nil {
		row(*received, Measures{
			Received: 1, ReceivedOnline: b(key.Channel == "online"), Digitized: b(flags.Digitized),
			Reused: b(flags.ReusedData), FeeBearing: b(flags.FeeRequired), PaidOnline: b(flags.PaidOnline),
			Open: 1, Approximate: b(flags.Approximate),
		})
	}
	var closed *time.Time
	if closeAt >= 0 {
		c := evs[closeAt]
		closed = &c.OccurredAt
		var m Measures
		if received != nil {
			m.Open = -1
		}
		if c.Status == "resolved" || c.Status == "returned" {
			m.Resolved = 1
			m.EResult = b(flags.EResult)
			m.OnTime = b(due != nil && (late == nil || !c.OccurredAt.After(*late)))
			if received != nil {
				m.Timed = 1
				m.ResolutionSeconds = max(0, int64(c.OccurredAt.Sub(*received)/time.Second)-waited(pauses, c.OccurredAt))
			}
		}
		row(c.OccurredAt, m)
	}
	if received != nil && late != nil && (closed == nil || late.Before(*closed)) {
		at := *late
		if at.Before(*received) {
			at = *received
		}
		row(at, Measures{LateOpen: 1})
		if closed != nil {
			row(*closed, Measures{LateOpen: -1})
		}
	}
	return merge(out)
}

// current returns a copy of events without those another event supersedes.
func current(events []Event) []Event {
	var superseded map[string]bool
	for _, e := range events {
		if e.Supersedes != "" {
			if superseded == nil {
				superseded = map[string]bool{}
			}
			superseded[e.Supersedes] = true
		}
	}
	out := make([]Event, 0, len(events))
	for _, e := range events {
		if !superseded[e.EventID] {
			out = append(out, e)
		}
	}
	return out
}

func closes(status string) bool {
	switch status {
	case "resolved", "returned", "rejected", "withdrawn":
		return true
	}
	return false
}

// lateSince returns the moment the time spent outside pauses passes due:
// the dossier is late at any moment after it. Nil when there is no
// deadline, or while an open-ended pause began before the deadline passed.
func lateSince(due *time.Time, pauses []pause) *time.Time {
	if due == nil {
		return nil
	}
	var shift time.Duration
	for _, p := range pauses {
		if p.start.Add(-shift).After(*due) {
			break
		}
		if p.end == nil {
			return nil
		}
		shift += p.end.Sub(p.start)
	}
	t := due.Add(shift)
	return &t
}

// waited is the time in pauses that ended by t, in seconds.
func waited(pauses []pause, t time.Time) int64 {
	var d time.Duration
	for _, p := range pauses {
		if p.end != nil && !p.end.After(t) {
			d += p.end.Sub(p.start)
		}
	}
	return int64(d / time.Second)
}

func b(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

// merge folds rows with the same key and drops rows that sum to nothing,
// in key order.
func merge(rows []Contribution) []Contribution {
	byKey := make(map[Key]Measures, len(rows))
	for _, r := range rows {
		m := byKey[r.Key]
		m.Add(r.Measures)
		byKey[r.Key] = m
	}
	out := make([]Contribution, 0, len(byKey))
	for k, m := range byKey {
		if m != (Measures{}) {
			out = append(out, Contribution{Key: k, Measures: m})
		}
	}
	slices.SortFunc(out, func(a, b Contribution) int {
		return cmp.Or(a.T.Compare(b.T), cmp.Compare(a.Area, b.Area), cmp.Compare(a.Sector, b.Sector),
			cmp.Compare(a.Procedure, b.Procedure), cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.OnlineLevel, b.OnlineLevel))
	})
	return out
}

// Delta returns after − before: what storing a dossier's new contributions
// in place of its old ones changes.
func Delta(before, after []Contribution) []Contribution {
	rows := make([]Contribution, 0, len(before)+len(after))
	rows = append(rows, after...)
	for _, r := range before {
		var m Measures
		m.add(r.Measures, -1)
		rows = append(rows, Contribution{Key: r.Key, Measures: m})
	}
	return merge(rows)
}
