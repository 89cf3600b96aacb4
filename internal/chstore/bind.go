package chstore

import (
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
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
// time.Time sends its zone name, which older servers may not know.
func Time(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }
