package aggregate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/rollup"
	"github.com/openioc/ioc/topic"
)

// DirtyTopic is the bus topic on which a node that does not hold the
// aggregate lease tells the one that does which units' device or alarm
// counts changed. It is internal: no screen may subscribe to it.
const DirtyTopic = string(topic.AggregateDirty)

// DeltaTopic is the internal bus topic on which a node that does not hold
// the aggregate lease forwards to the one that does what its writers added
// to the rollups (rollup.Delta), at most maxForwardRows rows a message. A
// lost message is not sent again: the holder's next check reads the rows.
const DeltaTopic = string(topic.AggregateDelta)

// TermTopic is the internal bus topic on which the node holding the
// aggregate lease says it has republished every topic: while the bus's
// latest value of it is missing (Redis restarted, no node has taken over
// yet), screens may be served figures computed on the spot.
const TermTopic = string(topic.AggregateTerm)

type dirtyMessage struct {
	Hierarchy string   `json:"hierarchy"`
	Codes     []string `json:"codes"`
	// Extras says the extra figures changed (MarkExtras).
	Extras bool `json:"extras,omitempty"`
}

type deltaMessage struct {
	Deltas []rollup.Delta `json:"deltas"`
}

// errLost ends a term whose lease was lost.
var errLost = errors.New("the aggregate lease was lost")

const (
	// maxForwardRows bounds the rows of one DeltaTopic message (some
	// hundred kilobytes), and maxOutboxRows those waiting to be forwarded:
	// beyond, deltas are dropped and the holder's next check reads them.
	maxForwardRows = 1000
	maxOutboxRows  = 100_000

	// sendChunk is about how many snapshots go to the bus at once,
	// between which topics asked for again jump the queue.
	sendChunk = 500
)

// MarkDirty notes that units' device or alarm counts changed: the node
// holding the lease reads those counts again soon (at most once per
// Debounce) and publishes what changed; another node forwards the units to
// it. Records need not be marked: their figures come with the writers'
// deltas (Added). It never blocks.
func (a *Aggregator) MarkDirty(hierarchy string, codes []string) {
	if hierarchy != a.h.Name() {
		return // only the current hierarchy is live on screens
	}
	now := time.Now()
	a.mu.Lock()
	for _, c := range codes {
		if _, ok := a.dirty[c]; !ok {
			a.dirty[c] = now
		}
	}
	a.dirtyCurrent = true
	a.mu.Unlock()
	a.poke()
}

// Forwarded takes a DirtyTopic payload from the bus: on the node holding
// the lease, its units are marked as if their counts changed here; other
// nodes ignore it. It never blocks.
func (a *Aggregator) Forwarded(payload []byte) {
	if !a.leading.Load() {
		return
	}
	var m dirtyMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		a.logger.Warn("malformed message on "+DirtyTopic, "err", err)
		return
	}
	a.MarkDirty(m.Hierarchy, m.Codes)
	if m.Extras {
		a.MarkExtras()
	}
}

// MarkExtras notes that the extra figures (Extras) changed: the node
// holding the lease reads them again soon (at most once per Debounce) and
// publishes what changed; another node tells it over the bus. It never
// blocks.
func (a *Aggregator) MarkExtras() {
	if a.x == nil {
		return
	}
	a.mu.Lock()
	a.dirtyExtras = true
	a.mu.Unlock()
	a.poke()
}

// Added takes what a writer of this node added to the rollups, once it is
// stored (ingest's Notifier): the node holding the lease advances its
// figures by it, another forwards it to that node. It never blocks.
func (a *Aggregator) Added(d rollup.Delta) {
	a.mu.Lock()
	switch {
	case a.leading.Load():
		a.take(d, time.Now())
	case a.outboxRows+d.Rows() <= maxOutboxRows:
		a.outbox = append(a.outbox, d)
		a.outboxRows += d.Rows()
	default:
		a.m.deltas.WithLabelValues("dropped").Inc()
	}
	a.mu.Unlock()
	a.poke()
}

// ForwardedDeltas takes a DeltaTopic payload from the bus: the node holding
// the lease advances its figures by the deltas as if its own writers had
// stored them; other nodes ignore it. It never blocks.
func (a *Aggregator) ForwardedDeltas(payload []byte) {
	if !a.leading.Load() {
		return
	}
	var m deltaMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		a.logger.Warn("malformed message on "+DeltaTopic, "err", err)
		return
	}
	now := time.Now()
	a.mu.Lock()
	if a.leading.Load() {
		for _, d := range m.Deltas {
			a.take(d, now)
		}
	}
	a.mu.Unlock()
	a.poke()
}

func (a *Aggregator) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// take applies a delta on the node holding the lease; a.mu is held. A
// delta that arrives while a check reads is kept, to be settled against
// that read once it is in; one that arrives before the term's first check
// began is in that check's read.
func (a *Aggregator) take(d rollup.Delta, at time.Time) {
	a.m.deltas.WithLabelValues("taken").Inc()
	a.taken++
	if a.checking {
		a.inflight = append(a.inflight, d)
	}
	if a.state == nil {
		return
	}
	a.note(a.state.apply(d, a.h, a.now()), at)
}

// note records what applying a delta did; a.mu is held.
func (a *Aggregator) note(r applied, at time.Time) {
	for code := range r.touched {
		if _, ok := a.dirty[code]; !ok {
			a.dirty[code] = at
		}
	}
	for code := range r.overdue {
		a.dirtyOverdue[code] = true
	}
	if r.unsettled {
		a.recheck, a.unsettled = true, true
		a.m.deltas.WithLabelValues("unsettled").Inc()
	}
	for _, bt := range r.marked {
		a.arrived[bt] = true
		if a.pending != nil {
			delete(a.pending.waiting, bt)
		}
	}
}

// term is one tenure as the node that publishes figures: its lease and the
// versions stamped with the lease's token.
type term struct {
	lease    *lease.Lease
	versions *bus.Versions
	// announced is set once every topic went out in this term and
	// TermTopic said so.
	announced bool
}

// Run keeps published snapshots current until ctx ends. One node at a time
// does it, the one holding the aggregate lease: when it takes the lease it
// reads every figure and republishes every topic; then it advances the
// figures by the writers' deltas and publishes the units they changed, at
// most once per Debounce; every RefreshInterval it reads every figure again
// (windows slide, due dates pass, and whatever a delta missed is corrected)
// and publishes what changed. It stops publishing the moment the lease is
// lost. Other nodes forward their writers' deltas and marked units to it
// over the bus, and wait for the lease.
func (a *Aggregator) Run(ctx context.Context) error {
	won := make(chan *lease.Lease)
	var wg sync.WaitGroup // the election, and releases of lost leases
	defer wg.Wait()
	wg.Go(func() {
		lease.Campaign(ctx, a.leases, a.cfg.Lease, won, func(err error) {
			a.logger.Warn("cannot take part in electing the node that publishes figures; retrying", "err", err)
		})
	})

	refresh := time.NewTicker(a.cfg.RefreshInterval)
	defer refresh.Stop()

	var (
		t           *term
		termCtx     context.Context // ends with the term: publishing stops at once
		cancel      context.CancelFunc
		lastPublish time.Time
		debounce    <-chan time.Time // set while a publication waits for Debounce to pass
	)
	end := func() {
		cancel()
		a.mu.Lock()
		a.leading.Store(false)
		a.resetLive()
		a.mu.Unlock()
		a.m.leader.Set(0)
		// Releasing may wait for Redis; the next holder does not need it
		// to, since a lost lease lapses on its own.
		wg.Go(t.lease.Release)
		t, debounce = nil, nil
	}
	defer func() {
		if t != nil {
			end()
		}
	}()
	// fail ends the term when the error says another node may publish now;
	// other errors are retried by the next publication or refresh.
	fail := func(what string, err error) {
		if err == nil || ctx.Err() != nil {
			return
		}
		if termCtx.Err() != nil || errors.Is(err, errLost) || errors.Is(err, bus.ErrStale) || errors.Is(err, bus.ErrExhausted) {
			a.logger.Warn("stopped publishing figures; waiting for the lease again", "token", t.lease.Token(), "err", err)
			end()
			return
		}
		a.m.errors.Inc()
		a.logger.Warn(what+" failed; the next refresh catches up", "err", err)
	}
	publish := func() {
		lastPublish = a.now()
		fail("publishing changed figures", a.publishDirty(termCtx, t))
	}
	var marked <-chan struct{} // nil without marks: never ready
	if a.marks != nil {
		marked = a.marks.ready
	}
	for {
		var lost <-chan struct{}
		if t != nil {
			lost = t.lease.Lost()
		}
		select {
		case <-ctx.Done():
			return nil
		case l := <-won:
			if t != nil {
				end() // lost, and the election was quicker to say so
			}
			t = &term{lease: l, versions: bus.NewVersions(l.Token())}
			termCtx, cancel = context.WithCancel(ctx)
			tc, tcancel := termCtx, cancel
			wg.Go(func() {
				select {
				case <-l.Lost():
					tcancel()
				case <-tc.Done():
				}
			})
			lastPublish = a.now()
			fail("republishing every topic", a.takeOver(termCtx, t))
		case <-lost:
			a.logger.Warn("lost the aggregate lease; stopped publishing figures", "token", t.lease.Token())
			end()
		case <-marked:
			// Marked as if by MarkDirty, which wakes this loop again.
			units, extras := a.marks.take()
			for h, codes := range units {
				a.MarkDirty(h, codes)
			}
			if extras {
				a.MarkExtras()
			}
		case <-a.wake:
			if t == nil {
				a.forward(ctx)
				continue
			}
			if debounce != nil {
				continue // already waiting: this change goes out with it
			}
			if wait := a.cfg.Debounce - a.now().Sub(lastPublish); wait > 0 {
				debounce = a.after(min(wait, a.cfg.Debounce))
				continue
			}
			publish()
		case <-debounce:
			debounce = nil
			if t != nil {
				publish()
			}
		case <-refresh.C:
			if t != nil {
				lastPublish = a.now()
				fail("refresh", a.refresh(termCtx, t, "check"))
			}
			if t != nil && !t.announced {
				fail("announcing the republication", a.announce(termCtx, t))
			}
		}
	}
}

// resetLive forgets the live figures, outside a term; a.mu is held.
func (a *Aggregator) resetLive() {
	a.state, a.checking, a.inflight, a.pending = nil, false, nil, nil
	a.dirty, a.dirtyOverdue, a.dirtyCurrent, a.dirtyExtras = map[string]time.Time{}, map[string]bool{}, false, false
	a.recheck, a.unsettled, a.arrived = false, false, map[batchTable]bool{}
	a.asked = map[string]bool{}
}

// takeOver starts a term: every figure is read and every topic published
// again with the new token, so that screens and the bus's latest values
// hold this node's figures whatever the previous holder managed to publish.
// Deltas waiting to be forwarded are dropped: the read includes them.
func (a *Aggregator) takeOver(ctx context.Context, t *term) error {
	a.mu.Lock()
	a.resetLive()
	a.outbox, a.outboxRows = nil, 0
	a.leading.Store(true)
	a.mu.Unlock()
	a.m.leader.Set(1)
	a.m.takeovers.Inc()
	a.logger.Info("took the aggregate lease; republishing every topic", "token", t.lease.Token())
	clear(a.last)
	clear(a.bases)
	if err := a.refresh(ctx, t, "check"); err != nil {
		return err // the next refresh publishes what is missing, then announces
	}
	return a.announce(ctx, t)
}

// announce publishes TermTopic once every topic went out in this term:
// every topic has been published by the term when no figures differ from
// what it last sent.
func (a *Aggregator) announce(ctx context.Context, t *term) error {
	for _, code := range a.allCodes() {
		for _, w := range Windows {
			if _, ok := a.last[w.Topic(code)]; !ok {
				return nil // a refresh failed half-way: the next one completes it
			}
		}
	}
	if !t.lease.Held() {
		return errLost
	}
	v, err := t.versions.Next()
	if err != nil {
		return err
	}
	payload, _ := json.Marshal(struct {
		Token       uint64    `json:"token"`
		PublishedAt time.Time `json:"published_at"`
	}{t.lease.Token(), time.Now().UTC()})
	if err := a.pub.Publish(ctx, bus.Message{Topic: TermTopic, Version: v, Payload: payload}); err != nil {
		return fmt.Errorf("publish %s: %w", TermTopic, err)
	}
	t.announced = true
	return nil
}

// forward sends what this node's writers added, and the units marked
// here, to the node holding the lease; if a message is lost, that node's
// next check reads the rows anyway.
func (a *Aggregator) forward(ctx context.Context) {
	a.mu.Lock()
	dirty, outbox, extras := a.dirty, a.outbox, a.dirtyExtras
	a.dirty, a.dirtyCurrent, a.dirtyExtras = map[string]time.Time{}, false, false
	a.outbox, a.outboxRows = nil, 0
	a.mu.Unlock()
	var msgs []bus.Message
	if len(dirty) > 0 || extras {
		codes := slices.Sorted(maps.Keys(dirty))
		payload, err := json.Marshal(dirtyMessage{Hierarchy: a.h.Name(), Codes: codes, Extras: extras})
		if err == nil {
			msgs = append(msgs, bus.Message{Topic: DirtyTopic, Payload: payload})
		}
	}
	// Deltas go out packed, at most maxForwardRows rows a message.
	var batch []rollup.Delta
	rows := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if payload, err := json.Marshal(deltaMessage{Deltas: batch}); err == nil {
			msgs = append(msgs, bus.Message{Topic: DeltaTopic, Payload: payload})
		}
		batch, rows = nil, 0
	}
	for _, d := range outbox {
		for _, part := range d.Split(maxForwardRows) {
			if rows+part.Rows() > maxForwardRows {
				flush()
			}
			batch = append(batch, part)
			rows += part.Rows()
		}
	}
	flush()
	if len(msgs) == 0 {
		return
	}
	if err := a.pub.Publish(ctx, msgs...); err != nil && ctx.Err() == nil {
		a.logger.Warn("forward new records to the node publishing figures; its next check reads them",
			"units", len(dirty), "deltas", len(outbox), "err", err)
		return
	}
	a.m.deltas.WithLabelValues("forwarded").Add(float64(len(outbox)))
}

// refresh reads every figure again (check) and publishes every snapshot
// whose figures changed.
func (a *Aggregator) refresh(ctx context.Context, t *term, reason string) error {
	start := time.Now()
	if err := a.check(ctx, reason); err != nil {
		return err
	}
	if err := a.publish(ctx, t, a.allCodes()); err != nil {
		return err
	}
	a.m.recompute.WithLabelValues(reason).Observe(time.Since(start).Seconds())
	return nil
}

// check reads every unit's figures and makes them the live state. The
// deltas that arrived while it read are settled against its markers; what
// the read found that the deltas had not produced is counted as corrected.
func (a *Aggregator) check(ctx context.Context, reason string) error {
	a.mu.Lock()
	a.checking, a.inflight = true, nil
	recheck, overdue, current := a.recheck, a.dirtyOverdue, a.dirtyCurrent
	a.recheck, a.dirtyOverdue, a.dirtyCurrent = false, map[string]bool{}, false
	a.mu.Unlock()

	now := a.now()
	st := &liveState{at: now, spans: make([]rollup.Span, len(Windows))}
	for i, w := range Windows {
		st.spans[i] = spanOf(w, now, a.cfg.Location)
	}
	all := scope{h: a.h}
	read, err := a.q.readWindows(ctx, reason, all, st.spans, true)
	if err == nil {
		st.overdue, err = a.q.overdue(ctx, reason, all, now)
	}
	if err == nil {
		st.current, err = a.q.current(ctx, reason)
	}
	if err == nil {
		var xerr error
		if st.extras, xerr = a.readExtras(ctx, a.h, now); xerr != nil {
			// The datasets' figures are not the rollups': the last ones
			// read stay on screens rather than the whole check failing.
			a.logger.Warn("read the datasets' figures for the live snapshots; keeping the last read", "err", xerr)
			a.mu.Lock()
			if a.state != nil {
				st.extras = a.state.extras
			}
			a.dirtyExtras = true
			a.mu.Unlock()
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	inflight := a.inflight
	a.checking, a.inflight = false, nil
	if err != nil {
		// The state stays as it was, with the deltas already applied to it.
		a.recheck = a.recheck || recheck
		a.dirtyCurrent = a.dirtyCurrent || current
		maps.Copy(a.dirtyOverdue, overdue)
		return err
	}
	st.direct, st.markers = read.Direct, read.Markers
	old, arrived, unsettled := a.state, a.arrived, a.unsettled
	a.arrived, a.unsettled = map[batchTable]bool{}, false
	for _, d := range inflight {
		a.note(st.apply(d, a.h, now), time.Now())
	}
	if old != nil && old.spans[0] == st.spans[0] && !unsettled {
		a.compare(old, st, arrived)
	}
	a.state = st
	return nil
}

// pendingCorrection is a difference a check found while rows of batches
// whose deltas had not arrived were in its read: explained if they arrive
// (they were on their way), corrections if they never do.
type pendingCorrection struct {
	units   []string
	waiting map[batchTable]bool
}

// compare counts the units whose today figures a check found different
// from what the deltas had produced. Differences that deltas still on their
// way explain are not corrections; arrived are the batches whose deltas
// came since the previous check began to read. a.mu is held.
func (a *Aggregator) compare(old, cur *liveState, arrived map[batchTable]bool) {
	if p := a.pending; p != nil {
		a.pending = nil
		if len(p.waiting) > 0 {
			a.corrected(p.units, "rows were stored whose deltas never reached this node")
		}
	}
	diff := differing(old, cur, 0)
	if len(diff) == 0 {
		return
	}
	before := old.batches()
	waiting := map[batchTable]bool{}
	for bt := range cur.batches() {
		if !before[bt] && !arrived[bt] {
			waiting[bt] = true
		}
	}
	if len(waiting) == 0 {
		a.corrected(diff, "the stored figures differ from what the deltas produced")
		return
	}
	a.pending = &pendingCorrection{units: diff, waiting: waiting}
}

func (a *Aggregator) corrected(units []string, why string) {
	slices.Sort(units)
	a.m.corrections.Add(float64(len(units)))
	a.logger.Warn("a check corrected today's live figures: "+why, "units", len(units), "first", units[:min(5, len(units))])
}

// publishDirty publishes the units whose figures changed since the last
// publication: from the deltas applied, and after reading the overdue
// dossiers and the device and alarm counts of the units marked for them.
// When a delta could not be settled, or a new day began, it reads
// everything again instead.
func (a *Aggregator) publishDirty(ctx context.Context, t *term) error {
	start := time.Now()
	now := a.now()
	a.mu.Lock()
	st := a.state
	reason := ""
	switch {
	case st == nil:
		reason = "check" // the term's first check failed
	case a.recheck:
		reason = "recheck"
	case !Today.Start(now, a.cfg.Location).Equal(st.spans[0].Start):
		reason = "day"
	}
	if reason != "" {
		a.mu.Unlock()
		return a.refresh(ctx, t, reason)
	}
	overdue, current, extras := a.dirtyOverdue, a.dirtyCurrent, a.dirtyExtras
	a.dirtyOverdue, a.dirtyCurrent, a.dirtyExtras = map[string]bool{}, false, false
	a.mu.Unlock()

	if extras {
		x, err := a.readExtras(ctx, a.h, now)
		if err != nil {
			a.mu.Lock()
			a.dirtyExtras = true
			a.mu.Unlock()
			return fmt.Errorf("read the datasets' figures: %w", err)
		}
		a.mu.Lock()
		if a.state == st {
			// Every unit may have changed; publish sends only the topics
			// whose figures did.
			st.extras = x
			for _, code := range a.allCodes() {
				a.markAt(code, start)
			}
		}
		a.mu.Unlock()
	}

	if len(overdue) > 0 {
		codes := slices.Sorted(maps.Keys(overdue))
		over, err := a.q.overdue(ctx, "overdue", scope{h: a.h, codes: codes}, now)
		if err != nil {
			a.mu.Lock()
			maps.Copy(a.dirtyOverdue, overdue)
			a.mu.Unlock()
			return err
		}
		a.mu.Lock()
		if a.state == st {
			for _, c := range codes {
				if over[c] != st.overdue[c] {
					if over[c] == 0 {
						delete(st.overdue, c)
					} else {
						st.overdue[c] = over[c]
					}
					a.markAt(c, start)
				}
			}
		}
		a.mu.Unlock()
	}
	if current {
		cur, err := a.q.current(ctx, "current")
		if err != nil {
			a.mu.Lock()
			a.dirtyCurrent = true
			a.mu.Unlock()
			return err
		}
		a.mu.Lock()
		if a.state == st {
			for code := range cur {
				if presentCounts(cur[code]) != presentCounts(st.current[code]) {
					a.markAt(code, start)
				}
			}
			for code := range st.current {
				if _, ok := cur[code]; !ok {
					a.markAt(code, start)
				}
			}
			st.current = cur
		}
		a.mu.Unlock()
	}

	a.mu.Lock()
	a.markAsked(start)
	dirty := a.dirty
	a.dirty = map[string]time.Time{}
	a.mu.Unlock()
	if len(dirty) == 0 {
		return nil
	}
	// Every affected unit is a dirty one or an ancestor.
	affected := map[string]time.Time{}
	for code, at := range dirty {
		for c := code; c != ""; {
			u, ok := a.h.Unit(c)
			if !ok {
				break
			}
			if prev, ok := affected[c]; !ok || at.Before(prev) {
				affected[c] = at
			}
			c = u.Parent
		}
	}
	if err := a.publish(ctx, t, slices.Sorted(maps.Keys(affected))); err != nil {
		return err
	}
	for _, at := range affected {
		a.m.latency.Observe(time.Since(at).Seconds())
	}
	a.m.recompute.WithLabelValues("records").Observe(time.Since(start).Seconds())
	return nil
}

// presentCounts are the figures of now that current counts carry.
func presentCounts(c Counts) [5]uint64 {
	return [5]uint64{c.CamerasOnline, c.CamerasOffline, c.SensorsOnline, c.SensorsOffline, c.AlarmsOpen}
}

// markAt marks a unit dirty since at; a.mu is held.
func (a *Aggregator) markAt(code string, at time.Time) {
	if _, ok := a.dirty[code]; !ok {
		a.dirty[code] = at
	}
}

// allCodes are the hierarchy's units, level by level from the top: a
// takeover publishes in this order, so that a wall's province and district
// views are current before the communes'.
func (a *Aggregator) allCodes() []string {
	var out []string
	for _, r := range a.h.Roots() {
		out = append(out, r.Code)
	}
	for i := 0; i < len(out); i++ {
		out = append(out, a.h.ChildCodes(out[i])...)
	}
	return out
}

// outgoing is a snapshot to publish, and the figures it carries (a slice
// of its payload).
type outgoing struct {
	topic   string
	figures []byte
	payload []byte
	// On a map topic: where each child's entry ends in figures
	// (appendChildren), and the delta against the topic's base, if any.
	ends  []int
	base  string
	delta []byte
}

// mapBase is what the next message of a map topic may carry a delta
// against: the topic's last message the bus took, by its version, the
// term that published it, and where each child's entry ends in its figures
// (a.last).
type mapBase struct {
	term    *term
	version string
	ends    []int
}

// publish sends the snapshots of codes, and the maps of those with
// children, whose figures differ from what their topics last carried; as_of
// alone changing is not news. The figures are summed from the live state
// at once and encoded once: the comparison key is a slice of the payload.
// A map whose last message in this term the bus took also carries a delta
// against it (see the merge rule in mapdelta.go), made by comparing the
// encoded entries of its children one by one with that message's.
//
// Snapshots are encoded and sent in chunks of about sendChunk, in the
// order of codes except that the units of topics asked for again
// (RepublishTopic) go first, checked before every chunk: a takeover
// publishes every topic, for seconds on a large hierarchy, and the topics
// screens wait for must not wait for the rest.
func (a *Aggregator) publish(ctx context.Context, t *term, codes []string) error {
	a.mu.Lock()
	st := a.state
	if st == nil {
		a.mu.Unlock()
		return nil
	}
	figs := make([]map[string]Counts, len(Windows))
	for w := range Windows {
		figs[w] = map[string]Counts{}
		for _, code := range codes {
			st.subtree(a.h, w, code, figs[w])
		}
	}
	x := st.extras
	a.mu.Unlock()

	e := encoder{a: a, t: t, figs: figs, x: x, asOf: a.asOf(a.now())}
	codes = slices.Clone(codes)
	for len(codes) > 0 {
		codes = a.askedFirst(codes)
		var out []outgoing
		for len(codes) > 0 && len(out) < sendChunk {
			out = e.append(out, codes[0])
			codes = codes[1:]
		}
		if err := a.sendChunk(ctx, t, out); err != nil {
			return err
		}
	}
	return nil
}

// encoder encodes the snapshots of one publication; only Run uses it.
type encoder struct {
	a              *Aggregator
	t              *term
	figs           []map[string]Counts // per window, per unit
	x              *extras
	asOf           time.Time
	scratch, delta []byte
	ends           []int
}

// append adds to out the snapshots of code whose figures changed.
func (e *encoder) append(out []outgoing, code string) []outgoing {
	a := e.a
	u, ok := a.h.Unit(code)
	if !ok {
		return out
	}
	kids := a.h.ChildCodes(code)
	for w, win := range Windows {
		topic := win.Topic(code)
		e.scratch = appendKPIs(e.scratch[:0], e.figs[w][code], e.x, code)
		if !bytes.Equal(a.last[topic], e.scratch) {
			head := cached(a.heads, topic, func() []byte { return snapshotHead(u.Code, a.h.Name(), u.Level, u.Name, win) })
			payload := appendSnapshot(make([]byte, 0, len(head)+len(e.scratch)+48), head, e.asOf, e.scratch)
			out = append(out, outgoing{topic: topic, figures: payload[len(payload)-1-len(e.scratch) : len(payload)-1], payload: payload})
		}
		if len(kids) == 0 {
			continue
		}
		topic = win.MapTopic(code)
		e.scratch, e.ends = appendChildren(e.scratch[:0], a.h, kids, e.figs[w], e.x, a.childHeads, e.ends[:0])
		if !bytes.Equal(a.last[topic], e.scratch) {
			head := cached(a.heads, topic, func() []byte { return mapHead(a.h, u, win) })
			last, _ := a.h.Unit(kids[len(kids)-1])
			payload := appendMapSnapshot(make([]byte, 0, len(head)+len(e.scratch)+64), head, e.asOf, last.Level, e.scratch)
			o := outgoing{topic: topic, figures: payload[len(payload)-1-len(e.scratch) : len(payload)-1], payload: payload, ends: slices.Clone(e.ends)}
			// Only against a message of this term: a new term's first
			// message of every topic is whole.
			if b, ok := a.bases[topic]; ok && b.term == e.t {
				var fits bool
				if e.delta, fits = appendChangedChildren(e.delta[:0], a.last[topic], b.ends, e.scratch, e.ends); fits {
					o.base = b.version
					o.delta = appendMapSnapshot(make([]byte, 0, len(head)+len(e.delta)+64), head, e.asOf, last.Level, e.delta)
				}
			}
			out = append(out, o)
		}
	}
	return out
}

// sendChunk publishes snapshots stamped with the term's versions, unless
// the lease is lost, and remembers their figures, and the maps' versions
// as bases of the next deltas, once the bus took them.
func (a *Aggregator) sendChunk(ctx context.Context, t *term, out []outgoing) error {
	if len(out) == 0 {
		return nil
	}
	if !t.lease.Held() {
		return errLost
	}
	msgs := make([]bus.Message, len(out))
	for i, o := range out {
		v, err := t.versions.Next()
		if err != nil {
			return err
		}
		msgs[i] = bus.Message{Topic: o.topic, Version: v, Payload: o.payload, Base: o.base, Delta: o.delta}
	}
	if err := a.pub.Publish(ctx, msgs...); err != nil {
		// What went out is not known: the next refresh sends it again,
		// with newer versions. Screens may hold the base of these maps
		// or the message that failed, so the next message of each goes
		// out whole.
		for _, o := range out {
			if o.ends != nil {
				delete(a.bases, o.topic)
			}
		}
		return fmt.Errorf("publish %d snapshots: %w", len(msgs), err)
	}
	for i, o := range out {
		a.last[o.topic] = o.figures
		if o.ends != nil {
			a.bases[o.topic] = mapBase{term: t, version: msgs[i].Version, ends: o.ends}
		}
	}
	a.m.published.Add(float64(len(out)))
	return nil
}
