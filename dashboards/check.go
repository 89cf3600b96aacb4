package dashboards

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FieldError is one thing wrong with a document: where (a JSON path such
// as widgets[3].options.indicator; empty for the document itself) and
// what, with how to fix it.
type FieldError struct {
	File  string `json:"file,omitempty"` // the file, when documents come from files
	Path  string `json:"path"`
	Error string `json:"error"`
}

func (e FieldError) String() string {
	s := e.Error
	if e.Path != "" {
		s = e.Path + ": " + s
	}
	if e.File != "" {
		s = e.File + ": " + s
	}
	return s
}

// InvalidError is a refused document or set of documents, with every
// field that is wrong.
type InvalidError struct {
	Fields []FieldError
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	return strings.Join(parts, "; ")
}

// checker walks a decoded JSON value and collects what is wrong with it.
type checker struct {
	errs []FieldError
}

func (c *checker) fail(path, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Path: path, Error: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// decode reads one JSON value, numbers kept as written.
func decode(body []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// object is a JSON object being checked: its fields are read by name, and
// finish reports those nobody asked for.
type object struct {
	c    *checker
	path string
	m    map[string]any
	what string   // "a dashboard", "a kpi widget's options"
	read []string // fields asked for, in order
}

// object checks that v is an object; what names it in messages.
func (c *checker) object(path string, v any, what string) (*object, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.fail(path, "must be an object (%s), not %s", what, jsonType(v))
		return nil, false
	}
	return &object{c: c, path: path, m: m, what: what}, true
}

// get returns field key; a missing one is reported when required, with
// hint saying what to put there.
func (o *object) get(key string, required bool, hint string) (any, string, bool) {
	o.read = append(o.read, key)
	p := join(o.path, key)
	v, ok := o.m[key]
	if !ok {
		if required {
			o.c.fail(p, "missing: add it (%s)", hint)
		}
		return nil, p, false
	}
	return v, p, true
}

// finish reports fields the object does not take. Fields starting with
// "$" at the root ($schema) are for editors and are dropped.
func (o *object) finish(allowSchema bool) {
	var unknown []string
	for k, v := range o.m {
		if allowSchema && k == "$schema" {
			if _, ok := v.(string); !ok {
				o.c.fail(join(o.path, k), "must be a string (the URL of the document's JSON Schema), not %s", jsonType(v))
			}
			continue
		}
		if slices.Contains(o.read, k) {
			continue
		}
		unknown = append(unknown, k)
	}
	sort.Strings(unknown)
	takes := "takes " + strings.Join(o.read, ", ")
	if len(o.read) == 0 {
		takes = "takes none: remove it"
	}
	for _, k := range unknown {
		o.c.fail(join(o.path, k), "unknown field: %s %s", o.what, takes)
	}
}

func (o *object) str(key string, required bool, hint string) (string, string, bool) {
	v, p, ok := o.get(key, required, hint)
	if !ok {
		return "", p, false
	}
	s, isStr := v.(string)
	if !isStr {
		o.c.fail(p, "must be a string (%s), not %s", hint, jsonType(v))
		return "", p, false
	}
	return s, p, true
}

func (o *object) enum(key string, required bool, values []string) (string, bool) {
	hint := "one of " + strings.Join(values, ", ")
	s, p, ok := o.str(key, required, hint)
	if !ok {
		return "", false
	}
	if !slices.Contains(values, s) {
		o.c.fail(p, "%q is not one of %s", s, strings.Join(values, ", "))
		return "", false
	}
	return s, true
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// IDPattern is what every document and widget id matches.
const IDPattern = `^[a-z0-9][a-z0-9-]{0,62}$`

// ValidID says whether id is a valid document id.
func ValidID(id string) bool { return idRE.MatchString(id) }

func (o *object) id(key string, required bool, what string) (string, bool) {
	hint := what + ": lower-case letters, digits and hyphens, at most 63, starting with a letter or digit"
	s, p, ok := o.str(key, required, hint)
	if !ok {
		return "", false
	}
	if !idRE.MatchString(s) {
		o.c.fail(p, "%q is not a valid id: use lower-case letters, digits and hyphens (at most 63, the first a letter or digit), e.g. ops-79", s)
		return "", false
	}
	return s, true
}

func (o *object) integer(key string, required bool, lo, hi int, hint string) (int, bool) {
	v, p, ok := o.get(key, required, fmt.Sprintf("%s, a whole number from %d to %d", hint, lo, hi))
	if !ok {
		return 0, false
	}
	return o.c.integer(p, v, lo, hi, hint)
}

func (c *checker) integer(p string, v any, lo, hi int, hint string) (int, bool) {
	n, isNum := v.(json.Number)
	if !isNum {
		c.fail(p, "must be a whole number from %d to %d (%s), not %s", lo, hi, hint, jsonType(v))
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) {
		c.fail(p, "%s is not a whole number: give one from %d to %d (%s)", n, lo, hi, hint)
		return 0, false
	}
	if f < float64(lo) || f > float64(hi) {
		c.fail(p, "%s is out of range: give a whole number from %d to %d (%s)", n, lo, hi, hint)
		return 0, false
	}
	return int(f), true
}

func (o *object) number(key string, required bool, hint string) (float64, bool) {
	v, p, ok := o.get(key, required, hint)
	if !ok {
		return 0, false
	}
	n, isNum := v.(json.Number)
	if !isNum {
		o.c.fail(p, "must be a number (%s), not %s", hint, jsonType(v))
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) {
		o.c.fail(p, "%s is not a finite number", n)
		return 0, false
	}
	return f, true
}

func (o *object) boolean(key string) (bool, bool) {
	v, p, ok := o.get(key, false, "")
	if !ok {
		return false, false
	}
	b, isBool := v.(bool)
	if !isBool {
		o.c.fail(p, "must be true or false, not %s", jsonType(v))
		return false, false
	}
	return b, true
}

// array returns field key as a list of lo to hi items.
func (o *object) array(key string, required bool, lo, hi int, hint string) ([]any, string, bool) {
	v, p, ok := o.get(key, required, hint)
	if !ok {
		return nil, p, false
	}
	a, isArr := v.([]any)
	if !isArr {
		o.c.fail(p, "must be a list (%s), not %s", hint, jsonType(v))
		return nil, p, false
	}
	switch {
	case len(a) < lo && lo == 1:
		o.c.fail(p, "is empty: give at least one (%s)", hint)
		return nil, p, false
	case len(a) < lo:
		o.c.fail(p, "has %d items: give at least %d (%s)", len(a), lo, hint)
		return nil, p, false
	case len(a) > hi:
		o.c.fail(p, "has %d items: give at most %d", len(a), hi)
		return nil, p, false
	}
	return a, p, true
}

// text checks a {"vi","en"} text.
func (o *object) text(key string, required bool, what string) {
	v, p, ok := o.get(key, required, what+` in Vietnamese and English: {"vi":"…","en":"…"}`)
	if !ok {
		return
	}
	t, ok := o.c.object(p, v, what+` in Vietnamese and English, {"vi":"…","en":"…"}`)
	if !ok {
		return
	}
	for _, lang := range []struct{ key, name string }{{"vi", "Vietnamese"}, {"en", "English"}} {
		s, sp, ok := t.str(lang.key, true, what+" in "+lang.name)
		switch {
		case !ok:
		case strings.TrimSpace(s) == "":
			o.c.fail(sp, "is empty: give %s in %s", what, lang.name)
		case utf8.RuneCountInString(s) > maxText:
			o.c.fail(sp, "is %d characters long: keep it to %d", utf8.RuneCountInString(s), maxText)
		}
	}
	t.finish(false)
}

// maxText bounds a text field; a wall shows a line or a few.
const maxText = 2000

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
