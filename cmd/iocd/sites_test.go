package main

import (
	"slices"
	"testing"

	"github.com/paulmach/orb"

	"github.com/openioc/ioc/geo"
)

func TestSimulatorSitesStandInTheirUnits(t *testing.T) {
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, ok := reg.Hierarchy("vn-2025")
	if !ok {
		t.Fatal("vn-2025 is not built in")
	}
	const perUnit = 3
	sites := simulatorSites(h, "79", perUnit, 42)
	communes := h.ChildCodes("79")
	if len(communes) != 168 {
		t.Fatalf("province 79 has %d communes, want 168", len(communes))
	}
	per := map[string]int{}
	for _, s := range sites {
		chain := h.Locate(orb.Point{s.Lon, s.Lat})
		if len(chain) == 0 || chain[len(chain)-1].Code != s.Area {
			t.Errorf("site %+v locates to %v, want its own unit %s", s, chain, s.Area)
		}
		if !slices.Contains(communes, s.Area) {
			t.Errorf("site %+v in %s, want a commune of 79", s, s.Area)
		}
		per[s.Area]++
	}
	full := 0
	for _, c := range communes {
		switch n := per[c]; {
		case n == perUnit:
			full++
		case n > perUnit:
			t.Errorf("commune %s has %d sites, want at most %d", c, n, perUnit)
		}
	}
	if full < 160 {
		t.Errorf("got %d of 168 communes with %d sites each, want nearly all", full, perUnit)
	}
	if again := simulatorSites(h, "79", perUnit, 42); !slices.Equal(again, sites) {
		t.Errorf("the same seed gave other sites, want the same so that restarts reuse devices")
	}
	if other := simulatorSites(h, "79", perUnit, 43); slices.Equal(other, sites) {
		t.Errorf("another seed gave the same sites")
	}
}
