// Package bus carries topic messages between the parts of one iocd node and,
// through Redis, between nodes: a publisher announces that something changed
// (topics such as "kpi/79", "kpi/26740/24h", "map/79", "alarms/79") and every
// subscriber of every node sees it. The package owns the delivery goroutines
// of its subscriptions and its metrics; the caller owns the *redis.Client.
//
// Delivery is best effort, as in Redis pub/sub: a message published while a
// subscriber is disconnected from Redis is lost. Subscribers that need the
// state behind a message read it from the store.
//
// Concurrency: Memory, Redis and Subscription are safe for concurrent use.
// Handlers run on the bus's goroutines (Memory: the publisher's; Redis: one
// per subscription) and must not block, because a slow handler delays every
// other delivery; they must not call Close on their own subscription, which
// waits for the handler to return.
package bus

import "sync"

// Message is one published message. Payload is shared by all subscribers and
// must not be modified.
type Message struct {
	Topic   string
	Payload []byte
}

// Handler is called for every message; it must not block.
type Handler func(Message)

// Subscription is an active subscription of a Handler to a bus.
type Subscription struct {
	once sync.Once
	stop func() error
}

func newSubscription(stop func() error) *Subscription {
	return &Subscription{stop: stop}
}

// Close stops delivery and returns once the handler will not be called
// again. Later calls return nil.
func (s *Subscription) Close() error {
	var err error
	s.once.Do(func() { err = s.stop() })
	return err
}
