package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/bus"
)

// The wall page's measurement hook, which `iocbench wall` reads: with
// ?measure=1 every update of a kpi/ or map/ topic the page applies leaves
// [topic, version, as_of, received, painted] in window.__iocMeasure.samples
// once the frame showing it has rendered, and every change of the dashboard
// shown a view; snapshots and other topics leave nothing. Without
// ?measure=1 the page keeps nothing.
func TestWallMeasureHook(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, testConfig(t))
	seedWall(t, n)
	w := startWallAPI(t, n)
	viewer := issueToken(t, auth.Viewer, "79")
	rendered := `document.documentElement.dataset.rendered && window.__ws && window.__ws.__got.some((m) => m.type === 'snapshot' && m.topic === 'kpi/79')`

	plain := openTab(t, browser, w.base+"/wall/?dashboard=ops-79&area=79&access_token="+viewer, chromedp.EmulateViewport(1920, 1080), recordSockets)
	plain.await(30*time.Second, "the dashboard painted, without ?measure=1", rendered)

	measured := openTab(t, browser, w.base+"/wall/?dashboard=ops-79&area=79&measure=1&access_token="+viewer, chromedp.EmulateViewport(1920, 1080), recordSockets)
	measured.await(30*time.Second, "the dashboard painted, with ?measure=1", rendered)
	measured.awaitEqual(10*time.Second, "the dashboard shown, as a view", `JSON.stringify(window.__iocMeasure.views.map((v) => [v[1], v[2]]))`, `[["ops-79",""]]`)

	// Far above what the node stamps, so that its own messages cannot
	// come between.
	token := uint64(time.Now().Add(24 * time.Hour).UnixMilli())
	asOf := time.Now().Add(time.Hour).Format(time.RFC3339)
	send := func(tb *tab, kind, topic, version string, data map[string]any) {
		t.Helper()
		b, err := json.Marshal(map[string]any{"type": kind, "topic": topic, "version": version, "data": data})
		if err != nil {
			t.Fatal(err)
		}
		tb.do("hand the page a "+kind+" of "+topic, chromedp.Evaluate[chromedp.Void](
			`window.__ws.dispatchEvent(new MessageEvent('message', {data: `+string(mustJSONString(b))+`}))`))
	}
	figures := func(received int) map[string]any {
		return map[string]any{"area": "79", "hierarchy": "vn-2025", "level": "province", "name": "Hồ Chí Minh", "window": "today",
			"as_of": asOf, "kpis": map[string]any{"dossiers_received": received}}
	}
	for _, tb := range []*tab{measured, plain} {
		send(tb, "snapshot", "kpi/79", bus.Version(token, 1), figures(1000))
		send(tb, "update", "alarms/79", bus.Version(token, 2), map[string]any{"area": "79", "as_of": asOf, "open": []any{}})
		send(tb, "update", "kpi/79", bus.Version(token, 3), figures(1001))
		tb.awaitEqual(10*time.Second, "the update shown", `document.querySelector('[data-indicator="dossiers_received"]').dataset.value`, "1001")
	}

	sample := measured.await(10*time.Second, "the update's sample", `window.__iocMeasure.samples.length && JSON.stringify(window.__iocMeasure.samples)`)
	var samples [][]any
	if err := json.Unmarshal([]byte(sample), &samples); err != nil {
		t.Fatal(err)
	}
	// Whatever the node published meanwhile counts too; the update sent
	// here must be there, once, and nothing of the snapshot or the alarms.
	found := 0
	for _, s := range samples {
		if len(s) != 5 {
			t.Fatalf("sample %v: want [topic, version, as_of, received, painted]", s)
		}
		topic, version, of := s[0].(string), s[1].(string), s[2].(string)
		received, _ := s[3].(float64)
		painted, _ := s[4].(float64)
		if topic != "kpi/79" && topic != "map/79" {
			t.Errorf("sample of %s: only updates of kpi/ and map/ are measured", topic)
		}
		if version != bus.Version(token, 3) {
			continue
		}
		found++
		if of != asOf || received <= 0 || painted < received {
			t.Errorf("sample %v: want as_of %s, and painted at or after received", s, asOf)
		}
	}
	if found != 1 {
		t.Errorf("the update left %d samples, want 1: %s", found, sample)
	}
	// The reader empties what it reads.
	measured.awaitEqual(5*time.Second, "samples emptied", `(m => { m.samples.length = 0; return String(m.samples.length); })(window.__iocMeasure)`, "0")
	plain.expectEqual("nothing kept without ?measure=1", `typeof window.__iocMeasure`, "undefined")
	measured.noExceptions()
	plain.noExceptions()
}
