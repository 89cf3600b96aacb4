package auth

import (
	"testing"

	"github.com/openioc/ioc/geo"
)

func builtinScope(t *testing.T) (*Scope, *geo.Registry) {
	t.Helper()
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewScope(reg, "vn-2025")
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

// TestScopeIsHierarchyAndCode: a token's areas are units of the current
// hierarchy; a code that happens to match in another hierarchy is not
// covered, and older units are covered only through the crosswalk.
func TestScopeIsHierarchyAndCode(t *testing.T) {
	s, _ := builtinScope(t)
	for _, c := range []struct {
		areas           []string
		hierarchy, code string
		want            bool
		why             string
	}{
		{[]string{"28108"}, "vn-2025", "28108", true, "its own commune"},
		{[]string{"28108"}, "jp-2021", "28108", false, "Kobe's Tarumi-ku only shares the code"},
		{[]string{"28108"}, "jp-2021", "28", false, "nor Hyogo"},
		{[]string{"79"}, "jp-2021", "13", false, "a foreign hierarchy is never reached"},
		{[]string{"*"}, "jp-2021", "28108", true, "unless the token covers everything"},
		{[]string{"23710"}, "vn-2024", "23710", false, "old 23710 went into new 23869"},
		{[]string{"23869"}, "vn-2024", "23710", true, "and is covered by it"},
		{[]string{"23710"}, "vn-2024", "23716", true, "old 23716 went wholly into new 23710"},
		{[]string{"26740"}, "vn-2024", "26740", true, "old Ben Nghe went wholly into Sai Gon"},
		{[]string{"26740"}, "vn-2024", "26746", false, "old 26746 was split, not all of it into Sai Gon"},
		{[]string{"26740"}, "vn-2024", "00004", false, "old Truc Bach is in Hanoi"},
		{[]string{"00004"}, "vn-2024", "00004", true, "and went wholly into new 00004"},
		{[]string{"26740"}, "vn-2024", "760", false, "old district 1's desk counts under the province"},
		{[]string{"79"}, "vn-2024", "760", true, "which the province's token covers"},
		{[]string{"79"}, "vn-2024", "74", true, "as it covers old Binh Duong, now part of it"},
		{[]string{"79"}, "vn-2024", "79", true, "and old Ho Chi Minh City"},
		{[]string{"26740"}, "vn-2024", "79", false, "but a commune's token covers no old province"},
		{[]string{"01"}, "vn-2024", "74", false, "nor does another province's"},
		{[]string{"79"}, "vn-2025", "00004", false, "nor does a province cover another's commune"},
		{[]string{"79"}, "vn-2025", "26740", true, "it covers its own"},
		{[]string{"79"}, "nowhere", "79", false, "an unknown hierarchy"},
		{[]string{"79"}, "vn-2025", "99999", false, "an unknown code"},
	} {
		if got := s.Covers(c.areas, c.hierarchy, c.code); got != c.want {
			t.Errorf("areas %v, %s %s: got %v, want %v (%s)", c.areas, c.hierarchy, c.code, got, c.want, c.why)
		}
	}
	if !s.Reachable("vn-2024") || !s.Reachable("vn-2025") || s.Reachable("jp-2021") {
		t.Error("Reachable: want vn-2024 and vn-2025, not jp-2021")
	}
}

// TestScopeOlderUnitsNeedEverySuccessor checks the rule on every old unit
// against the crosswalk itself: an old commune is covered by a new
// commune's token exactly when all its successors are that commune.
func TestScopeOlderUnitsNeedEverySuccessor(t *testing.T) {
	s, reg := builtinScope(t)
	cw, _ := reg.Crosswalk("vn-2024", "vn-2025")
	old, _ := reg.Hierarchy("vn-2024")
	for _, area := range []string{"26740", "00004", "23869"} {
		for _, u := range old.Select("commune", "") {
			es := cw.Successors(u.Code)
			want := len(es) > 0
			for _, e := range es {
				want = want && e.New == area
			}
			if got := s.Covers([]string{area}, "vn-2024", u.Code); got != want {
				t.Errorf("token of %s, old commune %s (successors %v): got %v, want %v", area, u.Code, es, got, want)
			}
		}
	}
}

// TestPrincipalCovers: a principal's role decides what it may do, its
// areas where.
func TestPrincipalCovers(t *testing.T) {
	s, _ := builtinScope(t)
	vn, jp := HierarchyName("vn-2025"), HierarchyName("jp-2021")
	ingest := Principal{Role: Ingest, Areas: []string{"26740"}}.WithScope(s)
	if !ingest.Covers(vn, "26740") || ingest.Covers(vn, "00004") || ingest.MayRead(vn, "26740") {
		t.Error("an ingest token covers its commune and nothing else, and reads nothing")
	}
	if !(Principal{Role: Admin}).MayRead(jp, "28108") {
		t.Error("admin reads every hierarchy")
	}
	if (Principal{Role: Viewer, Areas: []string{"26740"}}).MayRead(vn, "26740") {
		t.Error("a restricted principal without a scope rule reads nothing")
	}
}
