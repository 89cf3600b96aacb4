package aggregate

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/chstore"
)

// querier reads the rollups of one database.
type querier struct {
	conn     driver.Conn
	db       string
	balances Balances
	ops      Operations
}

// Operations gives the figures of devices and alarms as they are now.
type Operations interface {
	AreaCounts(ctx context.Context) (map[string]device.Counts, error)
	OpenCounts(ctx context.Context) (map[string]uint64, error)
}

// current returns, per unit, its devices by kind and status and its open
// alarms, now.
func (q querier) current(ctx context.Context) (map[string]Counts, error) {
	out := map[string]Counts{}
	if q.ops == nil {
		return out, nil
	}
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

func (s scope) filter(args []any) (string, []any) {
	if s.codes == nil {
		return "", args
	}
	return " AND area_code IN ?", append(args, chstore.In(s.codes))
}

// windowCounts returns, per unit with records, the counts of records filed
// directly under it from start on: whole hours from the hour rollup, the
// partial first hour from the minute rollup.
func (q querier) windowCounts(ctx context.Context, s scope, start time.Time) (map[string]Counts, error) {
	query, args := q.rollupUnion(s, start, "dossier_flow", "area_code, "+FlowColumns,
		"SELECT area_code, "+FlowSums, "GROUP BY area_code")
	rows, err := q.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query dossier rollups: %w", err)
	}
	defer rows.Close()
	out := map[string]Counts{}
	for rows.Next() {
		var area string
		var m dossier.Measures
		if err := rows.Scan(append([]any{&area}, FlowTargets(&m)...)...); err != nil {
			return nil, fmt.Errorf("read dossier rollups: %w", err)
		}
		out[area] = FlowCounts(m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read dossier rollups: %w", err)
	}
	for _, more := range []func(context.Context, scope, time.Time) (map[string]Counts, error){q.cameraCounts, q.sensorStats} {
		extra, err := more(ctx, s, start)
		if err != nil {
			return nil, err
		}
		for area, c := range extra {
			t := out[area]
			t.Add(c)
			out[area] = t
		}
	}
	return out, nil
}

// overdue returns, per unit, the open dossiers filed directly under it
// that are past their deadline now: the late-open balance of the rollups,
// so the same rules as the history's (see Balances).
func (q querier) overdue(ctx context.Context, s scope, now time.Time) (map[string]uint64, error) {
	b, err := q.balances.At(ctx, s.h.Name(), s.codes, now, true)
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
func (q querier) counts(ctx context.Context, s scope, windows []Window, now time.Time, loc *time.Location) (map[Window]map[string]Counts, error) {
	over, err := q.overdue(ctx, s, now)
	if err != nil {
		return nil, err
	}
	current, err := q.current(ctx)
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
	for _, w := range windows {
		direct, err := q.windowCounts(ctx, s, w.Start(now, loc))
		if err != nil {
			return nil, err
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

// cameraCounts returns, per unit, the camera events filed directly under it
// from start on, by type and severity.
func (q querier) cameraCounts(ctx context.Context, s scope, start time.Time) (map[string]Counts, error) {
	query, args := q.rollupUnion(s, start, "camera_kpi", "area_code, type, toString(severity) AS severity, events",
		"SELECT area_code, type, severity, toUInt64(sum(events))", "GROUP BY area_code, type, severity")
	rows, err := q.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query camera rollups: %w", err)
	}
	defer rows.Close()
	out := map[string]Counts{}
	for rows.Next() {
		var area, typ, sev string
		var n uint64
		if err := rows.Scan(&area, &typ, &sev, &n); err != nil {
			return nil, fmt.Errorf("read camera rollups: %w", err)
		}
		c := out[area]
		c.CameraEvents += n
		if sev == "critical" {
			c.CameraCritical += n
		}
		if c.ByType == nil {
			c.ByType = map[string]uint64{}
		}
		c.ByType[typ] += n
		out[area] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read camera rollups: %w", err)
	}
	return out, nil
}

// sensorStats returns, per unit, the PM2.5 and water-level readings filed
// directly under it from start on: their count and sum from the summing
// rollup, their maximum from the maxima's.
func (q querier) sensorStats(ctx context.Context, s scope, start time.Time) (map[string]Counts, error) {
	const kinds = "WHERE kind IN ('pm25', 'water_level') GROUP BY area_code, kind"
	stat, args := q.rollupUnion(s, start, "sensor_stat", "area_code, kind, value_sum, readings",
		"SELECT area_code, kind, toFloat64('-inf') AS mx, sum(value_sum) AS sm, sum(readings) AS n", kinds)
	maxima, more := q.rollupUnion(s, start, "sensor_max", "area_code, kind, value_max",
		"SELECT area_code, kind, maxMerge(value_max) AS mx, toFloat64(0) AS sm, toInt64(0) AS n", kinds)
	query := "SELECT area_code, kind, max(mx), sum(sm), toUInt64(sum(n)) FROM (" + stat + " UNION ALL " + maxima + ") GROUP BY area_code, kind"
	rows, err := q.conn.Query(ctx, query, append(args, more...)...)
	if err != nil {
		return nil, fmt.Errorf("query sensor rollups: %w", err)
	}
	defer rows.Close()
	out := map[string]Counts{}
	for rows.Next() {
		var area, kind string
		var st Stat
		if err := rows.Scan(&area, &kind, &st.Max, &st.Sum, &st.N); err != nil {
			return nil, fmt.Errorf("read sensor rollups: %w", err)
		}
		c := out[area]
		if kind == "pm25" {
			c.PM25 = st
		} else {
			c.WaterLevel = st
		}
		out[area] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sensor rollups: %w", err)
	}
	return out, nil
}

// rollupUnion builds a query over table's hour rollup for the whole hours
// from start and its minute rollup for the partial first hour.
func (q querier) rollupUnion(s scope, start time.Time, table, columns, outer, tail string) (string, []any) {
	hour := start.Truncate(time.Hour)
	if hour.Before(start) {
		hour = hour.Add(time.Hour)
	}
	f1, args := s.filter([]any{s.h.Name(), chstore.Time(hour)})
	args = append(args, s.h.Name(), chstore.Time(start), chstore.Time(hour))
	f2, args := s.filter(args)
	return outer + ` FROM (
		SELECT ` + columns + ` FROM ` + q.db + `.` + table + `_hour WHERE hierarchy = ? AND t >= ?` + f1 + `
		UNION ALL
		SELECT ` + columns + ` FROM ` + q.db + `.` + table + `_minute WHERE hierarchy = ? AND t >= ? AND t < ?` + f2 + `
	) ` + tail, args
}
