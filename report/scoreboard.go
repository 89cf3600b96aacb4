package report

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/openioc/ioc/aggregate"
)

// Scoreboard is a unit's standing on the national index for a period.
type Scoreboard struct {
	Area     string       `json:"area"`
	Name     string       `json:"name"`
	Level    string       `json:"level"`
	Period   string       `json:"period"`
	From     time.Time    `json:"from"`
	To       time.Time    `json:"to"`
	Total    Total        `json:"total"`
	Groups   []GroupScore `json:"groups"`
	Rank     Rank         `json:"rank"`
	Siblings []Sibling    `json:"siblings"`
}

// Total is the points of every group.
type Total struct {
	Points             float64 `json:"points"`
	SupportedMaxPoints float64 `json:"supported_max_points"`
	MaxPoints          float64 `json:"max_points"`
}

// GroupScore is a group's points and its indicators.
type GroupScore struct {
	aggregate.Group
	Points     float64  `json:"points"`
	Indicators []Scored `json:"indicators"`
}

// Scored is an indicator's score, or an item the data cannot measure.
type Scored struct {
	ID           string   `json:"id"`
	NameEn       string   `json:"name_en"`
	NameVi       string   `json:"name_vi"`
	Supported    bool     `json:"supported"`
	MaxPoints    float64  `json:"max_points"`
	FullPointsAt *float64 `json:"full_points_at,omitempty"`
	*Value
	Points *float64 `json:"points,omitempty"`
	NoData *bool    `json:"no_data,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

// Rank is a unit's place among its siblings.
type Rank struct {
	Position int    `json:"position"`
	Of       int    `json:"of"`
	Level    string `json:"level"`
}

// Sibling is a unit of the same parent and level with its total.
type Sibling struct {
	Rank   int     `json:"rank"`
	Area   string  `json:"area"`
	Name   string  `json:"name"`
	Points float64 `json:"points"`
}

// scored lists the catalog's scoreboard indicators.
func scored() []aggregate.Definition {
	var out []aggregate.Definition
	for _, d := range aggregate.Catalog() {
		if d.Scoreboard != nil {
			out = append(out, d)
		}
	}
	return out
}

// points scores a value: in proportion up to the threshold, full beyond.
func points(r *aggregate.ScoreRule, v *float64) float64 {
	if v == nil || r.FullPointsAt <= 0 {
		return 0
	}
	return math.Round(r.MaxPoints*min(1, *v/r.FullPointsAt)*100) / 100
}

// Scoreboard scores a unit and its siblings for p.
func (e *Engine) Scoreboard(ctx context.Context, area string, p Period) (Scoreboard, error) {
	u, err := e.unit(area)
	if err != nil {
		return Scoreboard{}, err
	}
	var codes []string
	if u.Parent != "" {
		codes = e.h.Subtree(u.Parent)
	}
	defs := scored()
	var sources []aggregate.Source
	balance := false
	for _, d := range defs {
		for _, s := range d.Sources {
			if !slices.Contains(sources, s) {
				sources = append(sources, s)
			}
		}
		balance = balance || d.AtEnd
	}
	siblings := e.selectUnits(u.Level, u.Parent)
	counts, err := e.rolledUp(ctx, sources, balance, codes, p.Range, "level "+u.Level, func(code string) []string {
		if t := e.ancestorAt(code, u.Level); t != "" {
			return []string{t}
		}
		return nil
	})
	if err != nil {
		return Scoreboard{}, err
	}
	out := Scoreboard{Area: u.Code, Name: u.Name, Level: u.Level, Period: p.Name, From: p.From, To: p.To,
		Rank: Rank{Of: len(siblings), Level: u.Level}}
	for _, s := range siblings {
		groups, total := e.score(defs, counts[s.Code])
		out.Siblings = append(out.Siblings, Sibling{Area: s.Code, Name: s.Name, Points: total.Points})
		if s.Code == u.Code {
			out.Groups, out.Total = groups, total
		}
	}
	slices.SortFunc(out.Siblings, func(a, b Sibling) int {
		return cmp.Or(cmp.Compare(b.Points, a.Points), cmp.Compare(a.Area, b.Area))
	})
	for i := range out.Siblings {
		out.Siblings[i].Rank = i + 1
		if out.Siblings[i].Area == u.Code {
			out.Rank.Position = i + 1
		}
	}
	return out, nil
}

// score computes every group of one unit.
func (e *Engine) score(defs []aggregate.Definition, c aggregate.Counts) ([]GroupScore, Total) {
	var total Total
	groups := make([]GroupScore, 0, len(aggregate.Groups))
	for _, g := range aggregate.Groups {
		gs := GroupScore{Group: g, Indicators: []Scored{}}
		for _, d := range defs {
			if d.Scoreboard.Group != g.ID {
				continue
			}
			p, _ := d.Parts(c)
			v := valueOf(p)
			pts := points(d.Scoreboard, p.Value)
			noData := p.Value == nil
			full := d.Scoreboard.FullPointsAt
			gs.Indicators = append(gs.Indicators, Scored{ID: d.ID, NameEn: d.NameEn, NameVi: d.NameVi, Supported: true,
				MaxPoints: d.Scoreboard.MaxPoints, FullPointsAt: &full, Value: &v, Points: &pts, NoData: &noData})
			gs.Points += pts
			total.SupportedMaxPoints += d.Scoreboard.MaxPoints
		}
		for _, n := range aggregate.NotMeasured {
			if n.Group == g.ID {
				gs.Indicators = append(gs.Indicators, Scored{ID: n.ID, NameEn: n.NameEn, NameVi: n.NameVi,
					MaxPoints: n.MaxPoints, Reason: n.Reason})
			}
		}
		gs.Points = math.Round(gs.Points*100) / 100
		total.Points += gs.Points
		total.MaxPoints += g.MaxPoints
		groups = append(groups, gs)
	}
	total.Points = math.Round(total.Points*100) / 100
	return groups, total
}
