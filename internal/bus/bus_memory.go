package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Memory is a bus inside one process, for a node that runs alone.
type Memory struct {
	mu   sync.Mutex                   // serializes writers of subs
	subs atomic.Pointer[[]*memorySub] // copied on write so delivery takes no lock

	// pub serializes publishers, so that subscribers see the messages of a
	// topic in the order their versions were accepted.
	pub     sync.Mutex
	latest  map[string]Message    // topic → newest versioned message; guarded by pub
	epoch   string                // of every stream topic: the bus lives as long as its history
	streams map[string]*[]Message // stream topic → retained messages, oldest first; guarded by pub
	offsets map[string]uint64     // stream topic → offset of its newest message; guarded by pub
}

type memorySub struct {
	h      Handler
	mu     sync.Mutex
	idle   *sync.Cond // signalled when a closed sub has no handler running
	closed bool
	active int
}

// NewMemory returns an empty in-process bus.
func NewMemory() *Memory {
	b := &Memory{latest: map[string]Message{}, epoch: newEpoch(),
		streams: map[string]*[]Message{}, offsets: map[string]uint64{}}
	b.subs.Store(&[]*memorySub{})
	return b
}

// Publish calls every subscribed handler with each message before
// returning, and keeps the newest versioned message of each topic. A
// message whose version is not newer than its topic's is refused with
// ErrStale and the others still go out. Payloads are copied, so the caller
// may reuse them.
func (b *Memory) Publish(ctx context.Context, msgs ...Message) error {
	for _, m := range msgs {
		if err := validate(m); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	b.pub.Lock()
	defer b.pub.Unlock()
	var errs []error
	for _, m := range msgs {
		m.Payload = bytes.Clone(m.Payload)
		m.Delta = bytes.Clone(m.Delta)
		switch {
		case m.Version != "":
			if cur, ok := b.latest[m.Topic]; ok && cur.Version >= m.Version {
				errs = append(errs, staleError(m, cur.Version))
				continue
			}
			kept := m
			kept.Base, kept.Delta = "", nil
			b.latest[m.Topic] = kept
		case m.Stream:
			b.offsets[m.Topic]++
			m.Epoch, m.Offset = b.epoch, b.offsets[m.Topic]
			h := b.streams[m.Topic]
			if h == nil {
				h = &[]Message{}
				b.streams[m.Topic] = h
			}
			if len(*h) >= DefaultHistory {
				*h = append((*h)[:0], (*h)[len(*h)-DefaultHistory+1:]...)
			}
			*h = append(*h, m)
		}
		for _, s := range *b.subs.Load() {
			s.deliver(m)
		}
	}
	return errors.Join(errs...)
}

func staleError(m Message, current string) error {
	return fmt.Errorf("publish %s version %s: %w (%s)", m.Topic, m.Version, ErrStale, current)
}

// Latest returns the newest message of each of topics that has one.
func (b *Memory) Latest(ctx context.Context, topics []string) (map[string]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read latest messages: %w", err)
	}
	b.pub.Lock()
	defer b.pub.Unlock()
	out := make(map[string]Message, len(topics))
	for _, t := range topics {
		if m, ok := b.latest[t]; ok {
			out[t] = m
		}
	}
	return out, nil
}

// History returns the retained messages of a stream topic after offset
// after, and whether they are all that a reader holding every message of
// epoch up to after missed.
func (b *Memory) History(ctx context.Context, topic, epoch string, after uint64) (History, error) {
	if err := ctx.Err(); err != nil {
		return History{}, fmt.Errorf("read history of %s: %w", topic, err)
	}
	b.pub.Lock()
	defer b.pub.Unlock()
	h := History{Epoch: b.epoch, Last: b.offsets[topic]}
	if epoch != h.Epoch {
		after = 0 // a position in another numbering: all of this one is new
	}
	if kept := b.streams[topic]; kept != nil {
		for _, m := range *kept {
			if m.Offset > after {
				h.Messages = append(h.Messages, m)
			}
		}
	}
	h.complete(epoch, after)
	return h, nil
}

// Subscribe registers h for every message published from now on, until the
// subscription is closed or ctx is cancelled. An in-process subscription
// never misses a message, so gap is never called.
func (b *Memory) Subscribe(ctx context.Context, h Handler, gap func()) (*Subscription, error) {
	if h == nil {
		return nil, errors.New("subscribe: nil handler")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	s := &memorySub{h: h}
	s.idle = sync.NewCond(&s.mu)
	b.mu.Lock()
	subs := append(slices.Clip(*b.subs.Load()), s)
	b.subs.Store(&subs)
	b.mu.Unlock()

	remove := func() { b.remove(s) }
	unregister := context.AfterFunc(ctx, remove)
	return newSubscription(func() error {
		unregister()
		remove()
		return nil
	}), nil
}

// remove unregisters s and waits for its running handler calls; it may be
// called more than once.
func (b *Memory) remove(s *memorySub) {
	b.mu.Lock()
	old := *b.subs.Load()
	subs := make([]*memorySub, 0, len(old))
	for _, o := range old {
		if o != s {
			subs = append(subs, o)
		}
	}
	b.subs.Store(&subs)
	b.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for s.active > 0 {
		s.idle.Wait()
	}
}

// deliver calls the handler unless the subscription is closed; counting the
// running calls lets Close wait for a Publish that took its snapshot of
// subscribers before the removal.
func (s *memorySub) deliver(m Message) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.active++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active--
		if s.active == 0 {
			s.idle.Broadcast()
		}
		s.mu.Unlock()
	}()
	s.h(m)
}
