package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/chstore"
)

// TestVerifyFindsAndRepairsAFigureThatDiffers is the operator's view of
// `iocd verify`: after an incident it names the rollup, unit and bucket
// whose stored figure differs from the records, exits non-zero, and with
// --repair corrects it, after which it finds nothing.
func TestVerifyFindsAndRepairsAFigureThatDiffers(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	if code, r := n.ingest(
		event("v1", "vd1", "26740", "received", "online", 2*time.Hour),
		event("v2", "vd1", "26740", "resolved", "online", time.Hour),
		event("v3", "vd2", "26743", "received", "in_person", time.Hour),
	); code != 202 || r.Accepted != 3 {
		t.Fatalf("ingest: got %d %+v", code, r)
	}
	args := []string{"--clickhouse-addr", cfg.ClickHouse.Addr, "--clickhouse-database", cfg.ClickHouse.Database, "--confirm", "0"}
	var out bytes.Buffer
	if err := verify(args, &out); err != nil {
		t.Fatalf("verify after a clean ingest: %v\n%s", err, out.String())
	}
	// Without Redis, a running node's writers cannot be paused from here.
	if err := verify(append(args, "--repair"), &out); err == nil || !strings.Contains(err.Error(), "stop it before --repair") {
		t.Fatalf("repair while the node writes: got %v, want a refusal saying to stop iocd", err)
	}
	n.stop()

	// An incident: a day's figure of 26743 counts one dossier too many.
	store, err := chstore.Open(context.Background(), cfg.ClickHouse, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	day := time.Now().In(hcm).Format("2006-01-02")
	b, err := store.Conn().PrepareBatch(context.Background(), "INSERT INTO "+cfg.ClickHouse.Database+".dossier_flow_day (hierarchy, area_code, d, received)")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := time.Parse("2006-01-02", day)
	if err := b.Append("vn-2025", "26743", d, int64(1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = verify(args, &out)
	if err == nil || !strings.Contains(err.Error(), "found 1 differences; run again with --repair") {
		t.Fatalf("verify after the incident: got %v, want 1 difference found\n%s", err, out.String())
	}
	for _, want := range []string{"dossier_flow_day", "vn-2025", "26743", day, "received"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report does not name %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := verify(append(args, "--repair"), &out); err != nil {
		t.Fatalf("repair: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := verify(args, &out); err != nil {
		t.Fatalf("verify after the repair: %v\n%s", err, out.String())
	}
}
