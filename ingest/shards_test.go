package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// recordingSink records what it was given and answers a duplicate for every row
// ending in "dup" and a conflict for every row ending in "bad".
type recordingSink struct {
	mu   sync.Mutex
	got  []string
	fail error
}

func (f *recordingSink) Write(_ context.Context, rows []string) (Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return Outcome{}, f.fail
	}
	f.got = append(f.got, rows...)
	var o Outcome
	for i, r := range rows {
		switch {
		case strings.HasSuffix(r, "dup"):
			o.Duplicates++
		case strings.HasSuffix(r, "bad"):
			o.Conflicts = append(o.Conflicts, Conflict{Row: i, Error: "conflict " + r})
		}
	}
	return o, nil
}

func TestShardsRouteByProvinceAndAnswerInTheSendersOrder(t *testing.T) {
	a, b := &recordingSink{}, &recordingSink{}
	province := func(r string) string { p, _, _ := strings.Cut(r, "-"); return p }
	s := NewShards([]Sink[string]{a, b}, province)
	rows := []string{"01-1", "79-1bad", "01-2dup", "79-2", "01-3bad", "79-3dup", "79-4bad"}
	out, err := s.Write(context.Background(), rows)
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []*recordingSink{a, b} {
		var ps []string
		for _, r := range sink.got {
			ps = append(ps, province(r))
		}
		slices.Sort(ps)
		if ps = slices.Compact(ps); len(ps) > 1 {
			t.Errorf("a shard got rows of provinces %v: a province's rows must stay on one shard", ps)
		}
	}
	if len(a.got)+len(b.got) != len(rows) {
		t.Errorf("the shards got %d rows, want %d", len(a.got)+len(b.got), len(rows))
	}
	if out.Duplicates != 2 {
		t.Errorf("duplicates %d, want 2", out.Duplicates)
	}
	var conflicts []string
	for _, c := range out.Conflicts {
		conflicts = append(conflicts, fmt.Sprintf("%d:%s", c.Row, c.Error))
	}
	want := []string{"1:conflict 79-1bad", "4:conflict 01-3bad", "6:conflict 79-4bad"}
	if !slices.Equal(conflicts, want) {
		t.Errorf("conflicts %v, want %v: each names its row in the request", conflicts, want)
	}

	// A shard that fails fails the write: the sender sends it again.
	b.fail = errors.New("shard down")
	if _, err := s.Write(context.Background(), rows); err == nil || !strings.Contains(err.Error(), "shard down") {
		t.Errorf("got %v, want the failing shard's error", err)
	}
}
