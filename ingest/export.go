package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Export streams the stored records of kind (ImportKinds) in their wire
// form, as the ingest API and iocd import take them, each once, to emit:
// what moves a deployment's records to another store (from one server to
// a cluster), where they go through validation, the duplicate check and
// the derivation again, so that every figure there is derived afresh.
//
// A dossier event filed under an older hierarchy is stored twice (as sent,
// and placed in the current one): it is exported as sent. A camera event
// or a sensor reading is exported with the position it was placed at (its
// own or its device's), so that it lands in the same unit without its
// device being registered first. Copies a table has not merged yet are
// exported too; the importing side counts them as duplicates.
//
// It reads one table in one query, unsorted; it does not change anything.
func Export(ctx context.Context, conn driver.Conn, db, kind string, emit func(record any) error) (n int, err error) {
	switch kind {
	case KindDossiers:
		return exportRows(ctx, conn, "SELECT hierarchy, "+historyColumns+" FROM "+db+".dossier_history WHERE recorded_hierarchy = ''",
			func(scan func(...any) error) (any, error) {
				var h string
				d, err := scanHistory(func(dst ...any) error { return scan(append([]any{&h}, dst...)...) }, "")
				d.Hierarchy = h
				return d.wire(), err
			}, emit)
	case KindCameraEvents:
		return exportRows(ctx, conn, "SELECT event_id, camera_id, type, toString(severity), lat, lon, occurred_at, attrs FROM "+db+".camera_events",
			func(scan func(...any) error) (any, error) {
				var e CameraEventWire
				var lat, lon float64
				var at time.Time
				var attrs string
				if err := scan(&e.EventID, &e.CameraID, &e.Type, &e.Severity, &lat, &lon, &at, &attrs); err != nil {
					return nil, err
				}
				e.Lat, e.Lon = position(lat, lon)
				e.OccurredAt = wireTime(at)
				if attrs != "" && attrs != "{}" {
					if err := json.Unmarshal([]byte(attrs), &e.Attrs); err != nil {
						return nil, fmt.Errorf("camera event %s: stored attrs are not a JSON object: %w", e.EventID, err)
					}
				}
				return e, nil
			}, emit)
	case KindSensorReadings:
		return exportRows(ctx, conn, "SELECT event_id, sensor_id, kind, value, unit, alert_level, danger_level, lat, lon, observed_at FROM "+db+".sensor_readings",
			func(scan func(...any) error) (any, error) {
				var r SensorReadingWire
				var value, lat, lon float64
				var at time.Time
				if err := scan(&r.EventID, &r.SensorID, &r.Kind, &value, &r.Unit, &r.AlertLevel, &r.DangerLevel, &lat, &lon, &at); err != nil {
					return nil, err
				}
				r.Value = &value
				r.Lat, r.Lon = position(lat, lon)
				r.ObservedAt = wireTime(at)
				return r, nil
			}, emit)
	}
	return 0, unknownKind(kind)
}

// exportRows runs query and emits each row as record reads it.
func exportRows(ctx context.Context, conn driver.Conn, query string, record func(scan func(...any) error) (any, error), emit func(any) error) (int, error) {
	// A whole table takes longer than the store's query timeout, which is
	// meant for questions: this query has none.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_execution_time": 0}))
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("read the records to export: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		r, err := record(rows.Scan)
		if err != nil {
			return n, fmt.Errorf("read record %d to export: %w", n+1, err)
		}
		if err := emit(r); err != nil {
			return n, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read the records to export: %w", err)
	}
	return n, nil
}

// wire is the dossier event as it was sent.
func (d Dossier) wire() DossierEvent {
	e := DossierEvent{EventID: d.EventID, DossierID: d.DossierID, ProcedureCode: d.ProcedureCode, Sector: d.Sector,
		Hierarchy: d.Hierarchy, AreaCode: d.AreaCode, Channel: d.Channel, Status: d.Status, OccurredAt: wireTime(d.OccurredAt),
		OnlineLevel: d.OnlineLevel, Digitized: d.Digitized, EResult: d.EResult, PaidOnline: d.PaidOnline, ReusedData: d.ReusedData,
		FeeRequired: d.FeeRequired, Lat: d.Lat, Lon: d.Lon, Supersedes: d.Supersedes}
	if d.ReceivedAt != nil {
		e.ReceivedAt = wireTime(*d.ReceivedAt)
	}
	if d.DueAt != nil {
		e.DueAt = wireTime(*d.DueAt)
	}
	return e
}

// wireTime is t as the wire has times: RFC 3339, in UTC.
func wireTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// position is a stored position as the wire has it: none for 0, 0, which
// a device stores when it has none.
func position(lat, lon float64) (*float64, *float64) {
	if lat == 0 && lon == 0 {
		return nil, nil
	}
	return &lat, &lon
}
