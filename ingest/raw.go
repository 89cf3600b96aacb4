package ingest

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The raw inserts below store records in a table with the columns of
// their raw table, exactly as a writer's batch would, but outside any
// batch: no lookup, no journal, no rollups. Tools use them to load data
// and to measure a plain insert of the rows the writer stores.

// InsertRawDossiers inserts derived dossier events into db.table, a table
// with the columns of dossier_history, in one block.
func InsertRawDossiers(ctx context.Context, conn driver.Conn, db, table string, rows []Derived, batch uint64, ingestedAt time.Time) error {
	block := newDossierBlock()
	for _, r := range rows {
		block.add(r.Record, Placement{r.Record.Hierarchy, r.Record.AreaCode}, Placement{}, false, r.Delta, batch, ingestedAt)
	}
	return block.set.send(ctx, conn, table, "INSERT INTO "+db+"."+table+" ("+DossierColumns+")")
}

// InsertRawCameraEvents inserts camera events into db.table, a table with
// the columns of camera_events, in one block.
func InsertRawCameraEvents(ctx context.Context, conn driver.Conn, db, table string, rows []CameraEvent, batch uint64, ingestedAt time.Time) error {
	return insertRaw(ctx, conn, db, table, cameraSpec, rows, batch, ingestedAt)
}

// InsertRawReadings inserts sensor readings into db.table, a table with the
// columns of sensor_readings, in one block.
func InsertRawReadings(ctx context.Context, conn driver.Conn, db, table string, rows []Reading, batch uint64, ingestedAt time.Time) error {
	return insertRaw(ctx, conn, db, table, readingSpec, rows, batch, ingestedAt)
}

func insertRaw[T any](ctx context.Context, conn driver.Conn, db, table string, spec tableSpec[T], rows []T, batch uint64, ingestedAt time.Time) error {
	set, add := spec.block()
	for _, r := range rows {
		add(r, batch, ingestedAt)
	}
	return set.send(ctx, conn, table, "INSERT INTO "+db+"."+table+" ("+spec.columns+")")
}
