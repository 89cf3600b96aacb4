package api

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/report"
)

// relationship answers GET /api/v1/analysis/relationship: how x and y go
// together over the units at level under parent, as JSON or CSV (a row per
// unit, with its fitted y and residual).
func (s *Server) relationship(c *fiber.Ctx) error {
	x, y := strings.Clone(c.Query("x")), strings.Clone(c.Query("y"))
	if x == "" || y == "" {
		return fiber.NewError(fiber.StatusBadRequest, "x and y are required: name two indicators of GET /api/v1/kpis, e.g. ?x=enrolment.pupils_per_teacher&y=on_time_rate")
	}
	h, err := s.historyParams(c, "parent", true, "")
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
