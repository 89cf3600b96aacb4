package ingest

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/dossier"
)

// colSet collects the rows of one insert as column slices and sends them
// as one block: appending a whole column at once costs a fraction of
// appending each row's values through []any.
type colSet struct {
	cols []any // each a *[]T, in the insert's column order
}

// col adds a column of T to s and returns its slice.
func col[T any](s *colSet) *[]T {
	p := new([]T)
	s.cols = append(s.cols, p)
	return p
}

// send inserts the collected rows with query (an INSERT with its column
// list, in the order the columns were added) as one block.
func (s *colSet) send(ctx context.Context, conn driver.Conn, table, query string) error {
	b, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", table, err)
	}
	for i, p := range s.cols {
		var err error
		switch p := p.(type) {
		// The driver appends a whole column of arrays through reflection,
		// element by element; row by row it takes each typed slice whole.
		case *[][]int8:
			err = appendRows(b.Column(i), *p)
		case *[][]int64:
			err = appendRows(b.Column(i), *p)
		case *[][]string:
			err = appendRows(b.Column(i), *p)
		case *[][]time.Time:
			err = appendRows(b.Column(i), *p)
		default:
			err = b.Column(i).Append(reflect.ValueOf(p).Elem().Interface())
		}
		if err != nil {
			b.Abort()
			return fmt.Errorf("append column %d to the %s batch: %w", i, table, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert batch into %s: %w", table, err)
	}
	return nil
}

func appendRows[T any](c driver.BatchColumn, rows [][]T) error {
	for _, r := range rows {
		if err := c.AppendRow(r); err != nil {
			return err
		}
	}
	return nil
}

// dossierBlock is the rows of one insert into dossier_history, column by
// column, in the order of DossierColumns.
type dossierBlock struct {
	set colSet

	eventID, dossierID, procedure, sector, hierarchy, area, channel, status *[]string
	occurred                                                                *[]time.Time
	received, due                                                           *[]*time.Time
	level                                                                   *[]string
	digitized, eResult, paid, reused, fee                                   *[]uint8
	ingested                                                                *[]time.Time
	recHierarchy, recArea                                                   *[]string
	approximate                                                             *[]uint8
	lat, lon                                                                *[]*float64
	supersedes                                                              *[]string
	batch                                                                   *[]uint64

	dT                                           *[][]time.Time
	dArea, dSector, dProcedure, dChannel, dLevel *[][]string
	dSmall                                       []*[][]int8  // by measure; nil for the wide ones
	dWide                                        []*[][]int64 // by measure; nil for the small ones
}

func newDossierBlock() *dossierBlock {
	b := &dossierBlock{}
	s := &b.set
	b.eventID, b.dossierID, b.procedure, b.sector = col[string](s), col[string](s), col[string](s), col[string](s)
	b.hierarchy, b.area, b.channel, b.status = col[string](s), col[string](s), col[string](s), col[string](s)
	b.occurred, b.received, b.due = col[time.Time](s), col[*time.Time](s), col[*time.Time](s)
	b.level = col[string](s)
	b.digitized, b.eResult, b.paid, b.reused, b.fee = col[uint8](s), col[uint8](s), col[uint8](s), col[uint8](s), col[uint8](s)
	b.ingested = col[time.Time](s)
	b.recHierarchy, b.recArea, b.approximate = col[string](s), col[string](s), col[uint8](s)
	b.lat, b.lon = col[*float64](s), col[*float64](s)
	b.supersedes, b.batch = col[string](s), col[uint64](s)
	b.dT = col[[]time.Time](s)
	b.dArea, b.dSector, b.dProcedure, b.dChannel, b.dLevel = col[[]string](s), col[[]string](s), col[[]string](s), col[[]string](s), col[[]string](s)
	b.dSmall, b.dWide = make([]*[][]int8, len(dossier.Table)), make([]*[][]int64, len(dossier.Table))
	for j, m := range dossier.Table {
		if m.Wide {
			b.dWide[j] = col[[]int64](s)
		} else {
			b.dSmall[j] = col[[]int8](s)
		}
	}
	return b
}

// add appends the row that stores r placed at unit at (recorded as rec
// when it was filed under another hierarchy, else the zero Placement), with
// approximate saying the placement is a crosswalk's guess, delta what the
// event changes in its dossier's figures, and the batch and time it is
// stored in.
func (b *dossierBlock) add(r Dossier, at, rec Placement, approximate bool, delta []dossier.Contribution, batch uint64, ingestedAt time.Time) {
	appendAll(b.eventID, r.EventID)
	appendAll(b.dossierID, r.DossierID)
	appendAll(b.procedure, r.ProcedureCode)
	appendAll(b.sector, r.Sector)
	appendAll(b.hierarchy, at.Hierarchy)
	appendAll(b.area, at.AreaCode)
	appendAll(b.channel, r.Channel)
	appendAll(b.status, r.Status)
	appendAll(b.occurred, r.OccurredAt)
	appendAll(b.received, r.ReceivedAt)
	appendAll(b.due, r.DueAt)
	appendAll(b.level, r.OnlineLevel)
	appendAll(b.digitized, b2u(r.Digitized))
	appendAll(b.eResult, b2u(r.EResult))
	appendAll(b.paid, b2u(r.PaidOnline))
	appendAll(b.reused, b2u(r.ReusedData))
	appendAll(b.fee, b2u(r.FeeRequired))
	appendAll(b.ingested, ingestedAt)
	appendAll(b.recHierarchy, rec.Hierarchy)
	appendAll(b.recArea, rec.AreaCode)
	appendAll(b.approximate, b2u(approximate))
	appendAll(b.lat, r.Lat)
	appendAll(b.lon, r.Lon)
	appendAll(b.supersedes, r.Supersedes)
	appendAll(b.batch, batch)

	n := len(delta)
	ts := make([]time.Time, n)
	area, sector, proc, channel, level := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, c := range delta {
		ts[i] = c.T
		area[i], sector[i], proc[i], channel[i], level[i] = c.Area, c.Sector, c.Procedure, c.Channel, c.OnlineLevel
	}
	appendAll(b.dT, ts)
	appendAll(b.dArea, area)
	appendAll(b.dSector, sector)
	appendAll(b.dProcedure, proc)
	appendAll(b.dChannel, channel)
	appendAll(b.dLevel, level)
	for j := range dossier.Table {
		if b.dWide[j] != nil {
			v := make([]int64, n)
			for i := range delta {
				v[i] = delta[i].Measures[j]
			}
			appendAll(b.dWide[j], v)
			continue
		}
		v := make([]int8, n)
		for i := range delta {
			v[i] = int8(delta[i].Measures[j])
		}
		appendAll(b.dSmall[j], v)
	}
}

func appendAll[T any](s *[]T, v T) { *s = append(*s, v) }

// len is the number of rows collected.
func (b *dossierBlock) len() int { return len(*b.eventID) }

// send inserts the rows into db.dossier_history as one block.
func (b *dossierBlock) send(ctx context.Context, conn driver.Conn, db string) error {
	return b.set.send(ctx, conn, dossierFamily.raw, "INSERT INTO "+db+"."+dossierFamily.raw+" ("+DossierColumns+")")
}
