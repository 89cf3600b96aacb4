package aggregate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/topic"
)

// RepublishTopic is the internal bus topic on which a node asks the one
// holding the aggregate lease to send figure topics again: its hub found
// them missing from the bus's latest values after a gap in the bus (Redis
// came back empty). The holder sends the topics asked for ahead of the
// rest of whatever it is publishing, so that the screens watching them are
// current again first, however many units the hierarchy has; a topic it
// already sent in its term goes out again with the next publication.
const RepublishTopic = string(topic.AggregateRepublish)

type republishMessage struct {
	Topics []string `json:"topics"`
}

// Republish asks the node holding the lease, this one or another, to send
// topics again; those that are not figure topics of the hierarchy's units
// are left out. A lost request is not sent again: the holder's takeover
// publishes every topic anyway, only later.
func (a *Aggregator) Republish(ctx context.Context, topics []string) error {
	var keep []string
	for _, name := range topics {
		if _, ok := a.figureTopic(name); ok {
			keep = append(keep, name)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	payload, err := json.Marshal(republishMessage{Topics: keep})
	if err != nil {
		return fmt.Errorf("ask for %d topics again: %w", len(keep), err)
	}
	if err := a.pub.Publish(ctx, bus.Message{Topic: RepublishTopic, Payload: payload}); err != nil {
		return fmt.Errorf("ask for %d topics again: publish %s: %w", len(keep), RepublishTopic, err)
	}
	return nil
}

// Requested takes a RepublishTopic payload from the bus: the node holding
// the lease notes the topics for its next publication, other nodes ignore
// it. It never blocks.
func (a *Aggregator) Requested(payload []byte) {
	if !a.leading.Load() {
		return
	}
	var m republishMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		a.logger.Warn("malformed message on "+RepublishTopic, "err", err)
		return
	}
	a.mu.Lock()
	for _, name := range m.Topics {
		// Only the hierarchy's own topics: the set stays bounded by them.
		if _, ok := a.figureTopic(name); ok && a.leading.Load() {
			a.asked[name] = true
		}
	}
	a.mu.Unlock()
	a.poke()
}

// figureTopic says whether name is a kpi/ or map/ topic this aggregator
// publishes, and of which unit.
func (a *Aggregator) figureTopic(name string) (code string, ok bool) {
	t, err := topic.ParseLive(name)
	if err != nil || t.Kind != topic.KPI && t.Kind != topic.Map {
		return "", false
	}
	if _, ok := a.h.Unit(t.Area); !ok {
		return "", false
	}
	if t.Kind == topic.Map && len(a.h.ChildCodes(t.Area)) == 0 {
		return "", false
	}
	return t.Area, true
}

// askedFirst moves the units of topics asked for to the front of codes,
// keeping the order otherwise, and has those topics sent whole even if
// their figures did not change: the bus lost them. A topic whose unit
// codes does not hold (not part of this publication, or already sent by
// it) goes out with the next publication. Only Run calls it.
func (a *Aggregator) askedFirst(codes []string) []string {
	a.mu.Lock()
	asked := a.asked
	if len(asked) == 0 {
		a.mu.Unlock()
		return codes
	}
	a.asked = map[string]bool{}
	a.mu.Unlock()
	want := map[string]bool{}
	for name := range asked {
		delete(a.last, name)
		delete(a.bases, name)
		if code, ok := a.figureTopic(name); ok {
			want[code] = true
		}
	}
	first := make([]string, 0, len(codes))
	var rest []string
	for _, c := range codes {
		if want[c] {
			first = append(first, c)
			delete(want, c)
		} else {
			rest = append(rest, c)
		}
	}
	if len(want) > 0 {
		now := time.Now()
		a.mu.Lock()
		for code := range want {
			a.markAt(code, now)
		}
		a.mu.Unlock()
		a.poke()
	}
	return append(first, rest...)
}

// markAsked marks the units of the topics asked for, so that the next
// publication, which sends them first, includes them; a.mu is held.
func (a *Aggregator) markAsked(at time.Time) {
	for name := range a.asked {
		if code, ok := a.figureTopic(name); ok {
			a.markAt(code, at)
		}
	}
}
