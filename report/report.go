// Package report answers analysts' questions over the rollups: an
// indicator's series by hour, day, week or month; rankings of the units
// under a parent; breakdowns by dimension; comparisons with an earlier
// period; the national scoreboard; and the official figures of closed
// periods.
//
// Ratios are always the summed numerator over the summed denominator of
// the units and steps asked for, never an average of ratios. The figures
// are read through the rollup reader the live figures use too
// (rollup: the sources each indicator names in the catalog, over
// a scope, range, step and breakdown), and turned into figures as the live
// ones are (aggregate.CountsOf). Every query binds its values on the
// client and names only allow-listed tables, columns and dimensions; each
// runs under an execution time limit.
//
// Answers over closed ranges are kept in memory with the version of the
// rollup parts they were read from, and served again only while that
// version is current (see cache.go): a late event that corrects a past day
// changes the answer at once.
//
// Concurrency: an Engine is safe for concurrent use; closing a period takes
// a cluster-wide lock.
package report

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/rollup"
)

// Config tunes an Engine. Zero fields take the defaults.
type Config struct {
	// QueryTimeout is ClickHouse's max_execution_time for each query;
	// default 10s.
	QueryTimeout time.Duration
	// Datasets answers the indicators of department datasets; nil:
	// none.
	Datasets Datasets
	// CacheBytes bounds the answers over closed ranges kept in memory
	// (about; see answerCache); 0 is 64 MiB, negative keeps none.
	CacheBytes int64
}

// Locker serialises closing a period across nodes.
type Locker interface {
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// Engine answers reports over one store and hierarchy.
type Engine struct {
	conn driver.Conn
	db   string
	// official marks the context of inserts of what becomes official
	// (chstore.Store.Official).
	official func(context.Context) context.Context
	h        *geo.Hierarchy
	loc      *time.Location
	timeout  time.Duration
	rollups  *rollup.Reader
	lock     Locker
	logger   *slog.Logger
	now      func() time.Time
	cache    *answerCache // nil: off
	datasets Datasets     // nil: none

	selectMu sync.Mutex
	selected map[[2]string][]geo.Unit // units by level and parent, kept: the hierarchy is immutable
}

// selectUnits is h.Select(level, parent), listed once: Select walks every
// unit of the hierarchy for a top level (a millisecond for the provinces
// of the scoreboard). The slice is shared: callers must not modify it.
func (e *Engine) selectUnits(level, parent string) []geo.Unit {
	e.selectMu.Lock()
	defer e.selectMu.Unlock()
	k := [2]string{level, parent}
	if us, ok := e.selected[k]; ok {
		return us
	}
	if e.selected == nil {
		e.selected = map[[2]string][]geo.Unit{}
	}
	us := e.h.Select(level, parent)
	e.selected[k] = us
	return us
}

// New returns an engine over the store's rollups. Days and months are
// those of the zone the store's rollups are cut in.
func New(cfg Config, store *chstore.Store, h *geo.Hierarchy, lock Locker, logger *slog.Logger) (*Engine, error) {
	if store == nil || h == nil || lock == nil {
		return nil, fmt.Errorf("report engine needs a store, a hierarchy and a lock")
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 10 * time.Second
	}
	loc, err := time.LoadLocation(store.TimeZone())
	if err != nil {
		return nil, fmt.Errorf("load time zone %s: %w", store.TimeZone(), err)
	}
	rollups, err := rollup.NewReader(store)
	if err != nil {
		return nil, err
	}
	e := &Engine{conn: store.Conn(), db: store.Database(), official: store.Official, h: h, loc: loc, timeout: cfg.QueryTimeout,
		rollups: rollups, lock: lock, logger: logger, now: time.Now, datasets: cfg.Datasets}
	switch {
	case cfg.CacheBytes == 0:
		e.cache = newAnswerCache(defaultCacheBytes)
	case cfg.CacheBytes > 0:
		e.cache = newAnswerCache(cfg.CacheBytes)
	}
	return e, nil
}

// Location is the zone of days and months.
func (e *Engine) Location() *time.Location { return e.loc }

// Value is a figure with what it is computed from.
type Value struct {
	Value       *float64 `json:"value"`
	Numerator   *float64 `json:"numerator"`
	Denominator *float64 `json:"denominator"`
}

func valueOf(p aggregate.Parts) Value { return Value{p.Value, p.Num, p.Den} }

// change is now − then, or null (a nil *float64 in an any, so that it is
// present in JSON) when either is.
func change(now, then *float64) any {
	if now == nil || then == nil {
		return (*float64)(nil)
	}
	d := math.Round((*now-*then)*1e4) / 1e4
	return &d
}

// Share is a breakdown entry: the figure of one value of the dimension.
type Share struct {
	Key string `json:"key"`
	Value
}

// indicator finds a history indicator.
func indicator(id string) (aggregate.Definition, error) {
	d, ok := aggregate.Lookup(id)
	if !ok {
		return d, notFoundf("no indicator %q; GET /api/v1/kpis lists them", id)
	}
	if !d.History {
		return d, limitf("%s is a figure of the present moment and has no history; use GET /api/v1/areas/{code}/kpis", id)
	}
	return d, nil
}

// checkBy checks a breakdown dimension against the indicator's list.
func checkBy(d aggregate.Definition, by string) error {
	if by == "" || slices.Contains(d.Breakdowns, by) {
		return nil
	}
	if len(d.Breakdowns) == 0 {
		return limitf("%s has no breakdowns", d.ID)
	}
	return limitf("%s breaks down by %v, not %q", d.ID, d.Breakdowns, by)
}

// judgedAt is when dossiers still open at end are judged: at end, or for a
// range not yet over, at the start of the current hour (a dossier's turn
// to late is stamped ahead, at its deadline, so the future must be cut off).
func (e *Engine) judgedAt(end time.Time) time.Time {
	if now := rollup.Floor(e.now(), Hour, e.loc); now.Before(end) {
		return now
	}
	return end
}

// unit finds a unit of the hierarchy.
func (e *Engine) unit(code string) (geo.Unit, error) {
	u, ok := e.h.Unit(code)
	if !ok {
		return u, notFoundf("no unit %q in %s; GET /api/v1/areas lists them", code, e.h.Name())
	}
	return u, nil
}

// sortedShares orders a breakdown by key; no entries is an empty list.
func sortedShares(s []Share) []Share {
	if s == nil {
		return []Share{}
	}
	slices.SortFunc(s, func(a, b Share) int { return cmp.Compare(a.Key, b.Key) })
	return s
}
