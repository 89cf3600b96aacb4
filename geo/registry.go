package geo

import (
	"embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/paulmach/orb"
)

//go:embed data/*.json data/*.csv data/*.gz
var dataFS embed.FS

// Manifest describes one hierarchy's files in a data directory: the units
// in {name}-units.csv, boundaries (optional) in {name}-shapes.gz, and, when
// CrosswalkFrom is set, the edges from that hierarchy in
// {from}-{name}-crosswalk.csv.
type Manifest struct {
	Name          string   `json:"name"`
	Levels        []string `json:"levels"`
	ValidFrom     string   `json:"valid_from,omitempty"` // YYYY-MM-DD
	ValidTo       string   `json:"valid_to,omitempty"`
	CrosswalkFrom string   `json:"crosswalk_from,omitempty"`
}

// Files names the files of the manifest's hierarchy.
func (m Manifest) Files() (manifest, units, shapes, crosswalk string) {
	if m.CrosswalkFrom != "" {
		crosswalk = m.CrosswalkFrom + "-" + m.Name + "-crosswalk.csv"
	}
	return m.Name + ".json", m.Name + "-units.csv", m.Name + "-shapes.gz", crosswalk
}

// Registry holds the hierarchies a deployment knows, by name, and the
// crosswalks between them.
type Registry struct {
	byName     map[string]*Hierarchy
	crosswalks []*Crosswalk
	edges      map[*Crosswalk][]Edge // to rebuild a crosswalk when an end is replaced
}

// NewRegistry builds a registry from hierarchies; names must be unique.
func NewRegistry(hs ...*Hierarchy) (*Registry, error) {
	r := &Registry{byName: make(map[string]*Hierarchy, len(hs)), edges: map[*Crosswalk][]Edge{}}
	for _, h := range hs {
		if _, ok := r.byName[h.Name()]; ok {
			return nil, fmt.Errorf("duplicate hierarchy %q", h.Name())
		}
		r.byName[h.Name()] = h
	}
	return r, nil
}

var builtin struct {
	once sync.Once
	reg  *Registry
	err  error
}

// Builtin returns the registry of the hierarchies the project carries:
// vn-2024, vn-2025 (with boundaries) and jp-2021 (Tokyo and Hyogo, with
// boundaries), and the vn-2024 → vn-2025 crosswalk. It is built once and
// shared.
func Builtin() (*Registry, error) {
	builtin.once.Do(func() {
		sub, err := fs.Sub(dataFS, "data")
		if err != nil {
			builtin.err = err
			return
		}
		empty, _ := NewRegistry()
		builtin.reg, builtin.err = empty.Overlay(sub)
	})
	return builtin.reg, builtin.err
}

// Overlay returns a registry with the hierarchies described by the
// manifests (*.json) in fsys added, replacing any of the same name; the
// crosswalks of replaced hierarchies are checked again against the new
// units.
func (r *Registry) Overlay(fsys fs.FS) (*Registry, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, err
	}
	out := &Registry{byName: maps(r.byName), edges: map[*Crosswalk][]Edge{}}
	var manifests []Manifest
	for _, name := range names {
		m, err := readManifest(fsys, name)
		if err != nil {
			return nil, err
		}
		h, err := LoadHierarchy(fsys, m)
		if err != nil {
			return nil, err
		}
		out.byName[m.Name] = h
		manifests = append(manifests, m)
	}
	type key struct{ from, to string }
	pending := map[key]*Crosswalk{}
	for _, c := range r.crosswalks {
		pending[key{c.from.Name(), c.to.Name()}] = c
	}
	rebuild := func(from, to string, eff time.Time, edges []Edge) error {
		f, ok1 := out.byName[from]
		t, ok2 := out.byName[to]
		if !ok1 || !ok2 {
			return fmt.Errorf("crosswalk %s→%s: unknown hierarchy", from, to)
		}
		c, err := NewCrosswalk(f, t, eff, edges)
		if err != nil {
			return err
		}
		out.crosswalks = append(out.crosswalks, c)
		out.edges[c] = edges
		return nil
	}
	for _, m := range manifests {
		if m.CrosswalkFrom == "" {
			continue
		}
		_, _, _, file := m.Files()
		edges, err := readCSVFile(fsys, file, ReadEdgesCSV)
		if err != nil {
			return nil, err
		}
		from, _ := parseDay(m.ValidFrom)
		if err := rebuild(m.CrosswalkFrom, m.Name, from, edges); err != nil {
			return nil, err
		}
		delete(pending, key{m.CrosswalkFrom, m.Name})
	}
	for k, c := range pending {
		if err := rebuild(k.from, k.to, c.effective, r.edges[c]); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out.crosswalks, func(a, b *Crosswalk) int {
		return strings.Compare(a.from.Name()+" "+a.to.Name(), b.from.Name()+" "+b.to.Name())
	})
	return out, nil
}

func maps(m map[string]*Hierarchy) map[string]*Hierarchy {
	out := make(map[string]*Hierarchy, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func readManifest(fsys fs.FS, name string) (Manifest, error) {
	var m Manifest
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("read %s: %w", name, err)
	}
	if want := strings.TrimSuffix(path.Base(name), ".json"); m.Name != want {
		return m, fmt.Errorf("read %s: manifest names hierarchy %q, want %q", name, m.Name, want)
	}
	return m, nil
}

func parseDay(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.DateOnly, s)
}

// LoadHierarchy reads the hierarchy m describes from fsys.
func LoadHierarchy(fsys fs.FS, m Manifest) (*Hierarchy, error) {
	from, err := parseDay(m.ValidFrom)
	if err != nil {
		return nil, fmt.Errorf("hierarchy %s: valid_from: %w", m.Name, err)
	}
	to, err := parseDay(m.ValidTo)
	if err != nil {
		return nil, fmt.Errorf("hierarchy %s: valid_to: %w", m.Name, err)
	}
	_, unitsFile, shapesFile, _ := m.Files()
	units, err := readCSVFile(fsys, unitsFile, ReadUnitsCSV)
	if err != nil {
		return nil, err
	}
	h, err := NewHierarchy(m.Name, m.Levels, from, to, units)
	if err != nil {
		return nil, err
	}
	f, err := fsys.Open(shapesFile)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	shapes, err := ReadShapes(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", shapesFile, err)
	}
	return h.WithShapes(shapes)
}

func readCSVFile[T any](fsys fs.FS, name string, read func(io.Reader) ([]T, error)) ([]T, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out, err := read(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
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

// Crosswalk returns the crosswalk from one hierarchy to another.
func (r *Registry) Crosswalk(from, to string) (*Crosswalk, bool) {
	for _, c := range r.crosswalks {
		if c.from.Name() == from && c.to.Name() == to {
			return c, true
		}
	}
	return nil, false
}

// Crosswalks lists every crosswalk, ordered by the hierarchies' names.
func (r *Registry) Crosswalks() []*Crosswalk { return slices.Clone(r.crosswalks) }

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

// ErrNoCrosswalk is returned when two hierarchies have no crosswalk.
var ErrNoCrosswalk = errors.New("no crosswalk")

// Attribute places a record filed under unit code of hierarchy from in
// hierarchy to, through their crosswalk (see Crosswalk.Attribute).
func (r *Registry) Attribute(from, to, code string, at *orb.Point) (Attribution, error) {
	c, ok := r.Crosswalk(from, to)
	if !ok {
		return Attribution{}, fmt.Errorf("%w from %s to %s", ErrNoCrosswalk, from, to)
	}
	return c.Attribute(code, at)
}
