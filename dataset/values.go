package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/chstore"
)

// ValuesConfig tunes Values. Zero fields take the defaults.
type ValuesConfig struct {
	// Now stamps uploads; default time.Now.
	Now func() time.Time
	// Stored, if set, is called once values were stored: the live
	// snapshots read the datasets' figures again
	// (aggregate.Marks.MarkExtras). It must not block.
	Stored func()
}

// Values keeps datasets' values in the append-only table dataset_values
// and a row per upload in dataset_uploads (migration 0014).
//
// A unit's period sent again is a new version, numbered by the upload's
// receipt time in nanoseconds (kept increasing on a node), and the latest
// version counts: an upload sent twice, because the first answer was lost,
// stores the same figures twice and counts them once. Each upload is one
// INSERT, one block: the server stores it whole or not at all.
//
// Concurrency: safe for concurrent use.
type Values struct {
	conn   driver.Conn
	db     string
	now    func() time.Time
	stored func()

	mu   sync.Mutex
	last uint64 // the last version given
}

// NewValues returns the store of values in s.
func NewValues(cfg ValuesConfig, s *chstore.Store) (*Values, error) {
	if s == nil {
		return nil, errors.New("dataset values need a store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Stored == nil {
		cfg.Stored = func() {}
	}
	return &Values{conn: s.Conn(), db: s.Database(), now: cfg.Now, stored: cfg.Stored}, nil
}

// Upload is one upload or connector run: who sent what, and what was
// refused.
type Upload struct {
	Dataset  string    `json:"dataset"`
	ID       string    `json:"id"`
	Source   string    `json:"source"` // upload, or the connector's name
	By       string    `json:"saved_by"`
	At       time.Time `json:"saved_at"`
	Rows     int       `json:"rows"`
	Refused  int       `json:"refused"`
	Problems []Problem `json:"problems,omitempty"`
	// Error is why a connector's run read nothing, if it failed whole.
	Error string `json:"error,omitempty"`
}

// MaxKeptProblems bounds the problems an upload keeps for its history;
// the answer to the upload lists them all.
const MaxKeptProblems = 100

// version gives the next version: the time in nanoseconds, above the
// last one given.
func (v *Values) version(at time.Time) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := uint64(max(at.UnixNano(), 0))
	if n <= v.last {
		n = v.last + 1
	}
	v.last = n
	return n
}

// Put stores the rows of one upload of d as the latest version of each
// unit's period, then the upload's record; up.At is set when zero.
func (v *Values) Put(ctx context.Context, d Definition, rows []Row, up Upload) (Upload, error) {
	if up.At.IsZero() {
		up.At = v.now()
	}
	up.Dataset, up.Rows = d.ID, len(rows)
	if len(rows) > 0 {
		version := v.version(up.At)
		b, err := v.conn.PrepareBatch(ctx, "INSERT INTO "+v.db+".dataset_values (dataset, unit, period, measure, value, present, version, upload, source, saved_by, saved_at)")
		if err != nil {
			return up, fmt.Errorf("prepare insert into dataset_values: %w", err)
		}
		for _, r := range rows {
			for i, m := range d.Measures {
				present := uint8(0)
				if r.Present[i] {
					present = 1
				}
				if err := b.Append(d.ID, r.Unit, r.Period, m.ID, r.Values[i], present, version, up.ID, up.Source, up.By, up.At.UTC()); err != nil {
					b.Abort()
					return up, fmt.Errorf("append to dataset_values batch: %w", err)
				}
			}
		}
		if err := b.Send(); err != nil {
			return up, fmt.Errorf("insert into dataset_values: %w", err)
		}
		v.stored()
	}
	return up, v.record(ctx, up)
}

// Record stores the record of a run that stored nothing (a connector that
// failed, an upload refused whole).
func (v *Values) Record(ctx context.Context, up Upload) error {
	if up.At.IsZero() {
		up.At = v.now()
	}
	return v.record(ctx, up)
}

func (v *Values) record(ctx context.Context, up Upload) error {
	kept := up.Problems
	if len(kept) > MaxKeptProblems {
		kept = kept[:MaxKeptProblems]
	}
	problems, err := json.Marshal(kept)
	if err != nil {
		return fmt.Errorf("encode an upload's problems: %w", err)
	}
	b, err := v.conn.PrepareBatch(ctx, "INSERT INTO "+v.db+".dataset_uploads (dataset, upload, source, saved_by, saved_at, rows, refused, problems, error)")
	if err != nil {
		return fmt.Errorf("prepare insert into dataset_uploads: %w", err)
	}
	if err := b.Append(up.Dataset, up.ID, up.Source, up.By, up.At.UTC(), uint32(up.Rows), uint32(up.Refused), string(problems), up.Error); err != nil {
		b.Abort()
		return fmt.Errorf("append to dataset_uploads batch: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into dataset_uploads: %w", err)
	}
	return nil
}

// Current returns the values that count of d's periods starting in
// [from, to) (civil dates), of the units given (all when nil).
func (v *Values) Current(ctx context.Context, d Definition, units []string, from, to time.Time) ([]Value, error) {
	q := "SELECT unit, period, measure, argMax(value, version), argMax(upload, version) FROM " + v.db + ".dataset_values" +
		" WHERE dataset = ? AND period >= toDate(?) AND period < toDate(?)"
	args := []any{d.ID, day(from), day(to)}
	if units != nil {
		if len(units) == 0 {
			return nil, nil
		}
		q += " AND unit IN ?"
		args = append(args, chstore.In(units))
	}
	q += " GROUP BY unit, period, measure HAVING argMax(present, version) = 1"
	return v.scanValues(ctx, d, q, args...)
}

// scanValues runs q, which selects unit, period, measure, value and
// upload of d's values.
func (v *Values) scanValues(ctx context.Context, d Definition, q string, args ...any) ([]Value, error) {
	rows, err := v.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query dataset_values of %s: %w", d.ID, err)
	}
	defer rows.Close()
	var out []Value
	for rows.Next() {
		var x Value
		if err := rows.Scan(&x.Unit, &x.Period, &x.Measure, &x.Value, &x.Upload); err != nil {
			return nil, fmt.Errorf("read dataset_values of %s: %w", d.ID, err)
		}
		x.Period = civil(x.Period.Date())
		out = append(out, x)
	}
	return out, rows.Err()
}

// before returns, of each unit given (all when nil) and each of measures,
// the value that counts of its latest period starting before from.
func (v *Values) before(ctx context.Context, d Definition, units, measures []string, from time.Time) ([]Value, error) {
	where := " WHERE dataset = ? AND period < toDate(?) AND measure IN ?"
	args := []any{d.ID, day(from), chstore.In(measures)}
	if units != nil {
		if len(units) == 0 {
			return nil, nil
		}
		where += " AND unit IN ?"
		args = append(args, chstore.In(units))
	}
	q := "SELECT unit, period, measure, v, up FROM (SELECT unit, period, measure, argMax(value, version) AS v, argMax(upload, version) AS up" +
		" FROM " + v.db + ".dataset_values" + where + " GROUP BY unit, period, measure HAVING argMax(present, version) = 1)" +
		" ORDER BY unit, measure, period DESC LIMIT 1 BY unit, measure"
	return v.scanValues(ctx, d, q, args...)
}

// Version is one version of a unit's period: the values an upload gave.
type Version struct {
	// Version orders the versions: the upload's receipt time in
	// nanoseconds, written as a string (JSON numbers above 2^53 lose
	// digits in JavaScript).
	Version uint64             `json:"version,string"`
	Upload  string             `json:"upload"`
	Source  string             `json:"source"`
	By      string             `json:"saved_by"`
	At      time.Time          `json:"saved_at"`
	Values  map[string]float64 `json:"values"`
	Current bool               `json:"current"`
}

// History returns every version of a unit's period of a dataset, oldest
// first; the last is the one that counts.
func (v *Values) History(ctx context.Context, dataset, unit string, period time.Time) ([]Version, error) {
	rows, err := v.conn.Query(ctx, "SELECT version, any(upload), any(source), any(saved_by), any(saved_at), groupArray(measure), groupArray(value), groupArray(present)"+
		" FROM "+v.db+".dataset_values WHERE dataset = ? AND unit = ? AND period = toDate(?) GROUP BY version ORDER BY version",
		dataset, unit, day(period))
	if err != nil {
		return nil, fmt.Errorf("query the history of %s %s: %w", dataset, unit, err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		var x Version
		var measures []string
		var values []float64
		var present []uint8
		if err := rows.Scan(&x.Version, &x.Upload, &x.Source, &x.By, &x.At, &measures, &values, &present); err != nil {
			return nil, fmt.Errorf("read the history of %s %s: %w", dataset, unit, err)
		}
		x.At = x.At.UTC()
		x.Values = map[string]float64{}
		for i, m := range measures {
			if present[i] == 1 {
				x.Values[m] = values[i]
			}
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) > 0 {
		out[len(out)-1].Current = true
	}
	return out, nil
}

// Uploads returns the latest uploads and runs of a dataset, newest first.
func (v *Values) Uploads(ctx context.Context, dataset string, limit int) ([]Upload, error) {
	return v.uploads(ctx, dataset, " WHERE dataset = ? ORDER BY saved_at DESC, upload DESC LIMIT ?", dataset, uint64(limit))
}

// UploadsOf returns the uploads of a dataset with the ids given, newest
// first.
func (v *Values) UploadsOf(ctx context.Context, dataset string, ids []string) ([]Upload, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return v.uploads(ctx, dataset, " WHERE dataset = ? AND upload IN ? ORDER BY saved_at DESC, upload DESC", dataset, chstore.In(ids))
}

func (v *Values) uploads(ctx context.Context, dataset, where string, args ...any) ([]Upload, error) {
	rows, err := v.conn.Query(ctx, "SELECT upload, source, saved_by, saved_at, rows, refused, problems, error FROM "+v.db+".dataset_uploads"+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query the uploads of %s: %w", dataset, err)
	}
	defer rows.Close()
	var out []Upload
	for rows.Next() {
		up := Upload{Dataset: dataset}
		var n, refused uint32
		var problems string
		if err := rows.Scan(&up.ID, &up.Source, &up.By, &up.At, &n, &refused, &problems, &up.Error); err != nil {
			return nil, fmt.Errorf("read the uploads of %s: %w", dataset, err)
		}
		up.At, up.Rows, up.Refused = up.At.UTC(), int(n), int(refused)
		_ = json.Unmarshal([]byte(problems), &up.Problems)
		out = append(out, up)
	}
	return out, rows.Err()
}

// Feed is what a dataset's health is read from: its latest period with
// values, the units that gave values for it, and when values last came.
type Feed struct {
	Latest   time.Time // zero: no values at all
	Units    []string
	Received time.Time
}

// Feed reads d's feed.
func (v *Values) Feed(ctx context.Context, d Definition) (Feed, error) {
	var f Feed
	var n uint64
	err := v.conn.QueryRow(ctx, "SELECT count(), max(period), max(saved_at) FROM "+v.db+".dataset_values WHERE dataset = ? AND present = 1", d.ID).
		Scan(&n, &f.Latest, &f.Received)
	if err != nil {
		return Feed{}, fmt.Errorf("query the feed of %s: %w", d.ID, err)
	}
	if n == 0 {
		return Feed{}, nil
	}
	f.Latest, f.Received = civil(f.Latest.Date()), f.Received.UTC()
	values, err := v.Current(ctx, d, nil, f.Latest, d.Grain.Next(f.Latest))
	if err != nil {
		return Feed{}, err
	}
	seen := map[string]bool{}
	for _, x := range values {
		if !seen[x.Unit] {
			seen[x.Unit] = true
			f.Units = append(f.Units, x.Unit)
		}
	}
	return f, nil
}

// Latest is d's latest period with values that starts by upTo (a civil
// date); zero without any.
func (v *Values) Latest(ctx context.Context, d Definition, upTo time.Time) (time.Time, error) {
	var n uint64
	var latest time.Time
	err := v.conn.QueryRow(ctx, "SELECT count(), max(period) FROM "+v.db+".dataset_values WHERE dataset = ? AND present = 1 AND period <= toDate(?)",
		d.ID, day(upTo)).Scan(&n, &latest)
	if err != nil {
		return time.Time{}, fmt.Errorf("query the latest period of %s: %w", d.ID, err)
	}
	if n == 0 {
		return time.Time{}, nil
	}
	return civil(latest.Date()), nil
}

// day writes a civil date for toDate.
func day(t time.Time) string { return t.Format("2006-01-02") }
