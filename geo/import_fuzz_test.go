package geo

import (
	"bytes"
	"testing"
)

// FuzzReadGeoJSON feeds operator files of any shape to the importer: it
// must refuse what it cannot use with an error, never panic, and whatever
// it accepts must be valid boundaries. Seeds are in testdata/fuzz.
func FuzzReadGeoJSON(f *testing.F) {
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"A","level":"x"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		shapes, units, err := ReadGeoJSON(bytes.NewReader(b), "code")
		if err != nil {
			return
		}
		if len(units) != len(shapes) {
			t.Fatalf("%d units for %d shapes", len(units), len(shapes))
		}
		for _, s := range shapes {
			if err := checkGeometry(s.Geom); err != nil {
				t.Fatalf("accepted invalid geometry of %s: %v", s.Code, err)
			}
		}
	})
}
