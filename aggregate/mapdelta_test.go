package aggregate

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/openioc/ioc/geo"
)

// children encodes the children object of a map as the live loop does.
func children(h *geo.Hierarchy, kids []string, counts map[string]Counts) []byte {
	b, _ := appendChildren(nil, h, kids, counts, nil, map[string][]byte{}, nil)
	return b
}

// sameJSON fails t unless a and b decode to the same value.
func sameJSON(t *testing.T, what string, a, b []byte) {
	t.Helper()
	if !reflect.DeepEqual(decode(t, a), decode(t, b)) {
		t.Errorf("%s:\n got %s\nwant %s", what, a, b)
	}
}

// mapMessages encodes a map of province 79 (with kids as its children)
// twice, as the live loop publishes it: the payloads of the first and
// second message, and the delta of the second against the first.
func mapMessages(t testing.TB, h *geo.Hierarchy, kids []string, first, second map[string]Counts, asOf1, asOf2 time.Time) (payload1, payload2, delta []byte) {
	province, _ := h.Unit("79")
	heads := map[string][]byte{}
	head := mapHead(h, province, Today)
	old, oldEnds := appendChildren(nil, h, kids, first, nil, heads, nil)
	cur, curEnds := appendChildren(nil, h, kids, second, nil, heads, nil)
	changed, ok := appendChangedChildren(nil, old, oldEnds, cur, curEnds)
	if !ok {
		t.Fatal("two encodings of the same children do not fit together")
	}
	return appendMapSnapshot(nil, head, asOf1, "commune", old),
		appendMapSnapshot(nil, head, asOf2, "commune", cur),
		appendMapSnapshot(nil, head, asOf2, "commune", changed)
}

func province79(t testing.TB) (*geo.Hierarchy, []string) {
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	return h, h.ChildCodes("79")
}

// A delta holds every top-level field of the snapshot and only the
// children whose entry changed; applied to the first snapshot it gives the
// second. With nothing changed but as_of, it holds no child.
func TestMapDeltaHoldsOnlyChangedChildren(t *testing.T) {
	h, kids := province79(t)
	samples := sampleCounts()
	first := map[string]Counts{}
	for i, k := range kids {
		first[k] = samples[i%len(samples)]
	}
	asOf := time.Date(2026, 11, 22, 10, 30, 0, 0, hcm)
	for _, tc := range []struct {
		name    string
		changed []string
		later   time.Duration
	}{
		{"one commune", []string{"26740"}, 0},
		{"several communes", []string{kids[0], "26743", "26758", kids[len(kids)-1]}, time.Minute},
		{"only as_of", nil, time.Minute},
		{"nothing", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			second := maps.Clone(first)
			for _, k := range tc.changed {
				c := second[k]
				c.Received += 7
				c.ByType = map[string]uint64{"accident": 1}
				second[k] = c
			}
			p1, p2, delta := mapMessages(t, h, kids, first, second, asOf, asOf.Add(tc.later))
			var d struct {
				AsOf     time.Time                  `json:"as_of"`
				Children map[string]json.RawMessage `json:"children"`
			}
			if err := json.Unmarshal(delta, &d); err != nil {
				t.Fatalf("%s: %v", delta, err)
			}
			if got := slices.Sorted(maps.Keys(d.Children)); !slices.Equal(got, slices.Sorted(slices.Values(tc.changed))) {
				t.Errorf("delta's children %v, want %v", got, tc.changed)
			}
			if !d.AsOf.Equal(asOf.Add(tc.later)) {
				t.Errorf("delta's as_of %v, want the second snapshot's %v", d.AsOf, asOf.Add(tc.later))
			}
			var fields, deltaFields map[string]json.RawMessage
			_ = json.Unmarshal(p2, &fields)
			_ = json.Unmarshal(delta, &deltaFields)
			if got, want := slices.Sorted(maps.Keys(deltaFields)), slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
				t.Errorf("delta's fields %v, want the snapshot's %v", got, want)
			}
			applied, err := ApplyMapDelta(p1, delta)
			if err != nil {
				t.Fatal(err)
			}
			sameJSON(t, "first snapshot with the delta applied", applied, p2)
		})
	}
}

func TestApplyMapDelta(t *testing.T) {
	held := `{"area":"79","as_of":"2026-11-22T10:30:00+07:00","child_level":"commune",` +
		`"children":{"a":{"name":"A","kpis":{"x":1}},"b":{"name":"B","kpis":{"x":2}}}}`
	for _, tc := range []struct{ name, delta, want string }{
		{"fields replace, children in the delta replace theirs whole, others stay",
			`{"area":"79","as_of":"2026-11-22T10:31:00+07:00","child_level":"commune","children":{"b":{"name":"B","kpis":{"y":3}}}}`,
			`{"area":"79","as_of":"2026-11-22T10:31:00+07:00","child_level":"commune","children":{"a":{"name":"A","kpis":{"x":1}},"b":{"name":"B","kpis":{"y":3}}}}`},
		{"a child not held is added",
			`{"children":{"c":{"name":"C","kpis":{}}}}`,
			`{"area":"79","as_of":"2026-11-22T10:30:00+07:00","child_level":"commune","children":{"a":{"name":"A","kpis":{"x":1}},"b":{"name":"B","kpis":{"x":2}},"c":{"name":"C","kpis":{}}}}`},
		{"no children: fields only",
			`{"as_of":"2026-11-22T11:00:00+07:00"}`,
			`{"area":"79","as_of":"2026-11-22T11:00:00+07:00","child_level":"commune","children":{"a":{"name":"A","kpis":{"x":1}},"b":{"name":"B","kpis":{"x":2}}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ApplyMapDelta([]byte(held), []byte(tc.delta))
			if err != nil {
				t.Fatal(err)
			}
			sameJSON(t, "applied", got, []byte(tc.want))
		})
	}
	// No children held (null) take the delta's.
	got, err := ApplyMapDelta([]byte(`{"children":null}`), []byte(`{"children":{"a":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "applied to null children", got, []byte(`{"children":{"a":1}}`))

	for _, tc := range []struct{ snapshot, delta string }{
		{`null`, `{}`}, {`{}`, `null`}, {`[]`, `{}`}, {`{}`, `{"children":[]}`}, {`{}`, `{"children":null}`},
		{`{"children":3}`, `{"children":{"a":1}}`}, {`{"a":`, `{}`}, {`{}`, `{"a":1} x`},
	} {
		if got, err := ApplyMapDelta([]byte(tc.snapshot), []byte(tc.delta)); err == nil {
			t.Errorf("ApplyMapDelta(%s, %s) = %s, want an error", tc.snapshot, tc.delta, got)
		}
	}
}

// diffMaps makes the delta that turns snapshot a into b by the merge rule,
// from their JSON, or says it cannot: b lacks a field or a child of a, or
// either's children is not an object.
func diffMaps(a, b []byte) ([]byte, bool) {
	var x, y map[string]json.RawMessage
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil || x == nil || y == nil {
		return nil, false
	}
	var xk, yk map[string]json.RawMessage
	if json.Unmarshal(x["children"], &xk) != nil || json.Unmarshal(y["children"], &yk) != nil || xk == nil || yk == nil {
		return nil, false
	}
	for k := range x {
		if _, ok := y[k]; !ok {
			return nil, false
		}
	}
	changed := map[string]json.RawMessage{}
	for k, v := range xk {
		w, ok := yk[k]
		if !ok {
			return nil, false
		}
		if !sameValue(v, w) {
			changed[k] = w
		}
	}
	for k, w := range yk {
		if _, ok := xk[k]; !ok {
			changed[k] = w
		}
	}
	d := maps.Clone(y)
	d["children"], _ = json.Marshal(changed)
	out, err := json.Marshal(d)
	return out, err == nil
}

func sameValue(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

// decodeNumbers decodes JSON keeping numbers as written, or says it is
// not JSON.
func decodeNumbers(b []byte) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil, false
	}
	return v, true
}

// ApplyMapDelta never panics; what it returns is a JSON object; and a
// delta built from two snapshots turns the first into the second.
func FuzzApplyMapDelta(f *testing.F) {
	// A few children: the fuzzer mutates small inputs faster.
	h, kids := province79(f)
	kids = kids[:4]
	samples := sampleCounts()
	first, second := map[string]Counts{}, map[string]Counts{}
	for i, k := range kids {
		first[k], second[k] = samples[i%len(samples)], samples[i%len(samples)]
	}
	second[kids[1]] = samples[2]
	asOf := time.Date(2026, 11, 22, 10, 30, 0, 0, hcm)
	p1, p2, delta := mapMessages(f, h, kids, first, second, asOf, asOf.Add(time.Minute))
	f.Add(p1, delta)
	f.Add(p1, p2)
	f.Add([]byte(`{"as_of":1,"children":{"a":{"x":1},"b":2}}`), []byte(`{"as_of":2,"children":{"a":{"x":3},"c":null}}`))
	f.Add([]byte(`{"children":null}`), []byte(`{"children":{}}`))
	f.Add([]byte(`null`), []byte(`{}`))
	f.Add([]byte(`{"children":{"a":1}}`), []byte(`{"children":[1]}`))
	f.Add([]byte(`{"children":{"a":"\u2028<&>"}}`), []byte(`{"children":{"a":"\ud800"}}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		got, err := ApplyMapDelta(a, b)
		if err == nil {
			if v, ok := decodeNumbers(got); !ok {
				t.Fatalf("ApplyMapDelta(%q, %q) returned %q: not JSON", a, b, got)
			} else if _, ok := v.(map[string]any); !ok {
				t.Fatalf("ApplyMapDelta(%q, %q) returned %q: not an object", a, b, got)
			}
		}
		d, ok := diffMaps(a, b)
		if !ok {
			return
		}
		got, err = ApplyMapDelta(a, d)
		if err != nil {
			t.Fatalf("ApplyMapDelta(%q, %q): %v", a, d, err)
		}
		x, _ := decodeNumbers(got)
		y, _ := decodeNumbers(b)
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("%q with the delta %q applied gives\n %q\nwant\n %q", a, d, got, b)
		}
	})
}

// The live loop's delta, for any figures of any children, turns the
// snapshot it follows into its own.
func FuzzMapDeltaOfFigures(f *testing.F) {
	h, kids := province79(f)
	kids = kids[:12] // enough to vary, few enough to fuzz fast
	f.Add([]byte{1, 2, 3}, []byte{1, 2, 4}, uint16(0))
	f.Add([]byte{}, []byte{200, 0, 7, 9, 255}, uint16(60))
	f.Add([]byte{5, 5, 5, 5}, []byte{5, 5, 5, 5}, uint16(1))
	samples := sampleCounts()
	figures := func(seed []byte) map[string]Counts {
		out := map[string]Counts{}
		for i, x := range seed {
			k := kids[(i*37+int(x))%len(kids)]
			c := out[k]
			c.Add(samples[int(x)%len(samples)])
			c.Received += uint64(x)
			out[k] = c
		}
		return out
	}
	asOf := time.Date(2026, 11, 22, 10, 30, 0, 0, hcm)
	f.Fuzz(func(t *testing.T, one, two []byte, later uint16) {
		p1, p2, delta := mapMessages(t, h, kids, figures(one), figures(two), asOf, asOf.Add(time.Duration(later)*time.Second))
		got, err := ApplyMapDelta(p1, delta)
		if err != nil {
			t.Fatal(err)
		}
		x, _ := decodeNumbers(got)
		y, _ := decodeNumbers(p2)
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("snapshot with the delta applied gives\n %s\nwant\n %s", got, p2)
		}
	})
}

// What publishing a province's map costs once a delta is made too: the
// live loop's encoding of the children, the payload and the delta.
func BenchmarkMapDelta(b *testing.B) {
	h, kids := province79(b)
	province, _ := h.Unit("79")
	samples := sampleCounts()
	first, second := map[string]Counts{}, map[string]Counts{}
	for i, k := range kids {
		first[k], second[k] = samples[i%len(samples)], samples[i%len(samples)]
	}
	second["26740"] = samples[2]
	asOf := time.Date(2026, 11, 22, 10, 30, 0, 0, hcm)
	heads := map[string][]byte{}
	head := mapHead(h, province, Today)
	old, oldEnds := appendChildren(nil, h, kids, first, nil, heads, nil)
	var (
		scratch, changed []byte
		ends             []int
	)
	b.ReportAllocs()
	for b.Loop() {
		scratch, ends = appendChildren(scratch[:0], h, kids, second, nil, heads, ends[:0])
		payload := appendMapSnapshot(make([]byte, 0, len(head)+len(scratch)+64), head, asOf, "commune", scratch)
		kept := slices.Clone(ends)
		changed, _ = appendChangedChildren(changed[:0], old, oldEnds, scratch, ends)
		delta := appendMapSnapshot(make([]byte, 0, len(head)+len(changed)+64), head, asOf, "commune", changed)
		_, _, _ = payload, kept, delta
	}
}
