package geo

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// ReadGeoJSON reads the boundaries of a GeoJSON FeatureCollection: each
// feature's code is its codeProperty, its geometry a Polygon or
// MultiPolygon. It also returns a unit per feature from the properties
// code, level, parent, name, name_en, full_name and full_name_en, for unit
// lists that come with the boundaries. Problems are reported by feature
// index, up to a handful. A boundary that crosses or touches itself is
// made valid (Repair).
func ReadGeoJSON(r io.Reader, codeProperty string) ([]Shape, []Unit, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	fc, err := geojson.UnmarshalFeatureCollection(b)
	if err != nil {
		return nil, nil, fmt.Errorf("not a GeoJSON FeatureCollection: %w", err)
	}
	var (
		shapes   []Shape
		units    []Unit
		problems []string
	)
	for i, f := range fc.Features {
		str := func(name string) string {
			switch v := f.Properties[name].(type) {
			case string:
				return v
			case float64:
				return fmt.Sprint(v)
			}
			return ""
		}
		code := str(codeProperty)
		if code == "" {
			problems = append(problems, fmt.Sprintf("feature %d has no %q property", i, codeProperty))
			continue
		}
		units = append(units, Unit{Code: code, Level: str("level"), Parent: str("parent"), Name: str("name"),
			NameEn: str("name_en"), FullName: str("full_name"), FullNameEn: str("full_name_en")})
		var mp orb.MultiPolygon
		switch g := f.Geometry.(type) {
		case orb.Polygon:
			mp = orb.MultiPolygon{g}
		case orb.MultiPolygon:
			mp = g
		case nil:
			problems = append(problems, fmt.Sprintf("feature %d (%s) has no geometry", i, code))
			continue
		default:
			problems = append(problems, fmt.Sprintf("feature %d (%s) is a %s, want Polygon or MultiPolygon", i, code, g.GeoJSONType()))
			continue
		}
		if err := checkGeometry(mp); err != nil {
			problems = append(problems, fmt.Sprintf("feature %d (%s): %v", i, code, err))
			continue
		}
		// Simplified boundaries often cross themselves here and there; GIS
		// clients refuse such polygons, so they are cut into valid ones.
		mp, _ = Repair(mp)
		shapes = append(shapes, Shape{Code: code, Geom: mp})
	}
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("… and %d more", len(problems)-20))
		}
		return nil, nil, fmt.Errorf("%s", strings.Join(problems, "\n  "))
	}
	return shapes, units, nil
}

// WriteDir writes h (its units, its boundaries if any, and the crosswalk
// edges into it if any) to dir as m describes, where Registry.Overlay reads
// it. Each file is replaced whole, so a reader never sees half of one.
func WriteDir(dir string, m Manifest, h *Hierarchy, edges []Edge) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	manifest, unitsFile, shapesFile, cwFile := m.Files()
	write := func(name string, fill func(io.Writer) error) error {
		tmp, err := os.CreateTemp(dir, "."+name+".*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if err := fill(tmp); err != nil {
			tmp.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	units := h.Select("", "")
	if err := write(unitsFile, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"code", "level", "parent", "name", "name_en", "full_name", "full_name_en"})
		for _, u := range units {
			cw.Write([]string{u.Code, u.Level, u.Parent, u.Name, u.NameEn, u.FullName, u.FullNameEn})
		}
		cw.Flush()
		return cw.Error()
	}); err != nil {
		return err
	}
	if h.geom != nil {
		var shapes []Shape
		for _, u := range units {
			if g, ok := h.geom.shapes[u.Code]; ok {
				shapes = append(shapes, Shape{Code: u.Code, Geom: g})
			}
		}
		if err := write(shapesFile, func(w io.Writer) error { return WriteShapes(w, shapes) }); err != nil {
			return err
		}
	} else if err := os.Remove(filepath.Join(dir, shapesFile)); err != nil && !os.IsNotExist(err) {
		return err
	}
	if cwFile != "" {
		sorted := slices.Clone(edges)
		slices.SortFunc(sorted, func(a, b Edge) int { return strings.Compare(a.Old+" "+a.New, b.Old+" "+b.New) })
		if err := write(cwFile, func(w io.Writer) error {
			cw := csv.NewWriter(w)
			cw.Write([]string{"level", "old", "new", "kind", "designated"})
			for _, e := range sorted {
				d := ""
				if e.Designated {
					d = "1"
				}
				cw.Write([]string{e.Level, e.Old, e.New, e.Kind, d})
			}
			cw.Flush()
			return cw.Error()
		}); err != nil {
			return err
		}
	}
	// The manifest last: until it is in place the hierarchy does not exist.
	return write(manifest, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	})
}
