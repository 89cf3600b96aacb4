package chstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/testenv"
)

// TestMigrationsOnAClusterGiveTheSameSchema migrates a database on two
// shards of two replicas and compares it, table by table and column by
// column, with the same migrations on one server: every server has the
// replicated tables and the Distributed tables over them, readers see the
// same columns, and a second start applies nothing.
func TestMigrationsOnAClusterGiveTheSameSchema(t *testing.T) {
	ctx := context.Background()
	c := testenv.StartCluster(t)
	single := testenv.Store(t)
	s := testenv.ClusterStore(t, c)
	if len(s.Shards()) != 2 {
		t.Fatalf("%d shards, want 2", len(s.Shards()))
	}
	// Two shards' writers may hold leases with the same token: their
	// batches must still be named apart, in order, and 0 stay 0.
	for _, c := range []struct {
		s           *chstore.Store
		token, want uint64
	}{{single, 7, 7}, {s.Shards()[0], 7, 14}, {s.Shards()[1], 7, 15}, {s.Shards()[1], 8, 17}, {s.Shards()[0], 0, 0}} {
		if got := c.s.BatchID(c.token); got != c.want {
			t.Errorf("%s: batch of token %d: got %d, want %d", c.s.Scope(), c.token, got, c.want)
		}
	}
	want := columns(t, single.Conn(), single.Database(), "engine NOT IN ('MaterializedView')")
	wantViews := names(t, single, "SELECT name FROM system.tables WHERE database = ? AND engine = 'MaterializedView' ORDER BY name", single.Database())
	for _, addr := range c.Addrs() {
		conn := openConn(t, addr)
		if got := columns(t, conn, s.Database(), "engine = 'Distributed'"); !slices.Equal(got, want) {
			t.Errorf("%s: Distributed tables of %s:\n%s\nwant, as on one server:\n%s", addr, s.Database(), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if got := columns(t, conn, s.Database()+"_local", "engine LIKE 'Replicated%MergeTree'"); !slices.Equal(got, want) {
			t.Errorf("%s: replicated tables of %s_local:\n%s\nwant:\n%s", addr, s.Database(), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		var views []string
		rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND engine = 'MaterializedView' ORDER BY name", s.Database()+"_local")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			views = append(views, n)
		}
		rows.Close()
		if !slices.Equal(views, wantViews) {
			t.Errorf("%s: views %v, want %v", addr, views, wantViews)
		}
	}
	again, err := s.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second start applied %v, want none", again)
	}
}

// columns lists "table.column type" of db's tables matching where.
func columns(t *testing.T, conn driver.Conn, db, where string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf(`SELECT c.table, c.name, c.type FROM system.columns AS c
		ANY INNER JOIN (SELECT name AS table FROM system.tables WHERE database = '%s' AND %s) USING table
		WHERE c.database = '%s' ORDER BY c.table, c.name`, db, where, db))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var table, name, typ string
		if err := rows.Scan(&table, &name, &typ); err != nil {
			t.Fatal(err)
		}
		out = append(out, table+"."+name+" "+typ)
	}
	return out
}

func openConn(t *testing.T, addr string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
