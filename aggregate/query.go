package aggregate

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/rollup"
)

// querier reads the figures: the rollups through the shared reader, the
// devices and alarms through ops.
type querier struct {
	rollups *rollup.Reader
	ops     Operations
	// queries, when set, counts the queries issued, by reason.
	queries *prometheus.CounterVec
}

// count notes n queries issued for reason.
func (q querier) count(reason string, n int) {
	if q.queries != nil {
		q.queries.WithLabelValues(reason).Add(float64(n))
	}
}

// Operations gives the figures of devices and alarms as they are now.
type Operations interface {
	AreaCounts(ctx context.Context) (map[string]device.Counts, error)
	OpenCounts(ctx context.Context) (map[string]uint64, error)
}

// current returns, per unit, its devices by kind and status and its open
// alarms, now.
func (q querier) current(ctx context.Context, reason string) (map[string]Counts, error) {
	out := map[string]Counts{}
	if q.ops == nil {
		return out, nil
	}
	q.count(reason, 2)
	devices, err := q.ops.AreaCounts(ctx)
	if err != nil {
		return nil, err
	}
	for area, d := range devices {
		out[area] = Counts{CamerasOnline: d.CamerasOnline, CamerasOffline: d.CamerasOffline,
			SensorsOnline: d.SensorsOnline, SensorsOffline: d.SensorsOffline}
	}
	alarms, err := q.ops.OpenCounts(ctx)
	if err != nil {
		return nil, err
	}
	for area, n := range alarms {
		c := out[area]
		c.AlarmsOpen = n
		out[area] = c
	}
	return out, nil
}

// scope names the units a computation covers: every unit of the hierarchy
// (codes nil), or the listed ones.
type scope struct {
	h     *geo.Hierarchy
	codes []string // nil: all
}

// rollup is the scope as the rollup reader takes it.
func (s scope) rollup() rollup.Scope { return rollup.Scope{Hierarchy: s.h.Name(), Codes: s.codes} }

// overdue returns, per unit, the open dossiers filed directly under it
// that are past their deadline now: the late-open balance of the rollups,
// so the same rules as the history's (see rollup.Reader.Balances).
func (q querier) overdue(ctx context.Context, reason string, s scope, now time.Time) (map[string]uint64, error) {
	q.count(reason, 1)
	b, err := q.rollups.Balances(ctx, s.rollup(), now, true)
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(b))
	for area, v := range b {
		if v.Late > 0 {
			out[area] = uint64(v.Late)
		}
	}
	return out, nil
}

// counts computes, for every unit in s, the counts over its subtree for each
// window. Units of s must be whole subtrees (every descendant of a listed
// unit listed too) for the sums to be complete.
func (q querier) counts(ctx context.Context, reason string, s scope, windows []Window, now time.Time, loc *time.Location) (map[Window]map[string]Counts, error) {
	over, err := q.overdue(ctx, reason, s, now)
	if err != nil {
		return nil, err
	}
	current, err := q.current(ctx, reason)
	if err != nil {
		return nil, err
	}
	spans := make([]rollup.Span, len(windows))
	for i, w := range windows {
		spans[i] = spanOf(w, now, loc)
	}
	read, err := q.readWindows(ctx, reason, s, spans, false)
	if err != nil {
		return nil, err
	}
	in := func(code string) bool { return true }
	if s.codes != nil {
		member := make(map[string]bool, len(s.codes))
		for _, c := range s.codes {
			member[c] = true
		}
		in = func(code string) bool { return member[code] }
	}
	out := make(map[Window]map[string]Counts, len(windows))
	for i, w := range windows {
		direct := make(map[string]Counts, len(read.Direct[i]))
		for area, sm := range read.Direct[i] {
			direct[area] = CountsOf(sm)
		}
		for area, n := range over {
			c := direct[area]
			c.Overdue = n
			direct[area] = c
		}
		for area, n := range current {
			c := direct[area]
			c.Add(n)
			direct[area] = c
		}
		sums := map[string]Counts{}
		for area, c := range direct {
			if _, ok := s.h.Unit(area); !ok {
				continue // a unit since removed from the hierarchy
			}
			for code := area; code != ""; {
				if in(code) {
					t := sums[code]
					t.Add(c)
					sums[code] = t
				}
				u, _ := s.h.Unit(code)
				code = u.Parent
			}
		}
		out[w] = sums
	}
	return out, nil
}
