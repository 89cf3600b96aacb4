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
	subs atomic.Pointer[[]*memorySub] // copied on write so Publish takes no lock
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
	b := &Memory{}
	b.subs.Store(&[]*memorySub{})
	return b
}

// Publish calls every subscribed handler with the message before returning.
// The payload is copied, so the caller may reuse it.
func (b *Memory) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	msg := Message{Topic: topic, Payload: bytes.Clone(payload)}
	for _, s := range *b.subs.Load() {
		s.deliver(msg)
	}
	return nil
}

// Subscribe registers h for every message published from now on, until the
// subscription is closed or ctx is cancelled.
func (b *Memory) Subscribe(ctx context.Context, h Handler) (*Subscription, error) {
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
