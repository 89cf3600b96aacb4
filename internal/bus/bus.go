// Package bus carries topic messages between the parts of one iocd node and,
// through Redis, between nodes: a publisher announces that something changed
// (topics such as "kpi/79", "kpi/26740/24h", "map/79", "alarms/79") and every
// subscriber of every node sees it. The package owns the delivery goroutines
// of its subscriptions, the latest value of each state topic, and its
// metrics; the caller owns the *redis.Client.
//
// State topics carry a version (see Version): the bus refuses a message
// whose version is not greater than the latest one of its topic, and keeps
// the latest message of each topic, which Latest reads back: what a new
// subscriber or a screen that may have missed messages needs. Refusing and
// storing happen in one step (one Lua script in Redis), so two publishers
// cannot interleave an older message after a newer one. A state message
// may carry a delta against the version before it (Message.Base), which
// subscribers holding that version apply instead of the whole payload; the
// latest-value store keeps the whole payload.
//
// Stream topics (events/) carry no version: every message is delivered,
// none is kept as the latest. The bus numbers them instead (epoch and
// offset, in the same step as publishing) and retains the last
// DefaultHistory of each topic, which History reads back: what a
// subscriber that missed messages needs to catch up exactly once.
//
// Delivery is best effort, as in Redis pub/sub: a message published while a
// subscriber is disconnected from Redis is lost. The subscription says so
// when it is restored (the gap callback of Subscribe), and the subscriber
// reads what it missed with Latest and History.
//
// Concurrency: Memory, Redis, Subscription and Versions are safe for
// concurrent use. Handlers run on the bus's goroutines (Memory: the
// publisher's; Redis: one per subscription) and must not block, because a
// slow handler delays every other delivery; they must not publish, nor call
// Close on their own subscription, which waits for the handler to return.
package bus

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
)

// Message is one published message. Payload is shared by all subscribers and
// must not be modified.
type Message struct {
	Topic string
	// Version orders the messages of a state topic; empty on a stream
	// topic. See Version for the format.
	Version string
	Payload []byte

	// Base and Delta, on a state topic whose publisher can say what
	// changed: Delta is the part of Payload that differs from the message
	// of version Base, which a subscriber holding Base may apply instead of
	// the whole Payload (see the topic's merge rule). Payload stays whole:
	// it is what the latest-value store keeps and what a new subscriber
	// gets.
	Base  string
	Delta []byte

	// Stream marks a message of a stream topic (events/): every message
	// counts, none replaces another. The bus numbers them: Epoch and
	// Offset place the message in the topic's history, offsets of one
	// epoch growing by one per message across every publisher; a new epoch
	// starts when the history was lost (Redis lost its data). Epoch and
	// Offset are set by the bus on delivery, not by the publisher.
	Stream bool
	Epoch  string
	Offset uint64
}

// History is what a bus retains of a stream topic, read with History.
type History struct {
	Epoch string // the topic's epoch now
	Last  uint64 // offset of the newest message of the epoch; 0: none yet
	// Messages are the retained messages after the offset asked for,
	// oldest first.
	Messages []Message
	// Complete says Messages are every message of Epoch after the
	// position asked for: nothing was lost in between.
	Complete bool
}

// complete sets h.Complete for a reader who holds every message of epoch
// up to after.
func (h *History) complete(epoch string, after uint64) {
	switch {
	case epoch != h.Epoch || after > h.Last:
		h.Complete = false
	case after == h.Last:
		h.Complete = true
	default:
		h.Complete = len(h.Messages) > 0 && h.Messages[0].Offset == after+1
	}
}

// DefaultHistory is how many messages of each stream topic a bus retains.
const DefaultHistory = 1000

// newEpoch returns a random epoch: 16 lower-case hexadecimal digits.
func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Handler is called for every message; it must not block.
type Handler func(Message)

// VersionLen is the length of every version.
const VersionLen = 24

// LowestVersion is below every version a publisher stamps: the version of
// figures a node computed itself rather than received, which any published
// message replaces.
const LowestVersion = "000000000000000000000000"

// Version is the version of a publisher's seq-th message under the lease
// whose fencing token is token: 16 hexadecimal digits of the token and 8
// of seq, lower case. Versions of the same width compare as plain strings,
// in any language, in the order of (token, seq): a publisher that takes
// over a lease has a greater token than every earlier holder, so its
// messages are newer than theirs whatever their sequence numbers.
func Version(token uint64, seq uint32) string {
	b := make([]byte, 0, VersionLen)
	b = appendHex(b, token, 16)
	return string(appendHex(b, uint64(seq), 8))
}

func appendHex(b []byte, v uint64, width int) []byte {
	s := strconv.FormatUint(v, 16)
	for range width - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// ValidVersion says whether v is a version: VersionLen lower-case
// hexadecimal digits.
func ValidVersion(v string) bool {
	if len(v) != VersionLen {
		return false
	}
	for i := range len(v) {
		if c := v[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ErrStale is returned (wrapped) for a message refused because its topic
// already has a version at least as new: another publisher took over.
var ErrStale = errors.New("a newer version was published")

// OnlyStale says whether err, from Publish, reports only messages refused
// with ErrStale: every other message went out.
func OnlyStale(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		for _, e := range errs {
			if !OnlyStale(e) {
				return false
			}
		}
		return len(errs) > 0
	case interface{ Unwrap() error }:
		return OnlyStale(e.Unwrap())
	}
	return err == ErrStale
}

// ErrExhausted is returned by Versions.Next when the sequence of a lease
// is used up; the holder must acquire the lease again for a new token.
var ErrExhausted = errors.New("versions of this lease are used up")

// Versions stamps the messages of one lease holder, in order.
type Versions struct {
	token uint64
	seq   atomic.Uint64
}

// NewVersions returns the versions of the holder of a lease whose fencing
// token is token.
func NewVersions(token uint64) *Versions { return &Versions{token: token} }

// Token is the fencing token the versions start with.
func (v *Versions) Token() uint64 { return v.token }

// Next returns the next version.
func (v *Versions) Next() (string, error) {
	n := v.seq.Add(1)
	if n > math.MaxUint32 {
		return "", fmt.Errorf("token %d: %w", v.token, ErrExhausted)
	}
	return Version(v.token, uint32(n)), nil
}

// validate checks what Publish is given.
func validate(m Message) error {
	if m.Topic == "" {
		return errors.New("publish: empty topic")
	}
	if m.Version != "" && !ValidVersion(m.Version) {
		return fmt.Errorf("publish %s: version %q is not %d lower-case hexadecimal digits", m.Topic, m.Version, VersionLen)
	}
	if m.Stream && m.Version != "" {
		return fmt.Errorf("publish %s: a stream message takes no version", m.Topic)
	}
	if m.Base != "" && (m.Version == "" || !ValidVersion(m.Base) || m.Base >= m.Version) {
		return fmt.Errorf("publish %s: delta base %q must be a version older than the message's %q", m.Topic, m.Base, m.Version)
	}
	return nil
}

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
