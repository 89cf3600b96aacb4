package aggregate

import (
	"github.com/openioc/ioc/dossier"
)

// FlowCounts turns the summed dossier measures of a range into Counts: every
// measure into Flow, and the ones the catalog names into their fields. The
// stored changes of a dossier sum to the contributions its history derives,
// which are never negative for these measures; the guard only keeps a
// damaged table from wrapping around. The balances (Open, LateOpen) are not
// range figures and are left out: see Counts.OpenAtEnd.
func FlowCounts(m dossier.Measures) Counts {
	var c Counts
	for i, v := range m {
		if !dossier.Table[i].Balance {
			c.Flow[i] = max(v, 0)
		}
	}
	u := func(i dossier.Index) uint64 { return uint64(c.Flow[i]) }
	c.Received, c.Online, c.Digitized, c.Reused = u(dossier.Received), u(dossier.ReceivedOnline), u(dossier.Digitized), u(dossier.Reused)
	c.FeeBearing, c.PaidOnline, c.Resolved, c.OnTime = u(dossier.FeeBearing), u(dossier.PaidOnline), u(dossier.Resolved), u(dossier.OnTime)
	c.Timed, c.ResolutionSeconds, c.EResult, c.Approximate = u(dossier.Timed), u(dossier.ResolutionSeconds), u(dossier.EResult), u(dossier.Approximate)
	return c
}
