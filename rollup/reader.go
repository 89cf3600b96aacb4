package rollup

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/chstore"
)

// Store is what a Reader reads through.
type Store interface {
	Conn() driver.Conn
	Database() string
	// TimeZone is the zone the day and month rollups are cut in.
	TimeZone() string
}

// Reader reads the rollups of one database: the live windows (ReadWindows),
// sums over any range by step and breakdown (Sum, with Reads listing what
// that reads), and the balances of dossiers open at a moment (Balances).
// Every query names the hierarchy it reads, so marker rows never count in
// a figure (the live windows read them apart, to settle deltas), binds its
// values on the client, and names only allow-listed tables, columns and
// dimensions. A query runs under the settings ctx
// carries (e.g. max_execution_time).
//
// Concurrency: safe for concurrent use.
type Reader struct {
	conn driver.Conn
	db   string
	loc  *time.Location // the zone the day and month rollups are cut in
}

// NewReader returns a reader over store's rollups.
func NewReader(store Store) (*Reader, error) {
	loc, err := time.LoadLocation(store.TimeZone())
	if err != nil {
		return nil, fmt.Errorf("load the rollups' time zone %s: %w", store.TimeZone(), err)
	}
	return &Reader{conn: store.Conn(), db: store.Database(), loc: loc}, nil
}

// Scope names the units a read covers: every unit of the hierarchy (Codes
// nil), or the listed ones, each as filed (a unit's sums are its own
// rows; summing subtrees is the caller's).
type Scope struct {
	Hierarchy string
	Codes     []string
}

// filter restricts to the scope's units.
func (s Scope) filter(args []any) (string, []any) {
	if s.Codes == nil {
		return "", args
	}
	return " AND area_code IN ?", append(args, chstore.In(s.Codes))
}

// query runs q and hands each row to scan; what names the read in errors.
func (r *Reader) query(ctx context.Context, what, q string, args []any, scan func(func(...any) error) error) error {
	rows, err := r.conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("query %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows.Scan); err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}
