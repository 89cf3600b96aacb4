package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/chstore"
)

const (
	benchBatch   = 1000 // events per request
	benchClients = 8    // concurrent HTTP senders, as several integrators would be
	// benchFlush is the rows per direct insert: the server's own flush size
	// (IOC_INGEST_BATCH_ROWS), so that both sides write parts of one size.
	benchFlush = 5000
)

// benchEvents makes n distinct events of one run spread over HCM's communes.
func benchEvents(run string, from, n int, communes []string) []map[string]any {
	out := make([]map[string]any, n)
	for i := range n {
		k := from + i
		e := event(fmt.Sprintf("bench-%s-%d", run, k), fmt.Sprintf("d-%s-%d", run, k/3), communes[k%len(communes)],
			[]string{"received", "processing", "resolved"}[k%3], "online", time.Duration(k%3600)*time.Second)
		out[i] = e
	}
	return out
}

// BenchmarkIngest compares dossier ingest through HTTP (decode, validate,
// deduplicate, batch, acknowledge) with a direct clickhouse-go batch insert
// of the same rows into the same table, in the same run. An iteration is
// 1000 events on both sides. Both report events/s; make bench prints the
// ratio.
func BenchmarkIngest(b *testing.B) {
	communes := hcmCommunes(b)
	b.Run("direct", func(b *testing.B) {
		ctx := context.Background()
		cfg := testConfig(b)
		store, err := chstore.Open(ctx, cfg.ClickHouse, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		if _, err := store.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		// The rows, with what each changes in its dossier's figures, are
		// built before the timer, as the HTTP bodies are: the baseline is
		// storing the same rows the writer stores.
		type row struct {
			d     ingest.Dossier
			delta []dossier.Contribution
		}
		run := fmt.Sprint(time.Now().UnixNano())
		rows := make([]row, 0, b.N*benchBatch)
		for _, e := range benchEvents(run, 0, b.N*benchBatch, communes) {
			parse := func(k string) time.Time {
				t, _ := time.Parse(time.RFC3339, e[k].(string))
				return t.UTC()
			}
			received, due := parse("received_at"), parse("due_at")
			d := ingest.Dossier{EventID: e["event_id"].(string), DossierID: e["dossier_id"].(string), ProcedureCode: e["procedure_code"].(string),
				Sector: e["sector"].(string), Hierarchy: "vn-2025", AreaCode: e["area_code"].(string), Channel: e["channel"].(string),
				Status: e["status"].(string), OccurredAt: parse("occurred_at"), ReceivedAt: &received, DueAt: &due}
			delta := dossier.Derive([]dossier.Event{{EventID: d.EventID, Area: d.AreaCode, Status: d.Status, OccurredAt: d.OccurredAt,
				ReceivedAt: d.ReceivedAt, DueAt: d.DueAt, Channel: d.Channel, Sector: d.Sector, Procedure: d.ProcedureCode}})
			rows = append(rows, row{d, delta})
		}
		b.ResetTimer()
		for start := 0; start < len(rows); start += benchFlush {
			var derived []ingest.Derived
			for _, r := range rows[start:min(start+benchFlush, len(rows))] {
				derived = append(derived, ingest.Derived{Record: r.d, Delta: r.delta})
			}
			if err := ingest.StoreDerived(ctx, store, derived, time.Now().UTC()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("http", func(b *testing.B) {
		n := startNode(b, testConfig(b))
		run := fmt.Sprint(time.Now().UnixNano())
		bodies := make([][]byte, b.N)
		for i := range bodies {
			var buf bytes.Buffer
			for _, e := range benchEvents(run, i*benchBatch, benchBatch, communes) {
				line, _ := json.Marshal(e)
				buf.Write(line)
				buf.WriteByte('\n')
			}
			bodies[i] = buf.Bytes()
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}}
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		for range benchClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= len(bodies) {
						return
					}
					req, _ := http.NewRequest("POST", n.base+"/api/v1/ingest/dossiers", bytes.NewReader(bodies[i]))
					req.Header.Set("Authorization", "Bearer "+adminToken)
					req.Header.Set("Content-Type", "application/x-ndjson")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 202 {
						b.Errorf("ingest answered %d: %s", resp.StatusCode, raw)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
	})
}

func hcmCommunes(tb testing.TB) []string {
	tb.Helper()
	units, err := geo.Builtin()
	if err != nil {
		tb.Fatal(err)
	}
	h, _ := units.Hierarchy("vn-2025")
	return h.ChildCodes("79")
}
