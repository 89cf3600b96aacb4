package chstore_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	db := testenv.Database(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func() *chstore.Store {
		t.Helper()
		s, err := chstore.Open(ctx, chstore.Config{Addr: testenv.ClickHouseAddr(t), Database: db}, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	ms, err := chstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	s := open()
	applied, err := s.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(ms) {
		t.Fatalf("first start applied %v, want all %d migrations", applied, len(ms))
	}
	// A second node starting on the same database applies nothing.
	again, err := open().Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second start applied %v, want none", again)
	}
	// Every statement survives a rerun (a step interrupted halfway).
	for _, m := range ms {
		for _, stmt := range m.Statements {
			if err := s.ApplyStatement(ctx, stmt); err != nil {
				t.Errorf("rerun of migration %d: %v", m.Version, err)
			}
		}
	}
	var tables []string
	rows, err := s.Conn().Query(ctx, "SELECT name FROM system.tables WHERE database = ?", db)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	for _, want := range []string{"dossier_events", "dossier_state", "dossier_timeline", "dossier_flow_hour", "dossier_flow_day", "dossier_flow_month", "dossier_flow_day_by", "schema_migrations"} {
		if !slices.Contains(tables, want) {
			t.Errorf("table %s missing; have %v", want, tables)
		}
	}
}

func TestOpenRejectsBadDatabaseName(t *testing.T) {
	_, err := chstore.Open(context.Background(), chstore.Config{Addr: "127.0.0.1:1", Database: "x; DROP"}, slog.Default())
	if err == nil || !strings.Contains(err.Error(), "letters, digits and underscores") {
		t.Errorf("got %v, want a refusal naming the allowed characters", err)
	}
}

// TestRollupsFollowAChangeOfTimeZone stores a dossier received at 23:30 UTC
// (06:30 the next day in Hồ Chí Minh City), restarts in UTC and checks the
// day rollup moved it to the UTC day.
func TestRollupsFollowAChangeOfTimeZone(t *testing.T) {
	ctx := context.Background()
	db := testenv.Database(t)
	open := func(zone string) *chstore.Store {
		t.Helper()
		s, err := chstore.Open(ctx, chstore.Config{Addr: testenv.ClickHouseAddr(t), Database: db, TimeZone: zone}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open("Asia/Ho_Chi_Minh")
	b, err := s.Conn().PrepareBatch(ctx, "INSERT INTO "+db+".dossier_events (event_id, dossier_id, hierarchy, area_code, channel, status, occurred_at, ingested_at, `delta.t`, `delta.area_code`, `delta.received`)")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 10, 1, 23, 30, 0, 0, time.UTC)
	if err := b.Append("e1", "d1", "vn-2025", "26743", "online", "received", at, at, []time.Time{at}, []string{"26743"}, []int8{1}); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	day := func(s *chstore.Store) string {
		t.Helper()
		var d time.Time
		if err := s.Conn().QueryRow(ctx, "SELECT d FROM "+db+".dossier_flow_day WHERE received != 0").Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d.Format("2006-01-02")
	}
	if got := day(s); got != "2026-10-02" {
		t.Errorf("in Hồ Chí Minh City: got day %s, want 2026-10-02", got)
	}
	if got := day(open("UTC")); got != "2026-10-01" {
		t.Errorf("after moving to UTC: got day %s, want 2026-10-01", got)
	}
}
