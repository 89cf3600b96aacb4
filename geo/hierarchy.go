package geo

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Unit is one administrative unit of a hierarchy.
type Unit struct {
	Code       string `json:"code"`
	Level      string `json:"level"`
	Parent     string `json:"parent,omitempty"`
	Name       string `json:"name"`
	NameEn     string `json:"name_en,omitempty"`
	FullName   string `json:"full_name,omitempty"`
	FullNameEn string `json:"full_name_en,omitempty"`
}

// Hierarchy is a named, dated set of units. Codes are unique within a
// hierarchy only: the same code may name another unit in another hierarchy.
type Hierarchy struct {
	name      string
	levels    []string
	validFrom time.Time // zero: open-ended
	validTo   time.Time // zero: still in force

	units    map[string]*Unit
	children map[string][]string // parent code → child codes, sorted; "" holds the roots
	geom     *boundaries         // nil: the hierarchy carries no boundaries
}

// NewHierarchy checks units and builds a hierarchy. Levels are ordered from
// the top (e.g. province) down; every unit's level must be one of them, and
// every parent must exist one level up.
func NewHierarchy(name string, levels []string, validFrom, validTo time.Time, units []Unit) (*Hierarchy, error) {
	if name == "" {
		return nil, fmt.Errorf("hierarchy needs a name")
	}
	if len(levels) == 0 {
		return nil, fmt.Errorf("hierarchy %s: needs at least one level", name)
	}
	depth := make(map[string]int, len(levels))
	for i, l := range levels {
		depth[l] = i
	}
	h := &Hierarchy{
		name: name, levels: slices.Clone(levels), validFrom: validFrom, validTo: validTo,
		units:    make(map[string]*Unit, len(units)),
		children: make(map[string][]string),
	}
	for i := range units {
		u := units[i]
		if u.Code == "" {
			return nil, fmt.Errorf("hierarchy %s: unit %d has no code", name, i)
		}
		if _, ok := h.units[u.Code]; ok {
			return nil, fmt.Errorf("hierarchy %s: duplicate code %q", name, u.Code)
		}
		if _, ok := depth[u.Level]; !ok {
			return nil, fmt.Errorf("hierarchy %s: unit %s has level %q, want one of %v", name, u.Code, u.Level, levels)
		}
		h.units[u.Code] = &u
	}
	for code, u := range h.units {
		d := depth[u.Level]
		switch {
		case d == 0 && u.Parent != "":
			return nil, fmt.Errorf("hierarchy %s: unit %s is a %s and cannot have a parent", name, code, u.Level)
		case d > 0:
			p, ok := h.units[u.Parent]
			if !ok {
				return nil, fmt.Errorf("hierarchy %s: unit %s names parent %q, which does not exist", name, code, u.Parent)
			}
			if depth[p.Level] != d-1 {
				return nil, fmt.Errorf("hierarchy %s: unit %s (%s) has parent %s at level %s, want %s", name, code, u.Level, p.Code, p.Level, levels[d-1])
			}
		}
		h.children[u.Parent] = append(h.children[u.Parent], code)
	}
	for _, c := range h.children {
		slices.Sort(c)
	}
	return h, nil
}

// Name is the hierarchy's identifier, e.g. "vn-2025".
func (h *Hierarchy) Name() string { return h.name }

// Levels lists the level names from the top down.
func (h *Hierarchy) Levels() []string { return slices.Clone(h.levels) }

// HasLevel reports whether level is one of the hierarchy's levels.
func (h *Hierarchy) HasLevel(level string) bool { return slices.Contains(h.levels, level) }

// ValidFrom and ValidTo bound the dates the hierarchy was in force; a zero
// time means unbounded on that side.
func (h *Hierarchy) ValidFrom() time.Time { return h.validFrom }
func (h *Hierarchy) ValidTo() time.Time   { return h.validTo }

// Len is the number of units.
func (h *Hierarchy) Len() int { return len(h.units) }

// Unit returns the unit with code, if the hierarchy has it.
func (h *Hierarchy) Unit(code string) (Unit, bool) {
	u, ok := h.units[code]
	if !ok {
		return Unit{}, false
	}
	return *u, true
}

// Roots returns the top-level units, ordered by code.
func (h *Hierarchy) Roots() []Unit { return h.unitsOf(h.children[""]) }

// Children returns the direct children of code, ordered by code.
func (h *Hierarchy) Children(code string) []Unit {
	if code == "" {
		return nil
	}
	return h.unitsOf(h.children[code])
}

// ChildCodes returns the codes of the direct children of code, ordered. The
// slice is shared: callers must not modify it.
func (h *Hierarchy) ChildCodes(code string) []string {
	if code == "" {
		return nil
	}
	return h.children[code]
}

// Ancestors returns the chain of parents of code, nearest first.
func (h *Hierarchy) Ancestors(code string) []Unit {
	var out []Unit
	u, ok := h.units[code]
	for ok && u.Parent != "" {
		u, ok = h.units[u.Parent]
		if ok {
			out = append(out, *u)
		}
	}
	return out
}

// Root returns the code of the top unit above code (a province, in
// Vietnam's hierarchies), code itself for a top unit, and code unchanged
// when it is unknown.
func (h *Hierarchy) Root(code string) string {
	if up := h.Ancestors(code); len(up) > 0 {
		return up[len(up)-1].Code
	}
	return code
}

// Subtree returns code and the codes of all its descendants, parents before
// children. It returns nil for an unknown code.
func (h *Hierarchy) Subtree(code string) []string {
	if _, ok := h.units[code]; !ok {
		return nil
	}
	out := []string{code}
	for i := 0; i < len(out); i++ {
		out = append(out, h.children[out[i]]...)
	}
	return out
}

// Contains reports whether unit code lies in the subtree rooted at root
// (a unit contains itself).
func (h *Hierarchy) Contains(root, code string) bool {
	for {
		if code == root {
			return true
		}
		u, ok := h.units[code]
		if !ok || u.Parent == "" {
			return false
		}
		code = u.Parent
	}
}

// Select returns the units at level (all levels when empty) under parent
// (anywhere when empty), ordered by code.
func (h *Hierarchy) Select(level, parent string) []Unit {
	var codes []string
	if parent != "" {
		codes = h.Subtree(parent)
		if len(codes) > 0 {
			codes = codes[1:]
		}
	} else {
		codes = make([]string, 0, len(h.units))
		for c := range h.units {
			codes = append(codes, c)
		}
	}
	out := make([]Unit, 0, len(codes))
	for _, c := range codes {
		if u := h.units[c]; level == "" || u.Level == level {
			out = append(out, *u)
		}
	}
	slices.SortFunc(out, func(a, b Unit) int { return strings.Compare(a.Code, b.Code) })
	return out
}

func (h *Hierarchy) unitsOf(codes []string) []Unit {
	out := make([]Unit, 0, len(codes))
	for _, c := range codes {
		out = append(out, *h.units[c])
	}
	return out
}
