package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/internal/chstore"
)

// dossierKey names a dossier within one hierarchy: a record filed under an
// older hierarchy is a dossier of each hierarchy it is stored under.
type dossierKey struct{ hierarchy, id string }

// flows holds the histories of the dossiers a batch touches, and what they
// derive to so far, so that each new event's change is derived once.
type flows struct {
	events  map[dossierKey][]dossier.Event
	derived map[dossierKey][]dossier.Contribution
	stored  map[dossierKey]map[string]bool // event ids stored before the batch
}

// loadFlows reads the stored events of the given dossiers.
func loadFlows(ctx context.Context, conn driver.Conn, db string, keys map[dossierKey]bool) (*flows, error) {
	f := &flows{events: map[dossierKey][]dossier.Event{}, derived: map[dossierKey][]dossier.Contribution{}, stored: map[dossierKey]map[string]bool{}}
	byHierarchy := map[string][]string{}
	for k := range keys {
		byHierarchy[k.hierarchy] = append(byHierarchy[k.hierarchy], k.id)
	}
	for h, ids := range byHierarchy {
		for start := 0; start < len(ids); start += lookupChunk {
			chunk := ids[start:min(start+lookupChunk, len(ids))]
			qctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_query_size": lookupQuerySize}))
			rows, err := conn.Query(qctx, `SELECT dossier_id, event_id, area_code, status, occurred_at, received_at, due_at,
				channel, sector, procedure_code, online_level, digitized, e_result, paid_online, reused_data, fee_required, approximate
				FROM `+db+`.dossier_timeline WHERE hierarchy = ? AND dossier_id IN ?`, h, chstore.In(chunk))
			if err != nil {
				return nil, fmt.Errorf("read dossier timelines: %w", err)
			}
			for rows.Next() {
				var id string
				var e dossier.Event
				var digitized, eResult, paid, reused, fee, approx uint8
				if err := rows.Scan(&id, &e.EventID, &e.Area, &e.Status, &e.OccurredAt, &e.ReceivedAt, &e.DueAt,
					&e.Channel, &e.Sector, &e.Procedure, &e.OnlineLevel, &digitized, &eResult, &paid, &reused, &fee, &approx); err != nil {
					rows.Close()
					return nil, fmt.Errorf("read dossier timelines: %w", err)
				}
				k := dossierKey{h, id}
				// A copy that slipped past the duplicate check must not count twice.
				if f.stored[k][e.EventID] {
					continue
				}
				if f.stored[k] == nil {
					f.stored[k] = map[string]bool{}
				}
				f.stored[k][e.EventID] = true
				e.Digitized, e.EResult, e.PaidOnline, e.ReusedData, e.FeeRequired, e.Approximate = digitized == 1, eResult == 1, paid == 1, reused == 1, fee == 1, approx == 1
				f.events[k] = append(f.events[k], e)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("read dossier timelines: %w", err)
			}
		}
	}
	return f, nil
}

// has says whether the dossier's stored history holds the event.
func (f *flows) has(k dossierKey, eventID string) bool { return f.stored[k][eventID] }

// add appends e to its dossier's history and returns what that changes.
func (f *flows) add(k dossierKey, e dossier.Event) []dossier.Contribution {
	before, ok := f.derived[k]
	if !ok {
		before = dossier.Derive(f.events[k])
	}
	f.events[k] = append(f.events[k], e)
	after := dossier.Derive(f.events[k])
	f.derived[k] = after
	return dossier.Delta(before, after)
}

// flowEvent is what the derivation needs of a stored row.
func flowEvent(r Dossier, area string, approximate bool) dossier.Event {
	return dossier.Event{
		EventID: r.EventID, Area: area, Status: r.Status, OccurredAt: r.OccurredAt,
		ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, Channel: r.Channel, Sector: r.Sector,
		Procedure: r.ProcedureCode, OnlineLevel: r.OnlineLevel, Digitized: r.Digitized,
		EResult: r.EResult, PaidOnline: r.PaidOnline, ReusedData: r.ReusedData,
		FeeRequired: r.FeeRequired, Approximate: approximate,
	}
}

// DeltaColumns are the delta.* columns of dossier_events, in the order
// DeltaValues gives them.
const DeltaColumns = "`delta.t`, `delta.area_code`, `delta.sector`, `delta.procedure_code`, `delta.channel`, `delta.online_level`, " +
	"`delta.received`, `delta.received_online`, `delta.digitized`, `delta.reused`, `delta.fee_bearing`, `delta.paid_online`, " +
	"`delta.resolved`, `delta.on_time`, `delta.timed`, `delta.resolution_seconds`, `delta.e_result`, " +
	"`delta.open`, `delta.late_open`, `delta.approximate`"

// DeltaValues turns contributions into the delta.* column values.
func DeltaValues(cs []dossier.Contribution) []any {
	n := len(cs)
	ts := make([]time.Time, n)
	str := [5][]string{}
	for i := range str {
		str[i] = make([]string, n)
	}
	small := [13][]int8{}
	for i := range small {
		small[i] = make([]int8, n)
	}
	secs := make([]int64, n)
	for i, c := range cs {
		ts[i] = c.T
		str[0][i], str[1][i], str[2][i], str[3][i], str[4][i] = c.Area, c.Sector, c.Procedure, c.Channel, c.OnlineLevel
		m := c.Measures
		for j, v := range []int64{m.Received, m.ReceivedOnline, m.Digitized, m.Reused, m.FeeBearing, m.PaidOnline,
			m.Resolved, m.OnTime, m.Timed} {
			small[j][i] = int8(v)
		}
		secs[i] = m.ResolutionSeconds
		for j, v := range []int64{m.EResult, m.Open, m.LateOpen, m.Approximate} {
			small[9+j][i] = int8(v)
		}
	}
	out := []any{ts, str[0], str[1], str[2], str[3], str[4]}
	for j := 0; j < 9; j++ {
		out = append(out, small[j])
	}
	out = append(out, secs)
	for j := 9; j < 13; j++ {
		out = append(out, small[j])
	}
	return out
}
