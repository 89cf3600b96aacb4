package aggregate

import (
	"time"

	"github.com/openioc/ioc/geo"
)

// Snapshot is the figures of one unit for one window: the one shape of REST
// responses and websocket messages.
type Snapshot struct {
	Area      string         `json:"area"`
	Hierarchy string         `json:"hierarchy"`
	Level     string         `json:"level"`
	Name      string         `json:"name"`
	Window    Window         `json:"window"`
	AsOf      time.Time      `json:"as_of"`
	KPIs      map[string]any `json:"kpis"`
}

func newSnapshot(h *geo.Hierarchy, u geo.Unit, w Window, c Counts, x *extras, asOf time.Time) Snapshot {
	kpis := KPIs(c)
	x.put(kpis, u.Code, c)
	return Snapshot{
		Area: u.Code, Hierarchy: h.Name(), Level: u.Level, Name: u.Name,
		Window: w, AsOf: asOf, KPIs: kpis,
	}
}

// MapSnapshot is the figures of every direct child of a unit for one
// window: what a wall map needs to recolour without fetching geometry
// again. Every message carries all children, so a screen that missed one
// loses nothing; on the live topics, a message may also carry a delta
// with only the children that changed (see ApplyMapDelta).
type MapSnapshot struct {
	Area       string                  `json:"area"`
	Hierarchy  string                  `json:"hierarchy"`
	Level      string                  `json:"level"`
	Name       string                  `json:"name"`
	Window     Window                  `json:"window"`
	AsOf       time.Time               `json:"as_of"`
	ChildLevel string                  `json:"child_level"`
	Children   map[string]ChildFigures `json:"children"`
}

// ChildFigures is one child's entry in a MapSnapshot.
type ChildFigures struct {
	Name string         `json:"name"`
	KPIs map[string]any `json:"kpis"`
}

func newMapSnapshot(h *geo.Hierarchy, u geo.Unit, w Window, counts map[string]Counts, x *extras, asOf time.Time) MapSnapshot {
	m := MapSnapshot{
		Area: u.Code, Hierarchy: h.Name(), Level: u.Level, Name: u.Name, Window: w, AsOf: asOf,
		Children: make(map[string]ChildFigures, len(h.ChildCodes(u.Code))),
	}
	for _, c := range h.Children(u.Code) {
		m.ChildLevel = c.Level
		kpis := KPIs(counts[c.Code])
		x.put(kpis, c.Code, counts[c.Code])
		m.Children[c.Code] = ChildFigures{Name: c.Name, KPIs: kpis}
	}
	return m
}
