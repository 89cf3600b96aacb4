package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

// errInjected is the failure a faultyConn makes.
var errInjected = errors.New("injected failure: connection reset")

// fault fails the nth insert into table, the way a ClickHouse in trouble
// at that moment fails it: before the server takes it (refused), after it
// landed with the answer lost (lost), or with the answer lost while the
// insert still runs on the server and lands later (late): just after the
// next statement anyone reads with, unless that statement waits for it.
type fault struct {
	table string
	nth   int // which insert into table fails: 1 for the first
	lost  bool
	late  bool
}

// faultyConn fails one insert into one table; every other statement runs.
type faultyConn struct {
	driver.Conn
	db    string
	fault fault

	mu   sync.Mutex
	seen int
	// pending is the late insert not landed yet: closing release sends it,
	// landed closes once it is in.
	pending *lateInsert
}

type lateInsert struct {
	release, landed chan struct{}
}

func (c *faultyConn) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.HasPrefix(query, "INSERT INTO "+c.db+"."+c.fault.table+" (") {
		if c.seen++; c.seen == c.fault.nth {
			if c.fault.late {
				// The server runs the insert whatever becomes of the
				// writer's context: it was sent.
				b, err := c.Conn.PrepareBatch(context.WithoutCancel(ctx), query, opts...)
				if err != nil {
					return nil, err
				}
				c.pending = &lateInsert{release: make(chan struct{}), landed: make(chan struct{})}
				return &faultyBatch{Batch: b, late: c.pending}, nil
			}
			b, err := c.Conn.PrepareBatch(ctx, query, opts...)
			if err != nil {
				return nil, err
			}
			return &faultyBatch{Batch: b, lost: c.fault.lost}, nil
		}
	}
	return c.Conn.PrepareBatch(ctx, query, opts...)
}

// read runs after each statement that reads: a late insert lands right
// after it, once it has read — unless it waits for the insert to end, by
// asking the server which queries run.
func (c *faultyConn) read(query string) {
	c.mu.Lock()
	p := c.pending
	if p != nil {
		c.pending = nil
	}
	c.mu.Unlock()
	if p == nil {
		return
	}
	close(p.release)
	if !strings.Contains(query, "system.processes") {
		<-p.landed
	}
}

func (c *faultyConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	rows, err := c.Conn.Query(ctx, query, args...)
	c.read(query)
	return rows, err
}

func (c *faultyConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	row := c.Conn.QueryRow(ctx, query, args...)
	c.read(query)
	return row
}

type faultyBatch struct {
	driver.Batch
	lost bool
	late *lateInsert
}

func (b *faultyBatch) Send() error {
	if b.late != nil {
		go func() {
			defer close(b.late.landed)
			<-b.late.release
			_ = b.Batch.Send()
		}()
		return errInjected
	}
	if !b.lost {
		b.Batch.Abort()
		return errInjected
	}
	if err := b.Batch.Send(); err != nil {
		return err
	}
	return errInjected
}

// runWriter runs a writer until the test ends.
func runWriter(t *testing.T, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func deps(store *chstore.Store, rec Recoverer) WriterDeps {
	return WriterDeps{Store: store, Leases: lease.NewLocal(), Recover: rec, Logger: slog.New(slog.DiscardHandler)}
}

// someDossiers are events of three dossiers spread over two local days:
// receipts, a supplement request, resolutions on time and late, and a
// dossier still open that turns late after its deadline.
func someDossiers(t *testing.T, prefix string) []Dossier {
	t.Helper()
	var out []Dossier
	ev := func(dossierID, id, area, status, occurred, received, due string) {
		e := DossierEvent{EventID: prefix + dossierID + "-" + id, DossierID: prefix + dossierID, ProcedureCode: "1.004227", Sector: "land",
			AreaCode: area, Channel: "online", Status: status, OccurredAt: occurred, ReceivedAt: received, DueAt: due, Digitized: true}
		d, err := testRules.Validate(e, testNow)
		if err != nil {
			t.Fatalf("event %s: %v", id, err)
		}
		out = append(out, d)
	}
	ev("d1", "1", "26740", "received", "2026-11-19T08:00:00+07:00", "", "2026-11-20T17:00:00+07:00")
	ev("d1", "2", "26740", "supplement_requested", "2026-11-19T10:00:00+07:00", "", "2026-11-20T17:00:00+07:00")
	ev("d1", "3", "26740", "processing", "2026-11-21T08:00:00+07:00", "", "2026-11-20T17:00:00+07:00")
	ev("d1", "4", "26740", "resolved", "2026-11-21T09:00:00+07:00", "", "2026-11-20T17:00:00+07:00")
	ev("d2", "1", "26743", "received", "2026-11-20T23:30:00+07:00", "", "2026-11-21T17:00:00+07:00")
	ev("d2", "2", "26743", "resolved", "2026-11-22T08:00:00+07:00", "", "2026-11-21T17:00:00+07:00")
	ev("d3", "1", "26743", "received", "2026-11-21T15:00:00+07:00", "", "2026-11-21T16:00:00+07:00")
	return out
}

func someCameraEvents(prefix string) []CameraEvent {
	at := time.Date(2026, 11, 21, 16, 59, 30, 0, time.UTC) // across a UTC midnight and a day's partition
	var out []CameraEvent
	for i, typ := range []string{"traffic_violation", "congestion", "heartbeat", "accident"} {
		out = append(out, CameraEvent{EventID: fmt.Sprintf("%sc%d", prefix, i), CameraID: "CAM-1", Type: typ, Severity: "warning",
			Hierarchy: "vn-2025", AreaCode: "26740", Lat: 10.77, Lon: 106.7, OccurredAt: at.Add(time.Duration(i) * 7 * time.Hour), Attrs: "{}"})
	}
	return out
}

func someReadings(prefix string) []Reading {
	at := time.Date(2026, 11, 21, 23, 58, 0, 0, time.UTC)
	var out []Reading
	for i, v := range []float64{35.5, 80.25, 12, 1.5} {
		kind := "pm25"
		if i == 3 {
			kind = "water_level"
		}
		out = append(out, Reading{EventID: fmt.Sprintf("%sr%d", prefix, i), SensorID: "AQ-1", Kind: kind, Value: v,
			Hierarchy: "vn-2025", AreaCode: "26743", Lat: 10.78, Lon: 106.69, ObservedAt: at.Add(time.Duration(i) * time.Minute)})
	}
	return out
}

// checkExact fails t unless every rollup equals what the distinct stored
// records give.
func checkExact(t *testing.T, store *chstore.Store) {
	t.Helper()
	v, err := NewVerifier(store)
	if err != nil {
		t.Fatal(err)
	}
	v.now = func() time.Time { return testNow }
	checks, err := v.Check(context.Background(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cells := 0
	for _, c := range checks {
		cells += c.Cells
		for _, d := range c.Differences {
			t.Errorf("%s %s %s %s %v %s: stored %v, records give %v", d.Table, d.Hierarchy, d.Area, d.Bucket.Format(time.RFC3339), d.Dims, d.Measure, d.Stored, d.Expected)
		}
	}
	if cells == 0 {
		t.Error("the check compared no cells: nothing was stored, or the check reads nothing")
	}
}

// countDistinct returns the rows and the distinct event ids of a raw table.
func countDistinct(t *testing.T, store *chstore.Store, table string) (rows, ids uint64) {
	t.Helper()
	if err := store.Conn().QueryRow(context.Background(), "SELECT count(), uniqExact(event_id) FROM "+store.Database()+"."+table).Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	return rows, ids
}

// TestAFailureAtAnyStepOfAFlushLeavesEveryFigureExact fails each insert of
// a flush in turn, before the server takes it and after it landed with the
// answer lost, and retries as a careful client does. Then recovery runs:
// the stored records are each stored once, and every rollup equals what
// they give. Without recovery, a rollup that failed shows as a difference:
// the check can fail.
func TestAFailureAtAnyStepOfAFlushLeavesEveryFigureExact(t *testing.T) {
	type family struct {
		name   string
		raw    string
		tables []string
		run    func(t *testing.T, store *chstore.Store, w faultHook, rec Recoverer) (write func(prefix string) error, want int)
	}
	var tables = func(f []rollupSpec) []string {
		var out []string
		for _, s := range f {
			out = append(out, s.table)
		}
		return out
	}
	families := []family{
		{"dossier", dossierFamily.raw, tables(dossierFamily.specs), func(t *testing.T, store *chstore.Store, hook faultHook, rec Recoverer) (func(string) error, int) {
			w, err := NewWriter(BatchConfig{MaxAge: time.Millisecond}, deps(store, rec))
			return faulty(t, w, err, hook, func(p string) []Dossier { return someDossiers(t, p) }), 7
		}},
		{"camera", cameraFamily.raw, tables(cameraFamily.specs), func(t *testing.T, store *chstore.Store, hook faultHook, rec Recoverer) (func(string) error, int) {
			w, err := NewCameraWriter(BatchConfig{MaxAge: time.Millisecond}, deps(store, rec), nil)
			return faulty(t, w, err, hook, someCameraEvents), 4
		}},
		{"reading", readingFamily.raw, tables(readingFamily.specs), func(t *testing.T, store *chstore.Store, hook faultHook, rec Recoverer) (func(string) error, int) {
			w, err := NewReadingWriter(BatchConfig{MaxAge: time.Millisecond}, deps(store, rec), nil)
			return faulty(t, w, err, hook, someReadings), 4
		}},
	}
	for _, f := range families {
		// The flush's inserts in order: the journal's begun entry, the raw
		// rows, the rollups, the journal's done entry.
		steps := []fault{{table: "ingest_journal", nth: 1}, {table: f.raw, nth: 1}}
		for _, tb := range f.tables {
			steps = append(steps, fault{table: tb, nth: 1})
		}
		steps = append(steps, fault{table: "ingest_journal", nth: 2})
		for _, step := range steps {
			for _, how := range []string{"refused", "answer-lost", "lands-late"} {
				step := step
				step.lost, step.late = how == "answer-lost", how == "lands-late"
				lost := step.lost || step.late
				name := fmt.Sprintf("%s/%s#%d/%s", f.name, step.table, step.nth, how)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					store := testenv.Store(t)
					rec, err := NewReconciler(ReconcilerConfig{}, store, lease.NewLocal(), nil, slog.New(slog.DiscardHandler), nil)
					if err != nil {
						t.Fatal(err)
					}
					// One connection for the writer and recovery: a late
					// insert lands after whichever reads next.
					fc := &faultyConn{Conn: store.Conn(), db: store.Database(), fault: step}
					hook := func(driver.Conn) driver.Conn { return fc }
					rec.conn = fc
					write, want := f.run(t, store, hook, rec)
					// A careful client: retry until acknowledged.
					for attempt := 0; ; attempt++ {
						err := write("a-")
						if err == nil {
							break
						}
						if attempt == 3 || !errors.Is(err, errInjected) {
							t.Fatalf("write: %v", err)
						}
					}
					if err := write("b-"); err != nil {
						t.Fatalf("write the next batch: %v", err)
					}
					rows, ids := countDistinct(t, store, f.raw)
					if ids != uint64(2*want) || rows != ids {
						t.Fatalf("%s holds %d rows of %d distinct events, want %d rows of %d", f.raw, rows, ids, 2*want, 2*want)
					}
					finished, err := rec.Finish(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					// A failure after the begun entry landed leaves the batch
					// unfinished until recovery finishes it; a done entry
					// whose answer was lost did land.
					begunLanded := step.table != "ingest_journal" || step.nth == 2 || lost
					doneLanded := step.table == "ingest_journal" && step.nth == 2 && lost
					if begunLanded && !doneLanded && finished == 0 {
						t.Errorf("recovery finished no batch after a failure at %s", name)
					}
					checkExact(t, store)
				})
			}
		}
	}
}

// faultHook wraps a writer's connection.
type faultHook func(driver.Conn) driver.Conn

func (w *Writer) hook(h faultHook) {
	w.conn = h(w.conn)
	w.journal.conn, w.settled.conn = w.conn, w.conn
}
func (w *RecordWriter[T]) hook(h faultHook) {
	w.conn = h(w.conn)
	w.journal.conn, w.settled.conn = w.conn, w.conn
}

// faulty runs a writer (as its constructor returned it) on a connection
// hook wraps, and returns a function that writes the records of a prefix.
func faulty[T any](t *testing.T, w interface {
	hook(faultHook)
	Run(context.Context) error
	Write(context.Context, []T) (Outcome, error)
}, err error, hook faultHook, records func(prefix string) []T) func(string) error {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	w.hook(hook)
	runWriter(t, w.Run)
	return func(prefix string) error {
		_, err := w.Write(context.Background(), records(prefix))
		return err
	}
}

// TestTheCheckSeesAPartThatDidNotLand is the negative control of the test
// above: a rollup insert that failed, and no recovery, is a difference the
// check reports, which a repair then corrects.
func TestTheCheckSeesAPartThatDidNotLand(t *testing.T) {
	store := testenv.Store(t)
	w, err := NewWriter(BatchConfig{MaxAge: time.Millisecond}, deps(store, nil))
	if err != nil {
		t.Fatal(err)
	}
	fc := &faultyConn{Conn: w.conn, db: store.Database(), fault: fault{table: "dossier_flow_day", nth: 1}}
	w.conn = fc
	runWriter(t, w.Run)
	if _, err := w.Write(context.Background(), someDossiers(t, "x-")); err != nil {
		t.Fatalf("a batch whose raw rows landed is acknowledged: %v", err)
	}
	v, err := NewVerifier(store)
	if err != nil {
		t.Fatal(err)
	}
	v.now = func() time.Time { return testNow }
	checks, err := v.Check(context.Background(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, c := range checks {
		for _, d := range c.Differences {
			found = append(found, d.Table)
		}
	}
	if !slices.Contains(found, "dossier_flow_day") || slices.ContainsFunc(found, func(s string) bool { return s != "dossier_flow_day" }) {
		t.Fatalf("differences in %v, want some in dossier_flow_day and no other table", found)
	}
	if _, err := v.Check(context.Background(), VerifyOptions{Repair: true}); err != nil {
		t.Fatal(err)
	}
	checkExact(t, store)
}

// A backfill (SkipExpired) leaves out of the minute rollups the days they
// no longer keep, and only those; a node's writer writes them, since a
// figure of a moment in those days reads them until the day is dropped.
func TestSkipExpiredLeavesOutOnlyMinutesOfDaysNoLongerKept(t *testing.T) {
	for _, skip := range []bool{true, false} {
		t.Run(fmt.Sprintf("skip=%v", skip), func(t *testing.T) {
			store := testenv.Store(t)
			d := deps(store, nil)
			// Two days after the first records' minutes expire, one day
			// before the last ones' do.
			now := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC).Add(MinuteRetention + 2*24*time.Hour)
			d.Now = func() time.Time { return now }
			w, err := NewWriter(BatchConfig{MaxAge: time.Millisecond, SkipExpired: skip}, d)
			if err != nil {
				t.Fatal(err)
			}
			runWriter(t, w.Run)
			if _, err := w.Write(context.Background(), someDossiers(t, "x-")); err != nil {
				t.Fatal(err)
			}
			count := func(table, where string) uint64 {
				var n uint64
				if err := store.Conn().QueryRow(context.Background(), "SELECT count() FROM "+store.Database()+"."+table+
					" WHERE hierarchy = 'vn-2025' AND "+where).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			first := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC) // the first UTC day kept at now
			expired, kept := count("dossier_flow_minute", "t < '"+chstore.Time(first)+"'"), count("dossier_flow_minute", "t >= '"+chstore.Time(first)+"'")
			if skip && expired != 0 || !skip && expired == 0 {
				t.Errorf("minute rows of days no longer kept: %d, want none only when skipped", expired)
			}
			if kept == 0 {
				t.Errorf("no minute rows of the days kept")
			}
			if n := count("dossier_flow_hour", "t < '"+chstore.Time(first)+"'"); n == 0 {
				t.Errorf("no hour rows of the earlier days: only minutes expire")
			}
		})
	}
}
