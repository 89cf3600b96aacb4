package dataset_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/openioc/ioc/dataset"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// levels is a hierarchy of provinces and their communes, as geo.Hierarchy
// answers a definition's level.
type levels struct{}

func (levels) HasLevel(level string) bool { return level == "province" || level == "commune" }
func (levels) Levels() []string           { return []string{"province", "commune"} }

// units is province 79 with three of its communes. The token an upload
// comes with covers every unit but commune 26740, as a token for part of
// the province would.
type units struct{}

var unitLevels = map[string]string{
	"79":    "province",
	"26734": "commune",
	"26737": "commune",
	"26740": "commune",
}

const uncovered = "26740"

func (units) Level(code string) (string, bool) {
	l, ok := unitLevels[code]
	return l, ok
}

// Place knows two boxes: 10.75–10.80 N is commune 26734, 10.80–10.85 N
// commune 26740 (the one outside the token), both 106.65–106.70 E.
func (units) Place(lat, lon float64, _ string) (string, bool) {
	if lon < 106.65 || lon >= 106.70 {
		return "", false
	}
	switch {
	case lat >= 10.75 && lat < 10.80:
		return "26734", true
	case lat >= 10.80 && lat < 10.85:
		return uncovered, true
	}
	return "", false
}

func (units) Covered(code string) bool { return code != uncovered }

// readFile is a file of testdata/.
func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// definition is the definition of testdata/name, which must be valid.
func definition(t testing.TB, name string) dataset.Definition {
	t.Helper()
	d, err := dataset.Parse(readFile(t, name), levels{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// golden compares got with testdata/name, or writes it there with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./dataset -update to write it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("differs from %s (rerun with -update and read the diff):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
