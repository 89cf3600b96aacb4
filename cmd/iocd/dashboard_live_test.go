package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/bus"
)

// recordSockets makes the tab keep every websocket the page opens in
// window.__sockets (the newest also as window.__ws), each with the ops it
// sent (__sent) and the messages it received (__got), parsed, and the
// page's clock when it was opened (__at).
var recordSockets = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `(() => {
		const WS = window.WebSocket;
		window.__sockets = [];
		window.WebSocket = class extends WS {
			constructor(...args) {
				super(...args);
				this.__sent = [];
				this.__got = [];
				this.__at = performance.now();
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

// The page applies a topic's update only if its version is newer than
// the last it applied: an older computation that arrives late, or the
// same one again, leaves the figures alone, whatever their as_of says. A
// snapshot is always taken, even with a lower version (the sequence
// restarted: the bus lost its data), and later updates compare with it.
func TestDashboardIgnoresVersionsNotNewer(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, testConfig(t))
	tab := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "79")+"&area=79", recordSockets)
	tab.waitEqual(30*time.Second, "commune rows", `String(document.querySelectorAll('#communes tr[data-area]').length)`, "168")
	tab.waitEqual(30*time.Second, "connection state", `document.getElementById('connection').dataset.state`, "connected")
	// The node's snapshots first: a snapshot is taken whatever its version.
	tab.waitEqual(30*time.Second, "subscriptions answered", unanswered(0), "0")

	// Far above what the node stamps, so that its own messages cannot
	// interleave.
	token := uint64(time.Now().Add(24 * time.Hour).UnixMilli())
	asOf := time.Now().Add(time.Hour)
	send := func(kind, area string, version string, received int) {
		t.Helper()
		asOf = asOf.Add(time.Minute) // always later: only the version may refuse it
		data := map[string]any{"area": area, "hierarchy": "vn-2025", "level": "commune", "name": area, "window": "today",
			"as_of": asOf.Format(time.RFC3339), "kpis": map[string]any{"dossiers_received": received}}
		b, err := json.Marshal(map[string]any{"type": kind, "topic": "kpi/" + area, "version": version, "seq": 2, "data": data})
		if err != nil {
			t.Fatal(err)
		}
		tab.do("hand the page a "+kind, chromedp.Evaluate[chromedp.Void](
			`window.__ws.dispatchEvent(new MessageEvent('message', {data: `+string(mustJSONString(b))+`}))`))
	}
	// marker lets the page take everything sent before it: messages are
	// handled in order.
	marks := 0
	marker := func() {
		t.Helper()
		marks++
		send("update", "26743", bus.Version(token, uint32(100+marks)), marks)
		tab.waitEqual(10*time.Second, "marker", communeCell("26743", "dossiers_received"), itoa(marks))
	}

	send("update", "26740", bus.Version(token, 2), 7)
	tab.waitEqual(10*time.Second, "received in 26740", communeCell("26740", "dossiers_received"), "7")
	send("update", "26740", bus.Version(token, 1), 5)   // older
	send("update", "26740", bus.Version(token, 2), 6)   // the same version again
	send("update", "26740", bus.Version(token-1, 9), 4) // an overtaken holder of the lease
	marker()
	tab.expectEqual("received in 26740 after older versions", communeCell("26740", "dossiers_received"), "7")
	send("update", "26740", bus.Version(token+1, 0), 9) // a new holder
	tab.waitEqual(10*time.Second, "received in 26740 from a newer version", communeCell("26740", "dossiers_received"), "9")
	send("snapshot", "26740", bus.Version(token-10, 1), 11) // a lower version: the sequence restarted
	tab.waitEqual(10*time.Second, "received in 26740 from a snapshot of a lower version", communeCell("26740", "dossiers_received"), "11")
	send("update", "26740", bus.Version(token-10, 2), 12) // newer than the snapshot, older than what was held before it
	tab.waitEqual(10*time.Second, "received in 26740 after the lower snapshot", communeCell("26740", "dossiers_received"), "12")
	send("update", "26740", bus.Version(token-10, 1), 13) // the snapshot's version again
	marker()
	tab.expectEqual("received in 26740 after its version again", communeCell("26740", "dossiers_received"), "12")
	tab.noExceptions()
}

func mustJSONString(b []byte) []byte {
	s, _ := json.Marshal(string(b))
	return s
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
