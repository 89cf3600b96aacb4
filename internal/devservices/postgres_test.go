package devservices_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openioc/ioc/internal/devservices"
)

// TestPostgresStartsStopsAndKeepsItsData: PostgreSQL starts in a
// directory under t.TempDir (whose parent only its owner may enter: when
// the test runs as root, the server's own user must still reach it), takes
// UTF-8 text, stops at once while a client is connected, and started again
// on the same directory and port has what was written.
func TestPostgresStartsStopsAndKeepsItsData(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "postgres")
	s, err := devservices.StartPostgres(ctx, devservices.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if os.Geteuid() == 0 {
		st, err := os.Stat(filepath.Join(dir, "data"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Errorf("the data directory is root's: PostgreSQL runs as another user")
		}
	}
	c, err := pgx.Connect(ctx, devservices.PostgresURL(s))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE xa (ma text, ten text); INSERT INTO xa VALUES ('26734', 'Phường Sài Gòn')`); err != nil {
		t.Fatal(err)
	}
	var enc string
	if err := c.QueryRow(ctx, "SHOW server_encoding").Scan(&enc); err != nil || enc != "UTF8" {
		t.Errorf("server_encoding %q (%v), want UTF8", enc, err)
	}
	start := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	// A smart shutdown would wait for the client, then be killed after
	// 30 s; the fast one closes it.
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("stopping with a client connected took %s", took)
	}
	_ = c.Close(ctx)

	_, p, _ := net.SplitHostPort(s.Addr)
	port, _ := strconv.Atoi(p)
	s2, err := devservices.StartPostgres(ctx, devservices.Options{Dir: dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Stop() })
	c2, err := pgx.Connect(ctx, devservices.PostgresURL(s2))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	var name string
	if err := c2.QueryRow(ctx, "SELECT ten FROM xa WHERE ma = '26734'").Scan(&name); err != nil || name != "Phường Sài Gòn" {
		t.Errorf("after a restart: %q, %v; want Phường Sài Gòn", name, err)
	}
}
