package chstore

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// In binds values as the list of an IN clause: write "x IN ?" (no
// parentheses). A plain slice would bind as an Array, which 18.16 refuses
// to compare with a column. Callers must not pass an empty list.
func In[T any](values []T) clickhouse.GroupSet {
	vs := make([]any, len(values))
	for i, v := range values {
		vs[i] = v
	}
	return clickhouse.GroupSet{Value: vs}
}

// Time formats t for comparison with a DateTime('UTC') column. Binding a
// time.Time sends its zone name, which older servers may not know. A
// DateTime holds 1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC, and a
// server given a time outside fails or wraps around: t is clamped to that
// range, which compares with any stored value as t itself would.
func Time(t time.Time) string {
	switch s := t.Unix(); {
	case s < 0:
		t = time.Unix(0, 0)
	case s > 1<<32-1:
		t = time.Unix(1<<32-1, 0)
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// CountsByKey runs a query whose rows are (String, UInt64) and returns them
// as a map, e.g. the open alarms or overdue dossiers per unit.
func CountsByKey(ctx context.Context, conn driver.Conn, query string, args ...any) (map[string]uint64, error) {
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var k string
		var n uint64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}
