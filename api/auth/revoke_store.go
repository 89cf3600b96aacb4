package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/chstore"
)

// ClickHouseRevocations keeps revocations in the token_revocations table.
type ClickHouseRevocations struct {
	conn driver.Conn
	db   string
}

// NewClickHouseRevocations returns the store over a migrated database.
func NewClickHouseRevocations(store *chstore.Store) *ClickHouseRevocations {
	return &ClickHouseRevocations{conn: store.Conn(), db: store.Database()}
}

// LoadRevocations reads every revocation.
func (s *ClickHouseRevocations) LoadRevocations(ctx context.Context) ([]Revocation, error) {
	rows, err := s.conn.Query(ctx, `SELECT jti, reason, revoked_by, revoked_at, expires_at FROM `+s.db+`.token_revocations FINAL`)
	if err != nil {
		return nil, fmt.Errorf("read token_revocations: %w", err)
	}
	defer rows.Close()
	var out []Revocation
	for rows.Next() {
		var r Revocation
		var exp time.Time
		if err := rows.Scan(&r.ID, &r.Reason, &r.RevokedBy, &r.RevokedAt, &exp); err != nil {
			return nil, fmt.Errorf("read token_revocations: %w", err)
		}
		if exp.Unix() > 0 {
			e := exp.UTC()
			r.ExpiresAt = &e
		}
		r.RevokedAt = r.RevokedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read token_revocations: %w", err)
	}
	return out, nil
}

// AddRevocation stores r.
func (s *ClickHouseRevocations) AddRevocation(ctx context.Context, r Revocation) error {
	b, err := s.conn.PrepareBatch(ctx, `INSERT INTO `+s.db+`.token_revocations (jti, reason, revoked_by, revoked_at, expires_at)`)
	if err != nil {
		return fmt.Errorf("prepare insert into token_revocations: %w", err)
	}
	exp := time.Unix(0, 0).UTC()
	if r.ExpiresAt != nil {
		exp = r.ExpiresAt.UTC()
	}
	if err := b.Append(r.ID, r.Reason, r.RevokedBy, r.RevokedAt.UTC(), exp); err != nil {
		b.Abort()
		return fmt.Errorf("append to token_revocations batch: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into token_revocations: %w", err)
	}
	return nil
}
