package aggregate

import (
	"strings"

	"github.com/openioc/ioc/dossier"
)

// FlowColumns are the measure columns of the dossier_flow_* rollups, in the
// order FlowTargets scans them.
var FlowColumns = strings.Join(dossier.Columns, ", ")

// FlowSums sums every flow column, in FlowColumns' order.
var FlowSums = func() string {
	cols := strings.Split(FlowColumns, ", ")
	for i, c := range cols {
		cols[i] = "sum(" + c + ")"
	}
	return strings.Join(cols, ", ")
}()

// FlowTargets are scan targets for the FlowColumns of m.
func FlowTargets(m *dossier.Measures) []any {
	fields := m.Fields()
	out := make([]any, len(fields))
	for i, f := range fields {
		out[i] = f
	}
	return out
}

// FlowCounts turns the summed flow of a range into Counts. The stored
// changes of a dossier sum to the contributions its history derives, which
// are never negative for these measures; the guard only keeps a damaged
// table from wrapping around. The balances (Open, LateOpen) are not range
// figures and are left out: see Counts.OpenAtEnd.
func FlowCounts(m dossier.Measures) Counts {
	u := func(v int64) uint64 { return uint64(max(v, 0)) }
	return Counts{
		Received: u(m.Received), Online: u(m.ReceivedOnline), Digitized: u(m.Digitized), Reused: u(m.Reused),
		FeeBearing: u(m.FeeBearing), PaidOnline: u(m.PaidOnline), Resolved: u(m.Resolved), OnTime: u(m.OnTime),
		Timed: u(m.Timed), ResolutionSeconds: u(m.ResolutionSeconds), EResult: u(m.EResult), Approximate: u(m.Approximate),
	}
}
