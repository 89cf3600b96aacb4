package main

import (
	"math"
	"math/rand/v2"

	"github.com/paulmach/orb"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/simulator"
)

// siteTries bounds the rejection sampling per site: a unit filling a tenth
// of its bounding box yields a site in 10 tries on average, and a sliver
// that does not fit in 200 gets fewer sites rather than a stalled start.
const siteTries = 200

// simulatorSites returns n positions spread over the units below province, each inside its unit.
//
// It draws perUnit points inside each unit below province (or inside the
// province itself if it has none), by rejection sampling in the unit's
// bounding box, keeping a point only where the hierarchy locates it in that
// very unit, which is how the server will place a device standing there.
// Units without a boundary are skipped, and a unit too thin to hit within
// a bounded number of tries gets fewer sites. The same seed gives the same
// sites, so that restarts of the simulator reuse its devices.
func simulatorSites(h *geo.Hierarchy, province string, perUnit int, seed uint64) []simulator.Site {
	units := h.Children(province)
	if len(units) == 0 {
		if u, ok := h.Unit(province); ok {
			units = []geo.Unit{u}
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))
	var out []simulator.Site
	for _, u := range units {
		b, ok := h.Bound(u.Code)
		if _, hasGeom := h.Geometry(u.Code); !ok || !hasGeom {
			continue
		}
		for got, tries := 0, 0; got < perUnit && tries < siteTries*perUnit; tries++ {
			// Six decimals (about 0.1 m) keep the reports readable; the
			// rounded point is the one checked.
			p := orb.Point{
				round6(b.Min[0] + rng.Float64()*(b.Max[0]-b.Min[0])),
				round6(b.Min[1] + rng.Float64()*(b.Max[1]-b.Min[1])),
			}
			chain := h.Locate(p)
			if len(chain) == 0 || chain[len(chain)-1].Code != u.Code {
				continue
			}
			out = append(out, simulator.Site{Area: u.Code, Lat: p[1], Lon: p[0]})
			got++
		}
	}
	return out
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
