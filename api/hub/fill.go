package hub

import (
	"context"

	"github.com/openioc/ioc/internal/bus"
)

// requestFill queues the entry for a read unless it is queued or being
// read (single flight), and starts a fill goroutine if fewer than
// MaxSnapshotReads run; e.mu is held.
func (h *Hub) requestFill(e *entry) {
	if e.queued {
		return
	}
	select {
	case <-h.quit:
		return
	default:
	}
	e.queued = true
	p := 1
	if e.safety {
		p = 0
	}
	h.fillMu.Lock()
	h.queue[p] = append(h.queue[p], e)
	h.m.fillsQueued.Inc()
	start := h.fills < h.cfg.MaxSnapshotReads
	if start {
		h.fills++
		h.fillWG.Add(1)
	}
	h.fillMu.Unlock()
	if start {
		go h.fillLoop()
	}
}

// fillLoop fills queued entries, safety topics first, until the queue is
// empty or the hub closes.
func (h *Hub) fillLoop() {
	defer h.fillWG.Done()
	for {
		h.fillMu.Lock()
		var e *entry
		for p := range h.queue {
			if len(h.queue[p]) > 0 {
				e = h.queue[p][0]
				h.queue[p][0] = nil
				h.queue[p] = h.queue[p][1:]
				h.m.fillsQueued.Dec()
				break
			}
		}
		closed := false
		select {
		case <-h.quit:
			closed = true
		default:
		}
		if e == nil || closed {
			h.fills--
			h.fillMu.Unlock()
			return
		}
		h.fillMu.Unlock()
		h.m.readsInFlight.Inc()
		h.fill(e)
		h.m.readsInFlight.Dec()
	}
}

// fill reads what the entry's subscribers wait for; on failure it tells
// them once and tries again after a jittered back-off, for as long as
// anyone waits.
func (h *Hub) fill(e *entry) {
	e.mu.Lock()
	needed := e.needsFill()
	e.mu.Unlock()
	var err error
	if needed {
		ctx, cancel := h.callContext()
		if e.stream {
			err = h.fillStream(ctx, e)
		} else {
			err = h.fillState(ctx, e)
		}
		cancel()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.queued = false
	if err == nil {
		e.failed, e.retry = false, 0
		if e.needsFill() {
			h.requestFill(e)
		}
		return
	}
	select {
	case <-h.quit:
		return
	default:
	}
	h.m.snapshotErrors.Inc()
	if !e.failed {
		// Once per outage: storage being down would otherwise log a line
		// per topic at every retry.
		h.logger.Warn("read snapshot for subscribers; retrying", "topic", e.name, "err", err)
	}
	e.failed = true
	for c, s := range e.subs {
		if !s.ready && !s.told {
			s.told = true
			c.sendRetrying(e.name, "could not read the current figures yet; retrying in the background, the subscription stays")
		}
	}
	e.retry = min(max(2*e.retry, h.cfg.RetryMin), h.cfg.RetryMax)
	wait := e.retry
	e.queued = true // the retry below holds the place
	h.fillWG.Add(1)
	go func() {
		defer h.fillWG.Done()
		ok := h.sleep(wait)
		e.mu.Lock()
		defer e.mu.Unlock()
		e.queued = false
		if ok && e.needsFill() {
			h.requestFill(e)
		}
	}()
}

// fillState reads a state topic's newest message: the bus's store, else
// figures computed from storage.
func (h *Hub) fillState(ctx context.Context, e *entry) error {
	latest, err := h.topics.Latest(ctx, []string{e.name})
	m, ok := latest[e.name]
	if err != nil || !ok {
		if err != nil {
			// Computing the figures here still serves the screens.
			h.logger.Debug("read latest message from the bus", "topic", e.name, "err", err)
		}
		if m, err = h.topics.Current(ctx, e.name); err != nil {
			return err
		}
	}
	m.Topic = e.name
	e.mu.Lock()
	e.deliverState(h, newFrame(m))
	e.mu.Unlock()
	return nil
}

// fillStream reads what the bus retains of a stream topic after the
// oldest position anyone needs, places it in the ring, serves resumes it
// covers and sends ready subscribers what they missed; subscriptions still
// without a start get a snapshot from storage.
func (h *Hub) fillStream(ctx context.Context, e *entry) error {
	e.mu.Lock()
	epoch, after := e.epoch, e.last
	for _, s := range e.subs {
		if s.resume && s.epoch == epoch {
			after = min(after, s.offset)
		} else if s.ready && s.epoch == epoch {
			after = min(after, s.offset)
		}
	}
	e.mu.Unlock()
	hist, err := h.topics.History(ctx, e.name, epoch, after)
	if err != nil {
		return err
	}
	if hist.Epoch != epoch {
		after = 0 // all of the new numbering is new
	}

	e.mu.Lock()
	e.merge(h, hist, after)
	snapshot := false
	for c, s := range e.subs {
		switch {
		case s.ready:
			if s.epoch == e.epoch && e.covers(s.offset) {
				e.replay(c, s)
			} else {
				s.ready, s.gap = false, true
				snapshot = true
			}
		case e.serve(h, c, s):
		case s.resume && s.epoch == e.epoch && s.offset < after:
			// Asked for more than was read: the next fill reads it.
		default:
			if s.resume {
				s.resume, s.gap = false, true
			}
			snapshot = true
		}
	}
	// Trimmed only now: the resumes above may have needed more.
	if n := len(e.ring) - h.cfg.StreamHistory; n > 0 {
		e.ring = e.ring[n:]
	}
	epoch, at := e.epoch, e.last
	e.mu.Unlock()
	if !snapshot {
		return nil
	}

	m, err := h.topics.Current(ctx, e.name)
	if err != nil {
		return err
	}
	m.Topic, m.Version, m.Base, m.Delta = e.name, "", "", nil
	m.Epoch, m.Offset = epoch, at
	e.mu.Lock()
	if e.epoch == epoch {
		e.cur = newFrame(m)
		e.serveWaiting(h)
	}
	e.mu.Unlock()
	return nil
}

// merge places what the bus retains (the messages of hist after offset
// after) in the ring: the ring keeps what it had up to after if the
// history follows on, then the history, then messages delivered since the
// read; e.mu is held.
func (e *entry) merge(h *Hub, hist bus.History, after uint64) {
	if hist.Epoch != e.epoch {
		if e.epoch != "" {
			e.renumber(hist.Epoch)
		}
		e.epoch = hist.Epoch
		beyond := e.ring
		e.ring, e.last = nil, 0
		e.ahead = append(e.ahead, beyond...)
	}
	var run []*frame
	if len(hist.Messages) > 0 && hist.Messages[0].Offset == after+1 || len(hist.Messages) == 0 && hist.Last == after {
		for _, f := range e.ring {
			if f.offset <= after {
				run = append(run, f)
			}
		}
	}
	for _, m := range hist.Messages {
		run = append(run, newFrame(m))
	}
	// Delivered since the read, or ahead of a hole the read filled.
	for _, f := range e.ring {
		if f.offset > hist.Last {
			e.ahead = append(e.ahead, f)
		}
	}
	e.ring, e.last = run, hist.Last
	if len(run) > 0 {
		e.last = run[len(run)-1].offset
	}
	e.takeAhead(h)
}
