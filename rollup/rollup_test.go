package rollup

import (
	"reflect"
	"testing"
	"time"
)

func TestSplitKeepsEveryRowOnceWithinTheBound(t *testing.T) {
	d := Delta{Kind: "dossier", Batch: 7, Created: time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)}
	var want []Row
	for i, n := range []int{3, 0, 5, 2} {
		tb := Table{Name: []string{"a", "b", "c", "d"}[i], Marked: true, Ints: []string{"x"}}
		for j := range n {
			r := Row{Hierarchy: "h", Area: tb.Name, Ints: []int64{int64(j)}}
			tb.Rows = append(tb.Rows, r)
			want = append(want, r)
		}
		d.Tables = append(d.Tables, tb)
	}
	for _, limit := range []int{1, 3, 4, 10, 0} {
		parts := d.Split(limit)
		var got []Row
		for _, p := range parts {
			if p.Kind != d.Kind || p.Batch != d.Batch || !p.Created.Equal(d.Created) {
				t.Errorf("limit %d: part names %s %d %v, want the delta's batch", limit, p.Kind, p.Batch, p.Created)
			}
			if limit > 0 && p.Rows() > limit {
				t.Errorf("limit %d: a part of %d rows", limit, p.Rows())
			}
			for _, tb := range p.Tables {
				if !tb.Marked || !reflect.DeepEqual(tb.Ints, []string{"x"}) {
					t.Errorf("limit %d: table %s lost its columns", limit, tb.Name)
				}
				got = append(got, tb.Rows...)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("limit %d: rows %v, want %v", limit, got, want)
		}
		if limit > 0 && len(parts) != (len(want)+limit-1)/limit {
			t.Errorf("limit %d: %d parts, want %d", limit, len(parts), (len(want)+limit-1)/limit)
		}
	}
}

func TestGroupIsTheUTCDay(t *testing.T) {
	hcm := time.FixedZone("ICT", 7*3600)
	got := Group(time.Date(2026, 11, 22, 6, 59, 0, 0, hcm)) // 23:59 UTC the day before
	if want := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("got %v, want %v", got, want)
	}
}
