package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Database is the migrated ClickHouse database the stores below keep their
// tables in: internal/chstore's Store, which the caller opens and migrates,
// so that auth depends on the driver alone and not on the storage layer.
type Database interface {
	Conn() driver.Conn
	Database() string
}

// ClickHouseRevocations keeps revocations in the token_revocations table.
type ClickHouseRevocations struct {
	conn driver.Conn
	db   string
}

// NewClickHouseRevocations returns the store over a migrated database.
func NewClickHouseRevocations(store Database) *ClickHouseRevocations {
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

// ClickHouseKioskLinks keeps the short links of kiosk tokens in the
// kiosk_links table.
type ClickHouseKioskLinks struct {
	conn driver.Conn
	db   string
}

// NewClickHouseKioskLinks returns the store over a migrated database.
func NewClickHouseKioskLinks(store Database) *ClickHouseKioskLinks {
	return &ClickHouseKioskLinks{conn: store.Conn(), db: store.Database()}
}

// AddKioskLink stores l.
func (s *ClickHouseKioskLinks) AddKioskLink(ctx context.Context, l KioskLink) error {
	b, err := s.conn.PrepareBatch(ctx, `INSERT INTO `+s.db+`.kiosk_links (code, jti, screen, token, created_by, created_at, expires_at)`)
	if err != nil {
		return fmt.Errorf("prepare insert into kiosk_links: %w", err)
	}
	if err := b.Append(l.Code, l.TokenID, l.Screen, l.Token, l.CreatedBy, l.CreatedAt.UTC(), l.ExpiresAt.UTC()); err != nil {
		b.Abort()
		return fmt.Errorf("append to kiosk_links batch: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into kiosk_links: %w", err)
	}
	return nil
}

// KioskLink reads the link of code.
func (s *ClickHouseKioskLinks) KioskLink(ctx context.Context, code string) (KioskLink, bool, error) {
	rows, err := s.conn.Query(ctx, `SELECT code, jti, screen, token, created_by, created_at, expires_at FROM `+s.db+
		`.kiosk_links FINAL WHERE code = ? LIMIT 1`, code)
	if err != nil {
		return KioskLink{}, false, fmt.Errorf("read kiosk_links: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return KioskLink{}, false, rows.Err()
	}
	var l KioskLink
	if err := rows.Scan(&l.Code, &l.TokenID, &l.Screen, &l.Token, &l.CreatedBy, &l.CreatedAt, &l.ExpiresAt); err != nil {
		return KioskLink{}, false, fmt.Errorf("read kiosk_links: %w", err)
	}
	l.CreatedAt, l.ExpiresAt = l.CreatedAt.UTC(), l.ExpiresAt.UTC()
	return l, true, nil
}
