package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/answer"
	"github.com/openioc/ioc/internal/requestid"
	"github.com/openioc/ioc/report"
)

// Reports answers analysts' questions over history.
type Reports interface {
	Location() *time.Location
	Series(ctx context.Context, q report.SeriesQuery) (report.Series, error)
	Ranking(ctx context.Context, q report.RankingQuery) (report.Ranking, error)
	Relationship(ctx context.Context, q report.RelationshipQuery) (report.Relationship, error)
	Scoreboard(ctx context.Context, area string, p report.Period) (report.Scoreboard, error)
	Close(ctx context.Context, p report.Period, by, note string, force bool) (report.Closed, error)
	Reopen(ctx context.Context, p report.Period, by, reason string) (report.PeriodRecord, error)
	Periods(ctx context.Context) ([]report.PeriodRecord, error)
	Figures(ctx context.Context, period, area string, closedAt time.Time) (report.ClosedFigures, error)
}

func (s *Server) reportRoutes(v1 fiber.Router, reader fiber.Handler) {
	v1.Get("/kpis/:id/series", reader, requireRead, s.series)
	v1.Get("/kpis/:id/ranking", reader, requireRead, s.ranking)
	v1.Get("/analysis/relationship", reader, requireRead, s.relationship)
	v1.Get("/scoreboard", reader, requireRead, s.scoreboard)
	v1.Get("/periods", reader, requireRead, s.periods)
	v1.Get("/periods/:period", reader, requireRead, s.periodFigures)
	v1.Post("/periods/:period/close", reader, requireAdmin, s.closePeriod)
	v1.Post("/periods/:period/reopen", reader, requireAdmin, s.reopenPeriod)
}

// reportError answers a refusal of the report engine.
func (s *Server) reportError(c *fiber.Ctx, err error) error {
	var inv *report.InvalidError
	var lim *report.LimitError
	var nf *report.NotFoundError
	var conflict *report.ConflictError
	var timeout *report.TimeoutError
	switch {
	case errors.As(err, &inv):
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	case errors.As(err, &lim):
		return fiber.NewError(fiber.StatusUnprocessableEntity, err.Error())
	case errors.As(err, &nf):
		return fiber.NewError(fiber.StatusNotFound, err.Error())
	case errors.As(err, &conflict):
		return fiber.NewError(fiber.StatusConflict, err.Error())
	case errors.As(err, &timeout):
		s.logger.Warn("report query timed out", "request_id", requestid.Get(c), "route", routePattern(c), "err", timeout.Err)
		return fiber.NewError(fiber.StatusGatewayTimeout, err.Error())
	}
	return answer.Unavailable(err)
}

// reportArea reads the unit a report is about from the query parameter
// name: it must exist and lie in the token's scope. Left out, it is the
// token's one unit; a token covering everything may leave it out to mean
// the whole country when whole is true.
func (s *Server) reportArea(c *fiber.Ctx, name string, whole bool) (string, error) {
	p := principal(c)
	h := s.d.KPIs.Hierarchy()
	code := strings.Clone(c.Query(name))
	if code == "" {
		switch {
		case p.Unrestricted() && whole:
			return "", nil
		case !p.Unrestricted() && len(p.Areas) == 1:
			return p.Areas[0], nil
		}
		return "", fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s is required: name the unit, e.g. ?%s=79 (GET /api/v1/areas lists them)", name, name))
	}
	if _, ok := h.Unit(code); !ok {
		return "", fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("unknown area %q in %s; list areas with GET /api/v1/areas", code, h.Name()))
	}
	if !p.MayRead(h, code) {
		return "", fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("your token does not cover area %s (it covers %s)", code, strings.Join(p.Areas, ", ")))
	}
	return code, nil
}

// historyAsk is what a series or a ranking is asked over.
type historyAsk struct {
	csv     bool
	geojson bool // a map of the units, where the answer has one
	explain bool // say where the figures came from
	area    string
	r       report.Range
	compare string
}

// historyParams reads the parameters series and rankings share: the
// answer's format (format=geojson too when mapped), the unit (from the
// query parameter area), the range of step (none for rankings) and the
// comparison.
func (s *Server) historyParams(c *fiber.Ctx, area string, whole bool, step report.Step, mapped bool) (historyAsk, error) {
	var h historyAsk
	var err error
	if h.geojson = mapped && c.Query("format") == "geojson"; !h.geojson {
		if h.csv, err = wantsCSV(c); err != nil {
			return h, err
		}
	}
	if h.area, err = s.reportArea(c, area, whole); err != nil {
		return h, err
	}
	if h.r, err = report.ParseRange(c.Query("from"), c.Query("to"), step, time.Now(), s.d.Reports.Location()); err != nil {
		return h, s.reportError(c, err)
	}
	if h.compare, err = report.ParseCompare(c.Query("compare")); err != nil {
		return h, s.reportError(c, err)
	}
	switch x := c.Query("explain"); x {
	case "", "false":
	case "true":
		if h.csv || h.geojson {
			return h, fiber.NewError(fiber.StatusBadRequest, "explain=true answers JSON only: leave out format=csv (or the Accept header asking for CSV), or explain")
		}
		h.explain = true
	default:
		return h, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("explain %q is not true or false", x))
	}
	return h, nil
}

func (s *Server) series(c *fiber.Ctx) error {
	step, err := report.ParseStep(c.Query("step"))
	if err != nil {
		return s.reportError(c, err)
	}
	h, err := s.historyParams(c, "area", false, step, false)
	if err != nil {
		return err
	}
	out, err := s.d.Reports.Series(c.UserContext(), report.SeriesQuery{KPI: strings.Clone(c.Params("id")), Area: h.area,
		Range: h.r, Step: step, Compare: h.compare, By: strings.Clone(c.Query("by")), Explain: h.explain})
	if err != nil {
		return s.reportError(c, err)
	}
	if !h.csv {
		return c.JSON(out)
	}
	d, _ := s.lookupIndicator(out.KPI)
	header := append([]string{"t", "area", "area_name", "kpi"}, valueHeader(d)...)
	if out.Compare != "" {
		header = append(header, "previous_t", "previous_value ["+d.Unit+"]", "change ["+d.Unit+"]")
	}
	if out.By != "" {
		header = append(header, out.By)
	}
	var rows [][]string
	for _, p := range out.Points {
		row := append([]string{stamp(p.T), out.Area, out.Name, out.KPI}, valueCells(p.Value)...)
		if out.Compare != "" {
			row = append(row, stamp(*p.Previous.T), num(p.Previous.Value.Value), anyNum(p.Change))
		}
		if out.By == "" {
			rows = append(rows, row)
			continue
		}
		rows = append(rows, append(row, "total"))
		for _, sh := range p.Breakdown {
			r := append([]string{stamp(p.T), out.Area, out.Name, out.KPI}, valueCells(sh.Value)...)
			if out.Compare != "" {
				r = append(r, "", "", "")
			}
			rows = append(rows, append(r, sh.Key))
		}
	}
	return sendCSV(c, fileName(out.KPI, out.Area, string(out.Step), out.From.Format("20060102")), header, rows)
}

// valueHeader names the value columns with their units.
func valueHeader(d aggregate.Definition) []string {
	numUnit, denUnit := d.Numerator, d.Denominator
	if numUnit == "" {
		numUnit = d.Unit
	}
	if denUnit == "" {
		denUnit = "none"
	}
	return []string{"value [" + d.Unit + "]", "numerator [" + numUnit + "]", "denominator [" + denUnit + "]"}
}

func valueCells(v report.Value) []string {
	return []string{num(v.Value), num(v.Numerator), num(v.Denominator)}
}

func (s *Server) ranking(c *fiber.Ctx) error {
	h, err := s.historyParams(c, "parent", true, "", false)
	if err != nil {
		return err
	}
	limit := 0
	if l := c.Query("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("limit %q is not a whole number", l))
		}
	}
	out, err := s.d.Reports.Ranking(c.UserContext(), report.RankingQuery{KPI: strings.Clone(c.Params("id")), Parent: h.area,
		Level: strings.Clone(c.Query("level")), Range: h.r, Order: strings.Clone(c.Query("order")), Limit: limit,
		Compare: h.compare, By: strings.Clone(c.Query("by")), Explain: h.explain})
	if err != nil {
		return s.reportError(c, err)
	}
	if !h.csv {
		return c.JSON(out)
	}
	d, _ := s.lookupIndicator(out.KPI)
	header := append([]string{"rank", "area", "area_name"}, valueHeader(d)...)
	if out.Compare != "" {
		header = append(header, "previous_value ["+d.Unit+"]", "change ["+d.Unit+"]")
	}
	if out.By != "" {
		header = append(header, out.By)
	}
	var rows [][]string
	for _, it := range out.Items {
		row := append([]string{strconv.Itoa(it.Rank), it.Area, it.Name}, valueCells(it.Value)...)
		if out.Compare != "" {
			row = append(row, num(it.Previous.Value.Value), anyNum(it.Change))
		}
		if out.By == "" {
			rows = append(rows, row)
			continue
		}
		rows = append(rows, append(row, "total"))
		for _, sh := range it.Breakdown {
			r := append([]string{strconv.Itoa(it.Rank), it.Area, it.Name}, valueCells(sh.Value)...)
			if out.Compare != "" {
				r = append(r, "", "")
			}
			rows = append(rows, append(r, sh.Key))
		}
	}
	return sendCSV(c, fileName(out.KPI, "ranking", out.Parent, out.Level, out.From.Format("20060102")), header, rows)
}

func (s *Server) scoreboard(c *fiber.Ctx) error {
	csv, err := wantsCSV(c)
	if err != nil {
		return err
	}
	area, err := s.reportArea(c, "area", false)
	if err != nil {
		return err
	}
	p, err := report.ParsePeriod(c.Query("period"), time.Now(), s.d.Reports.Location())
	if err != nil {
		return s.reportError(c, err)
	}
	out, err := s.d.Reports.Scoreboard(c.UserContext(), area, p)
	if err != nil {
		return s.reportError(c, err)
	}
	// Every sibling's rank is public on the national index; their figures
	// are shown only to tokens that cover them.
	pr, h := principal(c), s.d.KPIs.Hierarchy()
	visible := out.Siblings[:0]
	for _, sb := range out.Siblings {
		if pr.MayRead(h, sb.Area) {
			visible = append(visible, sb)
		}
	}
	out.Siblings = visible
	if !csv {
		return c.JSON(out)
	}
	header := []string{"area", "area_name", "period", "group", "indicator", "name_vi", "name_en", "supported",
		"value [ratio]", "numerator", "denominator", "points", "max_points", "full_points_at [ratio]", "reason"}
	var rows [][]string
	for _, g := range out.Groups {
		for _, i := range g.Indicators {
			row := []string{out.Area, out.Name, out.Period, g.ID, i.ID, i.NameVi, i.NameEn, strconv.FormatBool(i.Supported)}
			if i.Value != nil {
				row = append(row, valueCells(*i.Value)...)
			} else {
				row = append(row, "", "", "")
			}
			row = append(row, num(i.Points), num(&i.MaxPoints), num(i.FullPointsAt), i.Reason)
			rows = append(rows, row)
		}
	}
	rows = append(rows, []string{out.Area, out.Name, out.Period, "total", "", "", "", "", "", "", "",
		num(&out.Total.Points), num(&out.Total.MaxPoints), "", fmt.Sprintf("rank %d of %d", out.Rank.Position, out.Rank.Of)})
	return sendCSV(c, fileName("scoreboard", out.Area, out.Period), header, rows)
}

func (s *Server) periods(c *fiber.Ctx) error {
	csv, err := wantsCSV(c)
	if err != nil {
		return err
	}
	out, err := s.d.Reports.Periods(c.UserContext())
	if err != nil {
		return s.reportError(c, err)
	}
	if !csv {
		return c.JSON(fiber.Map{"periods": out})
	}
	// One row per close and reopening: the audit trail is the content.
	var rows [][]string
	for _, p := range out {
		for _, a := range p.Audit {
			rows = append(rows, []string{p.Period, stamp(p.From), stamp(p.To), p.State, a.Action, a.By, stamp(a.At), a.Note,
				strconv.Itoa(a.Figures), strconv.FormatBool(a.Forced)})
		}
	}
	return sendCSV(c, "periods", []string{"period", "from", "to", "state", "action", "by", "at", "note", "figures", "forced"}, rows)
}

func (s *Server) periodFigures(c *fiber.Ctx) error {
	csv, err := wantsCSV(c)
	if err != nil {
		return err
	}
	area, err := s.reportArea(c, "area", true)
	if err != nil {
		return err
	}
	var at time.Time
	if v := c.Query("closed_at"); v != "" {
		if at, err = time.Parse(time.RFC3339, v); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("closed_at %q is not an RFC 3339 time; copy a close's at from GET /api/v1/periods", v))
		}
		if err := report.CheckTime("closed_at", v, at); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
	}
	out, err := s.d.Reports.Figures(c.UserContext(), strings.Clone(c.Params("period")), area, at)
	if err != nil {
		return s.reportError(c, err)
	}
	if !csv {
		return c.JSON(out)
	}
	header := []string{"period", "area", "area_name", "kpi", "closed_value", "closed_numerator", "closed_denominator",
		"live_value", "live_numerator", "live_denominator", "drift"}
	var rows [][]string
	for _, it := range out.Items {
		row := append([]string{out.Period, it.Area, it.Name, it.KPI}, valueCells(it.Closed)...)
		row = append(append(row, valueCells(it.Live)...), anyNum(it.Drift))
		rows = append(rows, row)
	}
	return sendCSV(c, fileName("period", out.Period, out.Area), header, rows)
}

type closeBody struct {
	Note string `json:"note"`
}

func (s *Server) closePeriod(c *fiber.Ctx) error {
	var body closeBody
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	if len(raw) > 0 {
		if err := strictJSON(raw, &body); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, "body must be {\"note\": \"…\"}: "+err.Error())
		}
	}
	force := false
	if v := c.Query("force"); v != "" {
		var err error
		if force, err = strconv.ParseBool(v); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("force %q is not true or false", v))
		}
	}
	p, err := report.ParsePeriod(strings.Clone(c.Params("period")), time.Now(), s.d.Reports.Location())
	if err != nil {
		return s.reportError(c, err)
	}
	out, err := s.d.Reports.Close(c.UserContext(), p, principal(c).Subject, body.Note, force)
	if err != nil {
		return s.reportError(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

type reopenBody struct {
	Reason string `json:"reason"`
}

func (s *Server) reopenPeriod(c *fiber.Ctx) error {
	var body reopenBody
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	if len(raw) > 0 {
		if err := strictJSON(raw, &body); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, "body must be {\"reason\": \"…\"} saying why the period is reopened: "+err.Error())
		}
	}
	// A missing reason is the engine's to refuse, with the one message.
	p, err := report.ParsePeriod(strings.Clone(c.Params("period")), time.Now(), s.d.Reports.Location())
	if err != nil {
		return s.reportError(c, err)
	}
	out, err := s.d.Reports.Reopen(c.UserContext(), p, principal(c).Subject, body.Reason)
	if err != nil {
		return s.reportError(c, err)
	}
	return c.JSON(out)
}
