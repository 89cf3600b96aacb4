package report

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/rollup"
)

// Closed is a close of a period: its figures frozen for official reporting.
type Closed struct {
	Period   string    `json:"period"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	ClosedBy string    `json:"closed_by"`
	ClosedAt time.Time `json:"closed_at"`
	Note     string    `json:"note"`
	Figures  int       `json:"figures,omitempty"`
}

// The actions of the audit trail.
const (
	ActionClose  = "close"
	ActionReopen = "reopen"
)

// The states of a period that has an audit trail.
const (
	StateClosed = "closed"
	StateOpen   = "open" // reopened: no figures are official until it closes again
)

// AuditEntry is one close or reopening of a period.
type AuditEntry struct {
	Action string    `json:"action"` // ActionClose or ActionReopen
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	// Note is the close's note, or the reopening's reason.
	Note string `json:"note"`
	// Figures is how many figures the close froze, or how many the
	// reopening withdrew from official use.
	Figures int `json:"figures"`
	// Forced is a close of a period without records, asked with force.
	Forced bool `json:"forced"`
}

// PeriodRecord is a period that has been closed at least once: its latest
// close, whether that close is in force, and every close and reopening.
type PeriodRecord struct {
	Closed
	State string       `json:"state"` // StateClosed or StateOpen
	Audit []AuditEntry `json:"audit"` // oldest first
}

// Frozen is a unit's closed figure beside its live one.
type Frozen struct {
	Area   string `json:"area"`
	Name   string `json:"name"`
	KPI    string `json:"kpi"`
	Closed Value  `json:"closed"`
	Live   Value  `json:"live"`
	// Drift is the live value less the closed one: how far corrections
	// made since have moved the figure.
	Drift any `json:"drift"`
}

// ClosedFigures are a close's figures for a unit and its children.
type ClosedFigures struct {
	Closed
	// Superseded is a close the period was reopened after: its figures
	// are kept for the record but are no longer official.
	Superseded bool     `json:"superseded"`
	Area       string   `json:"area"`
	Items      []Frozen `json:"items"`
}

// official lists the indicators a close freezes: the dossier and feedback
// ones, which official reports carry.
func official() []aggregate.Definition {
	var out []aggregate.Definition
	for _, d := range aggregate.Catalog() {
		if !d.History {
			continue
		}
		ok := true
		for _, s := range d.Sources {
			ok = ok && (s == aggregate.SourceDossierFlow || s == aggregate.SourceFeedback)
		}
		if ok {
			out = append(out, d)
		}
	}
	return out
}

// officialSources are the sources of the official indicators.
var officialSources = []aggregate.Source{aggregate.SourceDossierFlow, aggregate.SourceFeedback}

// officialCounts sums the official figures over r for every unit under
// codes (all when nil), each unit over its whole subtree.
func (e *Engine) officialCounts(ctx context.Context, codes []string, r Range) (map[string]aggregate.Counts, error) {
	return e.rolledUp(ctx, officialSources, true, codes, r, "subtrees", func(code string) []string {
		var out []string
		for _, u := range e.h.Ancestors(code) {
			out = append(out, u.Code)
		}
		return append(out, code)
	})
}

// recorded reports whether anything of the hierarchy is stamped in r: a
// dossier's contribution (a receipt, a closure, a turn to late) or a
// feedback item received or handled. Summed over r the receipts and
// resolutions are never negative, and without receipts the open and
// late-open changes are closures and turns to late alone, so the sums are
// all zero exactly when there is nothing.
func (e *Engine) recorded(ctx context.Context, r Range) (bool, error) {
	deltas := map[rollup.Cell][2]int64{}
	cells, err := e.sum(ctx, officialSources, e.ask(nil, r, none), deltas)
	if err != nil {
		return false, err
	}
	for _, n := range cells {
		if n.Received+n.Resolved+n.FeedbackReceived+n.FeedbackResolved > 0 {
			return true, nil
		}
	}
	for _, d := range deltas {
		if d != [2]int64{} {
			return true, nil
		}
	}
	return false, nil
}

// Close freezes every official indicator of every unit for p. A period
// with no records is refused unless force is set: its figures would all be
// 0, which is more often data that never arrived than a quiet month.
func (e *Engine) Close(ctx context.Context, p Period, by, note string, force bool) (Closed, error) {
	if now := e.now(); p.To.After(now) {
		return Closed{}, limitf("period %s ends at %s; it can be closed once it has ended", p.Name, p.To.Format(time.RFC3339))
	}
	unlock, err := e.lock.Lock(ctx, e.db+".period_audit")
	if err != nil {
		return Closed{}, fmt.Errorf("lock the periods' audit trail: %w", err)
	}
	defer unlock()
	rec, err := e.record(ctx, p.Name)
	if err != nil {
		return Closed{}, err
	}
	if rec != nil && rec.State == StateClosed {
		return Closed{}, &ConflictError{fmt.Sprintf("period %s was closed by %s at %s; an admin may reopen it with POST /api/v1/periods/%s/reopen and a reason",
			p.Name, rec.ClosedBy, rec.ClosedAt.Format(time.RFC3339), p.Name)}
	}
	has, err := e.recorded(ctx, p.Range)
	if err != nil {
		return Closed{}, err
	}
	if !has && !force {
		return Closed{}, limitf("period %s has no records in %s: no dossier was received, resolved or turned late in it and no citizen feedback "+
			"was received or handled, so every figure would be 0; check that its data has been ingested, or close it anyway with force=true "+
			"(POST /api/v1/periods/%s/close?force=true)", p.Name, e.h.Name(), p.Name)
	}
	counts, err := e.officialCounts(ctx, nil, p.Range)
	if err != nil {
		return Closed{}, err
	}
	at := e.stamp(rec)
	batch, err := e.conn.PrepareBatch(e.official(ctx), "INSERT INTO "+e.db+".period_figures (hierarchy, period, closed_at, area_code, kpi, value, numerator, denominator)")
	if err != nil {
		return Closed{}, fmt.Errorf("prepare insert into period_figures: %w", err)
	}
	n := 0
	defs := official()
	for _, u := range e.h.Select("", "") {
		for _, d := range defs {
			v, _ := d.Parts(counts[u.Code])
			if err := batch.Append(e.h.Name(), p.Name, at, u.Code, d.ID, v.Value, v.Num, v.Den); err != nil {
				batch.Abort()
				return Closed{}, fmt.Errorf("append to period_figures batch: %w", err)
			}
			n++
		}
	}
	if err := batch.Send(); err != nil {
		return Closed{}, officialErr(p, fmt.Errorf("insert batch into period_figures: %w", err))
	}
	entry := AuditEntry{Action: ActionClose, By: by, At: at, Note: note, Figures: n, Forced: !has}
	if err := e.audit(ctx, p, entry); err != nil {
		return Closed{}, officialErr(p, err)
	}
	return Closed{Period: p.Name, From: p.From, To: p.To, ClosedBy: by, ClosedAt: at.In(e.loc), Note: note, Figures: n}, nil
}

// Reopen withdraws the close in force of p: its figures stop being
// official (they stay readable, superseded), live figures are the
// period's only ones again, and a later close freezes new figures. reason
// is required: a reopened official report must say why.
func (e *Engine) Reopen(ctx context.Context, p Period, by, reason string) (PeriodRecord, error) {
	if strings.TrimSpace(reason) == "" {
		return PeriodRecord{}, invalidf(`a reason is required to reopen period %s: send {"reason": "…"} saying why its official figures are withdrawn`, p.Name)
	}
	unlock, err := e.lock.Lock(ctx, e.db+".period_audit")
	if err != nil {
		return PeriodRecord{}, fmt.Errorf("lock the periods' audit trail: %w", err)
	}
	defer unlock()
	rec, err := e.record(ctx, p.Name)
	if err != nil {
		return PeriodRecord{}, err
	}
	switch {
	case rec == nil:
		return PeriodRecord{}, &ConflictError{fmt.Sprintf("period %s has never been closed, so there is nothing to reopen; GET /api/v1/periods lists the closed periods", p.Name)}
	case rec.State != StateClosed:
		last := rec.Audit[len(rec.Audit)-1]
		return PeriodRecord{}, &ConflictError{fmt.Sprintf("period %s is not closed: %s reopened it at %s; only a closed period can be reopened (POST /api/v1/periods/%s/close closes it)",
			p.Name, last.By, last.At.Format(time.RFC3339), p.Name)}
	}
	entry := AuditEntry{Action: ActionReopen, By: by, At: e.stamp(rec), Note: reason, Figures: rec.Figures}
	if err := e.audit(ctx, p, entry); err != nil {
		return PeriodRecord{}, officialErr(p, err)
	}
	entry.At = entry.At.In(e.loc)
	rec.State = StateOpen
	rec.Audit = append(rec.Audit, entry)
	return *rec, nil
}

// officialErr says how to go on when a close or reopen was refused because
// a replica that must hold official figures is down.
func officialErr(p Period, err error) error {
	if chstore.QuorumRefused(err) {
		return fmt.Errorf("period %s: official figures are written to every replica of the cluster's first shard, and one is down (%w); "+
			"start it and try again: nothing of this attempt counts", p.Name, err)
	}
	return err
}

// stamp is the time of a new audit entry: now, to the second, and after
// the period's latest entry, so that entries keep their order and never
// share a key.
func (e *Engine) stamp(rec *PeriodRecord) time.Time {
	at := e.now().UTC().Truncate(time.Second)
	if rec != nil {
		if last := rec.Audit[len(rec.Audit)-1].At; !at.After(last) {
			at = last.UTC().Add(time.Second)
		}
	}
	return at
}

// audit adds an entry to p's audit trail.
func (e *Engine) audit(ctx context.Context, p Period, a AuditEntry) error {
	b, err := e.conn.PrepareBatch(e.official(ctx), "INSERT INTO "+e.db+".period_audit (hierarchy, period, at, action, from_t, to_t, actor, note, figures, forced)")
	if err != nil {
		return fmt.Errorf("prepare insert into period_audit: %w", err)
	}
	forced := uint8(0)
	if a.Forced {
		forced = 1
	}
	if err := b.Append(e.h.Name(), p.Name, a.At.UTC(), a.Action, p.From.UTC(), p.To.UTC(), a.By, a.Note, uint32(a.Figures), forced); err != nil {
		b.Abort()
		return fmt.Errorf("append to period_audit batch: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into period_audit: %w", err)
	}
	return nil
}

// Periods lists every period that has been closed, newest first, each
// with its audit trail.
func (e *Engine) Periods(ctx context.Context) ([]PeriodRecord, error) {
	return e.periods(ctx, "")
}

// record is one period's record, nil when it has never been closed.
func (e *Engine) record(ctx context.Context, period string) (*PeriodRecord, error) {
	all, err := e.periods(ctx, period)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	return &all[0], nil
}

// periods reads the audit trail of one period, or of all when period is
// empty.
func (e *Engine) periods(ctx context.Context, period string) ([]PeriodRecord, error) {
	where, args := "hierarchy = ?", []any{e.h.Name()}
	if period != "" {
		where, args = where+" AND period = ?", append(args, period)
	}
	out := []PeriodRecord{}
	err := e.query(ctx, "periods' audit trail", `SELECT period, from_t, to_t, at, action, actor, note, figures, forced
		FROM `+e.db+`.period_audit FINAL WHERE `+where+` ORDER BY from_t DESC, to_t DESC, period, at`, args,
		func(scan func(...any) error) error {
			var name string
			var from, to time.Time
			var a AuditEntry
			var figures uint32
			var forced uint8
			if err := scan(&name, &from, &to, &a.At, &a.Action, &a.By, &a.Note, &figures, &forced); err != nil {
				return err
			}
			a.At, a.Figures, a.Forced = a.At.In(e.loc), int(figures), forced == 1
			if len(out) == 0 || out[len(out)-1].Period != name {
				out = append(out, PeriodRecord{Closed: Closed{Period: name, From: from.In(e.loc), To: to.In(e.loc)}})
			}
			r := &out[len(out)-1]
			r.Audit = append(r.Audit, a)
			switch a.Action {
			case ActionClose:
				r.State, r.ClosedBy, r.ClosedAt, r.Note, r.Figures = StateClosed, a.By, a.At, a.Note, a.Figures
			case ActionReopen:
				r.State = StateOpen
			}
			return nil
		})
	return out, err
}

// closeOf finds the close of period whose figures Figures reads: the one
// in force when at is zero, else the one made at at, in force or not.
func (e *Engine) closeOf(ctx context.Context, period string, at time.Time) (Closed, bool, error) {
	rec, err := e.record(ctx, period)
	if err != nil {
		return Closed{}, false, err
	}
	if rec == nil {
		return Closed{}, false, notFoundf("period %s has not been closed; POST /api/v1/periods/%s/close closes it", period, period)
	}
	if at.IsZero() {
		if rec.State != StateClosed {
			last := rec.Audit[len(rec.Audit)-1]
			return Closed{}, false, notFoundf("period %s has no official figures: %s reopened it at %s (%s); POST /api/v1/periods/%s/close closes it again, "+
				"and closed_at=%s reads the figures of its last close", period, last.By, last.At.Format(time.RFC3339), last.Note, period,
				rec.ClosedAt.Format(time.RFC3339))
		}
		return rec.Closed, false, nil
	}
	var closes []string
	for i, a := range rec.Audit {
		if a.Action != ActionClose {
			continue
		}
		if a.At.Equal(at) {
			c := rec.Closed
			c.ClosedBy, c.ClosedAt, c.Note, c.Figures = a.By, a.At, a.Note, a.Figures
			return c, i < len(rec.Audit)-1, nil
		}
		closes = append(closes, a.At.Format(time.RFC3339))
	}
	return Closed{}, false, notFoundf("period %s was not closed at %s; its closes were at %s (GET /api/v1/periods lists them)",
		period, at.In(e.loc).Format(time.RFC3339), strings.Join(closes, ", "))
}

// Figures returns a close's figures for area and its children (the
// top-level units when area is empty), beside the live figures of the same
// period: the close in force when at is zero, else the close made at at.
func (e *Engine) Figures(ctx context.Context, period, area string, at time.Time) (ClosedFigures, error) {
	c, superseded, err := e.closeOf(ctx, period, at)
	if err != nil {
		return ClosedFigures{}, err
	}
	var u geo.Unit
	var units, codes []string
	if area == "" {
		for _, r := range e.h.Roots() {
			units = append(units, r.Code)
		}
	} else {
		if u, err = e.unit(area); err != nil {
			return ClosedFigures{}, err
		}
		units = append([]string{u.Code}, e.h.ChildCodes(u.Code)...)
		codes = e.h.Subtree(u.Code)
	}
	frozen := map[[2]string]Value{}
	err = e.query(ctx, "closed figures", `SELECT area_code, kpi, value, numerator, denominator
		FROM `+e.db+`.period_figures FINAL WHERE hierarchy = ? AND period = ? AND closed_at = ? AND area_code IN ?`,
		[]any{e.h.Name(), period, chstore.Time(c.ClosedAt), chstore.In(units)}, func(scan func(...any) error) error {
			var area, kpi string
			var v Value
			if err := scan(&area, &kpi, &v.Value, &v.Numerator, &v.Denominator); err != nil {
				return err
			}
			frozen[[2]string{area, kpi}] = v
			return nil
		})
	if err != nil {
		return ClosedFigures{}, err
	}
	live, err := e.officialCounts(ctx, codes, Range{c.From, c.To})
	if err != nil {
		return ClosedFigures{}, err
	}
	out := ClosedFigures{Closed: c, Superseded: superseded, Area: u.Code, Items: []Frozen{}}
	defs := official()
	for _, code := range units {
		unit, _ := e.h.Unit(code)
		for _, d := range defs {
			was, ok := frozen[[2]string{code, d.ID}]
			if !ok {
				continue // an indicator added since the close
			}
			p, _ := d.Parts(live[code])
			out.Items = append(out.Items, Frozen{Area: code, Name: unit.Name, KPI: d.ID, Closed: was, Live: valueOf(p),
				Drift: change(p.Value, was.Value)})
		}
	}
	slices.SortStableFunc(out.Items, func(a, b Frozen) int {
		if a.Area == u.Code && b.Area != u.Code {
			return -1
		}
		if b.Area == u.Code && a.Area != u.Code {
			return 1
		}
		return 0
	})
	return out, nil
}
