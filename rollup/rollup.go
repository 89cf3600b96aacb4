// Package rollup owns the rollup tables as their writers and readers share
// them: their names, the marker rows that say which batch's rows landed in
// which part, what a stored batch added to the live tables (Delta), and the
// one reader of them all (Reader).
//
// The writers in ingest produce a Delta after a batch's rollup inserts
// returned; the aggregator turns its rows into figures without reading
// ClickHouse again (Family.Add, the same as a read's), and a node that does
// not compute figures forwards it, as JSON, to the one that does.
//
// The Reader answers every question of the figures over the rollups: a
// scope of units × a range × a step × a breakdown, for the sources an
// indicator names (Sum, and Reads for what that depends on); the live
// windows with the markers read in the same statement (ReadWindows); and
// the dossiers open, and late, at a moment (Balances). The dossier
// measures it sums and scans are those of dossier.Table.
//
// Concurrency: the types are plain values; a Delta must not be modified
// once handed on. A Reader is safe for concurrent use; the families are
// fixed and must not be modified.
package rollup

import "time"

// The rollups. The live windows read minute and hour tables: whole hours
// from the hour table, the ragged first hour of a window from the minute
// table. The dossier flow is also kept by local day and month, and by local
// day and dimension (FlowDims).
const (
	DossierFlowMinute = "dossier_flow_minute"
	DossierFlowHour   = "dossier_flow_hour"
	DossierFlowDay    = "dossier_flow_day"
	DossierFlowMonth  = "dossier_flow_month"
	DossierFlowDayBy  = "dossier_flow_day_by"
	CameraKPIMinute   = "camera_kpi_minute"
	CameraKPIHour     = "camera_kpi_hour"
	SensorStatMinute  = "sensor_stat_minute"
	SensorStatHour    = "sensor_stat_hour"
	SensorMaxMinute   = "sensor_max_minute"
	SensorMaxHour     = "sensor_max_hour"
)

// Horizon is how far back the longest live window (30 days) reaches: a row
// of an older bucket changes no live figure, so it is not worth sending.
const Horizon = 30 * 24 * time.Hour

// MarkerHierarchy is the hierarchy of marker rows: each insert of a batch's
// rows into a rollup carries, per group of buckets (see Group), a row of this
// hierarchy whose area is the batch id and whose first measure is 1. It
// lands in the same part as the rows it vouches for, or not at all. Every
// reader of figures names the hierarchy it reads, so markers never count.
const MarkerHierarchy = "~batch"

// MarkerLife is how long after a batch began its markers stay at least: the
// reconciler cancels those of finished batches (by inserting opposite rows)
// once they are older. A reader that decides from markers whether a batch's
// rows were in its read trusts them only for batches well within it.
const MarkerLife = time.Minute

// Group is the marker group of a minute or hour bucket: its UTC day. A group
// never spans two partitions of a rollup, so its rows and its marker always
// land in one part.
func Group(bucket time.Time) time.Time { return bucket.UTC().Truncate(24 * time.Hour) }

// Delta is what one batch added to the live rollups.
type Delta struct {
	// Kind is the journal kind of the batch (dossier, camera, reading) and
	// Batch its id: the area of its marker rows.
	Kind  string `json:"kind"`
	Batch uint64 `json:"batch"`
	// Created is when the batch began, by the writer's clock: the time its
	// markers are cancelled from (MarkerLife).
	Created time.Time `json:"created"`
	Tables  []Table   `json:"tables"`
}

// Rows counts the rows of every table.
func (d Delta) Rows() int {
	n := 0
	for _, t := range d.Tables {
		n += len(t.Rows)
	}
	return n
}

// Table is the rows one insert added to one rollup table, summed by key.
type Table struct {
	Name string `json:"table"`
	// Marked says that every group of the rows landed with a marker row of
	// the batch, in the same part. A table without markers (sensor_max_*,
	// kept by views on the raw rows) holds maxima, which taking twice does
	// not change.
	Marked bool `json:"marked"`
	// Dims, Ints and Floats name the key columns after the bucket and the
	// measures, in the order of each row's values.
	Dims   []string `json:"dims,omitempty"`
	Ints   []string `json:"ints,omitempty"`
	Floats []string `json:"floats,omitempty"`
	Rows   []Row    `json:"rows"`
}

// Row is one row of a rollup table: its key and its measures.
type Row struct {
	Hierarchy string    `json:"h"`
	Area      string    `json:"a"`
	Bucket    time.Time `json:"t"`
	Dims      []string  `json:"d,omitempty"`
	Ints      []int64   `json:"i,omitempty"`
	Floats    []float64 `json:"f,omitempty"`
}

// Split cuts d into deltas of at most maxRows rows each, in order, so that a
// message carrying one stays bounded. Each row is in exactly one of them.
func (d Delta) Split(maxRows int) []Delta {
	if maxRows <= 0 || d.Rows() <= maxRows {
		return []Delta{d}
	}
	var out []Delta
	cur := Delta{Kind: d.Kind, Batch: d.Batch, Created: d.Created}
	n := 0
	for _, t := range d.Tables {
		for start := 0; start < len(t.Rows); {
			room := maxRows - n
			end := min(start+room, len(t.Rows))
			part := t
			part.Rows = t.Rows[start:end]
			cur.Tables = append(cur.Tables, part)
			n += end - start
			start = end
			if n == maxRows {
				out = append(out, cur)
				cur = Delta{Kind: d.Kind, Batch: d.Batch, Created: d.Created}
				n = 0
			}
		}
	}
	if n > 0 {
		out = append(out, cur)
	}
	return out
}
