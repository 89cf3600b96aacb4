// Package alarm owns rules and alarms: it evaluates threshold, event-count
// and offline rules against the stored readings, camera events and device
// reports, keeps one open alarm per rule and device through its lifecycle
// (open → acknowledged → resolved), stores every change in ClickHouse and
// publishes the alarms/{area} topics.
//
// Every change, whether from an evaluation or an operator, happens under
// the lease "<database>.alarms", after reading the current state from
// ClickHouse, so nodes sharing one database never open an alarm twice; its
// alarms/ messages carry that lease's token in their version.
//
// Concurrency: an Engine is safe for concurrent use; Run is called once and
// owns the evaluation loop until its context ends.
package alarm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/openioc/ioc/internal/chstore"
)

// States of an alarm.
const (
	Open         = "open"
	Acknowledged = "acknowledged"
	Resolved     = "resolved"
)

// States lists the states in lifecycle order.
var States = []string{Open, Acknowledged, Resolved}

// Alarm is one alarm with its whole lifecycle.
type Alarm struct {
	ID             string     `json:"id"`
	RuleID         string     `json:"rule_id"`
	RuleName       string     `json:"rule_name"`
	RuleKind       string     `json:"rule_kind"`
	DeviceID       string     `json:"device_id"`
	DeviceKind     string     `json:"device_kind"`
	DeviceName     string     `json:"device_name"`
	Hierarchy      string     `json:"hierarchy"`
	AreaCode       string     `json:"area_code"`
	Lat            float64    `json:"lat"`
	Lon            float64    `json:"lon"`
	Severity       string     `json:"severity"`
	State          string     `json:"state"`
	Message        string     `json:"message"`
	Value          float64    `json:"value"`
	Threshold      float64    `json:"threshold"`
	OpenedAt       time.Time  `json:"opened_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
	AcknowledgedBy string     `json:"acknowledged_by,omitempty"`
	AckNote        string     `json:"ack_note,omitempty"`
	ResolvedAt     *time.Time `json:"resolved_at"`
	ResolvedBy     string     `json:"resolved_by,omitempty"`
	ResolveNote    string     `json:"resolve_note,omitempty"`
	// Resolution says how it ended: cleared (the condition cleared),
	// manual (an operator resolved it) or rule_removed.
	Resolution string    `json:"resolution,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
	Version    uint64    `json:"-"`
}

func (a Alarm) key() string { return a.RuleID + "\x00" + a.DeviceID }

// Errors of the lifecycle.
var (
	ErrNotFound = errors.New("no such alarm")
	ErrState    = errors.New("alarm is in the wrong state")
)

const alarmColumns = `alarm_id, rule_id, rule_name, rule_kind, device_id, device_kind, device_name, hierarchy, area_code,
	lat, lon, toString(severity), toString(state), message, value, threshold, opened_at, acknowledged_at, acknowledged_by,
	ack_note, resolved_at, resolved_by, resolve_note, resolution, updated_at, version`

// queryAlarms reads the current state of the alarms matching where, newest
// first; limit 0 means all.
func (e *Engine) queryAlarms(ctx context.Context, where string, limit int, args ...any) ([]Alarm, error) {
	tail := ""
	if limit > 0 {
		tail = fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := e.conn.Query(ctx, `SELECT `+alarmColumns+` FROM `+e.db+`.alarms FINAL WHERE `+where+
		` ORDER BY opened_at DESC, alarm_id`+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("query alarms: %w", err)
	}
	defer rows.Close()
	var out []Alarm
	for rows.Next() {
		var a Alarm
		if err := rows.Scan(&a.ID, &a.RuleID, &a.RuleName, &a.RuleKind, &a.DeviceID, &a.DeviceKind, &a.DeviceName,
			&a.Hierarchy, &a.AreaCode, &a.Lat, &a.Lon, &a.Severity, &a.State, &a.Message, &a.Value, &a.Threshold,
			&a.OpenedAt, &a.AcknowledgedAt, &a.AcknowledgedBy, &a.AckNote, &a.ResolvedAt, &a.ResolvedBy, &a.ResolveNote, &a.Resolution,
			&a.UpdatedAt, &a.Version); err != nil {
			return nil, fmt.Errorf("read alarms: %w", err)
		}
		a.OpenedAt, a.UpdatedAt = a.OpenedAt.In(e.loc), a.UpdatedAt.In(e.loc)
		for _, t := range []**time.Time{&a.AcknowledgedAt, &a.ResolvedAt} {
			if *t != nil {
				local := (*t).In(e.loc)
				*t = &local
			}
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read alarms: %w", err)
	}
	return out, nil
}

func (e *Engine) writeAlarms(ctx context.Context, as []Alarm) error {
	b, err := e.conn.PrepareBatch(ctx, `INSERT INTO `+e.db+`.alarms (alarm_id, rule_id, rule_name, rule_kind, device_id,
		device_kind, device_name, hierarchy, area_code, lat, lon, severity, state, message, value, threshold, opened_at,
		acknowledged_at, acknowledged_by, ack_note, resolved_at, resolved_by, resolve_note, resolution, updated_at, version)`)
	if err != nil {
		return fmt.Errorf("prepare insert into alarms: %w", err)
	}
	for _, a := range as {
		if err := b.Append(a.ID, a.RuleID, a.RuleName, a.RuleKind, a.DeviceID, a.DeviceKind, a.DeviceName, a.Hierarchy,
			a.AreaCode, a.Lat, a.Lon, a.Severity, a.State, a.Message, a.Value, a.Threshold, a.OpenedAt,
			a.AcknowledgedAt, a.AcknowledgedBy, a.AckNote, a.ResolvedAt, a.ResolvedBy, a.ResolveNote, a.Resolution, a.UpdatedAt, a.Version); err != nil {
			b.Abort()
			return fmt.Errorf("append to alarms batch: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into alarms: %w", err)
	}
	return nil
}

// Query selects alarms for a list.
type Query struct {
	Areas  []string  // subtrees to include; nil: all
	States []string  // empty: all
	From   time.Time // opened at or after; zero: no bound
	To     time.Time // opened before; zero: no bound
	Limit  int       // default 500
}

// List returns the alarms matching q, newest first.
func (e *Engine) List(ctx context.Context, q Query) ([]Alarm, error) {
	where, args := "hierarchy = ?", []any{e.h.Name()}
	if q.Areas != nil {
		var codes []string
		for _, a := range q.Areas {
			codes = append(codes, e.h.Subtree(a)...)
		}
		if len(codes) == 0 {
			return []Alarm{}, nil
		}
		where += " AND area_code IN ?"
		args = append(args, chstore.In(codes))
	}
	if len(q.States) > 0 {
		where += " AND state IN ?"
		args = append(args, chstore.In(q.States))
	}
	if !q.From.IsZero() {
		where += " AND opened_at >= ?"
		args = append(args, chstore.Time(q.From))
	}
	if !q.To.IsZero() {
		where += " AND opened_at < ?"
		args = append(args, chstore.Time(q.To))
	}
	if q.Limit <= 0 {
		q.Limit = 500
	}
	out, err := e.queryAlarms(ctx, where, q.Limit, args...)
	if out == nil {
		out = []Alarm{}
	}
	return out, err
}

// Get returns one alarm.
func (e *Engine) Get(ctx context.Context, id string) (Alarm, error) {
	as, err := e.queryAlarms(ctx, "alarm_id = ?", 1, id)
	if err != nil {
		return Alarm{}, err
	}
	if len(as) == 0 {
		return Alarm{}, fmt.Errorf("%w %q", ErrNotFound, id)
	}
	return as[0], nil
}

// OpenCounts returns, per unit, the alarms not yet resolved filed directly
// under it.
func (e *Engine) OpenCounts(ctx context.Context) (map[string]uint64, error) {
	out, err := chstore.CountsByKey(ctx, e.conn, `SELECT area_code, count() FROM `+e.db+`.alarms FINAL
		WHERE hierarchy = ? AND state != 'resolved' GROUP BY area_code`, e.h.Name())
	if err != nil {
		return nil, fmt.Errorf("count open alarms: %w", err)
	}
	return out, nil
}
