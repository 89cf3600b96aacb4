package chstore

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// The migrations are written for one server. On a cluster each statement is
// rewritten (see cluster.go for where the tables live):
//
//	CREATE TABLE  → the Replicated engine on the local tables, ON CLUSTER,
//	                and a Distributed table over it;
//	CREATE MATERIALIZED VIEW → on the local tables, ON CLUSTER;
//	ALTER TABLE   → on the local table, ON CLUSTER (a replicated ALTER),
//	                then its Distributed table made again with the new
//	                columns: 18.16 cannot ALTER a Distributed table ON
//	                CLUSTER over replicated shards, and it holds no data;
//	DROP TABLE    → both, ON CLUSTER;
//	INSERT … SELECT (a copy within the schema) → on each shard's local
//	                tables, on one replica; replication does the rest.
//
// A table that a later migration drops is not created on a cluster that
// does not have it, and no statement touches it: a new cluster starts from
// the schema as it ends, not from its history.
var (
	clusterStmtRE = regexp.MustCompile(`(?s)^\s*(CREATE TABLE IF NOT EXISTS|CREATE MATERIALIZED VIEW IF NOT EXISTS|ALTER TABLE|DROP TABLE IF EXISTS|INSERT INTO)\s+\{db\}\.(\w+)(.*)$`)
	engineRE      = regexp.MustCompile(`ENGINE\s*=\s*(\w*MergeTree)(\(([^)]*)\))?`)
	tableRefRE    = regexp.MustCompile(`\{db\}\.(\w+)`)
)

// droppedInTheEnd lists the tables and views whose last word in the
// migrations is DROP.
func droppedInTheEnd(ms []Migration) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		for _, stmt := range m.Statements {
			if sm := clusterStmtRE.FindStringSubmatch(stmt); sm != nil {
				switch {
				case strings.HasPrefix(sm[1], "DROP"):
					out[sm[2]] = true
				case strings.HasPrefix(sm[1], "CREATE"):
					delete(out, sm[2])
				}
			}
		}
	}
	return out
}

// skipOnCluster says whether a cluster skips stmt: it names a table that a
// later migration drops and that the cluster does not have. DROP always
// runs, so that a table made before it was dropped does go.
func (s *Store) skipOnCluster(ctx context.Context, stmt string, dropped map[string]bool) (bool, error) {
	if s.cluster == "" || strings.HasPrefix(strings.TrimSpace(stmt), "DROP") {
		return false, nil
	}
	for _, ref := range tableRefRE.FindAllStringSubmatch(stmt, -1) {
		if !dropped[ref[1]] {
			continue
		}
		var n uint64
		if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", s.local, ref[1]).Scan(&n); err != nil {
			return false, fmt.Errorf("look for table %s.%s: %w", s.local, ref[1], err)
		}
		if n == 0 {
			return true, nil
		}
	}
	return false, nil
}

// applyOnCluster runs one migration statement on the cluster, rewritten as
// the file comment says.
func (s *Store) applyOnCluster(ctx context.Context, stmt string) error {
	sm := clusterStmtRE.FindStringSubmatch(stmt)
	if sm == nil {
		return fmt.Errorf("a migration statement a cluster cannot run (want CREATE TABLE IF NOT EXISTS, CREATE MATERIALIZED VIEW IF NOT EXISTS, ALTER TABLE, DROP TABLE IF EXISTS or INSERT INTO on {db}.name): %.60s", stmt)
	}
	verb, table, rest := sm[1], sm[2], sm[3]
	local := strings.NewReplacer("{db}", s.local, "{tz}", s.zone)
	on := " ON CLUSTER " + s.cluster
	switch verb {
	case "CREATE TABLE IF NOT EXISTS":
		e := engineRE.FindStringSubmatchIndex(rest)
		if e == nil {
			return fmt.Errorf("table %s: a cluster replicates MergeTree family tables only", table)
		}
		args := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s', '{replica}'", s.local, table)
		if e[6] >= 0 && strings.TrimSpace(rest[e[6]:e[7]]) != "" {
			args += ", " + rest[e[6]:e[7]]
		}
		rest = rest[:e[0]] + "ENGINE = Replicated" + rest[e[2]:e[3]] + "(" + args + ")" + rest[e[1]:]
		if err := s.onCluster(ctx, s.conn, verb+" "+s.local+"."+table+on+local.Replace(rest)); err != nil {
			return err
		}
		return s.distribute(ctx, table)
	case "CREATE MATERIALIZED VIEW IF NOT EXISTS":
		return s.onCluster(ctx, s.conn, verb+" "+s.local+"."+table+on+local.Replace(rest))
	case "ALTER TABLE":
		if err := s.onCluster(ctx, s.conn, verb+" "+s.local+"."+table+on+local.Replace(rest)); err != nil && !duplicateColumn(err) {
			return err
		}
		if err := s.onCluster(ctx, s.conn, "DROP TABLE IF EXISTS "+s.db+"."+table+on); err != nil {
			return err
		}
		return s.distribute(ctx, table)
	case "DROP TABLE IF EXISTS":
		for _, db := range []string{s.db, s.local} {
			if err := s.onCluster(ctx, s.conn, verb+" "+db+"."+table+on); err != nil {
				return err
			}
		}
		return nil
	default: // INSERT INTO
		for i, sh := range s.shards {
			if err := sh.conn.Exec(ctx, local.Replace(stmt)); err != nil {
				return fmt.Errorf("on shard %d: %w", i+1, err)
			}
		}
		return nil
	}
}

// distribute makes the Distributed table over a local table. Its sharding
// key sends what is inserted through it to the first shard: ingest writes
// the shards itself (see cluster.go).
func (s *Store) distribute(ctx context.Context, table string) error {
	return s.onCluster(ctx, s.conn, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s ON CLUSTER %s AS %s.%s ENGINE = Distributed(%s, %s, %s, 0)",
		s.db, table, s.cluster, s.local, table, s.cluster, s.local, table))
}
