package devservices_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/devservices"
	"github.com/openioc/ioc/internal/testenv"
)

// TestClusterReplicatesShardsAndCatchesUp starts ZooKeeper and two shards
// of two replicas, as iocdev up --cluster does, and checks what a cluster
// deployment relies on with Debian's ClickHouse 18.16 and ZooKeeper 3.8:
// ON CLUSTER statements reach every server, a Distributed table spreads
// rows over the shards by key and reads them all back, a replica killed
// with kill -9 does not stop inserts, and it catches up when it returns.
func TestClusterReplicatesShardsAndCatchesUp(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	zk, err := devservices.StartZooKeeper(ctx, devservices.Options{Dir: filepath.Join(dir, "zookeeper")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zk.Stop() })
	c, err := devservices.StartClickHouseCluster(ctx, devservices.ClusterOptions{Dir: dir, ZooKeeper: []string{zk.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)

	var conns [2][2]driver.Conn
	for s := range 2 {
		for r := range 2 {
			conns[s][r] = open(t, c.Servers[s][r].Addr)
		}
	}
	first := conns[0][0]
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS ct ON CLUSTER ioc",
		"CREATE TABLE IF NOT EXISTS ct.events_local ON CLUSTER ioc (province String, id UInt64) " +
			"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/ct/events_local', '{replica}') ORDER BY id",
		"CREATE TABLE IF NOT EXISTS ct.events ON CLUSTER ioc AS ct.events_local " +
			"ENGINE = Distributed(ioc, ct, events_local, cityHash64(province))",
	} {
		if err := first.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	insert := func(from, n int) {
		t.Helper()
		// Synchronous: the insert returns once every shard stored its rows.
		ctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
		b, err := first.PrepareBatch(ctx, "INSERT INTO ct.events (province, id)")
		if err != nil {
			t.Fatal(err)
		}
		for i := from; i < from+n; i++ {
			if err := b.Append(fmt.Sprintf("%02d", i%34), uint64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatalf("insert rows %d–%d: %v", from, from+n-1, err)
		}
	}
	// count is the table's rows on conn's server, or none while it cannot
	// answer (a replica starting again).
	count := func(conn driver.Conn, table string) uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM ct."+table).Scan(&n); err != nil {
			return 0
		}
		return n
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		testenv.Eventually(t, 90*time.Second, func() (bool, string) { return ok(), what })
	}

	insert(0, 1000)
	// A shard's rows went to one of its replicas, which the other fetches.
	var local [2][2]uint64
	waitFor("each shard's replicas to hold the same rows", func() bool {
		for s := range 2 {
			for r := range 2 {
				local[s][r] = count(conns[s][r], "events_local")
			}
		}
		return local[0][0] == local[0][1] && local[1][0] == local[1][1] && local[0][0]+local[1][0] == 1000
	})
	if local[0][0] == 0 || local[1][0] == 0 {
		t.Fatalf("rows per shard %d and %d, want both shards used", local[0][0], local[1][0])
	}

	// kill -9 of a replica: inserts and reads go on through the others.
	c.Servers[0][1].Kill()
	insert(1000, 1000)
	// The insert returned once one replica of each shard stored its rows;
	// the other replica of shard 2 fetches them in the background, so a
	// read that picks it sees them a moment later (insert_quorum would
	// wait for it, and refuse inserts while a replica is down).
	waitFor("2000 rows read through the Distributed table with a replica down", func() bool { return count(first, "events") == 2000 })
	if err := c.Start(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	back := open(t, c.Servers[0][1].Addr)
	want := count(first, "events_local")
	waitFor("the returned replica to catch up", func() bool { return count(back, "events_local") == want })
	waitFor("2000 rows read through the returned replica's Distributed table", func() bool { return count(back, "events") == 2000 })
}

func open(t *testing.T, addr string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
