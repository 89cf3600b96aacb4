package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/bus"
)

// The pure parts of iocbench wall, on fixed inputs: nothing here runs a
// browser or a server, or depends on the time it runs.

func TestWallProcStat(t *testing.T) {
	// A renderer's name holds spaces and parentheses; utime 1500, stime
	// 250, cutime 40, cstime 10 ticks of 1/100 s.
	line := "4242 (chromium (Renderer) x) S 4200 4200 4200 0 -1 4194560 9000 0 0 0 1500 250 40 10 20 0 12 0 123456 300000000 20000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n"
	st, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.pid != 4242 || st.ppid != 4200 || st.cpu != 18*time.Second {
		t.Errorf("got pid %d ppid %d cpu %s, want 4242, 4200, 18s", st.pid, st.ppid, st.cpu)
	}
	for _, bad := range []string{"", "4242 chromium S 1", "4242 (chromium) S 4200 1 2 3", "x (chromium) S 4200 4200 4200 0 -1 0 0 0 0 0 1 2 3 4 5"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("%q was read as a stat line", bad)
		}
	}
}

func TestWallTreeCPU(t *testing.T) {
	procs := map[int]procStat{
		1:  {pid: 1, ppid: 0, cpu: time.Hour},
		10: {pid: 10, ppid: 1, cpu: 3 * time.Second},  // the browser
		11: {pid: 11, ppid: 10, cpu: time.Second},     // zygote
		12: {pid: 12, ppid: 11, cpu: 5 * time.Second}, // renderer
		13: {pid: 13, ppid: 10, cpu: 2 * time.Second}, // GPU process
		20: {pid: 20, ppid: 1, cpu: time.Minute},      // another browser
		21: {pid: 21, ppid: 20, cpu: time.Minute},
	}
	if cpu, n := treeCPU(procs, 10); cpu != 11*time.Second || n != 4 {
		t.Errorf("browser 10: %s over %d processes, want 11s over 4", cpu, n)
	}
	if cpu, n := treeCPU(procs, 12); cpu != 5*time.Second || n != 1 {
		t.Errorf("a leaf: %s over %d, want 5s over 1", cpu, n)
	}
	if cpu, n := treeCPU(procs, 99); cpu != 0 || n != 0 {
		t.Errorf("a process that is gone: %s over %d, want nothing", cpu, n)
	}
}

func TestWallMachineTicks(t *testing.T) {
	a, err := parseMachineTicks([]byte("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a.busy != 150 || a.total != 1000 {
		t.Fatalf("got busy %d of %d, want 150 of 1000", a.busy, a.total)
	}
	// Guest time (the last two fields) is already in user: not counted twice.
	b, err := parseMachineTicks([]byte("cpu  400 0 150 1200 50 0 0 0 999 999\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := busyShare(a, b); math.Abs(got-0.5) > 1e-9 {
		t.Errorf("busy share %v, want 0.5 (400 of 800 ticks)", got)
	}
	if busyShare(b, a) != 0 {
		t.Error("a counter that went back gave a share")
	}
	if _, err := parseMachineTicks([]byte("intr 1 2 3\n")); err == nil {
		t.Error("a line other than cpu was read")
	}
}

func TestWallJoinLatencies(t *testing.T) {
	asOf := "2026-11-22T09:15:04+07:00"
	base := time.Date(2026, 11, 22, 2, 15, 4, 0, time.UTC).UnixMilli()
	published := map[string]int64{
		publicationKey("kpi/79", "0001"):     base + 400,
		publicationKey("map/79/24h", "0002"): base + 900,
	}
	l := joinLatencies([]pageSample{
		{topic: "kpi/79", version: "0001", asOf: asOf, received: base + 420, painted: base + 450},
		{topic: "map/79/24h", version: "0002", asOf: asOf, received: base + 1000, painted: base + 1100},
		{topic: "kpi/79", version: "0003", asOf: asOf, received: base + 1500, painted: base + 1510}, // published before the subscription
	}, published)
	if got, want := l.publish, []int32{50, 200}; !equalInts(got, want) {
		t.Errorf("publication → paint %v, want %v", got, want)
	}
	if got, want := l.asOf, []int32{450, 1100, 1510}; !equalInts(got, want) {
		t.Errorf("as_of → paint %v, want %v", got, want)
	}
	if got, want := l.render, []int32{30, 100, 10}; !equalInts(got, want) {
		t.Errorf("received → paint %v, want %v", got, want)
	}
	if l.unmatched != 1 {
		t.Errorf("%d unmatched, want 1", l.unmatched)
	}
}

func equalInts(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWallQuantiles(t *testing.T) {
	var v []int32
	for i := int32(100); i >= 1; i-- {
		v = append(v, i)
	}
	if p50, p95, p99, most := quantiles(v); p50 != 50 || p95 != 95 || p99 != 99 || most != 100 {
		t.Errorf("1..100: %d %d %d %d, want 50 95 99 100", p50, p95, p99, most)
	}
	if p50, p95, p99, most := quantiles([]int32{7}); p50 != 7 || p95 != 7 || p99 != 7 || most != 7 {
		t.Errorf("one value: %d %d %d %d", p50, p95, p99, most)
	}
	if p50, _, _, most := quantiles(nil); p50 != 0 || most != 0 {
		t.Error("no values gave a percentile")
	}
}

func TestWallSlope(t *testing.T) {
	x := []float64{0, 1, 2, 3, 4}
	y := []float64{1, 3, 5, 7, 9}
	if s, ok := slope(x, y); !ok || math.Abs(s-2) > 1e-9 {
		t.Errorf("y = 2x + 1: slope %v %v, want 2", s, ok)
	}
	if _, ok := slope([]float64{3, 3}, []float64{1, 2}); ok {
		t.Error("a slope from one x")
	}
	// Two dashboards, one holding 100 more than the other, each growing
	// 0.5 a unit of time; the rotation ends on the larger one.
	x = []float64{0, 1, 2, 3, 4, 5}
	g := []string{"small", "small", "large", "large", "small", "large"}
	y = make([]float64, len(x))
	for i := range x {
		y[i] = 0.5 * x[i]
		if g[i] == "large" {
			y[i] += 100
		}
	}
	if s, ok := groupedSlope(x, y, g); !ok || math.Abs(s-0.5) > 1e-9 {
		t.Errorf("per dashboard: slope %v %v, want 0.5", s, ok)
	}
	if s, _ := slope(x, y); s < 10 {
		t.Errorf("plain slope %v: the dashboards' difference should show in it", s)
	}
	// A dashboard read once says nothing of a slope.
	if s, ok := groupedSlope([]float64{0, 1, 2}, []float64{5, 50, 500}, []string{"a", "b", "c"}); ok {
		t.Errorf("every dashboard read once gave slope %v", s)
	}
}

func TestWallHeapFlatness(t *testing.T) {
	const mib = 1 << 20
	at := func(m int) time.Duration { return time.Duration(m) * time.Minute }
	points := []heapPoint{
		{at: at(0), used: 2 * mib, nodes: 1000, view: "ops-79"},
		{at: at(1), used: 1 * mib, nodes: 200, view: "dossiers-79"},
		{at: at(2), used: 3 * mib, nodes: 900, view: "env-79"},
		{at: at(3), used: 2.1 * mib, nodes: 1000, view: "ops-79"},
		{at: at(4), used: 3.3 * mib, nodes: 1500, view: "env-79 + takeover"},
		{at: at(5), used: 3.15 * mib, nodes: 890, view: "env-79"},
	}
	growth, view, ok := likeForLike(points, func(p heapPoint) float64 { return p.used })
	if !ok || view != "ops-79" && view != "env-79" || math.Abs(growth-0.05) > 1e-9 {
		t.Errorf("heap like for like: %v on %q (%v), want +5%%", growth, view, ok)
	}
	growth, view, ok = likeForLike(points, func(p heapPoint) float64 { return float64(p.nodes) })
	if !ok || view != "ops-79" || growth != 0 {
		t.Errorf("nodes like for like: %v on %q (%v), want 0 on ops-79 (env-79 shrank)", growth, view, ok)
	}
	if _, _, ok := likeForLike(points[:3], func(p heapPoint) float64 { return p.used }); ok {
		t.Error("no view read twice, yet a growth")
	}
	plain, byView, ok := heapSlopes(points, func(p heapPoint) float64 { return p.used })
	// ops-79 grew 0.1 MiB in 3 minutes, env-79 0.15 MiB in 3: 2.5 MiB an
	// hour with one intercept per view.
	if !ok || math.Abs(byView/mib-2.5) > 1e-6 {
		t.Errorf("slope per view %.3f MiB/h (%v), want 2.5", byView/mib, ok)
	}
	if plain == byView {
		t.Error("the plain slope took no account of the views")
	}
}

func TestWallCountViews(t *testing.T) {
	first := pageView{dashboard: "ops-79"}
	views := []pageView{
		{at: 1, dashboard: "dossiers-79"},
		{at: 2, dashboard: "dossiers-79", takeover: "a-1"}, // taken over
		{at: 3, dashboard: "dossiers-79", takeover: "a-2"}, // a more severe one displaces it
		{at: 4, dashboard: "dossiers-79"},                  // over
		{at: 5, dashboard: "env-79"},
		{at: 6, dashboard: "ops-79"},
	}
	if r, tk := countViews(first, views); r != 3 || tk != 2 {
		t.Errorf("%d rotations, %d takeovers; want 3 and 2", r, tk)
	}
	if r, tk := countViews(pageView{dashboard: "ops-79", takeover: "a-1"}, []pageView{{dashboard: "ops-79", takeover: "a-1"}}); r != 0 || tk != 0 {
		t.Errorf("nothing changed, yet %d rotations, %d takeovers", r, tk)
	}
}

func TestWallParseDrained(t *testing.T) {
	raw := `{"samples":[["kpi/79","0000000000000001-00000002","2026-11-22T09:15:04+07:00",1790000000100,1790000000130],` +
		`["map/79/24h","","2026-11-22T09:15:05+07:00",1790000001000,1790000001016]],` +
		`"views":[[1790000000000,"ops-79",""],[1790000002000,"ops-79","alarm-7"]],"dropped":2,"dashboard":"ops-79","takeover":"alarm-7"}`
	d, err := parseDrained(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := pageSample{topic: "kpi/79", version: "0000000000000001-00000002", asOf: "2026-11-22T09:15:04+07:00", received: 1790000000100, painted: 1790000000130}
	if len(d.samples) != 2 || d.samples[0] != want || d.samples[1].topic != "map/79/24h" || d.samples[1].painted != 1790000001016 {
		t.Errorf("samples %+v", d.samples)
	}
	if len(d.views) != 2 || d.views[1] != (pageView{at: 1790000002000, dashboard: "ops-79", takeover: "alarm-7"}) {
		t.Errorf("views %+v", d.views)
	}
	if d.dropped != 2 || d.now.dashboard != "ops-79" || d.now.takeover != "alarm-7" {
		t.Errorf("dropped %d, now %+v", d.dropped, d.now)
	}
	if _, err := parseDrained("null"); err == nil || !strings.Contains(err.Error(), "measure=1") {
		t.Errorf("a page without the hook: %v", err)
	}
	if _, err := parseDrained(`{"samples":[["kpi/79","v","x","late",1]]}`); err == nil {
		t.Error("a sample without its times was read")
	}
}

func TestWallPublications(t *testing.T) {
	p := newPublications("79")
	for _, c := range []struct {
		topic string
		want  bool
	}{{"kpi/79", true}, {"kpi/79/24h", true}, {"map/79", true}, {"map/79/7d", true},
		{"kpi/790", false}, {"kpi/26734", false}, {"alarms/79", false}, {"screen/s1", false}} {
		if got := p.watched(c.topic); got != c.want {
			t.Errorf("watched(%q) = %v, want %v", c.topic, got, c.want)
		}
	}
	p.record(bus.Message{Topic: "kpi/79", Version: "01"})
	p.record(bus.Message{Topic: "events/79", Stream: true})
	p.record(bus.Message{Topic: "kpi/26734", Version: "02"})
	if at := p.times(); len(at) != 1 || at[publicationKey("kpi/79", "01")] == 0 {
		t.Errorf("recorded %v, want kpi/79 version 01 alone", at)
	}
	if got := p.cadence("kpi/79"); got != "0 times" {
		t.Errorf("before the measurement began: %q", got)
	}
}

func TestWallWarm(t *testing.T) {
	playlist := []string{"ops-79", "dossiers-79", "env-79"}
	views := []pageView{
		{at: 100, dashboard: "dossiers-79"},
		{at: 200, dashboard: "env-79"},
		{at: 250, dashboard: "env-79", takeover: "a-1"},
		{at: 300, dashboard: "ops-79"}, // every one shown
		{at: 400, dashboard: "dossiers-79"},
	}
	if at, ok := warmFrom(views, playlist); !ok || at != 300 {
		t.Errorf("warm from %d (%v), want 300", at, ok)
	}
	if _, ok := warmFrom(views[:3], playlist); ok {
		t.Error("warm before ops-79 was shown")
	}
	if _, ok := warmFrom(views, nil); ok {
		t.Error("warm without a playlist")
	}
	points := []heapPoint{{at: 0}, {at: 100 * time.Millisecond}, {at: 250 * time.Millisecond}, {at: time.Second}}
	// The measurement began at 100: readings at 100, 200, 350 and 1100.
	if got := warmPoints(points, 100, 300); len(got) != 2 || got[0].at != 250*time.Millisecond {
		t.Errorf("warm readings %+v, want the last two", got)
	}
	if got := warmPoints(points, 100, 50); len(got) != 4 {
		t.Errorf("warm before the measurement: %d readings, want all 4", len(got))
	}
}

func TestSnapshotSizesSplitsObjectsCodeAndTheBrowsers(t *testing.T) {
	// A heap snapshot's nodes are a flat array of node_fields-sized
	// records; node_types[0] names the types by index.
	snap := `{"snapshot":{"meta":{
		"node_fields":["type","name","id","self_size","edge_count","detachedness"],
		"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic"],"string","number","number","number","number"]},
		"node_count":5},
	"nodes":[9,0,1,0,3,0, 3,1,3,100,0,0, 2,2,5,40,0,0, 4,3,7,64,0,0, 8,4,9,500,0,0],
	"edges":[],"strings":["(root)","Object","s","code","HTMLDivElement"]}`
	objects, code, browser, err := snapshotSizes([]byte(snap))
	if err != nil {
		t.Fatal(err)
	}
	if objects != 140 || code != 64 || browser != 500 {
		t.Errorf("objects %v, code %v, browser %v; want 140, 64, 500", objects, code, browser)
	}
	if _, _, _, err := snapshotSizes([]byte(`{"snapshot":{"meta":{}},"nodes":[1,2]}`)); err == nil {
		t.Error("a snapshot without node types was read")
	}
	if _, _, _, err := snapshotSizes([]byte(strings.Replace(snap, "[9,0,1", "[12,0,1", 1))); err == nil {
		t.Error("a node of an unknown type was read")
	}
}
