// Command gendata converts the reference data set (GeoJSON boundaries, the
// three-level unit list and the crosswalk) into the compact files the geo
// package embeds. It runs by hand when the reference data changes:
//
//	go run ./geo/internal/gendata -src <reference data dir> -out geo/data
package main

import (
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
	"unicode"

	"github.com/openioc/ioc/geo"
)

func main() {
	src := flag.String("src", "", "reference data directory (holding vn/ and jp/)")
	out := flag.String("out", "geo/data", "output directory")
	flag.Parse()
	if *src == "" {
		log.Fatal("gendata: -src is required")
	}
	must := func(err error) {
		if err != nil {
			log.Fatal("gendata: ", err)
		}
	}
	must(vn2025(*src, *out))
	must(vn2024(*src, *out))
	must(crosswalk(*src, *out))
	must(jp2021(*src, *out))
}

func readGeoJSON(path string) (*geojson.FeatureCollection, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	fc, err := geojson.UnmarshalFeatureCollection(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return fc, nil
}

// multi returns g as a valid MultiPolygon: without the degenerate rings
// (fewer than four positions) that simplification leaves behind, and with
// the rings that simplification made cross or touch themselves cut into
// simple ones (geo.Repair).
func multi(g orb.Geometry) orb.MultiPolygon {
	mp, _ := geo.Repair(dropDegenerate(g))
	return mp
}

// dropDegenerate returns g as a MultiPolygon without rings of fewer than
// four positions.
func dropDegenerate(g orb.Geometry) orb.MultiPolygon {
	var mp orb.MultiPolygon
	switch g := g.(type) {
	case orb.Polygon:
		mp = orb.MultiPolygon{g}
	case orb.MultiPolygon:
		mp = g
	}
	var out orb.MultiPolygon
	for _, poly := range mp {
		if len(poly) == 0 || len(poly[0]) < 4 {
			continue
		}
		clean := orb.Polygon{poly[0]}
		for _, hole := range poly[1:] {
			if len(hole) >= 4 {
				clean = append(clean, hole)
			}
		}
		out = append(out, clean)
	}
	return out
}

func writeShapes(path string, shapes []geo.Shape) error {
	slices.SortFunc(shapes, func(a, b geo.Shape) int { return strings.Compare(a.Code, b.Code) })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := geo.WriteShapes(f, shapes); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeCSV(path string, header []string, rows [][]string) error {
	slices.SortFunc(rows, func(a, b []string) int { return slices.Compare(a, b) })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write(header)
	w.WriteAll(rows)
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func vn2025(src, out string) error {
	var shapes []geo.Shape
	for _, name := range []string{"vn/provinces-2025.geojson", "vn/communes-2025.geojson.gz"} {
		fc, err := readGeoJSON(filepath.Join(src, name))
		if err != nil {
			return err
		}
		for _, f := range fc.Features {
			shapes = append(shapes, geo.Shape{Code: f.Properties.MustString("code"), Geom: multi(f.Geometry)})
		}
	}
	return writeShapes(filepath.Join(out, "vn-2025-shapes.gz"), shapes)
}

// ascii folds Vietnamese text to plain letters for the English names.
func ascii(s string) string {
	s = strings.NewReplacer("Đ", "D", "đ", "d").Replace(s)
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	r, _, _ := transform.String(t, s)
	return r
}

var unitTypeEn = map[string]string{
	"tỉnh": "Province", "thành phố": "City", "huyện": "District", "quận": "Urban District",
	"thị xã": "Town", "xã": "Commune", "phường": "Ward", "thị trấn": "Township",
}

func vn2024(src, out string) error {
	b, err := os.ReadFile(filepath.Join(src, "vn/units-2024.json"))
	if err != nil {
		return err
	}
	var doc struct {
		Units []struct {
			Code, Name, Type, Level string
			Parent                  *string
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("units-2024.json: %w", err)
	}
	var rows [][]string
	for _, u := range doc.Units {
		typ := strings.ToUpper(u.Type[:1]) + strings.ToLower(u.Type[1:])
		parent := ""
		if u.Parent != nil {
			parent = *u.Parent
		}
		en := ascii(u.Name)
		rows = append(rows, []string{u.Code, u.Level, parent, u.Name, en, typ + " " + u.Name, en + " " + unitTypeEn[strings.ToLower(u.Type)]})
	}
	return writeCSV(filepath.Join(out, "vn-2024-units.csv"),
		[]string{"code", "level", "parent", "name", "name_en", "full_name", "full_name_en"}, rows)
}

// crosswalk writes the edges and designates, for each old unit that was
// split, the successor that takes its records when they carry no position:
// the one bearing the old unit's name, else the one reusing its code, else
// the lowest code.
func crosswalk(src, out string) error {
	b, err := os.ReadFile(filepath.Join(src, "vn/crosswalk-2024-2025.json"))
	if err != nil {
		return err
	}
	var doc struct {
		Edges []struct{ Level, Old, New, Kind string }
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("crosswalk: %w", err)
	}
	// Two new codes in the crosswalk's source are not 2025 units; the
	// units they stand for (same name, unreached by any edge) are known.
	fixNew := map[string]string{"06970": "06978", "23737": "23938"}
	for i, e := range doc.Edges {
		if c, ok := fixNew[e.New]; ok && e.Level == "commune" {
			doc.Edges[i].New = c
		}
	}
	oldNames, err := unitNames(filepath.Join(out, "vn-2024-units.csv"))
	if err != nil {
		return err
	}
	newNames, err := unitNames(filepath.Join(out, "vn-2025-units.csv"))
	if err != nil {
		return err
	}
	byOld := map[string][]int{}
	for i, e := range doc.Edges {
		byOld[e.Level+"/"+e.Old] = append(byOld[e.Level+"/"+e.Old], i)
	}
	designated := map[int]bool{}
	for _, idx := range byOld {
		if len(idx) == 1 {
			designated[idx[0]] = true
			continue
		}
		slices.SortFunc(idx, func(a, b int) int { return strings.Compare(doc.Edges[a].New, doc.Edges[b].New) })
		pick := idx[0]
		old := doc.Edges[idx[0]].Old
		if i := slices.IndexFunc(idx, func(i int) bool { return doc.Edges[i].New == old }); i >= 0 {
			pick = idx[i]
		}
		if i := slices.IndexFunc(idx, func(i int) bool {
			n := oldNames[old]
			return n != "" && newNames[doc.Edges[i].New] == n
		}); i >= 0 {
			pick = idx[i]
		}
		designated[pick] = true
	}
	var rows [][]string
	for i, e := range doc.Edges {
		d := ""
		if designated[i] {
			d = "1"
		}
		rows = append(rows, []string{e.Level, e.Old, e.New, e.Kind, d})
	}
	return writeCSV(filepath.Join(out, "vn-2024-vn-2025-crosswalk.csv"),
		[]string{"level", "old", "new", "kind", "designated"}, rows)
}

func unitNames(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	units, err := geo.ReadUnitsCSV(f)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, u := range units {
		out[u.Code] = u.Name
	}
	return out, nil
}

func jp2021(src, out string) error {
	prefs := map[string][2]string{"13": {"東京都", "Tokyo"}, "28": {"兵庫県", "Hyogo"}}
	var rows [][]string
	for code, n := range prefs {
		rows = append(rows, []string{code, "prefecture", "", n[0], n[1], n[0], n[1] + " Prefecture"})
	}
	var shapes []geo.Shape
	for _, name := range []string{"jp/tokyo-municipalities-2021.geojson", "jp/hyogo-municipalities-2021.geojson"} {
		fc, err := readGeoJSON(filepath.Join(src, name))
		if err != nil {
			return err
		}
		for _, f := range fc.Features {
			code := f.Properties.MustString("N03_007", "")
			if code == "" {
				continue // an area belonging to no municipality
			}
			city, ward := f.Properties.MustString("N03_003", ""), f.Properties.MustString("N03_004", "")
			rows = append(rows, []string{code, "municipality", code[:2], ward, "", city + ward, ""})
			shapes = append(shapes, geo.Shape{Code: code, Geom: multi(f.Geometry)})
		}
	}
	if err := writeCSV(filepath.Join(out, "jp-2021-units.csv"),
		[]string{"code", "level", "parent", "name", "name_en", "full_name", "full_name_en"}, rows); err != nil {
		return err
	}
	return writeShapes(filepath.Join(out, "jp-2021-shapes.gz"), shapes)
}
