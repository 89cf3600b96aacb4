package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// definitionSchemaFile is the published schema of a definition,
// docs/dataset.schema.json.
const definitionSchemaFile = "../docs/dataset.schema.json"

// readDefinitionSchema compiles the published schema and returns it with
// its plain JSON, for walking.
func readDefinitionSchema(t *testing.T) (*jsonschema.Schema, map[string]any) {
	t.Helper()
	b, err := os.ReadFile(definitionSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", definitionSchemaFile, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const url = "https://github.com/openioc/ioc/blob/main/docs/dataset.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	root, err := c.Compile(url)
	if err != nil {
		t.Fatalf("compile %s: %v", definitionSchemaFile, err)
	}
	var plain map[string]any
	if err := json.Unmarshal(b, &plain); err != nil {
		t.Fatal(err)
	}
	return root, plain
}

// schemaNode follows a local $ref ("#/$defs/measure") to what it names,
// and an array to its items.
func schemaNode(t *testing.T, doc map[string]any, node map[string]any) map[string]any {
	t.Helper()
	for range 10 {
		if ref, ok := node["$ref"].(string); ok {
			var target any = doc
			for _, token := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
				m, _ := target.(map[string]any)
				target = m[token]
			}
			next, ok := target.(map[string]any)
			if !ok {
				t.Fatalf("$ref %q names nothing", ref)
			}
			node = next
			continue
		}
		if items, ok := node["items"].(map[string]any); ok {
			node = items
			continue
		}
		return node
	}
	t.Fatal("$refs and items nested more than 10 deep")
	return nil
}

// jsonName is the name a struct field is written under, "" for none.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

// TestSchemaPropertiesAreTheDefinitionsFields keeps docs/dataset.schema.json
// and the types Parse decodes into in step: walking from Definition, each
// struct's JSON fields are exactly the properties of its place in the
// schema, and unknown properties are refused there as Parse refuses them.
func TestSchemaPropertiesAreTheDefinitionsFields(t *testing.T) {
	_, doc := readDefinitionSchema(t)
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, node map[string]any, at string)
	walk = func(typ reflect.Type, node map[string]any, at string) {
		seen[typ] = true
		if node["additionalProperties"] != false {
			t.Errorf("%s (%s): the schema does not say additionalProperties: false; Parse refuses unknown fields", at, typ.Name())
		}
		props, _ := node["properties"].(map[string]any)
		fields := map[string]bool{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := jsonName(f)
			if name == "" {
				continue
			}
			fields[name] = true
			prop, ok := props[name].(map[string]any)
			if !ok {
				t.Errorf("%s: %s.%s (json %q) is not a property of the schema", at, typ.Name(), f.Name, name)
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(ft, schemaNode(t, doc, prop), at+"."+name)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(props)) {
			if !fields[name] {
				t.Errorf("%s: property %q of the schema is no field of %s: Parse refuses it", at, name, typ.Name())
			}
		}
	}
	walk(reflect.TypeFor[Definition](), doc, "#")
	for _, typ := range []reflect.Type{reflect.TypeFor[Definition](), reflect.TypeFor[Columns](), reflect.TypeFor[Measure](),
		reflect.TypeFor[Indicator](), reflect.TypeFor[Thresholds](), reflect.TypeFor[Connector]()} {
		if !seen[typ] {
			t.Errorf("the schema has no place for %s", typ.Name())
		}
	}
}

// TestSchemaEnumsAreTheGoLists: the grains, rollups, time combinations,
// directions and the id pattern of the schema are check's.
func TestSchemaEnumsAreTheGoLists(t *testing.T) {
	_, doc := readDefinitionSchema(t)
	at := func(path ...string) map[string]any {
		node := doc
		for _, p := range path {
			props, _ := node["properties"].(map[string]any)
			next, ok := props[p].(map[string]any)
			if !ok {
				t.Fatalf("the schema has no property %s", strings.Join(path, "."))
			}
			node = schemaNode(t, doc, next)
		}
		return node
	}
	enum := func(node map[string]any) []string {
		var out []string
		list, _ := node["enum"].([]any)
		for _, v := range list {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	var grains []string
	for _, g := range Grains {
		grains = append(grains, string(g))
	}
	for _, c := range []struct {
		path []string
		want []string
	}{
		{[]string{"grain"}, grains},
		{[]string{"measures", "rollup"}, rollups},
		{[]string{"measures", "over_time"}, overTimes},
		{[]string{"measures", "direction"}, directions},
		{[]string{"indicators", "direction"}, directions},
		{[]string{"connector", "kind"}, connectorKinds},
		{[]string{"connector", "format"}, connectorFormats},
	} {
		if got := enum(at(c.path...)); !slices.Equal(got, c.want) {
			t.Errorf("%s: the schema's enum is %q, check takes %q", strings.Join(c.path, "."), got, c.want)
		}
	}
	for _, path := range [][]string{{"measures", "id"}, {"indicators", "id"}, {"indicators", "numerator"}, {"indicators", "denominator"}} {
		if got := at(path...)["pattern"]; got != idRE.String() {
			t.Errorf("%s: the schema's pattern is %v, check's %s", strings.Join(path, "."), got, idRE)
		}
	}
	for _, path := range [][]string{{"connector", "password_env"}, {"connector", "token_env"}} {
		if got := at(path...)["pattern"]; got != envRE.String() {
			t.Errorf("%s: the schema's pattern is %v, check's %s", strings.Join(path, "."), got, envRE)
		}
	}
	// The dataset's id: all of the id pattern and not health, as ValidID.
	id, _ := doc["properties"].(map[string]any)["id"].(map[string]any)
	var pattern any
	var not []string
	all, _ := id["allOf"].([]any)
	for _, e := range all {
		m, _ := e.(map[string]any)
		if _, ok := m["$ref"]; ok {
			pattern = schemaNode(t, doc, m)["pattern"]
		}
		if n, ok := m["not"].(map[string]any); ok {
			not = append(not, enum(n)...)
		}
	}
	if pattern != idRE.String() || !slices.Equal(not, []string{"health"}) || ValidID("health") {
		t.Errorf("the schema's dataset id is all of the pattern %v and not %q: want %s and not health, as ValidID", pattern, not, idRE)
	}
}

// schemaLevels is the levels of vn-2025.
type schemaLevels struct{}

func (schemaLevels) HasLevel(l string) bool { return l == "province" || l == "commune" }
func (schemaLevels) Levels() []string       { return []string{"province", "commune"} }

// TestSchemaAgreesWithParse: the schema's example and its stored form pass
// both the schema and Parse, and definitions each breaking one rule the
// schema states fail both.
func TestSchemaAgreesWithParse(t *testing.T) {
	root, doc := readDefinitionSchema(t)
	examples, _ := doc["examples"].([]any)
	if len(examples) == 0 {
		t.Fatal("the schema has no example")
	}
	instance := func(b []byte) any {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var valid []byte
	for i, ex := range examples {
		b, _ := json.Marshal(ex)
		d, err := Parse(b, schemaLevels{})
		if err != nil {
			t.Errorf("example %d: Parse refuses it: %v", i, err)
			continue
		}
		if err := root.Validate(instance(b)); err != nil {
			t.Errorf("example %d fails the schema: %v", i, err)
		}
		stored, _ := json.Marshal(d)
		if err := root.Validate(instance(stored)); err != nil {
			t.Errorf("the stored form of example %d fails the schema: %v\n%s", i, err, stored)
		}
		valid = b
	}
	if valid == nil {
		return
	}
	// Each case changes the first valid example with a JSON merge patch.
	for _, c := range []struct{ name, patch string }{
		{"points", `{"level": "point", "columns": {"lat": "Vĩ độ", "lon": "Kinh độ"}}`},
		{"quarters due late", `{"grain": "quarter", "due_days": 3660, "department": null, "columns": null}`},
		{"a derived indicator", `{"derived": [{"id": "d", "name_vi": "a", "name_en": "b", "formula": "(pupils + 1) / population.residents * 1000"}]}`},
		{"a percentage", `{"indicators": [{"id": "r", "name_vi": "a", "name_en": "b", "numerator": "pupils", "denominator": "teachers", "scale": 100, "direction": "neutral", "thresholds": {"critical": 0.5}}]}`},
		{"a postgres connector", `{"connector": {"kind": "postgres", "every": "24h", "periods": 3, "dsn": "postgres://ioc@db:5432/gd?sslmode=disable", "password_env": "IOC_PG_EDU_PASSWORD",
			"query": "-- tuyển sinh\nSELECT ma_xa AS \"Mã xã\", nam AS \"Năm học\", hs::int AS \"Số học sinh\" FROM ts WHERE d >= :from AND d < :to AND note <> 'a:b';"}}`},
		{"an http connector", `{"connector": {"kind": "http", "every": "1h30m", "url": "https://api.example/ts.csv?from={from}&to={to}", "format": "csv", "token_env": "IOC_TOKEN"}}`},
	} {
		b := mergePatch(t, valid, c.patch)
		if _, err := Parse(b, schemaLevels{}); err != nil {
			t.Errorf("%s: Parse refuses it: %v", c.name, err)
		}
		if err := root.Validate(instance(b)); err != nil {
			t.Errorf("%s: the schema refuses it: %v", c.name, err)
		}
	}
	for _, c := range []struct{ name, patch string }{
		{"no id", `{"id": null}`},
		{"id health", `{"id": "health"}`},
		{"an id with capitals", `{"id": "Enrolment"}`},
		{"an id of 49", `{"id": "` + strings.Repeat("a", 49) + `"}`},
		{"no name", `{"name_en": ""}`},
		{"grain week", `{"grain": "week"}`},
		{"no level", `{"level": ""}`},
		{"due_days too many", `{"due_days": 3661}`},
		{"due_days negative", `{"due_days": -1}`},
		{"an unknown field", `{"owner": "x"}`},
		{"an unknown column", `{"columns": {"unit": "a", "code": "b"}}`},
		{"no measures", `{"measures": [], "indicators": null}`},
		{"rollup average", `{"measures": [{"id": "pupils", "name_vi": "a", "name_en": "b", "rollup": "average"}], "indicators": null}`},
		{"no rollup", `{"measures": [{"id": "pupils", "name_vi": "a", "name_en": "b"}], "indicators": null}`},
		{"over_time first", `{"measures": [{"id": "pupils", "name_vi": "a", "name_en": "b", "rollup": "sum", "over_time": "first"}], "indicators": null}`},
		{"a measure's unknown field", `{"measures": [{"id": "pupils", "name_vi": "a", "name_en": "b", "rollup": "sum", "weight": 2}], "indicators": null}`},
		{"a measure id with a dash", `{"measures": [{"id": "a-b", "name_vi": "a", "name_en": "b", "rollup": "sum"}], "indicators": null}`},
		{"direction up", `{"indicators": [{"id": "r", "name_vi": "a", "name_en": "b", "numerator": "pupils", "denominator": "teachers", "direction": "up"}]}`},
		{"a negative scale", `{"indicators": [{"id": "r", "name_vi": "a", "name_en": "b", "numerator": "pupils", "denominator": "teachers", "scale": -1}]}`},
		{"no denominator", `{"indicators": [{"id": "r", "name_vi": "a", "name_en": "b", "numerator": "pupils"}]}`},
		{"an empty formula", `{"derived": [{"id": "d", "name_vi": "a", "name_en": "b", "formula": " "}]}`},
		{"a formula in capitals", `{"derived": [{"id": "d", "name_vi": "a", "name_en": "b", "formula": "Pupils / 2"}]}`},
		{"a threshold as text", `{"indicators": [{"id": "r", "name_vi": "a", "name_en": "b", "numerator": "pupils", "denominator": "teachers", "thresholds": {"warning": "25"}}]}`},
		{"a threshold's unknown field", `{"indicators": [{"id": "r", "name_vi": "a", "name_en": "b", "numerator": "pupils", "denominator": "teachers", "thresholds": {"bad": 1}}]}`},
		{"a connector of kind ftp", `{"connector": {"kind": "ftp", "url": "ftp://x/y.csv", "format": "csv"}}`},
		{"a connector without a kind", `{"connector": {"url": "https://x/y.csv", "format": "csv"}}`},
		{"a postgres connector without a query", `{"connector": {"kind": "postgres", "dsn": "postgres://ioc@db/gd"}}`},
		{"a postgres connector with a url", `{"connector": {"kind": "postgres", "dsn": "postgres://ioc@db/gd", "query": "SELECT 1", "url": "https://x"}}`},
		{"a dsn that is no URL", `{"connector": {"kind": "postgres", "dsn": "host=db user=ioc", "query": "SELECT 1"}}`},
		{"an http connector without a format", `{"connector": {"kind": "http", "url": "https://x/y.csv"}}`},
		{"an http connector with a query", `{"connector": {"kind": "http", "url": "https://x/y.csv", "format": "csv", "query": "SELECT 1"}}`},
		{"a format xml", `{"connector": {"kind": "http", "url": "https://x/y.xml", "format": "xml"}}`},
		{"a url of ftp", `{"connector": {"kind": "http", "url": "ftp://x/y.csv", "format": "csv"}}`},
		{"every in days", `{"connector": {"kind": "http", "url": "https://x/y.csv", "format": "csv", "every": "1d"}}`},
		{"periods 121", `{"connector": {"kind": "http", "url": "https://x/y.csv", "format": "csv", "periods": 121}}`},
		{"a token_env with a dash", `{"connector": {"kind": "http", "url": "https://x/y.csv", "format": "csv", "token_env": "IOC-TOKEN"}}`},
		{"a connector's unknown field", `{"connector": {"kind": "http", "url": "https://x/y.csv", "format": "csv", "headers": {}}}`},
	} {
		b := mergePatch(t, valid, c.patch)
		_, perr := Parse(b, schemaLevels{})
		var inv *InvalidError
		if !errors.As(perr, &inv) {
			t.Errorf("%s: Parse accepts it (%v)", c.name, perr)
		}
		if err := root.Validate(instance(b)); err == nil {
			t.Errorf("%s: the schema accepts it, Parse refuses it (%v): state the rule in %s", c.name, perr, definitionSchemaFile)
		}
	}
}

// mergePatch applies a JSON merge patch (RFC 7396) to doc.
func mergePatch(t *testing.T, doc []byte, patch string) []byte {
	t.Helper()
	var d, p any
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(patch), &p); err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	var merge func(d, p any) any
	merge = func(d, p any) any {
		pm, ok := p.(map[string]any)
		if !ok {
			return p
		}
		dm, ok := d.(map[string]any)
		if !ok {
			dm = map[string]any{}
		}
		for k, v := range pm {
			if v == nil {
				delete(dm, k)
			} else {
				dm[k] = merge(dm[k], v)
			}
		}
		return dm
	}
	b, err := json.Marshal(merge(d, p))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
