package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/testenv"
)

// peerEnv makes this test binary the centrifuge peer of TestLiveSmoke.
const peerEnv = "IOCBENCH_TEST_LIVE_PEER"

func TestMain(m *testing.M) {
	if os.Getenv(peerEnv) == "1" {
		if err := runLivePeer(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "live-peer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(testenv.Main(m))
}

func TestLivePayload(t *testing.T) {
	for _, size := range []int{80, 300, 1000} {
		p := livePayload(123456789, 1_790_000_000_123_456_789, size)
		if len(p) != size {
			t.Errorf("payload of %d bytes asked, got %d: %s", size, len(p), p)
		}
		var v map[string]any
		if err := json.Unmarshal(p, &v); err != nil {
			t.Fatalf("payload is not a JSON object: %v: %s", err, p)
		}
		// Inside any envelope, as the hub and centrifuge wrap it.
		frame := []byte(`{"type":"update","topic":"events/79","epoch":"00aa","offset":7,"data":` + string(p) + `}`)
		seq, ts, ok := payloadNumbers(frame)
		if !ok || seq != 123456789 || ts != 1_790_000_000_123_456_789 {
			t.Errorf("payloadNumbers = %d, %d, %v", seq, ts, ok)
		}
	}
	if _, _, ok := payloadNumbers([]byte(`{"type":"update","data":{"id":"cam-1"}}`)); ok {
		t.Error("a frame without a benchmark payload was read as one")
	}
}

func TestLiveSeqTracker(t *testing.T) {
	tr := newSeqTracker(101, 70) // messages 101..170
	for _, s := range []uint64{101, 102, 102, 104, 170, 171, 100, 165, 104, 104} {
		tr.add(s)
	}
	if tr.got != 5 || tr.dup != 3 || tr.stray != 2 || tr.lost() != 65 {
		t.Fatalf("got %d dup %d stray %d lost %d, want 5, 3, 2, 65", tr.got, tr.dup, tr.stray, tr.lost())
	}
	if !tr.add(103) || tr.add(103) {
		t.Fatal("add must say true for a new message only")
	}
	all := newSeqTracker(1, 200)
	for s := uint64(200); s >= 1; s-- {
		all.add(s)
	}
	if all.lost() != 0 || all.dup != 0 || all.got != 200 {
		t.Fatalf("every message once, in reverse: got %d dup %d lost %d", all.got, all.dup, all.lost())
	}
}

func TestLiveNearestRank(t *testing.T) {
	var v []int32
	for i := int32(1); i <= 100; i++ {
		v = append(v, i)
	}
	for _, c := range []struct {
		p    float64
		want int32
	}{{50, 50}, {99, 99}, {99.5, 100}, {100, 100}, {1, 1}, {0.1, 1}} {
		if got := nearestRank(v, c.p); got != c.want {
			t.Errorf("p%g of 1..100 = %d, want %d", c.p, got, c.want)
		}
	}
	if got := nearestRank([]int32{7, 9, 30}, 50); got != 9 {
		t.Errorf("p50 of 7, 9, 30 = %d, want 9", got)
	}
	if got := nearestRank([]int32{7, 9, 30}, 99); got != 30 {
		t.Errorf("p99 of 7, 9, 30 = %d, want 30", got)
	}
	if got := nearestRank(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %d, want 0", got)
	}
}

func TestLiveProcParsing(t *testing.T) {
	// A command name with spaces and parentheses; utime 250, stime 130 ticks.
	stat := []byte("4242 (iocd (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 130 0 0 20 0 12 0 555 1000000 2000 18446744073709551615\n")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3800*time.Millisecond {
		t.Fatalf("parseStatCPU = %v, %v; want 3.8s", cpu, err)
	}
	if _, err := parseStatCPU([]byte("4242 (iocd) S 1 2")); err == nil {
		t.Fatal("a truncated stat line was accepted")
	}
	status := []byte("Name:\tiocd\nVmPeak:\t  900000 kB\nVmRSS:\t  123456 kB\nRssAnon:\t 100000 kB\n")
	rss, err := parseStatusRSS(status)
	if err != nil || rss != 123456*1024 {
		t.Fatalf("parseStatusRSS = %d, %v; want %d", rss, err, 123456*1024)
	}
	if _, err := parseStatusRSS([]byte("Name:\tkthreadd\n")); err == nil {
		t.Fatal("a status without VmRSS was accepted")
	}
	// This process's own entries read back.
	if _, err := processCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if rss, err := processRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Fatalf("processRSS of this process = %d, %v", rss, err)
	}
}

// The client takes both the hub of before issue 14 (a per-subscription
// "seq", no offsets) and that of live protocol v2 (epoch, offset, version,
// fields it does not know), and centrifuge's replies and pushes, several
// to a frame.
func TestLiveClientFrames(t *testing.T) {
	now := time.Unix(1_790_000_000, 0)
	p := func(seq uint64) string { return string(livePayload(seq, now.Add(-3*time.Millisecond).UnixNano(), 120)) }

	r := &liveRun{proto: protoHub, start: now.Add(-time.Second)}
	c := &liveClient{track: newSeqTracker(1, 4)}
	for _, m := range []string{
		`{"type":"snapshot","topic":"events/79","seq":1,"data":{"events":[]}}`,
		`{"type":"update","topic":"events/79","seq":2,"data":` + p(1) + `}`,
		`{"type":"update","topic":"events/79","epoch":"0123456789abcdef","offset":12,"data":` + p(2) + `,"new_field":true}`,
		`{"topic":"events/79","type":"update","offset":13,"data":` + p(3) + `}`, // another layout
		`{"type":"update","topic":"events/79","offset":13,"data":` + p(3) + `}`, // again
		`{"type":"reconnect","after_ms":1234}`,
		`{"type":"snapshot","topic":"events/79","epoch":"0123456789abcdef","offset":13,"gap":true,"data":{}}`,
		`{"type":"error","topic":"events/79","error":"storage is slow","retrying":true}`,
	} {
		if err := r.hubMessage(c, []byte(m), now); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	if c.current != time.Second || r.current.Load() != 1 || c.resnaps != 1 {
		t.Errorf("current %v (%d clients), further snapshots %d; want 1s, 1, 1", c.current, r.current.Load(), c.resnaps)
	}
	if c.track.got != 3 || c.track.dup != 1 || c.track.lost() != 1 || r.delivered.Load() != 3 || c.errs != 1 {
		t.Errorf("got %d dup %d lost %d delivered %d errors %d; want 3, 1, 1, 3, 1", c.track.got, c.track.dup, c.track.lost(), r.delivered.Load(), c.errs)
	}
	for _, l := range c.lat {
		if l != 3000 {
			t.Errorf("latency %d µs, want 3000", l)
		}
	}
	refused := &liveClient{track: newSeqTracker(1, 4)}
	if err := r.hubMessage(refused, []byte(`{"type":"error","topic":"events/1","error":"your token does not cover area 1"}`), now); err == nil {
		t.Error("a refused subscription was not reported")
	}

	r = &liveRun{proto: protoCentrifuge, start: now.Add(-time.Second)}
	c = &liveClient{track: newSeqTracker(1, 4)}
	frame := `{"id":1,"connect":{"client":"x","version":"0.40.1","ping":25,"pong":true}}` + "\n" +
		`{"id":2,"subscribe":{"recoverable":false,"epoch":"abcd","offset":3,"positioned":true}}` + "\n" +
		`{"push":{"channel":"events/79","pub":{"data":` + p(1) + `,"offset":4}}}` + "\n" +
		`{"push":{"channel":"events/79","pub":{"offset":5,"data":` + p(2) + `}}}`
	var replies []string
	for line := range strings.SplitSeq(frame, "\n") {
		reply, err := r.centrifugeMessage(c, []byte(line), now)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if reply != nil {
			replies = append(replies, string(reply))
		}
	}
	if reply, _ := r.centrifugeMessage(c, []byte("{}"), now); string(reply) != "{}" {
		t.Errorf("ping answered %q, want {}", reply)
	}
	if len(replies) != 0 || c.current != time.Second || c.track.got != 2 || c.track.dup != 0 {
		t.Errorf("replies %q, current %v, got %d dup %d; want none, 1s, 2, 0", replies, c.current, c.track.got, c.track.dup)
	}
	if _, err := r.centrifugeMessage(c, []byte(`{"id":2,"error":{"code":103,"message":"permission denied"}}`), now); err == nil {
		t.Error("a refused subscription was not reported")
	}
}

// readInto reads a whole websocket message, larger than the buffer too.
func TestLiveReadInto(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789"), 500)
	got, err := readInto(make([]byte, 0, 16), bytes.NewReader(want))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("readInto: %d bytes, %v", len(got), err)
	}
}

var (
	benchIOCDOnce sync.Once
	benchIOCD     string
	benchIOCDErr  error
)

// TestLiveSmoke runs the whole benchmark small: both sides, real servers,
// and checks its counts, never its timings.
func TestLiveSmoke(t *testing.T) {
	benchIOCDOnce.Do(func() {
		dir, err := testenv.TempDir("iocbench-live-iocd-")
		if err != nil {
			benchIOCDErr = err
			return
		}
		benchIOCD = filepath.Join(dir, "iocd")
		out, err := exec.Command("go", "build", "-o", benchIOCD, "github.com/openioc/ioc/cmd/iocd").CombinedOutput()
		if err != nil {
			benchIOCDErr = fmt.Errorf("go build iocd: %w\n%s", err, out)
		}
	})
	if benchIOCDErr != nil {
		t.Fatal(benchIOCDErr)
	}
	const clients, messages = 50, 20
	var out bytes.Buffer
	dir := t.TempDir()
	o := liveOptions{
		clients: clients, concurrency: 16, messages: messages, rate: 10, payload: 300, rounds: 2,
		sides: "iocd,centrifuge", topic: "events/79",
		// Long limits: the phases end when the counts are reached.
		connectTimeout: 3 * time.Minute, drain: 2 * time.Minute,
		iocd: benchIOCD, dir: dir, chAddr: testenv.ClickHouseAddr(t), db: testenv.Database(t), redisAddr: testenv.RedisAddr(t),
		prefix: "iocbench-test-" + filepath.Base(dir), history: 100,
		peer: []string{os.Args[0]}, peerEnv: append(os.Environ(), peerEnv+"=1"),
		out: &out,
	}
	results, err := liveBenchmark(context.Background(), o)
	t.Log("\n" + out.String())
	if err != nil {
		for _, f := range []string{"iocd.log", "centrifuge.log"} {
			b, _ := os.ReadFile(filepath.Join(dir, f))
			t.Logf("%s:\n%s", f, b)
		}
		t.Fatal(err)
	}
	if len(results) != 4 {
		t.Fatalf("%d results, want 2 rounds × 2 sides", len(results))
	}
	seen := map[string]int{}
	for _, r := range results {
		seen[r.side]++
		if r.current != clients || r.failed != 0 {
			t.Errorf("round %d %s: %d of %d clients got their first message, %d failed: %v", r.round, r.side, r.current, clients, r.failed, r.firstErrors)
		}
		if r.lost != 0 || r.dup != 0 || r.stray != 0 || r.deliveries != clients*messages {
			t.Errorf("round %d %s: %d deliveries, %d lost, %d duplicated, %d of another round; want %d, 0, 0, 0",
				r.round, r.side, r.deliveries, r.lost, r.dup, r.stray, clients*messages)
		}
	}
	if seen["iocd"] != 2 || seen["centrifuge"] != 2 {
		t.Errorf("sides measured: %v", seen)
	}
	if order := []string{results[0].side, results[2].side}; order[0] == order[1] {
		t.Errorf("rounds began with %v: the order must alternate", order)
	}
	for _, want := range []string{"| measure (50 clients", "| deliveries per CPU-second of the server process |", "target: no message of the stream topic lost or duplicated: met", "machine: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// The clients' hot path, run 100,000 times a second at 10,000 clients on
// the machine that runs the servers, allocates nothing.
func TestLiveDeliveryAllocatesNothing(t *testing.T) {
	r := &liveRun{proto: protoHub, start: time.Now()}
	c := &liveClient{track: newSeqTracker(1, 1000), lat: make([]int32, 0, 1000)}
	frame := []byte(`{"type":"update","topic":"events/79","epoch":"0123456789abcdef","offset":12,"data":` + string(livePayload(5, time.Now().UnixNano(), 300)) + `}`)
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() { _ = r.hubMessage(c, frame, now) }); n != 0 {
		t.Errorf("an update costs %.1f allocations", n)
	}
	if c.track.got != 1 || c.track.dup < 100 {
		t.Errorf("got %d dup %d", c.track.got, c.track.dup)
	}
}
