package aggregate

import (
	"context"
	"math"
	"time"

	"github.com/openioc/ioc/severity"

	"github.com/openioc/ioc/rollup"
)

// A window's figures are the rows of the hour rollups from its first whole
// hour on, and of the minute rollups for its ragged first hour. The same
// rows reach the aggregator two ways: read from ClickHouse
// (rollup.Reader.ReadWindows), and announced by the writers that just
// stored them (rollup.Delta). Both go through rollup.Family.Add into
// rollup.Sums, and CountsOf turns them into Counts: one place turns rollup
// rows into figures.

// CountsOf are the figures sums give: the dossier measures (FlowCounts),
// camera events by type (a type and severity whose events were all
// corrected away counts nothing), readings, and citizen feedback. The live
// figures and the history's both come through here.
func CountsOf(s *rollup.Sums) Counts {
	if s == nil {
		return Counts{}
	}
	c := FlowCounts(s.Flow)
	for k, n := range s.Cameras {
		if n <= 0 {
			continue // a type whose events were all corrected away
		}
		c.CameraEvents += uint64(n)
		if k.Severity == severity.Critical {
			c.CameraCritical += uint64(n)
		}
		if c.ByType == nil {
			c.ByType = map[string]uint64{}
		}
		c.ByType[k.Type] += uint64(n)
	}
	c.PM25, c.WaterLevel = statOf(s.PM25), statOf(s.WaterLevel)
	f := s.Feedback
	c.FeedbackReceived, c.FeedbackResolved, c.FeedbackOnTime = f.Received, f.Resolved, f.OnTime
	c.FeedbackRated, c.FeedbackSatisfied, c.Complaints = f.Rated, f.Satisfied, f.Complaints
	return c
}

func statOf(r rollup.Readings) Stat {
	mx := r.Max
	if !r.HasMax {
		mx = math.Inf(-1) // readings counted before their maximum: shown as null
	}
	return Stat{Max: mx, Sum: r.Sum, N: uint64(max(r.N, 0))}
}

// spanOf is the span of window w at now.
func spanOf(w Window, now time.Time, loc *time.Location) rollup.Span {
	return rollup.SpanFrom(w.Start(now, loc))
}

// readWindows reads every live family for the windows of spans, in one
// query per family (see rollup.Reader.ReadWindows).
func (q querier) readWindows(ctx context.Context, reason string, s scope, spans []rollup.Span, markers bool) (rollup.WindowRead, error) {
	r := rollup.NewWindowRead(len(spans), markers)
	for _, f := range rollup.Live {
		q.count(reason, 1)
		if err := q.rollups.ReadWindows(ctx, f, s.rollup(), spans, markers, r); err != nil {
			return rollup.WindowRead{}, err
		}
	}
	return r, nil
}
