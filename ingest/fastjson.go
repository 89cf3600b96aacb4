package ingest

import (
	"encoding/json"
	"reflect"
	"strconv"
	"sync"
	"unicode/utf8"
)

// decodeFlat decodes raw into *v without encoding/json's reflection-heavy
// path, for the common shape of a wire record: one object whose keys are
// the fields' exact names, each at most once, with plain strings (no
// escapes), booleans, numbers and null, and objects or other values under
// fields that take them or under unknown keys. It reports false, leaving
// *v untouched, for anything else — an escape, a key matching a field only
// when case is ignored, a value of the wrong type, malformed JSON — and the
// caller decodes with encoding/json, which then finds the same record or
// the problem with it. So the result is always what json.Unmarshal gives
// (FuzzDecodeFlat checks this); it is only faster: a backfill decodes tens
// of thousands of records a second.
func decodeFlat[T any](raw []byte, v *T) bool {
	fs := flatFieldsOf[T]()
	if fs == nil {
		return false
	}
	var out T
	rv := reflect.ValueOf(&out).Elem()
	var seen uint64
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		i++
	} else {
		for {
			// A key: a string without escapes.
			if i >= len(raw) || raw[i] != '"' {
				return false
			}
			end, plain := scanString(raw, i)
			if end < 0 || !plain {
				return false
			}
			key := raw[i+1 : end-1]
			i = skipSpace(raw, end)
			if i >= len(raw) || raw[i] != ':' {
				return false
			}
			i = skipSpace(raw, i+1)
			f, known := fs.byName[string(key)]
			if !known {
				if fs.folded(key) {
					return false // encoding/json matches it ignoring case
				}
				end := skipValue(raw, i)
				if end < 0 || !json.Valid(raw[i:end]) {
					return false
				}
				i = end
			} else {
				if seen&(1<<f.bit) != 0 {
					return false // a repeated key: encoding/json's rules apply
				}
				seen |= 1 << f.bit
				end := f.set(rv.Field(f.index), raw, i)
				if end < 0 {
					return false
				}
				i = end
			}
			i = skipSpace(raw, i)
			if i >= len(raw) {
				return false
			}
			if raw[i] == ',' {
				i = skipSpace(raw, i+1)
				continue
			}
			if raw[i] != '}' {
				return false
			}
			i++
			break
		}
	}
	if skipSpace(raw, i) != len(raw) {
		return false
	}
	*v = out
	return true
}

// flatFields are the fields of a wire type decodeFlat fills.
type flatFields struct {
	byName map[string]*flatField
	lower  map[string]bool // every field name in lower case
}

type flatField struct {
	index int
	bit   uint
	// set decodes the value at raw[i:] into f and returns where it ends,
	// or -1 when encoding/json should decode the record.
	set func(f reflect.Value, raw []byte, i int) int
}

var flatCache sync.Map // reflect.Type → *flatFields (nil: not flat)

func flatFieldsOf[T any]() *flatFields {
	t := reflect.TypeFor[T]()
	if fs, ok := flatCache.Load(t); ok {
		return fs.(*flatFields)
	}
	fs := buildFlatFields(t)
	flatCache.Store(t, fs)
	return fs
}

func buildFlatFields(t reflect.Type) *flatFields {
	if t.Kind() != reflect.Struct || t.NumField() > 64 {
		return nil
	}
	fs := &flatFields{byName: map[string]*flatField{}, lower: map[string]bool{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if !sf.IsExported() || tag == "-" {
			continue
		}
		name, opts := cutTag(tag)
		if name == "" || sf.Anonymous || opts != "" && opts != "omitempty" {
			return nil // a shape decodeFlat does not take
		}
		f := &flatField{index: i, bit: uint(i)}
		switch {
		case sf.Type.Kind() == reflect.String:
			f.set = setString
		case sf.Type.Kind() == reflect.Bool:
			f.set = setBool
		case sf.Type == reflect.TypeFor[*float64]():
			f.set = setNumber
		case sf.Type == reflect.TypeFor[map[string]any]():
			f.set = setObject
		default:
			return nil
		}
		if _, dup := fs.byName[name]; dup {
			return nil
		}
		fs.byName[name] = f
		fs.lower[lowerASCII(name)] = true
	}
	return fs
}

func cutTag(tag string) (name, opts string) {
	for i := range len(tag) {
		if tag[i] == ',' {
			return tag[:i], tag[i+1:]
		}
	}
	return tag, ""
}

// folded says whether key, not a field's exact name, could still match
// one as encoding/json matches names (ignoring case, with Unicode folding
// such as the Kelvin sign for k). Field names here are ASCII; a key with
// other bytes is left to encoding/json.
func (fs *flatFields) folded(key []byte) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	return fs.lower[lowerASCII(string(key))]
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func setString(f reflect.Value, raw []byte, i int) int {
	if isNull(raw, i) {
		return i + 4
	}
	if i >= len(raw) || raw[i] != '"' {
		return -1
	}
	end, plain := scanString(raw, i)
	if end < 0 || !plain {
		return -1
	}
	f.SetString(string(raw[i+1 : end-1]))
	return end
}

func setBool(f reflect.Value, raw []byte, i int) int {
	switch {
	case isNull(raw, i):
		return i + 4
	case hasLiteral(raw, i, "true"):
		f.SetBool(true)
		return i + 4
	case hasLiteral(raw, i, "false"):
		f.SetBool(false)
		return i + 5
	}
	return -1
}

func setNumber(f reflect.Value, raw []byte, i int) int {
	if isNull(raw, i) {
		f.SetZero()
		return i + 4
	}
	end := scanNumber(raw, i)
	if end < 0 {
		return -1
	}
	x, err := strconv.ParseFloat(string(raw[i:end]), 64)
	if err != nil {
		return -1 // out of range: encoding/json says so
	}
	f.Set(reflect.ValueOf(&x))
	return end
}

func setObject(f reflect.Value, raw []byte, i int) int {
	if isNull(raw, i) {
		f.SetZero()
		return i + 4
	}
	if i >= len(raw) || raw[i] != '{' {
		return -1
	}
	end := skipValue(raw, i)
	if end < 0 {
		return -1
	}
	var m map[string]any
	if json.Unmarshal(raw[i:end], &m) != nil {
		return -1
	}
	f.Set(reflect.ValueOf(m))
	return end
}

func isNull(raw []byte, i int) bool { return hasLiteral(raw, i, "null") }

func hasLiteral(raw []byte, i int, lit string) bool {
	return len(raw)-i >= len(lit) && string(raw[i:i+len(lit)]) == lit
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) {
		switch raw[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString finds the end (past the closing quote) of the JSON string at
// raw[i]; plain says it has no escapes and is valid UTF-8, so that its
// bytes are its value. -1 when it is not a well-formed string.
func scanString(raw []byte, i int) (end int, plain bool) {
	plain, ascii := true, true
	for j := i + 1; j < len(raw); j++ {
		c := raw[j]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(raw[i+1:j]) {
				plain = false
			}
			return j + 1, plain
		case c == '\\':
			plain = false
			j++
			if j >= len(raw) {
				return -1, false
			}
		case c < 0x20:
			return -1, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return -1, false
}

// scanNumber finds the end of the JSON number at raw[i], -1 when there is
// none there (JSON's grammar: no leading zeros, no "+", no bare ".").
func scanNumber(raw []byte, i int) int {
	j := i
	if j < len(raw) && raw[j] == '-' {
		j++
	}
	switch {
	case j < len(raw) && raw[j] == '0':
		j++
	case j < len(raw) && '1' <= raw[j] && raw[j] <= '9':
		for j < len(raw) && '0' <= raw[j] && raw[j] <= '9' {
			j++
		}
	default:
		return -1
	}
	if j < len(raw) && raw[j] == '.' {
		j++
		k := j
		for j < len(raw) && '0' <= raw[j] && raw[j] <= '9' {
			j++
		}
		if j == k {
			return -1
		}
	}
	if j < len(raw) && (raw[j] == 'e' || raw[j] == 'E') {
		j++
		if j < len(raw) && (raw[j] == '+' || raw[j] == '-') {
			j++
		}
		k := j
		for j < len(raw) && '0' <= raw[j] && raw[j] <= '9' {
			j++
		}
		if j == k {
			return -1
		}
	}
	return j
}

// skipValue finds the end of the JSON value at raw[i] by its brackets and
// strings; -1 when it is not one. It does not check everything inside:
// what it takes is checked with encoding/json before use.
func skipValue(raw []byte, i int) int {
	depth := 0
	for j := i; j < len(raw); {
		switch c := raw[j]; c {
		case '"':
			end, _ := scanString(raw, j)
			if end < 0 {
				return -1
			}
			j = end
		case '{', '[':
			depth++
			j++
		case '}', ']':
			depth--
			if depth < 0 {
				return -1
			}
			j++
		default:
			if depth == 0 {
				// A scalar at the top: up to what ends it.
				k := j
				for k < len(raw) && raw[k] != ',' && raw[k] != '}' && raw[k] != ']' && raw[k] != ' ' &&
					raw[k] != '\t' && raw[k] != '\r' && raw[k] != '\n' {
					k++
				}
				if k == j {
					return -1
				}
				return k
			}
			j++
		}
		if depth == 0 {
			return j
		}
	}
	return -1
}
