package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/dashboards"
	"github.com/openioc/ioc/internal/bus"
)

// The pure parts of the page's live protocol (dashboards/static/live.js:
// the grammar of topic names, which messages apply, the map delta's merge
// rule, the order and the since of subscriptions, the reconnect delay), run
// by a test page in Chromium next to the page's own live.js; the page lists
// each failed check. The topic names are checked against the server's own
// examples (topic/testdata/topics.json), every row of them.
func TestDashboardLiveProtocolFunctions(t *testing.T) {
	const topicsFile = "../../topic/testdata/topics.json"
	raw, err := os.ReadFile(topicsFile)
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Topics []json.RawMessage `json:"topics"`
		Kinds  []json.RawMessage `json:"kinds"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	browser := newBrowser(t)
	mux := http.NewServeMux()
	mux.Handle("/live.js", http.FileServer(dashboards.Assets()))
	mux.HandleFunc("/topics.json", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, topicsFile) })
	mux.Handle("/", http.FileServer(http.Dir("testdata/live")))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tab := openTab(t, browser, srv.URL+"/live_test.html")
	tab.waitMatch(30*time.Second, "test page result", `document.getElementById('result').textContent`, "a result",
		func(got string) bool { return got != "" })
	var res struct {
		Checks   int      `json:"checks"`
		Failures []string `json:"failures"`
		Topics   int      `json:"topics"`
	}
	got := tab.value(`document.getElementById('result').textContent`)
	if err := json.Unmarshal([]byte(got), &res); err != nil {
		t.Fatalf("test page result %q: %v", got, err)
	}
	for _, f := range res.Failures {
		t.Error(f)
	}
	if res.Checks < 150 {
		t.Errorf("checks run: got %d, want the test page's 180 or so", res.Checks)
	}
	if want := len(table.Topics) + len(table.Kinds); res.Topics != want {
		t.Errorf("topic examples the page checked: %d, want every row of %s (%d)", res.Topics, topicsFile, want)
	}
	tab.noExceptions()
}

// The page's side of protocol v2 against a real node (today's hub, which
// knows nothing of since, deltas or offsets; messages it does not send are
// handed to the page as if it had): subscriptions list alarms and devices
// first; a reconnect message closes the socket and comes back after the
// delay it names, resuming every topic with since; map deltas are merged
// into the map, and one against another base makes the page ask again;
// stream messages apply once by offset; 4008 reconnects and resumes, 4401
// ends the page.
func TestDashboardLiveProtocol(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, testConfig(t))
	// Far above what the node stamps, so that its own messages cannot
	// interleave with those handed to the page.
	token := uint64(time.Now().Add(24 * time.Hour).UnixMilli())
	future := time.Now().Add(time.Hour)

	open := func(t *testing.T) *tab {
		t.Helper()
		tab := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "79")+"&area=79", recordSockets)
		tab.waitEqual(30*time.Second, "commune rows", `String(document.querySelectorAll('#communes tr[data-area]').length)`, "168")
		tab.waitEqual(30*time.Second, "units on the map", mapUnits, "168")
		tab.waitEqual(30*time.Second, "connection state", `document.getElementById('connection').dataset.state`, "connected")
		// Every subscription answered, so that nothing of the node's
		// arrives after what the test hands the page.
		tab.waitEqual(30*time.Second, "subscriptions answered", unanswered(0), "0")
		return tab
	}

	t.Run("resume after a reconnect message", func(t *testing.T) {
		tab := open(t)
		tab.expectEqual("first subscriptions", subscribed(0, 5), "alarms/79,devices/79,events/79,map/79,kpi/79")
		tab.expectEqual("subscriptions", `String(window.__sockets[0].__sent.filter(m => m.op === 'subscribe').length)`, "173")
		tab.expectEqual("since on a first subscription", `String(window.__sockets[0].__sent.filter(m => 'since' in m).length)`, "0")

		tab.do("hand the page a reconnect message", chromedp.Evaluate[chromedp.Void](`(() => {
			window.__planned = performance.now();
			window.__ws.dispatchEvent(new MessageEvent('message', {data: JSON.stringify({type: 'reconnect', after_ms: 300})}));
		})()`))
		tab.waitEqual(10*time.Second, "first socket closed", `String(window.__sockets[0].readyState >= WebSocket.CLOSING)`, "true")
		tab.waitEqual(15*time.Second, "sockets opened", `String(window.__sockets.length)`, "2")
		tab.expectEqual("reconnected after after_ms", `String(window.__sockets[1].__at - window.__planned >= 295)`, "true")
		tab.waitEqual(30*time.Second, "connection state after the reconnect", `document.getElementById('connection').dataset.state`, "connected")
		tab.waitEqual(30*time.Second, "subscriptions answered after the reconnect", unanswered(1), "0")
		tab.expectEqual("first subscriptions after the reconnect", subscribed(1, 5), "alarms/79,devices/79,events/79,map/79,kpi/79")
		// Each topic resumes from what the page last applied: a state
		// topic's version, a stream's epoch:offset (today's node sends
		// events/ without a position: nothing to resume from).
		tab.expectEqual("subscriptions without what was last applied", `(() => {
			const [s0, s1] = window.__sockets;
			const last = new Map();
			for (const m of s0.__got) {
				if (m.type !== 'snapshot' && m.type !== 'update') continue;
				if (m.epoch) last.set(m.topic, m.epoch + ':' + m.offset);
				else if (m.version) last.set(m.topic, m.version);
			}
			const wrong = s1.__sent.filter(m => m.op === 'subscribe' && m.since !== last.get(m.topic)).map(m => m.topic + ' since ' + m.since + ', want ' + last.get(m.topic));
			return wrong.length + (wrong.length ? ': ' + wrong.slice(0, 5).join('; ') : '');
		})()`, "0")
		tab.expectEqual("resumed with a version", `String(window.__sockets[1].__sent.filter(m => m.op === 'subscribe' && /^[0-9a-f]{24}$/.test(m.since || '')).length)`, "172")

		// Still live on the new socket.
		if code, r := n.ingest(event("r1", "dr1", "26740", "received", "online", 0)); code != 202 || r.Accepted != 1 {
			t.Fatalf("ingest: got %d %+v, want 202 with 1 accepted", code, r)
		}
		tab.waitEqual(15*time.Second, "received in 26740 after the reconnect", communeCell("26740", "dossiers_received"), "1")
		tab.noExceptions()
	})

	t.Run("map deltas", func(t *testing.T) {
		tab := open(t)
		kids := func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i < len(kv); i += 2 {
				m[kv[i].(string)] = map[string]any{"name": kv[i].(string), "kpis": map[string]any{"online_rate": kv[i+1]}}
			}
			return m
		}
		asOf := func(min int) string { return future.Add(time.Duration(min) * time.Minute).Format(time.RFC3339) }
		hand(t, tab, map[string]any{"type": "snapshot", "topic": "map/79", "version": bus.Version(token, 1), "seq": 2, "data": map[string]any{
			"area": "79", "hierarchy": "vn-2025", "level": "province", "name": "Hồ Chí Minh", "window": "today", "as_of": asOf(0),
			"child_level": "commune", "children": kids("26740", 0.5, "26743", 0.25)}})
		tab.waitEqual(10*time.Second, "online rate of 26740 from the snapshot", mapValue("26740"), "0.5")
		tab.expectEqual("online rate of 26743 from the snapshot", mapValue("26743"), "0.25")

		// Only 26740 changed: 26743 keeps its figure.
		hand(t, tab, map[string]any{"type": "delta", "topic": "map/79", "version": bus.Version(token, 2), "base": bus.Version(token, 1),
			"data": map[string]any{"as_of": asOf(1), "children": kids("26740", 1)}})
		tab.waitEqual(10*time.Second, "online rate of 26740 from the delta", mapValue("26740"), "1")
		tab.expectEqual("online rate of 26743 after the delta", mapValue("26743"), "0.25")
		tab.expectEqual("commune rows after the delta", `String(document.querySelectorAll('#communes tr[data-area]').length)`, "168")

		// Two deltas against a version the page never had, handed together:
		// neither applies, and the page asks once for the topic again, with
		// the version it holds.
		a, b := deltaJSON(t, token, 4, 3, "26743", 0.75), deltaJSON(t, token, 5, 4, "26743", 0.8)
		tab.do("hand the page two deltas on another base", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			window.__ws.dispatchEvent(new MessageEvent('message', {data: %s}));
			window.__ws.dispatchEvent(new MessageEvent('message', {data: %s}));
		})()`, a, b)))
		want := fmt.Sprintf(`unsubscribe map/79 ; subscribe map/79 %s`, bus.Version(token, 2))
		tab.waitEqual(10*time.Second, "ops sent after the deltas", `window.__ws.__sent.slice(173).map(m => [m.op, m.topic, m.since].filter(Boolean).join(' ')).join(' ; ')`, want)
		tab.expectEqual("online rate of 26743 after deltas on another base", mapValue("26743"), "0.25")
		tab.noExceptions()
	})

	t.Run("stream offsets", func(t *testing.T) {
		tab := open(t)
		const e1, e2 = "00000000000000aa", "00000000000000bb"
		at := time.Now().Truncate(time.Second)
		events := func(ids ...string) map[string]any {
			var list []map[string]any
			for i, id := range ids {
				list = append(list, map[string]any{"event_id": id, "camera_id": "CAM-X", "type": "congestion", "severity": "warning",
					"area_code": "26740", "occurred_at": at.Add(time.Duration(i) * time.Second).Format(time.RFC3339)})
			}
			return map[string]any{"area": "79", "as_of": at.Format(time.RFC3339), "events": list, "folded": 0}
		}
		hand(t, tab, map[string]any{"type": "snapshot", "topic": "events/79", "epoch": e1, "offset": 10, "data": events("x1")})
		hand(t, tab, map[string]any{"type": "update", "topic": "events/79", "epoch": e1, "offset": 11, "data": events("x2")})
		hand(t, tab, map[string]any{"type": "update", "topic": "events/79", "epoch": e1, "offset": 11, "data": events("x3")}) // again
		hand(t, tab, map[string]any{"type": "update", "topic": "events/79", "epoch": e1, "offset": 9, "data": events("x4")})  // older
		hand(t, tab, map[string]any{"type": "update", "topic": "events/79", "epoch": e2, "offset": 1, "data": events("x5")})  // history lost
		tab.waitEqual(10*time.Second, "events in the ticker", `Array.from(document.querySelectorAll('#ticker-list li')).map(li => li.dataset.event).join(',')`, "x5,x2,x1")

		// A resume whose version is current brings no figures: what is
		// shown stays.
		before := tab.value(communeCell("26740", "dossiers_received"))
		hand(t, tab, map[string]any{"type": "current", "topic": "kpi/26740", "version": bus.Version(token, 1)})
		hand(t, tab, map[string]any{"type": "update", "topic": "kpi/26743", "version": bus.Version(token, 1), "data": map[string]any{
			"area": "26743", "hierarchy": "vn-2025", "level": "commune", "name": "26743", "window": "today",
			"as_of": future.Format(time.RFC3339), "kpis": map[string]any{"dossiers_received": 42}}})
		tab.waitEqual(10*time.Second, "received in 26743 (marker)", communeCell("26743", "dossiers_received"), "42")
		tab.expectEqual("received in 26740 after current", communeCell("26740", "dossiers_received"), before)
		tab.noExceptions()
	})

	t.Run("close codes", func(t *testing.T) {
		tab := open(t)
		// 4008: the page read too slowly; it comes back and resumes.
		serverCloses(tab, 4008, "slow consumer: reconnect and resume")
		tab.waitEqual(15*time.Second, "sockets opened after 4008", `String(window.__sockets.length)`, "2")
		tab.waitEqual(30*time.Second, "connection state after 4008", `document.getElementById('connection').dataset.state`, "connected")
		tab.waitEqual(30*time.Second, "subscriptions answered after 4008", unanswered(1), "0")
		tab.expectEqual("resumed subscriptions after 4008", `String(window.__sockets[1].__sent.filter(m => m.op === 'subscribe' && /^[0-9a-f]{24}$/.test(m.since || '')).length)`, "172")

		// 4401: the token was revoked; the page stops and says so.
		serverCloses(tab, 4401, "token revoked: ask for a new token")
		tab.waitMatch(10*time.Second, "message", visibleMessage, "a message that the token was revoked",
			func(got string) bool {
				return strings.Contains(got, "thu hồi") && strings.Contains(got, "token revoked")
			})
		tab.expectEqual("connection state after 4401", `document.getElementById('connection').dataset.state`, "offline")
		tab.expectEqual("content hidden after 4401", `String(document.getElementById('content').hidden)`, "true")
		tab.expectEqual("sockets opened after 4401", `String(window.__sockets.length)`, "2")
		tab.expectEqual("token kept after 4401", `String(sessionStorage.getItem('ioc.access_token') !== null)`, "false")
		tab.noExceptions()
	})
}

// unanswered counts the topics socket i subscribed to that it has no
// snapshot or error for yet.
func unanswered(i int) string {
	return fmt.Sprintf(`(s => {
		if (!s) return 'no socket %d';
		const want = new Set(s.__sent.filter(m => m.op === 'subscribe').map(m => m.topic));
		if (want.size === 0) return 'no subscriptions';
		for (const m of s.__got) if (m.type === 'snapshot' || m.type === 'error' || m.type === 'current') want.delete(m.topic);
		return String(want.size);
	})(window.__sockets[%d])`, i, i)
}

// subscribed lists the first n topics socket i subscribed to.
func subscribed(i, n int) string {
	return fmt.Sprintf(`window.__sockets[%d].__sent.filter(m => m.op === 'subscribe').slice(0, %d).map(m => m.topic).join(',')`, i, n)
}

// hand gives the page msg as if the server had sent it on its socket.
func hand(t *testing.T, tab *tab, msg map[string]any) {
	t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	tab.do(fmt.Sprintf("hand the page a %s of %s", msg["type"], msg["topic"]), chromedp.Evaluate[chromedp.Void](
		`window.__ws.dispatchEvent(new MessageEvent('message', {data: `+string(mustJSONString(b))+`}))`))
}

// deltaJSON is a map/79 delta of version seq on base, as a JavaScript string.
func deltaJSON(t *testing.T, token uint64, seq, base uint32, child string, rate float64) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"type": "delta", "topic": "map/79", "version": bus.Version(token, seq), "base": bus.Version(token, base),
		"data": map[string]any{"children": map[string]any{child: map[string]any{"name": child, "kpis": map[string]any{"online_rate": rate}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(mustJSONString(b))
}

// serverCloses shows the page its socket closing with code, as the server
// closes it; the real socket is closed quietly.
func serverCloses(tab *tab, code int, reason string) {
	tab.t.Helper()
	tab.do(fmt.Sprintf("close the socket with %d", code), chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const ws = window.__ws, h = ws.onclose;
		ws.onclose = null;
		ws.onmessage = null;
		ws.close();
		h.call(ws, new CloseEvent('close', {code: %d, reason: %q, wasClean: true}));
	})()`, code, reason)))
}
