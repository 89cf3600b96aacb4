package ingest

import (
	"context"
	"reflect"
	"sort"
	"testing"

	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

// TestExportGivesEachDossierEventAsSent stores events of the current
// hierarchy and of an older one (each stored twice: as sent, and placed in
// the current hierarchy), one of them twice, and exports them: each event
// comes out once, field for field as it was sent.
func TestExportGivesEachDossierEventAsSent(t *testing.T) {
	store := testenv.Store(t)
	w, _ := newTestWriter(t, store, lease.NewLocal(), BatchConfig{MaxRows: 100})
	current := validEvent()
	current.OccurredAt, current.ReceivedAt, current.DueAt = "2026-11-22T02:15:00Z", "2026-11-20T01:00:00Z", "2026-11-25T10:00:00Z"
	current.PaidOnline, current.FeeRequired = true, true
	whole := current
	whole.EventID, whole.DossierID, whole.Hierarchy, whole.AreaCode, whole.Status = "old-1", "D-OLD-1", "vn-2024", "26734", "received"
	whole.OnlineLevel, whole.Digitized, whole.PaidOnline, whole.FeeRequired = "", false, false, false
	split := whole
	split.EventID, split.DossierID, split.AreaCode, split.Lat, split.Lon = "old-2", "D-OLD-2", "00016", ptr(21.0367), ptr(105.8346)
	correction := current
	correction.EventID, correction.Supersedes, correction.Status = "hcm-000123-5", current.EventID, "returned"
	sent := []DossierEvent{current, whole, split, correction}
	var rows []Dossier
	for _, e := range sent {
		d, err := testRules.Validate(e, testNow)
		if err != nil {
			t.Fatalf("event %s: %v", e.EventID, err)
		}
		rows = append(rows, d)
	}
	write(t, w, rows)
	write(t, w, rows[:1]) // sent again: a duplicate, stored once

	var got []DossierEvent
	n, err := Export(context.Background(), store.Conn(), store.Database(), KindDossiers, func(r any) error {
		got = append(got, r.(DossierEvent))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(got) {
		t.Errorf("Export counted %d records and emitted %d", n, len(got))
	}
	// As sent, with the hierarchy every event names once stored.
	sent[0].Hierarchy, sent[3].Hierarchy = "vn-2025", "vn-2025"
	byID := func(es []DossierEvent) { sort.Slice(es, func(i, j int) bool { return es[i].EventID < es[j].EventID }) }
	byID(sent)
	byID(got)
	if !reflect.DeepEqual(got, sent) {
		t.Errorf("exported:\n%+v\nwant what was sent:\n%+v", got, sent)
	}

	if _, err := Export(context.Background(), store.Conn(), store.Database(), "feedback", func(any) error { return nil }); err == nil {
		t.Error("exporting a kind iocd import does not take: no error")
	}
}
