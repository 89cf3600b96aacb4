package aggregate

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/openioc/ioc/geo"
)

// mapSnapshot and mapMap are the snapshots as they were encoded before:
// figures in maps, through encoding/json.
type mapSnapshot struct {
	Area      string         `json:"area"`
	Hierarchy string         `json:"hierarchy"`
	Level     string         `json:"level"`
	Name      string         `json:"name"`
	Window    Window         `json:"window"`
	AsOf      time.Time      `json:"as_of"`
	KPIs      map[string]any `json:"kpis"`
}

type mapMap struct {
	Area       string                  `json:"area"`
	Hierarchy  string                  `json:"hierarchy"`
	Level      string                  `json:"level"`
	Name       string                  `json:"name"`
	Window     Window                  `json:"window"`
	AsOf       time.Time               `json:"as_of"`
	ChildLevel string                  `json:"child_level"`
	Children   map[string]ChildFigures `json:"children"`
}

// sampleCounts covers every kind of value: counts, rates and their nulls,
// breakdowns, maxima and means, numbers encoding/json writes with
// exponents.
func sampleCounts() []Counts {
	return []Counts{
		{},
		{Received: 1234, Online: 1216, Resolved: 1100, OnTime: 1067, Timed: 1100, ResolutionSeconds: 1100 * 86400 * 3, Overdue: 12},
		{Received: 3, Online: 2, Digitized: 1, FeeBearing: 3, PaidOnline: 1, Resolved: 7, EResult: 1, Approximate: 2,
			CameraEvents: 5, CameraCritical: 2, ByType: map[string]uint64{"traffic_violation": 3, "accident": 2, `a"<b>&`: 1},
			CamerasOnline: 2, CamerasOffline: 1, SensorsOnline: 4, AlarmsOpen: 1,
			PM25: Stat{Max: 57.2, Sum: 100.4, N: 3}, WaterLevel: Stat{Max: 1.62, Sum: 1.62, N: 1}},
		{PM25: Stat{Max: 1e-7, Sum: 3e-7, N: 3}, WaterLevel: Stat{Max: 1e22, Sum: 1e22, N: 1}, Timed: 1, ResolutionSeconds: 1},
		{PM25: Stat{Max: -3.456, Sum: -3.456, N: 1}, ByType: map[string]uint64{}},
	}
}

// decode reads JSON keeping numbers as written.
func decode(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

// The figures encoded from Counts are what encoding/json wrote for the map
// of figures, number for number, in the catalog's order.
func TestFiguresEncodeAsTheMapsDid(t *testing.T) {
	for i, c := range sampleCounts() {
		got := appendKPIs(nil, c, nil, "")
		want, err := json.Marshal(KPIs(c))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(decode(t, got), decode(t, want)) {
			t.Errorf("counts %d:\n got %s\nwant %s", i, got, want)
		}
		// Keys in the catalog's order.
		d := json.NewDecoder(bytes.NewReader(got))
		_, _ = d.Token()
		var keys []string
		for d.More() {
			k, _ := d.Token()
			keys = append(keys, k.(string))
			var skip json.RawMessage
			_ = d.Decode(&skip)
		}
		var order []string
		for _, def := range Catalog() {
			if def.Live {
				order = append(order, def.ID)
			}
		}
		if !reflect.DeepEqual(keys, order) {
			t.Errorf("counts %d: keys %v, want the catalog's order %v", i, keys, order)
		}
	}
}

// Snapshots and maps, whether published or answered over REST, are what
// the map-based structs gave.
func TestSnapshotsEncodeAsTheMapsDid(t *testing.T) {
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	u, _ := h.Unit("79")
	asOf := time.Date(2026, 11, 22, 10, 30, 0, 0, hcm)
	counts := map[string]Counts{}
	for i, k := range h.ChildCodes("79") {
		counts[k] = sampleCounts()[i%len(sampleCounts())]
	}
	for _, w := range Windows {
		s := newSnapshot(h, u, w, sampleCounts()[2], nil, asOf)
		got, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(mapSnapshot(s))
		if !reflect.DeepEqual(decode(t, got), decode(t, want)) {
			t.Errorf("snapshot %s:\n got %s\nwant %s", w, got, want)
		}
		// The live path encodes the same bytes.
		live := appendSnapshot(nil, snapshotHead(u.Code, h.Name(), u.Level, u.Name, w), asOf, appendKPIs(nil, sampleCounts()[2], nil, ""))
		if !bytes.Equal(live, got) {
			t.Errorf("snapshot %s: live\n %s\nREST\n %s", w, live, got)
		}

		m := newMapSnapshot(h, u, w, counts, nil, asOf)
		got, err = json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		want, _ = json.Marshal(mapMap(m))
		if !reflect.DeepEqual(decode(t, got), decode(t, want)) {
			t.Errorf("map %s differs from the map-based encoding", w)
		}
		live = appendMapSnapshot(nil, mapHead(h, u, w), asOf, "commune", children(h, h.ChildCodes("79"), counts))
		if !bytes.Equal(live, got) {
			t.Errorf("map %s: the live encoding differs from REST's", w)
		}
	}
	// Figures read back from JSON encode again as they were.
	var back Snapshot
	s := newSnapshot(h, u, Today, sampleCounts()[2], nil, asOf)
	b, _ := json.Marshal(s)
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if !reflect.DeepEqual(decode(t, again), decode(t, b)) {
		t.Errorf("a snapshot read back encodes as\n %s\nwant\n %s", again, b)
	}
	// Zero values keep their nulls.
	if b, _ := json.Marshal(Snapshot{}); !bytes.Contains(b, []byte(`"kpis":null`)) {
		t.Errorf("an empty snapshot encodes as %s, want kpis null", b)
	}
}

func TestFloatsEncodeAsEncodingJSONDoes(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.5, 0.6667, 1e-6, 9.99e-7, 1e20, 1e21, 123456789.125, math.SmallestNonzeroFloat64, math.MaxFloat64, -2.5e-9} {
		want, _ := json.Marshal(f)
		if got := appendFloat(nil, f); string(got) != string(want) {
			t.Errorf("%v: got %s, want %s", f, got, want)
		}
	}
	for _, f := range []float64{math.Inf(1), math.Inf(-1), math.NaN()} {
		if got := appendFloat(nil, f); string(got) != "null" {
			t.Errorf("%v: got %s, want null", f, got)
		}
	}
}

// BenchmarkSnapshotEncoding encodes what a publication of one commune's
// change sends in one window, the commune's and its province's snapshots
// and the province's map of 168 communes, the way it was done (maps of
// figures, each marshalled once to compare and once more to send) and the
// way it is done now, in the same run: ns/op and allocs/op of each and
// their ratios.
func BenchmarkSnapshotEncoding(b *testing.B) {
	reg, err := geo.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	province, _ := h.Unit("79")
	commune, _ := h.Unit("26740")
	asOf := time.Date(2026, 11, 22, 10, 30, 0, 0, hcm)
	samples := sampleCounts()
	counts := map[string]Counts{}
	for i, k := range h.ChildCodes("79") {
		c := samples[i%len(samples)]
		c.Received += uint64(i)
		counts[k] = c
	}
	counts["79"] = samples[1]

	maps := func() {
		for _, u := range []geo.Unit{commune, province} {
			s := newSnapshot(h, u, Today, counts[u.Code], nil, asOf)
			if _, err := json.Marshal(s.KPIs); err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(mapSnapshot(s)); err != nil {
				b.Fatal(err)
			}
		}
		m := newMapSnapshot(h, province, Today, counts, nil, asOf)
		if _, err := json.Marshal(m.Children); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(mapMap(m)); err != nil {
			b.Fatal(err)
		}
	}
	heads, childHeads := map[string][]byte{}, map[string][]byte{}
	var scratch []byte
	structs := func() {
		for _, u := range []geo.Unit{commune, province} {
			scratch = appendKPIs(scratch[:0], counts[u.Code], nil, u.Code)
			head := cached(heads, Today.Topic(u.Code), func() []byte { return snapshotHead(u.Code, h.Name(), u.Level, u.Name, Today) })
			_ = appendSnapshot(make([]byte, 0, len(head)+len(scratch)+48), head, asOf, scratch)
		}
		scratch, _ = appendChildren(scratch[:0], h, h.ChildCodes("79"), counts, nil, childHeads, nil)
		head := cached(heads, Today.MapTopic("79"), func() []byte { return mapHead(h, province, Today) })
		_ = appendMapSnapshot(make([]byte, 0, len(head)+len(scratch)+64), head, asOf, "commune", scratch)
	}
	// Both in every iteration, alternating, so that the machine's load
	// weighs on them alike.
	var inMaps, inStructs time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		maps()
		t1 := time.Now()
		structs()
		inMaps, inStructs = inMaps+t1.Sub(t0), inStructs+time.Since(t1)
		n++
	}
	mapsAllocs, structsAllocs := testing.AllocsPerRun(20, maps), testing.AllocsPerRun(20, structs)
	b.ReportMetric(float64(inMaps.Nanoseconds())/float64(n), "maps-ns/op")
	b.ReportMetric(float64(inStructs.Nanoseconds())/float64(n), "structs-ns/op")
	b.ReportMetric(float64(inMaps)/float64(inStructs), "ns-ratio")
	b.ReportMetric(mapsAllocs, "maps-allocs/op")
	b.ReportMetric(structsAllocs, "structs-allocs/op")
	b.ReportMetric(mapsAllocs/max(structsAllocs, 1), "allocs-ratio")
}
