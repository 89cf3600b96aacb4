package dataset_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/openioc/ioc/dataset"
)

// A department may write its definition in YAML: it is the same
// definition as the JSON one.
func TestADefinitionInYAMLIsTheSameAsInJSON(t *testing.T) {
	fromJSON := definition(t, "giao_duc.json")
	fromYAML := definition(t, "giao_duc.yaml")
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		t.Errorf("JSON and YAML differ:\n%+v\n%+v", fromJSON, fromYAML)
	}
	// Spot checks that the fields were read at all.
	m, ok := fromJSON.Measure("class_size")
	if fromJSON.Columns.Unit != "Mã xã" || !ok || m.Rollup != dataset.RollupMean || m.Thresholds == nil || *m.Thresholds.Critical != 45 ||
		len(fromJSON.Indicators) != 2 || fromJSON.Indicators[1].Scale != 1000 || fromJSON.Due() != 20 {
		t.Errorf("fields not read: %+v", fromJSON)
	}
}

// Windows editors save files with a byte order mark.
func TestADefinitionSavedWithAByteOrderMarkIsRead(t *testing.T) {
	for _, name := range []string{"giao_duc.json", "giao_duc.yaml"} {
		body := append([]byte("\ufeff"), readFile(t, name)...)
		d, err := dataset.Parse(body, levels{})
		if err != nil {
			t.Errorf("%s with a BOM: %v", name, err)
			continue
		}
		if want := definition(t, name); !reflect.DeepEqual(d, want) {
			t.Errorf("%s with a BOM differs: %+v", name, d)
		}
	}
}

// giaoDuc is testdata/giao_duc.json as a JSON value to spoil.
func giaoDuc(t testing.TB) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(readFile(t, "giao_duc.json"), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func measure(m map[string]any, i int) map[string]any {
	return m["measures"].([]any)[i].(map[string]any)
}

func indicator(m map[string]any, i int) map[string]any {
	return m["indicators"].([]any)[i].(map[string]any)
}

func problems(t *testing.T, body []byte) []dataset.Problem {
	t.Helper()
	d, err := dataset.Parse(body, levels{})
	var inv *dataset.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("Parse = %+v, %v; want an *InvalidError", d, err)
	}
	return inv.Problems
}

// definitionMistakes spoil testdata/giao_duc.json one way each: the path
// of the problem it gives, and what the problem says.
var definitionMistakes = []struct {
	name  string
	spoil func(m map[string]any)
	path  string
	says  string
}{
	{"an unknown field", func(m map[string]any) { m["colour"] = "red" }, "colour", "not a field"},
	{"a grain given as a number", func(m map[string]any) { m["grain"] = 3 }, "grain", "is a JSON number: want a string"},
	{"a list where an object goes", func(m map[string]any) { m["columns"] = []any{} }, "columns", "want a object"},
	{"a rollup given as a number", func(m map[string]any) { measure(m, 1)["rollup"] = 3 }, "measures[1].rollup", "want a string"},
	{"a threshold given as text", func(m map[string]any) {
		indicator(m, 0)["thresholds"] = map[string]any{"warning": "25"}
	}, "indicators[0].thresholds.warning", "want a number"},
	{"an id with capitals and a dash", func(m map[string]any) { m["id"] = "Giao-Duc" }, "id", `"Giao-Duc" is not a dataset id`},
	{"an id longer than 48", func(m map[string]any) { m["id"] = "a" + strings.Repeat("b", 48) }, "id", "at most 48"},
	{"the id health, a route of /api/v1/datasets", func(m map[string]any) { m["id"] = "health" }, "id", "not health"},
	{"no English name", func(m map[string]any) { delete(m, "name_en") }, "name_vi", "English"},
	{"a weekly grain", func(m map[string]any) { m["grain"] = "week" }, "grain", "day, month, quarter or year"},
	{"a level the hierarchy does not have", func(m map[string]any) { m["level"] = "district" }, "level", "one of province, commune, or point"},
	{"due days past ten years", func(m map[string]any) { m["due_days"] = 4000 }, "due_days", "0 (the grain's default) to 3660"},
	{"no measures", func(m map[string]any) { m["measures"] = []any{}; delete(m, "indicators") }, "measures", "at least one measure"},
	{"a measure id twice", func(m map[string]any) {
		measure(m, 5)["id"] = "smallest_school"
		measure(m, 5)["column"] = "Trường lớn nhất" // not the id's column too
	}, "measures[5].id", "also measures[4]"},
	{"a measure id with a capital", func(m map[string]any) { measure(m, 4)["id"] = "Smallest" }, "measures[4].id", "not an id"},
	{"an unknown rollup", func(m map[string]any) { measure(m, 4)["rollup"] = "average" }, "measures[4].rollup", "sum, min, max, mean"},
	{"an unknown time combination", func(m map[string]any) { measure(m, 0)["over_time"] = "latest" }, "measures[0].over_time", "sum (a flow) or last (a stock)"},
	{"an unknown direction", func(m map[string]any) { measure(m, 2)["direction"] = "up" }, "measures[2].direction", "higher_is_better"},
	{"a measure's column that is the unit's", func(m map[string]any) { measure(m, 2)["column"] = "Mã xã" }, "measures[2].column", "also columns.unit"},
	// The upload matches headers by NFC and case: these are the same
	// column as the unit's, and would read the unit code as a number.
	{"a measure's column that is the unit's in capitals and NFD", func(m map[string]any) {
		measure(m, 2)["column"] = "MA\u0303 XA\u0303"
	}, "measures[2].column", "also columns.unit"},
	{"two measures in one column", func(m map[string]any) { measure(m, 2)["column"] = "giáo viên" }, "measures[2].column", "also measures[1].column"},
	{"a measure in the default period column", func(m map[string]any) {
		delete(m["columns"].(map[string]any), "period")
		measure(m, 2)["column"] = "period"
	}, "measures[2].column", "also columns.period"},
	{"the period in the unit's column", func(m map[string]any) { m["columns"].(map[string]any)["period"] = "mã xã" }, "columns.period", "also columns.unit"},
	{"an indicator with a measure's id", func(m map[string]any) { indicator(m, 0)["id"] = "pupils" }, "indicators[0].id", "also measures[0]"},
	{"a numerator that is no measure", func(m map[string]any) { indicator(m, 0)["numerator"] = "students" }, "indicators[0].numerator", `"students" is not a measure`},
	{"a ratio over a mean", func(m map[string]any) { indicator(m, 0)["denominator"] = "class_size" }, "indicators[0].denominator", "rolls up by mean"},
	{"a ratio over a maximum", func(m map[string]any) { indicator(m, 1)["numerator"] = "largest_school" }, "indicators[1].numerator", "rolls up by max"},
	{"a negative scale", func(m map[string]any) { indicator(m, 1)["scale"] = -1000 }, "indicators[1].scale", "negative"},
	{"an indicator without names", func(m map[string]any) { indicator(m, 1)["name_vi"] = "" }, "indicators[1].name_vi", "Vietnamese"},
}

// spoilt is testdata/giao_duc.json spoilt by spoil.
func spoilt(t testing.TB, spoil func(m map[string]any)) []byte {
	m := giaoDuc(t)
	spoil(m)
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// Each mistake is reported at the path of its field, with a message that
// says what would be right, so that the editor can show it by the field.
func TestEachMistakeOfADefinitionIsReportedAtItsField(t *testing.T) {
	for _, c := range definitionMistakes {
		t.Run(c.name, func(t *testing.T) {
			got := problems(t, spoilt(t, c.spoil))
			if len(got) != 1 || got[0].Path != c.path || !strings.Contains(got[0].Error, c.says) {
				t.Errorf("got %q; want one problem at %s saying %q", got, c.path, c.says)
			}
		})
	}
}

// A department fixes its definition in one go: every mistake is listed,
// not the first one.
func TestEveryMistakeOfADefinitionIsReportedAtOnce(t *testing.T) {
	m := giaoDuc(t)
	m["id"] = "health"
	m["grain"] = "week"
	m["level"] = "district"
	measure(m, 4)["rollup"] = "average"
	measure(m, 5)["id"] = "pupils"
	indicator(m, 1)["numerator"] = "students"
	body, _ := json.Marshal(m)
	var got []string
	for _, p := range problems(t, body) {
		got = append(got, p.Path)
	}
	want := []string{"id", "grain", "level", "measures[4].rollup", "measures[5].id", "indicators[1].numerator"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths %q, want %q", got, want)
	}
	_, err := dataset.Parse(body, levels{})
	for _, p := range want {
		if !strings.Contains(err.Error(), p+": ") {
			t.Errorf("the error %q does not name %s", err, p)
		}
	}
}

func TestADefinitionThatIsNeitherJSONNorYAMLIsRefused(t *testing.T) {
	for _, c := range []struct{ name, body, says string }{
		{"nothing", "", "is not a JSON object"},
		{"a broken JSON object", `{"id": "giao_duc",`, "is not a JSON object"},
		{"a broken YAML", "id: [giao_duc\n", "is neither JSON nor YAML"},
		{"a YAML list", "- id: giao_duc\n", "is a JSON array: want a object"},
		{"a YAML infinite number", "id: giao_duc\ndue_days: .inf\n", "YAML that does not map to JSON"},
		{"too long", `{"name_vi": "` + strings.Repeat("x", dataset.MaxDefinition) + `"}`, "a definition may have at most"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := problems(t, []byte(c.body))
			if len(got) != 1 || !strings.Contains(got[0].Error, c.says) {
				t.Errorf("got %q; want one problem saying %q", got, c.says)
			}
		})
	}
}

// A dataset of points needs no level of the hierarchy.
func TestADatasetOfPointsNeedsNoLevel(t *testing.T) {
	d := definition(t, "su_co_dien.json")
	if d.Level != dataset.LevelPoint {
		t.Errorf("level %q", d.Level)
	}
	if _, err := dataset.Parse(readFile(t, "su_co_dien.json"), nil); err != nil {
		t.Errorf("without a hierarchy: %v", err)
	}
	if _, err := dataset.Parse(readFile(t, "giao_duc.json"), nil); err == nil {
		t.Error("a dataset of communes passed without a hierarchy")
	}
}

func TestAMeasureIsFoundByItsID(t *testing.T) {
	d := definition(t, "giao_duc.json")
	if m, ok := d.Measure("teachers"); !ok || m.NameEn != "Teachers" {
		t.Errorf("Measure(teachers) = %+v, %v", m, ok)
	}
	if _, ok := d.Measure("pupils_per_teacher"); ok {
		t.Error("an indicator was found as a measure")
	}
	if !dataset.ValidID("giao_duc") || dataset.ValidID("health") || dataset.ValidID("9a") || dataset.ValidID("") {
		t.Error("ValidID is wrong")
	}
}
