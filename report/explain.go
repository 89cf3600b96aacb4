package report

import (
	"context"
	"maps"
	"slices"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/dataset"
)

// Explain says where a dataset indicator's figures came from
// (?explain=true): for each dataset, the version of its definition in
// force and the uploads whose values the answer's figures count; for a
// derived indicator, also the catalog's indicators it names, which are
// figures of the ingested records, not of uploads.
type Explain struct {
	Datasets []DatasetSource `json:"datasets"`
	Catalog  []string        `json:"catalog,omitempty"`
}

// DatasetSource is one dataset an answer's figures came from.
type DatasetSource struct {
	Dataset string `json:"dataset"`
	// Definition is the version of the definition in force (GET
	// /api/v1/datasets/{id}/versions); 0 if it was not read from the store.
	Definition uint32         `json:"definition_version"`
	Uploads    []UploadSource `json:"uploads"`
}

// UploadSource is an upload or connector run whose values count, and how
// many of them the figures count (a stock's value carried into several
// steps counts in each).
type UploadSource struct {
	ID      string `json:"id"`
	Source  string `json:"source"`
	By      string `json:"saved_by"`
	At      string `json:"saved_at"`
	Rows    int    `json:"rows"`
	Refused int    `json:"refused"`
	Values  int    `json:"values"`
}

// ofRecords explains an indicator of the catalog: its figures come from
// the ingested records, no dataset's.
func ofRecords(id string) *Explain {
	return &Explain{Datasets: []DatasetSource{}, Catalog: []string{id}}
}

// explain tells where di's figures for units over r by step (none: over
// the whole range) came from.
func (e *Engine) explain(ctx context.Context, di datasetIndicator, units []string, r Range, step Step) (*Explain, error) {
	// The datasets the figures read, each with the measures read of it.
	sets := []dataset.Definition{di.def}
	measures := map[string][]string{di.def.ID: di.def.MeasuresOf(di.id)}
	out := &Explain{Datasets: []DatasetSource{}}
	if di.formula != nil {
		sets, measures = sets[:0], map[string][]string{}
		for _, name := range di.formula.Names() {
			id := di.def.Operand(name)
			if od, local, ok := e.datasets.Indicator(id); ok {
				if _, seen := measures[od.ID]; !seen {
					sets = append(sets, od)
				}
				measures[od.ID] = append(measures[od.ID], od.MeasuresOf(local)...)
			} else if _, ok := aggregate.Lookup(id); ok && !slices.Contains(out.Catalog, id) {
				out.Catalog = append(out.Catalog, id)
			}
		}
	}
	from, to := e.civilRange(r)
	for _, d := range sets {
		g, err := grainOf(d, di.full, step)
		if err != nil {
			return nil, err
		}
		groups := make([]dataset.Group, len(units))
		for i, u := range units {
			groups[i] = dataset.Group{Key: u, Units: d.Leaves(e.h, u)}
		}
		srcs, err := e.datasets.Sources(ctx, d, groups, from, to, g, measures[d.ID])
		if err != nil {
			return nil, err
		}
		counts := map[string]int{}
		for _, steps := range srcs {
			for _, src := range steps {
				for id, n := range src {
					counts[id] += n
				}
			}
		}
		ups, err := e.datasets.UploadsOf(ctx, d.ID, slices.Sorted(maps.Keys(counts)))
		if err != nil {
			return nil, err
		}
		ds := DatasetSource{Dataset: d.ID, Definition: e.datasets.Version(d.ID), Uploads: make([]UploadSource, 0, len(ups))}
		for _, up := range ups {
			ds.Uploads = append(ds.Uploads, UploadSource{ID: up.ID, Source: up.Source, By: up.By, At: up.At.Format("2006-01-02T15:04:05Z"),
				Rows: up.Rows, Refused: up.Refused, Values: counts[up.ID]})
		}
		out.Datasets = append(out.Datasets, ds)
	}
	return out, nil
}
