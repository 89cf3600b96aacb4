package dataset_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/dataset"
)

// The uploads of the tests, kept here so that the fuzzers start from them.
var (
	// spreadsheetCSV is what a spreadsheet saves: a byte order mark, CRLF,
	// and a header typed on a keyboard that writes "Mã xã" decomposed
	// (NFD) and "Kỳ" in capitals.
	spreadsheetCSV = "\ufeffMa\u0303 xa\u0303,KỲ,Đăng ký mới,Vốn (tỷ đồng)\r\n" +
		"26734,2025-03,12,40.5\r\n" +
		"26737, 2025-03 , 3 ,\r\n" +
		"26737,2025-04,15,\r\n"

	// The same rows as objects: a JSON number or a numeric string, the
	// unit as a number, null for a value not given, keys in any case.
	rowsJSON = `[
		{"Mã xã": "26734", "Kỳ": "2025-03", "Đăng ký mới": 12, "Vốn (tỷ đồng)": "40.5"},
		{"Mã xã": 26737, "Kỳ": "2025-03", "Đăng ký mới": "3", "Vốn (tỷ đồng)": null},
		{"MÃ XÃ": "26737", "kỳ": "2025-04", "đăng ký mới": 1.5e1}
	]`
	rowsNDJSON = "\ufeff" + `{"Mã xã": "26734", "Kỳ": "2025-03", "Đăng ký mới": 12, "Vốn (tỷ đồng)": "40.5"}` + "\r\n" +
		`{"Mã xã": 26737, "Kỳ": "2025-03", "Đăng ký mới": "3", "Vốn (tỷ đồng)": null}` + "\n" +
		`{"MÃ XÃ": "26737", "kỳ": "2025-04", "đăng ký mới": 1.5e1}` + "\n"

	// pointsCSV are power outages by position, each placed in its
	// commune.
	pointsCSV = "Ngày,Vĩ độ,Kinh độ,outages\n" +
		"2025-03-14,10.77,106.68,2\n" + // in 26734
		"2025-03-14,10.90,106.68,1\n" + // in no commune
		"2025-03-14,106.68,10.77,1\n" + // lat and lon swapped
		"2025-03-14,10.82,106.68,1\n" + // in 26740, outside the token
		"2025-03-14,10.77,,1\n" + // no longitude
		"2025-03-15,10.78,106.66,4\n" // in 26734, the next day
)

// spreadsheetRows are the rows of spreadsheetCSV, rowsJSON and rowsNDJSON
// (lines aside).
var spreadsheetRows = []dataset.Row{
	{Unit: "26734", Period: day(2025, 3, 1), Values: []float64{12, 40.5}, Present: []bool{true, true}},
	{Unit: "26737", Period: day(2025, 3, 1), Values: []float64{3, 0}, Present: []bool{true, false}},
	{Unit: "26737", Period: day(2025, 4, 1), Values: []float64{15, 0}, Present: []bool{true, false}},
}

func withLines(rows []dataset.Row, lines ...int) []dataset.Row {
	out := make([]dataset.Row, len(rows))
	for i, r := range rows {
		r.Line = lines[i]
		out[i] = r
	}
	return out
}

func decode(t *testing.T, d dataset.Definition, format, body string) dataset.Decoded {
	t.Helper()
	dec, err := dataset.Decode(d, format, strings.NewReader(body), units{})
	if err != nil {
		t.Fatalf("Decode %s: %v", format, err)
	}
	return dec
}

// A CSV saved by a spreadsheet is read as its department typed it: the
// BOM dropped, the headers matched to the definition's columns whatever
// their case and Unicode form, the fields trimmed.
func TestACSVFromASpreadsheetIsReadByItsVietnameseHeaders(t *testing.T) {
	dec := decode(t, definition(t, "doanh_nghiep.json"), dataset.FormatCSV, spreadsheetCSV)
	if len(dec.Problems) != 0 || dec.Refused != 0 {
		t.Errorf("problems %q, %d refused; want none", dec.Problems, dec.Refused)
	}
	if want := withLines(spreadsheetRows, 2, 3, 4); !reflect.DeepEqual(dec.Rows, want) {
		t.Errorf("rows\n%+v\nwant\n%+v", dec.Rows, want)
	}
}

// One upload of a department's month, with every kind of mistake: each
// wrong row is refused with its line and why, and the right ones are
// stored. testdata/messy.problems.json is the list the department gets.
func TestEachWrongRowOfACSVIsRefusedWithItsLineAndTheRestStored(t *testing.T) {
	dec := decode(t, definition(t, "doanh_nghiep.json"), dataset.FormatCSV, string(readFile(t, "messy.csv")))
	var lines []int
	for _, r := range dec.Rows {
		lines = append(lines, r.Line)
	}
	// Line 8 is empty and line 9 a spreadsheet's empty row (",,,,"): left
	// out, neither stored nor refused. Line 15 comes after a bare quote.
	if want := []int{2, 11, 15}; !reflect.DeepEqual(lines, want) {
		t.Errorf("stored lines %v, want %v", lines, want)
	}
	if dec.Refused != 9 {
		t.Errorf("%d refused, want 9: lines 3, 4, 5, 6, 7, 10, 12, 13, 14", dec.Refused)
	}
	got, err := json.MarshalIndent(dec.Problems, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "messy.problems.json", append(got, '\n'))
	// The golden file is read by people; these are the facts it must keep.
	for _, want := range []dataset.Problem{
		{Line: 1, Path: "Ghi chú"},
		{Line: 3, Path: "Mã xã"},
		{Line: 3, Path: "Kỳ"},
		{Line: 4, Path: "Mã xã"},
		{Line: 5, Path: "Mã xã"},
		{Line: 6, Path: "Kỳ"},
		{Line: 7, Path: "Đăng ký mới"},
		{Line: 10},
		{Line: 12},
		{Line: 13, Path: "Đăng ký mới"},
		{Line: 14},
	} {
		if !hasProblem(dec.Problems, want.Line, want.Path) {
			t.Errorf("no problem at line %d, %q", want.Line, want.Path)
		}
	}
	if p := problemAt(dec.Problems, 10); !strings.Contains(p.Error, "also at line 2") {
		t.Errorf("the duplicate's problem %q does not point to line 2", p)
	}
}

func hasProblem(probs []dataset.Problem, line int, path string) bool {
	for _, p := range probs {
		if p.Line == line && p.Path == path {
			return true
		}
	}
	return false
}

func problemAt(probs []dataset.Problem, line int) dataset.Problem {
	for _, p := range probs {
		if p.Line == line {
			return p
		}
	}
	return dataset.Problem{}
}

// wrongRows are rows of testdata/doanh_nghiep.json wrong one way each:
// the column of the problem, and what it says.
var wrongRows = []struct {
	name, row, path, says string
}{
	{"an unknown unit", "99999,2025-03,1,1", "Mã xã", `unit "99999" is not in the hierarchy`},
	{"a province for a dataset of communes", "79,2025-03,1,1", "Mã xã", "is a province: this dataset's values are given per commune"},
	{"a unit outside the token", "26740,2025-03,1,1", "Mã xã", "outside the areas your token covers"},
	{"no unit", ",2025-03,1,1", "Mã xã", "no unit"},
	{"a day for a monthly dataset", "26734,2025-03-01,1,1", "Kỳ", "write it as YYYY-MM"},
	{"a month 13", "26734,2025-13,1,1", "Kỳ", "write it as YYYY-MM"},
	{"no period", "26734,,1,1", "Kỳ", "no period: give it as YYYY-MM"},
	{"a thousands separator", `26734,2025-03,"1.234,5",1`, "Đăng ký mới", "no thousands separator"},
	{"a decimal comma", `26734,2025-03,"1,5",1`, "Đăng ký mới", "not a number"},
	{"a hexadecimal number", "26734,2025-03,0x1p3,1", "Đăng ký mới", "not a number"},
	{"an infinite number", "26734,2025-03,1,Inf", "Vốn (tỷ đồng)", "not a number"},
	{"no measure", "26734,2025-03,,", "", "no measure given"},
	{"no measure and a short row", "26734,2025-03", "", "no measure given"},
}

const wrongRowsHeader = "Mã xã,Kỳ,Đăng ký mới,Vốn (tỷ đồng)\n"

func TestEachKindOfWrongRowIsRefusedWithWhy(t *testing.T) {
	d := definition(t, "doanh_nghiep.json")
	for _, c := range wrongRows {
		t.Run(c.name, func(t *testing.T) {
			dec := decode(t, d, dataset.FormatCSV, wrongRowsHeader+c.row+"\n")
			if len(dec.Rows) != 0 || dec.Refused != 1 || len(dec.Problems) != 1 {
				t.Fatalf("%d rows, %d refused, problems %q; want the row refused with one problem", len(dec.Rows), dec.Refused, dec.Problems)
			}
			if p := dec.Problems[0]; p.Line != 2 || p.Path != c.path || !strings.Contains(p.Error, c.says) {
				t.Errorf("problem %q; want line 2, %s, saying %q", p, c.path, c.says)
			}
		})
	}
}

// A column the definition does not name is left out and said so, on the
// header's line; the rows are stored all the same and none counts as
// refused.
func TestAnUnknownColumnIsReportedAndTheRowsStillStored(t *testing.T) {
	dec := decode(t, definition(t, "doanh_nghiep.json"), dataset.FormatCSV,
		"Mã xã,Kỳ,Đăng ký mới,Ghi chú,Người lập\n26734,2025-03,12,ok,Lan\n26737,2025-03,x,,Lan\n")
	if len(dec.Rows) != 1 || dec.Rows[0].Unit != "26734" {
		t.Errorf("rows %+v; want 26734's", dec.Rows)
	}
	// Two header problems and a refused row: Refused counts rows.
	if dec.Refused != 1 || len(dec.Problems) != 3 {
		t.Fatalf("%d refused, problems %q; want 1 refused of 3 problems", dec.Refused, dec.Problems)
	}
	for i, col := range []string{"Ghi chú", "Người lập"} {
		if p := dec.Problems[i]; p.Line != 1 || p.Path != col || !strings.Contains(p.Error, "not in the definition") {
			t.Errorf("problem %q; want line 1, %s, not in the definition", p, col)
		}
	}
}

// Without the unit or the period no row can be read: the whole upload is
// refused, naming the column to add.
func TestAHeaderWithoutTheUnitOrPeriodRefusesTheWholeUpload(t *testing.T) {
	for _, c := range []struct{ name, def, body, column string }{
		{"no unit", "doanh_nghiep.json", "Xã,Kỳ,Đăng ký mới\n26734,2025-03,1\n", "Mã xã"},
		{"no period", "doanh_nghiep.json", "Mã xã,Tháng,Đăng ký mới\n26734,2025-03,1\n", "Kỳ"},
		{"no longitude for points", "su_co_dien.json", "Ngày,Vĩ độ,outages\n2025-03-14,10.77,1\n", "Kinh độ"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dec, err := dataset.Decode(definition(t, c.def), dataset.FormatCSV, strings.NewReader(c.body), units{})
			if err == nil || !strings.Contains(err.Error(), "no column "+c.column) {
				t.Errorf("Decode = %+v, %v; want an error naming %s", dec, err, c.column)
			}
		})
	}
}

func TestAnUploadThatCannotBeReadIsRefusedWhole(t *testing.T) {
	d := definition(t, "doanh_nghiep.json")
	for _, c := range []struct{ name, format, body string }{
		{"an empty CSV", dataset.FormatCSV, ""},
		{"a CSV header with a bare quote", dataset.FormatCSV, "Mã xã,K\"ỳ\n"},
		{"a JSON object instead of an array", dataset.FormatJSON, `{"Mã xã": "26734"}`},
		{"a JSON array that does not end", dataset.FormatJSON, `[{"Mã xã": "26734", "Kỳ": "2025-03", "Đăng ký mới": 1}`},
		{"a broken JSON row", dataset.FormatJSON, `[{"Mã xã": ]`},
		{"an unknown format", "xlsx", "PK"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if dec, err := dataset.Decode(d, c.format, strings.NewReader(c.body), units{}); err == nil {
				t.Errorf("Decode = %+v; want an error", dec)
			}
		})
	}
}

// A quote out of place spoils its own row only: the rows after it are
// read (they were once left out without a word), and a bare quote at the
// start of a row is a refused row, not a crash.
func TestABadQuoteSpoilsOnlyItsRow(t *testing.T) {
	d := definition(t, "doanh_nghiep.json")
	for _, c := range []struct{ name, bad string }{
		{"a bare quote in the unit", `267"34,2025-03,1,1`},
		{"a bare quote in a value", `26734,2025-03,1"2,1`},
		{"text after a closing quote", `"26734"x,2025-03,1,1`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dec := decode(t, d, dataset.FormatCSV, "Mã xã,Kỳ,Đăng ký mới,Vốn (tỷ đồng)\n26734,2025-02,1,1\n"+c.bad+"\n26737,2025-03,2,2\n")
			if len(dec.Rows) != 2 || dec.Rows[1].Line != 4 || dec.Refused != 1 {
				t.Errorf("rows %+v, %d refused; want lines 2 and 4 stored, 1 refused", dec.Rows, dec.Refused)
			}
			if len(dec.Problems) != 1 || dec.Problems[0].Line != 3 || !strings.Contains(dec.Problems[0].Error, "not CSV") {
				t.Errorf("problems %q; want line 3 not CSV", dec.Problems)
			}
		})
	}
	// An open quote takes the rest of the file: one problem, nothing after.
	dec := decode(t, d, dataset.FormatCSV, "Mã xã,Kỳ,Đăng ký mới\n26734,2025-02,1\n\"26734,2025-03,1\n26737,2025-03,2\n")
	if len(dec.Rows) != 1 || dec.Refused != 1 || len(dec.Problems) != 1 {
		t.Errorf("rows %+v, problems %q; want line 2 stored and the open quote refused", dec.Rows, dec.Problems)
	}
}

// A system sends JSON or NDJSON: the same rows give the same values, each
// row numbered by its place (the item of the array, the line of the file).
func TestTheSameRowsInJSONAndNDJSONAreTheSame(t *testing.T) {
	d := definition(t, "doanh_nghiep.json")
	fromJSON := decode(t, d, dataset.FormatJSON, rowsJSON)
	fromNDJSON := decode(t, d, dataset.FormatNDJSON, rowsNDJSON)
	want := withLines(spreadsheetRows, 1, 2, 3)
	for name, dec := range map[string]dataset.Decoded{"json": fromJSON, "ndjson": fromNDJSON} {
		if len(dec.Problems) != 0 || !reflect.DeepEqual(dec.Rows, want) {
			t.Errorf("%s: rows %+v, problems %q; want\n%+v", name, dec.Rows, dec.Problems, want)
		}
	}
}

// An NDJSON line that is no object is refused by its line; empty lines
// are skipped but counted.
func TestAnNDJSONLineThatIsNoObjectIsRefusedByItsLine(t *testing.T) {
	dec := decode(t, definition(t, "doanh_nghiep.json"), dataset.FormatNDJSON,
		`{"Mã xã": "26734", "Kỳ": "2025-03", "Đăng ký mới": 1}`+"\n\n[1, 2]\n"+`{"Mã xã": "26737", "Kỳ": "2025-03", "Đăng ký mới": 2}`+"\n")
	if len(dec.Rows) != 2 || dec.Rows[1].Line != 4 || dec.Refused != 1 {
		t.Errorf("rows %+v, %d refused; want lines 1 and 4 stored, 1 refused", dec.Rows, dec.Refused)
	}
	if p := problemAt(dec.Problems, 3); !strings.Contains(p.Error, "not a JSON object") {
		t.Errorf("problems %q; want line 3 not a JSON object", dec.Problems)
	}
}

// A value is a JSON number or a string of one; null and "" are no value.
func TestAJSONValueIsANumberOrTheTextOfOne(t *testing.T) {
	d := definition(t, "doanh_nghiep.json")
	for _, c := range []struct {
		raw     string
		value   float64
		present bool
		refused bool
	}{
		{raw: `12`, value: 12, present: true},
		{raw: `"12"`, value: 12, present: true},
		{raw: `" 12.5 "`, value: 12.5, present: true},
		{raw: `-3e2`, value: -300, present: true},
		{raw: `"1e3"`, value: 1000, present: true},
		{raw: `0`, value: 0, present: true},
		{raw: `null`},
		{raw: `""`},
		{raw: `"1.234,5"`, refused: true},
		{raw: `"1,234"`, refused: true},
		{raw: `"1 234"`, refused: true},
		{raw: `"1_000"`, refused: true},
		{raw: `"0x10"`, refused: true},
		{raw: `"NaN"`, refused: true},
		{raw: `"-Inf"`, refused: true},
		{raw: `1e400`, refused: true},
		{raw: `true`, refused: true},
		{raw: `[1]`, refused: true},
		{raw: `{"v": 1}`, refused: true},
	} {
		t.Run(c.raw, func(t *testing.T) {
			dec := decode(t, d, dataset.FormatJSON, `[{"Mã xã": "26734", "Kỳ": "2025-03", "Vốn (tỷ đồng)": 1, "Đăng ký mới": `+c.raw+`}]`)
			if c.refused {
				if len(dec.Rows) != 0 || dec.Refused != 1 || len(dec.Problems) != 1 || dec.Problems[0].Path != "Đăng ký mới" {
					t.Errorf("rows %+v, problems %q; want the row refused for Đăng ký mới", dec.Rows, dec.Problems)
				}
				return
			}
			if len(dec.Rows) != 1 || len(dec.Problems) != 0 {
				t.Fatalf("rows %+v, problems %q; want the row stored", dec.Rows, dec.Problems)
			}
			if r := dec.Rows[0]; r.Values[0] != c.value || r.Present[0] != c.present || !r.Present[1] {
				t.Errorf("values %v present %v; want %v, %v", r.Values, r.Present, c.value, c.present)
			}
		})
	}
}

// A row of nothing but its unit and period (its values all null) would
// erase the unit's period: it is refused.
func TestARowWithNoMeasureIsRefused(t *testing.T) {
	d := definition(t, "doanh_nghiep.json")
	for format, body := range map[string]string{
		dataset.FormatJSON:   `[{"Mã xã": "26734", "Kỳ": "2025-03", "Đăng ký mới": null, "Ghi chú": 5}]`,
		dataset.FormatNDJSON: `{"Mã xã": "26734", "Kỳ": "2025-03"}`,
		dataset.FormatCSV:    "Mã xã,Kỳ,Đăng ký mới,Vốn (tỷ đồng)\n26734,2025-03, ,\n",
	} {
		dec := decode(t, d, format, body)
		if len(dec.Rows) != 0 || dec.Refused != 1 || len(dec.Problems) != 1 || !strings.Contains(dec.Problems[0].Error, "no measure given: a row carries at least one of Đăng ký mới, Vốn (tỷ đồng)") {
			t.Errorf("%s: rows %+v, problems %q; want the row refused, naming the measures' columns", format, dec.Rows, dec.Problems)
		}
	}
}

// A yearly dataset's period may come as the JSON number 2025; it was once
// refused as "no period" with the advice to write 2025.
func TestAYearGivenAsAJSONNumberIsRead(t *testing.T) {
	d := definition(t, "doanh_nghiep.json")
	d.Grain = dataset.Year
	dec := decode(t, d, dataset.FormatJSON, `[{"Mã xã": 26734, "Kỳ": 2025, "Đăng ký mới": 1}, {"Mã xã": 26737, "Kỳ": 2025.5, "Đăng ký mới": 1}]`)
	if len(dec.Rows) != 1 || !dec.Rows[0].Period.Equal(day(2025, 1, 1)) {
		t.Errorf("rows %+v; want 26734's 2025", dec.Rows)
	}
	if p := problemAt(dec.Problems, 2); !strings.Contains(p.Error, `period "2025.5" is not a year`) {
		t.Errorf("problems %q; want 2025.5 refused as a year", dec.Problems)
	}
}

// A unit's period given twice in one upload is ambiguous: the second is
// refused, pointing to the first, whatever the format.
func TestAUnitsPeriodGivenTwiceIsRefusedPointingToTheFirst(t *testing.T) {
	d := definition(t, "doanh_nghiep.json")
	dec := decode(t, d, dataset.FormatJSON, `[
		{"Mã xã": "26734", "Kỳ": "2025-03", "Đăng ký mới": 1},
		{"Mã xã": "26737", "Kỳ": "2025-03", "Đăng ký mới": 1},
		{"Mã xã": 26734, "Kỳ": "2025-03", "Đăng ký mới": 2}
	]`)
	if len(dec.Rows) != 2 || dec.Rows[0].Values[0] != 1 || dec.Refused != 1 {
		t.Errorf("rows %+v, %d refused; want the first two kept", dec.Rows, dec.Refused)
	}
	if p := problemAt(dec.Problems, 3); !strings.Contains(p.Error, "unit 26734 period 2025-03 is also at line 1") {
		t.Errorf("problems %q; want item 3 pointing to item 1", dec.Problems)
	}
}

// A dataset of points gives positions; each row is placed in the commune
// that holds it, and a position in no unit (or lat and lon swapped) is
// refused.
func TestAPointIsPlacedInTheCommuneThatHoldsIt(t *testing.T) {
	dec := decode(t, definition(t, "su_co_dien.json"), dataset.FormatCSV, pointsCSV)
	want := []dataset.Row{
		{Line: 2, Unit: "26734", Period: day(2025, 3, 14), Values: []float64{2}, Present: []bool{true}},
		{Line: 7, Unit: "26734", Period: day(2025, 3, 15), Values: []float64{4}, Present: []bool{true}},
	}
	if !reflect.DeepEqual(dec.Rows, want) {
		t.Errorf("rows %+v, want %+v", dec.Rows, want)
	}
	if dec.Refused != 4 {
		t.Errorf("%d refused, want 4", dec.Refused)
	}
	for line, says := range map[int]string{
		3: "is in no unit of the hierarchy",
		4: "is not a latitude and longitude",
		5: "is in unit 26740, outside the areas your token covers",
		6: "no lon",
	} {
		if p := problemAt(dec.Problems, line); !strings.Contains(p.Error, says) {
			t.Errorf("line %d: problem %q, want %q", line, p, says)
		}
	}
	// In JSON the position is two numbers.
	dec = decode(t, definition(t, "su_co_dien.json"), dataset.FormatJSON, `[{"Ngày": "2025-03-14", "Vĩ độ": 10.77, "Kinh độ": 106.68, "outages": 2}]`)
	if len(dec.Rows) != 1 || dec.Rows[0].Unit != "26734" {
		t.Errorf("rows %+v, problems %q; want one in 26734", dec.Rows, dec.Problems)
	}
}

// The refused count is what the department reads as "rows refused":
// rows, not problems (a row may have several, a header none of them).
func TestRefusedCountsRowsNotProblems(t *testing.T) {
	dec := decode(t, definition(t, "doanh_nghiep.json"), dataset.FormatCSV,
		"Mã xã,Kỳ,Đăng ký mới,Ghi chú\n99999,2025-13,x,\n26734,2025-03,1,\n")
	// One header problem, three on line 2 (unit, period, value).
	if dec.Refused != 1 || len(dec.Problems) != 4 || len(dec.Rows) != 1 {
		t.Errorf("%d refused, problems %q, %d rows; want 1 refused of 4 problems and 1 row", dec.Refused, dec.Problems, len(dec.Rows))
	}
}

// Every upload carries its time: a Row's period is the first day of its
// period in UTC whatever the zone of the machine.
func TestARowsPeriodIsItsFirstDayInUTC(t *testing.T) {
	dec := decode(t, definition(t, "doanh_nghiep.json"), dataset.FormatCSV, spreadsheetCSV)
	for _, r := range dec.Rows {
		if r.Period.Location() != time.UTC || r.Period.Day() != 1 {
			t.Errorf("period %v", r.Period)
		}
	}
}

// A JSON row's keys match columns as CSV headers do, whatever their case:
// two keys of one column leave no way to tell which value was meant (it
// once depended on Go's map order), so the row is refused; two of a
// field the definition does not read are no matter.
func TestTwoKeysOfOneColumnRefuseTheRow(t *testing.T) {
	d := definition(t, "doanh_nghiep.json")
	dec := decode(t, d, dataset.FormatNDJSON,
		`{"Mã xã": "26734", "Kỳ": "2025-03", "kỳ": "2025-04", "Đăng ký mới": 1}`+"\n"+
			`{"Mã xã": "26737", "Kỳ": "2025-03", "Ghi chú": "a", "ghi chú": "b", "Đăng ký mới": 1}`+"\n")
	if len(dec.Rows) != 1 || dec.Rows[0].Line != 2 || dec.Refused != 1 {
		t.Errorf("rows %+v, %d refused; want line 2 stored, line 1 refused", dec.Rows, dec.Refused)
	}
	if len(dec.Problems) != 1 || dec.Problems[0] != (dataset.Problem{Line: 1, Path: "kỳ", Error: `is "Kỳ" again: give each field once`}) {
		t.Errorf("problems %q", dec.Problems)
	}
}
