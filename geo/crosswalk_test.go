package geo

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

func TestBuiltinHierarchies(t *testing.T) {
	r, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	f := func(name, level string, want int, withShapes bool) {
		t.Helper()
		h, ok := r.Hierarchy(name)
		if !ok {
			t.Fatalf("%s missing", name)
		}
		if got := len(h.Select(level, "")); got != want {
			t.Errorf("%s %s: got %d units, want %d", name, level, got, want)
		}
		if got := h.HasGeometry(level); got != withShapes {
			t.Errorf("%s %s: boundaries got %v, want %v", name, level, got, withShapes)
		}
	}
	f("vn-2024", "province", 63, false)
	f("vn-2024", "district", 696, false)
	f("vn-2024", "commune", 10047, false)
	f("vn-2025", "province", 34, true)
	f("vn-2025", "commune", 3321, true)
	f("jp-2021", "prefecture", 2, false)
	f("jp-2021", "municipality", 111, true)

	jp, _ := r.Hierarchy("jp-2021")
	if got := len(jp.Select("municipality", "28")); got != 49 {
		t.Errorf("Hyogo municipalities: got %d, want 49", got)
	}
	if u, _ := jp.Unit("28110"); u.FullName != "神戸市中央区" || u.Parent != "28" {
		t.Errorf("Kobe Chūō-ku: got %+v", u)
	}
	vn24, _ := r.Hierarchy("vn-2024")
	if got := vn24.ValidTo(); !got.Equal(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("vn-2024 valid to: got %v", got)
	}
	// Codes were reused: the same code names different units.
	old, _ := vn24.Unit("00004")
	vn25, _ := r.Hierarchy("vn-2025")
	now, _ := vn25.Unit("00004")
	if old.Name != "Trúc Bạch" || now.Name != "Ba Đình" {
		t.Errorf("00004: got %q in vn-2024 and %q in vn-2025, want Trúc Bạch and Ba Đình", old.Name, now.Name)
	}
}

func TestCrosswalkAttribute(t *testing.T) {
	r, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	c, ok := r.Crosswalk("vn-2024", "vn-2025")
	if !ok {
		t.Fatal("no vn-2024 → vn-2025 crosswalk")
	}
	f := func(code string, at *orb.Point, want Attribution) {
		t.Helper()
		got, err := c.Attribute(code, at)
		if err != nil || got != want {
			t.Errorf("%s at %v: got %+v (%v), want %+v", code, at, got, err, want)
		}
	}
	f("26734", nil, Attribution{"26737", false})                           // whole
	f("00016", nil, Attribution{"00008", true})                            // split, designated by name
	f("00016", &orb.Point{105.8346, 21.0367}, Attribution{"00004", false}) // split, settled by position
	f("760", nil, Attribution{"79", false})                                // a district: its province
	f("74", nil, Attribution{"79", false})                                 // Bình Dương joined Ho Chi Minh City
	if _, err := c.Attribute("99999", nil); err == nil {
		t.Error("unknown code: got no error")
	}
	// Every old commune with edges lands on a unit of vn-2025.
	for _, u := range c.From().Select("commune", "") {
		a, err := c.Attribute(u.Code, nil)
		if err != nil {
			t.Fatalf("%s: %v", u.Code, err)
		}
		if _, ok := c.To().Unit(a.Code); !ok {
			t.Fatalf("%s: placed on %s, not a vn-2025 unit", u.Code, a.Code)
		}
	}
	if got := c.Predecessors("26737"); len(got) != 2 || got[0].Old != "26734" || got[1].Old != "26737" {
		t.Errorf("predecessors of 26737: got %+v", got)
	}
}

func TestCrosswalkRefusesBadEdges(t *testing.T) {
	from, _ := NewHierarchy("a", []string{"unit"}, time.Time{}, time.Time{}, []Unit{{Code: "1", Level: "unit"}, {Code: "2", Level: "unit"}})
	to, _ := NewHierarchy("b", []string{"unit"}, time.Time{}, time.Time{}, []Unit{{Code: "X", Level: "unit"}, {Code: "Y", Level: "unit"}})
	f := func(edges []Edge, want string) {
		t.Helper()
		_, err := NewCrosswalk(from, to, time.Time{}, edges)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want an error containing %q", edges, err, want)
		}
	}
	f([]Edge{{Old: "1", New: "Z", Kind: "full"}}, "names Z, which is not a unit of b")
	f([]Edge{{Old: "1", New: "X", Kind: "most"}}, `kind "most"`)
	f([]Edge{{Old: "1", New: "X", Kind: "full"}, {Old: "1", New: "Y", Kind: "partial"}}, "has a full edge and 1 others")
	f([]Edge{{Old: "1", New: "X", Kind: "partial"}, {Old: "1", New: "Y", Kind: "partial"}}, "has 0 designated successors")
}

func TestShapesRoundTrip(t *testing.T) {
	in := []Shape{
		{Code: "A", Geom: orb.MultiPolygon{{{{106.1, 10.1}, {106.2, 10.1}, {106.2, 10.2}, {106.1, 10.1}}}}},
		{Code: "B", Geom: orb.MultiPolygon{
			{{{-1, -1}, {1, -1}, {1, 1}, {-1, -1}}, {{-0.5, -0.5}, {0.5, -0.5}, {0.5, 0.5}, {-0.5, -0.5}}},
			{{{179.999999, 89.5}, {-179.999999, 89.5}, {0, -89.999999}, {179.999999, 89.5}}},
		}},
	}
	var b bytes.Buffer
	if err := WriteShapes(&b, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadShapes(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d shapes, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].Code != in[i].Code || !orb.Equal(out[i].Geom, in[i].Geom) {
			t.Errorf("shape %d: got %+v, want %+v", i, out[i], in[i])
		}
	}
	if _, err := ReadShapes(strings.NewReader("not gzip")); err == nil {
		t.Error("garbage: got no error")
	}
}

func TestOverlayReplacesAndRechecksCrosswalks(t *testing.T) {
	base, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A vn-2025 that lost commune 00008 breaks the crosswalk that points at it.
	vn25, _ := base.Hierarchy("vn-2025")
	var units []Unit
	for _, u := range vn25.Select("", "") {
		if u.Code != "00008" {
			units = append(units, u)
		}
	}
	h, err := NewHierarchy("vn-2025", vn25.Levels(), vn25.ValidFrom(), time.Time{}, units)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteDir(dir, Manifest{Name: "vn-2025", Levels: vn25.Levels(), ValidFrom: "2025-07-01"}, h, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := base.Overlay(os.DirFS(dir)); err == nil || !strings.Contains(err.Error(), "names 00008, which is not a unit of vn-2025") {
		t.Errorf("got %v, want the crosswalk's edge into 00008 reported", err)
	}
}
