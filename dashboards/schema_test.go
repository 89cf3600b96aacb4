package dashboards_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/openioc/ioc/dashboards"
)

// schemaFile is the published schema, docs/dashboard.schema.json.
const schemaFile = "../docs/dashboard.schema.json"

// compileSchema compiles the published schema, and each kind's definition
// of it.
func compileSchema(t *testing.T) (root *jsonschema.Schema, kinds map[string]*jsonschema.Schema) {
	t.Helper()
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const url = "https://github.com/openioc/ioc/blob/main/docs/dashboard.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	if root, err = c.Compile(url); err != nil {
		t.Fatalf("compile %s: %v", schemaFile, err)
	}
	kinds = map[string]*jsonschema.Schema{}
	for _, k := range []string{"dashboard", "playlist", "wall", "screen", "export"} {
		if kinds[k], err = c.Compile(url + "#/$defs/" + k); err != nil {
			t.Fatalf("compile the %s definition: %v", k, err)
		}
	}
	return root, kinds
}

func instance(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSchemaAgreesWithValidate keeps docs/dashboard.schema.json and
// Validate in step: the shipped documents and their stored (canonical)
// forms pass both; every document of testdata/invalid.json fails both;
// those of testdata/semantic.json break rules a schema cannot state
// (catalog, units, references, overlaps, order) and pass the schema, so a
// rule added to either side shows up here.
func TestSchemaAgreesWithValidate(t *testing.T) {
	root, kinds := compileSchema(t)
	checks := testChecks(t)

	files, err := fs.Glob(dashboards.Defaults(), "*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, _ := fs.ReadFile(dashboards.Defaults(), f)
		if err := root.Validate(instance(t, b)); err != nil {
			t.Errorf("defaults/%s fails the schema: %v", f, err)
		}
	}
	srcs, err := dashboards.ReadDir(dashboards.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	defaultsChecks := checks
	defaultsChecks.Documents = stored{}
	docs, err := dashboards.ValidateSet(srcs, defaultsChecks)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if err := kinds[string(d.Kind)].Validate(instance(t, d.Body)); err != nil {
			t.Errorf("the stored form of %s %s fails the schema: %v", d.Kind, d.ID, err)
		}
	}
	export, err := json.Marshal(dashboards.NewExport(docs))
	if err != nil {
		t.Fatal(err)
	}
	if err := kinds["export"].Validate(instance(t, export)); err != nil {
		t.Errorf("the export of the defaults fails the schema: %v", err)
	}

	for _, c := range readCases(t, "invalid.json") {
		if err := kinds[c.Kind].Validate(instance(t, c.Document)); err == nil {
			t.Errorf("invalid.json %s: the schema accepts it, Validate refuses it: state the rule in %s", c.Name, schemaFile)
		}
		if validate(c, checks) == nil {
			t.Errorf("invalid.json %s: Validate accepts it", c.Name)
		}
	}
	for _, c := range readCases(t, "semantic.json") {
		if err := kinds[c.Kind].Validate(instance(t, c.Document)); err != nil {
			t.Errorf("semantic.json %s: the schema refuses it (%v): move it to invalid.json", c.Name, err)
		}
		if validate(c, checks) == nil {
			t.Errorf("semantic.json %s: Validate accepts it", c.Name)
		}
	}
}
