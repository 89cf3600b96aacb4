package api

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/paulmach/orb"

	"github.com/openioc/ioc/geo"
)

type lookupBody struct {
	Hierarchy string     `json:"hierarchy"`
	Lat       float64    `json:"lat"`
	Lon       float64    `json:"lon"`
	Units     []geo.Unit `json:"units"` // from the top level down
}

// coordinate parses a latitude or longitude query parameter.
func coordinate(c *fiber.Ctx, name string, limit float64) (float64, error) {
	raw := c.Query(name)
	if raw == "" {
		return 0, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s is required", name))
	}
	v, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s %q is not a number", name, raw))
	}
	if v < -limit || v > limit {
		return 0, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s %v is out of range -%v..%v", name, v, limit, limit))
	}
	return v, nil
}

// lookup answers which units contain a point.
func (s *Server) lookup(c *fiber.Ctx) error {
	h, err := s.hierarchy(c)
	if err != nil {
		return err
	}
	lat, err := coordinate(c, "lat", 90)
	if err != nil {
		return err
	}
	lon, err := coordinate(c, "lon", 180)
	if err != nil {
		return err
	}
	if len(h.GeometryLevels()) == 0 {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("hierarchy %s carries no boundaries; look up in one that does", h.Name()))
	}
	chain := h.Locate(orb.Point{lon, lat})
	if len(chain) == 0 {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no unit of %s contains lat %v, lon %v", h.Name(), lat, lon))
	}
	p := principal(c)
	if !p.MayRead(h, chain[len(chain)-1].Code) {
		return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("the point lies in %s, which your token does not cover (it covers %s)", chain[len(chain)-1].Code, strings.Join(p.Areas, ", ")))
	}
	return c.JSON(lookupBody{Hierarchy: h.Name(), Lat: lat, Lon: lon, Units: chain})
}

type lineageEdge struct {
	Hierarchy  string `json:"hierarchy"`
	Code       string `json:"code"`
	Name       string `json:"name,omitempty"`
	Level      string `json:"level,omitempty"`
	Kind       string `json:"kind"`
	Designated bool   `json:"designated,omitempty"`
}

type lineageBody struct {
	Area         string        `json:"area"`
	Hierarchy    string        `json:"hierarchy"`
	Name         string        `json:"name"`
	Predecessors []lineageEdge `json:"predecessors"`
	Successors   []lineageEdge `json:"successors"`
}

// lineage shows where a unit came from and where it went, through every
// crosswalk that touches its hierarchy.
func (s *Server) lineage(c *fiber.Ctx) error {
	h, u, err := s.readableUnit(c)
	if err != nil {
		return err
	}
	out := lineageBody{Area: u.Code, Hierarchy: h.Name(), Name: u.Name, Predecessors: []lineageEdge{}, Successors: []lineageEdge{}}
	ref := func(other *geo.Hierarchy, code string, e geo.Edge) lineageEdge {
		l := lineageEdge{Hierarchy: other.Name(), Code: code, Kind: e.Kind, Designated: e.Designated}
		if v, ok := other.Unit(code); ok {
			l.Name, l.Level = v.Name, v.Level
		}
		return l
	}
	for _, cw := range s.d.Geo.Crosswalks() {
		if cw.To().Name() == h.Name() {
			for _, e := range cw.Predecessors(u.Code) {
				out.Predecessors = append(out.Predecessors, ref(cw.From(), e.Old, e))
			}
		}
		if cw.From().Name() == h.Name() {
			for _, e := range cw.Successors(u.Code) {
				out.Successors = append(out.Successors, ref(cw.To(), e.New, e))
			}
		}
	}
	return c.JSON(out)
}
