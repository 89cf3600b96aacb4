package aggregate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/lease"
)

// DirtyTopic is the bus topic on which a node that does not hold the
// aggregate lease tells the one that does which units gained records. It is
// internal: no screen may subscribe to it.
const DirtyTopic = "internal/aggregate/dirty"

// TermTopic is the internal bus topic on which the node holding the
// aggregate lease says it has republished every topic: while the bus's
// latest value of it is missing (Redis restarted, no node has taken over
// yet), screens may be served figures computed on the spot.
const TermTopic = "internal/aggregate/term"

type dirtyMessage struct {
	Hierarchy string   `json:"hierarchy"`
	Codes     []string `json:"codes"`
}

// errLost ends a term whose lease was lost.
var errLost = errors.New("the aggregate lease was lost")

const (
	minElectionRetry = 100 * time.Millisecond
	maxElectionRetry = time.Second
)

// MarkDirty notes that units gained records: the node holding the lease
// recomputes them and their ancestors soon; another node forwards them to
// it. It never blocks.
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
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Forwarded takes a DirtyTopic payload from the bus: on the node holding
// the lease, its units are recomputed as if their records were stored
// here; other nodes ignore it. It never blocks.
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
// republishes every topic, then it recomputes the units touched by new
// records at once and every unit every RefreshInterval (the ingest
// reconciler drops expired minute rollups); it stops publishing the moment
// the lease is lost. Other
// nodes forward the units their records touched to it over the bus, and
// wait for the lease.
func (a *Aggregator) Run(ctx context.Context) error {
	won := make(chan *lease.Lease)
	var wg sync.WaitGroup // the election, and releases of lost leases
	defer wg.Wait()
	wg.Go(func() { a.campaign(ctx, won) })

	refresh := time.NewTicker(a.cfg.RefreshInterval)
	defer refresh.Stop()

	var (
		t       *term
		termCtx context.Context // ends with the term: publishing stops at once
		cancel  context.CancelFunc
		lastRun time.Time
	)
	end := func() {
		cancel()
		a.leading.Store(false)
		a.m.leader.Set(0)
		// Releasing may wait for Redis; the next holder does not need it
		// to, since a lost lease lapses on its own.
		wg.Go(t.lease.Release)
		t = nil
	}
	defer func() {
		if t != nil {
			end()
		}
	}()
	// fail ends the term when the error says another node may publish now;
	// other errors are retried by the next recomputation or refresh.
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
			fail("republishing every topic", a.takeOver(termCtx, t))
		case <-lost:
			a.logger.Warn("lost the aggregate lease; stopped publishing figures", "token", t.lease.Token())
			end()
		case <-a.wake:
			if t == nil {
				a.forward(ctx)
				continue
			}
			if wait := a.cfg.MinRecompute - time.Since(lastRun); wait > 0 {
				select {
				case <-termCtx.Done():
					continue // the loop learns why
				case <-time.After(wait):
				}
			}
			lastRun = time.Now()
			fail("recompute after new records", a.recomputeDirty(termCtx, t))
		case <-refresh.C:
			if t != nil {
				fail("refresh", a.refresh(termCtx, t))
			}
			if t != nil && !t.announced {
				fail("announcing the republication", a.announce(termCtx, t))
			}
		}
	}
}

// campaign acquires the lease whenever it is free and hands it to Run,
// then waits until it is lost or released, until ctx ends.
func (a *Aggregator) campaign(ctx context.Context, won chan<- *lease.Lease) {
	wait := minElectionRetry
	for {
		l, err := a.leases.Acquire(ctx, a.cfg.Lease)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if wait == minElectionRetry {
				a.logger.Warn("cannot take part in electing the node that publishes figures; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait/2 + rand.N(wait/2+1)):
			}
			wait = min(2*wait, maxElectionRetry)
			continue
		}
		wait = minElectionRetry
		select {
		case won <- l:
		case <-ctx.Done():
			l.Release()
			return
		}
		select {
		case <-l.Lost():
		case <-ctx.Done():
			return // Run releases it
		}
	}
}

// takeOver starts a term: every topic is published again with the new
// token, so that screens and the bus's latest values hold this node's
// figures whatever the previous holder managed to publish.
func (a *Aggregator) takeOver(ctx context.Context, t *term) error {
	a.leading.Store(true)
	a.m.leader.Set(1)
	a.m.takeovers.Inc()
	a.logger.Info("took the aggregate lease; republishing every topic", "token", t.lease.Token())
	a.mu.Lock()
	a.dirty = map[string]time.Time{} // recomputed now with everything else
	a.mu.Unlock()
	clear(a.last)
	if err := a.refresh(ctx, t); err != nil {
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

// forward sends the units marked dirty here to the node holding the lease;
// if the message is lost, that node's next refresh catches up.
func (a *Aggregator) forward(ctx context.Context) {
	a.mu.Lock()
	dirty := a.dirty
	a.dirty = map[string]time.Time{}
	a.mu.Unlock()
	if len(dirty) == 0 {
		return
	}
	codes := make([]string, 0, len(dirty))
	for c := range dirty {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	payload, err := json.Marshal(dirtyMessage{Hierarchy: a.h.Name(), Codes: codes})
	if err == nil {
		err = a.pub.Publish(ctx, bus.Message{Topic: DirtyTopic, Payload: payload})
	}
	if err != nil && ctx.Err() == nil {
		a.logger.Warn("forward units with new records to the node publishing figures; its next refresh catches up",
			"units", len(codes), "err", err)
	}
}

func (a *Aggregator) recomputeDirty(ctx context.Context, t *term) error {
	a.mu.Lock()
	dirty := a.dirty
	a.dirty = map[string]time.Time{}
	a.mu.Unlock()
	if len(dirty) == 0 {
		return nil
	}
	start := time.Now()
	// Every affected unit is a dirty one or an ancestor; computing the whole
	// subtrees of their top-level units gives each of them complete sums.
	affected := map[string]time.Time{}
	roots := map[string]bool{}
	for code, at := range dirty {
		if _, ok := a.h.Unit(code); !ok {
			continue
		}
		top := code
		for c := code; c != ""; {
			if prev, ok := affected[c]; !ok || at.Before(prev) {
				affected[c] = at
			}
			top = c
			u, _ := a.h.Unit(c)
			c = u.Parent
		}
		roots[top] = true
	}
	var codes []string
	for r := range roots {
		codes = append(codes, a.h.Subtree(r)...)
	}
	now := a.now()
	counts, err := a.q.counts(ctx, scope{h: a.h, codes: codes}, Windows, now, a.cfg.Location)
	if err != nil {
		return err
	}
	var out []outgoing
	for code := range affected {
		if out, err = a.changed(out, code, counts, now); err != nil {
			return err
		}
	}
	if err := a.send(ctx, t, out); err != nil {
		return err
	}
	for _, at := range affected {
		a.m.latency.Observe(time.Since(at).Seconds())
	}
	a.m.recompute.WithLabelValues("records").Observe(time.Since(start).Seconds())
	return nil
}

// refresh recomputes every unit and publishes what changed.
func (a *Aggregator) refresh(ctx context.Context, t *term) error {
	start := time.Now()
	now := a.now()
	counts, err := a.q.counts(ctx, scope{h: a.h}, Windows, now, a.cfg.Location)
	if err != nil {
		return err
	}
	var out []outgoing
	for _, code := range a.allCodes() {
		if out, err = a.changed(out, code, counts, now); err != nil {
			return err
		}
	}
	if err := a.send(ctx, t, out); err != nil {
		return err
	}
	a.m.recompute.WithLabelValues("refresh").Observe(time.Since(start).Seconds())
	return nil
}

func (a *Aggregator) allCodes() []string {
	var out []string
	for _, r := range a.h.Roots() {
		out = append(out, a.h.Subtree(r.Code)...)
	}
	return out
}

// outgoing is a snapshot to publish, and the figures it carries.
type outgoing struct {
	topic   string
	figures []byte
	payload []byte
}

// changed appends the unit's snapshots, and the map of its children, whose
// figures differ from what their topics last carried; as_of alone changing
// is not news.
func (a *Aggregator) changed(out []outgoing, code string, counts map[Window]map[string]Counts, now time.Time) ([]outgoing, error) {
	u, _ := a.h.Unit(code)
	hasChildren := len(a.h.ChildCodes(code)) > 0
	add := func(topic string, figures, payload any) error {
		key, err := json.Marshal(figures)
		if err != nil {
			return fmt.Errorf("encode %s: %w", topic, err)
		}
		if prev, ok := a.last[topic]; ok && bytes.Equal(prev, key) {
			return nil
		}
		b, err := json.Marshal(payload)
		if err != nil {
			return fmt.Errorf("encode %s: %w", topic, err)
		}
		out = append(out, outgoing{topic: topic, figures: key, payload: b})
		return nil
	}
	for _, w := range Windows {
		s := newSnapshot(a.h, u, w, counts[w][code], a.asOf(now))
		if err := add(w.Topic(code), s.KPIs, s); err != nil {
			return out, err
		}
		if hasChildren {
			m := newMapSnapshot(a.h, u, w, counts[w], a.asOf(now))
			if err := add(w.MapTopic(code), m.Children, m); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// send publishes snapshots stamped with the term's versions, unless the
// lease is lost, and remembers their figures once the bus took them.
func (a *Aggregator) send(ctx context.Context, t *term, out []outgoing) error {
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
		msgs[i] = bus.Message{Topic: o.topic, Version: v, Payload: o.payload}
	}
	if err := a.pub.Publish(ctx, msgs...); err != nil {
		// What went out is not known: the next refresh sends it again,
		// with newer versions.
		return fmt.Errorf("publish %d snapshots: %w", len(msgs), err)
	}
	for _, o := range out {
		a.last[o.topic] = o.figures
	}
	a.m.published.Add(float64(len(out)))
	return nil
}
