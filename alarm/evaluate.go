package alarm

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/openioc/ioc/internal/chstore"
)

// thresholds judges every sensor that reported the rule's kind lately. A
// sensor fires when its latest reading is at or above the threshold and has
// been since at least For; it clears on a reading below. A sensor with no
// recent reading is not judged: its offline alarm speaks for it.
func (e *Engine) thresholds(ctx context.Context, r Rule, now time.Time, manual map[string]time.Time) ([]finding, error) {
	lookback := max(2*time.Duration(r.For), 30*time.Minute)
	level := "value" // compared with a fixed value
	if r.ValueField != "" {
		level = r.ValueField // allow-listed by Rule.Check
	}
	rows, err := e.conn.Query(ctx, `SELECT sensor_id, area_code, observed_at, value, `+level+` FROM `+e.db+`.sensor_readings
		WHERE hierarchy = ? AND kind = ? AND observed_at >= ? ORDER BY sensor_id, observed_at, event_id`,
		e.h.Name(), r.SensorKind, chstore.Time(now.Add(-lookback)))
	if err != nil {
		return nil, fmt.Errorf("query readings: %w", err)
	}
	defer rows.Close()
	type run struct {
		area          string
		latest        float64
		latestAt      time.Time
		limit         *float64 // the threshold of the latest reading
		start         time.Time
		above, recent bool
	}
	var order []string
	runs := map[string]*run{}
	for rows.Next() {
		var id, area string
		var at time.Time
		var v float64
		var lvl *float64
		if level == "value" {
			var same float64
			if err := rows.Scan(&id, &area, &at, &v, &same); err != nil {
				return nil, fmt.Errorf("read readings: %w", err)
			}
			lvl = r.Value
		} else if err := rows.Scan(&id, &area, &at, &v, &lvl); err != nil {
			return nil, fmt.Errorf("read readings: %w", err)
		}
		s := runs[id]
		if s == nil {
			s = &run{}
			runs[id] = s
			order = append(order, id)
		}
		above := lvl != nil && v >= *lvl
		if above && !s.above {
			s.start = at
		}
		s.area, s.latest, s.latestAt, s.limit, s.above, s.recent = area, v, at, lvl, above, true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read readings: %w", err)
	}
	out := make([]finding, 0, len(order))
	for _, id := range order {
		s := runs[id]
		f := finding{deviceID: id, area: s.area, value: s.latest}
		if s.limit != nil {
			f.threshold = *s.limit
		}
		held := s.latestAt.Sub(s.start)
		if s.above && held >= time.Duration(r.For) {
			if resolvedAt, ok := manual[r.ID+"\x00"+id]; !ok || s.start.After(resolvedAt) {
				f.firing = true
			}
		}
		f.message = fmt.Sprintf("%s at %s is %.4g, at or above %.4g for %s", r.SensorKind, id, s.latest, f.threshold, held.Round(time.Second))
		if r.ValueField != "" {
			f.message = fmt.Sprintf("%s at %s is %.4g, at or above its %s %.4g", r.SensorKind, id, s.latest, r.ValueField, f.threshold)
		}
		out = append(out, f)
	}
	return out, nil
}

// eventCounts judges every camera with events of the rule's type within the
// window, and every camera with an open alarm of the rule: no events is a
// verdict too.
func (e *Engine) eventCounts(ctx context.Context, r Rule, now time.Time, manual map[string]time.Time, open map[string]Alarm) ([]finding, error) {
	from := now.Add(-time.Duration(r.Within))
	counts, err := e.countEvents(ctx, r.EventType, from, nil)
	if err != nil {
		return nil, err
	}
	// After an operator resolved an alarm, only events since count.
	for k, at := range manual {
		rule, dev := splitKey(k)
		if rule != r.ID || !at.After(from) {
			continue
		}
		since, err := e.countEvents(ctx, r.EventType, at, &dev)
		if err != nil {
			return nil, err
		}
		c := counts[dev]
		c.n = since[dev].n
		counts[dev] = c
	}
	for _, a := range open {
		if _, ok := counts[a.DeviceID]; a.RuleID == r.ID && !ok {
			counts[a.DeviceID] = countAt{area: a.AreaCode}
		}
	}
	out := make([]finding, 0, len(counts))
	for id, c := range counts {
		out = append(out, finding{
			deviceID: id, area: c.area, firing: c.n >= uint64(r.Count), value: float64(c.n), threshold: float64(r.Count),
			message: fmt.Sprintf("%d %s events at %s within %s (limit %d)", c.n, r.EventType, id, time.Duration(r.Within), r.Count),
		})
	}
	return out, nil
}

type countAt struct {
	area string
	n    uint64
}

func (e *Engine) countEvents(ctx context.Context, typ string, from time.Time, camera *string) (map[string]countAt, error) {
	q := `SELECT camera_id, any(area_code), count() FROM ` + e.db + `.camera_events
		WHERE hierarchy = ? AND type = ? AND occurred_at > ?`
	args := []any{e.h.Name(), typ, chstore.Time(from)}
	if camera != nil {
		q += " AND camera_id = ?"
		args = append(args, *camera)
	}
	rows, err := e.conn.Query(ctx, q+" GROUP BY camera_id", args...)
	if err != nil {
		return nil, fmt.Errorf("count camera events: %w", err)
	}
	defer rows.Close()
	out := map[string]countAt{}
	for rows.Next() {
		var id string
		var c countAt
		if err := rows.Scan(&id, &c.area, &c.n); err != nil {
			return nil, fmt.Errorf("count camera events: %w", err)
		}
		out[id] = c
	}
	return out, rows.Err()
}

// offline judges every registered device of the rule's kind: silent for
// After since its last report (or, if it never reported, since it was
// registered) fires.
func (e *Engine) offline(r Rule, now time.Time, manual map[string]time.Time, seen map[string]time.Time) []finding {
	ds := e.devices.List(nil, r.DeviceKind)
	out := make([]finding, 0, len(ds))
	for _, d := range ds {
		ref, ok := seen[d.ID]
		if !ok {
			ref = d.UpdatedAt
		}
		silent := now.Sub(ref)
		f := finding{
			deviceID: d.ID, area: d.AreaCode, value: silent.Seconds(), threshold: time.Duration(r.After).Seconds(),
			message: fmt.Sprintf("%s %s has not reported for %s (limit %s)", d.Kind, d.ID, silent.Round(time.Second), time.Duration(r.After)),
		}
		if silent >= time.Duration(r.After) {
			if resolvedAt, ok := manual[r.ID+"\x00"+d.ID]; !ok || ref.After(resolvedAt) {
				f.firing = true
			}
		}
		out = append(out, f)
	}
	return out
}

// FeedSubject is what an alarm of a dataset's feed is about, in place of a
// device.
func FeedSubject(dataset string) string { return "dataset:" + dataset }

// datasetFeeds judges each feed the rule covers. An operator's
// resolution holds until the feed goes wrong again: a later due period,
// or a later failed run.
func datasetFeeds(r Rule, feeds []Feed, manual map[string]time.Time) []finding {
	var out []finding
	for _, fd := range feeds {
		if r.Dataset != "" && fd.Dataset != r.Dataset {
			continue
		}
		subject := FeedSubject(fd.Dataset)
		f := finding{deviceID: subject, area: cmpOr(fd.Area, r.Area)}
		var why []string
		if fd.Late {
			if fd.Latest == "" {
				why = append(why, fmt.Sprintf("no values yet, %s due", fd.Due))
			} else {
				why = append(why, fmt.Sprintf("%s due, latest %s", fd.Due, fd.Latest))
			}
		}
		if fd.Failure != "" {
			why = append(why, "its pull failed: "+fd.Failure)
		}
		if m := r.MinCompleteness; m != nil && fd.Completeness != nil && fd.Latest != "" {
			f.value, f.threshold = *fd.Completeness, *m
			if *fd.Completeness < *m {
				why = append(why, fmt.Sprintf("%.0f%% of its units reported for %s (at least %.0f%% expected)", *fd.Completeness*100, fd.Latest, *m*100))
			}
		}
		if len(why) > 0 {
			f.message = "dataset " + fd.Dataset + ": " + strings.Join(why, "; ")
			if resolvedAt, ok := manual[r.ID+"\x00"+subject]; !ok || fd.Since.After(resolvedAt) {
				f.firing = true
			}
		} else {
			f.message = "dataset " + fd.Dataset + " is live"
		}
		out = append(out, f)
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func splitKey(k string) (rule, dev string) {
	for i := 0; i < len(k); i++ {
		if k[i] == 0 {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}
