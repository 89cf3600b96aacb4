package aggregate

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openioc/ioc/geo"
)

// countedExtras gives every unit the same figure of one extra indicator,
// and a derived one from it and the catalog's dossiers received, and
// counts its reads.
type countedExtras struct {
	reads atomic.Int32
	value float64
}

func (c *countedExtras) Extra(_ context.Context, h *geo.Hierarchy, _ time.Time) (ExtraFigures, error) {
	c.reads.Add(1)
	v := c.value
	f := ExtraFigures{IDs: []string{"census.residents", "census.per_1000"}, Values: map[string][]*float64{},
		Derived: map[int]func(func(string) (float64, bool)) (float64, bool){
			1: func(lookup func(string) (float64, bool)) (float64, bool) {
				n, ok1 := lookup("dossiers_received")
				r, ok2 := lookup("census.residents")
				if !ok1 || !ok2 || r == 0 {
					return 0, false
				}
				return n / r * 1000, true
			}}}
	for _, u := range h.Select("", "") {
		f.Values[u.Code] = []*float64{&v}
	}
	return f, nil
}

// TestExtrasJoinSnapshotsAndAreReadOncePerTTL: the extra indicators are
// in a snapshot computed on demand, a derived one over the window's
// counts; a node without the live state reads them once for many
// snapshots within extrasTTL, and again after it.
func TestExtrasJoinSnapshotsAndAreReadOncePerTTL(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	a, s, _ := newTestAggregator(t, now)
	x := &countedExtras{value: 2000}
	a.x = x
	insert(t, s, row{"e1", "d1", "26740", "online", "received", now.Add(-time.Hour), now.Add(48 * time.Hour)})
	snap, err := a.Snapshot(ctx, "vn-2025", "26740", Today)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := snap.KPIs["census.residents"].(*float64); v == nil || *v != 2000 {
		t.Errorf("residents: got %v, want 2000", snap.KPIs["census.residents"])
	}
	if v, _ := snap.KPIs["census.per_1000"].(*float64); v == nil || *v != 0.5 {
		t.Errorf("per 1,000: got %v, want 1 dossier / 2000 × 1000 = 0.5", snap.KPIs["census.per_1000"])
	}
	if _, err := a.LevelSnapshots(ctx, "vn-2025", "commune", "79", Last24); err != nil {
		t.Fatal(err)
	}
	if n := x.reads.Load(); n != 1 {
		t.Errorf("%d reads of the extras for two snapshots within %s, want 1", n, extrasTTL)
	}
	x.value = 3000
	a.now = func() time.Time { return now.Add(extrasTTL) }
	snap, err = a.Snapshot(ctx, "vn-2025", "26740", Today)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := snap.KPIs["census.residents"].(*float64); v == nil || *v != 3000 || x.reads.Load() != 2 {
		t.Errorf("after %s: residents %v after %d reads, want 3000 read again", extrasTTL, snap.KPIs["census.residents"], x.reads.Load())
	}
	// Other hierarchies' units are not the datasets': none there.
	old, err := a.Snapshot(ctx, "vn-2024", "79", Today)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := old.KPIs["census.residents"]; ok {
		t.Error("a snapshot of vn-2024 carries the extras of vn-2025's units")
	}
}
