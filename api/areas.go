package api

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/answer"
	"github.com/openioc/ioc/geo"
)

// hierarchy picks the hierarchy named by ?hierarchy=, or the deployment's.
func (s *Server) hierarchy(c *fiber.Ctx) (*geo.Hierarchy, error) {
	name := c.Query("hierarchy")
	if name == "" {
		return s.d.KPIs.Hierarchy(), nil
	}
	h, ok := s.d.Geo.Hierarchy(name)
	if !ok {
		return nil, fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("unknown hierarchy %q; known: %s", name, strings.Join(s.d.Geo.Names(), ", ")))
	}
	return h, nil
}

// readableUnit finds the unit at :code and checks the principal may read it:
// 404 for a unit that does not exist, 403 for one outside the token's scope.
func (s *Server) readableUnit(c *fiber.Ctx) (*geo.Hierarchy, geo.Unit, error) {
	h, err := s.hierarchy(c)
	if err != nil {
		return nil, geo.Unit{}, err
	}
	code := c.Params("code")
	u, ok := h.Unit(code)
	if !ok {
		return nil, geo.Unit{}, fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("unknown area %q in %s; list areas with GET /api/v1/areas", code, h.Name()))
	}
	if !principal(c).MayRead(h, code) {
		return nil, geo.Unit{}, fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("your token does not cover area %s (it covers %s)", code, strings.Join(principal(c).Areas, ", ")))
	}
	return h, u, nil
}

func window(c *fiber.Ctx) (aggregate.Window, error) {
	w, err := aggregate.ParseWindow(c.Query("window"))
	if err != nil {
		return "", fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	return w, nil
}

type areaList struct {
	Hierarchy string     `json:"hierarchy"`
	Count     int        `json:"count"`
	Areas     []geo.Unit `json:"areas"`
}

func (s *Server) listAreas(c *fiber.Ctx) error {
	csv, err := wantsCSV(c)
	if err != nil {
		return err
	}
	h, err := s.hierarchy(c)
	if err != nil {
		return err
	}
	level, parent := c.Query("level"), c.Query("parent")
	if level != "" && !h.HasLevel(level) {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("unknown level %q in %s; use one of %s", level, h.Name(), strings.Join(h.Levels(), ", ")))
	}
	if parent != "" {
		if _, ok := h.Unit(parent); !ok {
			return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("unknown parent %q in %s", parent, h.Name()))
		}
	}
	p := principal(c)
	out := areaList{Hierarchy: h.Name(), Areas: []geo.Unit{}}
	for _, u := range h.Select(level, parent) {
		if p.MayRead(h, u.Code) {
			out.Areas = append(out.Areas, u)
		}
	}
	out.Count = len(out.Areas)
	if !csv {
		return c.JSON(out)
	}
	rows := make([][]string, 0, len(out.Areas))
	for _, u := range out.Areas {
		rows = append(rows, []string{u.Code, u.Level, u.Parent, u.Name, u.NameEn, u.FullName, u.FullNameEn})
	}
	return sendCSV(c, fileName("areas", h.Name(), level, parent), []string{"code", "level", "parent", "name", "name_en", "full_name", "full_name_en"}, rows)
}

type unitRef struct {
	Code  string `json:"code"`
	Name  string `json:"name"`
	Level string `json:"level"`
}

type areaDetail struct {
	geo.Unit
	Hierarchy string    `json:"hierarchy"`
	Ancestors []unitRef `json:"ancestors"`
	Children  int       `json:"children"`
}

func (s *Server) getArea(c *fiber.Ctx) error {
	h, u, err := s.readableUnit(c)
	if err != nil {
		return err
	}
	d := areaDetail{Unit: u, Hierarchy: h.Name(), Ancestors: []unitRef{}, Children: len(h.ChildCodes(u.Code))}
	for _, a := range h.Ancestors(u.Code) {
		d.Ancestors = append(d.Ancestors, unitRef{a.Code, a.Name, a.Level})
	}
	return c.JSON(d)
}

// figuresQuery is a request for a unit's figures: the unit, checked against
// the token's scope, the window, and a context that bounds the reading.
type figuresQuery struct {
	ctx context.Context
	h   *geo.Hierarchy
	u   geo.Unit
	w   aggregate.Window
}

func (s *Server) figuresQuery(c *fiber.Ctx) (figuresQuery, context.CancelFunc, error) {
	h, u, err := s.readableUnit(c)
	if err != nil {
		return figuresQuery{}, nil, err
	}
	w, err := window(c)
	if err != nil {
		return figuresQuery{}, nil, err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	return figuresQuery{ctx, h, u, w}, cancel, nil
}

func (s *Server) areaKPIs(c *fiber.Ctx) error {
	q, cancel, err := s.figuresQuery(c)
	if err != nil {
		return err
	}
	defer cancel()
	snap, err := s.d.KPIs.Snapshot(q.ctx, q.h.Name(), q.u.Code, q.w)
	if err != nil {
		return answer.FiguresError(err)
	}
	return c.JSON(snap)
}

type childrenKPIs struct {
	Area      string               `json:"area"`
	Hierarchy string               `json:"hierarchy"`
	Window    aggregate.Window     `json:"window"`
	Children  []aggregate.Snapshot `json:"children"`
}

func (s *Server) childrenKPIs(c *fiber.Ctx) error {
	csv, err := wantsCSV(c)
	if err != nil {
		return err
	}
	q, cancel, err := s.figuresQuery(c)
	if err != nil {
		return err
	}
	defer cancel()
	kids, err := s.d.KPIs.ChildSnapshots(q.ctx, q.h.Name(), q.u.Code, q.w)
	if err != nil {
		return answer.FiguresError(err)
	}
	if !csv {
		return c.JSON(childrenKPIs{Area: q.u.Code, Hierarchy: q.h.Name(), Window: q.w, Children: kids})
	}
	return s.snapshotsCSV(c, fileName("kpis", q.u.Code, string(q.w)), kids)
}

type catalogBody struct {
	Windows []aggregate.Window      `json:"windows"`
	KPIs    []aggregate.Definition  `json:"kpis"`
	Groups  []aggregate.Group       `json:"groups"`
	Missing []aggregate.Unsupported `json:"unsupported"`
}

func (s *Server) catalog(c *fiber.Ctx) error {
	csv, err := wantsCSV(c)
	if err != nil {
		return err
	}
	if !csv {
		return c.JSON(catalogBody{Windows: aggregate.Windows, KPIs: s.indicators(), Groups: aggregate.Groups, Missing: aggregate.NotMeasured})
	}
	header := []string{"id", "name_vi", "name_en", "kind", "unit", "direction", "formula", "numerator", "denominator",
		"source", "needs", "live", "history", "breakdowns", "group", "max_points", "full_points_at [ratio]"}
	var rows [][]string
	for _, d := range s.indicators() {
		row := []string{d.ID, d.NameVi, d.NameEn, d.Kind, d.Unit, d.Direction, d.Formula, d.Numerator, d.Denominator,
			d.Source, strings.Join(d.Needs, " "), strconv.FormatBool(d.Live), strconv.FormatBool(d.History), strings.Join(d.Breakdowns, " ")}
		if r := d.Scoreboard; r != nil {
			row = append(row, r.Group, num(&r.MaxPoints), num(&r.FullPointsAt))
		} else {
			row = append(row, "", "", "")
		}
		rows = append(rows, row)
	}
	return sendCSV(c, "indicators", header, rows)
}

// snapshotsCSV answers snapshots as one row per unit and a column per
// indicator that is a single figure, its unit in the header.
func (s *Server) snapshotsCSV(c *fiber.Ctx, name string, snaps []aggregate.Snapshot) error {
	header := []string{"area", "name", "level", "window", "as_of"}
	var ids []string
	for _, d := range s.indicators() {
		if d.Live && d.Kind != "breakdown" {
			ids = append(ids, d.ID)
			header = append(header, d.ID+" ["+d.Unit+"]")
		}
	}
	rows := make([][]string, 0, len(snaps))
	for _, sn := range snaps {
		row := []string{sn.Area, sn.Name, sn.Level, string(sn.Window), stamp(sn.AsOf)}
		for _, id := range ids {
			row = append(row, figure(sn.KPIs[id]))
		}
		rows = append(rows, row)
	}
	return sendCSV(c, name, header, rows)
}

// figure formats a snapshot value: a count, a rate or null.
func figure(v any) string {
	switch x := v.(type) {
	case *float64:
		return num(x)
	case float64:
		return num(&x)
	case uint64:
		return strconv.FormatUint(x, 10)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}
