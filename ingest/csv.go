package ingest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/openioc/ioc/ingest/wire"
)

// CSVColumns reads the records of a CSV file whose header row names the
// fields of a kind's wire format (event_id, occurred_at, …), so that a CSV
// record becomes the same wire record a JSON object does and goes through
// the same validation. A cell is read as its field's JSON type: text as
// is; true/false (or 1/0) for a flag; a number; attrs as a JSON object
// written in the cell. An empty cell is a field left out. A dossier event
// has no nested fields, so its CSV is flat.
//
// A CSVColumns is read-only once made: safe for concurrent use.
type CSVColumns struct {
	kind    string
	columns int      // cells a record must have: those of the header
	Ignored []string // header names that are no field of the kind: their cells are not read
	decode  any      // *csvFields[W] of the kind's wire type
}

// csvFields sets the fields of a W from the cells of a record.
type csvFields[W any] struct {
	cols []*csvField // by column; nil for an ignored one
}

// csvField is one field of a wire type, as a CSV column fills it.
type csvField struct {
	name  string // the JSON name, as problems name it
	index int    // of the struct field
	kind  csvKind
}

type csvKind int

const (
	csvText csvKind = iota
	csvFlag
	csvNumber // *float64
	csvObject // map[string]any
)

// NewCSVColumns maps a header row onto the wire fields of kind (one of
// ImportKinds). Names match as encoding/json matches them, ignoring case;
// surrounding spaces and a leading byte-order mark are dropped. A header
// naming a field twice, or no field at all, is refused.
func NewCSVColumns(kind string, header []string) (*CSVColumns, error) {
	switch kind {
	case KindDossiers:
		return newCSVColumns[DossierEvent](kind, header)
	case KindCameraEvents:
		return newCSVColumns[CameraEventWire](kind, header)
	case KindSensorReadings:
		return newCSVColumns[SensorReadingWire](kind, header)
	}
	return nil, unknownKind(kind)
}

func newCSVColumns[W any](kind string, header []string) (*CSVColumns, error) {
	fields := wireFields[W]()
	c := &CSVColumns{kind: kind, columns: len(header)}
	dec := &csvFields[W]{cols: make([]*csvField, len(header))}
	seen := map[string]int{}
	found := 0
	for i, h := range header {
		name := strings.TrimSpace(h)
		if i == 0 {
			name = strings.TrimPrefix(name, "\uFEFF") // a spreadsheet's byte-order mark
		}
		key := strings.ToLower(name)
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("the header names %q twice (columns %d and %d): name each field once", name, j+1, i+1)
		}
		seen[key] = i
		f, ok := fields[key]
		if !ok {
			c.Ignored = append(c.Ignored, name)
			continue
		}
		dec.cols[i] = f
		found++
	}
	if found == 0 {
		names := slices.Sorted(func(yield func(string) bool) {
			for _, f := range fields {
				if !yield(f.name) {
					return
				}
			}
		})
		return nil, fmt.Errorf("no column of the header row is a field of %s; the first row must name fields such as %s",
			kindNoun(kind), strings.Join(names, ", "))
	}
	c.decode = dec
	return c, nil
}

// wireFields lists the fields of a wire type by lower-case JSON name.
func wireFields[W any]() map[string]*csvField {
	t := reflect.TypeFor[W]()
	out := map[string]*csvField{}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" || name == "" || !sf.IsExported() {
			continue
		}
		f := &csvField{name: name, index: i}
		switch {
		case sf.Type.Kind() == reflect.String:
			f.kind = csvText
		case sf.Type.Kind() == reflect.Bool:
			f.kind = csvFlag
		case sf.Type == reflect.TypeFor[*float64]():
			f.kind = csvNumber
		case sf.Type == reflect.TypeFor[map[string]any]():
			f.kind = csvObject
		default:
			panic(fmt.Sprintf("ingest: wire field %s of %s has a type CSV cannot fill (%s)", name, t, sf.Type))
		}
		out[strings.ToLower(name)] = f
	}
	return out
}

// decode fills a W from the cells of one record. Cells of the wrong type
// are reported as a *fieldTypeError, so that validation still checks the
// rest of the record and every problem is listed at once; a record whose
// cells do not line up with the header is refused for that alone.
func (d *csvFields[W]) decode(columns int, cells []string) (W, error) {
	var w W
	if len(cells) != columns {
		return w, &InvalidError{Problems: []string{fmt.Sprintf(
			"the record has %d cells and the header %d columns; quote a cell that holds a comma", len(cells), columns)}}
	}
	v := reflect.ValueOf(&w).Elem()
	var te *fieldTypeError
	bad := func(f *csvField, format string, args ...any) {
		if te == nil {
			te = &fieldTypeError{fields: map[string]bool{}}
		}
		if len(te.Problems) < maxProblems {
			te.Problems = append(te.Problems, fmt.Sprintf(format, args...))
		}
		te.fields[strings.ToLower(f.name)] = true
	}
	for i, f := range d.cols {
		cell := cells[i]
		if f == nil || cell == "" {
			continue
		}
		fv := v.Field(f.index)
		switch f.kind {
		case csvText:
			fv.SetString(cell)
		case csvFlag:
			switch strings.ToLower(strings.TrimSpace(cell)) {
			case "true", "1":
				fv.SetBool(true)
			case "false", "0":
			default:
				bad(f, "%s must be true or false, got %s", f.name, previewText(cell))
			}
		case csvNumber:
			x, err := strconv.ParseFloat(strings.TrimSpace(cell), 64)
			if err != nil {
				bad(f, "%s must be a number, got %s", f.name, previewText(cell))
				continue
			}
			fv.Set(reflect.ValueOf(&x))
		case csvObject:
			var m map[string]any
			if err := json.Unmarshal([]byte(cell), &m); err != nil {
				bad(f, "%s must be a JSON object such as {\"plate\":\"51F-123.45\"}, got %s", f.name, previewText(cell))
				continue
			}
			if m != nil { // null is a field left out, as in JSON
				fv.Set(reflect.ValueOf(m))
			}
		}
	}
	if te != nil {
		return w, te
	}
	return w, nil
}

func previewText(s string) string { return wire.Preview([]byte(s)) }
