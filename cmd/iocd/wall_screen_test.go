package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/bus"
)

// wallSockets records the page's websockets as recordSockets does, and
// sends them where no websocket is served while window.__refuse is set:
// every connection fails, as when the server is down.
var wallSockets = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `(() => {
		const WS = window.WebSocket;
		window.__sockets = [];
		window.WebSocket = class extends WS {
			constructor(url, ...rest) {
				super(window.__refuse ? 'ws://' + location.host + '/no-websocket-here' : url, ...rest);
				this.__sent = [];
				this.__got = [];
				window.__sockets.push(this);
				window.__ws = this;
				this.addEventListener('message', (ev) => { try { this.__got.push(JSON.parse(ev.data)); } catch (e) { /* not JSON */ } });
			}
			send(data) {
				this.__sent.push(JSON.parse(data));
				return super.send(data);
			}
		};
	})();`})
	return err
})

// navigations signals every navigation of the tab's main frame (a reload).
func navigations(t *testing.T, tb *tab) <-chan struct{} {
	t.Helper()
	ch := make(chan struct{}, 8)
	if err := chromedp.Listen(tb.ctx, func(ev any) {
		if e, ok := ev.(*page.EventFrameNavigated); ok && e.Frame.ParentID == "" {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return ch
}

func waitSignal(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %s", what, d)
	}
}

// screenState is a message of the screen/{id} topic, as the spec has the
// server publish it.
type screenState struct {
	t       *testing.T
	tab     *tab
	token   uint64
	seq     uint32
	state   map[string]any
	started bool
}

func newScreenState(t *testing.T, tb *tab) *screenState {
	return &screenState{t: t, tab: tb, token: uint64(time.Now().Add(24 * time.Hour).UnixMilli()), state: map[string]any{
		"screen": "s1", "wall": "wall-79", "dashboard": "ops-79", "area": "79", "window": "today", "part": nil,
		"until": time.Now().Add(time.Minute).Format(time.RFC3339), "takeover": nil, "identify_until": nil, "reload": 1, "build": "b1",
	}}
}

// send hands the page the state with changes, as the next version; the
// first is a snapshot.
func (s *screenState) send(changes map[string]any) {
	s.t.Helper()
	for k, v := range changes {
		s.state[k] = v
	}
	s.seq++
	typ := "update"
	if !s.started {
		typ = "snapshot"
		s.started = true
	}
	hand(s.t, s.tab, map[string]any{"type": typ, "topic": "screen/s1", "version": bus.Version(s.token, s.seq), "data": s.state})
}

// A kiosk screen follows the screen/{id} topic (here the test hands the
// page states the server would take minutes to reach, with versions above
// the node's; wall_live_test.go runs the same page from the server): it
// switches dashboards when told, leaving nothing of the
// last one; on a spanned wall it shows its part of the grid; an alarm
// takes it over (map zoomed to the device, rule, value, time, device) and
// lets it go; identify flashes its name; it reloads when told to and when
// the server's build changes, keeping its token; a visible badge says
// since when its figures are stale while the server is out of reach, and
// goes when it is back; a revoked token blanks it.
func TestWallScreen(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, testConfig(t))
	device := seedWall(t, n)
	w := startWallAPI(t, n)
	dir := artifacts(t)
	tok := issueToken(t, auth.Viewer, "79")
	tab := openTab(t, browser, w.base+"/wall/?screen=s1&stale=2&access_token="+tok, chromedp.EmulateViewport(1920, 1080), wallSockets)
	nav := navigations(t, tab)
	tab.await(15*time.Second, "a message while the server has said nothing", `(m => !m.hidden && m.textContent.includes('s1') && m.textContent)(document.getElementById('message'))`)
	tab.expectEqual("token out of the address", `String(location.href.includes('access_token'))`, "false")
	screen := newScreenState(t, tab)
	rendered := func(what, dashboard string) {
		t.Helper()
		tab.await(20*time.Second, what, fmt.Sprintf(`(d => d.dashboard === %q && document.querySelectorAll('.board').length === 1 &&
			document.querySelector('.board').dataset.rendered === 'true' && document.getElementById('message').hidden)(document.documentElement.dataset)`, dashboard))
	}

	screen.send(nil)
	rendered("ops-79 shown", "ops-79")
	tab.expectEqual("screen topic asked", `String(window.__sockets[0].__sent.some(m => m.op === 'subscribe' && m.topic === 'screen/s1'))`, "true")

	// Another dashboard: the old board and its topics go.
	screen.send(map[string]any{"dashboard": "env-79", "window": "24h"})
	rendered("env-79 shown", "env-79")
	tab.await(10*time.Second, "ops-79's today map left", `window.__ws.__sent.some(m => m.op === 'unsubscribe' && m.topic === 'map/79')`)
	envWidgets, _ := w.doc("dashboards/env-79")["widgets"].([]any)
	tab.expectEqual("widgets of env-79", `String(document.querySelectorAll('.board .widget').length)`, fmt.Sprint(len(envWidgets)))

	// A dashboard spanning a wall of 2×1 screens: this is the right one.
	screen.send(map[string]any{"dashboard": "ops-79", "window": "today", "part": map[string]any{"col": 1, "row": 0, "columns": 2, "rows": 1}})
	tab.await(20*time.Second, "ops-79's right half shown", `(b => b && b.dataset.rendered === 'true' && b.getBoundingClientRect().left === -innerWidth && b.getBoundingClientRect().width === 2 * innerWidth)(document.querySelector('.board'))`)
	tab.expectEqual("widgets on the right half", `Array.from(document.querySelectorAll('.board .widget')).map(w => w.dataset.widget).sort().join(',')`,
		strings.Join(widgetsRightHalf(w.doc("dashboards/ops-79")), ","))
	tab.expectEqual("the map crosses the join", `(r => String(r.left < 0 && r.right > 0))(document.querySelector('[data-widget="map"]').getBoundingClientRect())`, "true")
	saveScreenshot(t, tab, filepath.Join(dir, "screen-s1-right-half.png"), "")

	// An alarm takes the screen over, then lets it go.
	var list struct {
		Alarms []map[string]any `json:"alarms"`
	}
	if n.get("/api/v1/alarms?state=active&area=79", adminToken, &list); len(list.Alarms) != 1 {
		t.Fatalf("alarms: got %d, want the seeded one", len(list.Alarms))
	}
	alarm := list.Alarms[0]
	screen.send(map[string]any{"takeover": map[string]any{"alarm": alarm, "until": time.Now().Add(5 * time.Minute).Format(time.RFC3339)}})
	tab.await(15*time.Second, "takeover shown with its map", fmt.Sprintf(`(e => !e.hidden && e.dataset.alarm === %q && e.dataset.map === %q)(document.getElementById('takeover'))`, alarm["id"], alarm["area_code"]))
	text := tab.value(`document.getElementById('takeover').textContent`)
	for _, want := range []string{"NGHIÊM TRỌNG", "Mực nước đạt hoặc vượt mức báo động", "1,70 m", device} {
		if !strings.Contains(text, want) {
			t.Errorf("takeover: %q lacks %q", text, want)
		}
	}
	tab.await(10*time.Second, "device details", `document.querySelector('.takeover-device dd') && document.querySelector('.takeover-device').textContent.includes('Mực nước')`)
	tab.expectEqual("device marked on the map", fmt.Sprintf(`String(!!document.querySelector('.takeover-svg circle[data-device="%s"]'))`, device), "true")
	// The wall asks for a chime: played, or held back by the browser's
	// autoplay policy until someone touches the page.
	tab.await(10*time.Second, "chime tried", `['played', 'blocked'].includes(document.getElementById('takeover').dataset.chime) && document.getElementById('takeover').dataset.chime`)
	saveScreenshot(t, tab, filepath.Join(dir, "screen-s1-takeover.png"), "")
	screen.send(map[string]any{"takeover": nil})
	tab.await(10*time.Second, "takeover gone", `document.getElementById('takeover').hidden`)

	// Identify: the screen's name flashes until the time given.
	screen.send(map[string]any{"identify_until": time.Now().Add(1500 * time.Millisecond).Format(time.RFC3339Nano)})
	tab.await(5*time.Second, "name flashed", `(e => !e.hidden && e.textContent.includes('s1') && e.textContent)(document.getElementById('identify'))`)
	tab.await(10*time.Second, "name gone", `document.getElementById('identify').hidden`)

	// Told to reload: the page reloads, keeps its token and follows again.
	screen.send(map[string]any{"reload": 2})
	waitSignal(t, nav, 15*time.Second, "reload when told")
	tab.await(15*time.Second, "connected after the reload", `window.__sockets && window.__sockets.length > 0 && window.__sockets[0].readyState === 1`)
	screen = newScreenState(t, tab)
	screen.state["reload"] = 2
	screen.send(nil)
	rendered("ops-79 after the reload", "ops-79")
	// Another build of the server: reload again.
	screen.send(map[string]any{"build": "b2"})
	waitSignal(t, nav, 15*time.Second, "reload for a new build")
	tab.await(15*time.Second, "connected after the second reload", `window.__sockets && window.__sockets.length > 0 && window.__sockets[0].readyState === 1`)
	screen = newScreenState(t, tab)
	screen.state["reload"], screen.state["build"] = 2, "b2"
	screen.send(nil)
	rendered("ops-79 after the new build", "ops-79")

	// The server out of reach: after 2 s (?stale=2) a badge says since when.
	tab.expectEqual("no badge while connected", `String(document.getElementById('stale').hidden)`, "true")
	tab.do("cut the server off", chromedp.Evaluate[chromedp.Void](`window.__refuse = true`))
	serverCloses(tab, 1006, "")
	got := tab.await(15*time.Second, "stale badge", `(e => !e.hidden && e.textContent)(document.getElementById('stale'))`)
	if !strings.Contains(got, "Số liệu cũ từ") || !strings.Contains(got, "stale since") {
		t.Errorf("stale badge: got %q, want \"Số liệu cũ từ … stale since …\"", got)
	}
	saveScreenshot(t, tab, filepath.Join(dir, "screen-s1-stale.png"), "")
	tab.do("let the server be reached", chromedp.Evaluate[chromedp.Void](`window.__refuse = false`))
	tab.awaitEqual(45*time.Second, "badge gone once reconnected", `document.getElementById('stale').hidden && document.documentElement.dataset.connection === 'connected' ? 'ok' :
		'connection ' + document.documentElement.dataset.connection + ', ' + window.__sockets.length + ' sockets, last ' + window.__ws.url + ' ' + window.__ws.readyState`, "ok")
	tab.expectEqual("screen state asked first, then the alarms", `window.__ws.__sent.filter(m => m.op === 'subscribe').slice(0, 2).map(m => m.topic).join(',')`, "screen/s1,alarms/79")
	tab.await(10*time.Second, "topics resumed with their versions", `['alarms/79', 'kpi/79', 'map/79'].every(t => window.__ws.__sent.some(m => m.op === 'subscribe' && m.topic === t && /^[0-9a-f]{24}$/.test(m.since || '')))`)

	// Revoked: blank, with a message, and no reconnecting.
	serverCloses(tab, 4401, "token revoked: ask for a new token")
	tab.await(10*time.Second, "blank screen", `document.documentElement.dataset.state === 'blank' && document.querySelectorAll('.board').length === 0`)
	msg := tab.value(`document.getElementById('message').textContent`)
	if !strings.Contains(msg, "thu hồi") || !strings.Contains(msg, "revoked") {
		t.Errorf("message after 4401: got %q, want it to say the token was revoked", msg)
	}
	tab.expectEqual("token forgotten", `String(sessionStorage.getItem('ioc.access_token'))`, "null")
	sockets := tab.value(`String(window.__sockets.length)`)
	tab.expectEqual("no reconnecting after 4401", `String(window.__sockets.length)`, sockets)
	saveScreenshot(t, tab, filepath.Join(dir, "screen-s1-revoked.png"), "")
	tab.noExceptions()
}

// widgetsRightHalf lists the widgets of a dashboard that reach into the
// right half of its grid.
func widgetsRightHalf(def map[string]any) []string {
	grid, _ := def["grid"].(map[string]any)
	cols, _ := grid["columns"].(float64)
	var ids []string
	widgets, _ := def["widgets"].([]any)
	for _, raw := range widgets {
		wd, _ := raw.(map[string]any)
		x, _ := wd["x"].(float64)
		w, _ := wd["w"].(float64)
		if x+w > cols/2 {
			ids = append(ids, wd["id"].(string))
		}
	}
	sort.Strings(ids)
	return ids
}

// A map click drills into the child's own dashboard and Back returns; an
// operator acknowledges an alarm with a click while a viewer gets no
// button; the page keeps to its Content-Security-Policy throughout.
func TestWallDrillAndAcknowledge(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, testConfig(t))
	device := seedWall(t, n)
	w := startWallAPI(t, n)
	here := n.communeAt(nhLat, nhLon)
	logViolations, cspViolations := recordCSPViolations()

	viewer := openTab(t, browser, w.base+"/wall/?dashboard=ops-79&area=79&access_token="+issueToken(t, auth.Viewer, "79"), chromedp.EmulateViewport(1920, 1080), logViolations)
	viewer.await(30*time.Second, "viewer's page rendered", `document.documentElement.dataset.firstRender`)
	viewer.expectEqual("no acknowledge button for a viewer", `String(document.querySelectorAll('.w-alarms button').length)`, "0")

	op := openTab(t, browser, w.base+"/wall/?dashboard=ops-79&area=79&access_token="+issueTokenAs(t, "op-lan", auth.Operator, "79"), chromedp.EmulateViewport(1920, 1080), logViolations)
	op.await(30*time.Second, "operator's page rendered", `document.documentElement.dataset.firstRender`)
	row := fmt.Sprintf(`document.querySelector('.w-alarms li[data-device="%s"]')`, device)
	op.do("click Acknowledge", chromedp.Click(chromedp.JSPath(row+`.querySelector('button[data-action="ack"]')`)))
	op.awaitEqual(10*time.Second, "alarm acknowledged on the operator's page", orMissing(row, `.dataset.state`), "acknowledged")
	viewer.awaitEqual(10*time.Second, "alarm acknowledged on the viewer's page", orMissing(row, `.dataset.state`), "acknowledged")
	viewer.awaitEqual(5*time.Second, "who acknowledged", orMissing(row, `.querySelector('.alarm-acked .vi').textContent`), "Đã xác nhận bởi op-lan")
	var list struct {
		Alarms []alarmJSON `json:"alarms"`
	}
	if n.get("/api/v1/alarms?state=active&area=79", adminToken, &list); len(list.Alarms) != 1 || list.Alarms[0].AcknowledgedBy != "op-lan" {
		t.Errorf("alarms after the click: got %+v, want %s's acknowledged by op-lan", list.Alarms, device)
	}

	// Drill down from the map into the commune's own dashboard, and back.
	x, y := wallPointIn(t, op, here)
	op.do("click "+here+" on the map", chromedp.MouseClickXY(x, y))
	op.await(20*time.Second, "district dashboard", fmt.Sprintf(`(d => d.dashboard === 'ops-district' && d.area === %q && document.querySelector('.board[data-area="%s"]') &&
		document.querySelector('.board[data-area="%s"]').dataset.rendered === 'true' && document.querySelectorAll('.board').length === 1)(document.documentElement.dataset)`, here, here, here))
	op.expectEqual("address of the drill-down", `location.search`, "?dashboard=ops-district&area="+here)
	op.expectEqual("back button shown", `String(!document.getElementById('back').hidden)`, "true")
	op.expectEqual("header names the commune", `document.querySelector('.header-area').textContent`, n.kpis(here, "today").Name)
	op.do("click Back", chromedp.Click(chromedp.ID("back")))
	op.await(20*time.Second, "back on ops-79", `(d => d.dashboard === 'ops-79' && d.area === '79' && document.querySelector('.board[data-area="79"]') && document.querySelector('.board').dataset.rendered === 'true')(document.documentElement.dataset)`)
	op.expectEqual("back button hidden", `String(document.getElementById('back').hidden)`, "true")

	if violations := cspViolations(); len(violations) > 0 {
		t.Errorf("the page broke its own policy: %q", violations)
	}
	op.noExceptions()
	viewer.noExceptions()
}

// wallPointIn finds a point of the viewport that lands on a unit of the
// wall's map, not on a neighbour or a device.
func wallPointIn(t *testing.T, tb *tab, area string) (x, y float64) {
	t.Helper()
	got := tb.value(fmt.Sprintf(`(p => {
		if (!p) return '';
		const b = p.getBBox(), m = p.getScreenCTM();
		for (let i = 1; i < 16; i++) for (let j = 1; j < 16; j++) {
			const pt = new DOMPoint(b.x + b.width * i / 16, b.y + b.height * j / 16);
			if (!p.isPointInFill(pt)) continue;
			const s = pt.matrixTransform(m);
			if (document.elementFromPoint(s.x, s.y) === p) return s.x + ' ' + s.y;
		}
		return '';
	})(document.querySelector('.w-map path[data-area="%s"]'))`, area))
	if _, err := fmt.Sscan(got, &x, &y); err != nil {
		t.Fatalf("no point of the viewport lands on %s on the map (got %q)", area, got)
	}
	return x, y
}

// A map with a timed drill-down shows, by itself, the worst child's own
// dashboard, comes back after as long, and goes on to the next worst.
func TestWallTimedDrillDown(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, testConfig(t))
	seedWall(t, n)
	w := startWallAPI(t, n)
	w.store("dashboards/timed-79", []byte(`{"id":"timed-79","title":{"vi":"Lần lượt từng phường","en":"Each ward in turn"},
		"area":"79","window":"today","theme":"wall","grid":{"columns":24,"rows":12},"widgets":[
		{"id":"alarms","type":"alarms","x":0,"y":0,"w":6,"h":12,"options":{"min_severity":"info"}},
		{"id":"map","type":"map","x":6,"y":0,"w":18,"h":12,"options":{"indicator":"online_rate","legend":"fitted",
		 "drilldown":{"mode":"timed","dashboard":"ops-district","seconds":5}}}]}`))
	var kids struct {
		Children []snapshot `json:"children"`
	}
	n.get("/api/v1/areas/79/children/kpis?window=today", adminToken, &kids)
	// online_rate: higher is better, so the lowest first.
	order := strings.Split(rankingOf(kids.Children, "online_rate", true, 2), ",")
	first, second := strings.SplitN(order[0], "=", 2)[0], strings.SplitN(order[1], "=", 2)[0]

	tab := openTab(t, browser, w.base+"/wall/?dashboard=timed-79&access_token="+issueToken(t, auth.Viewer, "79"), chromedp.EmulateViewport(1920, 1080))
	shows := func(what, dashboard, area string) {
		t.Helper()
		tab.await(20*time.Second, what, fmt.Sprintf(`(d => d.dashboard === %q && d.area === %q && document.querySelectorAll('.board').length === 1 &&
			document.querySelector('.board').dataset.rendered === 'true')(document.documentElement.dataset)`, dashboard, area))
	}
	shows("the map first", "timed-79", "79")
	shows("the worst ward, by itself", "ops-district", first)
	tab.expectEqual("no back button for a timed drill-down", `String(document.getElementById('back').hidden)`, "true")
	shows("back after its seconds", "timed-79", "79")
	shows("then the next worst", "ops-district", second)
	tab.noExceptions()
}
