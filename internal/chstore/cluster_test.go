package chstore_test

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestRestartReplicaDetachesAPartZooKeeperLacks checks, on ClickHouse
// itself, what SettleDoubt does to a part in doubt: a part active on a
// replica that ZooKeeper lacks (made here by deleting its node with
// Debian's zkCli.sh; an insert cut off from ZooKeeper while it commits
// leaves the same, at a moment no test can choose) counts in every read
// until the replica is restarted, which detaches it. The table then counts
// what ZooKeeper has, takes inserts, replicates them, and its materialized
// view still follows it.
func TestRestartReplicaDetachesAPartZooKeeperLacks(t *testing.T) {
	ctx := context.Background()
	c := testenv.StartCluster(t)
	db := testenv.ClusterStore(t, c).Database() + "_local"
	r1, r2 := openConn(t, c.Servers[0][0].Addr), openConn(t, c.Servers[0][1].Addr)
	for _, conn := range []driver.Conn{r1, r2} {
		if err := conn.Exec(ctx, "CREATE TABLE "+db+".doubt (p UInt8, n UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/"+
			db+"/doubt', '{replica}') PARTITION BY p ORDER BY n"); err != nil {
			t.Fatal(err)
		}
	}
	if err := r1.Exec(ctx, "CREATE MATERIALIZED VIEW "+db+".doubt_rows ENGINE = SummingMergeTree ORDER BY p AS SELECT p, count() AS c FROM "+
		db+".doubt GROUP BY p"); err != nil {
		t.Fatal(err)
	}
	// Partition 0 holds what ZooKeeper keeps; the part of partition 1,
	// alone in it so that no merge takes it, is the one it will lack.
	for _, q := range []string{"INSERT INTO %s.doubt SELECT 0, number FROM numbers(100000)", "INSERT INTO %s.doubt SELECT 1, number FROM numbers(1000)"} {
		if err := r1.Exec(ctx, fmt.Sprintf(q, db)); err != nil {
			t.Fatal(err)
		}
	}
	var path, part string
	if err := r1.QueryRow(ctx, "SELECT replica_path FROM system.replicas WHERE database = ? AND table = 'doubt'", db).Scan(&path); err != nil {
		t.Fatal(err)
	}
	if err := r1.QueryRow(ctx, "SELECT name FROM system.parts WHERE database = ? AND table = 'doubt' AND active AND partition = '1'", db).Scan(&part); err != nil {
		t.Fatal(err)
	}
	// rows counts the replica's rows, and those of its parts ZooKeeper has.
	rows := func(conn driver.Conn) (all, known uint64, err error) {
		err = conn.QueryRow(ctx, "SELECT sum(rows), sumIf(rows, name IN (SELECT name FROM system.zookeeper WHERE path = '"+path+
			"/parts')) FROM system.parts WHERE database = ? AND table = 'doubt' AND active", db).Scan(&all, &known)
		return all, known, err
	}
	out, err := exec.Command("/usr/share/zookeeper/bin/zkCli.sh", "-server", c.ZooKeeper.Addr, "deleteall", path+"/parts/"+part).CombinedOutput()
	if err != nil {
		t.Fatalf("delete part %s from ZooKeeper: %v\n%s", part, err, out)
	}
	if all, known, err := rows(r1); err != nil || all != 101000 || known != 100000 {
		t.Fatalf("before the restart the replica should count the part ZooKeeper lacks: %d rows, %d known, want 101000 and 100000 (%v)", all, known, err)
	}

	if err := chstore.RestartReplica(ctx, r1, db, "doubt"); err != nil {
		t.Fatal(err)
	}
	if all, known, err := rows(r1); err != nil || all != 100000 || known != 100000 {
		t.Fatalf("after the restart the replica should count what ZooKeeper has: %d rows, %d known, want 100000 (%v)", all, known, err)
	}
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		err := r1.Exec(ctx, "INSERT INTO "+db+".doubt SELECT 2, number FROM numbers(10)")
		return err == nil, fmt.Sprintf("the restarted replica takes no insert: %v", err)
	})
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		var n, viewed uint64
		err1 := r2.QueryRow(ctx, "SELECT count() FROM "+db+".doubt WHERE p = 2").Scan(&n)
		err2 := r1.QueryRow(ctx, "SELECT sum(c) FROM "+db+".doubt_rows WHERE p = 2").Scan(&viewed)
		return err1 == nil && err2 == nil && n == 10 && viewed == 10,
			fmt.Sprintf("the insert after the restart: %d rows on the other replica, %d in the view, want 10 (%v, %v)", n, viewed, err1, err2)
	})
}
