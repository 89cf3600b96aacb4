package report

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/openioc/ioc/dataset"
	"github.com/openioc/ioc/versioned"
)

// populationJSON: residents per commune and year, and dossiers received
// per 1,000 residents from the dossier catalog and this dataset.
const populationJSON = `{
  "id": "population", "name_vi": "Dân số", "name_en": "Population", "grain": "year", "level": "commune",
  "measures": [{"id": "residents", "name_vi": "Dân số", "name_en": "Residents", "unit": "people", "rollup": "sum", "over_time": "last"}],
  "derived": [{"id": "dossiers_per_1000", "name_vi": "Hồ sơ trên 1.000 dân", "name_en": "Dossiers per 1,000 residents",
    "unit": "dossiers", "formula": "dossiers_received / residents * 1000"}]
}`

type definitions []versioned.Document

func (d definitions) List(context.Context, string) ([]versioned.Document, error) { return d, nil }

// TestADerivedIndicatorIsItsFormulaOverSummedParts: dossiers received per
// 1,000 residents of a province is its dossiers over its residents, not
// the mean of its communes' rates; each commune's is its own; the
// residents are each commune's latest census before the range ends.
func TestADerivedIndicatorIsItsFormulaOverSummedParts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ds, err := dataset.New(dataset.Config{}, f.s, definitions{{Kind: dataset.Kind, ID: "population", Version: 1, Body: []byte(populationJSON)}},
		f.e.h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.Load(ctx); err != nil {
		t.Fatal(err)
	}
	f.e.datasets = ds
	d, _ := ds.Get("population")
	year := func(y int) time.Time { return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC) }
	row := func(unit string, y int, residents float64) dataset.Row {
		return dataset.Row{Unit: unit, Period: year(y), Values: []float64{residents}, Present: []bool{true}}
	}
	if _, err := ds.Put(ctx, d, []dataset.Row{row(saiGon, 2025, 28000), row(saiGon, 2026, 30000), row(benThanh, 2026, 20000)},
		dataset.Upload{ID: "census"}); err != nil {
		t.Fatal(err)
	}

	// October: Sài Gòn received D1–D3 (3), Bến Thành D4–D7 (4).
	rank, err := f.e.Ranking(ctx, RankingQuery{KPI: "population.dossiers_per_1000", Parent: "79", Range: october()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, it := range rank.Items[:3] {
		got[it.Area] = val(it.Value.Value)
	}
	if got[benThanh] != 0.2 || got[saiGon] != 0.1 || rank.Items[0].Area != benThanh || rank.Items[2].Value.Value != nil {
		t.Errorf("October per commune: got %v, want Bến Thành 4/20000·1000 = 0.2 then Sài Gòn 3/30000·1000 = 0.1, then communes without residents (null)", got)
	}

	// 2026 for the province: D1–D8 (8) over 50,000 residents = 0.16; the
	// mean of the communes' rates would be (4/30 + 4/20)/2 = 0.1667.
	y2026 := Range{time.Date(2026, 1, 1, 0, 0, 0, 0, hcm), time.Date(2027, 1, 1, 0, 0, 0, 0, hcm)}
	s, err := f.e.Series(ctx, SeriesQuery{KPI: "population.dossiers_per_1000", Area: "79", Range: y2026, Step: Year})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Points) != 1 || val(s.Points[0].Value.Value) != 0.16 {
		t.Errorf("2026 for 79: got %v, want 8/50000·1000 = 0.16", s.Points)
	}
	if _, err := f.e.Series(ctx, SeriesQuery{KPI: "population.dossiers_per_1000", Area: "79", Range: october(), Step: Month}); err == nil {
		t.Error("a series by month of a yearly dataset's indicator: no error")
	}
}
