package chstore

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// zonedView matches a migration statement creating a view that cuts local
// days or months: "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.<view> TO
// {db}.<table> AS <select>".
var zonedView = regexp.MustCompile(`(?s)^CREATE MATERIALIZED VIEW IF NOT EXISTS \{db\}\.(\w+) TO \{db\}\.(\w+) AS\s+(SELECT.*\{tz\}.*)$`)

// settleZone records the zone the local-day rollups are cut in and, when
// the deployment's zone has changed since, cuts them again from the events
// in the new one. It runs at start, before the node takes records; other
// nodes should be stopped while it does.
func (s *Store) settleZone(ctx context.Context) error {
	var was string
	rows, err := s.conn.Query(ctx, "SELECT argMax(zone, set_at) FROM "+s.db+".dossier_flow_zone")
	if err != nil {
		return fmt.Errorf("read the rollups' time zone: %w", err)
	}
	for rows.Next() {
		if err := rows.Scan(&was); err != nil {
			rows.Close()
			return fmt.Errorf("read the rollups' time zone: %w", err)
		}
	}
	rows.Close()
	if was == s.zone {
		return nil
	}
	if was != "" {
		s.logger.Warn("the time zone changed: cutting the day and month rollups again", "from", was, "to", s.zone)
		if err := s.recut(ctx); err != nil {
			return err
		}
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".dossier_flow_zone (zone, set_at)")
	if err != nil {
		return fmt.Errorf("record the rollups' time zone: %w", err)
	}
	if err := b.Append(s.zone, time.Now().UTC()); err != nil {
		b.Abort()
		return fmt.Errorf("record the rollups' time zone: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record the rollups' time zone: %w", err)
	}
	return nil
}

// recut rebuilds every zoned rollup: its view is created again with the
// new zone, and its table refilled from the events through the view's own
// query.
func (s *Store) recut(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		for _, stmt := range m.Statements {
			match := zonedView.FindStringSubmatch(stmt)
			if match == nil {
				continue
			}
			view, table, query := match[1], match[2], match[3]
			cols, err := s.columns(ctx, table)
			if err != nil {
				return err
			}
			for _, step := range []string{
				"DROP TABLE IF EXISTS {db}." + view,
				"TRUNCATE TABLE {db}." + table,
				stmt,
				"INSERT INTO {db}." + table + " (" + strings.Join(cols, ", ") + ") " + query,
			} {
				if err := s.ApplyStatement(ctx, step); err != nil {
					return fmt.Errorf("cut %s again: %w", table, err)
				}
			}
			s.logger.Info("cut a rollup in the new time zone", "table", table, "zone", s.zone)
		}
	}
	return nil
}

// columns lists a table's columns in order: system.columns lists them as
// the table declares them (DESCRIBE's shape differs between releases).
func (s *Store) columns(ctx context.Context, table string) ([]string, error) {
	rows, err := s.conn.Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = ?", s.db, table)
	if err != nil {
		return nil, fmt.Errorf("list the columns of %s: %w", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list the columns of %s: %w", table, err)
		}
		out = append(out, name)
	}
	return out, rows.Err()
}
