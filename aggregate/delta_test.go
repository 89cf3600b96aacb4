package aggregate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
	"github.com/openioc/ioc/rollup"
)

// watchedConn counts the aggregator's queries and can run a hook once a
// query's rows have all been read, before the aggregator goes on: the
// moment a delta arriving "while a check runs" is settled against a read
// that is over.
type watchedConn struct {
	driver.Conn
	mu        sync.Mutex
	windows   int // reads of the live rollups' windows
	balances  int // reads of overdue balances
	afterRead func(query string)
}

func (c *watchedConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	c.mu.Lock()
	switch {
	case strings.Contains(query, "ARRAY JOIN ws"):
		c.windows++
	case strings.Contains(query, "late_open"):
		c.balances++
	}
	hook := c.afterRead
	c.afterRead = nil
	c.mu.Unlock()
	rows, err := c.Conn.Query(ctx, query, args...)
	if err != nil || hook == nil {
		if hook != nil {
			c.mu.Lock()
			c.afterRead = hook
			c.mu.Unlock()
		}
		return rows, err
	}
	return &watchedRows{Rows: rows, done: func() { hook(query) }}, nil
}

func (c *watchedConn) counts() (windows, balances int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.windows, c.balances
}

// onceAfter runs hook once the rows of the next query whose text contains
// what have been read.
func (c *watchedConn) onceAfter(what string, hook func()) {
	var armed func(string)
	armed = func(q string) {
		if strings.Contains(q, what) {
			hook()
			return
		}
		c.mu.Lock()
		c.afterRead = armed
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.afterRead = armed
	c.mu.Unlock()
}

type watchedRows struct {
	driver.Rows
	done func()
	once sync.Once
}

func (r *watchedRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(r.done)
	return err
}

// watchedStore is a store whose connection is watched.
type watchedStore struct {
	*chstore.Store
	conn *watchedConn
}

func (s watchedStore) Conn() driver.Conn { return s.conn }

// watch routes every query of a over s through a watchedConn.
func watch(t *testing.T, a *Aggregator, s *chstore.Store) *watchedConn {
	w := &watchedConn{Conn: s.Conn()}
	r, err := rollup.NewReader(watchedStore{s, w})
	if err != nil {
		t.Fatal(err)
	}
	a.q.rollups = r
	return w
}

// held is a Notifier that keeps deltas instead of passing them on: a delta
// still on its way.
type held struct {
	mu     sync.Mutex
	deltas []rollup.Delta
}

func (h *held) Added(d rollup.Delta) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deltas = append(h.deltas, d)
}

func (h *held) take(t *testing.T) rollup.Delta {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.deltas) != 1 {
		t.Fatalf("held %d deltas, want 1", len(h.deltas))
	}
	d := h.deltas[0]
	h.deltas = nil
	return d
}

// liveCounts are a unit's figures in window w as the live state has them.
func liveCounts(a *Aggregator, w Window, code string) Counts {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, win := range Windows {
		if win == w {
			return a.state.subtree(a.h, i, code, map[string]Counts{})
		}
	}
	panic("unknown window " + w)
}

// checkAgainstRead fails t unless the live state's figures of codes equal,
// in every window, what a fresh read of ClickHouse gives now.
func checkAgainstRead(t *testing.T, a *Aggregator, codes ...string) {
	t.Helper()
	truth, err := a.q.counts(context.Background(), "test", scope{h: a.h}, Windows, a.now(), a.cfg.Location)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range Windows {
		for _, code := range codes {
			got, want := appendKPIs(nil, liveCounts(a, w, code), nil, code), appendKPIs(nil, truth[w][code], nil, code)
			if string(got) != string(want) {
				t.Errorf("%s %s:\n live %s\n read %s", code, w, got, want)
			}
		}
	}
}

// arrival is a dossier received online at at, due three days later.
func arrival(at time.Time, id, area string) row {
	return row{id, "d-" + id, area, "online", "received", at, at.Add(72 * time.Hour)}
}

// A check reads while deltas arrive. Batch A was stored before the check
// and is announced while it reads, B is stored and announced while it
// reads, after the read of its table, and C was stored before and is
// announced only once the check is in. The read has A and C, not B: each
// must count once, settled by the markers of the read.
func TestDeltasCountOnceAgainstAConcurrentCheck(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	a, s, _ := newTestAggregator(t, now)
	conn := watch(t, a, s)
	term := lead(t, a)
	insert(t, s, arrival(now.Add(-3*time.Hour), "before", "26740")) // read by the first check
	if err := a.refresh(ctx, term, "check"); err != nil {
		t.Fatal(err)
	}

	var wait held
	insertTo(t, s, &wait, arrival(now.Add(-time.Hour), "a", "26740"))
	dA := wait.take(t)
	insertTo(t, s, &wait, arrival(now.Add(-2*time.Hour), "c", "26758"))
	dC := wait.take(t)
	conn.onceAfter(rollup.DossierFlowHour, func() {
		a.Added(dA)
		insertTo(t, s, a, arrival(now.Add(-30*time.Minute), "b", "26743"))
	})
	if err := a.refresh(ctx, term, "check"); err != nil {
		t.Fatal(err)
	}
	a.Added(dC)

	for code, want := range map[string]uint64{"26740": 2, "26743": 1, "26758": 1, "79": 4} {
		if got := liveCounts(a, Today, code).Received; got != want {
			t.Errorf("%s: %d received live, want %d", code, got, want)
		}
	}
	checkAgainstRead(t, a, "26740", "26743", "26758", "79")
	// The next check finds nothing the deltas had not produced.
	if err := a.refresh(ctx, term, "check"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(a.m.corrections); got != 0 {
		t.Errorf("%v corrections, want none", got)
	}
}

// A delta of a batch begun long before the check that it arrives after
// cannot be settled by markers: the reconciler may have cancelled them.
// It is not counted on trust; everything is read again instead.
func TestADeltaMarkersCannotSettleIsReadAgain(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	a, s, pub := newTestAggregator(t, now)
	term := lead(t, a)
	var wait held
	insertTo(t, s, &wait, arrival(now.Add(-time.Hour), "old", "26740"))
	d := wait.take(t)
	d.Created = now.Add(-rollup.MarkerLife)
	if err := a.refresh(ctx, term, "check"); err != nil {
		t.Fatal(err)
	}
	pub.Take()
	a.Added(d)
	if err := a.publishDirty(ctx, term); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(a.m.queries.WithLabelValues("recheck")); got == 0 {
		t.Error("no figures read again")
	}
	if got := liveCounts(a, Today, "26740").Received; got != 1 {
		t.Errorf("26740: %d received live, want 1", got)
	}
	if got := pub.Take(); len(got) != 0 {
		t.Errorf("republished %d topics although nothing changed", len(got))
	}
}

// Records stored step by step on a stepped clock, through real writers
// whose deltas reach the aggregator: publishing them reads no window of
// the rollups (only the overdue dossiers of the units a step touched, at
// most once), the published today figures equal what the periodic check
// then reads, and the check corrects nothing.
func TestRecordsAdvanceLiveFiguresWithoutReadingThem(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	a, s, pub := newTestAggregator(t, start)
	a.now = now
	conn := watch(t, a, s)
	term := lead(t, a)
	if err := a.refresh(ctx, term, "check"); err != nil {
		t.Fatal(err)
	}
	pub.Take()

	d := ingest.WriterDeps{Store: s, Leases: lease.NewLocal(), Notify: a, Logger: slog.New(slog.DiscardHandler), Now: now}
	dossiers, err := ingest.NewWriter(ingest.BatchConfig{}, d)
	if err != nil {
		t.Fatal(err)
	}
	cameras, err := ingest.NewCameraWriter(ingest.BatchConfig{}, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	readings, err := ingest.NewReadingWriter(ingest.BatchConfig{}, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{dossiers.Run, cameras.Run, readings.Run} {
		wg.Go(func() { _ = run(runCtx) })
	}
	t.Cleanup(func() { stop(); wg.Wait() })

	communes := []string{"26740", "26743", "26758"}
	const steps = 6
	for k := range steps {
		clock.Add(int64(time.Minute))
		at := now().Add(-5 * time.Minute)
		area := communes[k%len(communes)]
		var ds []ingest.Dossier
		dossier := func(id, status string, when, due time.Time) {
			due = due.UTC()
			ds = append(ds, ingest.Dossier{EventID: id, DossierID: "d-" + id[:strings.IndexByte(id, '.')], Hierarchy: "vn-2025",
				AreaCode: area, Channel: "online", Status: status, OccurredAt: when, DueAt: &due, Digitized: k%2 == 0})
		}
		dossier(fmt.Sprintf("s%d.r", k), "received", at, at.Add(48*time.Hour))
		dossier(fmt.Sprintf("late%d.r", k), "received", at.Add(-24*time.Hour), at.Add(-time.Hour)) // overdue now
		if k > 0 {
			dossier(fmt.Sprintf("s%d.x", k-1), "resolved", at, at.Add(48*time.Hour)) // resolves the previous step's dossier…
			ds[len(ds)-1].DossierID = fmt.Sprintf("d-s%d", k-1)
			ds[len(ds)-1].AreaCode = communes[(k-1)%len(communes)]
		}
		if _, err := dossiers.Write(ctx, ds); err != nil {
			t.Fatal(err)
		}
		if _, err := cameras.Write(ctx, []ingest.CameraEvent{{EventID: fmt.Sprintf("c%d", k), CameraID: "CAM-1", Type: "accident",
			Severity: []string{"warning", "critical"}[k%2], Hierarchy: "vn-2025", AreaCode: area, Lat: 10.77, Lon: 106.7, OccurredAt: at, Attrs: "{}"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := readings.Write(ctx, []ingest.Reading{{EventID: fmt.Sprintf("r%d", k), SensorID: "AQ-1", Kind: "pm25", Value: 20.5 + float64(k)*8.25,
			Hierarchy: "vn-2025", AreaCode: area, Lat: 10.78, Lon: 106.69, ObservedAt: at}}); err != nil {
			t.Fatal(err)
		}
		windows, balances := conn.counts()
		if err := a.publishDirty(ctx, term); err != nil {
			t.Fatal(err)
		}
		w2, b2 := conn.counts()
		if w2 != windows {
			t.Errorf("step %d: publishing the step read the rollups' windows %d times, want 0", k, w2-windows)
		}
		if b2-balances > 1 {
			t.Errorf("step %d: read overdue dossiers %d times, want at most once", k, b2-balances)
		}
		// What screens got is what a check reads.
		published := pub.Take()
		truth, err := a.q.counts(ctx, "test", scope{h: a.h}, []Window{Today}, now(), a.cfg.Location)
		if err != nil {
			t.Fatal(err)
		}
		for _, code := range []string{area, "79"} {
			snaps := published["kpi/"+code]
			if len(snaps) != 1 {
				t.Fatalf("step %d: kpi/%s published %d times, want once", k, code, len(snaps))
			}
			got, _ := json.Marshal(snaps[0].KPIs)
			var want map[string]any
			_ = json.Unmarshal(appendKPIs(nil, truth[Today][code], nil, code), &want)
			if w, _ := json.Marshal(want); string(got) != string(w) {
				t.Errorf("step %d: kpi/%s published\n %s\nwant what a read gives\n %s", k, code, got, w)
			}
		}
		if err := a.refresh(ctx, term, "check"); err != nil {
			t.Fatal(err)
		}
		for topic := range pub.Take() {
			if !strings.Contains(strings.TrimPrefix(strings.TrimPrefix(topic, "kpi/"), "map/"), "/") {
				t.Errorf("step %d: the check republished %s: the deltas had left its today figures wrong", k, topic)
			}
		}
		if got := testutil.ToFloat64(a.m.corrections); got != 0 {
			t.Fatalf("step %d: the check corrected %v units, want none", k, got)
		}
	}
	if got := testutil.ToFloat64(a.m.queries.WithLabelValues("check")); got != float64((steps+1)*(len(rollup.Live)+1)) {
		t.Errorf("%v check queries, want %d: one per family and the overdue balance, per check", got, (steps+1)*(len(rollup.Live)+1))
	}
}

// A delta that never arrives (a forwarded message lost) is corrected by
// the checks and counted; one that arrives after a check that read its rows
// is not a correction.
func TestChecksCountWhatDeltasMissed(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	a, s, _ := newTestAggregator(t, now)
	term := lead(t, a)
	if err := a.refresh(ctx, term, "check"); err != nil {
		t.Fatal(err)
	}
	// On its way: read by the check before it arrives.
	var wait held
	insertTo(t, s, &wait, arrival(now.Add(-time.Hour), "late", "26740"))
	if err := a.refresh(ctx, term, "check"); err != nil {
		t.Fatal(err)
	}
	a.Added(wait.take(t))
	if err := a.refresh(ctx, term, "check"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(a.m.corrections); got != 0 {
		t.Fatalf("a delta on its way counted as %v corrections, want none", got)
	}
	// Lost: the check after the one that read its rows counts it.
	insert(t, s, arrival(now.Add(-time.Hour), "lost", "26743"))
	for range 2 {
		if err := a.refresh(ctx, term, "check"); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(a.m.corrections); got != 1 {
		t.Errorf("a lost delta counted as %v corrections, want 1 (its commune)", got)
	}
	checkAgainstRead(t, a, "26740", "26743", "79")
}

// fakeTimer stands for the debounce's timer: it records what was asked and
// fires when the test says so.
type fakeTimer struct {
	mu    sync.Mutex
	asked []time.Duration
	fire  chan time.Time
}

func (f *fakeTimer) after(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, d)
	return f.fire
}

func (f *fakeTimer) calls() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.asked...)
}

// Changed units are published at most once per Debounce: what arrives
// within it waits, and goes out together.
func TestPublicationsAreDebounced(t *testing.T) {
	start := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(start.UnixNano())
	s := testenv.Store(t)
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	b := &recordingBus{Memory: bus.NewMemory()}
	a, err := New(Config{Location: hcm, RefreshInterval: time.Hour}, s, reg, b, lease.NewLocal(), nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	timer := &fakeTimer{fire: make(chan time.Time)}
	a.now = func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	a.after = timer.after
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, "every topic published", func() bool { m, _ := latest(t, b, TermTopic); return m.Version != "" })
	publications := func(topic string) int {
		b.mu.Lock()
		defer b.mu.Unlock()
		n := 0
		for _, at := range b.attempts {
			if at.topic == topic {
				n++
			}
		}
		return n
	}
	before := publications("kpi/26740")

	insertTo(t, s, a, arrival(start.Add(-time.Hour), "e1", "26740"))
	waitUntil(t, "the publication to wait for the debounce", func() bool { return len(timer.calls()) == 1 })
	insertTo(t, s, a, arrival(start.Add(-time.Hour), "e2", "26740"))
	if got := publications("kpi/26740") - before; got != 0 {
		t.Fatalf("kpi/26740 published %d times within the debounce, want 0", got)
	}
	timer.fire <- time.Time{}
	waitUntil(t, "both records published", func() bool { _, snap := latest(t, b, "kpi/26740"); return received(snap) == 2 })
	if got := publications("kpi/26740") - before; got != 1 {
		t.Errorf("kpi/26740 published %d times for two flushes within the debounce, want once", got)
	}
	if got := timer.calls(); got[0] != time.Second {
		t.Errorf("waited %v, want the default debounce of 1s", got[0])
	}

	// A second later, the next change goes out at once.
	clock.Add(int64(time.Second))
	insertTo(t, s, a, arrival(start.Add(-time.Hour), "e3", "26740"))
	waitUntil(t, "the third record published", func() bool { _, snap := latest(t, b, "kpi/26740"); return received(snap) == 3 })
	if got := len(timer.calls()); got != 1 {
		t.Errorf("waited %d times, want once", got)
	}
}

// A node that does not hold the lease forwards its writers' deltas to the
// one that does, in bounded messages; the holder publishes them without
// reading the rollups.
func TestDeltasOfOtherNodesReachTheHolderInBoundedMessages(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	s := testenv.Store(t)
	b := &recordingBus{Memory: bus.NewMemory()}
	leases := lease.NewLocal()
	one := startLive(t, s, b, leases, now)
	two := startLive(t, s, b, leases, now)
	route(t, b, one, two)
	waitUntil(t, "a node to publish every topic", func() bool { m, _ := latest(t, b, TermTopic); return m.Version != "" })
	leader, follower := one, two
	if !one.a.leading.Load() {
		leader, follower = two, one
	}
	conn := watch(t, leader.a, s)
	var (
		mu    sync.Mutex
		sizes []int
	)
	sub, err := b.Subscribe(context.Background(), func(m bus.Message) {
		if m.Topic == DeltaTopic {
			mu.Lock()
			defer mu.Unlock()
			var d deltaMessage
			if err := json.Unmarshal(m.Payload, &d); err != nil {
				t.Error(err)
			}
			n := 0
			for _, x := range d.Deltas {
				n += x.Rows()
			}
			sizes = append(sizes, n)
		}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	insertTo(t, s, follower.a, arrival(now.Add(-time.Hour), "e1", "26740"))
	waitUntil(t, "the forwarded record to be published", func() bool { _, snap := latest(t, b, "kpi/26740"); return received(snap) == 1 })
	if w, _ := conn.counts(); w != 0 {
		t.Errorf("the holder read the rollups' windows %d times to publish a forwarded delta, want 0", w)
	}

	// A batch touching many units is forwarded in several messages, none
	// over the bound, and counts whole.
	big := rollup.Delta{Kind: "dossier", Batch: 42, Created: now}
	tb := rollup.Table{Name: rollup.DossierFlowHour, Marked: true, Ints: rollup.DossierFlowFamily.Ints}
	codes := follower.a.h.ChildCodes("79")
	for i := range 2500 {
		ints := make([]int64, len(tb.Ints))
		ints[0] = 1
		tb.Rows = append(tb.Rows, rollup.Row{Hierarchy: "vn-2025", Area: codes[i%len(codes)], Bucket: now.Add(-time.Duration(i%5) * time.Hour).Truncate(time.Hour), Ints: ints})
	}
	big.Tables = []rollup.Table{tb}
	mu.Lock()
	sizes = nil
	mu.Unlock()
	follower.a.Added(big)
	waitUntil(t, "the big batch to be published", func() bool { _, snap := latest(t, b, "kpi/79"); return received(snap) == 2501 })
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range sizes {
		total += n
		if n > maxForwardRows {
			t.Errorf("a message carried %d rows, want at most %d", n, maxForwardRows)
		}
	}
	if total != 2500 || len(sizes) != 3 {
		t.Errorf("forwarded %d rows in %d messages, want 2500 in 3", total, len(sizes))
	}
}
