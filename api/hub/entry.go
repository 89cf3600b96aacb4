package hub

import (
	"cmp"
	"slices"
	"sort"
	"sync"
	"time"
)

// entry is the hub's cache of one topic: its subscribers, its newest
// message (state topic) or its recent messages and a snapshot (stream
// topic), and whether a fill is under way. Fields are guarded by mu.
type entry struct {
	name   string
	stream bool
	safety bool

	mu   sync.Mutex
	subs map[*conn]*sub
	// cur is a state topic's newest message, or a stream's snapshot read
	// from storage (its epoch and offset: the position it was read at).
	cur *frame

	// Stream topics: ring holds the recent messages, with contiguous
	// offsets ending at last, of epoch ("": not known yet); ahead holds
	// messages that came after a hole, until the history fills it.
	epoch   string
	last    uint64
	ring    []*frame
	ahead   []*frame
	catchUp bool // the ring may have missed messages: read the history

	queued bool          // in the fill queue or being filled
	failed bool          // the last fill failed; its waiting subscribers were told
	retry  time.Duration // the back-off after the last failed fill
	idle   bool          // no subscribers; kept for the next one
}

// sub is one connection's subscription to an entry.
type sub struct {
	ready bool // has been sent its first message
	told  bool // has heard that its snapshot is being retried

	// State topics: since is the version the client resumes from;
	// version the newest one queued for it.
	since   string
	version string

	// Stream topics: the position (epoch, offset) of the newest message
	// queued, or, with resume, the one the client resumes from; gap marks
	// a subscription whose position was lost, whose snapshot says so.
	resume bool
	gap    bool
	epoch  string
	offset uint64
}

// maxSnapshotLag is how many stream messages a snapshot may be behind
// before new subscribers need a fresh one, rather than the old one and
// every message since.
const maxSnapshotLag = 64

// serve sends s what it needs from the entry, if the entry has it, and
// says whether it did; e.mu is held.
func (e *entry) serve(h *Hub, c *conn, s *sub) bool {
	if !e.stream {
		if e.cur == nil {
			return false
		}
		k := kindSnapshot
		switch {
		case s.since != "" && s.since == e.cur.version:
			k = kindCurrent
			h.m.resumes.WithLabelValues("current").Inc()
		case s.since != "":
			h.m.resumes.WithLabelValues("snapshot").Inc()
		}
		s.ready, s.version, s.since = true, e.cur.version, ""
		c.push(e, e.cur, k)
		return true
	}
	if s.resume {
		if s.epoch != e.epoch || !e.covers(s.offset) {
			return false
		}
		s.ready, s.resume = true, false
		h.m.resumes.WithLabelValues("replayed").Inc()
		e.replay(c, s)
		// Then "current": the client knows it has caught up, missed
		// messages or not.
		at := &frame{topic: e.name, epoch: e.epoch, offset: e.last}
		if n := len(e.ring); n > 0 && e.ring[n-1].offset == e.last {
			at = e.ring[n-1]
		}
		c.push(e, at, kindCurrent)
		return true
	}
	if e.cur == nil || e.cur.epoch != e.epoch || !e.covers(e.cur.offset) || e.last-e.cur.offset > maxSnapshotLag {
		return false
	}
	k := kindSnapshot
	if s.gap {
		k = kindGapSnapshot
		h.m.resumes.WithLabelValues("gap").Inc()
	}
	s.ready, s.gap, s.epoch, s.offset = true, false, e.cur.epoch, e.cur.offset
	c.push(e, e.cur, k)
	e.replay(c, s)
	return true
}

// covers says whether the ring holds every message after offset.
func (e *entry) covers(offset uint64) bool {
	switch {
	case e.epoch == "" || offset > e.last:
		return false
	case offset == e.last:
		return true
	}
	return len(e.ring) > 0 && e.ring[0].offset <= offset+1
}

// replay queues for s the ring's messages after its position.
func (e *entry) replay(c *conn, s *sub) {
	i := sort.Search(len(e.ring), func(i int) bool { return e.ring[i].offset > s.offset })
	for _, f := range e.ring[i:] {
		c.push(e, f, kindUpdate)
		s.offset = f.offset
	}
}

// deliverState takes f as the newest message unless the entry has one at
// least as new, sends it to the ready subscribers (as a delta to those
// holding its base) and serves those waiting; e.mu is held.
func (e *entry) deliverState(h *Hub, f *frame) {
	if e.cur != nil && f.version <= e.cur.version {
		h.m.stale.Inc()
		e.serveWaiting(h)
		return
	}
	e.cur = f
	for c, s := range e.subs {
		if !s.ready {
			e.serve(h, c, s)
			continue
		}
		k := kindUpdate
		if f.base != "" && s.version == f.base {
			k = kindDelta
		}
		s.version = f.version
		c.push(e, f, k)
	}
}

// serveWaiting serves the subscribers that wait, as far as the entry
// can; e.mu is held.
func (e *entry) serveWaiting(h *Hub) {
	for c, s := range e.subs {
		if !s.ready {
			e.serve(h, c, s)
		}
	}
}

// deliverStream adds a stream message to the ring and sends it to the
// ready subscribers, in offset order and once each; a message after a
// hole waits for the history, and one of a new epoch starts every
// subscription over; e.mu is held.
func (e *entry) deliverStream(h *Hub, f *frame) {
	switch {
	case e.epoch == "":
		// Nothing read yet: the fill places what came before.
		e.epoch, e.last, e.ring = f.epoch, f.offset, append(e.ring[:0], f)
		return
	case f.epoch != e.epoch:
		e.renumber(f.epoch)
		e.epoch, e.last, e.ring = f.epoch, f.offset, append(e.ring, f)
		h.requestFill(e)
		return
	case f.offset <= e.last:
		h.m.stale.Inc()
		return
	case f.offset > e.last+1:
		e.ahead = append(e.ahead, f)
		e.catchUp = true
		h.requestFill(e)
		return
	}
	e.append(h, f)
	e.takeAhead(h)
	for c, s := range e.subs {
		if s.ready && s.epoch == e.epoch {
			e.replay(c, s)
		}
	}
}

// append adds the message after the ring's last.
func (e *entry) append(h *Hub, f *frame) {
	e.ring = append(e.ring, f)
	e.last = f.offset
	if n := len(e.ring) - h.cfg.StreamHistory; n > 0 {
		clear(e.ring[:n])
		e.ring = append(e.ring[:0], e.ring[n:]...)
	}
}

// takeAhead moves the waiting messages that now follow the ring into it.
func (e *entry) takeAhead(h *Hub) {
	if len(e.ahead) == 0 {
		return
	}
	slices.SortFunc(e.ahead, func(a, b *frame) int { return cmp.Compare(a.offset, b.offset) })
	keep := e.ahead[:0]
	for _, f := range e.ahead {
		switch {
		case f.epoch != e.epoch || f.offset <= e.last:
		case f.offset == e.last+1:
			e.append(h, f)
		default:
			keep = append(keep, f)
		}
	}
	clear(e.ahead[len(keep):])
	e.ahead = keep
	e.catchUp = len(keep) > 0
}

// renumber forgets a stream's numbering: the bus lost its history, so
// every subscription starts over from a snapshot that says so.
func (e *entry) renumber(epoch string) {
	e.ring, e.ahead, e.cur, e.last = e.ring[:0], nil, nil, 0
	for _, s := range e.subs {
		if s.ready || s.resume && s.epoch != epoch {
			s.ready, s.resume, s.gap = false, false, true
		}
	}
}

// needsFill says whether a fill has anything to do; e.mu is held.
func (e *entry) needsFill() bool {
	if e.catchUp {
		return true
	}
	for _, s := range e.subs {
		if !s.ready {
			return true
		}
	}
	return false
}
