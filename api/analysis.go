package api

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/report"
)

// relationship answers GET /api/v1/analysis/relationship: how x and y go
// together over the units at level under parent, as JSON, CSV (a row per
// unit, with its fitted y and residual) or GeoJSON (the units on a map,
// with their residuals).
func (s *Server) relationship(c *fiber.Ctx) error {
	x, y := strings.Clone(c.Query("x")), strings.Clone(c.Query("y"))
	if x == "" || y == "" {
		return fiber.NewError(fiber.StatusBadRequest, "x and y are required: name two indicators of GET /api/v1/kpis, e.g. ?x=enrolment.pupils_per_teacher&y=on_time_rate")
	}
	h, err := s.historyParams(c, "parent", true, "", true)
	if err != nil {
		return err
	}
	outliers := 0
	if o := c.Query("outliers"); o != "" {
		if outliers, err = strconv.Atoi(o); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("outliers %q is not a whole number", o))
		}
	}
	out, err := s.d.Reports.Relationship(c.UserContext(), report.RelationshipQuery{X: x, Y: y, Parent: h.area,
		Level: strings.Clone(c.Query("level")), Range: h.r, Outliers: outliers})
	if err != nil {
		return s.reportError(c, err)
	}
	if h.geojson {
		return s.relationshipMap(c, out)
	}
	if !h.csv {
		return c.JSON(out)
	}
	dx, _ := s.lookupIndicator(out.X)
	dy, _ := s.lookupIndicator(out.Y)
	header := []string{"area", "area_name"}
	for _, side := range []struct{ name, unit string }{{out.X, dx.Unit}, {out.Y, dy.Unit}} {
		header = append(header, side.name+" ["+side.unit+"]", side.name+" numerator", side.name+" denominator")
	}
	header = append(header, "fitted ["+dy.Unit+"]", "residual ["+dy.Unit+"]")
	rows := make([][]string, 0, len(out.Units))
	for _, p := range out.Units {
		row := append([]string{p.Area, p.Name}, valueCells(p.X)...)
		row = append(row, valueCells(p.Y)...)
		rows = append(rows, append(row, num(p.Fitted), num(p.Residual)))
	}
	return sendCSV(c, fileName("relationship", out.X, out.Y, out.Parent, out.Level, out.From.Format("20060102")), header, rows)
}

// relationshipMap answers a relationship as a GeoJSON map layer of its
// units: each with x, y, the fitted y, the residual, the residual over the
// residuals' standard deviation (how unusual the unit is, for a diverging
// colour ramp) and whether it is among the outliers.
func (s *Server) relationshipMap(c *fiber.Ctx, out report.Relationship) error {
	zoom := -1
	if raw := c.Query("zoom"); raw != "" {
		z, err := strconv.Atoi(raw)
		if err != nil || z < 0 || z > geo.MaxZoom {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("zoom %q must be an integer from 0 to %d", raw, geo.MaxZoom))
		}
		zoom = z
	}
	spread := residualSpread(out.Units)
	pairs := make(map[string]report.Pair, len(out.Units))
	codes := make([]string, len(out.Units))
	for i, p := range out.Units {
		pairs[p.Area], codes[i] = p, p.Area
	}
	outlier := map[string]bool{}
	for _, p := range out.Outliers {
		outlier[p.Area] = true
	}
	h := s.d.KPIs.Hierarchy()
	b, err := s.gis.FeatureCollection(h.Name()+"."+out.Level, "relationship "+out.X+" "+out.Y, codes, zoom, func(code string) map[string]any {
		p := pairs[code]
		props := map[string]any{"x": p.X.Value, "y": p.Y.Value, "fitted": p.Fitted, "residual": p.Residual, "residual_sd": nil, "outlier": outlier[code]}
		if p.Residual != nil && spread > 0 {
			props["residual_sd"] = math.Round(*p.Residual/spread*100) / 100
		}
		return props
	})
	if err != nil {
		return fiber.NewError(fiber.StatusUnprocessableEntity, err.Error()+": ask for format=json or csv, or a level with boundaries")
	}
	c.Set(fiber.HeaderContentType, "application/geo+json")
	return c.Send(b)
}

// residualSpread is the standard deviation of the residuals; 0 with fewer
// than two.
func residualSpread(units []report.Pair) float64 {
	var sum, sq float64
	n := 0
	for _, p := range units {
		if p.Residual != nil {
			sum += *p.Residual
			sq += *p.Residual * *p.Residual
			n++
		}
	}
	if n < 2 {
		return 0
	}
	mean := sum / float64(n)
	return math.Sqrt(math.Max(0, sq/float64(n)-mean*mean))
}
