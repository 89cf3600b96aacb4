package geo

import (
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"
)

//go:embed data/*.csv
var dataFS embed.FS

// Registry holds the hierarchies a deployment knows, by name.
type Registry struct {
	byName map[string]*Hierarchy
}

// NewRegistry builds a registry from hierarchies; names must be unique.
func NewRegistry(hs ...*Hierarchy) (*Registry, error) {
	r := &Registry{byName: make(map[string]*Hierarchy, len(hs))}
	for _, h := range hs {
		if _, ok := r.byName[h.Name()]; ok {
			return nil, fmt.Errorf("duplicate hierarchy %q", h.Name())
		}
		r.byName[h.Name()] = h
	}
	return r, nil
}

// Builtin returns a registry of the hierarchies the project carries.
func Builtin() (*Registry, error) {
	vn2025, err := loadCSV("vn-2025", []string{"province", "commune"},
		time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC), time.Time{}, "data/vn-2025-units.csv")
	if err != nil {
		return nil, err
	}
	return NewRegistry(vn2025)
}

// Hierarchy returns the hierarchy called name.
func (r *Registry) Hierarchy(name string) (*Hierarchy, bool) {
	h, ok := r.byName[name]
	return h, ok
}

// HasHierarchy reports whether the registry knows the hierarchy called name.
func (r *Registry) HasHierarchy(name string) bool {
	_, ok := r.byName[name]
	return ok
}

// HasUnit reports whether hierarchy name has a unit with code.
func (r *Registry) HasUnit(name, code string) bool {
	h, ok := r.byName[name]
	if !ok {
		return false
	}
	_, ok = h.units[code]
	return ok
}

// Names lists the hierarchies, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.byName))
	for n := range r.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ReadUnitsCSV reads units from CSV with a header naming at least code,
// level and parent; name, name_en, full_name and full_name_en are optional.
func ReadUnitsCSV(r io.Reader) ([]Unit, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	col := func(name string) int { return slices.Index(header, name) }
	idx := [...]int{col("code"), col("level"), col("parent"), col("name"), col("name_en"), col("full_name"), col("full_name_en")}
	for i, name := range []string{"code", "level", "parent"} {
		if idx[i] < 0 {
			return nil, fmt.Errorf("header has no %q column", name)
		}
	}
	var units []Unit
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return units, nil
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		get := func(i int) string {
			if idx[i] < 0 {
				return ""
			}
			return rec[idx[i]]
		}
		units = append(units, Unit{Code: get(0), Level: get(1), Parent: get(2), Name: get(3), NameEn: get(4), FullName: get(5), FullNameEn: get(6)})
	}
}

func loadCSV(name string, levels []string, from, to time.Time, path string) (*Hierarchy, error) {
	f, err := dataFS.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	units, err := ReadUnitsCSV(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return NewHierarchy(name, levels, from, to, units)
}
