package aggregate

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/openioc/ioc/geo"
)

// Snapshots are encoded by appending, from the catalog, in its order: the
// live loop encodes every unit's figures on every publication, and building
// a map per snapshot and having encoding/json sort and reflect over it twice
// (once for the comparison, once for the payload) cost more than the rest of
// the node's work together. The wire format is what encoding/json wrote for
// the maps: the same keys, numbers and nulls, only in the catalog's order.

// liveDefs are the live indicators with the JSON key each is written under.
var liveDefs = func() []struct {
	key []byte // "id":
	def Definition
} {
	var out []struct {
		key []byte
		def Definition
	}
	for _, d := range catalog {
		if d.Live {
			k, _ := json.Marshal(d.ID)
			out = append(out, struct {
				key []byte
				def Definition
			}{append(k, ':'), d})
		}
	}
	return out
}()

// appendKPIs appends the live indicators over c as a JSON object, with
// code's extra ones (x, nil for none) last.
func appendKPIs(b []byte, c Counts, x *extras, code string) []byte {
	b = append(b, '{')
	for i, l := range liveDefs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, l.key...)
		if l.def.enc != nil {
			b = l.def.enc(b, c)
		} else {
			b = appendValue(b, l.def.value(c))
		}
	}
	b = x.append(b, code, c)
	return append(b, '}')
}

// appendKPIMap appends figures held as values (a Snapshot built or read
// back as a map) as a JSON object: the catalog's indicators in its order,
// then any others by name.
func appendKPIMap(b []byte, m map[string]any) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	first := true
	sep := func() {
		if !first {
			b = append(b, ',')
		}
		first = false
	}
	known := make(map[string]bool, len(liveDefs))
	for _, l := range liveDefs {
		known[l.def.ID] = true
		v, ok := m[l.def.ID]
		if !ok {
			continue
		}
		sep()
		b = append(b, l.key...)
		b = appendValue(b, v)
	}
	var others []string
	for k := range m {
		if !known[k] {
			others = append(others, k)
		}
	}
	slices.Sort(others)
	for _, k := range others {
		sep()
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, m[k])
	}
	return append(b, '}')
}

// appendValue appends one indicator's value as encoding/json would.
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case *float64:
		if x == nil {
			return append(b, "null"...)
		}
		return appendFloat(b, *x)
	case float64:
		return appendFloat(b, x)
	case map[string]uint64:
		return appendCountMap(b, x)
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, enc...)
}

// appendOptional appends v, or null when not ok.
func appendOptional(b []byte, v float64, ok bool) []byte {
	if !ok {
		return append(b, "null"...)
	}
	return appendFloat(b, v)
}

// appendFloat formats f as encoding/json does (ES6 number formatting); a
// value JSON cannot carry (±Inf, NaN) is written as null rather than failing
// the whole snapshot.
func appendFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendCountMap appends counts by name, names in order.
func appendCountMap(b []byte, m map[string]uint64) []byte {
	var few [8]string // as many types as cameras report, without allocating
	keys := few[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = strconv.AppendUint(b, m[k], 10)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string, escaped as encoding/json does.
func appendString(b []byte, s string) []byte {
	enc, _ := json.Marshal(s)
	return append(b, enc...)
}

// snapshotHead is the start of a Snapshot's JSON, up to the value of
// as_of: everything that does not change from one publication to the next.
func snapshotHead(area, hierarchy, level, name string, w Window) []byte {
	b := append([]byte(`{"area":`), appendString(nil, area)...)
	b = append(append(b, `,"hierarchy":`...), appendString(nil, hierarchy)...)
	b = append(append(b, `,"level":`...), appendString(nil, level)...)
	b = append(append(b, `,"name":`...), appendString(nil, name)...)
	b = append(append(b, `,"window":`...), appendString(nil, string(w))...)
	return append(b, `,"as_of":`...)
}

// appendAsOf appends t as encoding/json writes a time.Time.
func appendAsOf(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendSnapshot appends a Snapshot's JSON: head (snapshotHead), as_of and
// the kpis object.
func appendSnapshot(b, head []byte, asOf time.Time, kpis []byte) []byte {
	b = append(b, head...)
	b = appendAsOf(b, asOf)
	b = append(b, `,"kpis":`...)
	b = append(b, kpis...)
	return append(b, '}')
}

// mapHead is the start of a MapSnapshot's JSON, up to the value of as_of.
func mapHead(h *geo.Hierarchy, u geo.Unit, w Window) []byte {
	return snapshotHead(u.Code, h.Name(), u.Level, u.Name, w)
}

// childHead is what precedes a child's kpis in a MapSnapshot's children:
// "code":{"name":…,"kpis":
func childHead(code, name string) []byte {
	b := appendString(nil, code)
	b = append(b, `:{"name":`...)
	b = append(b, appendString(nil, name)...)
	return append(b, `,"kpis":`...)
}

// appendChildren appends the children object of a map: each child of kids
// (codes, in order) with its name and its figures in figs and x. heads keeps each
// child's constant start (childHead) from one call to the next. It appends
// to ends, for each child, the offset just past its entry from the start
// of the object: what lets the next message's entries be compared with
// these one by one (appendChangedChildren) without parsing them.
func appendChildren(b []byte, h *geo.Hierarchy, kids []string, figs map[string]Counts, x *extras, heads map[string][]byte, ends []int) ([]byte, []int) {
	start := len(b)
	b = append(b, '{')
	for i, k := range kids {
		if i > 0 {
			b = append(b, ',')
		}
		head, ok := heads[k]
		if !ok {
			u, _ := h.Unit(k)
			head = childHead(k, u.Name)
			heads[k] = head
		}
		b = append(b, head...)
		b = appendKPIs(b, figs[k], x, k)
		b = append(b, '}')
		ends = append(ends, len(b)-start)
	}
	return append(b, '}'), ends
}

// cached returns what cache holds under key, building it the first time:
// the constant starts of payloads.
func cached(cache map[string][]byte, key string, build func() []byte) []byte {
	h, ok := cache[key]
	if !ok {
		h = build()
		cache[key] = h
	}
	return h
}

// appendMapSnapshot appends a MapSnapshot's JSON: head (mapHead), as_of,
// child_level and children, an object already encoded.
func appendMapSnapshot(b, head []byte, asOf time.Time, childLevel string, children []byte) []byte {
	b = append(b, head...)
	b = appendAsOf(b, asOf)
	b = append(b, `,"child_level":`...)
	b = appendString(b, childLevel)
	b = append(b, `,"children":`...)
	b = append(b, children...)
	return append(b, '}')
}

// MarshalJSON encodes the snapshot as the live topics carry it, figures in
// the catalog's order.
func (s Snapshot) MarshalJSON() ([]byte, error) {
	return appendSnapshot(nil, snapshotHead(s.Area, s.Hierarchy, s.Level, s.Name, s.Window), s.AsOf,
		appendKPIMap(nil, s.KPIs)), nil
}

// MarshalJSON encodes the map as the live topics carry it, children by
// code and their figures in the catalog's order.
func (m MapSnapshot) MarshalJSON() ([]byte, error) {
	head := snapshotHead(m.Area, m.Hierarchy, m.Level, m.Name, m.Window)
	if m.Children == nil {
		return appendMapSnapshot(nil, head, m.AsOf, m.ChildLevel, []byte("null")), nil
	}
	codes := make([]string, 0, len(m.Children))
	for c := range m.Children {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	children := []byte{'{'}
	for i, c := range codes {
		if i > 0 {
			children = append(children, ',')
		}
		children = append(children, childHead(c, m.Children[c].Name)...)
		children = appendKPIMap(children, m.Children[c].KPIs)
		children = append(children, '}')
	}
	children = append(children, '}')
	return appendMapSnapshot(nil, head, m.AsOf, m.ChildLevel, children), nil
}
