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
	tables := names(t, s, "SELECT name FROM system.tables WHERE database = ? AND engine != 'MaterializedView'", db)
	for _, want := range []string{"dossier_history", "ingest_journal", "dossier_flow_minute", "dossier_flow_hour", "dossier_flow_day",
		"dossier_flow_month", "dossier_flow_day_by", "camera_events", "camera_kpi_minute", "camera_kpi_hour", "sensor_readings",
		"sensor_stat_minute", "sensor_stat_hour", "sensor_max_minute", "sensor_max_hour", "schema_migrations", "dashboard_documents"} {
		if !slices.Contains(tables, want) {
			t.Errorf("table %s missing; have %v", want, tables)
		}
	}
	for _, gone := range []string{"dossier_events", "dossier_state", "dossier_timeline", "sensor_kpi_minute", "sensor_kpi_hour"} {
		if slices.Contains(tables, gone) {
			t.Errorf("table %s is still there after the migration that replaced it", gone)
		}
	}
	// No additive figure comes from a view: a view is not atomic with its
	// source's insert. Only views whose result a second firing does not
	// change (maxima, latest values, last seen) remain.
	views := names(t, s, "SELECT name FROM system.tables WHERE database = ? AND engine = 'MaterializedView'", db)
	slices.Sort(views)
	want := []string{"camera_last_seen_mv", "sensor_last_seen_mv", "sensor_latest_mv", "sensor_max_hour_mv", "sensor_max_minute_mv"}
	if !slices.Equal(views, want) {
		t.Errorf("materialized views %v, want only %v", views, want)
	}
}

func names(t *testing.T, s *chstore.Store, q string, args ...any) []string {
	t.Helper()
	rows, err := s.Conn().Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func TestOpenRejectsBadDatabaseName(t *testing.T) {
	_, err := chstore.Open(context.Background(), chstore.Config{Addr: "127.0.0.1:1", Database: "x; DROP"}, slog.Default())
	if err == nil || !strings.Contains(err.Error(), "letters, digits and underscores") {
		t.Errorf("got %v, want a refusal naming the allowed characters", err)
	}
}

// TestUpgradeKeepsWhatWasStored runs the schema of the release before the
// exact write path (migrations up to 6), stores records the way it did,
// and upgrades: the events, with the changes they carried, move to
// dossier_history, and the sensor statistics to their new rollups, so that
// every figure reads the same after the upgrade.
func TestUpgradeKeepsWhatWasStored(t *testing.T) {
	ctx := context.Background()
	db := testenv.Database(t)
	s, err := chstore.Open(ctx, chstore.Config{Addr: testenv.ClickHouseAddr(t), Database: db}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ms, err := chstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version > 6 {
			break
		}
		for _, stmt := range m.Statements {
			if err := s.ApplyStatement(ctx, stmt); err != nil {
				t.Fatalf("migration %d: %v", m.Version, err)
			}
		}
	}
	at := time.Date(2026, 10, 1, 23, 30, 0, 0, time.UTC)
	b, err := s.Conn().PrepareBatch(ctx, "INSERT INTO "+db+".dossier_events (event_id, dossier_id, hierarchy, area_code, channel, status, occurred_at, ingested_at, `delta.t`, `delta.area_code`, `delta.received`, `delta.open`)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("e1", "d1", "vn-2025", "26743", "online", "received", at, at, []time.Time{at}, []string{"26743"}, []int8{1}, []int8{1}); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Conn().PrepareBatch(ctx, "INSERT INTO "+db+".sensor_readings (event_id, sensor_id, kind, value, unit, hierarchy, area_code, lat, lon, observed_at, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []float64{40, 60} {
		if err := r.Append("r"+string(rune('1'+i)), "AQ-1", "pm25", v, "ug/m3", "vn-2025", "26743", 10.7, 106.7, at, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Send(); err != nil {
		t.Fatal(err)
	}

	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	var events uint64
	var received, open int64
	if err := s.Conn().QueryRow(ctx, "SELECT count(), sum(arraySum(`delta.received`)), sum(arraySum(`delta.open`)) FROM "+db+".dossier_history WHERE event_id = 'e1'").Scan(&events, &received, &open); err != nil {
		t.Fatal(err)
	}
	if events != 1 || received != 1 || open != 1 {
		t.Errorf("dossier_history after the upgrade: %d events carrying %d received and %d open, want 1, 1 and 1", events, received, open)
	}
	var n int64
	var sum, mx float64
	if err := s.Conn().QueryRow(ctx, "SELECT sum(readings), sum(value_sum) FROM "+db+".sensor_stat_hour WHERE kind = 'pm25'").Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if err := s.Conn().QueryRow(ctx, "SELECT maxMerge(value_max) FROM "+db+".sensor_max_hour WHERE kind = 'pm25'").Scan(&mx); err != nil {
		t.Fatal(err)
	}
	if n != 2 || sum != 100 || mx != 60 {
		t.Errorf("sensor rollups after the upgrade: %d readings summing %v, max %v; want 2, 100, 60", n, sum, mx)
	}
	// Migrating again copies nothing twice.
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM "+db+".dossier_history").Scan(&events); err != nil || events != 1 {
		t.Errorf("dossier_history after migrating again: %d rows (%v), want 1", events, err)
	}
}
