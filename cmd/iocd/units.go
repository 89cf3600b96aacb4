package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/config"
)

// loadUnits returns the built-in hierarchies with those imported into
// geoDir (when set) added or replacing them.
func loadUnits(geoDir string) (*geo.Registry, error) {
	reg, err := geo.Builtin()
	if err != nil {
		return nil, fmt.Errorf("load built-in administrative units: %w", err)
	}
	if geoDir == "" {
		return reg, nil
	}
	if _, err := os.Stat(geoDir); os.IsNotExist(err) {
		return reg, nil // nothing imported yet
	}
	reg, err = reg.Overlay(os.DirFS(geoDir))
	if err != nil {
		return nil, fmt.Errorf("load administrative units from IOC_GEO_DIR=%s: %w", geoDir, err)
	}
	return reg, nil
}

// importUnits checks a hierarchy given as GeoJSON boundaries (plus, when
// the features' properties do not carry them, a unit list) and installs it
// in the geo directory, where every node loads it at start:
//
//	iocd import-units --name vn-2026 --levels province,commune \
//	    --boundaries provinces.geojson,communes.geojson [--units units.csv] \
//	    [--valid-from 2026-07-01] [--crosswalk-from vn-2025 --crosswalk edges.csv]
func importUnits(args []string, out io.Writer) error {
	f := config.New("iocd import-units")
	geoDir := f.String("geo-dir", "IOC_GEO_DIR", "", "directory of imported hierarchies")
	name := f.FlagSet.String("name", "", "hierarchy name, e.g. vn-2026 (an existing name is replaced)")
	levels := f.FlagSet.String("levels", "", "levels from the top down, comma-separated, e.g. province,commune")
	unitsFile := f.FlagSet.String("units", "", "CSV unit list (code,level,parent,name,name_en,full_name,full_name_en); default: the GeoJSON features' properties")
	boundaries := f.FlagSet.String("boundaries", "", "GeoJSON FeatureCollections of Polygon/MultiPolygon boundaries, comma-separated")
	codeProp := f.FlagSet.String("code-property", "code", "feature property holding the unit code")
	validFrom := f.FlagSet.String("valid-from", "", "first day the hierarchy is in force (YYYY-MM-DD)")
	validTo := f.FlagSet.String("valid-to", "", "day it ceased to be in force (YYYY-MM-DD), if it has")
	cwFrom := f.FlagSet.String("crosswalk-from", "", "the hierarchy this one replaces; needs --crosswalk")
	cwFile := f.FlagSet.String("crosswalk", "", "CSV edges old → new (level,old,new,kind[,designated])")
	if err := f.Parse(args); err != nil {
		return err
	}
	switch {
	case *geoDir == "":
		return fmt.Errorf("set --geo-dir or IOC_GEO_DIR: the directory every node reads imported hierarchies from")
	case *name == "" || *levels == "":
		return fmt.Errorf("--name and --levels are required")
	case (*cwFrom == "") != (*cwFile == ""):
		return fmt.Errorf("--crosswalk-from and --crosswalk go together")
	}
	m := geo.Manifest{Name: *name, Levels: strings.Split(*levels, ","), ValidFrom: *validFrom, ValidTo: *validTo, CrosswalkFrom: *cwFrom}
	for _, d := range []struct{ flag, v string }{{"valid-from", *validFrom}, {"valid-to", *validTo}} {
		if _, err := time.Parse(time.DateOnly, d.v); d.v != "" && err != nil {
			return fmt.Errorf("--%s %q is not a date like 2026-07-01", d.flag, d.v)
		}
	}

	var shapes []geo.Shape
	var propUnits []geo.Unit
	for _, path := range strings.Split(*boundaries, ",") {
		if path = strings.TrimSpace(path); path == "" {
			continue
		}
		s, u, err := readFile(path, func(r io.Reader) ([]geo.Shape, []geo.Unit, error) { return geo.ReadGeoJSON(r, *codeProp) })
		if err != nil {
			return err
		}
		shapes, propUnits = append(shapes, s...), append(propUnits, u...)
	}
	units := propUnits
	if *unitsFile != "" {
		u, _, err := readFile(*unitsFile, func(r io.Reader) ([]geo.Unit, []geo.Unit, error) {
			u, err := geo.ReadUnitsCSV(r)
			return u, nil, err
		})
		if err != nil {
			return err
		}
		units = u
	}
	if len(units) == 0 {
		return fmt.Errorf("no units: give --boundaries whose features carry code, level and parent, or --units")
	}
	h, err := geo.NewHierarchy(m.Name, m.Levels, time.Time{}, time.Time{}, units)
	if err != nil {
		return err
	}
	if len(shapes) > 0 {
		if h, err = h.WithShapes(shapes); err != nil {
			return err
		}
	}
	var edges []geo.Edge
	if *cwFile != "" {
		if edges, _, err = readFile(*cwFile, func(r io.Reader) ([]geo.Edge, []geo.Edge, error) {
			e, err := geo.ReadEdgesCSV(r)
			return e, nil, err
		}); err != nil {
			return err
		}
	}

	// Check the directory as every node will load it before touching it.
	current, err := loadUnits(*geoDir)
	if err != nil {
		return err
	}
	staging, err := os.MkdirTemp("", "iocd-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	if err := geo.WriteDir(staging, m, h, edges); err != nil {
		return err
	}
	if _, err := current.Overlay(os.DirFS(staging)); err != nil {
		return err
	}
	if err := geo.WriteDir(*geoDir, m, h, edges); err != nil {
		return err
	}
	fmt.Fprintf(out, "imported %s into %s: %d units", m.Name, filepath.Clean(*geoDir), h.Len())
	for _, l := range m.Levels {
		fmt.Fprintf(out, ", %d %s", len(h.Select(l, "")), l)
	}
	fmt.Fprintf(out, "; boundaries for %v", h.GeometryLevels())
	if len(edges) > 0 {
		fmt.Fprintf(out, "; %d crosswalk edges from %s", len(edges), *cwFrom)
	}
	fmt.Fprintln(out, "\nrestart iocd (every node) to serve it")
	return nil
}

func readFile[A, B any](path string, read func(io.Reader) (A, B, error)) (A, B, error) {
	var a A
	var b B
	f, err := os.Open(path)
	if err != nil {
		return a, b, err
	}
	defer f.Close()
	a, b, err = read(f)
	if err != nil {
		return a, b, fmt.Errorf("%s:\n  %w", path, err)
	}
	return a, b, nil
}
