package aggregate

import (
	"fmt"
	"time"

	"github.com/openioc/ioc/topic"
)

// Window is the period a snapshot covers, ending now.
type Window string

const (
	Today  Window = "today" // since local midnight in the deployment's time zone
	Last24 Window = "24h"
	Last7  Window = "7d"
	Last30 Window = "30d"
)

// Windows lists every window, the default first.
var Windows = []Window{Today, Last24, Last7, Last30}

// ParseWindow reads a window name; empty means today.
func ParseWindow(s string) (Window, error) {
	if s == "" {
		return Today, nil
	}
	for _, w := range Windows {
		if string(w) == s {
			return w, nil
		}
	}
	return "", fmt.Errorf("unknown window %q: use today, 24h, 7d or 30d", s)
}

// Start is where the window begins for now, to the minute: the rollups keep
// minutes, so a sliding window moves in whole minutes.
func (w Window) Start(now time.Time, loc *time.Location) time.Time {
	switch w {
	case Last24:
		return now.Add(-24 * time.Hour).Truncate(time.Minute)
	case Last7:
		return now.Add(-7 * 24 * time.Hour).Truncate(time.Minute)
	case Last30:
		return now.Add(-30 * 24 * time.Hour).Truncate(time.Minute)
	default:
		y, m, d := now.In(loc).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, loc)
	}
}

// Topic is the live topic that carries the window's snapshots of area:
// kpi/{area} for today, kpi/{area}/{window} for the others.
func (w Window) Topic(area string) string { return topic.KPI.Of(area).Over(string(w)).String() }

// MapTopic is the live topic that carries the window's figures of every
// child of area: map/{area} for today, map/{area}/{window} for the others.
func (w Window) MapTopic(area string) string { return topic.Map.Of(area).Over(string(w)).String() }
