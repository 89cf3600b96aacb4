// Package dossier owns what the events of an administrative-procedure
// dossier mean for the indicators: from a dossier's events it derives
// contributions, additive rows placed at the moments they count (receipt,
// closure, the moment it turns late), which the rollups sum. It also owns
// the values an event may carry (vocabulary.go: statuses, channels, online
// levels).
//
// Events may arrive late or out of order, so a dossier's contributions are
// derived again from its whole history whenever it gains an event, and the
// change (Delta) is what gets stored. Summing the stored changes of a
// dossier always gives the contributions of its history as known now.
//
// Table is the one list of the measures a contribution carries: for each,
// its column in storage, whether it is a balance, and its value at each
// moment from the dossier's Facts. Everything else follows it: Derive
// fills Measures from it; the writers in ingest name the delta.* arrays of
// dossier_history and the columns of the dossier_flow_* rollups from it;
// the rollup reader (rollup) sums and scans them from it; the
// figures (aggregate.Counts.Flow) carry every measure.
//
// Adding a measure, e.g. dossiers received by post, is two steps. First, a
// constant at the end of the Index list and its entry in Table, keyed by it
// (a measure that can change by more than ±127 at once is Wide):
//
//	ReceivedPostal: {Column: "received_postal", AtReceipt: func(f Facts) int64 { return b(f.Channel == "postal") }},
//
// Then a migration (internal/chstore/migrations) that adds its column, in
// Table's order, to the five dossier_flow_* rollups and its delta array to
// dossier_history, one ALTER each:
//
//	ALTER TABLE {db}.dossier_flow_minute ADD COLUMN received_postal Int64 DEFAULT 0 AFTER approximate;
//	-- the same for dossier_flow_hour, _day, _month and _day_by
//	ALTER TABLE {db}.dossier_history ADD COLUMN `delta.received_postal` Array(Int8) AFTER `delta.approximate`;
//
// ingest's TestMeasureTableMatchesTheMigrations fails until the two agree.
//
// Nothing else changes for the measure to be derived, stored, checked by
// iocd verify, carried live and read over any range. To show it, add an
// indicator to the catalog (aggregate/catalog.go) that reads it from
// Counts.Flow[dossier.ReceivedPostal]. Events stored before the migration
// carry 0 for it (ClickHouse reads their new array as zeros, one per
// change), so it counts from then on.
//
// Concurrency: the functions are pure and safe for concurrent use; Table
// and Columns must not be modified.
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

// String writes where the row counts and its measures.
func (c Contribution) String() string {
	return c.T.UTC().Format(time.RFC3339) + " " + c.Area + " " + c.Sector + "/" + c.Procedure + "/" + c.Channel + "/" + c.OnlineLevel + " " + c.Measures.String()
}

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
	key, f, at, ok := history(events)
	if !ok {
		return nil
	}
	var out []Contribution
	row := func(t time.Time, m Measures) {
		k := key
		k.T = t
		out = append(out, Contribution{Key: k, Measures: m})
	}
	if at.receipt != nil {
		row(*at.receipt, atReceipt.measures(f))
	}
	if at.closure != nil {
		row(*at.closure, atClosure.measures(f))
	}
	if at.late != nil {
		row(*at.late, atLate.measures(f))
	}
	return merge(out)
}

// moments are when a dossier's rows count: its receipt, its closure, and
// when it turns late while open; nil when it has not (yet) had one.
type moments struct{ receipt, closure, late *time.Time }

// history establishes, under the rules of Derive, the key of a dossier's
// rows, its facts and the moments of its rows; false without events.
func history(events []Event) (Key, Facts, moments, bool) {
	evs := current(events)
	if len(evs) == 0 {
		return Key{}, Facts{}, moments{}, false
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

	f := Facts{Channel: key.Channel, OnlineLevel: key.OnlineLevel, Sector: key.Sector, Procedure: key.Procedure,
		Digitized: flags.Digitized, EResult: flags.EResult, PaidOnline: flags.PaidOnline, ReusedData: flags.ReusedData,
		FeeRequired: flags.FeeRequired, Approximate: flags.Approximate, Received: received != nil}
	var closed *time.Time
	if closeAt >= 0 {
		c := evs[closeAt]
		closed = &c.OccurredAt
		f.Closed = c.Status
		f.Resolved = c.Status == "resolved" || c.Status == "returned"
		f.OnTime = due != nil && (late == nil || !c.OccurredAt.After(*late))
		if received != nil {
			f.ResolutionSeconds = max(0, int64(c.OccurredAt.Sub(*received)/time.Second)-waited(pauses, c.OccurredAt))
		}
	}
	f.Late = received != nil && late != nil && (closed == nil || late.Before(*closed))
	at := moments{receipt: received, closure: closed}
	if f.Late {
		t := *late
		if t.Before(*received) {
			t = *received
		}
		at.late = &t
	}
	return key, f, at, true
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
		m := r.Measures
		for i := range m {
			m[i] = -m[i]
		}
		rows = append(rows, Contribution{Key: r.Key, Measures: m})
	}
	return merge(rows)
}
