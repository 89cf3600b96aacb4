package aggregate

import (
	"strconv"
	"time"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/rollup"
)

// liveState is what the lease holder knows of every unit's figures: the
// last check's read of the rollups (its windows' sums, the markers that
// came with them, the overdue dossiers and device and alarm counts), plus
// the deltas the writers announced since. Publishing sums subtrees from it
// without reading ClickHouse.
//
// Exactness: a delta's rows are stored before the delta is sent, so a read
// that starts after a delta arrived includes its rows. A delta that arrives
// after a read started may or may not be in it; the markers of the same
// read settle that per table, batch and group (see apply). A check replaces
// the state, and the deltas that arrived while it ran are settled against
// its own read.
type liveState struct {
	at      time.Time     // when the check read (the windows' now)
	spans   []rollup.Span // per window of Windows
	direct  []map[string]*rollup.Sums
	markers map[rollup.MarkerKey]bool
	overdue map[string]uint64
	current map[string]Counts
	extras  *extras // read with the check, or since (MarkExtras)
}

// batchTable names one table's rows of one batch.
type batchTable struct {
	table string
	batch uint64
}

// applied is what applying a delta did.
type applied struct {
	touched map[string]bool // units whose sums changed
	overdue map[string]bool // units where a dossier turned late or closed by now
	// unsettled says some rows could be neither counted nor left out:
	// their markers may have been cancelled before the read, or the table
	// is not one this node reads the same way. Only a new read settles it.
	unsettled bool
	marked    []batchTable // the marked tables of the delta
}

// trusted says whether the markers of a batch begun at created were still
// there when the state's read ran: the reconciler cancels them once the
// batch is older than rollup.MarkerLife; half of it leaves room for clocks
// of different nodes to differ.
func (st *liveState) trusted(created time.Time) bool {
	return st.at.Sub(created) < rollup.MarkerLife/2
}

// apply adds the rows of d that the state's read did not include: rows of
// hierarchy h, in a window, whose batch's marker for their group was not in
// the read. now decides which overdue counts may have moved.
func (st *liveState) apply(d rollup.Delta, h *geo.Hierarchy, now time.Time) applied {
	out := applied{touched: map[string]bool{}, overdue: map[string]bool{}}
	for _, t := range d.Tables {
		f, minute, ok := rollup.LiveTable(t.Name)
		if !ok {
			continue // a rollup no window reads
		}
		if !f.Matches(t) {
			out.unsettled = true
			continue
		}
		if t.Marked {
			out.marked = append(out.marked, batchTable{t.Name, d.Batch})
			if !st.trusted(d.Created) {
				out.unsettled = true
				continue
			}
		}
		for _, r := range t.Rows {
			if r.Hierarchy != h.Name() || len(r.Dims) != len(t.Dims) || len(r.Ints) != len(t.Ints) || len(r.Floats) != len(t.Floats) {
				continue
			}
			if t.Marked && st.markers[rollup.MarkerKey{Table: t.Name, Batch: d.Batch, Group: rollup.Group(r.Bucket).Unix()}] {
				continue // the read had them
			}
			counted := false
			for w, sp := range st.spans {
				if sp.Covers(minute, r.Bucket) {
					s := st.direct[w][r.Area]
					if s == nil {
						s = &rollup.Sums{}
						st.direct[w][r.Area] = s
					}
					f.Add(s, r.Dims, r.Ints, r.Floats)
					counted = true
				}
			}
			if counted {
				out.touched[r.Area] = true
			}
			if minute && f.LateOpen >= 0 && r.Ints[f.LateOpen] != 0 && !r.Bucket.After(now) {
				out.overdue[r.Area] = true
			}
		}
	}
	return out
}

// direct is a unit's own figures in window w: its rows, its overdue
// dossiers and its devices and alarms now.
func (st *liveState) directCounts(w int, code string) Counts {
	c := CountsOf(st.direct[w][code])
	c.Overdue = st.overdue[code]
	if cur, ok := st.current[code]; ok {
		c.Add(cur)
	}
	return c
}

// subtree sums a unit's figures over its subtree in window w, remembering
// every unit's in memo.
func (st *liveState) subtree(h *geo.Hierarchy, w int, code string, memo map[string]Counts) Counts {
	if c, ok := memo[code]; ok {
		return c
	}
	c := st.directCounts(w, code)
	for _, k := range h.ChildCodes(code) {
		c.Add(st.subtree(h, w, k, memo))
	}
	memo[code] = c
	return c
}

// differing lists the units whose own rows in window w differ between two
// states: what a check found that the deltas had not produced.
func differing(old, cur *liveState, w int) []string {
	var out []string
	for code, s := range cur.direct[w] {
		if !s.Equal(old.direct[w][code]) {
			out = append(out, code)
		}
	}
	for code, s := range old.direct[w] {
		if _, ok := cur.direct[w][code]; !ok && !s.Equal(nil) {
			out = append(out, code)
		}
	}
	return out
}

// batches lists the marked tables of each batch whose markers the read had.
func (st *liveState) batches() map[batchTable]bool {
	out := map[batchTable]bool{}
	for k := range st.markers {
		out[batchTable{k.Table, k.Batch}] = true
	}
	return out
}

func batchName(b uint64) string { return strconv.FormatUint(b, 10) }
