package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

// dossierEvents validates events of one dossier, each "id status occurred".
func dossierEvents(t *testing.T, dossierID string, evs ...[3]string) []Dossier {
	t.Helper()
	var out []Dossier
	for _, e := range evs {
		d, err := testRules.Validate(DossierEvent{EventID: e[0], DossierID: dossierID, ProcedureCode: "1.004227", Sector: "land",
			AreaCode: "26740", Channel: "online", Status: e[1], OccurredAt: e[2], DueAt: "2026-11-20T17:00:00+07:00"}, testNow)
		if err != nil {
			t.Fatalf("event %s: %v", e[0], err)
		}
		out = append(out, d)
	}
	return out
}

func newTestWriter(t *testing.T, store *chstore.Store, leases Leaser, cfg BatchConfig) (*Writer, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	d := deps(store, nil)
	d.Leases, d.Registerer = leases, reg
	cfg.MaxAge = time.Millisecond
	w, err := NewWriter(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	runWriter(t, w.Run)
	return w, reg
}

func write(t *testing.T, w *Writer, rows []Dossier) Outcome {
	t.Helper()
	out, err := w.Write(context.Background(), rows)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Two nodes write events of the same dossier in turn. What the first
// remembers of it is stale once the second wrote under the lease, so it
// looks the dossier up: the second's event is found (a resend of it is a
// duplicate) and the figures stay exact.
func TestAWriterForgetsWhatItRemembersOnceAnotherWroteUnderTheLease(t *testing.T) {
	store := testenv.Store(t)
	leases := lease.NewLocal() // one lease, two writers: two nodes
	a, _ := newTestWriter(t, store, leases, BatchConfig{})
	b, _ := newTestWriter(t, store, leases, BatchConfig{})
	ev := func(id, status, at string) []Dossier {
		return dossierEvents(t, "D1", [3]string{id, status, at})
	}
	write(t, a, ev("e1", "received", "2026-11-19T08:00:00+07:00"))
	write(t, b, ev("e2", "processing", "2026-11-19T09:00:00+07:00"))
	out := write(t, a, append(ev("e2", "processing", "2026-11-19T09:00:00+07:00"), ev("e3", "resolved", "2026-11-21T09:00:00+07:00")...))
	if out.Duplicates != 1 || len(out.Conflicts) != 0 {
		t.Errorf("resend of the other node's event: %+v, want one duplicate", out)
	}
	if rows, ids := countDistinct(t, store, "dossier_history"); rows != 3 || ids != 3 {
		t.Errorf("dossier_history holds %d rows of %d events, want 3 of 3", rows, ids)
	}
	checkExact(t, store)
}

// Once a writer knows which dossiers are stored, a batch of new dossiers
// and of dossiers it remembers needs no lookup; a dossier stored before it
// started, or forgotten since, is looked up. Figures stay exact throughout.
func TestAWriterLooksUpOnlyDossiersItNeitherRemembersNorKnowsNew(t *testing.T) {
	store := testenv.Store(t)
	leases := lease.NewLocal()
	// Stored before the writer under test started.
	before, _ := newTestWriter(t, store, leases, BatchConfig{})
	write(t, before, dossierEvents(t, "OLD", [3]string{"o1", "received", "2026-11-19T08:00:00+07:00"}))

	w, reg := newTestWriter(t, store, leases, BatchConfig{HistoryEvents: 4})
	lookups := func(source string) float64 {
		return testutil.ToFloat64(w.b.m.lookups.WithLabelValues(source))
	}
	_ = reg
	write(t, w, dossierEvents(t, "D1", [3]string{"a1", "received", "2026-11-19T08:00:00+07:00"}))
	if got := lookups("queried"); got != 1 {
		t.Fatalf("first batch: %v dossiers queried, want 1 (nothing is known yet)", got)
	}
	// The first batch asked for a scan of what is stored; its result is
	// taken by the next batch.
	eventually(t, "the scan of stored dossiers to finish", func() bool { return len(w.recall.known.results) == 1 })

	write(t, w, append(dossierEvents(t, "D1", [3]string{"a2", "processing", "2026-11-19T09:00:00+07:00"}),
		dossierEvents(t, "NEW", [3]string{"n1", "received", "2026-11-19T10:00:00+07:00"})...))
	if q, r, n := lookups("queried"), lookups("remembered"), lookups("new"); q != 1 || r != 1 || n != 1 {
		t.Errorf("second batch: queried %v, remembered %v, new %v; want 1, 1, 1 in all (D1 remembered, NEW new)", q, r, n)
	}
	// OLD was stored before the scan: it may be stored, so it is looked
	// up, and its history is found.
	write(t, w, dossierEvents(t, "OLD", [3]string{"o2", "resolved", "2026-11-19T11:00:00+07:00"}))
	if q := lookups("queried"); q != 2 {
		t.Errorf("a dossier stored before the writer started: %v queried in all, want 2", q)
	}
	// Four events are remembered at most: D1's two and NEW's went out
	// with OLD's two coming in.
	out := write(t, w, dossierEvents(t, "D1", [3]string{"a1", "received", "2026-11-19T08:00:00+07:00"}))
	if out.Duplicates != 1 {
		t.Errorf("resend of a forgotten dossier's event: %+v, want a duplicate", out)
	}
	if rows, ids := countDistinct(t, store, "dossier_history"); rows != 5 || ids != 5 {
		t.Errorf("dossier_history holds %d rows of %d events, want 5 of 5", rows, ids)
	}
	checkExact(t, store)
}

// The same holds for camera events (and readings, which share the code):
// once a writer knows a day's stored ids, new events of that day are not
// looked up; an id another node stored meanwhile is found, not stored twice.
func TestARecordWriterLooksUpOnlyIdsThatMayBeStored(t *testing.T) {
	store := testenv.Store(t)
	leases := lease.NewLocal()
	newCameraWriter := func() *RecordWriter[CameraEvent] {
		d := deps(store, nil)
		d.Leases, d.Registerer = leases, prometheus.NewRegistry()
		w, err := NewCameraWriter(BatchConfig{MaxAge: time.Millisecond}, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		runWriter(t, w.Run)
		return w
	}
	a, b := newCameraWriter(), newCameraWriter()
	lookups := func(source string) float64 { return testutil.ToFloat64(a.lookups.WithLabelValues(source)) }
	// Three events of one UTC day.
	var events []CameraEvent
	for i := range 3 {
		e := someCameraEvents("x-")[0]
		e.EventID, e.OccurredAt = fmt.Sprintf("x-%d", i), e.OccurredAt.Add(time.Duration(i)*time.Minute)
		events = append(events, e)
	}
	writeCameras := func(w *RecordWriter[CameraEvent], rows ...CameraEvent) Outcome {
		t.Helper()
		out, err := w.Write(context.Background(), rows)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	writeCameras(a, events[0])
	eventually(t, "the scan of the day's stored ids", func() bool { return len(a.known.results) == 1 })
	writeCameras(a, events[1])
	if q, n := lookups("queried"), lookups("new"); q != 1 || n != 1 {
		t.Errorf("after the scan: %v queried, %v new in all; want 1 and 1", q, n)
	}
	// Another node stores events[2]; a resend of it through a is found.
	writeCameras(b, events[2])
	if out := writeCameras(a, events[2]); out.Duplicates != 1 {
		t.Errorf("resend of what another node stored: %+v, want a duplicate", out)
	}
	if rows, ids := countDistinct(t, store, "camera_events"); rows != 3 || ids != 3 {
		t.Errorf("camera_events holds %d rows of %d events, want 3 of 3", rows, ids)
	}
	checkExact(t, store)
}
