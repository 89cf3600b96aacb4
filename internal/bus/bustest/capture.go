// Package bustest helps the tests of bus publishers: Capture stands for the
// bus and keeps what a component under test published.
//
// Concurrency: a Capture is safe for concurrent use.
package bustest

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/openioc/ioc/internal/bus"
)

// Capture is a publisher that keeps what it is given, decoded as T, by
// topic: what a component under test published on the bus.
type Capture[T any] struct {
	mu       sync.Mutex
	msgs     map[string][]T
	versions map[string][]string
}

// Publish decodes each payload and keeps it, and its version, under its
// topic.
func (c *Capture[T]) Publish(_ context.Context, msgs ...bus.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.msgs == nil {
		c.msgs, c.versions = map[string][]T{}, map[string][]string{}
	}
	for _, m := range msgs {
		var v T
		if err := json.Unmarshal(m.Payload, &v); err != nil {
			return err
		}
		c.msgs[m.Topic] = append(c.msgs[m.Topic], v)
		c.versions[m.Topic] = append(c.versions[m.Topic], m.Version)
	}
	return nil
}

// Get returns what topic received so far.
func (c *Capture[T]) Get(topic string) []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs[topic]
}

// Versions returns the versions of what topic received so far.
func (c *Capture[T]) Versions(topic string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.versions[topic]
}

// Take returns everything received so far, by topic, and forgets it.
func (c *Capture[T]) Take() map[string][]T {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.msgs
	c.msgs, c.versions = map[string][]T{}, map[string][]string{}
	return m
}
