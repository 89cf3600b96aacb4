package testenv

import (
	"context"
	"encoding/json"
	"sync"
)

// Capture is a publisher that keeps what it is given, decoded as T, by
// topic: what a component under test published on the bus.
type Capture[T any] struct {
	mu   sync.Mutex
	msgs map[string][]T
}

// Publish decodes payload and keeps it under topic.
func (c *Capture[T]) Publish(_ context.Context, topic string, payload []byte) error {
	var v T
	if err := json.Unmarshal(payload, &v); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.msgs == nil {
		c.msgs = map[string][]T{}
	}
	c.msgs[topic] = append(c.msgs[topic], v)
	return nil
}

// Get returns what topic received so far.
func (c *Capture[T]) Get(topic string) []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs[topic]
}

// Take returns everything received so far, by topic, and forgets it.
func (c *Capture[T]) Take() map[string][]T {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.msgs
	c.msgs = map[string][]T{}
	return m
}
