package ingest

import (
	"context"
	"fmt"
	"strings"
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
	// content is every event of the histories as it was sent, by id: those
	// stored before the batch and those the batch added.
	content map[dossierKey]map[string]Dossier
}

// historyColumns are what the lookup reads of a stored event.
const historyColumns = `dossier_id, event_id, procedure_code, sector, area_code, toString(channel), toString(status),
	occurred_at, received_at, due_at, toString(online_level), digitized, e_result, paid_online, reused_data, fee_required,
	recorded_hierarchy, recorded_area_code, approximate, lat, lon, supersedes`

func newFlows() *flows {
	return &flows{events: map[dossierKey][]dossier.Event{}, derived: map[dossierKey][]dossier.Contribution{},
		content: map[dossierKey]map[string]Dossier{}}
}

// seed adds stored events of a dossier, as they read back from
// dossier_history.
func (f *flows) seed(k dossierKey, ds []Dossier) {
	for _, d := range ds {
		f.record(k, d, d.AreaCode, d.Approximate)
	}
}

// histories returns the events of every dossier, as stored.
func (f *flows) histories() map[dossierKey][]Dossier {
	out := make(map[dossierKey][]Dossier, len(f.content))
	for k, byID := range f.content {
		ds := make([]Dossier, 0, len(byID))
		for _, d := range byID {
			ds = append(ds, d)
		}
		out[k] = ds
	}
	return out
}

// storedForm is the row that stores r at a placement, as it reads back
// from dossier_history: what a later batch compares a resend with.
func storedForm(r Dossier, p placedRow) Dossier {
	r.Hierarchy, r.AreaCode, r.Approximate, r.Recorded = p.at.Hierarchy, p.at.AreaCode, p.approximate, nil
	if p.rec.Hierarchy != "" {
		rec := p.rec
		r.Recorded = &rec
	}
	return r
}

// loadFlows reads into f the stored events of the given dossiers from
// dossier_history, the table a batch's insert writes first and whole.
func loadFlows(ctx context.Context, conn driver.Conn, db string, keys map[dossierKey]bool, f *flows) error {
	byHierarchy := map[string][]string{}
	for k := range keys {
		byHierarchy[k.hierarchy] = append(byHierarchy[k.hierarchy], k.id)
	}
	for h, ids := range byHierarchy {
		for start := 0; start < len(ids); start += lookupChunk {
			chunk := ids[start:min(start+lookupChunk, len(ids))]
			qctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_query_size": lookupQuerySize}))
			rows, err := conn.Query(qctx, `SELECT `+historyColumns+` FROM `+db+`.dossier_history
				WHERE hierarchy = ? AND dossier_id IN ?`, h, chstore.In(chunk))
			if err != nil {
				return fmt.Errorf("read dossier histories: %w", err)
			}
			for rows.Next() {
				d, err := scanHistory(rows.Scan, h)
				if err != nil {
					rows.Close()
					return fmt.Errorf("read dossier histories: %w", err)
				}
				// A copy of a row (before the engine folds it) counts once.
				f.record(dossierKey{h, d.DossierID}, d, d.AreaCode, d.Approximate)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("read dossier histories: %w", err)
			}
		}
	}
	return nil
}

// scanHistory reads one row of historyColumns stored under hierarchy h.
func scanHistory(scan func(...any) error, h string) (Dossier, error) {
	d := Dossier{Hierarchy: h}
	var digitized, eResult, paid, reused, fee, approx uint8
	var recH, recArea string
	if err := scan(&d.DossierID, &d.EventID, &d.ProcedureCode, &d.Sector, &d.AreaCode, &d.Channel, &d.Status,
		&d.OccurredAt, &d.ReceivedAt, &d.DueAt, &d.OnlineLevel, &digitized, &eResult, &paid, &reused, &fee,
		&recH, &recArea, &approx, &d.Lat, &d.Lon, &d.Supersedes); err != nil {
		return d, err
	}
	d.Digitized, d.EResult, d.PaidOnline, d.ReusedData, d.FeeRequired, d.Approximate = digitized == 1, eResult == 1, paid == 1, reused == 1, fee == 1, approx == 1
	if recH != "" {
		d.Recorded = &Placement{Hierarchy: recH, AreaCode: recArea}
	}
	d.OccurredAt = d.OccurredAt.UTC()
	return d, nil
}

// record adds an event to its dossier's history, unless the history holds
// its id already.
func (f *flows) record(k dossierKey, d Dossier, area string, approximate bool) bool {
	if _, ok := f.content[k][d.EventID]; ok && checkDuplicates {
		return false
	}
	if f.content[k] == nil {
		f.content[k] = map[string]Dossier{}
	}
	f.content[k][d.EventID] = d
	f.events[k] = append(f.events[k], flowEvent(d, area, approximate))
	return true
}

// stored returns the event of the dossier's history with the given id.
func (f *flows) stored(k dossierKey, eventID string) (Dossier, bool) {
	d, ok := f.content[k][eventID]
	return d, ok
}

// add appends d to its dossier's history and returns what that changes.
func (f *flows) add(k dossierKey, d Dossier, area string, approximate bool) []dossier.Contribution {
	before, ok := f.derived[k]
	if !ok {
		before = dossier.Derive(f.events[k])
	}
	f.record(k, d, area, approximate)
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
		FeeRequired: r.FeeRequired, Approximate: approximate, Supersedes: r.Supersedes,
	}
}

// sentUnit is the unit a record named when it was sent.
func (d Dossier) sentUnit() Placement {
	if d.Recorded != nil {
		return *d.Recorded
	}
	return Placement{Hierarchy: d.Hierarchy, AreaCode: d.AreaCode}
}

// differences lists how the content of two events of the same id differs,
// as sent: "field <this> (stored <that>)". Nil when they are the same.
func differences(sent, stored Dossier) []string {
	var out []string
	str := func(field, a, b string) {
		if a != b {
			out = append(out, fmt.Sprintf("%s %q (stored %q)", field, a, b))
		}
	}
	tm := func(field string, a, b *time.Time) {
		f := func(t *time.Time) string {
			if t == nil {
				return "none"
			}
			return t.UTC().Format(time.RFC3339)
		}
		if f(a) != f(b) {
			out = append(out, fmt.Sprintf("%s %s (stored %s)", field, f(a), f(b)))
		}
	}
	flag := func(field string, a, b bool) {
		if a != b {
			out = append(out, fmt.Sprintf("%s %v (stored %v)", field, a, b))
		}
	}
	num := func(field string, a, b *float64) {
		f := func(v *float64) string {
			if v == nil {
				return "none"
			}
			return fmt.Sprint(*v)
		}
		if f(a) != f(b) {
			out = append(out, fmt.Sprintf("%s %s (stored %s)", field, f(a), f(b)))
		}
	}
	su, tu := sent.sentUnit(), stored.sentUnit()
	str("area_code", su.AreaCode, tu.AreaCode)
	str("hierarchy", su.Hierarchy, tu.Hierarchy)
	str("status", sent.Status, stored.Status)
	tm("occurred_at", &sent.OccurredAt, &stored.OccurredAt)
	tm("received_at", sent.ReceivedAt, stored.ReceivedAt)
	tm("due_at", sent.DueAt, stored.DueAt)
	str("channel", sent.Channel, stored.Channel)
	str("procedure_code", sent.ProcedureCode, stored.ProcedureCode)
	str("sector", sent.Sector, stored.Sector)
	str("online_level", sent.OnlineLevel, stored.OnlineLevel)
	flag("digitized", sent.Digitized, stored.Digitized)
	flag("e_result", sent.EResult, stored.EResult)
	flag("paid_online", sent.PaidOnline, stored.PaidOnline)
	flag("reused_data", sent.ReusedData, stored.ReusedData)
	flag("fee_required", sent.FeeRequired, stored.FeeRequired)
	num("lat", sent.Lat, stored.Lat)
	num("lon", sent.Lon, stored.Lon)
	str("supersedes", sent.Supersedes, stored.Supersedes)
	return out
}

// conflictError is the refusal of a resend with other content: the first
// differences, and how to fix it.
func conflictError(eventID string, diffs []string, fix string) string {
	const show = 3
	more := ""
	if len(diffs) > show {
		more = fmt.Sprintf(" and %d more", len(diffs)-show)
		diffs = diffs[:show]
	}
	return fmt.Sprintf("event %s was stored with different content: %s%s; %s", eventID, strings.Join(diffs, ", "), more, fix)
}

// deltaColumns are the delta.* columns of dossier_history: where and along
// which dimensions a change counts, then its measures (dossier.Table).
var deltaColumns = deltaColumnsOf(dossier.Table[:])

// deltaColumnsOf are the delta.* columns of a measure table, in order.
func deltaColumnsOf(table []dossier.Measure) []string {
	out := []string{"`delta.t`", "`delta.area_code`", "`delta.sector`", "`delta.procedure_code`", "`delta.channel`", "`delta.online_level`"}
	for _, m := range table {
		out = append(out, "`delta."+m.Column+"`")
	}
	return out
}

// deltaType is the ClickHouse type of a measure's delta array: Int8 fits a
// change of −1, 0 or +1; a Wide measure's needs Int64.
func deltaType(m dossier.Measure) string {
	if m.Wide {
		return "Array(Int64)"
	}
	return "Array(Int8)"
}

// deltaTargets are scan targets for the delta.* columns; contributions
// turns what they read back into the changes.
type deltaTargets struct {
	t                                       []time.Time
	area, sector, procedure, channel, level []string
	small                                   [][]int8  // by measure; wide ones stay empty
	wide                                    [][]int64 // by measure; small ones stay empty
}

func newDeltaTargets() *deltaTargets {
	return &deltaTargets{small: make([][]int8, len(dossier.Table)), wide: make([][]int64, len(dossier.Table))}
}

// targets are in deltaColumns' order.
func (d *deltaTargets) targets() []any {
	out := []any{&d.t, &d.area, &d.sector, &d.procedure, &d.channel, &d.level}
	for j, m := range dossier.Table {
		if m.Wide {
			out = append(out, &d.wide[j])
		} else {
			out = append(out, &d.small[j])
		}
	}
	return out
}

func (d *deltaTargets) contributions() []dossier.Contribution {
	out := make([]dossier.Contribution, len(d.t))
	for i := range d.t {
		c := dossier.Contribution{Key: dossier.Key{T: d.t[i].UTC(), Area: d.area[i], Sector: d.sector[i],
			Procedure: d.procedure[i], Channel: d.channel[i], OnlineLevel: d.level[i]}}
		for j, m := range dossier.Table {
			if m.Wide {
				c.Measures[j] = d.wide[j][i]
			} else {
				c.Measures[j] = int64(d.small[j][i])
			}
		}
		out[i] = c
	}
	return out
}
