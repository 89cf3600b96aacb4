package wall

import (
	"encoding/json"
	"slices"
	"sort"
	"time"

	"github.com/openioc/ioc/severity"

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
	// DashboardRev changes whenever the dashboard's document does: a page
	// reads the dashboard again when it sees it change.
	DashboardRev string `json:"dashboard_rev"`
	Area         string `json:"area"`
	Window       string `json:"window"`
	Part         Part   `json:"part"`
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

// queued is an alarm waiting for, or holding, a screen.
type queued struct {
	alarm
	rank  int
	left  time.Duration // of its time on screen, while it waits
	until time.Time     // while it holds the screen
}

// takeover is the alarms of one designated screen: the one it shows (the
// most severe, the oldest among equals) and those waiting. Each screen has
// its own, since a screen shows only the alarms of its own areas.
type takeover struct {
	head  *queued
	queue []*queued // head first
	done  map[string]time.Time
}

func (tk *takeover) holds(id string) bool {
	return slices.ContainsFunc(tk.queue, func(q *queued) bool { return q.ID == id })
}

// offer queues an alarm for timeout on screen; it says whether it is new.
func (tk *takeover) offer(a alarm, timeout time.Duration, now time.Time) bool {
	if _, done := tk.done[a.ID]; done || tk.holds(a.ID) {
		return false
	}
	tk.queue = append(tk.queue, &queued{alarm: a, rank: severity.Rank(a.Severity), left: timeout})
	tk.promote(now)
	return true
}

// drop removes an alarm; it says whether the screen held it.
func (tk *takeover) drop(id string, now time.Time) bool {
	i := slices.IndexFunc(tk.queue, func(q *queued) bool { return q.ID == id })
	if i < 0 {
		return false
	}
	tk.queue = slices.Delete(tk.queue, i, i+1)
	tk.promote(now)
	return true
}

// expire ends the alarm whose time is up; it says whether one ended.
func (tk *takeover) expire(now time.Time) bool {
	if tk.head == nil || now.Before(tk.head.until) {
		return false
	}
	tk.done[tk.head.ID] = now
	for id, at := range tk.done {
		if now.Sub(at) > doneFor {
			delete(tk.done, id)
		}
	}
	return tk.drop(tk.head.ID, now)
}

// promote puts the most severe alarm (the oldest among equals) on screen.
// One that gives way to a more severe one keeps what was left of its time.
func (tk *takeover) promote(now time.Time) {
	sort.SliceStable(tk.queue, func(i, j int) bool {
		a, b := tk.queue[i], tk.queue[j]
		if a.rank != b.rank {
			return a.rank > b.rank
		}
		if !a.OpenedAt.Equal(b.OpenedAt) {
			return a.OpenedAt.Before(b.OpenedAt)
		}
		return a.ID < b.ID
	})
	if len(tk.queue) > maxQueue {
		tk.queue = tk.queue[:maxQueue]
	}
	var next *queued
	if len(tk.queue) > 0 {
		next = tk.queue[0]
	}
	if next == tk.head {
		return
	}
	if prev := tk.head; prev != nil && tk.holds(prev.ID) {
		prev.left = max(prev.until.Sub(now), time.Second) // preempted: keeps the rest of its time
	}
	if next != nil {
		next.until = now.Add(next.left)
	}
	tk.head = next
}

// group is the live state of one layout: its schedule, its position in
// it, and its screens' takeovers. Only the node holding the walls lease
// keeps one.
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

	// takeovers are the designated screens' alarms. The rotation pauses
	// while any of them shows one, so that the screens resume in step.
	takeovers map[string]*takeover

	identify map[string]time.Time // per screen
	reload   map[string]int64     // per screen
}

func newGroup(l *layout) *group {
	return &group{layout: l, takeovers: map[string]*takeover{}, identify: map[string]time.Time{}, reload: map[string]int64{}}
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
// leave screens that no longer take them, and the position is kept when
// the schedule is the same.
func (g *group) relayout(l *layout, lib *library, h *geo.Hierarchy, now time.Time) {
	g.layout = l
	if g.override && g.ovOf != [2]string{l.playlist, l.dashboard} {
		g.override = false
	}
	g.expand(lib, h, now)
	was := g.held()
	for id, tk := range g.takeovers {
		m, ok := g.member(id)
		for _, q := range slices.Clone(tk.queue) {
			if !ok || !g.designated(id) || !covers(m, q.AreaCode, h) || !g.qualifies(q.alarm) {
				tk.drop(q.ID, now)
			}
		}
	}
	g.settle(was, now)
	for id := range g.identify {
		if _, ok := g.member(id); !ok {
			delete(g.identify, id)
		}
	}
}

func (g *group) member(id string) (member, bool) {
	i := slices.IndexFunc(g.layout.members, func(m member) bool { return m.id == id })
	if i < 0 {
		return member{}, false
	}
	return g.layout.members[i], true
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
	if g.held() {
		g.remaining = d
		return
	}
	g.until = now.Add(d)
}

// advance moves the rotation on if its step is over; it says whether it
// did. A takeover pauses it.
func (g *group) advance(now time.Time) bool {
	if g.held() || g.until.IsZero() || now.Before(g.until) || len(g.steps) == 0 {
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

// held says whether a screen of the group shows an alarm.
func (g *group) held() bool {
	for _, tk := range g.takeovers {
		if tk.head != nil {
			return true
		}
	}
	return false
}

// heldUntil is when the last alarm on the group's screens gives way
// unless acknowledged first.
func (g *group) heldUntil() time.Time {
	var t time.Time
	for _, tk := range g.takeovers {
		if tk.head != nil && tk.head.until.After(t) {
			t = tk.head.until
		}
	}
	return t
}

// settle pauses the rotation when the first alarm took a screen, and
// resumes it, with what was left of its step, when the last one went.
func (g *group) settle(was bool, now time.Time) {
	switch held := g.held(); {
	case !was && held && !g.until.IsZero():
		g.remaining, g.until = max(g.until.Sub(now), 0), time.Time{}
	case was && !held && g.remaining > 0:
		g.until, g.remaining = now.Add(g.remaining), 0
	}
}

// timeout is how long an alarm holds a screen.
func (g *group) timeout() time.Duration {
	if t := g.layout.takeover; t != nil && t.TimeoutSeconds > 0 {
		return time.Duration(t.TimeoutSeconds) * time.Second
	}
	return defaultTimeout
}

// qualifies says whether a may take screens of the group over: it is open
// and at or above the takeover's severity.
func (g *group) qualifies(a alarm) bool {
	t := g.layout.takeover
	if t == nil || a.State != "open" || a.ID == "" {
		return false
	}
	min := severity.Rank(t.MinSeverity)
	if min < 0 {
		min = severity.Rank(severity.Critical)
	}
	return severity.Rank(a.Severity) >= min
}

// covers says whether unit code lies in m's areas: a screen shows only the
// alarms of its own areas, which its kiosk token may read.
func covers(m member, code string, h *geo.Hierarchy) bool {
	for _, area := range m.areas {
		if h.Contains(area, code) {
			return true
		}
	}
	return false
}

// designated says whether a takeover shows on screen id: the screens the
// takeover names, or every screen of the group when it names none.
func (g *group) designated(id string) bool {
	t := g.layout.takeover
	return t != nil && (len(t.Screens) == 0 || slices.Contains(t.Screens, id))
}

// offer gives a qualifying alarm to every designated screen whose areas
// hold it; it says whether a screen took it.
func (g *group) offer(a alarm, h *geo.Hierarchy, now time.Time) bool {
	if !g.qualifies(a) {
		return false
	}
	was, taken := g.held(), false
	for _, m := range g.layout.members {
		if !g.designated(m.id) || !covers(m, a.AreaCode, h) {
			continue
		}
		tk := g.takeovers[m.id]
		if tk == nil {
			tk = &takeover{done: map[string]time.Time{}}
			g.takeovers[m.id] = tk
		}
		if tk.offer(a, g.timeout(), now) {
			taken = true
		}
	}
	g.settle(was, now)
	return taken
}

// drop releases an alarm acknowledged or resolved from every screen.
func (g *group) drop(id string, now time.Time) bool {
	was, dropped := g.held(), false
	for _, tk := range g.takeovers {
		if tk.drop(id, now) {
			dropped = true
		}
	}
	g.settle(was, now)
	return dropped
}

// holding lists the alarms of the group's screens.
func (g *group) holding() []*queued {
	var out []*queued
	for _, tk := range g.takeovers {
		out = append(out, tk.queue...)
	}
	return out
}

// next is when the group must be looked at again: its step ends, an
// alarm's time is up or a screen stops identifying itself.
func (g *group) next() time.Time {
	var t time.Time
	earlier := func(c time.Time) {
		if !c.IsZero() && (t.IsZero() || c.Before(t)) {
			t = c
		}
	}
	earlier(g.until)
	for _, tk := range g.takeovers {
		if tk.head != nil {
			earlier(tk.head.until)
		}
	}
	for _, u := range g.identify {
		earlier(u)
	}
	return t
}

// tick applies the passage of time; it says whether anything changed.
func (g *group) tick(now time.Time) bool {
	changed := false
	was := g.held()
	for _, tk := range g.takeovers {
		for tk.expire(now) {
			changed = true
		}
	}
	g.settle(was, now)
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
func (g *group) state(m member, lib *library, h *geo.Hierarchy, build string, loc *time.Location) State {
	s := State{Screen: m.id, Title: m.title, Wall: g.layout.wall, Playlist: g.playlist, Steps: len(g.steps),
		Part: m.part, Reload: g.reload[m.id], Build: build, Override: g.override, Window: "today"}
	s.Problem = m.problem
	if s.Problem == "" {
		s.Problem = g.problem
	}
	if g.index < len(g.steps) {
		st := g.steps[g.index]
		s.Step, s.Dashboard, s.DashboardRev = g.index, st.dashboard, lib.revs[st.dashboard]
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
	case g.held() && g.remaining > 0:
		s.Until = at(g.heldUntil().Add(g.remaining))
	case !g.held():
		s.Until = at(g.until)
	}
	if tk := g.takeovers[m.id]; tk != nil && tk.head != nil {
		t := &Takeover{Alarm: tk.head.raw, Until: tk.head.until.In(loc), Chime: g.layout.takeover != nil && g.layout.takeover.Chime,
			Queue: []json.RawMessage{}}
		for _, q := range tk.queue[1:] {
			t.Queue = append(t.Queue, q.raw)
		}
		s.Takeover = t
	}
	if u, ok := g.identify[m.id]; ok {
		s.IdentifyUntil = at(u)
	}
	return s
}

// restore takes the position a previous holder of the lease published
// for the group, so that a new holder carries on where the wall is rather
// than starting over: the schedule and step of its first screen that has
// a state (they are the same on every screen), and each screen's
// takeover, reload count and identification.
func (g *group) restore(states map[string]State, lib *library, h *geo.Hierarchy, now time.Time) {
	var s State
	found := false
	var heldUntil time.Time // of the alarms on the screens when it was published
	for _, m := range g.layout.members {
		st, ok := states[m.id]
		if !ok {
			continue
		}
		if !found {
			s, found = st, true
		}
		g.reload[m.id] = st.Reload
		if st.IdentifyUntil != nil && now.Before(*st.IdentifyUntil) {
			g.identify[m.id] = *st.IdentifyUntil
		}
		if st.Takeover != nil && st.Takeover.Until.After(heldUntil) {
			heldUntil = st.Takeover.Until
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
		if !heldUntil.IsZero() {
			// Published while paused: until was the last takeover's end
			// plus what was left of the step.
			g.until = g.until.Add(-heldUntil.Sub(now))
		}
	}
	was := g.held()
	for _, m := range g.layout.members {
		st, ok := states[m.id]
		if !ok || st.Takeover == nil || !g.designated(m.id) {
			continue
		}
		tk := &takeover{done: map[string]time.Time{}}
		for i, raw := range append([]json.RawMessage{st.Takeover.Alarm}, st.Takeover.Queue...) {
			a, ok := decodeAlarm(raw)
			if !ok || !g.qualifies(a) || !covers(m, a.AreaCode, h) {
				continue
			}
			q := &queued{alarm: a, rank: severity.Rank(a.Severity), left: g.timeout()}
			if i == 0 {
				q.left = max(st.Takeover.Until.Sub(now), time.Second)
			}
			tk.queue = append(tk.queue, q)
		}
		tk.promote(now)
		g.takeovers[m.id] = tk
	}
	g.settle(was, now)
}

func decodeAlarm(raw json.RawMessage) (alarm, bool) {
	var a alarm
	if err := json.Unmarshal(raw, &a); err != nil || a.ID == "" {
		return alarm{}, false
	}
	a.raw = raw
	return a, true
}
