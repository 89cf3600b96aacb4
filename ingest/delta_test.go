package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
	"github.com/openioc/ioc/rollup"
)

// deltaLog is a Notifier that keeps every delta it is told of.
type deltaLog struct {
	mu     sync.Mutex
	deltas []rollup.Delta
}

func (l *deltaLog) Added(d rollup.Delta) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deltas = append(l.deltas, d)
}

func (l *deltaLog) all() []rollup.Delta {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]rollup.Delta(nil), l.deltas...)
}

// liveCell is one key of a live rollup: unit, bucket and dims.
type liveCell struct {
	area string
	t    time.Time
	dims string
}

// liveSums are a live rollup's measures by key, as summed (maxima: as
// maximised) from deltas or read from the table.
type liveSums map[liveCell][]float64

// fromDeltas sums what the deltas say they added to table.
func fromDeltas(ds []rollup.Delta, table string) liveSums {
	out := liveSums{}
	for _, d := range ds {
		for _, tb := range d.Tables {
			if tb.Name != table {
				continue
			}
			for _, r := range tb.Rows {
				k := liveCell{r.Area, r.Bucket.UTC(), strings.Join(r.Dims, "/")}
				vals := make([]float64, 0, len(r.Ints)+len(r.Floats))
				for _, v := range r.Ints {
					vals = append(vals, float64(v))
				}
				vals = append(vals, r.Floats...)
				cur, ok := out[k]
				if !ok {
					out[k] = vals
					continue
				}
				for i, v := range vals {
					if strings.HasPrefix(table, "sensor_max") {
						cur[i] = math.Max(cur[i], v)
					} else {
						cur[i] += v
					}
				}
			}
		}
	}
	return out
}

// fromTable reads what a live rollup holds, markers left out.
func fromTable(t *testing.T, store *chstore.Store, table string, dims, measures []string) liveSums {
	t.Helper()
	agg := make([]string, len(measures))
	for i, m := range measures {
		agg[i] = "toFloat64(sum(" + m + "))"
		if strings.HasPrefix(table, "sensor_max") {
			agg[i] = "maxMerge(" + m + ")"
		}
	}
	d := "''"
	if len(dims) > 0 {
		parts := make([]string, len(dims))
		for i, c := range dims {
			parts[i] = "toString(" + c + ")"
		}
		d = parts[0]
		if len(parts) > 1 {
			d = "concat(" + strings.Join(parts, ", '/', ") + ")"
		}
	}
	rows, err := store.Conn().Query(context.Background(), "SELECT area_code, t, "+d+" AS dims, "+strings.Join(agg, ", ")+" FROM "+
		store.Database()+"."+table+" WHERE hierarchy != ? GROUP BY area_code, t, dims", markerHierarchy)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := liveSums{}
	for rows.Next() {
		var k liveCell
		vals := make([]float64, len(measures))
		targets := []any{&k.area, &k.t, &k.dims}
		for i := range vals {
			targets = append(targets, &vals[i])
		}
		if err := rows.Scan(targets...); err != nil {
			t.Fatal(err)
		}
		k.t = k.t.UTC()
		zero := true
		for _, v := range vals {
			zero = zero && v == 0
		}
		if !zero {
			out[k] = vals
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDeltasAddUpToWhatTheLiveRollupsHold stores batches of each kind while
// an insert into a live rollup fails, refused or landed with its answer
// lost, and lets recovery finish them. What the writers and the reconciler
// told their Notifier adds up to exactly what each live rollup holds: a
// part that landed is announced once, by whoever wrote it, and one that did
// not is not announced. Only a part that landed with its answer lost is
// held and never announced: the aggregator's check reads it.
func TestDeltasAddUpToWhatTheLiveRollupsHold(t *testing.T) {
	clock := func() time.Time { return testNow }
	type kind struct {
		f     family
		write func(t *testing.T, store *chstore.Store, d WriterDeps, hook faultHook) func(prefix string) error
	}
	kinds := []kind{
		{dossierFamily, func(t *testing.T, store *chstore.Store, d WriterDeps, hook faultHook) func(string) error {
			w, err := NewWriter(BatchConfig{MaxAge: time.Millisecond}, d)
			return faulty(t, w, err, hook, func(p string) []Dossier { return someDossiers(t, p) })
		}},
		{cameraFamily, func(t *testing.T, store *chstore.Store, d WriterDeps, hook faultHook) func(string) error {
			w, err := NewCameraWriter(BatchConfig{MaxAge: time.Millisecond}, d, nil)
			return faulty(t, w, err, hook, someCameraEvents)
		}},
		{readingFamily, func(t *testing.T, store *chstore.Store, d WriterDeps, hook faultHook) func(string) error {
			w, err := NewReadingWriter(BatchConfig{MaxAge: time.Millisecond}, d, nil)
			return faulty(t, w, err, hook, someReadings)
		}},
	}
	for _, k := range kinds {
		var live []rollupSpec
		for _, s := range k.f.specs {
			if s.cut == byMinute || s.cut == byHour {
				live = append(live, s)
			}
		}
		steps := []*fault{nil}
		for _, s := range live {
			steps = append(steps, &fault{table: s.table, nth: 1}, &fault{table: s.table, nth: 1, lost: true})
		}
		for _, step := range steps {
			name := k.f.kind + "/no-fault"
			if step != nil {
				name = fmt.Sprintf("%s/%s/%s", k.f.kind, step.table, map[bool]string{false: "refused", true: "answer-lost"}[step.lost])
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				store := testenv.Store(t)
				log := &deltaLog{}
				rec, err := NewReconciler(ReconcilerConfig{}, store, lease.NewLocal(), log, slog.New(slog.DiscardHandler), nil)
				if err != nil {
					t.Fatal(err)
				}
				rec.now = clock
				hook := func(c driver.Conn) driver.Conn {
					if step == nil {
						return c
					}
					return &faultyConn{Conn: c, db: store.Database(), fault: *step}
				}
				d := deps(store, rec)
				d.Notify, d.Now = log, clock
				write := k.write(t, store, d, hook)
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
				if _, err := rec.Finish(context.Background()); err != nil {
					t.Fatal(err)
				}
				deltas := log.all()
				for _, d := range deltas {
					if d.Kind != k.f.kind || d.Batch == 0 || !d.Created.Equal(testNow.Truncate(time.Second)) {
						t.Errorf("delta of kind %q batch %d created %v, want kind %q, a batch id and created %v", d.Kind, d.Batch, d.Created, k.f.kind, testNow)
					}
				}
				tables := map[string][2][]string{}
				for _, s := range live {
					tables[s.table] = [2][]string{s.dims, append(append([]string{}, s.ints...), s.floats...)}
				}
				if k.f.kind == readingFamily.kind {
					tables[rollup.SensorMaxMinute] = [2][]string{{"kind"}, {"value_max"}}
					tables[rollup.SensorMaxHour] = [2][]string{{"kind"}, {"value_max"}}
				}
				for table, cols := range tables {
					got, want := fromDeltas(deltas, table), fromTable(t, store, table, cols[0], cols[1])
					if len(want) == 0 {
						t.Fatalf("%s holds nothing: the test stores nothing there", table)
					}
					// The two batches hold the same rows under other ids: where
					// the first batch's insert landed with its answer lost, the
					// deltas hold the second's alone, half of the table.
					unannounced := step != nil && step.lost && step.table == table
					for key, w := range want {
						if unannounced {
							for i := range w {
								w[i] /= 2
							}
						}
						if g, ok := got[key]; !ok || !closeTo(g, w) {
							t.Errorf("%s %v: deltas add up to %v, want %v (the table holds %v)", table, key, g, w, want[key])
						}
					}
					for key, g := range got {
						if _, ok := want[key]; !ok {
							t.Errorf("%s %v: deltas announce %v, the table holds nothing", table, key, g)
						}
					}
				}
			})
		}
	}
}

func closeTo(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9*math.Max(1, math.Abs(b[i])) {
			return false
		}
	}
	return true
}

// TestDeltasLeaveOutRowsOlderThanTheLongestWindow: a record of two months
// ago changes no live figure, so its rows are not sent.
func TestDeltasLeaveOutRowsOlderThanTheLongestWindow(t *testing.T) {
	now := testNow
	old, recent := now.Add(-rollup.Horizon-2*time.Hour), now.Add(-time.Hour)
	rows := cameraRollups([]CameraEvent{
		{EventID: "old", Type: "accident", Severity: "critical", Hierarchy: "vn-2025", AreaCode: "26740", OccurredAt: old},
		{EventID: "new", Type: "accident", Severity: "critical", Hierarchy: "vn-2025", AreaCode: "26740", OccurredAt: recent},
	})
	d := liveDelta(cameraFamily, batchRef{kind: "camera", id: 7, createdAt: now}, rows, make([]error, 2), nil, now)
	for _, tb := range d.Tables {
		for _, r := range tb.Rows {
			if r.Bucket.Before(now.Add(-rollup.Horizon - time.Hour)) {
				t.Errorf("%s: row of %v sent", tb.Name, r.Bucket)
			}
		}
	}
	if d.Rows() != 2 {
		t.Errorf("delta has %d rows, want the recent event's minute and hour", d.Rows())
	}
	// A table whose insert failed is not announced.
	d = liveDelta(cameraFamily, batchRef{kind: "camera", id: 7, createdAt: now}, rows, []error{errInjected, nil}, nil, now)
	if len(d.Tables) != 1 || d.Tables[0].Name != rollup.CameraKPIHour {
		t.Errorf("with the minute insert failed, announced %+v, want the hour table only", d.Tables)
	}
}
