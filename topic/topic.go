// Package topic is the grammar of topic names: the live topics screens
// subscribe to over the websocket and nodes publish on the bus (kpi/,
// map/, alarms/, devices/, events/, screen/), and the internal topics
// nodes tell each other on (internal/…), which no screen ever sees. It is
// part of the wire contract (docs/asyncapi.yaml, Topic): every producer
// builds names here, the API resolves subscriptions and iocd routes bus
// messages here, and the pages speak the same grammar
// (dashboards/static/live.js); testdata/topics.json holds the examples
// both are tested on.
//
//	kpi/{area}            a unit's figures over today
//	kpi/{area}/{window}   … over 24h, 7d or 30d (kpi/{area}/today is kpi/{area})
//	map/{area}[/{window}] the figures of every child of a unit
//	alarms/{area}         the alarms not yet resolved in the unit's subtree
//	devices/{area}        cameras and sensors of the subtree
//	events/{area}         camera events of the subtree: a stream
//	screen/{id}           what a wall screen shows
//	internal/aggregate/dirty, internal/aggregate/delta, internal/aggregate/term,
//	internal/auth/revoked, internal/screens/command,
//	internal/screens/seen/{id}
//
// An area is a unit's code and an id a screen's, each one non-empty
// segment: which units and screens exist is for the reader of the name to
// check. A name has one canonical form, which String writes.
//
// Concurrency: values and pure functions, safe for concurrent use.
package topic

import (
	"fmt"
	"slices"
	"strings"
)

// Kind is what a topic carries.
type Kind string

// The live kinds, which a screen may subscribe to.
const (
	KPI     Kind = "kpi"
	Map     Kind = "map"
	Alarms  Kind = "alarms"
	Devices Kind = "devices"
	Events  Kind = "events"
	Screen  Kind = "screen"
)

// The internal kinds. Each but ScreenSeen names one topic, whose name is
// the kind: string(AggregateTerm) is the topic.
const (
	// AggregateDirty carries units to recompute to the node holding the
	// aggregate lease.
	AggregateDirty Kind = "internal/aggregate/dirty"
	// AggregateDelta carries figures' changes to the node holding the
	// aggregate lease.
	AggregateDelta Kind = "internal/aggregate/delta"
	// AggregateTerm says every live topic was published in the current
	// term of the aggregate lease.
	AggregateTerm Kind = "internal/aggregate/term"
	// AggregateRepublish asks the node holding the aggregate lease to
	// send figure topics again that the bus lost.
	AggregateRepublish Kind = "internal/aggregate/republish"
	// Revoked announces a revoked token.
	Revoked Kind = "internal/auth/revoked"
	// ScreenCommand carries operators' commands to the node running the
	// walls.
	ScreenCommand Kind = "internal/screens/command"
	// ScreenSeen is the latest report of a screen's page:
	// internal/screens/seen/{id}.
	ScreenSeen Kind = "internal/screens/seen"
	// Internal is any other internal/ topic (KindOf's answer for one it
	// does not know).
	Internal Kind = "internal"
)

const internalPrefix = "internal/"

// Today is the window a windowed topic's name leaves out.
const Today = "today"

// Windows are the windows of kpi/ and map/ topics, as aggregate names
// them (aggregate.Windows).
var Windows = []string{Today, "24h", "7d", "30d"}

// fixed are the internal kinds that name one topic each.
var fixed = []Kind{AggregateDirty, AggregateDelta, AggregateTerm, AggregateRepublish, Revoked, ScreenCommand}

// Internal says whether topics of k are internal: no screen sees them.
func (k Kind) Internal() bool { return k == Internal || strings.HasPrefix(string(k), internalPrefix) }

// Live says whether a screen may subscribe to topics of k.
func (k Kind) Live() bool {
	switch k {
	case KPI, Map, Alarms, Devices, Events, Screen:
		return true
	}
	return false
}

// Windowed says whether topics of k name a window.
func (k Kind) Windowed() bool { return k == KPI || k == Map }

// Stream says whether every message of k counts (events/), rather than
// the latest (state topics: kpi/, map/, alarms/, devices/, screen/).
func (k Kind) Stream() bool { return k == Events }

// Safety says whether k is served before figures: alarms/ and devices/,
// and screen/, which says what a page must show at all.
func (k Kind) Safety() bool { return k == Alarms || k == Devices || k == Screen }

// byArea says whether topics of k name a unit.
func (k Kind) byArea() bool {
	return k == KPI || k == Map || k == Alarms || k == Devices || k == Events
}

// byScreen says whether topics of k name a screen.
func (k Kind) byScreen() bool { return k == Screen || k == ScreenSeen }

// Topic is a parsed topic name.
type Topic struct {
	Kind Kind
	// Area is the unit's code of kpi, map, alarms, devices and events
	// topics.
	Area string
	// Screen is the screen's id of screen and internal/screens/seen
	// topics.
	Screen string
	// Window is the window of kpi and map topics (Windows); empty for
	// other kinds.
	Window string
}

// Of is the topic of kind k about id: a unit's code, or a screen's id;
// a windowed kind's over Today. A kind that names one topic takes no id.
func (k Kind) Of(id string) Topic {
	t := Topic{Kind: k}
	switch {
	case k.byArea():
		t.Area = id
		if k.Windowed() {
			t.Window = Today
		}
	case k.byScreen():
		t.Screen = id
	}
	return t
}

// Over is t over window w ("" is Today); only windowed kinds take one.
func (t Topic) Over(w string) Topic {
	if !t.Kind.Windowed() {
		return t
	}
	if w == "" {
		w = Today
	}
	t.Window = w
	return t
}

// String is the topic's canonical name.
func (t Topic) String() string {
	switch {
	case t.Kind.Windowed():
		if t.Window == "" || t.Window == Today {
			return string(t.Kind) + "/" + t.Area
		}
		return string(t.Kind) + "/" + t.Area + "/" + t.Window
	case t.Kind.byArea():
		return string(t.Kind) + "/" + t.Area
	case t.Kind.byScreen():
		return string(t.Kind) + "/" + t.Screen
	}
	return string(t.Kind)
}

// Parse reads a topic name, live or internal.
func Parse(name string) (Topic, error) {
	if strings.HasPrefix(name, internalPrefix) {
		for _, k := range fixed {
			if name == string(k) {
				return Topic{Kind: k}, nil
			}
		}
		if id, ok := strings.CutPrefix(name, string(ScreenSeen)+"/"); ok && segment(id) {
			return Topic{Kind: ScreenSeen, Screen: id}, nil
		}
		return Topic{}, unknown(name)
	}
	parts := strings.Split(name, "/")
	k := Kind(parts[0])
	switch {
	case k == Screen && len(parts) > 1:
		if len(parts) != 2 || parts[1] == "" {
			return Topic{}, fmt.Errorf("unknown topic %q: screen/{id} takes a screen id (lower-case letters, digits and '-')", name)
		}
		return Topic{Kind: Screen, Screen: parts[1]}, nil
	case !k.byArea() || len(parts) < 2 || len(parts) > 3 || parts[1] == "" || (!k.Windowed() && len(parts) == 3):
		return Topic{}, unknown(name)
	}
	t := k.Of(parts[1])
	if len(parts) == 3 {
		if !knownWindow(parts[2]) {
			return Topic{}, fmt.Errorf("topic %q: unknown window %q: use today, 24h, 7d or 30d", name, parts[2])
		}
		t.Window = parts[2]
	}
	return t, nil
}

// ParseLive reads the name of a topic a screen may subscribe to; an
// internal one is refused as unknown, as screens are told.
func ParseLive(name string) (Topic, error) {
	t, err := Parse(name)
	if err == nil && !t.Kind.Live() {
		return Topic{}, unknown(name)
	}
	return t, err
}

// KindOf is the kind a name starts with, without checking the rest: what
// the bus's router needs to hand a message on. An internal/ name it does
// not know is Internal; any other name it does not know, "".
func KindOf(name string) Kind {
	if strings.HasPrefix(name, internalPrefix) {
		for _, k := range fixed {
			if name == string(k) {
				return k
			}
		}
		if strings.HasPrefix(name, string(ScreenSeen)+"/") {
			return ScreenSeen
		}
		return Internal
	}
	head, _, ok := strings.Cut(name, "/")
	if k := Kind(head); ok && k.Live() {
		return k
	}
	return ""
}

func unknown(name string) error {
	return fmt.Errorf("unknown topic %q: topics are kpi/{area} and map/{area} (today), kpi/{area}/{window} and map/{area}/{window} with window 24h, 7d or 30d, alarms/{area}, events/{area}, devices/{area}, and screen/{id}", name)
}

// segment says whether s is one non-empty segment of a name.
func segment(s string) bool { return s != "" && !strings.Contains(s, "/") }

func knownWindow(w string) bool { return slices.Contains(Windows, w) }
