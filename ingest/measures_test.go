package ingest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/internal/testenv"
)

// column is a column of a table as ClickHouse describes it.
type column struct{ name, typ string }

// TestMeasureTableMatchesTheMigrations: after migrating, every dossier flow
// rollup has the key its writer inserts, then one Int64 column per measure
// of dossier.Table, in its order; dossier_history has the delta.* arrays
// the writer inserts, Int8 or Int64 as each measure is wide. A measure
// added to the table without its migration, or a migration out of step
// with the table, fails here.
func TestMeasureTableMatchesTheMigrations(t *testing.T) {
	s := testenv.Store(t)
	describe := func(table string) []column {
		t.Helper()
		rows, err := s.Conn().Query(context.Background(), "SELECT name, type FROM system.columns WHERE database = ? AND table = ?", s.Database(), table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []column
		for rows.Next() {
			var c column
			if err := rows.Scan(&c.name, &c.typ); err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, spec := range dossierFamily.specs {
		want := []column{{"hierarchy", "String"}, {"area_code", "String"}}
		switch spec.bucket {
		case "t":
			want = append(want, column{"t", "DateTime('UTC')"})
		default:
			want = append(want, column{spec.bucket, "Date"})
		}
		for _, d := range spec.dims {
			want = append(want, column{d, "String"})
		}
		for _, m := range dossier.Table {
			want = append(want, column{m.Column, "Int64"})
		}
		if got := describe(spec.table); !slices.Equal(got, want) {
			t.Errorf("%s has columns\n %v\nthe measure table wants\n %v", spec.table, got, want)
		}
		if got, want := spec.columns(), names(want); !slices.Equal(got, want) {
			t.Errorf("%s: the writer inserts %v, want %v", spec.table, got, want)
		}
	}
	var delta []column
	for _, c := range describe(dossierFamily.raw) {
		if strings.HasPrefix(c.name, "delta.") {
			delta = append(delta, c)
		}
	}
	want := []column{{"delta.t", "Array(DateTime('UTC'))"}, {"delta.area_code", "Array(String)"}, {"delta.sector", "Array(String)"},
		{"delta.procedure_code", "Array(String)"}, {"delta.channel", "Array(String)"}, {"delta.online_level", "Array(String)"}}
	for _, m := range dossier.Table {
		want = append(want, column{"delta." + m.Column, deltaType(m)})
	}
	if !slices.Equal(delta, want) {
		t.Errorf("%s has delta columns\n %v\nthe measure table wants\n %v", dossierFamily.raw, delta, want)
	}
	if got := strings.ReplaceAll(strings.Join(deltaColumns, ","), "`", ""); got != strings.Join(names(want), ",") {
		t.Errorf("the writer inserts delta columns %s, want %v", got, names(want))
	}
}

func names(cs []column) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

// TestAMeasureMoreIsOneEntry builds what the writers and the check of the
// rollups take from the measure table from a table with one measure more:
// its delta array, its column in every rollup insert, and its sum in what
// iocd verify derives from the records all follow, last, with no other
// change.
func TestAMeasureMoreIsOneEntry(t *testing.T) {
	postal := dossier.Measure{Column: "received_postal", AtReceipt: func(f dossier.Facts) int64 {
		if f.Channel == "postal" {
			return 1
		}
		return 0
	}}
	table := append(dossier.Table[:len(dossier.Table):len(dossier.Table)], postal)

	if got, was := deltaColumnsOf(table), deltaColumns; !slices.Equal(got, append(slices.Clone(was), "`delta.received_postal`")) {
		t.Errorf("delta columns %v, want those of dossier.Table and `delta.received_postal`", got)
	}
	if got := deltaType(postal); got != "Array(Int8)" {
		t.Errorf("the delta array of a measure that is not wide is %s, want Array(Int8)", got)
	}
	specs := flowSpecs(table)
	if len(specs) != len(dossierFamily.specs) {
		t.Fatalf("%d rollups, want %d", len(specs), len(dossierFamily.specs))
	}
	for i, s := range specs {
		was := dossierFamily.specs[i]
		if got, want := s.columns(), append(was.columns(), "received_postal"); !slices.Equal(got, want) {
			t.Errorf("%s inserts %v, want %v", s.table, got, want)
		}
		truth := flowTruth("db", "Asia/Ho_Chi_Minh", table, s)
		for _, want := range []string{"`delta.received_postal` AS x_received_postal", "sum(x_approximate), sum(x_received_postal) FROM",
			"`delta.approximate`, `delta.received_postal` FROM db.dossier_history FINAL"} {
			if !strings.Contains(truth, want) {
				t.Errorf("%s: the records' truth lacks %q:\n%s", s.table, want, truth)
			}
		}
		if flowTruth("db", "Asia/Ho_Chi_Minh", dossier.Table[:], s) != (&Verifier{db: "db", zone: "Asia/Ho_Chi_Minh"}).truth(dossierFamily, was) {
			t.Errorf("%s: the check's truth is not built from the measure table", s.table)
		}
	}
}
