package ingest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

// TestRebuildCutsTheDayRollupsInTheNewZone stores a dossier received at
// 23:30 UTC (06:30 the next day in Hồ Chí Minh City), moves the deployment
// to UTC and cuts the local rollups again: the receipt moves to the UTC day,
// and every rollup still equals what the records give.
func TestRebuildCutsTheDayRollupsInTheNewZone(t *testing.T) {
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
		if _, err := s.SettleZone(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordZone(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open("Asia/Ho_Chi_Minh")
	w, err := NewWriter(BatchConfig{MaxAge: time.Millisecond}, deps(s, nil))
	if err != nil {
		t.Fatal(err)
	}
	runWriter(t, w.Run)
	at := time.Date(2026, 10, 1, 23, 30, 0, 0, time.UTC)
	due := at.Add(72 * time.Hour)
	if _, err := w.Write(ctx, []Dossier{{EventID: "e1", DossierID: "d1", Hierarchy: "vn-2025", AreaCode: "26743",
		Channel: "online", Status: "received", OccurredAt: at, DueAt: &due}}); err != nil {
		t.Fatal(err)
	}
	day := func(s *chstore.Store) string {
		t.Helper()
		var d time.Time
		if err := s.Conn().QueryRow(ctx, "SELECT d FROM "+db+".dossier_flow_day WHERE hierarchy = 'vn-2025' AND received != 0").Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d.Format("2006-01-02")
	}
	if got := day(s); got != "2026-10-02" {
		t.Errorf("in Hồ Chí Minh City: got day %s, want 2026-10-02", got)
	}

	u, err := chstore.Open(ctx, chstore.Config{Addr: testenv.ClickHouseAddr(t), Database: db, TimeZone: "UTC"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	was, err := u.SettleZone(ctx)
	if err != nil || was != "Asia/Ho_Chi_Minh" {
		t.Fatalf("settle the zone: got %q, %v; want the zone it changed from", was, err)
	}
	rec, err := NewReconciler(ReconcilerConfig{}, u, lease.NewLocal(), nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if got := day(u); got != "2026-10-01" {
		t.Errorf("after moving to UTC: got day %s, want 2026-10-01", got)
	}
	checkExact(t, u)
}

// TestDerivingABatchAgainChangesNothingTheViewsKeep: the maxima, latest
// values and last-seen times of a batch are derived again by recovery with
// statements of their own; emptied and derived again from every batch,
// those tables read exactly as the views left them.
func TestDerivingABatchAgainChangesNothingTheViewsKeep(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	cw, err := NewCameraWriter(BatchConfig{MaxAge: time.Millisecond}, deps(s, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	rw, err := NewReadingWriter(BatchConfig{MaxAge: time.Millisecond}, deps(s, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	runWriter(t, cw.Run)
	runWriter(t, rw.Run)
	for _, p := range []string{"a-", "b-"} {
		if _, err := cw.Write(ctx, someCameraEvents(p)); err != nil {
			t.Fatal(err)
		}
		rs := someReadings(p)
		for i := range rs {
			rs[i].Value += float64(len(p)) * 3 // the second batch has other values
			rs[i].ObservedAt = rs[i].ObservedAt.Add(time.Duration(len(p)) * time.Hour)
		}
		if _, err := rw.Write(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	snapshots := map[string]string{
		"device_last_seen":  "SELECT device_id, toString(max(seen)) FROM {db}.device_last_seen GROUP BY device_id ORDER BY device_id",
		"sensor_latest":     "SELECT sensor_id, kind, toString(argMaxMerge(value)), toString(maxMerge(observed)) FROM {db}.sensor_latest GROUP BY sensor_id, kind ORDER BY sensor_id, kind",
		"sensor_max_minute": "SELECT area_code, toString(t), kind, toString(maxMerge(value_max)) FROM {db}.sensor_max_minute GROUP BY area_code, t, kind ORDER BY area_code, t, kind",
		"sensor_max_hour":   "SELECT area_code, toString(t), kind, toString(maxMerge(value_max)) FROM {db}.sensor_max_hour GROUP BY area_code, t, kind ORDER BY area_code, t, kind",
	}
	read := func(q string) string {
		t.Helper()
		rows, err := s.Conn().Query(ctx, replaceDB(q, s.Database()))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols := len(rows.Columns())
		out := ""
		for rows.Next() {
			vals := make([]string, cols)
			ptrs := make([]any, cols)
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out += joinTab(vals) + "\n"
		}
		return out
	}
	before := map[string]string{}
	for table, q := range snapshots {
		if before[table] = read(q); before[table] == "" {
			t.Fatalf("%s is empty after the views fired", table)
		}
		if err := s.Conn().Exec(ctx, "TRUNCATE TABLE "+s.Database()+"."+table); err != nil {
			t.Fatal(err)
		}
	}
	batches, err := journal{conn: s.Conn(), db: s.Database()}.all(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		for _, stmt := range recoverers[b.kind].rederive {
			if err := s.Conn().Exec(ctx, replaceDB(stmt, s.Database()), b.id, chstore.Time(b.tMin), chstore.Time(b.tMax)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for table, q := range snapshots {
		if got := read(q); got != before[table] {
			t.Errorf("%s derived again:\n%s\nwant what the views wrote:\n%s", table, got, before[table])
		}
	}
}

func replaceDB(q, db string) string { return strings.ReplaceAll(q, "{db}", db) }

func joinTab(v []string) string { return strings.Join(v, "\t") }
