package dataset

import (
	"strings"
	"testing"
)

// TestFormulasComputeAsWritten: precedence, left association, unary minus
// and parentheses, with names read from the unit's figures.
func TestFormulasComputeAsWritten(t *testing.T) {
	figures := map[string]float64{"dossiers_received": 8, "population.residents": 50000, "pupils": 2100, "teachers": 90, "zero": 0}
	get := func(name string) (float64, bool) { v, ok := figures[name]; return v, ok }
	for _, c := range []struct {
		formula string
		want    float64
		ok      bool
	}{
		{"dossiers_received / population.residents * 1000", 0.16, true},
		{"teachers / pupils * 100", 90.0 / 2100 * 100, true},
		{"10 - 4 - 3", 3, true},
		{"2 * (3 + 4)", 14, true},
		{"2 * 3 + 4", 10, true},
		{"-pupils + 100", -2000, true},
		{"24 / 4 / 2", 3, true},
		{"pupils / zero", 0, false}, // no denominator: no value
		{"missing * 2", 0, false},   // a figure the unit lacks
		{"1.5 * teachers", 135, true},
	} {
		f, err := ParseFormula(c.formula)
		if err != nil {
			t.Errorf("%s: %v", c.formula, err)
			continue
		}
		got, ok := f.Eval(get)
		if ok != c.ok || ok && (got-c.want > 1e-9 || c.want-got > 1e-9) {
			t.Errorf("%s = %v (%v), want %v (%v)", c.formula, got, ok, c.want, c.ok)
		}
	}
}

// TestAFormulaThatDoesNotParsePointsIntoIt: the error names the character
// to look at and what was expected there.
func TestAFormulaThatDoesNotParsePointsIntoIt(t *testing.T) {
	for formula, want := range map[string]string{
		"":                        "empty",
		"pupils /":                "at character 9: the formula ends",
		"pupils ^ 2":              "at character 8: unexpected '^'",
		"(pupils + teachers":      "at character 19: the ( at character 1 is not closed",
		"population. / 2":         "at character 1: \"population.\" is not a name",
		"1.2.3 + pupils":          "at character 1: \"1.2.3\" is not a number",
		"pupils teachers":         "at character 8: unexpected 't'",
		"Pupils":                  "at character 1: unexpected 'P'",
		strings.Repeat("(", 200):  "nests too deep",
		strings.Repeat("1+", 600): "at most 1000",
	} {
		_, err := ParseFormula(formula)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.30q: got %v, want an error with %q", formula, err, want)
		}
	}
}

// TestFormulaNamesAreCheckedAgainstWhatExists: a name of the dataset, of
// another dataset or of the catalog passes; any other is refused with its
// place; a derived indicator may not name another derived one.
func TestFormulaNamesAreCheckedAgainstWhatExists(t *testing.T) {
	d, err := Parse([]byte(`{"id": "population", "name_vi": "Dân số", "name_en": "Population", "grain": "year", "level": "commune",
	  "measures": [{"id": "residents", "name_vi": "Dân số", "name_en": "Residents", "unit": "people", "rollup": "sum"}],
	  "derived": [{"id": "per_1000", "name_vi": "a", "name_en": "b", "unit": "dossiers", "formula": "dossiers_received / residents * 1000"},
	              {"id": "per_school", "name_vi": "a", "name_en": "b", "unit": "people", "formula": "residents / enrolment.schools + dossiers_recieved"}]}`), levels{})
	if err != nil {
		t.Fatal(err)
	}
	known := func(id string) bool { return id == "dossiers_received" || id == "enrolment.schools" }
	probs := d.CheckNames(known)
	if len(probs) != 1 || probs[0].Path != "derived[1].formula" || !strings.Contains(probs[0].Error, `at character 33: "dossiers_recieved" is no indicator`) {
		t.Errorf("got %v, want one problem at derived[1].formula, character 33", probs)
	}
	if d.Operand("residents") != "population.residents" || d.Operand("dossiers_received") != "dossiers_received" {
		t.Error("operands: a bare measure is the dataset's, anything else as written")
	}
	_, err = Parse([]byte(`{"id": "p", "name_vi": "a", "name_en": "b", "grain": "year", "level": "commune",
	  "measures": [{"id": "r", "name_vi": "a", "name_en": "b", "unit": "x", "rollup": "sum"}],
	  "derived": [{"id": "a", "name_vi": "a", "name_en": "b", "unit": "x", "formula": "r * 2"},
	              {"id": "b", "name_vi": "a", "name_en": "b", "unit": "x", "formula": "a / (r"}, 
	              {"id": "c", "name_vi": "a", "name_en": "b", "unit": "x", "formula": "a + 1"}]}`), levels{})
	if err == nil || !strings.Contains(err.Error(), "derived[1].formula: at character 7: the ( at character 5 is not closed") || !strings.Contains(err.Error(), `derived[2].formula: at character 1: "a" is itself derived`) {
		t.Errorf("got %v, want the unclosed ( of derived[1] and the chained derived[2]", err)
	}
}

// FuzzParseFormula: any text parses or is refused with a position inside
// it, and what parses evaluates without panicking.
func FuzzParseFormula(f *testing.F) {
	for _, s := range []string{"dossiers_received / population.residents * 1000", "-(a+b)*c/2", "((1))", "a..b", "1e5", ".5*x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fm, err := ParseFormula(s)
		if err != nil {
			fe, ok := err.(*FormulaError)
			if !ok || fe.Pos < 0 || fe.Pos > len(s) {
				t.Fatalf("%q: error %v has no position inside the formula", s, err)
			}
			return
		}
		for _, n := range fm.Names() {
			if fm.NameAt(n) < 0 {
				t.Fatalf("%q: name %q has no place", s, n)
			}
		}
		fm.Eval(func(string) (float64, bool) { return 1, true })
	})
}
