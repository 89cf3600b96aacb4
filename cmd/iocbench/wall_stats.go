package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The pure parts of iocbench wall: CPU time of a process tree and of the
// machine from /proc, the join of the page's samples with the bus's
// publications, percentiles, least-squares slopes, and the counting of
// rotations and takeovers. wall_test.go tests them on fixed inputs.

// procStat is what iocbench wall reads of one process's /proc/<pid>/stat.
type procStat struct {
	pid, ppid int
	// cpu is utime+stime+cutime+cstime: the process's own CPU time and
	// that of its children that have exited and been waited for, so that
	// a renderer or helper that ends during the run keeps counting in its
	// parent's figures.
	cpu time.Duration
}

// parseProcStat reads a /proc/<pid>/stat line. The command name (field 2)
// is in parentheses and may hold spaces and parentheses itself, so fields
// are counted from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	open := bytes.IndexByte(b, '(')
	i := bytes.LastIndexByte(b, ')')
	if open < 1 || i < open {
		return procStat{}, fmt.Errorf("read /proc stat: no command name in %q", trim(b, 80))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("read /proc stat: pid %q: %w", trim(b[:open], 20), err)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), f[1] field 4 (ppid); utime, stime, cutime
	// and cstime are fields 14–17: f[11]–f[14].
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("read /proc stat: %d fields after the command name, want at least 15", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("read /proc stat: ppid %q: %w", f[1], err)
	}
	var ticks int64
	for _, s := range f[11:15] {
		// cutime and cstime are signed in the kernel's format.
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("read /proc stat: CPU time %q is not a tick count", s)
		}
		ticks += v
	}
	return procStat{pid: pid, ppid: ppid, cpu: time.Duration(ticks) * time.Second / userHZ}, nil
}

// readProcs reads the stat of every process; one that ends while it reads
// is left out.
func readProcs() (map[int]procStat, error) {
	paths, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	out := make(map[int]procStat, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone
		}
		st, err := parseProcStat(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out[st.pid] = st
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read /proc: no process found (is /proc mounted?)")
	}
	return out, nil
}

// treeCPU is the CPU time of root and of every process under it.
func treeCPU(procs map[int]procStat, root int) (cpu time.Duration, n int) {
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	if _, ok := procs[root]; !ok {
		return 0, 0
	}
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		cpu += procs[pid].cpu
		n++
		queue = append(queue, children[pid]...)
	}
	return cpu, n
}

// machineTicks are the first line of /proc/stat: every core's time, and
// the part of it spent busy (neither idle nor waiting for I/O).
type machineTicks struct{ busy, total uint64 }

func parseMachineTicks(b []byte) (machineTicks, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return machineTicks{}, fmt.Errorf("read /proc/stat: first line %q is not the machine's cpu line", trim(line, 80))
	}
	var t machineTicks
	// user nice system idle iowait irq softirq steal [guest guest_nice]:
	// guest time is already counted in user, so it stops at steal.
	for i, s := range f[1:min(len(f), 9)] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return machineTicks{}, fmt.Errorf("read /proc/stat: %q is not a tick count", s)
		}
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	return t, nil
}

func readMachineTicks() (machineTicks, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTicks{}, err
	}
	return parseMachineTicks(b)
}

// busyShare is the share of the machine's cores that were busy between a
// and b.
func busyShare(a, b machineTicks) float64 {
	if b.total <= a.total {
		return 0
	}
	return float64(b.busy-a.busy) / float64(b.total-a.total)
}

// pageSample is one update a page painted: its topic and version, the
// as_of its figures carry, when the page had handed it to its widgets and
// when the frame showing it was rendered (Unix milliseconds, the page's
// Date.now()).
type pageSample struct {
	topic, version, asOf string
	received, painted    int64
}

// latencies are the delays of a page's samples, in milliseconds.
type latencies struct {
	publish   []int32 // bus publication → painted
	asOf      []int32 // as_of → painted
	render    []int32 // handed to the widgets → painted
	unmatched int     // samples whose publication the bus subscriber did not see
}

// joinLatencies measures each sample from its publication (published:
// topic and version → Unix milliseconds when the bus delivered it) and
// from its as_of.
func joinLatencies(samples []pageSample, published map[string]int64) latencies {
	var l latencies
	for _, s := range samples {
		l.render = append(l.render, clampMS(s.painted-s.received))
		if t, err := time.Parse(time.RFC3339Nano, s.asOf); err == nil {
			l.asOf = append(l.asOf, clampMS(s.painted-t.UnixMilli()))
		}
		at, ok := published[publicationKey(s.topic, s.version)]
		if !ok {
			l.unmatched++
			continue
		}
		l.publish = append(l.publish, clampMS(s.painted-at))
	}
	return l
}

func publicationKey(topic, version string) string { return topic + "\x00" + version }

func clampMS(v int64) int32 { return int32(max(math.MinInt32, min(v, math.MaxInt32))) }

// quantiles are p50, p95 and p99 by nearest rank, and the largest; it
// sorts v.
func quantiles(v []int32) (p50, p95, p99, most int32) {
	if len(v) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(v)
	return nearestRank(v, 50), nearestRank(v, 95), nearestRank(v, 99), v[len(v)-1]
}

// heapPoint is one reading of a page's JS heap after a forced collection,
// with what the page showed then.
type heapPoint struct {
	at   time.Duration // since the measurement began
	used float64       // bytes: V8's whole heap (Runtime.getHeapUsage)
	// objects and code split the page's heap snapshot (bytes): the
	// objects the page's scripts hold, which a leak grows, and the code
	// V8 compiled, which grows while hot functions are optimised and is
	// bounded by the page's code; what is left is the browser's own
	// (DOM, the performance timeline, the DevTools agent's buffers).
	objects, code float64
	nodes         int64 // DOM nodes of the renderer
	// view is the dashboard shown, and " + takeover" while an alarm took
	// the screen over: readings compare like for like only within a view.
	view string
}

// slope is the least-squares slope of y over x; ok is false with fewer
// than two distinct x.
func slope(x, y []float64) (s float64, ok bool) {
	return groupedSlope(x, y, make([]string, len(x)))
}

// groupedSlope is the least-squares slope of y over x with one intercept
// per group: each group's points are taken about their own means, so that
// a page that holds more on one dashboard than on another is not seen
// growing when the rotation happens to end on the larger one. A group of
// one point says nothing of a slope and drops out.
func groupedSlope(x, y []float64, group []string) (s float64, ok bool) {
	type acc struct{ n, sx, sy float64 }
	means := map[string]*acc{}
	for i := range x {
		a := means[group[i]]
		if a == nil {
			a = &acc{}
			means[group[i]] = a
		}
		a.n++
		a.sx += x[i]
		a.sy += y[i]
	}
	var sxy, sxx float64
	for i := range x {
		a := means[group[i]]
		dx := x[i] - a.sx/a.n
		sxy += dx * (y[i] - a.sy/a.n)
		sxx += dx * dx
	}
	if sxx == 0 {
		return 0, false
	}
	return sxy / sxx, true
}

// heapSlopes are the growth of value (bytes) an hour over points: plain,
// and with one intercept per view; ok is false when no view was read
// twice.
func heapSlopes(points []heapPoint, value func(heapPoint) float64) (plain, byView float64, ok bool) {
	x := make([]float64, len(points))
	y := make([]float64, len(points))
	g := make([]string, len(points))
	for i, p := range points {
		x[i], y[i], g[i] = p.at.Hours(), value(p), p.view
	}
	plain, _ = slope(x, y)
	byView, ok = groupedSlope(x, y, g)
	return plain, byView, ok
}

// likeForLike is the largest growth, as a fraction, of value from the
// first reading of a view to its last, over the views read at least
// twice, and that view; ok is false when none was.
func likeForLike(points []heapPoint, value func(heapPoint) float64) (growth float64, view string, ok bool) {
	first, last := map[string]heapPoint{}, map[string]heapPoint{}
	var order []string
	for _, p := range points {
		if _, seen := first[p.view]; !seen {
			first[p.view] = p
			order = append(order, p.view)
			continue
		}
		last[p.view] = p
	}
	for _, v := range order {
		l, twice := last[v]
		if !twice || value(first[v]) <= 0 {
			continue
		}
		g := value(l)/value(first[v]) - 1
		if !ok || g > growth {
			growth, view, ok = g, v, true
		}
	}
	return growth, view, ok
}

// pageView is a change of what a page shows: its dashboard and the alarm
// taking it over (empty for none), at a Unix millisecond.
type pageView struct {
	at                  int64
	dashboard, takeover string
}

// countViews counts, from what the page showed when the measurement began,
// the times it moved to another dashboard (the rotation, or the server
// moving it on) and the takeovers that began.
func countViews(first pageView, views []pageView) (rotations, takeovers int) {
	last := first
	for _, v := range views {
		if v.dashboard != "" && v.dashboard != last.dashboard {
			rotations++
		}
		if v.takeover != "" && v.takeover != last.takeover {
			takeovers++
		}
		if v.dashboard != "" {
			last.dashboard = v.dashboard
		}
		last.takeover = v.takeover
	}
	return rotations, takeovers
}

// warmFrom is when a page had shown every dashboard of its playlist at
// least once (Unix ms), from the views it recorded since it opened: before
// that, each first showing fills caches and compiles code that stay (the
// units' names, the boundaries, the widgets' code), growth that says
// nothing of a leak. ok is false while a dashboard was never shown.
func warmFrom(views []pageView, dashboards []string) (at int64, ok bool) {
	left := map[string]bool{}
	for _, d := range dashboards {
		left[d] = true
	}
	if len(left) == 0 {
		return 0, false
	}
	for _, v := range views {
		delete(left, v.dashboard)
		if len(left) == 0 {
			return v.at, true
		}
	}
	return 0, false
}

// warmPoints are the readings taken once the page was warm (from is Unix
// ms, start the Unix ms of the measurement's beginning).
func warmPoints(points []heapPoint, start, from int64) []heapPoint {
	var out []heapPoint
	for _, p := range points {
		if start+p.at.Milliseconds() >= from {
			out = append(out, p)
		}
	}
	return out
}

// snapshotSizes sums the self sizes of a V8 heap snapshot's nodes (the
// JSON of HeapProfiler.takeHeapSnapshot) into the page's objects, the
// compiled code, and the browser's own objects: nodes of type "native" and
// "synthetic" (DOM, timeline entries, agents' buffers, and the roots).
func snapshotSizes(data []byte) (objects, code, browser float64, err error) {
	var snap struct {
		Snapshot struct {
			Meta struct {
				NodeFields []string          `json:"node_fields"`
				NodeTypes  []json.RawMessage `json:"node_types"`
			} `json:"meta"`
		} `json:"snapshot"`
		Nodes []int64 `json:"nodes"`
	}
	if err := json.Unmarshal(data, &snap); err != nil {
		return 0, 0, 0, fmt.Errorf("read heap snapshot: %w", err)
	}
	meta := snap.Snapshot.Meta
	typeAt, sizeAt := slices.Index(meta.NodeFields, "type"), slices.Index(meta.NodeFields, "self_size")
	var types []string
	if len(meta.NodeTypes) > 0 {
		_ = json.Unmarshal(meta.NodeTypes[0], &types)
	}
	stride := len(meta.NodeFields)
	if typeAt < 0 || sizeAt < 0 || len(types) == 0 || len(snap.Nodes)%stride != 0 {
		return 0, 0, 0, errors.New("read heap snapshot: no node types and self sizes in its meta")
	}
	for i := 0; i < len(snap.Nodes); i += stride {
		t, size := snap.Nodes[i+typeAt], float64(snap.Nodes[i+sizeAt])
		if t < 0 || int(t) >= len(types) {
			return 0, 0, 0, fmt.Errorf("read heap snapshot: node type %d of %d", t, len(types))
		}
		switch types[t] {
		case "code":
			code += size
		case "native", "synthetic":
			browser += size
		default:
			objects += size
		}
	}
	return objects, code, browser, nil
}
