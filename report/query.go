package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/rollup"
)

// ask asks the rollup reader for the rows filed under codes (every unit
// when nil) in r, per step s (none: the whole range in one).
func (e *Engine) ask(codes []string, r Range, s Step) rollup.Query {
	return rollup.Query{Scope: rollup.Scope{Hierarchy: e.h.Name(), Codes: codes}, From: r.From, To: r.To, Step: s}
}

// addCell adds n to the figures of c.
func addCell(out map[rollup.Cell]aggregate.Counts, c rollup.Cell, n aggregate.Counts) {
	t := out[c]
	t.Add(n)
	out[c] = t
}

// sum sums the figures of the sources by cell, through the rollup reader
// under the execution limit. deltas, when not nil, gains each cell's change
// in the open and late-open balances.
func (e *Engine) sum(ctx context.Context, sources []aggregate.Source, a rollup.Query, deltas map[rollup.Cell][2]int64) (map[rollup.Cell]aggregate.Counts, error) {
	sums, err := e.rollups.Sum(e.limited(ctx), a, sources...)
	if err != nil {
		return nil, e.classify(err)
	}
	out := make(map[rollup.Cell]aggregate.Counts, len(sums))
	for c, s := range sums {
		out[c] = aggregate.CountsOf(s)
		if deltas != nil {
			d := deltas[c]
			deltas[c] = [2]int64{d[0] + s.Flow[dossier.Open], d[1] + s.Flow[dossier.LateOpen]}
		}
	}
	return out, nil
}

// parallel runs fns at once and returns the first error in their order.
func parallel(fns ...func() error) error {
	if len(fns) == 1 {
		return fns[0]()
	}
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, f := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// limited puts ctx's queries under the execution limit.
func (e *Engine) limited(ctx context.Context) context.Context {
	// max_execution_time counts whole seconds, and 0 would mean no limit.
	secs := max(1, int(math.Ceil(e.timeout.Seconds())))
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_execution_time": secs}))
}

// query runs q under the execution limit and hands each row to scan.
func (e *Engine) query(ctx context.Context, what, q string, args []any, scan func(func(...any) error) error) error {
	rows, err := e.conn.Query(e.limited(ctx), q, args...)
	if err != nil {
		return e.queryError(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows.Scan); err != nil {
			return e.queryError(what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return e.queryError(what, err)
	}
	return nil
}

// codeTimeout is ClickHouse's TIMEOUT_EXCEEDED.
const codeTimeout = 159

func (e *Engine) queryError(what string, err error) error {
	if t := e.timedOut(err); t != nil {
		return t
	}
	return fmt.Errorf("query %s: %w", what, err)
}

// classify is err, as a TimeoutError when the execution limit ended the
// query.
func (e *Engine) classify(err error) error {
	if t := e.timedOut(err); t != nil {
		return t
	}
	return err
}

// timedOut is err as a TimeoutError when the execution limit ended the
// query, else nil.
func (e *Engine) timedOut(err error) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == codeTimeout {
		return &TimeoutError{Limit: e.timeout.String(), Err: err}
	}
	return nil
}

// balances returns, per unit as filed (or in one cell), the dossiers open
// and open past their deadline at the moment before: the rollup reader's
// Balances, the live figures' reader too, under the execution limit.
func (e *Engine) balances(ctx context.Context, codes []string, before time.Time, byArea bool) (map[string]rollup.Balance, error) {
	out, err := e.rollups.Balances(e.limited(ctx), rollup.Scope{Hierarchy: e.h.Name(), Codes: codes}, before, byArea)
	if err != nil {
		return nil, e.classify(err)
	}
	return out, nil
}
