package ingest

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/openioc/ioc/internal/chstore"
)

// Shards stores each row with the writer of its shard, on a ClickHouse
// cluster: every record of a province goes to the same shard (see chstore's
// cluster.go), so that a dossier's history, its duplicate checks and its
// derivation stay on one shard, under that shard's leases and journal.
//
// A write that reaches several shards returns once each has stored its
// rows. When one fails the whole write fails: the rows the others stored
// are duplicates when the sender sends them again, and are answered so.
//
// Concurrency: safe for concurrent use, as its writers are.
type Shards[T any] struct {
	sinks    []Sink[T]
	province func(T) string
}

// NewShards routes rows over sinks, a writer per shard in the order of the
// store's Shards, by the province province names for each row.
func NewShards[T any](sinks []Sink[T], province func(T) string) *Shards[T] {
	return &Shards[T]{sinks: sinks, province: province}
}

// Write stores rows, each in its shard.
func (s *Shards[T]) Write(ctx context.Context, rows []T) (Outcome, error) {
	if len(s.sinks) == 1 {
		return s.sinks[0].Write(ctx, rows)
	}
	parts := make([][]T, len(s.sinks))
	index := make([][]int, len(s.sinks)) // a part's rows' indexes in rows
	for i, r := range rows {
		n := chstore.ShardOf(s.province(r), len(s.sinks))
		parts[n] = append(parts[n], r)
		index[n] = append(index[n], i)
	}
	outs := make([]Outcome, len(s.sinks))
	errs := make([]error, len(s.sinks))
	var wg sync.WaitGroup
	for n, part := range parts {
		if len(part) == 0 {
			continue
		}
		wg.Go(func() { outs[n], errs[n] = s.sinks[n].Write(ctx, part) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Outcome{}, err
	}
	var out Outcome
	for n, o := range outs {
		out.Duplicates += o.Duplicates
		for _, c := range o.Conflicts {
			c.Row = index[n][c.Row]
			out.Conflicts = append(out.Conflicts, c)
		}
	}
	sort.Slice(out.Conflicts, func(i, j int) bool { return out.Conflicts[i].Row < out.Conflicts[j].Row })
	return out, nil
}
