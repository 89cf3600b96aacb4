package alarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Errors of rule changes.
var (
	ErrRuleNotFound = errors.New("no such rule")
	ErrReadOnly     = errors.New("rule comes from the rules file")
)

// InvalidRuleError is a rule refused for what it says.
type InvalidRuleError struct{ Err error }

func (e *InvalidRuleError) Error() string { return e.Err.Error() }
func (e *InvalidRuleError) Unwrap() error { return e.Err }

type storedRule struct {
	body    string
	deleted bool
}

func (e *Engine) apiRules(ctx context.Context) (map[string]storedRule, error) {
	rows, err := e.conn.Query(ctx, `SELECT rule_id, argMax(body, version), argMax(deleted, version)
		FROM `+e.db+`.alarm_rules GROUP BY rule_id`)
	if err != nil {
		return nil, fmt.Errorf("query alarm_rules: %w", err)
	}
	defer rows.Close()
	out := map[string]storedRule{}
	for rows.Next() {
		var id string
		var s storedRule
		var del uint8
		if err := rows.Scan(&id, &s.body, &del); err != nil {
			return nil, fmt.Errorf("read alarm_rules: %w", err)
		}
		s.deleted = del == 1
		out[id] = s
	}
	return out, rows.Err()
}

// Rules returns the rules in force, by id: the file's (or the defaults),
// with the defaults changed or removed through the API, and the API's own.
func (e *Engine) Rules(ctx context.Context) ([]Rule, error) {
	stored, err := e.apiRules(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]Rule{}
	for _, r := range e.base {
		byID[r.ID] = r
	}
	for id, s := range stored {
		if b, ok := byID[id]; ok && b.Source == "file" {
			continue // the file wins; the API refuses to change its rules
		}
		if s.deleted {
			delete(byID, id)
			continue
		}
		var r Rule
		if err := json.Unmarshal([]byte(s.body), &r); err != nil {
			e.logger.Warn("stored rule does not decode; ignored", "rule", id, "err", err)
			continue
		}
		r.ID, r.Source = id, "api"
		byID[id] = r
	}
	out := make([]Rule, 0, len(byID))
	for _, r := range byID {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// PutRule creates or replaces a rule. created says the id was new.
func (e *Engine) PutRule(ctx context.Context, r Rule, by string) (Rule, bool, error) {
	r.Source = "api"
	if r.Name == "" {
		r.Name = r.ID
	}
	hasArea := func(c string) bool { _, ok := e.h.Unit(c); return ok }
	if err := r.Check(e.cfg.SensorKinds, e.cfg.EventTypes, hasArea); err != nil {
		return r, false, &InvalidRuleError{err}
	}
	rules, err := e.Rules(ctx)
	if err != nil {
		return r, false, err
	}
	created := true
	for _, old := range rules {
		if old.ID == r.ID {
			if old.Source == "file" {
				return r, false, fmt.Errorf("%w: edit the file named by IOC_RULES_FILE to change %s", ErrReadOnly, r.ID)
			}
			created = false
		}
	}
	body, err := json.Marshal(r)
	if err != nil {
		return r, false, fmt.Errorf("encode rule: %w", err)
	}
	if err := e.writeRule(ctx, r.ID, string(body), false, by); err != nil {
		return r, false, err
	}
	e.MarkDirty()
	return r, created, nil
}

// DeleteRule removes a rule; its open alarms resolve as rule_removed.
func (e *Engine) DeleteRule(ctx context.Context, id, by string) error {
	rules, err := e.Rules(ctx)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if r.ID != id {
			continue
		}
		if r.Source == "file" {
			return fmt.Errorf("%w: edit the file named by IOC_RULES_FILE to remove %s", ErrReadOnly, id)
		}
		if err := e.writeRule(ctx, id, "", true, by); err != nil {
			return err
		}
		e.MarkDirty()
		return nil
	}
	return fmt.Errorf("%w %q", ErrRuleNotFound, id)
}

func (e *Engine) writeRule(ctx context.Context, id, body string, deleted bool, by string) error {
	b, err := e.conn.PrepareBatch(ctx, `INSERT INTO `+e.db+`.alarm_rules (rule_id, body, deleted, updated_at, updated_by, version)`)
	if err != nil {
		return fmt.Errorf("prepare insert into alarm_rules: %w", err)
	}
	del := uint8(0)
	if deleted {
		del = 1
	}
	now := e.now().UTC()
	if err := b.Append(id, body, del, now.Truncate(time.Second), by, uint64(now.UnixNano())); err != nil {
		b.Abort()
		return fmt.Errorf("append to alarm_rules batch: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into alarm_rules: %w", err)
	}
	return nil
}
