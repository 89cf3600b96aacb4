package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/devservices"
)

// Cluster is ZooKeeper and a ClickHouse cluster "ioc" of two shards of two
// replicas, as iocdev up --cluster starts them.
type Cluster struct {
	*devservices.Cluster
	ZooKeeper *devservices.Server
}

// StartCluster starts a cluster for the calling package's tests, once;
// Main stops it. Tests isolate themselves with a database of their own,
// and a test that kills a member starts it again before it ends (Start).
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if cluster != nil {
		return cluster
	}
	dir, err := os.MkdirTemp("", "ioc-test-cluster-")
	if err != nil {
		t.Fatalf("create data directory for the cluster: %v", err)
	}
	dirs = append(dirs, dir)
	ctx := context.Background()
	zk, err := devservices.StartZooKeeper(ctx, devservices.Options{Dir: filepath.Join(dir, "zookeeper")})
	if err != nil {
		t.Fatalf("start zookeeper: %v", err)
	}
	c, err := devservices.StartClickHouseCluster(ctx, devservices.ClusterOptions{Dir: dir, ZooKeeper: []string{zk.Addr}})
	if err != nil {
		_ = zk.Stop()
		t.Fatalf("start clickhouse cluster: %v", err)
	}
	cluster = &Cluster{Cluster: c, ZooKeeper: zk}
	return cluster
}

// RestartZooKeeper starts ZooKeeper again, after a test killed it, on its
// port and with its data.
func (c *Cluster) RestartZooKeeper(t testing.TB) {
	t.Helper()
	_, port, _ := strings.Cut(c.ZooKeeper.Addr, ":")
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("zookeeper address %s: %v", c.ZooKeeper.Addr, err)
	}
	zk, err := devservices.StartZooKeeper(context.Background(), devservices.Options{Dir: c.ZooKeeper.Dir, Port: p})
	if err != nil {
		t.Fatalf("restart zookeeper: %v", err)
	}
	mu.Lock()
	c.ZooKeeper = zk
	mu.Unlock()
}

// ClusterStore opens a fresh, migrated database on the cluster through
// its first server; the cluster is thrown away with its data when the
// package's tests end.
func ClusterStore(t testing.TB, c *Cluster) *chstore.Store {
	t.Helper()
	return openMigrated(t, chstore.Config{Addr: c.Addrs()[0], Database: databaseName(), Cluster: c.Name})
}
