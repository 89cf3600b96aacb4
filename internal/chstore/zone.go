package chstore

import (
	"context"
	"fmt"
	"time"
)

// SettleZone records the zone the local day and month rollups are cut in
// and returns the zone they were cut in before, when it differs ("" on a
// new database, or when the zone is unchanged). When it returns a zone, the
// caller cuts those rollups again before it takes records: they are kept by
// the writers, which own how they are derived. Other nodes should be
// stopped meanwhile.
func (s *Store) SettleZone(ctx context.Context) (was string, err error) {
	rows, err := s.conn.Query(ctx, "SELECT argMax(zone, set_at) FROM "+s.db+".dossier_flow_zone")
	if err != nil {
		return "", fmt.Errorf("read the rollups' time zone: %w", err)
	}
	for rows.Next() {
		if err := rows.Scan(&was); err != nil {
			rows.Close()
			return "", fmt.Errorf("read the rollups' time zone: %w", err)
		}
	}
	rows.Close()
	if was == s.zone {
		return "", nil
	}
	if was != "" {
		s.logger.Warn("the time zone changed: the day and month rollups must be cut again", "from", was, "to", s.zone)
	}
	return was, nil
}

// RecordZone notes that the local day and month rollups are now cut in the
// store's zone.
func (s *Store) RecordZone(ctx context.Context) error {
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
