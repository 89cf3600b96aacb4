package wall

import (
	"encoding/json"
	"slices"
	"sort"
	"time"

	"github.com/openioc/ioc/geo"
)

// State is the payload of topic screen/{id}: what the screen must show now.
type State struct {
	Screen string          `json:"screen"`
	Title  json.RawMessage `json:"title,omitempty"`
	Wall   string          `json:"wall,omitempty"`
	// Playlist in force (empty when one dashboard is shown), the step of
	// it shown (0-based) and how many steps it has (each_child_of items
	// expanded).
	Playlist string `json:"playlist,omitempty"`
	Step     int    `json:"step"`
	Steps    int    `json:"steps"`
	// Dashboard, Area and Window say what to render: the dashboard's
	// "$area" is Area.
	Dashboard string `json:"dashboard"`
	Area      string `json:"area"`
	Window    string `json:"window"`
	Part      Part   `json:"part"`
	// Until is when the rotation moves on (null: one dashboard, shown until
	// told otherwise). While a takeover holds the wall the rotation is
	// paused: Until is then the takeover's end plus what was left of the
	// step, and is recomputed when the takeover ends earlier.
	Until         *time.Time `json:"until"`
	Takeover      *Takeover  `json:"takeover"`
	IdentifyUntil *time.Time `json:"identify_until"`
	// Reload grows by one for each reload command: a page that sees it
	// change reloads itself.
	Reload int64 `json:"reload"`
	// Build is the server's build: a page built by another reloads itself.
	Build string `json:"build"`
	// Override says a show or play command is in force rather than the
	// documents' schedule.
	Override bool   `json:"override"`
	Problem  string `json:"problem,omitempty"`
}

// Takeover is an alarm shown on a screen in place of the rotation.
type Takeover struct {
	Alarm json.RawMessage `json:"alarm"` // as on the alarms/ topics
	Until time.Time       `json:"until"` // when it gives way unless acknowledged first
	Chime bool            `json:"chime"`
	// Queue are the alarms waiting for their turn, most severe first.
	Queue []json.RawMessage `json:"queue"`
}

// Severities in increasing order.
var severities = []string{"info", "warning", "critical"}

func severityRank(s string) int { return slices.Index(severities, s) }

const (
	// defaultTimeout is how long an alarm holds a screen when the wall's
	// takeover names no timeout_seconds.
	defaultTimeout = 300 * time.Second
	// maxQueue bounds the alarms waiting for a wall; beyond, the least
	// severe are dropped.
	maxQueue = 20
	// doneFor is how long an alarm that timed out is remembered, so that
	// the open lists carried by later alarms/ messages do not bring it back.
	doneFor = 24 * time.Hour
)

// alarm is what the walls read of an alarm; raw is the whole, shown.
type alarm struct {
	ID       string    `json:"id"`
	Severity string    `json:"severity"`
	State    string    `json:"state"`
	AreaCode string    `json:"area_code"`
	OpenedAt time.Time `json:"opened_at"`
	raw      json.RawMessage
}

// queued is an alarm waiting for, or holding, a wall.
type queued struct {
	alarm
	rank  int
	left  time.Duration // of its time on screen, while it waits
	until time.Time     // while it holds the screens
}

// group is the live state of one layout: its schedule, its position in
// it, and its takeover. Only the node holding the walls lease keeps one.
type group struct {
	layout *layout
	// override is a show or play command in force: ovPlaylist or
	// ovDashboard instead of the documents' schedule, until another
	// command or until the documents' schedule changes from ovOf.
	override                bool
	ovPlaylist, ovDashboard string
	ovOf                    [2]string
	// playlist or dashboard in force, and its expansion.
	playlist, dashboard string
	steps               []step
	problem             string
	index               int
	until               time.Time     // end of the step; zero: one dashboard, no rotation
	remaining           time.Duration // of the step, while a takeover pauses the rotation

	head  *queued   // the alarm on screen
	queue []*queued // every alarm holding or waiting, head first
	done  map[string]time.Time

	identify map[string]time.Time // per screen
	reload   map[string]int64     // per screen
}

func newGroup(l *layout) *group {
	return &group{layout: l, done: map[string]time.Time{}, identify: map[string]time.Time{}, reload: map[string]int64{}}
}

// source is what the group shows: the documents' schedule unless a
// command overrides it.
func (g *group) source() (playlist, dashboard string) {
	if g.override {
		return g.ovPlaylist, g.ovDashboard
	}
	return g.layout.playlist, g.layout.dashboard
}

// command sets the schedule: a playlist or a dashboard in place of the
// documents' one, or (both empty) the documents' one again.
func (g *group) command(playlist, dashboard string, lib *library, h *geo.Hierarchy, now time.Time) {
	g.override = playlist != "" || dashboard != ""
	g.ovPlaylist, g.ovDashboard = playlist, dashboard
	if playlist != "" {
		g.ovDashboard = ""
	}
	g.ovOf = [2]string{g.layout.playlist, g.layout.dashboard}
	g.steps = nil // start over, even on the schedule shown already
	g.expand(lib, h, now)
}

// relayout takes the documents' new reading of the group: an override
// ends when the documents' schedule changed since it was given, alarms
// that no longer qualify leave, and the position is kept when the
// schedule is the same.
func (g *group) relayout(l *layout, lib *library, h *geo.Hierarchy, now time.Time) {
	g.layout = l
	if g.override && g.ovOf != [2]string{l.playlist, l.dashboard} {
		g.override = false
	}
	g.expand(lib, h, now)
	g.queue = slices.DeleteFunc(g.queue, func(q *queued) bool { return !g.qualifies(q.alarm, h) })
	g.promote(now)
	for id := range g.identify {
		if !slices.ContainsFunc(l.members, func(m member) bool { return m.id == id }) {
			delete(g.identify, id)
		}
	}
}

// expand reads the steps of the schedule in force again, keeping the
// position when the schedule is the same one (a playlist edited keeps its
// step, unless it no longer has it), starting over otherwise.
func (g *group) expand(lib *library, h *geo.Hierarchy, now time.Time) {
	pl, db := g.source()
	steps, problem := lib.steps(pl, db, h)
	same := pl == g.playlist && db == g.dashboard && g.steps != nil
	g.playlist, g.dashboard, g.steps, g.problem = pl, db, steps, problem
	if same && g.index < len(steps) {
		return
	}
	g.start(0, now)
}

// start shows step i from now.
func (g *group) start(i int, now time.Time) {
	g.index, g.until, g.remaining = i, time.Time{}, 0
	if i >= len(g.steps) || g.steps[i].seconds == 0 {
		return
	}
	d := time.Duration(g.steps[i].seconds) * time.Second
	if g.head != nil {
		g.remaining = d
		return
	}
	g.until = now.Add(d)
}

// advance moves the rotation on if its step is over; it says whether it
// did. A takeover pauses it.
func (g *group) advance(now time.Time) bool {
	if g.head != nil || g.until.IsZero() || now.Before(g.until) || len(g.steps) == 0 {
		return false
	}
	next := (g.index + 1) % len(g.steps)
	end := g.until.Add(time.Duration(g.steps[next].seconds) * time.Second)
	if !end.After(now) {
		end = now.Add(time.Duration(g.steps[next].seconds) * time.Second) // late (a pause of the node): no skipping
	}
	g.index, g.until = next, end
	return true
}

// timeout is how long an alarm holds the group's screens.
func (g *group) timeout() time.Duration {
	if t := g.layout.takeover; t != nil && t.TimeoutSeconds > 0 {
		return time.Duration(t.TimeoutSeconds) * time.Second
	}
	return defaultTimeout
}

// qualifies says whether a takes the group's screens over: it is open, at
// or above the takeover's severity, in the areas of the group's screens.
func (g *group) qualifies(a alarm, h *geo.Hierarchy) bool {
	t := g.layout.takeover
	if t == nil || a.State != "open" || a.ID == "" {
		return false
	}
	min := severityRank(t.MinSeverity)
	if min < 0 {
		min = severityRank("critical")
	}
	if severityRank(a.Severity) < min {
		return false
	}
	for _, area := range g.layout.areas {
		if h.Contains(area, a.AreaCode) {
			return true
		}
	}
	return false
}

func (g *group) holds(id string) bool {
	return slices.ContainsFunc(g.queue, func(q *queued) bool { return q.ID == id })
}

// offer queues a qualifying alarm; it says whether anything changed.
func (g *group) offer(a alarm, now time.Time) bool {
	if _, done := g.done[a.ID]; done || g.holds(a.ID) {
		return false
	}
	g.queue = append(g.queue, &queued{alarm: a, rank: severityRank(a.Severity), left: g.timeout()})
	g.promote(now)
	return true
}

// drop removes an alarm acknowledged or resolved; it says whether the
// group held it.
func (g *group) drop(id string, now time.Time) bool {
	i := slices.IndexFunc(g.queue, func(q *queued) bool { return q.ID == id })
	if i < 0 {
		return false
	}
	g.queue = slices.Delete(g.queue, i, i+1)
	g.promote(now)
	return true
}

// expire ends the takeover of an alarm whose time is up; it says whether
// one ended.
func (g *group) expire(now time.Time) bool {
	if g.head == nil || now.Before(g.head.until) {
		return false
	}
	g.done[g.head.ID] = now
	for id, at := range g.done {
		if now.Sub(at) > doneFor {
			delete(g.done, id)
		}
	}
	return g.drop(g.head.ID, now)
}

// promote puts the most severe alarm (the oldest among equals) on screen.
// One that gives way to a more severe one keeps what was left of its time;
// the rotation pauses while any alarm holds the screens and resumes where
// it was when the last one goes.
func (g *group) promote(now time.Time) {
	sort.SliceStable(g.queue, func(i, j int) bool {
		a, b := g.queue[i], g.queue[j]
		if a.rank != b.rank {
			return a.rank > b.rank
		}
		if !a.OpenedAt.Equal(b.OpenedAt) {
			return a.OpenedAt.Before(b.OpenedAt)
		}
		return a.ID < b.ID
	})
	if len(g.queue) > maxQueue {
		g.queue = g.queue[:maxQueue]
	}
	var next *queued
	if len(g.queue) > 0 {
		next = g.queue[0]
	}
	if next == g.head {
		return
	}
	prev := g.head
	if prev != nil && g.holds(prev.ID) {
		prev.left = max(prev.until.Sub(now), time.Second) // preempted: keeps the rest of its time
	}
	switch {
	case prev == nil && next != nil && !g.until.IsZero(): // pause the rotation
		g.remaining, g.until = max(g.until.Sub(now), 0), time.Time{}
	case prev != nil && next == nil && g.remaining > 0: // resume it
		g.until, g.remaining = now.Add(g.remaining), 0
	}
	if next != nil {
		next.until = now.Add(next.left)
	}
	g.head = next
}

// next is when the group must be looked at again: its step ends, its
// alarm's time is up or a screen stops identifying itself.
func (g *group) next() time.Time {
	var t time.Time
	earlier := func(c time.Time) {
		if !c.IsZero() && (t.IsZero() || c.Before(t)) {
			t = c
		}
	}
	earlier(g.until)
	if g.head != nil {
		earlier(g.head.until)
	}
	for _, u := range g.identify {
		earlier(u)
	}
	return t
}

// tick applies the passage of time; it says whether anything changed.
func (g *group) tick(now time.Time) bool {
	changed := false
	for g.expire(now) {
		changed = true
	}
	if g.advance(now) {
		changed = true
	}
	for id, u := range g.identify {
		if !now.Before(u) {
			delete(g.identify, id)
			changed = true
		}
	}
	return changed
}

// state is what member m must show now.
func (g *group) state(m member, lib *library, build string, loc *time.Location) State {
	s := State{Screen: m.id, Title: m.title, Wall: g.layout.wall, Playlist: g.playlist, Steps: len(g.steps),
		Part: m.part, Reload: g.reload[m.id], Build: build, Override: g.override, Window: "today"}
	s.Problem = m.problem
	if s.Problem == "" {
		s.Problem = g.problem
	}
	if g.index < len(g.steps) {
		st := g.steps[g.index]
		s.Step, s.Dashboard = g.index, st.dashboard
		d := lib.dashboards[st.dashboard]
		if d.Window != "" {
			s.Window = d.Window
		}
		switch {
		case st.area != "":
			s.Area = st.area
		case d.Area != "" && d.Area != "$area":
			s.Area = d.Area
		case len(m.areas) > 0:
			s.Area = m.areas[0]
		}
	}
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.In(loc)
		return &t
	}
	switch {
	case g.head != nil && g.remaining > 0:
		s.Until = at(g.head.until.Add(g.remaining))
	case g.head == nil:
		s.Until = at(g.until)
	}
	if g.head != nil && g.designated(m.id) {
		t := &Takeover{Alarm: g.head.raw, Until: g.head.until.In(loc), Chime: g.layout.takeover.Chime, Queue: []json.RawMessage{}}
		for _, q := range g.queue[1:] {
			t.Queue = append(t.Queue, q.raw)
		}
		s.Takeover = t
	}
	if u, ok := g.identify[m.id]; ok {
		s.IdentifyUntil = at(u)
	}
	return s
}

// designated says whether a takeover shows on screen id: the screens the
// takeover names, or every screen of the group when it names none.
func (g *group) designated(id string) bool {
	t := g.layout.takeover
	return t != nil && (len(t.Screens) == 0 || slices.Contains(t.Screens, id))
}

// restore takes the position a previous holder of the lease published
// for the group (the state of its first screen that has one), so that a
// new holder carries on where the wall is rather than starting over.
func (g *group) restore(states map[string]State, lib *library, h *geo.Hierarchy, now time.Time) {
	for _, m := range g.layout.members {
		if s, ok := states[m.id]; ok {
			g.reload[m.id] = s.Reload
			if s.IdentifyUntil != nil && now.Before(*s.IdentifyUntil) {
				g.identify[m.id] = *s.IdentifyUntil
			}
		}
	}
	// The schedule and position are the same on every screen of the
	// group; the takeover is on its designated screens only.
	var s State
	var taken *Takeover
	found := false
	for _, m := range g.layout.members {
		st, ok := states[m.id]
		if ok && !found {
			s, found = st, true
		}
		if ok && st.Takeover != nil && taken == nil {
			taken = st.Takeover
		}
	}
	if !found {
		g.expand(lib, h, now)
		return
	}
	if s.Override {
		g.override, g.ovPlaylist, g.ovOf = true, s.Playlist, [2]string{g.layout.playlist, g.layout.dashboard}
		if s.Playlist == "" {
			g.ovDashboard = s.Dashboard
		}
	}
	g.steps = nil
	g.expand(lib, h, now)
	if s.Step < len(g.steps) && g.steps[s.Step].dashboard == s.Dashboard && g.steps[s.Step].seconds > 0 && s.Until != nil {
		g.index, g.until = s.Step, *s.Until
		if taken != nil {
			// Published while paused: until was the takeover's end plus
			// what was left of the step.
			g.until = g.until.Add(-taken.Until.Sub(now))
		}
	}
	if taken == nil {
		return
	}
	for i, raw := range append([]json.RawMessage{taken.Alarm}, taken.Queue...) {
		q := queuedOf(raw, g)
		if q == nil || !g.qualifies(q.alarm, h) {
			continue
		}
		if i == 0 {
			q.left = max(taken.Until.Sub(now), time.Second)
		}
		g.queue = append(g.queue, q)
	}
	g.promote(now)
}

func queuedOf(raw json.RawMessage, g *group) *queued {
	a, ok := decodeAlarm(raw)
	if !ok {
		return nil
	}
	return &queued{alarm: a, rank: severityRank(a.Severity), left: g.timeout()}
}

func decodeAlarm(raw json.RawMessage) (alarm, bool) {
	var a alarm
	if err := json.Unmarshal(raw, &a); err != nil || a.ID == "" {
		return alarm{}, false
	}
	a.raw = raw
	return a, true
}
