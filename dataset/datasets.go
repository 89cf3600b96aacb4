package dataset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/versioned"
)

// Config tunes Datasets. Zero fields take the defaults.
type Config struct {
	Values ValuesConfig
	// Reload is how often the definitions are read again from the store,
	// for the changes made on other nodes; default 30s.
	Reload time.Duration
}

// Kind is the kind of the versioned documents that hold definitions.
const Kind = "dataset"

// Documents is where definitions are kept, every version with who saved
// it: versioned.Documents.
type Documents interface {
	List(ctx context.Context, kind string) ([]versioned.Document, error)
}

// Datasets is the node's datasets: the definitions in force (set from the
// stored documents whenever they change) and the store of their values.
//
// Concurrency: safe for concurrent use.
type Datasets struct {
	*Values
	docs   Documents
	levels Levels
	reload time.Duration
	logger *slog.Logger

	mu       sync.RWMutex
	defs     map[string]Definition
	versions map[string]uint32 // of the stored definitions in force
}

// New returns the datasets of s whose definitions docs keeps, with none in
// force until Load.
func New(cfg Config, s *chstore.Store, docs Documents, levels Levels, logger *slog.Logger) (*Datasets, error) {
	if s == nil || docs == nil || levels == nil || logger == nil {
		return nil, errors.New("datasets need a store, the documents, the hierarchy's levels and a logger")
	}
	if cfg.Reload <= 0 {
		cfg.Reload = 30 * time.Second
	}
	v, err := NewValues(cfg.Values, s)
	if err != nil {
		return nil, err
	}
	return &Datasets{Values: v, docs: docs, levels: levels, reload: cfg.Reload, logger: logger, defs: map[string]Definition{}}, nil
}

// Load puts in force the definitions the store holds. One that no longer
// passes the checks (the hierarchy lost its level) is left out and
// logged, so that the others still serve.
func (ds *Datasets) Load(ctx context.Context) error {
	docs, err := ds.docs.List(ctx, Kind)
	if err != nil {
		return fmt.Errorf("read the dataset definitions: %w", err)
	}
	defs := make([]Definition, 0, len(docs))
	versions := make(map[string]uint32, len(docs))
	for _, doc := range docs {
		d, err := Parse(doc.Body, ds.levels)
		if err != nil {
			ds.logger.Warn("a stored dataset definition no longer passes its checks; it is out of force until saved again", "dataset", doc.ID, "version", doc.Version, "err", err)
			continue
		}
		defs = append(defs, d)
		versions[d.ID] = doc.Version
	}
	ds.Set(defs)
	ds.mu.Lock()
	ds.versions = versions
	ds.mu.Unlock()
	for _, d := range defs {
		// A dataset a formula names may have been deleted since: its
		// figures are null until it is back or the formula is changed.
		for _, p := range d.CheckNames(ds.Operand) {
			ds.logger.Warn("a formula names an indicator that does not exist; its figures are null", "dataset", d.ID, "field", p.Path, "err", p.Error)
		}
	}
	return nil
}

// Run reads the definitions again every Reload until ctx ends: a change
// saved on another node comes in force here within that time.
func (ds *Datasets) Run(ctx context.Context) error {
	t := time.NewTicker(ds.reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := ds.Load(ctx); err != nil && ctx.Err() == nil {
				ds.logger.Warn("read the dataset definitions again; keeping those in force", "err", err)
			}
		}
	}
}

// Set makes defs the definitions in force.
func (ds *Datasets) Set(defs []Definition) {
	m := make(map[string]Definition, len(defs))
	for _, d := range defs {
		m[d.ID] = d
	}
	ds.mu.Lock()
	ds.defs = m
	ds.mu.Unlock()
}

// Get returns the definition of id.
func (ds *Datasets) Get(id string) (Definition, bool) {
	ds.mu.RLock()
	defer ds.mu.RUnlock()
	d, ok := ds.defs[id]
	return d, ok
}

// Version is the stored version of the definition of id in force; 0 for
// one not read from the store (Set).
func (ds *Datasets) Version(id string) uint32 {
	ds.mu.RLock()
	defer ds.mu.RUnlock()
	return ds.versions[id]
}

// List returns the definitions in force, by id.
func (ds *Datasets) List() []Definition {
	ds.mu.RLock()
	out := make([]Definition, 0, len(ds.defs))
	for _, d := range ds.defs {
		out = append(out, d)
	}
	ds.mu.RUnlock()
	slices.SortFunc(out, func(a, b Definition) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Indicator resolves an id of the catalog, "<dataset>.<measure or
// indicator>", to its dataset and the id within it.
func (ds *Datasets) Indicator(id string) (Definition, string, bool) {
	set, local, ok := strings.Cut(id, ".")
	if !ok {
		return Definition{}, "", false
	}
	d, ok := ds.Get(set)
	if !ok || d.kind(local) == "" {
		return Definition{}, "", false
	}
	return d, local, true
}

// Operand says whether id may be a name of a formula: an indicator of the
// catalog with history, or a measure or ratio of a dataset in force
// (derived ones are not: a formula is written out, never chained).
func (ds *Datasets) Operand(id string) bool {
	if c, ok := aggregate.Lookup(id); ok {
		return c.History
	}
	d, local, ok := ds.Indicator(id)
	return ok && d.kind(local) != kindDerived
}

// Catalog lists the catalog entries of every dataset in force.
func (ds *Datasets) Catalog() []aggregate.Definition {
	var out []aggregate.Definition
	for _, d := range ds.List() {
		out = append(out, d.Catalog()...)
	}
	return out
}

// Figures reads the values of d for the units of groups over [from, to)
// (civil dates) and combines them (Combine): the periods starting in it,
// and for a stock the latest before its end.
func (ds *Datasets) Figures(ctx context.Context, d Definition, groups []Group, from, to time.Time, step Grain) (map[string]map[time.Time]Figure, error) {
	values, err := ds.counting(ctx, d, groups, from, to)
	if err != nil {
		return nil, err
	}
	return Combine(d, values, groups, step, from, to), nil
}

// Sources says which uploads the figures Figures gives of measures (all
// when nil) came from, per group and step as Figures keys them.
func (ds *Datasets) Sources(ctx context.Context, d Definition, groups []Group, from, to time.Time, step Grain, measures []string) (map[string]map[time.Time]Sources, error) {
	values, err := ds.counting(ctx, d, groups, from, to)
	if err != nil {
		return nil, err
	}
	return SourcesOf(d, values, groups, step, from, to, measures), nil
}

// counting reads the values of the units of groups that may count over
// [from, to).
func (ds *Datasets) counting(ctx context.Context, d Definition, groups []Group, from, to time.Time) ([]Value, error) {
	seen := map[string]bool{}
	units := []string{}
	for _, g := range groups {
		for _, u := range g.Units {
			if !seen[u] {
				seen[u] = true
				units = append(units, u)
			}
		}
	}
	values, err := ds.Current(ctx, d, units, from, to)
	if err != nil {
		return nil, err
	}
	// A stock's latest value may be older than the range: each unit's
	// latest before it, and no older one, since a newer one replaces it.
	var stocks []string
	for _, m := range d.Measures {
		if m.over() == OverTimeLast {
			stocks = append(stocks, m.ID)
		}
	}
	if len(stocks) == 0 {
		return values, nil
	}
	earlier, err := ds.before(ctx, d, units, stocks, from)
	if err != nil {
		return nil, err
	}
	return append(earlier, values...), nil
}

// Catalog is d's entries in the catalog of indicators: a measure each, and
// each ratio, with the id "<dataset>.<id>".
func (d Definition) Catalog() []aggregate.Definition {
	source := "dataset " + d.ID
	if d.Department != "" {
		source += " (" + d.Department + ")"
	}
	var out []aggregate.Definition
	for _, m := range d.Measures {
		formula := map[string]string{
			RollupSum:  "sum of the units' values",
			RollupMin:  "lowest of the units' values",
			RollupMax:  "highest of the units' values",
			RollupMean: "sum of the units' values / number of units with a value",
		}[m.Rollup]
		if m.over() == OverTimeLast {
			formula += ", each unit's latest " + string(d.Grain) + " in the range"
		} else {
			formula += ", summed over the " + string(d.Grain) + "s of the range"
		}
		out = append(out, aggregate.Definition{ID: d.ID + "." + m.ID, NameVi: m.NameVi, NameEn: m.NameEn, Kind: m.Rollup,
			Unit: m.Unit, Direction: cmpOr(m.Direction, "neutral"), Formula: formula, Source: source, Needs: []string{m.column()},
			Live: true, History: true, Grain: string(d.Grain), Thresholds: m.Thresholds})
	}
	for _, ind := range d.Indicators {
		num, _ := d.Measure(ind.Numerator)
		den, _ := d.Measure(ind.Denominator)
		formula := ind.Numerator + " / " + ind.Denominator
		if ind.scale() != 1 {
			formula += " × " + strconv.FormatFloat(ind.scale(), 'f', -1, 64)
		}
		out = append(out, aggregate.Definition{ID: d.ID + "." + ind.ID, NameVi: ind.NameVi, NameEn: ind.NameEn, Kind: "ratio",
			Unit: cmpOr(ind.Unit, "ratio"), Direction: cmpOr(ind.Direction, "neutral"), Formula: formula,
			Numerator: d.ID + "." + ind.Numerator, Denominator: d.ID + "." + ind.Denominator, Source: source,
			Needs: []string{num.column(), den.column()}, Live: true, History: true, Grain: string(d.Grain), Thresholds: ind.Thresholds})
	}
	for _, dv := range d.Derived {
		var needs []string
		if f, ok := d.Formula(dv.ID); ok {
			for _, name := range f.Names() {
				needs = append(needs, d.Operand(name))
			}
		}
		out = append(out, aggregate.Definition{ID: d.ID + "." + dv.ID, NameVi: dv.NameVi, NameEn: dv.NameEn, Kind: "derived",
			Unit: dv.Unit, Direction: cmpOr(dv.Direction, "neutral"), Formula: dv.Formula, Source: source, Needs: needs, Live: true, History: true, Grain: string(d.Grain), Thresholds: dv.Thresholds})
	}
	return out
}
