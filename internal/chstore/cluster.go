package chstore

// A cluster deployment (Config.Cluster) keeps the schema of one server and
// changes only where the tables live:
//
//   - every table is created in the database "<db>_local" on every server
//     as the Replicated counterpart of its engine, one replica set per
//     shard (ZooKeeper path /clickhouse/tables/{shard}/<db>_local/<table>);
//     materialized views stay on these local tables;
//   - the database "<db>" holds a Distributed table of the same name over
//     each, so that every reader's SQL runs unchanged and sums the shards;
//   - ingest writes a shard's tables itself, through Shards: a province's
//     records always go to the same shard (ShardOf), so a dossier's history
//     and its derivation stay on one shard, and the journal and markers
//     that make a batch exact (migration 0007) work per shard as they do
//     on one server;
//   - the tables the application writes through the Distributed tables
//     (devices, alarms, periods, documents, tokens: small, written rarely)
//     all go to the first shard, the Distributed tables' sharding key being
//     the constant 0, and are replicated there.
//
// Which setting carries which guarantee:
//   - a shard's writers write to one replica at a time (failoverConn), the
//     first of the shard's replicas that answers and has caught up: their
//     duplicate checks read what they wrote, and they move to another
//     replica only once that one holds every acknowledged batch; with none,
//     the shard's writes fail and ingest answers 503: it never counts twice;
//   - a part whose commit to ZooKeeper is in doubt counts as not known
//     until ZooKeeper is seen to have it or ClickHouse has detached it
//     (InDoubt; ingest's settle waits for it), which iocd has ClickHouse
//     do once the part is past ClickHouse's own age for it, if its check
//     has not come (SettleDoubt);
//   - a batch's id carries its shard (BatchID), as readers see every shard;
//   - ReplicatedMergeTree's insert deduplication drops a block written
//     again byte for byte (a retried Send), on every replica;
//   - readers prefer the replicas in their configured order
//     (load_balancing = in_order, from the user's profile), the order the
//     writers prefer, and skip one more than
//     max_replica_delay_for_distributed_queries behind;
//   - the Distributed tables insert synchronously (insert_distributed_sync):
//     an acknowledged write of the application is on a replica of its
//     shard, not in a server's local queue;
//   - IN and JOIN over two Distributed tables run their subquery once, on
//     the server asked (distributed_product_mode = global, from the user's
//     profile), as the tables the application writes live on the first
//     shard only.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// distributedSettings are the settings of a cluster store's reads and
// writes through the Distributed tables (see the file comment).
var distributedSettings = clickhouse.Settings{
	"insert_distributed_sync":                            1,
	"max_replica_delay_for_distributed_queries":          5,
	"fallback_to_stale_replicas_for_distributed_queries": 1,
}

// profileSettings are the settings of the file comment that ClickHouse
// 18.16 takes only from the user's profile: its protocol carries numbers
// alone in a query's settings, and reads a signed one (an Int64 setting
// such as distributed_ddl_task_timeout) as another number than the one
// sent, so the cluster's DDL timeout is the profile's too.
var profileSettings = map[string]string{"load_balancing": "in_order", "distributed_product_mode": "global"}

// checkProfile refuses a cluster whose profile lacks profileSettings.
func checkProfile(ctx context.Context, conn driver.Conn, addr string) error {
	for name, want := range profileSettings {
		var got string
		if err := conn.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = ?", name).Scan(&got); err != nil {
			return fmt.Errorf("read setting %s at %s: %w", name, addr, err)
		}
		if got != want {
			return fmt.Errorf("clickhouse at %s has %s = %s: a cluster needs <%s>%s</%s> in the profile of IOC_CLICKHOUSE_USER (users.xml), on every server", addr, name, got, name, want, name)
		}
	}
	return nil
}

// Cluster is the cluster's name, or "" for one server.
func (s *Store) Cluster() string { return s.cluster }

// Shards lists a store per shard, bound to the shard's replicated tables,
// in the order of remote_servers; nil for one server.
func (s *Store) Shards() []*Store { return s.shards }

// BatchID turns a fencing token of a lease this store's writers hold into
// the id of the batch written under it: the token itself on one server;
// on a cluster token × shards + the shard's index, so that two shards'
// writers, whose leases count on their own and may hand out the same token
// in the same millisecond, never name two batches alike where readers see
// every shard (the rollups' markers). It keeps order and 0 (no token).
func (s *Store) BatchID(token uint64) uint64 {
	if token == 0 || s.shardCount <= 1 {
		return token
	}
	return token*uint64(s.shardCount) + uint64(s.shardIndex)
}

// Official is ctx for writing what becomes official (a period's close):
// on a cluster, its inserts return only once every replica of the first
// shard, where the Distributed tables put what the application writes,
// holds their part (insert_quorum), and are refused at once while one of
// them is down, so that an official figure never lives on one disk only.
// ctx itself on one server.
func (s *Store) Official(ctx context.Context) context.Context {
	if s.quorum <= 1 {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"insert_quorum":         s.quorum,
		"insert_quorum_timeout": int(officialTimeout.Milliseconds()),
	}))
}

// officialTimeout bounds how long an official insert waits for a replica
// that went down during it.
const officialTimeout = 30 * time.Second

// QuorumRefused says whether err is an official insert refused because a
// replica is down (Official): too few live replicas, or an earlier
// official insert still waiting for one.
func QuorumRefused(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && (ex.Code == codeTooFewLiveReplicas || ex.Code == codeUnsatisfiedQuorumForPreviousWrite)
}

// ClickHouse's TOO_FEW_LIVE_REPLICAS and UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE.
const (
	codeTooFewLiveReplicas                = 285
	codeUnsatisfiedQuorumForPreviousWrite = 286
)

// ShardOf is the index in Shards of the shard that keeps key's records (a
// province's code): the same key goes to the same shard for as long as the
// number of shards stays the same.
func ShardOf(key string, shards int) int {
	if shards <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(shards))
}

// openShards reads the cluster's shards from the server, creates both
// databases on every server and opens a store per shard.
func (s *Store) openShards(ctx context.Context, cfg Config, boot driver.Conn) error {
	s.cluster, s.local = cfg.Cluster, cfg.Database+"_local"
	if err := checkProfile(ctx, boot, cfg.Addr); err != nil {
		return err
	}
	rows, err := boot.Query(ctx, "SELECT shard_num, host_name, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num", cfg.Cluster)
	if err != nil {
		return fmt.Errorf("read cluster %s from system.clusters at %s: %w", cfg.Cluster, cfg.Addr, err)
	}
	var replicas [][]string
	for rows.Next() {
		var shard uint32
		var host string
		var port uint16
		if err := rows.Scan(&shard, &host, &port); err != nil {
			rows.Close()
			return fmt.Errorf("read cluster %s: %w", cfg.Cluster, err)
		}
		for len(replicas) < int(shard) {
			replicas = append(replicas, nil)
		}
		replicas[shard-1] = append(replicas[shard-1], fmt.Sprintf("%s:%d", host, port))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read cluster %s: %w", cfg.Cluster, err)
	}
	if len(replicas) == 0 {
		return fmt.Errorf("clickhouse at %s knows no cluster %q: name one of its remote_servers in IOC_CLICKHOUSE_CLUSTER, or leave it empty for one server", cfg.Addr, cfg.Cluster)
	}
	s.quorum = len(replicas[0])
	for _, db := range []string{s.local, s.db} {
		if err := s.onCluster(ctx, boot, "CREATE DATABASE IF NOT EXISTS "+db+" ON CLUSTER "+s.cluster); err != nil {
			return fmt.Errorf("create database %s on cluster %s: %w", db, s.cluster, err)
		}
	}
	for i, addrs := range replicas {
		conns := make([]driver.Conn, len(addrs))
		for r, addr := range addrs {
			if conns[r], err = openConn(cfg, []string{addr}, s.local, nil); err != nil {
				return err
			}
		}
		logger := s.logger.With("shard", i+1)
		s.shards = append(s.shards, &Store{
			conn: newFailoverConn(conns, addrs, s.local, logger), db: s.local, zone: s.zone, loc: s.loc,
			logger: logger, scope: fmt.Sprintf("%s.shard%d", s.db, i+1),
			cluster: s.cluster, local: s.local, shardIndex: i, shardCount: len(replicas),
		})
	}
	return nil
}

// onCluster runs an ON CLUSTER statement. When it times out (the profile's
// distributed_ddl_task_timeout, 180 s unless set; see profileSettings for
// why a query cannot set it), the servers
// still running it (on a loaded machine, an ALTER of a replicated table
// can take longer than the timeout) are waited for, reading the task's
// active hosts in ZooKeeper; then it is done: a server that is down, or
// that has not reached the statement in its queue yet, applies it in
// order, since ZooKeeper keeps it in the distributed DDL queue.
func (s *Store) onCluster(ctx context.Context, conn driver.Conn, stmt string) error {
	err := conn.Exec(ctx, stmt)
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != codeTimeoutExceeded {
		return err
	}
	task := ddlTaskRE.FindStringSubmatch(ex.Message)
	if task == nil {
		return err
	}
	// A server may stay in the task's active hosts for good (a replicated
	// ALTER waiting on a replica that hangs): after ddlWaitLimit it counts
	// as one that is down, which applies the statement in order later.
	giveUp := time.Now().Add(ddlWaitLimit)
	for {
		var running uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = ?", task[1]+"/active").Scan(&running)
		if err == nil && running == 0 {
			break
		}
		if time.Now().After(giveUp) {
			s.logger.Warn("servers still run an ON CLUSTER statement long past its timeout; going on: they apply it in order",
				"statement", stmt, "waited", ddlWaitLimit, "running", running, "err", err)
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; and waiting for the servers still running it: %w", ex, ctx.Err())
		case <-time.After(ddlPoll):
		}
	}
	s.logger.Warn("an ON CLUSTER statement outlasted its timeout: waited for the servers running it; any that is down applies it when it returns",
		"statement", stmt, "err", ex.Message)
	return nil
}

// ddlTaskRE finds the distributed DDL task in a timed-out ON CLUSTER
// statement's error.
var ddlTaskRE = regexp.MustCompile(`Watching task (\S+) is executing longer`)

// ddlWaitLimit bounds how long onCluster waits for the servers still
// running a timed-out statement.
const ddlWaitLimit = 5 * time.Minute

// ddlPoll is how often onCluster asks whether a statement still runs.
const ddlPoll = 500 * time.Millisecond

// codeTimeoutExceeded is ClickHouse's TIMEOUT_EXCEEDED.
const codeTimeoutExceeded = 159

// failoverConn sends everything to one replica of a shard: the first, in
// the configured order, that answers and has caught up (caughtUp). A
// replica that is behind is never chosen: a writer reading it would miss
// batches it acknowledged and store them twice. It stays with that replica
// while it answers, and chooses again after a call fails on a replica that
// no longer answers a ping.
//
// Once on a later replica, it goes back to an earlier one as soon as that
// one has caught up (asking at most every returnEvery), since readers take
// the replicas in the same order: reading where the writers write, they do
// not see figures behind what the writers told them of. It moves only at
// a quiet moment, so that whatever waits for an insert to end, or reads
// what one stored, asks the replica that ran it: no write of its own in
// flight, and on the replica it leaves no insert of iocd's running and no
// part in doubt.
type failoverConn struct {
	driver.Conn // the first replica: the calls not routed below
	replicas    []driver.Conn
	addrs       []string
	db          string
	logger      *slog.Logger

	mu     sync.Mutex
	cur    int       // index in replicas; -1 until chosen
	writes int       // Exec calls and batches under way
	looked time.Time // when an earlier replica was last asked whether it caught up
}

// returnEvery bounds how often a failoverConn on a later replica asks the
// earlier ones whether they caught up, and returnTimeout how long it waits
// for each (calls wait meanwhile).
const (
	returnEvery   = time.Second
	returnTimeout = 500 * time.Millisecond
)

func newFailoverConn(replicas []driver.Conn, addrs []string, db string, logger *slog.Logger) *failoverConn {
	return &failoverConn{Conn: replicas[0], replicas: replicas, addrs: addrs, db: db, logger: logger, cur: -1}
}

// use makes replica i the one in use. f.mu is held.
func (f *failoverConn) use(i int) driver.Conn {
	if f.cur != i {
		f.logger.Info("writing to a replica of the shard", "replica", f.addrs[i], "was", f.addrOf(f.cur))
	}
	f.cur = i
	return f.replicas[i]
}

func (f *failoverConn) addrOf(i int) string {
	if i < 0 {
		return "none"
	}
	return f.addrs[i]
}

// pick returns the replica in use, choosing one if there is none; a write
// counts as under way until its end is told (ended).
func (f *failoverConn) pick(ctx context.Context, write bool) (driver.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.choose(ctx)
	if err == nil && write {
		f.writes++
	}
	return c, err
}

// ended tells that a write picked earlier is over.
func (f *failoverConn) ended() {
	f.mu.Lock()
	f.writes--
	f.mu.Unlock()
}

// choose is pick's choice. f.mu is held.
func (f *failoverConn) choose(ctx context.Context) (driver.Conn, error) {
	if f.cur == 0 || f.cur > 0 && (f.writes > 0 || time.Since(f.looked) < returnEvery) {
		return f.replicas[f.cur], nil
	}
	if f.cur > 0 {
		f.looked = time.Now()
		if quiet(ctx, f.replicas[f.cur], f.db) != nil {
			return f.replicas[f.cur], nil
		}
		// Only the earlier replicas are asked; the one in use stays if
		// none of them has caught up.
		for i, c := range f.replicas[:f.cur] {
			if caughtUp(ctx, c, f.db, returnTimeout) == nil {
				return f.use(i), nil
			}
		}
		return f.replicas[f.cur], nil
	}
	var why []string
	for i, c := range f.replicas {
		err := caughtUp(ctx, c, f.db, 5*time.Second)
		if err == nil {
			return f.use(i), nil
		}
		why = append(why, fmt.Sprintf("%s: %v", f.addrs[i], err))
	}
	return nil, fmt.Errorf("no replica of the shard can take writes (%s): start the replica that is down, or wait for ZooKeeper", strings.Join(why, "; "))
}

// quiet says whether no insert of iocd's (their query ids start "ioc:")
// runs on the replica and no part it wrote is in doubt.
func quiet(ctx context.Context, c driver.Conn, db string) error {
	ctx, cancel := context.WithTimeout(ctx, returnTimeout)
	defer cancel()
	var n uint64
	if err := c.QueryRow(ctx, "SELECT count() FROM system.processes WHERE startsWith(query_id, 'ioc:')").Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%d inserts running", n)
	}
	return InDoubt(ctx, c, db)
}

// InDoubt says, with an error naming them, whether a part of a replicated
// table of db may yet disappear: a part whose commit to ZooKeeper was cut
// (an insert that answered "Unknown status, client must retry") stays on
// disk and in every read, and ClickHouse checks it only 5 minutes after
// it was written (parts_to_check counts it meanwhile), keeping it if
// ZooKeeper has it and detaching it if not. Asking ZooKeeper at once
// settles the first case without the wait: a part ZooKeeper has stays. A
// part it lacks while no insert into its table runs will be detached, and
// what is stored is not known until it is. Nil on a single server.
func InDoubt(ctx context.Context, c driver.Conn, db string) error {
	parts, err := doubtful(ctx, c, db)
	if err != nil {
		return err
	}
	return doubtError(parts)
}

// SettleDoubt is InDoubt for a caller that knows no insert of iocd's runs
// on the replica: it also does what ClickHouse's own check would do to a
// part ZooKeeper lacks once the part is past its age (doubtAge), when that
// check does not come. ClickHouse 18.16 checks a part put off for later
// only when something else wakes its check thread, and forgets a part it
// checked too young, so such a part can stay in every read, and the
// shard's writes wait, for as long as the server runs. Restarting the
// table's replica (SYSTEM RESTART REPLICA) makes ClickHouse compare its
// parts with ZooKeeper's as on start, and detach (as ignored_) those
// ZooKeeper lacks. It does so only where those parts hold a small share of
// the table's rows (doubtShare): more would make ClickHouse refuse to attach
// the table again, and that is left to its own check and to an operator.
func SettleDoubt(ctx context.Context, c driver.Conn, db string, logger *slog.Logger) error {
	parts, err := doubtful(ctx, c, db)
	if err != nil || len(parts) == 0 {
		return err
	}
	restarted := false
	for _, t := range restartable(parts, doubtAge) {
		if err := restartReplica(ctx, c, db, t); err != nil {
			return err
		}
		logger.Warn("restarted a table's replica to detach parts ZooKeeper never got, which ClickHouse had not checked",
			"table", db+"."+t, "parts", partNames(parts, t))
		restarted = true
	}
	if restarted {
		if parts, err = doubtful(ctx, c, db); err != nil {
			return err
		}
	}
	return doubtError(parts)
}

// restartReplica restarts the replica of db.table that c reaches, which
// compares its parts with ZooKeeper's and detaches those ZooKeeper lacks.
// It is not cut short with the caller's wait: a table half restarted is
// worse than a late answer.
func restartReplica(ctx context.Context, c driver.Conn, db, table string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restartTimeout)
	defer cancel()
	if err := c.Exec(ctx, "SYSTEM RESTART REPLICA `"+db+"`.`"+table+"`"); err != nil {
		return fmt.Errorf("restart replica %s.%s to detach the parts ZooKeeper lacks: %w", db, table, err)
	}
	return nil
}

// doubtPart is a part of a replicated table, active on the replica, that
// ZooKeeper lacks while ClickHouse has it to check.
type doubtPart struct {
	table, name string
	age         time.Duration // since it was written, by the server's clock
	rows        uint64
	tableRows   uint64 // of the table's active parts on the replica
}

// doubtAge is how old a part ZooKeeper lacks must be before SettleDoubt
// detaches it: ClickHouse's own rule (a part written more than 5 minutes
// ago and still not in ZooKeeper never will be, its insert's session being
// long over), with a margin.
const doubtAge = 5*time.Minute + 30*time.Second

// doubtShare is the largest share of a table's rows that the parts
// SettleDoubt detaches may hold: ClickHouse refuses to attach a table whose
// parts ZooKeeper lacks hold half of its rows.
const doubtShare = 0.1

// restartTimeout bounds a SYSTEM RESTART REPLICA.
const restartTimeout = 2 * time.Minute

// restartable lists the tables whose every part in doubt SettleDoubt may
// detach: each is past age, and together they hold at most doubtShare of
// the table's rows.
func restartable(parts []doubtPart, age time.Duration) []string {
	type table struct {
		old         bool
		rows, total uint64
	}
	tables := map[string]*table{}
	var order []string
	for _, p := range parts {
		t := tables[p.table]
		if t == nil {
			t = &table{old: true, total: p.tableRows}
			tables[p.table] = t
			order = append(order, p.table)
		}
		t.old = t.old && p.age >= age
		t.rows += p.rows
	}
	var out []string
	for _, name := range order {
		if t := tables[name]; t.old && float64(t.rows) <= doubtShare*float64(t.total) {
			out = append(out, name)
		}
	}
	return out
}

// partNames names table's parts among parts.
func partNames(parts []doubtPart, table string) []string {
	var out []string
	for _, p := range parts {
		if p.table == table {
			out = append(out, p.name)
		}
	}
	return out
}

// doubtError names the parts in doubt; nil for none.
func doubtError(parts []doubtPart) error {
	if len(parts) == 0 {
		return nil
	}
	doubt := make([]string, len(parts))
	for i, p := range parts {
		doubt[i] = fmt.Sprintf("%s/%s, %s old", p.table, p.name, p.age)
	}
	return fmt.Errorf("%d parts written while ZooKeeper was lost, which ZooKeeper lacks and ClickHouse detaches 5 minutes after their writing (%s)", len(parts), strings.Join(doubt, "; "))
}

// doubtful lists the parts in doubt on the replica c reaches.
func doubtful(ctx context.Context, c driver.Conn, db string) ([]doubtPart, error) {
	var tables []struct {
		Table string `ch:"table"`
		Path  string `ch:"replica_path"`
	}
	if err := c.Select(ctx, &tables, "SELECT table, replica_path FROM system.replicas WHERE database = ? AND parts_to_check > 0", db); err != nil {
		return nil, fmt.Errorf("read the parts being checked: %w", err)
	}
	var out []doubtPart
	for _, t := range tables {
		var parts []struct {
			Name string `ch:"name"`
			Age  int64  `ch:"age"`
			Rows uint64 `ch:"rows"`
		}
		// system.zookeeper needs its path as a constant: bound here. The
		// age is the server's, as ClickHouse's own check reckons it.
		err := c.Select(ctx, &parts, "SELECT name, toInt64(toUInt32(now())) - toInt64(toUInt32(modification_time)) AS age, rows"+
			" FROM system.parts WHERE database = ? AND table = ? AND active"+
			" AND name NOT IN (SELECT name FROM system.zookeeper WHERE path = ?)", db, t.Table, t.Path+"/parts")
		if err != nil {
			return nil, fmt.Errorf("ask ZooKeeper whether the parts of %s.%s being checked were committed: %w", db, t.Table, err)
		}
		if len(parts) == 0 {
			continue
		}
		var total uint64
		if err := c.QueryRow(ctx, "SELECT sum(rows) FROM system.parts WHERE database = ? AND table = ? AND active", db, t.Table).Scan(&total); err != nil {
			return nil, fmt.Errorf("count the rows of %s.%s: %w", db, t.Table, err)
		}
		for _, p := range parts {
			out = append(out, doubtPart{table: t.Table, name: p.Name, age: time.Duration(max(p.Age, 0)) * time.Second, rows: p.Rows, tableRows: total})
		}
	}
	return out, nil
}

// caughtUp says whether the replica answers and has every part announced
// by its siblings, for every replicated table of db: no part to fetch, no
// merge of parts it does not have (a sibling may have merged parts this
// one never fetched: it then fetches the merged part, and no insert shows
// in its queue), no entry of the log not yet pulled, no part it wrote
// whose commit to ZooKeeper is in doubt (InDoubt).
func caughtUp(ctx context.Context, c driver.Conn, db string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var behind, readonly, fetches, merges uint64
	// An empty log and a log of one entry not yet pulled both read
	// log_max_index 0; a pulled entry of a part to fetch is in the queue.
	err := c.QueryRow(ctx, `SELECT
		(SELECT countIf(log_pointer < log_max_index) FROM system.replicas WHERE database = ?),
		(SELECT countIf(is_readonly OR is_session_expired) FROM system.replicas WHERE database = ?),
		(SELECT count() FROM system.replication_queue WHERE database = ? AND type = 'GET_PART'),
		(SELECT count() FROM (SELECT table, arrayJoin(parts_to_merge) AS part FROM system.replication_queue
			WHERE database = ? AND type = 'MERGE_PARTS') WHERE (table, part) NOT IN (SELECT table, name FROM system.parts WHERE database = ?))`,
		db, db, db, db, db).Scan(&behind, &readonly, &fetches, &merges)
	switch {
	case err != nil:
		return err
	case readonly > 0:
		return errors.New("read-only: not connected to ZooKeeper")
	case behind+fetches+merges > 0:
		return fmt.Errorf("still fetching parts from another replica (%d parts, %d merges of parts it lacks, %d tables with log entries to pull)", fetches, merges, behind)
	}
	return InDoubt(ctx, c, db)
}

// done lets go of the replica in use when err came from a replica that no
// longer answers, so that the next call chooses again.
func (f *failoverConn) done(c driver.Conn, err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if c.Ping(ctx) == nil {
		return
	}
	f.mu.Lock()
	if f.cur >= 0 && f.replicas[f.cur] == c {
		f.logger.Warn("a replica of the shard stopped answering: choosing another", "replica", f.addrs[f.cur], "err", err)
		f.cur = -1
	}
	f.mu.Unlock()
}

func (f *failoverConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	c, err := f.pick(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := c.Query(ctx, query, args...)
	f.done(c, err)
	return rows, err
}

func (f *failoverConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	c, err := f.pick(ctx, false)
	if err != nil {
		return errRow{err}
	}
	row := c.QueryRow(ctx, query, args...)
	f.done(c, row.Err())
	return row
}

func (f *failoverConn) Select(ctx context.Context, dest any, query string, args ...any) error {
	c, err := f.pick(ctx, false)
	if err != nil {
		return err
	}
	err = c.Select(ctx, dest, query, args...)
	f.done(c, err)
	return err
}

func (f *failoverConn) Exec(ctx context.Context, query string, args ...any) error {
	c, err := f.pick(ctx, true)
	if err != nil {
		return err
	}
	defer f.ended()
	err = c.Exec(ctx, query, args...)
	f.done(c, err)
	return err
}

func (f *failoverConn) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	c, err := f.pick(ctx, true)
	if err != nil {
		return nil, err
	}
	b, err := c.PrepareBatch(ctx, query, opts...)
	f.done(c, err)
	if err != nil {
		f.ended()
		return nil, err
	}
	return &failoverBatch{Batch: b, f: f, c: c}, nil
}

func (f *failoverConn) Ping(ctx context.Context) error {
	c, err := f.pick(ctx, false)
	if err != nil {
		return err
	}
	err = c.Ping(ctx)
	f.done(c, err)
	return err
}

func (f *failoverConn) Close() error {
	var errs []error
	for _, c := range f.replicas {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// errRow is the row of a query that could not be sent.
type errRow struct{ err error }

func (r errRow) Err() error           { return r.err }
func (r errRow) Scan(...any) error    { return r.err }
func (r errRow) ScanStruct(any) error { return r.err }

// failoverBatch tells its conn when sending fails, and when it is over.
type failoverBatch struct {
	driver.Batch
	f    *failoverConn
	c    driver.Conn
	over sync.Once
}

func (b *failoverBatch) Send() error {
	defer b.over.Do(b.f.ended)
	err := b.Batch.Send()
	b.f.done(b.c, err)
	return err
}

func (b *failoverBatch) Abort() error {
	defer b.over.Do(b.f.ended)
	return b.Batch.Abort()
}

func (b *failoverBatch) Close() error {
	defer b.over.Do(b.f.ended)
	return b.Batch.Close()
}
