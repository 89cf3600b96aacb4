package chstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migration is one versioned schema step. Its statements are idempotent
// (IF NOT EXISTS; one ADD COLUMN per ALTER, see ApplyStatement) so that two
// nodes starting together, or a step interrupted halfway, can run it again
// safely.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Migrations lists the embedded migrations in version order. File names are
// NNNN_name.sql; "{db}" in a statement stands for the database and "{tz}"
// for the time zone of local days.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationsFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		base := strings.TrimSuffix(e.Name(), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := migrationsFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: name, Statements: splitStatements(string(b))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two migrations with version %d", out[i].Version)
		}
	}
	return out, nil
}

// Migrate applies the migrations not yet recorded in schema_migrations and
// returns the versions it applied.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	if err := s.ApplyStatement(ctx, `CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
		version UInt32, name String, applied_at DateTime('UTC')
	) ENGINE = ReplacingMergeTree ORDER BY version`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	var dropped map[string]bool
	if s.cluster != "" {
		dropped = droppedInTheEnd(ms)
	}
	done := map[int]bool{}
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT version FROM "+s.db+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		done[int(v)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	var applied []int
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		for i, stmt := range m.Statements {
			if skip, err := s.skipOnCluster(ctx, stmt, dropped); err != nil || skip {
				if err != nil {
					return applied, fmt.Errorf("migration %04d_%s, statement %d: %w", m.Version, m.Name, i+1, err)
				}
				continue
			}
			if err := s.ApplyStatement(ctx, stmt); err != nil {
				return applied, fmt.Errorf("migration %04d_%s, statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := s.record(ctx, m); err != nil {
			return applied, fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
		}
		s.logger.Info("applied migration", "version", m.Version, "name", m.Name)
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// splitStatements splits on semicolons that end a line and drops comment
// lines; migrations hold no string literals with ";\n" in them.
// ApplyStatement runs one migration statement, "{db}" standing for the
// database; on a cluster, as applyOnCluster rewrites it. ClickHouse 18.16
// has no ADD COLUMN IF NOT EXISTS, so adding a column that is already
// there counts as done.
func (s *Store) ApplyStatement(ctx context.Context, stmt string) error {
	var err error
	if s.cluster != "" {
		err = s.applyOnCluster(ctx, stmt)
	} else {
		err = s.conn.Exec(ctx, strings.NewReplacer("{db}", s.db, "{tz}", s.zone).Replace(stmt))
	}
	if strings.Contains(strings.ToUpper(stmt), "ADD COLUMN") && duplicateColumn(err) {
		return nil
	}
	return err
}

// duplicateColumn says whether err is ADD COLUMN's refusal of a column that
// exists, from this server or, in an ON CLUSTER statement, from another.
func duplicateColumn(err error) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	return ex.Code == codeDuplicateColumn || strings.Contains(ex.Message, fmt.Sprintf("Code: %d,", codeDuplicateColumn))
}

// codeDuplicateColumn is ClickHouse's ILLEGAL_COLUMN, which ADD COLUMN
// raises for a column that exists.
const codeDuplicateColumn = 44

func splitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			if stmt := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); stmt != "" {
				out = append(out, stmt)
			}
			cur.Reset()
		}
	}
	if stmt := strings.TrimSpace(cur.String()); stmt != "" {
		out = append(out, stmt)
	}
	return out
}

// record uses a batch: on 18.16 an INSERT with inline VALUES over the native
// protocol waits for a data block that clickhouse-go never sends.
func (s *Store) record(ctx context.Context, m Migration) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".schema_migrations (version, name, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(uint32(m.Version), m.Name, time.Now().UTC()); err != nil {
		b.Abort()
		return err
	}
	return b.Send()
}
