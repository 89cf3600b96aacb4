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

func newSnapshot(h *geo.Hierarchy, u geo.Unit, w Window, c Counts, asOf time.Time) Snapshot {
	return Snapshot{
		Area: u.Code, Hierarchy: h.Name(), Level: u.Level, Name: u.Name,
		Window: w, AsOf: asOf, KPIs: KPIs(c),
	}
}
