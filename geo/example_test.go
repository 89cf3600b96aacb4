package geo_test

import (
	"fmt"

	"github.com/openioc/ioc/geo"
	"github.com/paulmach/orb"
)

func ExampleHierarchy_Locate() {
	r, err := geo.Builtin()
	if err != nil {
		panic(err)
	}
	h, _ := r.Hierarchy("vn-2025")
	for _, u := range h.Locate(orb.Point{106.7009, 10.7769}) { // lon, lat
		fmt.Println(u.Code, u.Name, u.Level)
	}
	// Output:
	// 79 Hồ Chí Minh province
	// 26740 Sài Gòn commune
}
