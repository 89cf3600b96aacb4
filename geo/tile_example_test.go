package geo_test

import (
	"fmt"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/maptile"

	"github.com/openioc/ioc/geo"
)

func ExampleEncodeTile() {
	reg, err := geo.Builtin()
	if err != nil {
		panic(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	shapes := geo.NewLayerGeometry(h, 0)

	// The zoom-12 tile over Sài Gòn ward, Ho Chi Minh City.
	t := maptile.At(orb.Point{106.70, 10.776}, 12)
	var features []geo.Feature
	for _, code := range shapes.Intersecting("commune", geo.TileBound(t)) {
		u, _ := h.Unit(code)
		mp, _ := shapes.Geometry(code, int(t.Z))
		features = append(features, geo.Feature{ID: code, Geometry: mp, Properties: map[string]any{"code": code, "name": u.Name}})
	}
	body, err := geo.EncodeTile("vn-2025.commune", t, features)
	if err != nil {
		panic(err)
	}

	layers, err := mvt.Unmarshal(body)
	if err != nil {
		panic(err)
	}
	for _, f := range layers[0].Features {
		if f.Properties["code"] == "26740" {
			fmt.Println(layers[0].Name, f.Properties["name"])
		}
	}
	// Output: vn-2025.commune Sài Gòn
}
