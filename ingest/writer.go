package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/internal/chstore"
)

// Locker serialises the duplicate lookup and the insert across nodes. A
// single node passes a local lock: its one flushing goroutine is serial
// already.
type Locker interface {
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// Notifier learns which units gained records, to recompute their figures.
// MarkDirty must not block.
type Notifier interface {
	MarkDirty(hierarchy string, codes []string)
}

// Writer stores dossier events in batches, each event id once.
type Writer struct {
	b      *batcher[Dossier]
	conn   driver.Conn
	db     string
	lock   Locker
	notify Notifier
}

// A flush looks up its ids in one query where it can: each query scans the
// same granules, so fewer queries means less reading. lookupChunk bounds the
// query text, and lookupQuerySize lets the server parse it (the default
// max_query_size is 256 KiB).
const (
	lookupChunk     = 20000
	lookupQuerySize = 32 << 20
)

// NewWriter returns a writer of dossier events. notify may be nil.
func NewWriter(cfg BatchConfig, store *chstore.Store, lock Locker, notify Notifier, logger *slog.Logger, reg prometheus.Registerer) (*Writer, error) {
	if store == nil || lock == nil {
		return nil, fmt.Errorf("dossier writer needs a store and a lock")
	}
	w := &Writer{conn: store.Conn(), db: store.Database(), lock: lock, notify: notify}
	w.b = newBatcher(cfg, w.store, logger, newWriterMetrics(reg, "dossier_events"))
	return w, nil
}

// Run flushes batches until ctx ends, then flushes what is queued and
// returns. Write refuses new rows from then on.
func (w *Writer) Run(ctx context.Context) { w.b.run(ctx) }

// Write stores rows and returns once they are in ClickHouse, with the
// number that were already stored (or repeated within rows).
func (w *Writer) Write(ctx context.Context, rows []Dossier) (duplicates int, err error) {
	return w.b.submit(ctx, rows)
}

func (w *Writer) store(ctx context.Context, rows []Dossier) ([]bool, error) {
	fresh := make([]bool, len(rows))
	seen := make(map[string]bool, len(rows))
	cand := make([]int, 0, len(rows))
	for i, r := range rows {
		if !seen[r.EventID] {
			seen[r.EventID] = true
			cand = append(cand, i)
		}
	}
	// The lock guards a table, so it is named by database and table.
	unlock, err := w.lock.Lock(ctx, w.db+".dossier_events")
	if err != nil {
		return nil, fmt.Errorf("lock dossier_events: %w", err)
	}
	defer unlock()
	// The stored histories of the batch's dossiers hold every event already
	// stored, so one lookup both finds resends and feeds the derivation.
	keys := map[dossierKey]bool{}
	for _, i := range cand {
		for _, p := range placements(rows[i]) {
			keys[dossierKey{p.at.Hierarchy, rows[i].DossierID}] = true
		}
	}
	history, err := loadFlows(ctx, w.conn, w.db, keys)
	if err != nil {
		return nil, err
	}
	batch, err := w.conn.PrepareBatch(ctx, `INSERT INTO `+w.db+`.dossier_events (`+DossierColumns+`)`)
	if err != nil {
		return nil, fmt.Errorf("prepare insert into dossier_events: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	touched := map[string]map[string]bool{}
	n := 0
	for _, i := range cand {
		r := rows[i]
		if history.has(dossierKey{r.Hierarchy, r.DossierID}, r.EventID) {
			continue
		}
		for _, p := range placements(r) {
			delta := history.add(dossierKey{p.at.Hierarchy, r.DossierID}, flowEvent(r, p.at.AreaCode, p.approximate))
			if err := batch.Append(DossierValues(r, p.at, p.rec, p.approximate, delta, now)...); err != nil {
				batch.Abort()
				return nil, fmt.Errorf("append to dossier_events batch: %w", err)
			}
			if touched[p.at.Hierarchy] == nil {
				touched[p.at.Hierarchy] = map[string]bool{}
			}
			touched[p.at.Hierarchy][p.at.AreaCode] = true
			for _, d := range delta {
				touched[p.at.Hierarchy][d.Area] = true
			}
		}
		fresh[i] = true
		n++
	}
	if n == 0 {
		batch.Abort()
		return fresh, nil
	}
	if err := batch.Send(); err != nil {
		return nil, fmt.Errorf("insert batch into dossier_events: %w", err)
	}
	if w.notify != nil {
		for h, areas := range touched {
			codes := make([]string, 0, len(areas))
			for c := range areas {
				codes = append(codes, c)
			}
			w.notify.MarkDirty(h, codes)
		}
	}
	return fresh, nil
}

// DossierColumns are the columns of a dossier_events row, in the order
// DossierValues gives them: the INSERT column list of every writer of the
// table.
const DossierColumns = "event_id, dossier_id, procedure_code, sector, " +
	"hierarchy, area_code, channel, status, occurred_at, received_at, due_at, online_level, " +
	"digitized, e_result, paid_online, reused_data, fee_required, ingested_at, " +
	"recorded_hierarchy, recorded_area_code, approximate, lat, lon, " + DeltaColumns

// DossierValues returns the DossierColumns of the row that stores r placed
// at unit at (recorded as rec when it was filed under another hierarchy,
// else the zero Placement), with approximate saying the placement is a
// crosswalk's guess, delta what the event changes in its dossier's figures,
// and ingestedAt the time it is stored.
func DossierValues(r Dossier, at, rec Placement, approximate bool, delta []dossier.Contribution, ingestedAt time.Time) []any {
	return append([]any{r.EventID, r.DossierID, r.ProcedureCode, r.Sector,
		at.Hierarchy, at.AreaCode, r.Channel, r.Status, r.OccurredAt, r.ReceivedAt, r.DueAt, r.OnlineLevel,
		b2u(r.Digitized), b2u(r.EResult), b2u(r.PaidOnline), b2u(r.ReusedData), b2u(r.FeeRequired), ingestedAt,
		rec.Hierarchy, rec.AreaCode, b2u(approximate), r.Lat, r.Lon}, DeltaValues(delta)...)
}

// placedRow is where one stored row of a record counts.
type placedRow struct {
	at, rec     Placement
	approximate bool
}

// placements are the rows a record is stored as: placed in the current
// hierarchy and, for a record filed under an older one, as recorded too, so
// that the old hierarchy's figures stay whole.
func placements(r Dossier) []placedRow {
	if r.Recorded == nil {
		return []placedRow{{at: Placement{r.Hierarchy, r.AreaCode}, approximate: r.Approximate}}
	}
	return []placedRow{{Placement{r.Hierarchy, r.AreaCode}, *r.Recorded, r.Approximate}, {at: *r.Recorded}}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
