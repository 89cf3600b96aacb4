package wall

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
	"github.com/openioc/ioc/wall/walltest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var start = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

// fixture runs walls on a real Redis bus and leases, with a clock the
// test moves, and records every screen/ message published.
type fixture struct {
	t      *testing.T
	h      *geo.Hierarchy
	clock  *walltest.Clock
	docs   *MemoryDocuments
	client *redis.Client
	prefix string
	bus    *bus.Redis
	leases *lease.Redis

	mu   sync.Mutex
	msgs []bus.Message // screen/ messages, in the order received
	seq  uint32        // of the alarms/ messages the test publishes
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	f := &fixture{t: t, h: h, clock: walltest.NewClock(start), docs: NewMemoryDocuments()}
	f.client = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	t.Cleanup(func() { f.client.Close() })
	f.prefix = fmt.Sprintf("test:%s:%s:", t.Name(), rand.Text()[:8])
	f.bus, err = bus.NewRedis(f.client, bus.RedisConfig{Prefix: f.prefix}, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.leases = lease.NewRedis(f.client, lease.RedisConfig{Prefix: f.prefix, TTL: time.Second})
	sub, err := f.bus.Subscribe(context.Background(), func(m bus.Message) {
		if strings.HasPrefix(m.Topic, "screen/") {
			f.mu.Lock()
			f.msgs = append(f.msgs, m)
			f.mu.Unlock()
		}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	f.provision()
	return f
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// provision stores the documents of a wall of two screens over province
// 79 and a screen of its own.
func (f *fixture) provision() {
	put := func(kind string, doc string) {
		f.t.Helper()
		if err := f.docs.Put(kind, json.RawMessage(doc)); err != nil {
			f.t.Fatal(err)
		}
	}
	put(KindDashboard, `{"id":"ops-79","area":"79","window":"today"}`)
	put(KindDashboard, `{"id":"dossiers","area":"$area","window":"7d"}`)
	put(KindDashboard, `{"id":"commune","area":"$area","window":"24h"}`)
	put(KindPlaylist, `{"id":"pl-79","items":[{"dashboard":"ops-79","seconds":60},{"dashboard":"dossiers","seconds":30,"area":"79"},
		{"dashboard":"commune","seconds":20,"each_child_of":"79"}]}`)
	put(KindPlaylist, `{"id":"short","items":[{"dashboard":"dossiers","seconds":15},{"dashboard":"ops-79","seconds":15}]}`)
	put(KindScreen, `{"id":"s1","title":{"vi":"Màn 1","en":"Screen 1"},"areas":["79"],"wall":"wall-79"}`)
	put(KindScreen, `{"id":"s2","title":{"vi":"Màn 2","en":"Screen 2"},"areas":["79"],"wall":"wall-79"}`)
	put(KindScreen, `{"id":"desk","areas":["26740"],"dashboard":"commune"}`)
	put(KindWall, `{"id":"wall-79","columns":2,"rows":1,"span":true,"playlist":"pl-79",
		"screens":[{"screen":"s1","col":0,"row":0},{"screen":"s2","col":1,"row":0}],
		"takeover":{"min_severity":"warning","screens":["s1"],"timeout_seconds":120,"chime":true}}`)
}

// run starts walls on the fixture's bus, fed alarms/ messages and
// commands as a node's bus subscription feeds them; stop ends it.
func (f *fixture) run() (w *Walls, stop func()) {
	f.t.Helper()
	w, err := New(Config{Build: "b1", Clock: f.clock, Reload: time.Hour}, f.docs, f.h, f.bus, f.leases, quiet(), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	sub, err := f.bus.Subscribe(context.Background(), w.Observe, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			sub.Close()
		})
	}
	f.t.Cleanup(stop)
	return w, stop
}

// state is the latest state published for screen, and its version.
func (f *fixture) state(screen string) (State, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.msgs) - 1; i >= 0; i-- {
		if m := f.msgs[i]; m.Topic == "screen/"+screen {
			var s State
			if err := json.Unmarshal(m.Payload, &s); err != nil {
				f.t.Fatalf("screen/%s payload: %v", screen, err)
			}
			return s, m.Version, true
		}
	}
	return State{}, "", false
}

// await waits until the latest state of screen satisfies cond and returns
// it with its version.
func (f *fixture) await(screen, what string, cond func(State) bool) (State, string) {
	f.t.Helper()
	var s State
	var v string
	testenv.Eventually(f.t, 10*time.Second, func() (bool, string) {
		var ok bool
		s, v, ok = f.state(screen)
		if !ok {
			return false, "nothing published on screen/" + screen
		}
		b, _ := json.Marshal(s)
		return cond(s), fmt.Sprintf("screen/%s: want %s, have %s", screen, what, b)
	})
	return s, v
}

// count is how many screen/ messages were received.
func (f *fixture) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.msgs)
}

// alarm publishes an alarms/ message as the alarm engine does: the change,
// and every alarm not yet resolved in the unit's subtree.
func (f *fixture) alarm(action string, a map[string]any, open ...map[string]any) {
	f.t.Helper()
	f.seq++
	area, _ := a["area_code"].(string)
	if open == nil {
		open = []map[string]any{}
	}
	payload, _ := json.Marshal(map[string]any{"area": area, "as_of": f.clock.Now(), "open": open,
		"change": map[string]any{"action": action, "alarm": a}})
	if err := f.bus.Publish(context.Background(), bus.Message{Topic: "alarms/" + area, Version: bus.Version(1, f.seq), Payload: payload}); err != nil {
		f.t.Fatal(err)
	}
}

func alarmOf(id, severity, area string, opened time.Time) map[string]any {
	return map[string]any{"id": id, "rule_id": "r-" + severity, "rule_name": "rule " + id, "severity": severity,
		"state": "open", "area_code": area, "hierarchy": "vn-2025", "opened_at": opened, "value": 500}
}

func acked(a map[string]any) map[string]any {
	b := map[string]any{}
	for k, v := range a {
		b[k] = v
	}
	b["state"] = "acknowledged"
	return b
}

func until(s State) time.Time {
	if s.Until == nil {
		return time.Time{}
	}
	return s.Until.UTC()
}

// TestPlaylistAdvancesTogether: the wall's two screens show the same step,
// switch on the clock, in one publication (one version for both), and an
// each_child_of item is one step per child unit of its area.
func TestPlaylistAdvancesTogether(t *testing.T) {
	f := newFixture(t)
	f.run()
	children := f.h.ChildCodes("79")
	wantSteps := 2 + len(children)

	s1, v1 := f.await("s1", "the first step", func(s State) bool { return s.Dashboard == "ops-79" })
	s2, v2 := f.await("s2", "the first step", func(s State) bool { return s.Dashboard == "ops-79" })
	if v1 != v2 {
		t.Errorf("s1 and s2 were published with versions %s and %s, want one publication", v1, v2)
	}
	if s1.Steps != wantSteps || s1.Step != 0 || s1.Area != "79" || s1.Window != "today" || s1.Wall != "wall-79" || s1.Playlist != "pl-79" {
		t.Errorf("s1 starts with %+v, want step 0 of %d: ops-79 over 79, today", s1, wantSteps)
	}
	if s1.Part != (Part{Col: 0, Row: 0, Columns: 2, Rows: 1}) || s2.Part != (Part{Col: 1, Row: 0, Columns: 2, Rows: 1}) {
		t.Errorf("parts %+v and %+v, want columns 0 and 1 of a 2×1 wall", s1.Part, s2.Part)
	}
	if !until(s1).Equal(start.Add(60*time.Second)) || s1.Build != "b1" || s1.Takeover != nil {
		t.Errorf("s1 until %v build %q, want %v and b1", s1.Until, s1.Build, start.Add(60*time.Second))
	}
	if !strings.Contains(string(s1.Title), "Màn 1") {
		t.Errorf("s1 title %s, want the screen's", s1.Title)
	}

	// Not before its time.
	before := f.count()
	f.clock.Advance(59 * time.Second)
	f.await("s1", "still the first step", func(s State) bool { return s.Step == 0 })

	f.clock.Advance(time.Second)
	s1, v1 = f.await("s1", "the second step", func(s State) bool { return s.Step == 1 })
	s2, v2 = f.await("s2", "the second step", func(s State) bool { return s.Step == 1 })
	if v1 != v2 || v1 <= f.versionAt(before) {
		t.Errorf("the switch went out as versions %s and %s, want one newer version for both", v1, v2)
	}
	if s1.Dashboard != "dossiers" || s1.Area != "79" || s1.Window != "7d" || !until(s1).Equal(start.Add(90*time.Second)) {
		t.Errorf("second step %+v, want dossiers over 79 (the item's area), 7d, until +90s", s1)
	}
	if got := f.count() - before; got != 2 {
		t.Errorf("%d screen messages for one switch, want 2 (one per screen)", got)
	}

	// each_child_of: one step per commune of 79, $area the commune.
	f.clock.Advance(30 * time.Second)
	s1, _ = f.await("s1", "the first commune", func(s State) bool { return s.Step == 2 })
	if s1.Dashboard != "commune" || s1.Area != children[0] || s1.Window != "24h" {
		t.Errorf("third step %+v, want commune over %s, 24h", s1, children[0])
	}
	f.clock.Advance(20 * time.Second)
	s2, _ = f.await("s2", "the second commune", func(s State) bool { return s.Step == 3 })
	if s2.Area != children[1] {
		t.Errorf("fourth step over %s, want %s", s2.Area, children[1])
	}

	// A screen of its own shows its dashboard over its area, until told
	// otherwise.
	d, _ := f.await("desk", "its dashboard", func(s State) bool { return s.Dashboard == "commune" })
	if d.Area != "26740" || d.Until != nil || d.Part != whole || d.Wall != "" {
		t.Errorf("desk %+v, want commune over 26740, no until, the whole grid", d)
	}
}

// versionAt is the version of the message received at index i-1 ("" for
// none).
func (f *fixture) versionAt(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i == 0 {
		return ""
	}
	return f.msgs[i-1].Version
}

// TestNewHolderCarriesOn: when the node running the walls stops, the
// next one carries on at the step the wall is at, with its end, and newer
// versions; it does not start the playlist over.
func TestNewHolderCarriesOn(t *testing.T) {
	f := newFixture(t)
	_, stop := f.run()
	f.await("s1", "the first step", func(s State) bool { return s.Step == 0 })
	f.clock.Advance(60 * time.Second)
	_, v := f.await("s1", "the second step", func(s State) bool { return s.Step == 1 })
	f.clock.Advance(10 * time.Second)
	stop()

	n := f.count()
	f.run()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		return f.count() >= n+3, "the new holder published nothing yet"
	})
	for _, id := range []string{"s1", "s2"} {
		s, v2, _ := f.state(id)
		if s.Step != 1 || s.Dashboard != "dossiers" || !until(s).Equal(start.Add(90*time.Second)) {
			t.Errorf("%s after the takeover: step %d %s until %v, want step 1 dossiers until +90s", id, s.Step, s.Dashboard, s.Until)
		}
		if v2 <= v {
			t.Errorf("%s: version %s after the takeover, want newer than %s", id, v2, v)
		}
	}
	f.clock.Advance(20 * time.Second)
	f.await("s2", "the third step on time", func(s State) bool { return s.Step == 2 })
}

// TestCommands: show and play switch the whole wall, play without a
// playlist returns to the documents' schedule, reload and identify
// concern one screen; bad commands are refused with the reason.
func TestCommands(t *testing.T) {
	f := newFixture(t)
	w, _ := f.run()
	ctx := context.Background()
	f.await("s1", "the first step", func(s State) bool { return s.Step == 0 })

	got, err := w.Command(ctx, Command{Screen: "s2", Op: OpShow, Dashboard: "dossiers"})
	if err != nil || strings.Join(got, ",") != "s1,s2" {
		t.Fatalf("show: %v %v, want the wall's screens s1,s2", got, err)
	}
	s1, v1 := f.await("s1", "dossiers shown", func(s State) bool { return s.Dashboard == "dossiers" })
	_, v2 := f.await("s2", "dossiers shown", func(s State) bool { return s.Dashboard == "dossiers" })
	if !s1.Override || s1.Until != nil || s1.Playlist != "" || s1.Area != "79" || v1 != v2 {
		t.Errorf("after show: %+v (versions %s, %s), want dossiers over the screen's 79, overriding, no until, one version", s1, v1, v2)
	}

	if _, err := w.Command(ctx, Command{Screen: "s1", Op: OpPlay, Playlist: "short"}); err != nil {
		t.Fatal(err)
	}
	s1, _ = f.await("s1", "playlist short", func(s State) bool { return s.Playlist == "short" })
	if s1.Step != 0 || s1.Steps != 2 || !until(s1).Equal(f.clock.Now().Add(15*time.Second)) {
		t.Errorf("after play: %+v, want step 0 of 2 for 15s", s1)
	}
	f.clock.Advance(15 * time.Second)
	f.await("s2", "the playlist's second step", func(s State) bool { return s.Playlist == "short" && s.Step == 1 })

	if _, err := w.Command(ctx, Command{Screen: "s1", Op: OpPlay}); err != nil {
		t.Fatal(err)
	}
	f.await("s2", "the wall's own playlist", func(s State) bool { return s.Playlist == "pl-79" && !s.Override && s.Step == 0 })

	if _, err := w.Command(ctx, Command{Screen: "s2", Op: OpReload}); err != nil {
		t.Fatal(err)
	}
	f.await("s2", "a reload", func(s State) bool { return s.Reload == 1 })
	if s, _, _ := f.state("s1"); s.Reload != 0 {
		t.Errorf("s1 reload %d, want 0: the command was for s2", s.Reload)
	}

	if _, err := w.Command(ctx, Command{Screen: "desk", Op: OpIdentify}); err != nil {
		t.Fatal(err)
	}
	d, _ := f.await("desk", "identifying", func(s State) bool { return s.IdentifyUntil != nil })
	if !d.IdentifyUntil.Equal(f.clock.Now().Add(10 * time.Second)) {
		t.Errorf("identify until %v, want 10 s from now", d.IdentifyUntil)
	}
	f.clock.Advance(10 * time.Second)
	f.await("desk", "done identifying", func(s State) bool { return s.IdentifyUntil == nil })

	for _, c := range []struct {
		cmd  Command
		want string
	}{
		{Command{Screen: "nope", Op: OpReload}, "no such screen"},
		{Command{Screen: "s1", Op: OpShow, Dashboard: "missing"}, "show needs"},
		{Command{Screen: "s1", Op: OpPlay, Playlist: "missing"}, "play takes"},
		{Command{Screen: "s1", Op: "dance"}, "unknown op"},
	} {
		if _, err := w.Command(ctx, c.cmd); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("command %+v: got %v, want an error saying %q", c.cmd, err, c.want)
		}
	}
}

// TestTakeover: an alarm at or above the wall's severity, opening in its
// screens' areas, takes the designated screen over and pauses the
// rotation; a more severe one goes first and the other waits; an
// acknowledgement releases one, a timeout the other; then the rotation
// resumes with what was left of its step.
func TestTakeover(t *testing.T) {
	f := newFixture(t)
	f.run()
	f.await("s1", "the first step", func(s State) bool { return s.Step == 0 })
	f.clock.Advance(20 * time.Second) // 40 s of the step left

	// Below the wall's severity, or outside its areas: nothing.
	f.alarm("opened", alarmOf("ALM-info", "info", "26740", f.clock.Now()))
	f.alarm("opened", alarmOf("ALM-hanoi", "critical", "00004", f.clock.Now()))
	warn := alarmOf("ALM-warn", "warning", "26740", f.clock.Now())
	f.alarm("opened", warn, warn)
	s1, v1 := f.await("s1", "the warning taking over", func(s State) bool { return s.Takeover != nil })
	var shown alarm
	_ = json.Unmarshal(s1.Takeover.Alarm, &shown)
	if shown.ID != "ALM-warn" || !s1.Takeover.Until.Equal(f.clock.Now().Add(120*time.Second)) || !s1.Takeover.Chime || len(s1.Takeover.Queue) != 0 {
		t.Errorf("takeover %+v, want ALM-warn for 120 s with the chime, nothing queued", s1.Takeover)
	}
	if !strings.Contains(string(s1.Takeover.Alarm), `"rule_name":"rule ALM-warn"`) {
		t.Errorf("the takeover carries %s, want the whole alarm", s1.Takeover.Alarm)
	}
	s2, v2 := f.await("s2", "paused", func(s State) bool { return until(s).Equal(f.clock.Now().Add(160 * time.Second)) })
	if s2.Takeover != nil || v1 != v2 || s1.Step != 0 || !until(s1).Equal(until(s2)) {
		t.Errorf("s2 %+v (version %s vs %s), want no takeover (not designated), the rotation paused: until = takeover end + 40 s", s2, v2, v1)
	}

	// A critical alarm goes first; the warning waits with its time left.
	f.clock.Advance(30 * time.Second) // the warning has 90 s left
	crit := alarmOf("ALM-crit", "critical", "26740", f.clock.Now())
	f.alarm("opened", crit, warn, crit)
	s1, _ = f.await("s1", "the critical alarm first", func(s State) bool {
		return s.Takeover != nil && strings.Contains(string(s.Takeover.Alarm), "ALM-crit")
	})
	if len(s1.Takeover.Queue) != 1 || !strings.Contains(string(s1.Takeover.Queue[0]), "ALM-warn") {
		t.Errorf("queue %s, want the warning waiting", s1.Takeover.Queue)
	}
	// Nothing advances while the screens are taken over.
	f.clock.Advance(60 * time.Second)
	f.await("s2", "still paused at step 0", func(s State) bool { return s.Step == 0 })

	// Acknowledged: the warning comes back for the 90 s it had left.
	f.alarm("acknowledged", acked(crit), warn, acked(crit))
	s1, _ = f.await("s1", "the warning back", func(s State) bool {
		return s.Takeover != nil && strings.Contains(string(s.Takeover.Alarm), "ALM-warn")
	})
	if !s1.Takeover.Until.Equal(f.clock.Now().Add(90*time.Second)) || len(s1.Takeover.Queue) != 0 {
		t.Errorf("warning back %+v, want 90 s left, nothing queued", s1.Takeover)
	}

	// Timed out: the rotation resumes with the 40 s its step had left.
	f.clock.Advance(90 * time.Second)
	s1, _ = f.await("s1", "the rotation back", func(s State) bool { return s.Takeover == nil })
	if s1.Step != 0 || !until(s1).Equal(f.clock.Now().Add(40*time.Second)) {
		t.Errorf("after the takeover: step %d until %v, want step 0 for the 40 s it had left", s1.Step, s1.Until)
	}
	// The timed-out alarm, still open, does not come back with the next
	// message that lists it.
	other := alarmOf("ALM-other", "info", "26740", f.clock.Now())
	f.alarm("opened", other, warn, other)
	f.clock.Advance(40 * time.Second)
	s1, _ = f.await("s1", "the next step", func(s State) bool { return s.Step == 1 })
	if s1.Takeover != nil {
		t.Errorf("ALM-warn came back after its time was up: %s", s1.Takeover.Alarm)
	}
}

// TestTakeoverMissedMessage: an alarm that opened while its message was
// missed takes over when a later alarms/ message lists it open, and one
// acknowledged meanwhile is released the same way.
func TestTakeoverMissedMessage(t *testing.T) {
	f := newFixture(t)
	w, _ := f.run()
	f.await("s1", "the first step", func(s State) bool { return s.Step == 0 })
	missed := alarmOf("ALM-missed", "critical", "26740", f.clock.Now().Add(-time.Minute))
	other := alarmOf("ALM-other", "info", "79", f.clock.Now())
	f.alarm("opened", other, missed, other)
	f.await("s1", "the alarm listed open", func(s State) bool {
		return s.Takeover != nil && strings.Contains(string(s.Takeover.Alarm), "ALM-missed")
	})
	// Acknowledged, but announced only as the state of the list.
	f.alarm("resolved", other, acked(missed))
	f.await("s1", "released", func(s State) bool { return s.Takeover == nil })
	// One opened longer ago than the takeover lasts has had its time. (The
	// command after it is taken after it: it shows the message was read.)
	old := alarmOf("ALM-old", "critical", "26740", f.clock.Now().Add(-3*time.Minute))
	f.alarm("resolved", other, old)
	if _, err := w.Command(context.Background(), Command{Screen: "s1", Op: OpReload}); err != nil {
		t.Fatal(err)
	}
	s1, _ := f.await("s1", "the reload", func(s State) bool { return s.Reload == 1 })
	if s1.Takeover != nil {
		t.Errorf("ALM-old, opened 3 min ago, took over for a 2 min takeover: %s", s1.Takeover.Alarm)
	}
}

// TestSeenAndList: pages' reports are kept on the bus for every node, and
// the list shows each screen with what it shows and its last report.
func TestSeenAndList(t *testing.T) {
	f := newFixture(t)
	w, _ := f.run()
	ctx := context.Background()
	_, v := f.await("s1", "the first step", func(s State) bool { return s.Step == 0 })
	if err := w.Seen(ctx, Report{Screen: "s1", Build: "b0", Version: v}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Report{{Screen: "S 1"}, {Screen: "s1", Version: "x"}, {Screen: "s1", Build: "a\nb"}} {
		if err := w.Seen(ctx, bad); err == nil {
			t.Errorf("report %+v was taken", bad)
		}
	}
	// Another node, which does not run the walls, reads the same.
	other, err := New(Config{Build: "b1", Clock: f.clock}, f.docs, f.h, f.bus, f.leases, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	list, err := other.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, l := range list {
		ids = append(ids, l.ID)
	}
	if strings.Join(ids, ",") != "desk,s1,s2" {
		t.Fatalf("list %v, want desk,s1,s2", ids)
	}
	s1 := list[1]
	if s1.State.Dashboard != "ops-79" || s1.Version != v || s1.Wall != "wall-79" || s1.LastSeen == nil || !s1.LastSeen.Equal(start) ||
		s1.PageBuild != "b0" || s1.PageVersion != v || !s1.PageOutdated {
		t.Errorf("s1 listed as %+v, want ops-79 at %s, seen at %v by page b0 (outdated)", s1, v, start)
	}
	if list[2].LastSeen != nil || list[2].PageOutdated {
		t.Errorf("s2 listed as %+v, want never seen", list[2])
	}
	// A screen nobody published yet is computed, with the lowest version.
	s, err := other.State(ctx, "desk")
	if err != nil || s.Dashboard != "commune" || s.Area != "26740" {
		t.Errorf("computed state of desk: %+v %v", s, err)
	}
	if s, _ := other.State(ctx, "ghost"); !strings.Contains(s.Problem, "not defined") {
		t.Errorf("state of an unknown screen: %+v, want a problem saying it is not defined", s)
	}
}

// TestDocumentsChange: a playlist edited keeps the wall's step; the wall's
// schedule changed ends an override; a screen added to the wall joins it.
func TestDocumentsChange(t *testing.T) {
	f := newFixture(t)
	w, _ := f.run()
	ctx := context.Background()
	f.await("s1", "the first step", func(s State) bool { return s.Step == 0 })
	f.clock.Advance(60 * time.Second)
	f.await("s1", "the second step", func(s State) bool { return s.Step == 1 })
	if _, err := w.Command(ctx, Command{Screen: "s1", Op: OpShow, Dashboard: "ops-79"}); err != nil {
		t.Fatal(err)
	}
	f.await("s1", "the override", func(s State) bool { return s.Override })

	if err := f.docs.Put(KindScreen, json.RawMessage(`{"id":"s3","areas":["79"],"wall":"wall-79"}`)); err != nil {
		t.Fatal(err)
	}
	if err := f.docs.Put(KindWall, json.RawMessage(`{"id":"wall-79","columns":3,"rows":1,"span":true,"playlist":"short",
		"screens":[{"screen":"s1","col":0,"row":0},{"screen":"s2","col":1,"row":0},{"screen":"s3","col":2,"row":0}]}`)); err != nil {
		t.Fatal(err)
	}
	// The dashboard shown is edited: its revision changes.
	before, _, _ := f.state("s2")
	if err := f.docs.Put(KindDashboard, json.RawMessage(`{"id":"ops-79","area":"79","window":"24h"}`)); err != nil {
		t.Fatal(err)
	}
	w.Reload()
	s3, v3 := f.await("s3", "joining the wall", func(s State) bool { return s.Playlist == "short" })
	s1, v1 := f.await("s1", "the new schedule", func(s State) bool { return s.Playlist == "short" })
	if s1.Override || v1 != v3 || s3.Part != (Part{Col: 2, Columns: 3, Rows: 1}) || s1.Part.Columns != 3 {
		t.Errorf("after the wall changed: s1 %+v s3 %+v (versions %s, %s)", s1, s3, v1, v3)
	}
	if before.Dashboard != "ops-79" || before.DashboardRev == "" {
		t.Fatalf("s2 showed %s rev %q before, want ops-79 with a revision", before.Dashboard, before.DashboardRev)
	}
	// Step 1 of "short" is ops-79, edited.
	f.clock.Advance(15 * time.Second)
	s2, _ := f.await("s2", "ops-79 again", func(s State) bool { return s.Dashboard == "ops-79" })
	if s2.DashboardRev == before.DashboardRev || s2.Window != "24h" {
		t.Errorf("ops-79 after its edit: rev %s window %s, want a new revision (was %s) and 24h", s2.DashboardRev, s2.Window, before.DashboardRev)
	}
}

// TestTakeoverStaysInScreenAreas: a screen shows only the alarms of its own
// areas, which its kiosk token may read: an alarm in another screen's
// areas does not take a designated screen over, and another screen of the
// wall never shows it.
func TestTakeoverStaysInScreenAreas(t *testing.T) {
	f := newFixture(t)
	for kind, doc := range map[string]string{
		KindScreen: `{"id":"a","areas":["26740"]}`,
		KindWall: `{"id":"wall-2","columns":2,"rows":1,"dashboard":"ops-79",
			"screens":[{"screen":"a","col":0,"row":0},{"screen":"b","col":1,"row":0}],
			"takeover":{"min_severity":"critical","screens":["a","b"]}}`,
	} {
		if err := f.docs.Put(kind, json.RawMessage(doc)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.docs.Put(KindScreen, json.RawMessage(`{"id":"b","areas":["25747"]}`)); err != nil {
		t.Fatal(err)
	}
	w, _ := f.run()
	f.await("a", "its dashboard", func(s State) bool { return s.Dashboard == "ops-79" })
	inB := alarmOf("ALM-b", "critical", "25747", f.clock.Now())
	f.alarm("opened", inB, inB)
	f.await("b", "ALM-b", func(s State) bool { return s.Takeover != nil })
	inA := alarmOf("ALM-a", "critical", "26740", f.clock.Now().Add(time.Second))
	f.alarm("opened", inA, inA)
	if _, err := w.Command(context.Background(), Command{Screen: "a", Op: OpReload}); err != nil {
		t.Fatal(err)
	}
	a, _ := f.await("a", "the reload after the alarms", func(s State) bool { return s.Reload == 1 })
	b, _, _ := f.state("b")
	if a.Takeover == nil || !strings.Contains(string(a.Takeover.Alarm), "ALM-a") || b.Takeover == nil || !strings.Contains(string(b.Takeover.Alarm), "ALM-b") {
		t.Fatalf("takeovers: a %+v, b %+v; want each screen its own area's alarm", a.Takeover, b.Takeover)
	}
	for _, c := range []struct {
		name string
		s    State
		not  string
	}{{"a", a, "ALM-b"}, {"b", b, "ALM-a"}} {
		if c.s.Takeover == nil {
			continue
		}
		raw, _ := json.Marshal(c.s.Takeover)
		if strings.Contains(string(raw), c.not) {
			t.Errorf("screen %s shows %s, an alarm outside its areas: %s", c.name, c.not, raw)
		}
	}
}
