package ingest

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/chstore"
)

// Journal states of a batch; the highest recorded wins.
const (
	batchBegun     uint8 = 1 // written before the raw rows
	batchDone      uint8 = 2 // every rollup part landed
	batchRecovered uint8 = 3 // the missing parts were written again, or nothing had landed
)

// batchRef names a batch of one family and where its rows are.
type batchRef struct {
	kind       string
	id         uint64 // the lease token it was written under: unique per table
	tMin, tMax time.Time
	createdAt  time.Time // also the ingested_at of its raw rows
}

// journal records batches in ingest_journal, so that a batch a node began
// and did not finish, whether it failed or the node died, is found again.
type journal struct {
	conn driver.Conn
	db   string
	node string
}

// write records batches in a state, in one statement.
func (j journal) write(ctx context.Context, state uint8, batches ...batchRef) error {
	ins, err := j.conn.PrepareBatch(ctx, "INSERT INTO "+j.db+".ingest_journal (kind, batch_id, state, node, t_min, t_max, created_at)")
	if err != nil {
		return fmt.Errorf("prepare journal entry: %w", err)
	}
	for _, b := range batches {
		if err := ins.Append(b.kind, b.id, state, j.node, b.tMin, b.tMax, b.createdAt); err != nil {
			ins.Abort()
			return fmt.Errorf("append journal entry: %w", err)
		}
	}
	if err := ins.Send(); err != nil {
		if len(batches) == 1 {
			return fmt.Errorf("record %s batch %d as %s in ingest_journal: %w", batches[0].kind, batches[0].id, stateName(state), err)
		}
		return fmt.Errorf("record %d batches as %s in ingest_journal: %w", len(batches), stateName(state), err)
	}
	return nil
}

func stateName(s uint8) string {
	switch s {
	case batchBegun:
		return "begun"
	case batchDone:
		return "done"
	case batchRecovered:
		return "recovered"
	}
	return strconv.Itoa(int(s))
}

// unfinished lists the batches begun since since and neither done nor
// recovered, oldest first.
func (j journal) unfinished(ctx context.Context, since time.Time) ([]batchRef, error) {
	return j.list(ctx, "WHERE created_at >= ?", "HAVING max(state) = ?", chstore.Time(since), batchBegun)
}

// all lists every batch in the journal, whatever its state.
func (j journal) all(ctx context.Context) ([]batchRef, error) {
	return j.list(ctx, "", "")
}

// list reads the batches the filters keep, oldest first.
func (j journal) list(ctx context.Context, where, having string, args ...any) ([]batchRef, error) {
	rows, err := j.conn.Query(ctx, `SELECT kind, batch_id, min(t_min), max(t_max), min(created_at)
		FROM `+j.db+`.ingest_journal `+where+`
		GROUP BY kind, batch_id `+having+` ORDER BY min(created_at), batch_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read batches from ingest_journal: %w", err)
	}
	defer rows.Close()
	var out []batchRef
	for rows.Next() {
		var b batchRef
		if err := rows.Scan(&b.kind, &b.id, &b.tMin, &b.tMax, &b.createdAt); err != nil {
			return nil, fmt.Errorf("read batches from ingest_journal: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
