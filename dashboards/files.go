package dashboards

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
)

//go:embed defaults/*.json
var defaults embed.FS

// Defaults are the documents shipped for province 79 (defaults/*.json): an
// operations overview, a dossiers and scoreboard dashboard, an environment
// and traffic dashboard, a unit's own dashboard ($area, the drill-down
// target), playlists over them, a wall of 3×2 screens and its six screens.
func Defaults() fs.FS {
	sub, err := fs.Sub(defaults, "defaults")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Source is one document read from a file or an export, not yet
// validated: File and Path say where it is, for its errors.
type Source struct {
	Kind Kind
	File string // the file it was read from, if any
	Path string // its place in the file: "" or e.g. dashboards[2]
	Body json.RawMessage
}

// Export is a set of documents of every kind: the file GET
// /api/v1/dashboards/export writes and POST …/import and IOC_DASHBOARDS_DIR
// read.
type Export struct {
	Dashboards []json.RawMessage `json:"dashboards"`
	Playlists  []json.RawMessage `json:"playlists"`
	Walls      []json.RawMessage `json:"walls"`
	Screens    []json.RawMessage `json:"screens"`
}

// NewExport builds the export of docs, each kind in id order.
func NewExport(docs []Document) Export {
	sorted := slices.Clone(docs)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	e := Export{Dashboards: []json.RawMessage{}, Playlists: []json.RawMessage{}, Walls: []json.RawMessage{}, Screens: []json.RawMessage{}}
	for _, d := range sorted {
		*e.list(d.Kind) = append(*e.list(d.Kind), d.Body)
	}
	return e
}

func (e *Export) list(k Kind) *[]json.RawMessage {
	switch k {
	case KindDashboard:
		return &e.Dashboards
	case KindPlaylist:
		return &e.Playlists
	case KindWall:
		return &e.Walls
	}
	return &e.Screens
}

// ParseExport reads an export file into its documents. file names it in
// errors.
func ParseExport(file string, body []byte) ([]Source, error) {
	c := &checker{}
	v, err := decode(body)
	if err != nil {
		return nil, &InvalidError{Fields: []FieldError{{File: file, Error: "is not JSON: " + strings.TrimPrefix(err.Error(), "json: ")}}}
	}
	o, ok := c.object("", v, "an export")
	if !ok {
		return nil, inFile(file, c.errs)
	}
	var out []Source
	for _, k := range Kinds {
		items, p, ok := o.array(k.Plural(), false, 0, 10000, "the "+k.Plural())
		if !ok {
			continue
		}
		for i, it := range items {
			b, err := json.Marshal(it)
			if err != nil {
				c.fail(index(p, i), "cannot be encoded again: %v", err)
				continue
			}
			out = append(out, Source{Kind: k, File: file, Path: index(p, i), Body: b})
		}
	}
	o.finish(true)
	if len(c.errs) > 0 {
		return nil, inFile(file, c.errs)
	}
	return out, nil
}

func inFile(file string, errs []FieldError) error {
	for i := range errs {
		errs[i].File = file
	}
	return &InvalidError{Fields: errs}
}

// kindKeys tell a single document's kind by a field only that kind has.
var kindKeys = []struct {
	key  string
	kind Kind
}{{"widgets", KindDashboard}, {"grid", KindDashboard}, {"items", KindPlaylist}, {"columns", KindWall}, {"areas", KindScreen}}

// ParseFile reads a file of IOC_DASHBOARDS_DIR: an export, or a single
// document, whose kind is told by its fields (a dashboard has widgets, a
// playlist items, a wall columns, a screen areas).
func ParseFile(file string, body []byte) ([]Source, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, &InvalidError{Fields: []FieldError{{File: file, Error: "is not a JSON object: " + strings.TrimPrefix(err.Error(), "json: ")}}}
	}
	if _, isDoc := probe["id"]; !isDoc {
		return ParseExport(file, body)
	}
	for _, kk := range kindKeys {
		if _, ok := probe[kk.key]; ok {
			return []Source{{Kind: kk.kind, File: file, Body: bytes.Clone(body)}}, nil
		}
	}
	return nil, &InvalidError{Fields: []FieldError{{File: file, Error: `cannot tell which kind of document this is: a dashboard has widgets, a playlist items, a wall columns and a screen areas; or write an export, {"dashboards":[…],…}`}}}
}

// ReadDir reads every *.json file at the top of fsys, in name order.
func ReadDir(fsys fs.FS) ([]Source, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, fmt.Errorf("list documents: %w", err)
	}
	var out []Source
	var bad []FieldError
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		srcs, err := ParseFile(path.Base(name), b)
		if inv, ok := err.(*InvalidError); ok {
			bad = append(bad, inv.Fields...)
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, srcs...)
	}
	if len(bad) > 0 {
		return nil, &InvalidError{Fields: bad}
	}
	return out, nil
}

// ValidateSet checks documents together, as an import or a folder is: a
// reference to a document of the set counts as existing, an id may come
// once per kind, and every error of every document is reported.
func ValidateSet(srcs []Source, checks Checks) ([]Document, error) {
	s := &set{checks: checks}
	for _, src := range srcs {
		mark := len(s.c.errs)
		v, err := s.decode(src.Path, src.Body)
		for i := mark; i < len(s.c.errs); i++ {
			s.c.errs[i].File = src.File
		}
		if err != nil {
			continue
		}
		s.docs = append(s.docs, item{kind: src.Kind, file: src.File, path: src.Path, value: v})
	}
	return s.validate()
}
