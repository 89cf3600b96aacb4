package devservices

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// ClusterMember places a ClickHouse server in a cluster: ClickHouse's own
// replication (ReplicatedMergeTree tables coordinated by ZooKeeper) and
// sharding (Distributed tables), on loopback.
type ClusterMember struct {
	// Name is the cluster's, as ON CLUSTER and Distributed() name it.
	Name string
	// Shards lists each shard's replicas by native host:port.
	Shards [][]string
	// Shard and Replica are this server's place in Shards.
	Shard, Replica int
	// ZooKeeper lists the coordinators' host:port.
	ZooKeeper []string
	// InterserverPort is where the shard's other replicas fetch parts
	// from this one.
	InterserverPort int
}

// Macros are the values of {cluster}, {shard} and {replica} on this
// server, as replicated tables' paths use them.
func (m *ClusterMember) Macros() (cluster, shard, replica string) {
	return m.Name, fmt.Sprintf("%02d", m.Shard+1), fmt.Sprintf("r%d", m.Replica+1)
}

// clusterConfig is the configuration of a member of a cluster, or nothing.
// Every replica writes through to the others itself (internal_replication),
// so a Distributed table sends each row to one replica of its shard.
func clusterConfig(m *ClusterMember) string {
	if m == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("  <interserver_http_host>127.0.0.1</interserver_http_host>\n")
	fmt.Fprintf(&b, "  <interserver_http_port>%d</interserver_http_port>\n", m.InterserverPort)
	b.WriteString("  <zookeeper>\n")
	for _, zk := range m.ZooKeeper {
		host, port, _ := strings.Cut(zk, ":")
		fmt.Fprintf(&b, "    <node><host>%s</host><port>%s</port></node>\n", host, port)
	}
	// A killed server's session, and the ephemeral nodes that say it is
	// active, expire within seconds.
	b.WriteString("    <session_timeout_ms>6000</session_timeout_ms>\n  </zookeeper>\n")
	fmt.Fprintf(&b, "  <remote_servers>\n    <%s>\n", m.Name)
	for _, shard := range m.Shards {
		b.WriteString("      <shard>\n        <internal_replication>true</internal_replication>\n")
		for _, r := range shard {
			host, port, _ := strings.Cut(r, ":")
			fmt.Fprintf(&b, "        <replica><host>%s</host><port>%s</port></replica>\n", host, port)
		}
		b.WriteString("      </shard>\n")
	}
	fmt.Fprintf(&b, "    </%s>\n  </remote_servers>\n", m.Name)
	cluster, shard, replica := m.Macros()
	fmt.Fprintf(&b, "  <macros>\n    <cluster>%s</cluster>\n    <shard>%s</shard>\n    <replica>%s</replica>\n  </macros>\n", cluster, shard, replica)
	b.WriteString("  <distributed_ddl>\n    <path>/clickhouse/task_queue/ddl</path>\n  </distributed_ddl>\n")
	return b.String()
}

// clusterMemberReady asks the server on httpPort for the distributed DDL
// queue in ZooKeeper. A member that answers pings but is not yet connected
// to ZooKeeper crashes (18.16) on an ON CLUSTER statement sent then.
func clusterMemberReady(httpPort int) error {
	q := url.QueryEscape("SELECT count() FROM system.zookeeper WHERE path = '/clickhouse/task_queue/ddl'")
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/?query=%s", httpPort, q))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("reading the DDL queue in ZooKeeper answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// ClusterOptions say how to start a ClickHouse cluster.
type ClusterOptions struct {
	// Dir holds a directory per server (s1r1, s1r2, …).
	Dir string
	// Name is the cluster's; default "ioc".
	Name string
	// Shards and Replicas (per shard) default to 2 each.
	Shards, Replicas int
	// ZooKeeper lists the coordinators' host:port (StartZooKeeper).
	ZooKeeper []string
	// Detach, as Options.Detach.
	Detach bool
}

// Cluster is a running ClickHouse cluster on loopback.
//
// Concurrency: Start, Kill and Stop of different servers may run at once;
// Servers is read under no lock, so do not read it while starting one.
type Cluster struct {
	Name    string
	Servers [][]*Server // [shard][replica]; a stopped server stays, stopped

	opts    ClusterOptions
	members [][]*ClusterMember
}

// StartClickHouseCluster starts Shards × Replicas ClickHouse servers that
// form one cluster coordinated by opts.ZooKeeper, and waits until each
// answers. Cluster.Start starts one again in its own directory, as a
// replica returning after a crash.
func StartClickHouseCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	if opts.Name == "" {
		opts.Name = "ioc"
	}
	if opts.Shards <= 0 {
		opts.Shards = 2
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 2
	}
	if len(opts.ZooKeeper) == 0 {
		return nil, errors.New("start clickhouse cluster: needs ZooKeeper's address (StartZooKeeper)")
	}
	c := &Cluster{Name: opts.Name, opts: opts}
	shards := make([][]string, opts.Shards)
	c.members = make([][]*ClusterMember, opts.Shards)
	for s := range shards {
		for r := 0; r < opts.Replicas; r++ {
			tcp, err := FreePort()
			if err != nil {
				return nil, err
			}
			inter, err := FreePort()
			if err != nil {
				return nil, err
			}
			shards[s] = append(shards[s], fmt.Sprintf("127.0.0.1:%d", tcp))
			c.members[s] = append(c.members[s], &ClusterMember{
				Name: opts.Name, Shards: shards, Shard: s, Replica: r,
				ZooKeeper: opts.ZooKeeper, InterserverPort: inter,
			})
		}
	}
	c.Servers = make([][]*Server, opts.Shards)
	for s := range c.Servers {
		c.Servers[s] = make([]*Server, opts.Replicas)
	}
	// Started side by side: each takes seconds to load.
	var wg sync.WaitGroup
	errs := make([]error, opts.Shards*opts.Replicas)
	for s := range c.members {
		for r := range c.members[s] {
			wg.Go(func() { errs[s*opts.Replicas+r] = c.Start(ctx, s, r) })
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Stop()
		return nil, fmt.Errorf("start clickhouse cluster: %w", err)
	}
	return c, nil
}

// Start starts the server of shard s, replica r (counted from 0) in its
// directory and on its ports, and waits until it answers.
func (c *Cluster) Start(ctx context.Context, s, r int) error {
	m := c.members[s][r]
	_, port, _ := strings.Cut(m.Shards[s][r], ":")
	tcp, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("shard %d replica %d: port %q: %w", s+1, r+1, port, err)
	}
	srv, err := StartClickHouse(ctx, Options{
		Dir:     filepath.Join(c.opts.Dir, fmt.Sprintf("s%dr%d", s+1, r+1)),
		Port:    tcp,
		Detach:  c.opts.Detach,
		Cluster: m,
	})
	if err != nil {
		return fmt.Errorf("shard %d replica %d: %w", s+1, r+1, err)
	}
	c.Servers[s][r] = srv
	return nil
}

// Addrs lists every server's native address, shard by shard.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, shard := range c.members {
		for _, m := range shard {
			out = append(out, m.Shards[m.Shard][m.Replica])
		}
	}
	return out
}

// Member is the place of shard s, replica r in the cluster.
func (c *Cluster) Member(s, r int) *ClusterMember { return c.members[s][r] }

// Stop stops every server.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, shard := range c.Servers {
		for _, srv := range shard {
			if srv != nil {
				wg.Go(func() { _ = srv.Stop() })
			}
		}
	}
	wg.Wait()
}
