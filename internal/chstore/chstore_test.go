package chstore_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

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
