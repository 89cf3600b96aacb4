// Package wall runs the screens of the control-room wall from the server:
// what each screen shows now, published on its live topic screen/{id}.
// It owns the rotation of playlists (a screen's, or a wall's, whose
// screens all show the same step at the same time), the commands
// operators give screens (show, play, reload, identify), the alarm
// takeover (an alarm at or above a wall's severity takes over each
// designated screen whose areas hold it, until acknowledged or until its
// time is up; several queue by severity, per screen; the wall's rotation
// pauses meanwhile and then resumes where it was), and the reports pages
// make of themselves (last seen, build).
//
// One node at a time runs the walls: the one holding the walls lease. It
// publishes the state of every screen, stamped with versions that start
// with the lease's fencing token, and every change of a wall goes out in
// one publication whose messages share one version. A node that takes the
// lease over carries on from the states last published (the bus keeps
// them), so screens neither jump back nor start their playlist over. The
// documents (screens, walls, playlists, dashboards) are read from the
// store at start and every Reload; alarms and commands reach the holder
// as bus messages (Observe), never as calls between the parts.
//
// Concurrency: a Walls is safe for concurrent use. Run is called once and
// owns the loop, and the election goroutine, until its context ends;
// Observe never blocks.
package wall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/dashboards"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/topic"
)

// CommandTopic carries operators' commands from the node that took them to
// the node holding the walls lease. Internal: no screen sees it.
const CommandTopic = string(topic.ScreenCommand)

// Config tunes Walls. Zero fields take the defaults.
type Config struct {
	// Lease names the lease whose holder runs the walls; default "walls"
	// (a node names it after its database).
	Lease string
	// Build is the server's build, put in every state so that pages of
	// another build reload themselves.
	Build string
	// Location is the zone times are written in; default UTC.
	Location *time.Location
	// Reload is how often the documents are read again; default 10s.
	Reload time.Duration
	// IdentifyFor is how long a screen shows its name when told to
	// identify itself; default 10s.
	IdentifyFor time.Duration
	// Clock tells the time and wakes the loop; default the system's.
	Clock Clock
}

// Clock is the time as the walls see it. At returns a channel that
// receives once the clock reaches t (at once if it has), and a function
// that releases it.
type Clock interface {
	Now() time.Time
	At(t time.Time) (<-chan time.Time, func())
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) At(t time.Time) (<-chan time.Time, func()) {
	tm := time.NewTimer(time.Until(t))
	return tm.C, func() { tm.Stop() }
}

// Bus is what the walls publish on and read the latest messages from.
type Bus interface {
	Publish(ctx context.Context, msgs ...bus.Message) error
	Latest(ctx context.Context, topics []string) (map[string]bus.Message, error)
}

// Leases elect the node that runs the walls.
type Leases interface {
	Acquire(ctx context.Context, name string) (*lease.Lease, error)
}

// Walls runs the screens; see the package doc.
type Walls struct {
	cfg    Config
	docs   Documents
	h      *geo.Hierarchy
	bus    Bus
	leases Leases
	logger *slog.Logger
	clock  Clock
	m      metrics

	leading atomic.Bool
	wake    chan struct{}

	inMu  sync.Mutex
	inbox []event // for the loop: alarms/ messages and commands

	mu      sync.RWMutex
	lib     *library           // the documents last read; nil before
	layouts map[string]*layout // by key
	byScr   map[string]string  // screen → layout key
	groups  map[string]*group  // by layout key, while leading
	last    map[string][]byte  // screen → payload last published in this term
}

type event struct {
	alarms  []byte   // an alarms/ payload
	command *Command // or a command
}

type metrics struct {
	leader    prometheus.Gauge
	published prometheus.Counter
	takeovers prometheus.Counter
	commands  *prometheus.CounterVec
	errors    prometheus.Counter
}

// New returns the walls over the documents in docs, for the units of h.
func New(cfg Config, docs Documents, h *geo.Hierarchy, b Bus, leases Leases, logger *slog.Logger, reg prometheus.Registerer) (*Walls, error) {
	if docs == nil || h == nil || b == nil || leases == nil {
		return nil, errors.New("walls need the documents, a hierarchy, the bus and leases")
	}
	if cfg.Lease == "" {
		cfg.Lease = "walls"
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Reload <= 0 {
		cfg.Reload = 10 * time.Second
	}
	if cfg.IdentifyFor <= 0 {
		cfg.IdentifyFor = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if logger == nil {
		logger = slog.Default()
	}
	w := &Walls{cfg: cfg, docs: docs, h: h, bus: b, leases: leases, logger: logger, clock: cfg.Clock,
		wake: make(chan struct{}, 1), layouts: map[string]*layout{}, byScr: map[string]string{}, last: map[string][]byte{},
		m: metrics{
			leader: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "ioc_wall_leader", Help: "1 while this node holds the walls lease and publishes the screens' states."}),
			published: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_wall_states_published_total", Help: "screen/ messages published."}),
			takeovers: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_wall_takeovers_total", Help: "Alarms that took a wall's screens over."}),
			commands: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_wall_commands_total", Help: "Commands applied to screens, by op."}, []string{"op"}),
			errors: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "ioc_wall_errors_total", Help: "Reads of the documents and publications that failed and are retried."}),
		}}
	if reg != nil {
		reg.MustRegister(w.m.leader, w.m.published, w.m.takeovers, w.m.commands, w.m.errors)
	}
	return w, nil
}

// Observe takes a bus message: alarms/ messages (for takeovers) and
// commands, on the node holding the lease; other nodes and other topics
// are ignored. It never blocks.
func (w *Walls) Observe(m bus.Message) {
	if !w.leading.Load() {
		return
	}
	var ev event
	switch {
	case topic.KindOf(m.Topic) == topic.Alarms:
		ev.alarms = m.Payload
	case m.Topic == CommandTopic:
		var c Command
		if err := json.Unmarshal(m.Payload, &c); err != nil {
			w.logger.Warn("malformed message on "+CommandTopic, "err", err)
			return
		}
		ev.command = &c
	default:
		return
	}
	w.inMu.Lock()
	if len(w.inbox) < 10_000 { // a loop that stopped must not hold memory without bound
		w.inbox = append(w.inbox, ev)
	}
	w.inMu.Unlock()
	w.poke()
}

func (w *Walls) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Reload asks for the documents to be read again now (an admin saved
// one). It never blocks.
func (w *Walls) Reload() {
	w.inMu.Lock()
	w.inbox = append(w.inbox, event{})
	w.inMu.Unlock()
	w.poke()
}

// term is one tenure as the node that runs the walls.
type term struct {
	lease    *lease.Lease
	versions *bus.Versions
	ctx      context.Context // ends with the term
	cancel   context.CancelFunc
	// running is set once the groups carried on from the states last
	// published and every state went out.
	running bool
}

// errLost ends a term whose lease was lost.
var errLost = errors.New("the walls lease was lost")

// Run reads the documents every Reload until ctx ends, and, while this
// node holds the walls lease, runs every screen: it publishes every
// state when it takes the lease, then each change (a step ending, an
// alarm, a command, a document edited) as it happens.
func (w *Walls) Run(ctx context.Context) error {
	won := make(chan *lease.Lease)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		lease.Campaign(ctx, w.leases, w.cfg.Lease, won, func(err error) {
			w.logger.Warn("cannot take part in electing the node that runs the walls; retrying", "err", err)
		})
	})

	var t *term
	end := func() {
		t.cancel()
		w.leading.Store(false)
		w.mu.Lock()
		w.groups, w.last = nil, map[string][]byte{}
		w.mu.Unlock()
		w.inMu.Lock()
		w.inbox = nil
		w.inMu.Unlock()
		w.m.leader.Set(0)
		wg.Go(t.lease.Release)
		t = nil
	}
	defer func() {
		if t != nil {
			end()
		}
	}()
	// fail ends the term when err says another node may run the walls
	// now; other failures are retried at the next change or reload.
	fail := func(what string, err error) {
		if err == nil || ctx.Err() != nil || t == nil {
			return
		}
		if t.ctx.Err() != nil || errors.Is(err, errLost) || bus.OnlyStale(err) || errors.Is(err, bus.ErrExhausted) {
			w.logger.Warn("stopped running the walls; waiting for the lease again", "token", t.lease.Token(), "err", err)
			end()
			return
		}
		w.m.errors.Inc()
		w.logger.Warn(what+" failed; retrying", "err", err)
	}

	if err := w.Load(ctx); err != nil && ctx.Err() == nil {
		w.m.errors.Inc()
		w.logger.Warn("read the wall documents; retrying at the next reload", "err", err)
	}
	nextReload := w.clock.Now().Add(w.cfg.Reload)
	for {
		var lost <-chan struct{}
		var due <-chan time.Time
		stopDue := func() {}
		if t != nil {
			lost = t.lease.Lost()
			if n := w.nextDue(); !n.IsZero() {
				due, stopDue = w.clock.At(n)
			}
		}
		reload, stopReload := w.clock.At(nextReload)
		select {
		case <-ctx.Done():
			stopDue()
			stopReload()
			return nil
		case l := <-won:
			if t != nil {
				end()
			}
			tctx, cancel := context.WithCancel(ctx)
			t = &term{lease: l, versions: bus.NewVersions(l.Token()), ctx: tctx, cancel: cancel}
			wg.Go(func() {
				select {
				case <-l.Lost():
					cancel()
				case <-tctx.Done():
				}
			})
			fail("taking over the walls", w.takeOver(t))
		case <-lost:
			w.logger.Warn("lost the walls lease; stopped publishing the screens' states", "token", t.lease.Token())
			end()
		case <-w.wake:
			w.inMu.Lock()
			evs := w.inbox
			w.inbox = nil
			w.inMu.Unlock()
			reloadNow := false
			for _, ev := range evs {
				if ev.alarms == nil && ev.command == nil {
					reloadNow = true
				}
			}
			if reloadNow {
				nextReload = w.clock.Now().Add(w.cfg.Reload)
				fail("reading the wall documents", w.Load(ctx))
			}
			if t != nil && t.running {
				w.apply(evs)
				fail("publishing the screens' states", w.publish(t, false))
			}
		case <-due:
			if t != nil && t.running {
				w.mu.Lock()
				now := w.clock.Now()
				for _, g := range w.groups {
					g.tick(now)
				}
				w.mu.Unlock()
				fail("publishing the screens' states", w.publish(t, false))
			}
		case <-reload:
			nextReload = w.clock.Now().Add(w.cfg.Reload)
			if err := w.Load(ctx); err != nil {
				w.m.errors.Inc()
				w.logger.Warn("read the wall documents; retrying at the next reload", "err", err)
			} else if t != nil && !t.running {
				fail("taking over the walls", w.takeOver(t))
			} else if t != nil {
				// A publication that failed is retried here too.
				fail("publishing the screens' states", w.publish(t, false))
			}
		}
		stopDue()
		stopReload()
	}
}

// Load reads the documents now; while leading, every group takes the new
// reading. Run calls it at start and every Reload; a node calls it before
// serving, so that screen topics can be checked from the first
// connection.
func (w *Walls) Load(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	lib, err := loadLibrary(rctx, w.docs)
	if err != nil {
		return err
	}
	layouts := lib.layouts()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lib, w.layouts = lib, layouts
	w.byScr = map[string]string{}
	for key, l := range layouts {
		for _, m := range l.members {
			w.byScr[m.id] = key
		}
	}
	if w.groups == nil {
		return nil
	}
	now := w.clock.Now()
	for key, g := range w.groups {
		if l, ok := layouts[key]; ok {
			g.relayout(l, lib, w.h, now)
		} else {
			delete(w.groups, key)
		}
	}
	for key, l := range layouts {
		if _, ok := w.groups[key]; !ok {
			g := newGroup(l)
			g.expand(lib, w.h, now)
			w.groups[key] = g
		}
	}
	return nil
}

// takeOver starts a term: the documents are read, every group carries on
// from the states last published, alarms open now are offered, and every
// screen's state goes out.
func (w *Walls) takeOver(t *term) error {
	w.m.leader.Set(1)
	w.logger.Info("took the walls lease; publishing every screen's state", "token", t.lease.Token())
	w.mu.Lock()
	w.groups, w.last = map[string]*group{}, map[string][]byte{}
	w.mu.Unlock()
	w.leading.Store(true) // from here alarms and commands queue for the loop
	if err := w.Load(t.ctx); err != nil {
		return err // the next reload takes over again
	}
	w.mu.RLock()
	var screens, areas []string
	for _, l := range w.layouts {
		for _, m := range l.members {
			screens = append(screens, topic.Screen.Of(m.id).String())
		}
		if l.takeover != nil {
			areas = append(areas, l.areas...)
		}
	}
	w.mu.RUnlock()
	latest, err := w.bus.Latest(t.ctx, screens)
	if err != nil {
		return fmt.Errorf("read the screens' last states: %w", err)
	}
	states := map[string]State{}
	for _, m := range latest {
		var s State
		if json.Unmarshal(m.Payload, &s) == nil && s.Screen != "" {
			states[s.Screen] = s
		}
	}
	alarmTopics := make([]string, 0, len(areas))
	for _, a := range areas {
		alarmTopics = append(alarmTopics, topic.Alarms.Of(a).String())
	}
	open, err := w.bus.Latest(t.ctx, alarmTopics)
	if err != nil {
		return fmt.Errorf("read the open alarms: %w", err)
	}
	w.mu.Lock()
	now := w.clock.Now()
	for key, l := range w.layouts {
		g := newGroup(l)
		g.restore(states, w.lib, w.h, now)
		w.groups[key] = g
	}
	for _, m := range open {
		w.takeAlarms(m.Payload, now)
	}
	w.mu.Unlock()
	if err := w.publish(t, true); err != nil {
		return err
	}
	t.running = true
	return nil
}

// apply takes the events of the inbox.
func (w *Walls) apply(evs []event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	for _, ev := range evs {
		switch {
		case ev.alarms != nil:
			w.takeAlarms(ev.alarms, now)
		case ev.command != nil:
			w.command(*ev.command, now)
		}
	}
}

// alarmsMessage is what the walls read of an alarms/ payload.
type alarmsMessage struct {
	Area   string            `json:"area"`
	Open   []json.RawMessage `json:"open"`
	Change *struct {
		Action string          `json:"action"`
		Alarm  json.RawMessage `json:"alarm"`
	} `json:"change"`
}

// takeAlarms applies an alarms/ message: the change it announces (an
// alarm opened, acknowledged or resolved), and its list of the alarms not
// yet resolved in its unit's subtree, so that a message missed (a bus
// outage, a change while no node held the lease) is made up for by the
// next one. w.mu is held.
func (w *Walls) takeAlarms(payload []byte, now time.Time) {
	var msg alarmsMessage
	if err := json.Unmarshal(payload, &msg); err != nil {
		w.logger.Warn("malformed alarms message", "err", err)
		return
	}
	if msg.Change != nil {
		if a, ok := decodeAlarm(msg.Change.Alarm); ok {
			for _, g := range w.groups {
				switch {
				case msg.Change.Action == "opened":
					if g.offer(a, w.h, now) {
						w.m.takeovers.Inc()
						w.logger.Info("alarm takes screens over", "alarm", a.ID, "severity", a.Severity, "area", a.AreaCode, "layout", g.layout.key)
					}
				default:
					g.drop(a.ID, now)
				}
			}
		}
	}
	if msg.Area == "" || msg.Open == nil {
		return
	}
	open := map[string]alarm{}
	var ids []string
	for _, raw := range msg.Open {
		if a, ok := decodeAlarm(raw); ok {
			open[a.ID] = a
			ids = append(ids, a.ID)
		}
	}
	sort.Strings(ids)
	for _, g := range w.groups {
		for _, q := range g.holding() {
			if a, ok := open[q.ID]; w.h.Contains(msg.Area, q.AreaCode) && (!ok || a.State != "open") {
				g.drop(q.ID, now)
			}
		}
		// One that opened while nobody ran the walls: it has not had its
		// time on screen if it opened less than that time ago.
		for _, id := range ids {
			if a := open[id]; now.Sub(a.OpenedAt) < g.timeout() && g.offer(a, w.h, now) {
				w.m.takeovers.Inc()
			}
		}
	}
}

// command applies an operator's command; w.mu is held.
func (w *Walls) command(c Command, now time.Time) {
	g := w.groups[w.byScr[c.Screen]]
	if g == nil {
		w.logger.Warn("command for a screen the documents do not name; ignored", "screen", c.Screen, "op", c.Op)
		return
	}
	w.m.commands.WithLabelValues(c.Op).Inc()
	switch c.Op {
	case OpShow:
		g.command("", c.Dashboard, w.lib, w.h, now)
	case OpPlay:
		g.command(c.Playlist, "", w.lib, w.h, now)
	case OpReload:
		g.reload[c.Screen]++
	case OpIdentify:
		g.identify[c.Screen] = now.Add(w.cfg.IdentifyFor)
	}
	w.logger.Info("screen command applied", "screen", c.Screen, "op", c.Op, "by", c.By, "layout", g.layout.key)
}

// nextDue is the earliest time a group must be looked at again.
func (w *Walls) nextDue() time.Time {
	w.mu.RLock()
	defer w.mu.RUnlock()
	var t time.Time
	for _, g := range w.groups {
		if n := g.next(); !n.IsZero() && (t.IsZero() || n.Before(t)) {
			t = n
		}
	}
	return t
}

// publish sends the state of every screen that changed since it was last
// published in this term (all when force), in one publication whose
// messages share one version: the screens of a wall switch together.
func (w *Walls) publish(t *term, force bool) error {
	w.mu.Lock()
	type out struct {
		screen  string
		payload []byte
	}
	var outs []out
	for _, g := range w.groups {
		for _, m := range g.layout.members {
			b, err := json.Marshal(g.state(m, w.lib, w.h, w.cfg.Build, w.cfg.Location))
			if err != nil {
				w.mu.Unlock()
				return fmt.Errorf("encode the state of screen %s: %w", m.id, err)
			}
			if force || !bytes.Equal(w.last[m.id], b) {
				outs = append(outs, out{m.id, b})
			}
		}
	}
	w.mu.Unlock()
	if len(outs) == 0 {
		return nil
	}
	if !t.lease.Held() {
		return errLost
	}
	v, err := t.versions.Next()
	if err != nil {
		return err
	}
	sort.Slice(outs, func(i, j int) bool { return outs[i].screen < outs[j].screen })
	msgs := make([]bus.Message, len(outs))
	for i, o := range outs {
		msgs[i] = bus.Message{Topic: topic.Screen.Of(o.screen).String(), Version: v, Payload: o.payload}
	}
	if err := w.bus.Publish(t.ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d screen states: %w", len(msgs), err)
	}
	w.m.published.Add(float64(len(msgs)))
	w.mu.Lock()
	if w.groups != nil { // still this term
		for _, o := range outs {
			w.last[o.screen] = o.payload
		}
	}
	w.mu.Unlock()
	return nil
}

// ScreenAreas returns the areas of a screen the documents (as last read)
// name, and whether they name it.
func (w *Walls) ScreenAreas(id string) ([]string, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	key, ok := w.byScr[id]
	if !ok {
		return nil, false
	}
	for _, m := range w.layouts[key].members {
		if m.id == id {
			return m.areas, true
		}
	}
	return nil, false
}

// State returns the state of screen id now, for a screen topic nobody
// published yet: the one this node publishes if it holds the lease, else
// computed from the documents as a new holder would start it.
func (w *Walls) State(ctx context.Context, id string) (State, error) {
	w.mu.RLock()
	if g := w.groups[w.byScr[id]]; g != nil {
		for _, m := range g.layout.members {
			if m.id == id {
				s := g.state(m, w.lib, w.h, w.cfg.Build, w.cfg.Location)
				w.mu.RUnlock()
				return s, nil
			}
		}
	}
	w.mu.RUnlock()
	lib, err := loadLibrary(ctx, w.docs)
	if err != nil {
		return State{}, err
	}
	return w.computed(lib, lib.layouts(), id), nil
}

// computed is the state a new holder of the lease would start screen id
// with.
func (w *Walls) computed(lib *library, layouts map[string]*layout, id string) State {
	for _, l := range layouts {
		for _, m := range l.members {
			if m.id == id {
				g := newGroup(l)
				g.expand(lib, w.h, w.clock.Now())
				return g.state(m, lib, w.h, w.cfg.Build, w.cfg.Location)
			}
		}
	}
	return State{Screen: id, Build: w.cfg.Build, Window: "today", Part: whole,
		Problem: fmt.Sprintf("screen %s is not defined: an admin creates it with PUT /api/v1/screens/%s", id, id)}
}

// Ops of commands.
const (
	OpShow     = "show"
	OpPlay     = "play"
	OpReload   = "reload"
	OpIdentify = "identify"
)

// Command is an operator's command to a screen. Show and play switch the
// screen's whole wall (its screens show the same step); reload and
// identify concern the one screen.
type Command struct {
	Screen    string `json:"screen"`
	Op        string `json:"op"`
	Dashboard string `json:"dashboard,omitempty"` // show
	Playlist  string `json:"playlist,omitempty"`  // play; empty: the documents' schedule again
	By        string `json:"by,omitempty"`
}

// ErrUnknownScreen is returned for a screen the documents do not name.
var ErrUnknownScreen = errors.New("unknown screen")

// InvalidError is a command or report refused for what it says.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Command checks c against the documents and sends it to the node that
// runs the walls, which applies it and publishes the screens' new states.
// It returns the screens the command switches.
func (w *Walls) Command(ctx context.Context, c Command) ([]string, error) {
	lib, err := loadLibrary(ctx, w.docs)
	if err != nil {
		return nil, err
	}
	layouts := lib.layouts()
	var l *layout
	for _, cand := range layouts {
		for _, m := range cand.members {
			if m.id == c.Screen {
				l = cand
			}
		}
	}
	if l == nil {
		return nil, fmt.Errorf("%w %q: the documents name no such screen (create it with PUT /api/v1/screens/%s)", ErrUnknownScreen, c.Screen, c.Screen)
	}
	switch c.Op {
	case OpShow:
		if _, ok := lib.dashboards[c.Dashboard]; !ok {
			return nil, &InvalidError{fmt.Sprintf("show needs \"dashboard\": the id of a dashboard (GET /api/v1/dashboards lists them); %q is none", c.Dashboard)}
		}
		c.Playlist = ""
	case OpPlay:
		if _, ok := lib.playlists[c.Playlist]; c.Playlist != "" && !ok {
			return nil, &InvalidError{fmt.Sprintf("play takes \"playlist\": the id of a playlist (GET /api/v1/playlists lists them), or none for the screen's own schedule; %q is none", c.Playlist)}
		}
		c.Dashboard = ""
	case OpReload, OpIdentify:
		c.Dashboard, c.Playlist = "", ""
	default:
		return nil, &InvalidError{fmt.Sprintf("unknown op %q: use show (with dashboard), play (with playlist, or none for the screen's own schedule), reload or identify", c.Op)}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := w.bus.Publish(ctx, bus.Message{Topic: CommandTopic, Payload: payload}); err != nil {
		return nil, fmt.Errorf("send the command to the node running the walls: %w", err)
	}
	affected := []string{c.Screen}
	if c.Op == OpShow || c.Op == OpPlay {
		affected = affected[:0]
		for _, m := range l.members {
			affected = append(affected, m.id)
		}
	}
	return affected, nil
}

// Report is what a page says of itself.
type Report struct {
	Screen string `json:"screen"`
	// Build is the page's build, Version the version of the screen's state
	// it shows.
	Build   string    `json:"build"`
	Version string    `json:"version,omitempty"`
	SeenAt  time.Time `json:"seen_at"`
}

// Seen records a page's report. The latest report of each screen is kept
// by the bus, where every node reads it.
func (w *Walls) Seen(ctx context.Context, r Report) error {
	if !dashboards.ValidID(r.Screen) {
		return &InvalidError{fmt.Sprintf("%q is not a screen id", r.Screen)}
	}
	if len(r.Build) > 100 || strings.ContainsFunc(r.Build, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return &InvalidError{"build must be at most 100 printable characters, e.g. the build in the screen's state"}
	}
	if r.Version != "" && !bus.ValidVersion(r.Version) {
		return &InvalidError{fmt.Sprintf("version %q is not a version of a screen state (%d lower-case hexadecimal digits)", r.Version, bus.VersionLen)}
	}
	now := w.clock.Now()
	r.SeenAt = now.In(w.cfg.Location).Truncate(time.Millisecond)
	payload, err := json.Marshal(r)
	if err != nil {
		return err
	}
	// Reports are ordered by the clock of the node that took them; two in
	// the same millisecond, or from a node whose clock is behind, give way.
	err = w.bus.Publish(ctx, bus.Message{Topic: topic.ScreenSeen.Of(r.Screen).String(), Version: bus.Version(uint64(now.UnixMilli()), 1), Payload: payload})
	if err != nil && !bus.OnlyStale(err) {
		return fmt.Errorf("record the report of screen %s: %w", r.Screen, err)
	}
	return nil
}

// Listing is a screen as GET /api/v1/screens shows it.
type Listing struct {
	ID    string          `json:"id"`
	Title json.RawMessage `json:"title,omitempty"`
	Areas []string        `json:"areas"`
	Wall  string          `json:"wall,omitempty"`
	// State is what it shows, as last published (Version), or as a node
	// taking the walls over would start it (bus.LowestVersion).
	State   State  `json:"state"`
	Version string `json:"version"`
	// LastSeen, PageBuild and PageVersion are from the page's last report;
	// PageOutdated says its build is not the server's.
	LastSeen     *time.Time `json:"last_seen"`
	PageBuild    string     `json:"page_build,omitempty"`
	PageVersion  string     `json:"page_version,omitempty"`
	PageOutdated bool       `json:"page_outdated"`
}

// List returns every screen the documents name, by id.
func (w *Walls) List(ctx context.Context) ([]Listing, error) {
	lib, err := loadLibrary(ctx, w.docs)
	if err != nil {
		return nil, err
	}
	layouts := lib.layouts()
	var out []Listing
	var topics []string
	for _, l := range layouts {
		for _, m := range l.members {
			out = append(out, Listing{ID: m.id, Title: m.title, Areas: m.areas, Wall: l.wall})
			topics = append(topics, topic.Screen.Of(m.id).String(), topic.ScreenSeen.Of(m.id).String())
		}
	}
	latest, err := w.bus.Latest(ctx, topics)
	if err != nil {
		return nil, fmt.Errorf("read the screens' states: %w", err)
	}
	for i := range out {
		s := &out[i]
		if s.Areas == nil {
			s.Areas = []string{}
		}
		if m, ok := latest[topic.Screen.Of(s.ID).String()]; ok && json.Unmarshal(m.Payload, &s.State) == nil {
			s.Version = m.Version
		} else {
			s.State, s.Version = w.computed(lib, layouts, s.ID), bus.LowestVersion
		}
		if m, ok := latest[topic.ScreenSeen.Of(s.ID).String()]; ok {
			var r Report
			if json.Unmarshal(m.Payload, &r) == nil {
				at := r.SeenAt
				s.LastSeen, s.PageBuild, s.PageVersion = &at, r.Build, r.Version
				s.PageOutdated = r.Build != w.cfg.Build
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
