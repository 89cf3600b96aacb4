package dataset

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/testenv"
	"github.com/openioc/ioc/versioned"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// levels is the two levels of vn-2025.
type levels struct{}

func (levels) HasLevel(l string) bool { return l == "province" || l == "commune" }
func (levels) Levels() []string       { return []string{"province", "commune"} }

const enrolmentJSON = `{
  "id": "enrolment", "name_vi": "Tuyển sinh", "name_en": "School enrolment", "department": "Sở Giáo dục và Đào tạo",
  "grain": "year", "level": "commune",
  "measures": [
    {"id": "pupils", "name_vi": "Học sinh", "name_en": "Pupils", "unit": "pupils", "rollup": "sum", "over_time": "last"},
    {"id": "teachers", "name_vi": "Giáo viên", "name_en": "Teachers", "unit": "teachers", "rollup": "sum", "over_time": "last"}
  ],
  "indicators": [
    {"id": "pupils_per_teacher", "name_vi": "Học sinh trên một giáo viên", "name_en": "Pupils per teacher", "unit": "pupils",
     "numerator": "pupils", "denominator": "teachers", "direction": "lower_is_better"}
  ]
}`

// storedDefs stands in for the documents store: the definitions' own
// storage is the versioned package's, tested there and through the api.
type storedDefs []versioned.Document

func (s storedDefs) List(context.Context, string) ([]versioned.Document, error) { return s, nil }

func newDatasets(t *testing.T, now func() time.Time) *Datasets {
	t.Helper()
	ds, err := New(Config{Values: ValuesConfig{Now: now}}, testenv.Store(t), storedDefs{{Kind: Kind, ID: "enrolment", Version: 1, Body: []byte(enrolmentJSON)}},
		levels{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ds
}

func row(unit string, year int, values ...float64) Row {
	r := Row{Unit: unit, Period: civil(year, 1, 1), Values: make([]float64, 2), Present: make([]bool, 2)}
	for i, v := range values {
		if v >= 0 {
			r.Values[i], r.Present[i] = v, true
		}
	}
	return r
}

// TestACorrectionReplacesTheFigureAndTheHistoryKeepsBoth: a unit's year
// sent again counts instead of the first, measures it leaves out have no
// value any more, and the history shows both with who sent them.
func TestACorrectionReplacesTheFigureAndTheHistoryKeepsBoth(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	ds := newDatasets(t, func() time.Time { return at })
	d, ok := ds.Get("enrolment")
	if !ok {
		t.Fatal("the definition is not in force")
	}
	if _, err := ds.Put(ctx, d, []Row{row("26734", 2025, 1200, 60), row("26737", 2025, 800, 50)}, Upload{ID: "u1", Source: "upload", By: "so-gd"}); err != nil {
		t.Fatal(err)
	}
	// The same instant: the version still goes up, so the correction wins.
	if _, err := ds.Put(ctx, d, []Row{row("26734", 2025, 1250, -1)}, Upload{ID: "u2", Source: "upload", By: "so-gd-2", Refused: 1,
		Problems: []Problem{{Line: 3, Error: "bad"}}}); err != nil {
		t.Fatal(err)
	}
	values, err := ds.Current(ctx, d, nil, civil(2025, 1, 1), civil(2026, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, v := range values {
		got[v.Unit+"/"+v.Measure] = v.Value
	}
	want := map[string]float64{"26734/pupils": 1250, "26737/pupils": 800, "26737/teachers": 50}
	if b, _ := json.Marshal(got); string(b) != mustJSON(want) {
		t.Errorf("values that count: got %s, want %s (the correction's, without the teachers it left out)", b, mustJSON(want))
	}
	hist, err := ds.History(ctx, "enrolment", "26734", civil(2025, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Upload != "u1" || hist[1].Upload != "u2" || !hist[1].Current || hist[0].Current ||
		hist[0].Values["teachers"] != 60 || hist[1].By != "so-gd-2" || len(hist[1].Values) != 1 {
		t.Errorf("history: got %+v, want u1 (1200 pupils, 60 teachers) then u2 (1250 pupils), the latter current", hist)
	}
	ups, err := ds.Uploads(ctx, "enrolment", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 2 || ups[0].Rows+ups[1].Rows != 3 || ups[0].Refused+ups[1].Refused != 1 {
		t.Errorf("uploads: got %+v, want two with 3 rows and 1 refused between them", ups)
	}
	f, err := ds.Feed(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if f.Latest != civil(2025, 1, 1) || strings.Join(f.Units, ",") != "26734,26737" && strings.Join(f.Units, ",") != "26737,26734" || !f.Received.Equal(at) {
		t.Errorf("feed: got %+v, want 2025 from both communes, received %s", f, at)
	}
}

// TestFiguresFromTheStoreAreSummedPartsOfTheLatestYear: a province's
// pupils per teacher is its communes' summed pupils over their summed
// teachers, each commune's latest year in the range.
func TestFiguresFromTheStoreAreSummedPartsOfTheLatestYear(t *testing.T) {
	ctx := context.Background()
	ds := newDatasets(t, time.Now)
	d, _ := ds.Get("enrolment")
	rows := []Row{row("26734", 2024, 1000, 50), row("26734", 2025, 1200, 60), row("26737", 2024, 900, 30)}
	if _, err := ds.Put(ctx, d, rows, Upload{ID: "u", Source: "upload"}); err != nil {
		t.Fatal(err)
	}
	figs, err := ds.Figures(ctx, d, []Group{{Key: "79", Units: []string{"26734", "26737"}}, {Key: "26737", Units: []string{"26737"}}},
		civil(2024, 1, 1), civil(2026, 1, 1), "")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := d.Parts("pupils_per_teacher", figs["79"][time.Time{}])
	// 26734's latest is 2025 (1200/60), 26737's 2024 (900/30): 2100/90.
	if p.Value == nil || *p.Num != 2100 || *p.Den != 90 || *p.Value != round(2100.0/90) {
		t.Errorf("province: got %v, want 2100/90 = %v", fmtParts(p), round(2100.0/90))
	}
	ds.Set(nil)
	if _, _, ok := ds.Indicator("enrolment.pupils"); ok {
		t.Error("a dataset out of force still answers")
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func fmtParts(p Parts) string {
	s := func(v *float64) string {
		if v == nil {
			return "null"
		}
		b, _ := json.Marshal(*v)
		return string(b)
	}
	return s(p.Value) + " (" + s(p.Num) + "/" + s(p.Den) + ")"
}
