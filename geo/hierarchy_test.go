package geo

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBuiltinVN2025(t *testing.T) {
	r, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, ok := r.Hierarchy("vn-2025")
	if !ok {
		t.Fatal("vn-2025 missing")
	}
	if got, want := len(h.Select("province", "")), 34; got != want {
		t.Errorf("provinces: got %d, want %d", got, want)
	}
	if got, want := len(h.Select("commune", "")), 3321; got != want {
		t.Errorf("communes: got %d, want %d", got, want)
	}
	if got, want := len(h.Children("79")), 168; got != want {
		t.Errorf("communes of Ho Chi Minh City: got %d, want %d", got, want)
	}
	u, ok := h.Unit("26740")
	if !ok || u.Name != "Sài Gòn" || u.Parent != "79" || u.Level != "commune" {
		t.Errorf("unit 26740: got %+v", u)
	}
	if got := h.Ancestors("26740"); len(got) != 1 || got[0].Code != "79" {
		t.Errorf("ancestors of 26740: got %+v, want [79]", got)
	}
	for code, want := range map[string]string{"26740": "79", "79": "79", "unknown": "unknown"} {
		if got := h.Root(code); got != want {
			t.Errorf("root of %s: got %s, want %s", code, got, want)
		}
	}
	if !h.Contains("79", "26740") || h.Contains("01", "26740") || !h.Contains("26740", "26740") {
		t.Error("Contains disagrees with the parent links")
	}
	if got := h.Subtree("79"); len(got) != 169 || got[0] != "79" {
		t.Errorf("subtree of 79: got %d codes starting %v", len(got), got[:1])
	}
	f := func(hierarchy, code string, want bool) {
		t.Helper()
		if got := r.HasUnit(hierarchy, code); got != want {
			t.Errorf("HasUnit(%q, %q): got %v, want %v", hierarchy, code, got, want)
		}
	}
	f("vn-2025", "26740", true)
	f("vn-2025", "79", true)
	f("vn-2025", "26734", false) // a 2024 commune code, gone in 2025
	f("vn-2024", "26734", true)
	f("vn-1999", "26740", false)
	if !r.HasHierarchy("vn-2025") || r.HasHierarchy("vn-1999") {
		t.Error("HasHierarchy disagrees with the registry")
	}
	if got := h.Subtree("99999"); got != nil {
		t.Errorf("subtree of unknown code: got %v, want nil", got)
	}
}

func TestNewHierarchyRejects(t *testing.T) {
	levels := []string{"province", "commune"}
	f := func(units []Unit, want string) {
		t.Helper()
		_, err := NewHierarchy("x", levels, time.Time{}, time.Time{}, units)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got error %v, want one containing %q", err, want)
		}
	}
	p := Unit{Code: "01", Level: "province"}
	f([]Unit{p, p}, `duplicate code "01"`)
	f([]Unit{p, {Code: "00004", Level: "commune", Parent: "02"}}, `names parent "02", which does not exist`)
	f([]Unit{p, {Code: "00004", Level: "ward", Parent: "01"}}, `level "ward"`)
	f([]Unit{p, {Code: "00004", Level: "commune", Parent: "01"}, {Code: "00005", Level: "commune", Parent: "00004"}}, "want province")
	f([]Unit{{Code: "01", Level: "province", Parent: "00"}}, "cannot have a parent")
	f([]Unit{{Level: "province"}}, "has no code")
}

func TestSelect(t *testing.T) {
	h, err := NewHierarchy("x", []string{"province", "commune"}, time.Time{}, time.Time{}, []Unit{
		{Code: "02", Level: "province"}, {Code: "01", Level: "province"},
		{Code: "00009", Level: "commune", Parent: "01"}, {Code: "00004", Level: "commune", Parent: "01"},
		{Code: "00100", Level: "commune", Parent: "02"},
	})
	if err != nil {
		t.Fatal(err)
	}
	codes := func(us []Unit) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.Code)
		}
		return out
	}
	f := func(level, parent string, want []string) {
		t.Helper()
		if got := codes(h.Select(level, parent)); !slices.Equal(got, want) {
			t.Errorf("Select(%q, %q): got %v, want %v", level, parent, got, want)
		}
	}
	f("", "", []string{"00004", "00009", "00100", "01", "02"})
	f("province", "", []string{"01", "02"})
	f("commune", "01", []string{"00004", "00009"})
	f("", "01", []string{"00004", "00009"})
	f("province", "01", nil)
	f("", "nope", nil)
}

func ExampleHierarchy_Ancestors() {
	r, _ := Builtin()
	h, _ := r.Hierarchy("vn-2025")
	for _, u := range h.Ancestors("26740") {
		fmt.Println(u.Code, u.Name, u.Level)
	}
	// Output: 79 Hồ Chí Minh province
}
