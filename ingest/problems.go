package ingest

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/openioc/ioc/ingest/wire"
)

// InvalidError refuses a record for every problem found in it, each saying
// what is wrong and how to fix it: an integrator fixes them all in one
// round trip rather than one per answer.
type InvalidError struct {
	Problems []string
}

func (e *InvalidError) Error() string { return strings.Join(e.Problems, "; ") }

// maxProblems bounds the problems listed for one record; a record is
// small, so more means it is not what the endpoint takes at all.
const maxProblems = 20

// problems gathers what is wrong with one record. Each field that is
// missing or malformed is marked bad, so that checks depending on it are
// skipped rather than reported as a second, derived problem.
type problems struct {
	list []string
	more int
	bad  map[string]bool
}

func (p *problems) add(format string, args ...any) {
	if len(p.list) >= maxProblems {
		p.more++
		return
	}
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

// addErr adds err's problems, all of them if it is an *InvalidError.
func (p *problems) addErr(err error) {
	var inv *InvalidError
	if errors.As(err, &inv) {
		for _, s := range inv.Problems {
			p.add("%s", s)
		}
		return
	}
	p.add("%s", err.Error())
}

// fail adds a problem with field and marks it bad.
func (p *problems) fail(field, format string, args ...any) {
	p.markBad(field)
	p.add(format, args...)
}

func (p *problems) markBad(field string) {
	if p.bad == nil {
		p.bad = map[string]bool{}
	}
	p.bad[field] = true
}

// ok says whether nothing is wrong with the fields named.
func (p *problems) ok(fields ...string) bool {
	for _, f := range fields {
		if p.bad[f] {
			return false
		}
	}
	return true
}

// require marks each named field that is blank as missing.
func (p *problems) require(values map[string]string, order ...string) {
	for _, f := range order {
		if strings.TrimSpace(values[f]) == "" {
			p.fail(f, "%s is required", f)
		}
	}
}

// checkIDs bounds each named identifier's length and requires UTF-8.
func (p *problems) checkIDs(values map[string]string, order ...string) {
	for _, f := range order {
		v := values[f]
		switch {
		case len(v) > maxIDLen:
			p.fail(f, "%s is %d bytes long; the limit is %d", f, len(v), maxIDLen)
		case !utf8.ValidString(v):
			p.fail(f, "%s is not valid UTF-8", f)
		}
	}
}

// err is nil without problems, else an *InvalidError listing them.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	list := p.list
	if p.more > 0 {
		list = append(slices.Clip(list), fmt.Sprintf("and %d more problems", p.more))
	}
	return &InvalidError{Problems: list}
}

// fieldTypeError is a record that decoded except for fields sent with the
// wrong JSON type: the rest of the record is still checked, so that these
// are reported along with its other problems.
type fieldTypeError struct {
	InvalidError
	fields map[string]bool // top-level fields with the wrong type
}

func (e *fieldTypeError) Unwrap() error { return &e.InvalidError }

// typeErrors finds every field of raw, a JSON object, whose value does not
// decode into T. json.Unmarshal stops reporting at the first one.
func typeErrors[T any](raw []byte, first error) *fieldTypeError {
	out := &fieldTypeError{fields: map[string]bool{}}
	var p problems
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) == nil {
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			one, _ := json.Marshal(map[string]json.RawMessage{k: fields[k]})
			var v T
			var te *json.UnmarshalTypeError
			if err := json.Unmarshal(one, &v); errors.As(err, &te) {
				p.add("%s", wire.JSONError(err, one))
				out.fields[strings.ToLower(topField(te.Field, k))] = true
			}
			if len(p.list) >= maxProblems {
				break
			}
		}
	}
	if len(p.list) == 0 { // cannot happen for an object; keep the first error
		p.add("%s", wire.JSONError(first, raw))
	}
	out.Problems = p.list
	return out
}

// topField is the top-level field of a type error's path.
func topField(path, key string) string {
	if path == "" {
		return key
	}
	top, _, _ := strings.Cut(path, ".")
	return top
}

// withTypeErrors merges a record's type errors with the problems its
// validation found, leaving out those about the fields whose type was
// wrong: such a field was left empty, and "x is required" would only
// repeat that x is malformed.
func withTypeErrors(te *fieldTypeError, validation error) error {
	var p problems
	for _, s := range te.Problems {
		p.add("%s", s)
	}
	if validation != nil {
		var inv *InvalidError
		list := []string{validation.Error()}
		if errors.As(validation, &inv) {
			list = inv.Problems
		}
		for _, s := range list {
			field, _, _ := strings.Cut(s, " ")
			if !te.fields[strings.ToLower(field)] {
				p.add("%s", s)
			}
		}
	}
	return p.err()
}

// refusals keeps the refused records of a request with the lowest
// indexes, up to max of them, and counts every one: a body of a million bad
// records costs no more than the errors its answer lists.
type refusals struct {
	max   int // 0: keep all
	kept  byIndexDesc
	total int
}

func (r *refusals) add(e RecordError) {
	r.total++
	if r.max <= 0 || len(r.kept) < r.max {
		heap.Push(&r.kept, e)
		return
	}
	if e.Index < r.kept[0].Index {
		r.kept[0] = e
		heap.Fix(&r.kept, 0)
	}
}

// list is the kept refusals by index.
func (r *refusals) list() []RecordError {
	out := slices.Clone([]RecordError(r.kept))
	slices.SortStableFunc(out, func(a, b RecordError) int { return a.Index - b.Index })
	return out
}

// omitted counts the refusals counted but not kept.
func (r *refusals) omitted() int { return r.total - len(r.kept) }

// byIndexDesc is a heap whose top is the highest index.
type byIndexDesc []RecordError

func (h byIndexDesc) Len() int           { return len(h) }
func (h byIndexDesc) Less(i, j int) bool { return h[i].Index > h[j].Index }
func (h byIndexDesc) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *byIndexDesc) Push(x any)        { *h = append(*h, x.(RecordError)) }
func (h *byIndexDesc) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
