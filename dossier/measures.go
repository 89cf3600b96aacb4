package dossier

import (
	"fmt"
	"strings"
)

// Index is the place of a measure in Table, and in Measures.
type Index int

// The measures, in the order of Table. Go code that names a measure uses
// these; readers and writers of storage go through Table and need none.
const (
	Received Index = iota
	ReceivedOnline
	Digitized
	Reused
	FeeBearing
	PaidOnline
	Resolved
	OnTime
	Timed
	ResolutionSeconds
	EResult
	Open
	LateOpen
	Approximate
)

// Measure is one additive figure of a dossier's contributions: how it is
// stored and how a dossier's facts give it.
//
// A dossier contributes a row at each of three moments: its receipt, its
// closure, and the moment it turns late while open. A measure's value in
// the row of a moment is what its function for that moment gives (nil
// gives 0); rows that sum to nothing are dropped.
type Measure struct {
	// Column names the measure in storage: an Int64 column of every
	// dossier_flow_* rollup, and the delta.<Column> array of
	// dossier_history that carries each stored event's change.
	Column string
	// Wide says a change can exceed Int8 (−128..127): its delta array is
	// Array(Int64) rather than Array(Int8).
	Wide bool
	// Balance says the measure is a balance: +1 when something begins and
	// −1 when it ends, so that its sum over every row before a moment is a
	// count at that moment. A balance is no figure of a range: readers of
	// ranges leave it out, and read it from the beginning of time.
	Balance bool
	// AtReceipt, AtClosure and AtLate give the measure's value in the row
	// of each moment.
	AtReceipt, AtClosure, AtLate func(Facts) int64
}

// Facts are what a dossier's history establishes, as the measures read
// them: its dimensions, the flags any of its events reported, and how it
// ended so far.
type Facts struct {
	Channel, OnlineLevel, Sector, Procedure string
	// Digitized, EResult, PaidOnline, ReusedData and Approximate hold when
	// any event reported them; FeeRequired also when it was paid online.
	Digitized, EResult, PaidOnline, ReusedData, FeeRequired, Approximate bool
	// Received says the dossier has a receipt: a received event, or a
	// received_at reported by any event.
	Received bool
	// Closed is the status of its closing event (resolved, returned,
	// rejected or withdrawn), empty while it is open; Resolved says that
	// event resolved it (resolved or returned).
	Closed   string
	Resolved bool
	// OnTime says it closed by its deadline under the supplement rules (a
	// deadline is needed).
	OnTime bool
	// ResolutionSeconds is its processing time, receipt to closure, less
	// the waits for the citizen's documents: set when it closed with a
	// receipt.
	ResolutionSeconds int64
	// Late says it turned late while open.
	Late bool
}

// Table lists every measure. Adding one is an entry here (keyed by a new
// constant of Index) and a migration that adds its column to the five
// dossier_flow_* rollups and its delta.<column> array to dossier_history;
// see the package doc.
var Table = [...]Measure{
	Received:       {Column: "received", AtReceipt: one},
	ReceivedOnline: {Column: "received_online", AtReceipt: func(f Facts) int64 { return b(f.Channel == "online") }},
	Digitized:      {Column: "digitized", AtReceipt: func(f Facts) int64 { return b(f.Digitized) }},
	Reused:         {Column: "reused", AtReceipt: func(f Facts) int64 { return b(f.ReusedData) }},
	FeeBearing:     {Column: "fee_bearing", AtReceipt: func(f Facts) int64 { return b(f.FeeRequired) }},
	PaidOnline:     {Column: "paid_online", AtReceipt: func(f Facts) int64 { return b(f.PaidOnline) }},
	Resolved:       {Column: "resolved", AtClosure: func(f Facts) int64 { return b(f.Resolved) }},
	OnTime:         {Column: "on_time", AtClosure: func(f Facts) int64 { return b(f.Resolved && f.OnTime) }},
	Timed:          {Column: "timed", AtClosure: func(f Facts) int64 { return b(f.Resolved && f.Received) }},
	ResolutionSeconds: {Column: "resolution_seconds", Wide: true, AtClosure: func(f Facts) int64 {
		if f.Resolved && f.Received {
			return f.ResolutionSeconds
		}
		return 0
	}},
	EResult: {Column: "e_result", AtClosure: func(f Facts) int64 { return b(f.Resolved && f.EResult) }},
	Open: {Column: "open", Balance: true, AtReceipt: one,
		AtClosure: func(f Facts) int64 { return -b(f.Received) }},
	LateOpen: {Column: "late_open", Balance: true, AtLate: one,
		AtClosure: func(f Facts) int64 { return -b(f.Late) }},
	Approximate: {Column: "approximate", AtReceipt: func(f Facts) int64 { return b(f.Approximate) }},
}

func one(Facts) int64 { return 1 }

// Columns name the measures as storage does (Measure.Column), in the order
// of Table.
var Columns = func() []string {
	out := make([]string, len(Table))
	for i, m := range Table {
		out[i] = m.Column
	}
	return out
}()

// Measures are the values of every measure of Table, in its order.
// Open and LateOpen are balances: their sum over every row before a moment
// is the number of dossiers open (and open past their deadline) at that
// moment.
type Measures [len(Table)]int64

func init() {
	seen := map[string]bool{}
	for i, m := range Table {
		if m.Column == "" || seen[m.Column] || strings.ToLower(m.Column) != m.Column {
			panic(fmt.Sprintf("dossier.Table[%d]: every measure needs a column of its own, in lower case (got %q)", i, m.Column))
		}
		seen[m.Column] = true
	}
}

// Add sums o into m.
func (m *Measures) Add(o Measures) {
	for i := range m {
		m[i] += o[i]
	}
}

// String lists the measures that are not zero, by column.
func (m Measures) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range m {
		if v == 0 {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d", Table[i].Column, v)
	}
	b.WriteByte('}')
	return b.String()
}

// moment picks a moment's function of a measure.
type moment func(Measure) func(Facts) int64

var (
	atReceipt moment = func(m Measure) func(Facts) int64 { return m.AtReceipt }
	atClosure moment = func(m Measure) func(Facts) int64 { return m.AtClosure }
	atLate    moment = func(m Measure) func(Facts) int64 { return m.AtLate }
)

// values fills dst (one value per measure of table) with the measures'
// values at a moment.
func (at moment) values(table []Measure, f Facts, dst []int64) {
	for i, m := range table {
		if fn := at(m); fn != nil {
			dst[i] = fn(f)
		} else {
			dst[i] = 0
		}
	}
}

// measures are the Measures of a moment.
func (at moment) measures(f Facts) Measures {
	var m Measures
	at.values(Table[:], f, m[:])
	return m
}
