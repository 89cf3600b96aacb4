package dataset_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/openioc/ioc/dataset"
)

// fuzzDefinitions are the datasets an upload is decoded for: communes by
// month with Vietnamese columns, points by day, provinces by quarter.
func fuzzDefinitions(f *testing.F) []dataset.Definition {
	communes := definition(f, "doanh_nghiep.json")
	provinces := communes
	provinces.Level, provinces.Grain = "province", dataset.Quarter
	return []dataset.Definition{communes, definition(f, "su_co_dien.json"), provinces}
}

// checkDecoded checks what every upload's decoding keeps true, whatever
// was sent.
func checkDecoded(t *testing.T, d dataset.Definition, format string, dec dataset.Decoded) {
	t.Helper()
	level := d.Level
	if level == dataset.LevelPoint {
		level = "commune" // the finest level of units{}
	}
	type key struct {
		unit   string
		period int64
	}
	stored := map[key]bool{}
	storedLines := map[int]bool{}
	for _, r := range dec.Rows {
		if l, ok := unitLevels[r.Unit]; !ok || l != level || !(units{}).Covered(r.Unit) {
			t.Errorf("line %d: stored unit %q (level %q), want a covered %s", r.Line, r.Unit, l, level)
		}
		if back, err := d.Grain.Parse(d.Grain.Format(r.Period)); err != nil || !back.Equal(r.Period) {
			t.Errorf("line %d: period %v is not a %s: %v", r.Line, r.Period, d.Grain, err)
		}
		if len(r.Values) != len(d.Measures) || len(r.Present) != len(d.Measures) {
			t.Errorf("line %d: %d values, %d present, %d measures", r.Line, len(r.Values), len(r.Present), len(d.Measures))
		}
		given := false
		for i, v := range r.Values {
			given = given || r.Present[i]
			if math.IsNaN(v) || math.IsInf(v, 0) || !r.Present[i] && v != 0 {
				t.Errorf("line %d: value %v (present %v)", r.Line, v, r.Present[i])
			}
		}
		if !given {
			t.Errorf("line %d: stored with no measure", r.Line)
		}
		k := key{r.Unit, r.Period.Unix()}
		if stored[k] {
			t.Errorf("line %d: %s %v stored twice", r.Line, r.Unit, r.Period)
		}
		stored[k] = true
		if r.Line < 1 || format == dataset.FormatCSV && r.Line < 2 || storedLines[r.Line] {
			t.Errorf("stored row at line %d", r.Line)
		}
		storedLines[r.Line] = true
	}
	// A refused row has its problems on its line, and no other row
	// shares it; in a CSV, line 1's are the header's columns, no row.
	refusedLines := map[int]bool{}
	for _, p := range dec.Problems {
		if p.Line < 1 || p.Error == "" {
			t.Errorf("problem %+v", p)
		}
		if format == dataset.FormatCSV && p.Line == 1 {
			continue
		}
		refusedLines[p.Line] = true
		if storedLines[p.Line] {
			t.Errorf("line %d is stored and has problem %q", p.Line, p)
		}
	}
	if dec.Refused != len(refusedLines) {
		t.Errorf("%d refused, but problems on %d lines: %q", dec.Refused, len(refusedLines), dec.Problems)
	}
}

// fuzzDecode decodes body for every fuzz definition, twice: the same
// upload must give the same answer.
func fuzzDecode(f *testing.F, format string) {
	defs := fuzzDefinitions(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, d := range defs {
			dec, err := dataset.Decode(d, format, bytes.NewReader(body), units{})
			again, errAgain := dataset.Decode(d, format, bytes.NewReader(body), units{})
			if !reflect.DeepEqual(dec, again) || (err == nil) != (errAgain == nil) {
				t.Fatalf("%s: two decodings differ:\n%+v, %v\n%+v, %v", d.ID, dec, err, again, errAgain)
			}
			if err != nil {
				if len(dec.Rows) != 0 || len(dec.Problems) != 0 {
					t.Errorf("%s: error %v with a result %+v", d.ID, err, dec)
				}
				continue
			}
			checkDecoded(t, d, format, dec)
		}
	})
}

func FuzzDecodeCSV(f *testing.F) {
	for _, s := range []string{spreadsheetCSV, string(readFile(f, "messy.csv")), pointsCSV, "", "Mã xã,Kỳ\n", "\ufeff\n\n"} {
		f.Add([]byte(s))
	}
	for _, c := range wrongRows {
		f.Add([]byte(wrongRowsHeader + c.row + "\n26737,2025-03,1,1\n"))
	}
	fuzzDecode(f, dataset.FormatCSV)
}

// jsonSeeds are the JSON rows of the tests, one object each.
func jsonSeeds(f *testing.F) []string {
	var rows []json.RawMessage
	if err := json.Unmarshal([]byte(rowsJSON), &rows); err != nil {
		f.Fatal(err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = string(r)
	}
	return append(out,
		`{"Mã xã": "26734", "Kỳ": "2025-03", "Đăng ký mới": "1.234,5"}`,
		`{"Mã xã": "26734", "Kỳ": 2025, "Đăng ký mới": true, "Vốn (tỷ đồng)": 1e400}`,
		`{"Mã xã": "26734", "Kỳ": "2025-03", "kỳ": "2025-04", "Đăng ký mới": 1}`,
		`{"Ngày": "2025-03-14", "Vĩ độ": 10.77, "Kinh độ": 106.68, "outages": 2}`,
		`{"Mã xã": "79", "Kỳ": "2025-Q1", "Đăng ký mới": 1}`,
		`[1, 2]`, `null`, `"26734"`)
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(rowsJSON))
	f.Add([]byte("[]"))
	f.Add([]byte(`{"Mã xã": "26734"}`))
	f.Add([]byte("[" + strings.Join(jsonSeeds(f), ",") + "]"))
	fuzzDecode(f, dataset.FormatJSON)
}

func FuzzDecodeNDJSON(f *testing.F) {
	f.Add([]byte(rowsNDJSON))
	f.Add([]byte("\n\n"))
	f.Add([]byte(strings.Join(jsonSeeds(f), "\n")))
	fuzzDecode(f, dataset.FormatNDJSON)
}

// A definition that passes is one the api can save and serve: written
// back as JSON, it passes again and is the same definition.
func FuzzParseDefinition(f *testing.F) {
	for _, name := range []string{"giao_duc.json", "giao_duc.yaml", "doanh_nghiep.json", "su_co_dien.json"} {
		f.Add(readFile(f, name))
	}
	for _, c := range definitionMistakes {
		f.Add(spoilt(f, c.spoil))
	}
	f.Add([]byte("id: [giao_duc\n"))
	f.Add([]byte("id: giao_duc\ndue_days: .inf\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := dataset.Parse(body, levels{})
		if err != nil {
			var inv *dataset.InvalidError
			if !errors.As(err, &inv) || len(inv.Problems) == 0 {
				t.Fatalf("Parse: %v; want an *InvalidError with problems", err)
			}
			for _, p := range inv.Problems {
				if p.Error == "" {
					t.Errorf("problem %+v says nothing", p)
				}
			}
			return
		}
		written, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal %+v: %v", d, err)
		}
		again, err := dataset.Parse(written, levels{})
		if err != nil {
			t.Fatalf("written back as %s, it is refused: %v", written, err)
		}
		// The same definition, but for an empty list and none (omitempty).
		if rewritten, _ := json.Marshal(again); !bytes.Equal(rewritten, written) {
			t.Fatalf("written back:\n%s\nparsed and written again:\n%s", written, rewritten)
		}
		if third, err := dataset.Parse(written, levels{}); err != nil || !reflect.DeepEqual(third, again) {
			t.Fatalf("parsed twice from %s: %+v, %v; then %+v", written, again, err, third)
		}
	})
}
