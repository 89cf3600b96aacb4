package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/testenv"
)

func TestIngestToKPIsAtCommuneAndProvince(t *testing.T) {
	n := startNode(t, testConfig(t))
	resolved := event("r1", "d1", "26740", "resolved", "online", 10*time.Minute)
	late := event("r2", "d2", "26740", "resolved", "online", 5*time.Minute)
	late["due_at"] = time.Now().Add(-time.Hour).In(hcm).Format(time.RFC3339)
	code, r := n.ingest(
		event("a1", "d1", "26740", "received", "online", time.Hour),
		event("a2", "d2", "26740", "received", "online", time.Hour),
		event("a3", "d3", "26740", "received", "in_person", time.Hour),
		event("a4", "d4", "26743", "received", "online", time.Hour),
		resolved, late,
	)
	if code != 202 || r.Accepted != 6 || r.Rejected != 0 {
		t.Fatalf("ingest: got %d %+v, want 202 with 6 accepted", code, r)
	}
	f := func(area string, want map[string]any) {
		t.Helper()
		s := n.kpis(area, "24h")
		for k, v := range want {
			if fmt.Sprint(s.KPIs[k]) != fmt.Sprint(v) {
				t.Errorf("%s %s: got %v, want %v", area, k, s.KPIs[k], v)
			}
		}
	}
	f("26740", map[string]any{"dossiers_received": 3, "dossiers_online": 2, "online_rate": 0.6667,
		"dossiers_resolved": 2, "dossiers_on_time": 1, "on_time_rate": 0.5, "dossiers_overdue": 0})
	f("26743", map[string]any{"dossiers_received": 1, "online_rate": 1, "on_time_rate": "<nil>"})
	f("79", map[string]any{"dossiers_received": 4, "dossiers_online": 3, "online_rate": 0.75,
		"dossiers_resolved": 2, "dossiers_on_time": 1, "on_time_rate": 0.5})

	var kids struct {
		Area     string     `json:"area"`
		Children []snapshot `json:"children"`
	}
	if code := n.get("/api/v1/areas/79/children/kpis?window=24h", adminToken, &kids); code != 200 || len(kids.Children) != 168 {
		t.Fatalf("children of 79: status %d, %d children; want 200 and 168", code, len(kids.Children))
	}
	for _, k := range kids.Children {
		if k.Area == "26743" && num(k.KPIs["dossiers_received"]) != 1 {
			t.Errorf("child 26743: got %v received, want 1", k.KPIs["dossiers_received"])
		}
	}
	// An open dossier past its due date is overdue at once.
	overdue := event("o1", "d9", "26743", "processing", "online", time.Minute)
	overdue["due_at"] = time.Now().Add(-time.Minute).In(hcm).Format(time.RFC3339)
	if code, r := n.ingest(overdue); code != 202 || r.Accepted != 1 {
		t.Fatalf("ingest overdue: got %d %+v", code, r)
	}
	f("79", map[string]any{"dossiers_overdue": 1})
}

func TestInvalidRecordsReportedByIndexWhileNeighboursAreStored(t *testing.T) {
	n := startNode(t, testConfig(t))
	bad := event("b1", "d2", "26740", "done", "online", time.Minute)
	unknown := event("b2", "d3", "99999", "received", "online", time.Minute)
	future := event("b3", "d4", "26740", "received", "online", -time.Hour)
	body := strings.Join([]string{
		mustJSON(event("g1", "d1", "26740", "received", "online", time.Minute)),
		mustJSON(bad),
		`{"event_id": broken`,
		mustJSON(unknown),
		mustJSON(event("g2", "d5", "26740", "received", "postal", time.Minute)),
		mustJSON(future),
	}, "\n")
	resp := n.do("POST", "/api/v1/ingest/dossiers", adminToken, "application/x-ndjson", []byte(body))
	defer resp.Body.Close()
	var r ingestReply
	_ = json.NewDecoder(resp.Body).Decode(&r)
	if resp.StatusCode != 202 || r.Accepted != 2 || r.Rejected != 4 {
		t.Fatalf("got %d %+v, want 202 with 2 accepted and 4 rejected", resp.StatusCode, r)
	}
	want := map[int]string{1: `status "done" is not one of`, 2: "malformed JSON", 3: `area_code "99999" is not a unit of vn-2025`, 5: "in the future; the limit is 5m0s"}
	for i, e := range r.Errors {
		if !strings.Contains(e.Error, want[e.Index]) {
			t.Errorf("error %d: index %d %q, want it to contain %q", i, e.Index, e.Error, want[e.Index])
		}
	}
	if s := n.kpis("26740", "24h"); num(s.KPIs["dossiers_received"]) != 2 {
		t.Errorf("valid neighbours stored: got %v received, want 2", s.KPIs["dossiers_received"])
	}
	// A JSON array works the same way.
	arr := fmt.Sprintf(`[%s, 42]`, mustJSON(event("g3", "d6", "26740", "received", "online", time.Minute)))
	resp = n.do("POST", "/api/v1/ingest/dossiers", adminToken, "application/json", []byte(arr))
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if resp.StatusCode != 202 || r.Accepted != 1 || r.Rejected != 1 || r.Errors[0].Index != 1 {
		t.Errorf("array: got %d %+v, want 1 accepted and index 1 rejected", resp.StatusCode, r)
	}
	// A body that cannot be parsed at all is a 400.
	for _, b := range []string{"", "not json", `[{"a":1},`} {
		resp := n.do("POST", "/api/v1/ingest/dossiers", adminToken, "application/json", []byte(b))
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(raw), "body cannot be parsed") {
			t.Errorf("body %q: got %d %s, want 400 saying it cannot be parsed", b, resp.StatusCode, raw)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestDuplicatesCountOnceAlsoAcrossRestart(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	e1 := event("dup-1", "d1", "26740", "received", "online", time.Minute)
	e2 := event("dup-2", "d2", "26740", "received", "online", time.Minute)
	// The same id twice in one body.
	if code, r := n.ingest(e1, e2, e1); code != 202 || r.Accepted != 3 || r.Duplicates != 1 {
		t.Fatalf("first body: got %d %+v, want 3 accepted of which 1 duplicate", code, r)
	}
	// Again in another request.
	if code, r := n.ingest(e2); code != 202 || r.Duplicates != 1 {
		t.Fatalf("second request: got %d %+v, want 1 duplicate", code, r)
	}
	if s := n.kpis("26740", "24h"); num(s.KPIs["dossiers_received"]) != 2 {
		t.Fatalf("got %v received, want 2", s.KPIs["dossiers_received"])
	}
	// The data survives a restart, and a resend after it still counts once.
	n.stop()
	n = startNode(t, cfg)
	if s := n.kpis("26740", "24h"); num(s.KPIs["dossiers_received"]) != 2 {
		t.Fatalf("after restart: got %v received, want 2", s.KPIs["dossiers_received"])
	}
	if code, r := n.ingest(e1, e2, event("dup-3", "d3", "26740", "received", "online", time.Minute)); code != 202 || r.Duplicates != 2 {
		t.Fatalf("resend after restart: got %d %+v, want 2 duplicates", code, r)
	}
	for _, area := range []string{"26740", "79"} {
		if s := n.kpis(area, "24h"); num(s.KPIs["dossiers_received"]) != 3 {
			t.Errorf("%s after resend: got %v received, want 3", area, s.KPIs["dossiers_received"])
		}
	}
}

// TestResendWithOtherContentIsRefusedAndSupersedesCorrects: the same
// event_id sent again with a corrected time was taken as a harmless resend
// and the correction silently dropped. Now a resend with other content is
// refused at its index, saying what differs and how to correct it, and an
// event that supersedes the wrong one corrects the figures.
func TestResendWithOtherContentIsRefusedAndSupersedesCorrects(t *testing.T) {
	n := startNode(t, testConfig(t))
	received := event("fix-1", "fd1", "26740", "received", "online", 3*time.Hour)
	late := event("fix-2", "fd1", "26740", "resolved", "online", time.Hour)
	late["due_at"] = time.Now().Add(-2 * time.Hour).In(hcm).Format(time.RFC3339) // resolved an hour after its deadline
	if code, r := n.ingest(received, late); code != 202 || r.Accepted != 2 || r.Rejected != 0 {
		t.Fatalf("first send: got %d %+v, want 2 accepted", code, r)
	}
	onTime := func() (float64, float64) {
		s := n.kpis("26740", "24h")
		return num(s.KPIs["dossiers_resolved"]), num(s.KPIs["dossiers_on_time"])
	}
	if resolved, on := onTime(); resolved != 1 || on != 0 {
		t.Fatalf("after the late resolution: %v resolved, %v on time; want 1 and 0", resolved, on)
	}
	// The same content again is a harmless resend.
	if code, r := n.ingest(late); code != 202 || r.Duplicates != 1 || r.Rejected != 0 {
		t.Fatalf("identical resend: got %d %+v, want 1 duplicate", code, r)
	}
	// Other content under the same id is refused, with the reason.
	corrected := event("fix-2", "fd1", "26740", "resolved", "online", 150*time.Minute)
	corrected["due_at"] = late["due_at"]
	code, r := n.ingest(event("fix-3", "fd2", "26740", "received", "online", time.Hour), corrected)
	if code != 202 || r.Accepted != 1 || r.Rejected != 1 || r.Duplicates != 0 || len(r.Errors) != 1 || r.Errors[0].Index != 1 {
		t.Fatalf("conflicting resend: got %d %+v, want its neighbour accepted and it rejected at index 1", code, r)
	}
	for _, want := range []string{"event fix-2 was stored with different content", "occurred_at", `"supersedes":"fix-2"`} {
		if !strings.Contains(r.Errors[0].Error, want) {
			t.Errorf("conflict error %q, want it to contain %q", r.Errors[0].Error, want)
		}
	}
	if resolved, on := onTime(); resolved != 1 || on != 0 {
		t.Errorf("after the refused resend: %v resolved, %v on time; want 1 and 0 unchanged", resolved, on)
	}
	// The documented correction: a new event that supersedes the wrong one.
	corrected["event_id"], corrected["supersedes"] = "fix-2b", "fix-2"
	if code, r := n.ingest(corrected); code != 202 || r.Accepted != 1 || r.Rejected != 0 {
		t.Fatalf("superseding event: got %d %+v, want it accepted", code, r)
	}
	if resolved, on := onTime(); resolved != 1 || on != 1 {
		t.Errorf("after the correction: %v resolved, %v on time; want 1 and 1", resolved, on)
	}
}

func TestClickHouseDownGives503AndAcknowledgesNothing(t *testing.T) {
	runsBesideOthers(t)
	ch := testenv.StartClickHouse(t)
	cfg := testConfig(t)
	cfg.ClickHouse.Addr = ch.Addr
	cfg.ClickHouse.Database = testenv.DatabaseOn(t, ch.Addr)
	n := startNode(t, cfg)
	if code, _ := n.ingest(event("c1", "d1", "26740", "received", "online", time.Minute)); code != 202 {
		t.Fatalf("with ClickHouse up: got %d, want 202", code)
	}
	ch.Kill()
	lost := event("c2", "d2", "26740", "received", "online", time.Minute)
	resp := n.do("POST", "/api/v1/ingest/dossiers", adminToken, "application/x-ndjson", []byte(mustJSON(lost)))
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(raw), "nothing from this request was acknowledged") {
		t.Fatalf("with ClickHouse down: got %d Retry-After %q %s, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), raw)
	}
	// The storage's own error (its address, the driver's text) stays in
	// the log, under the request id the client is given.
	if id := resp.Header.Get("X-Request-Id"); strings.Contains(string(raw), ch.Addr) || strings.Contains(string(raw), "store batch") || id == "" || !strings.Contains(string(raw), id) {
		t.Errorf("with ClickHouse down: got %s (X-Request-Id %q), want no storage error text and the request id", raw, id)
	}
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if code := n.get("/readyz", "", &ready); code != 503 || ready.Checks["clickhouse"] == "ok" {
		t.Errorf("readyz with ClickHouse down: got %d %+v, want 503 naming clickhouse", code, ready)
	}
	testenv.RestartClickHouse(t, ch)
	// Only what was acknowledged is there; the client's retry is then taken.
	deadline := time.Now().Add(30 * time.Second)
	for n.get("/readyz", "", nil) != 200 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if s := n.kpis("26740", "24h"); num(s.KPIs["dossiers_received"]) != 1 {
		t.Errorf("after ClickHouse returned: got %v received, want only the 1 acknowledged", s.KPIs["dossiers_received"])
	}
	if code, r := n.ingest(lost); code != 202 || r.Accepted != 1 || r.Duplicates != 0 {
		t.Fatalf("retry: got %d %+v, want 202 with 1 new record", code, r)
	}
	if s := n.kpis("26740", "24h"); num(s.KPIs["dossiers_received"]) != 2 {
		t.Errorf("after retry: got %v received, want 2", s.KPIs["dossiers_received"])
	}
}

func TestWebsocketSnapshotThenUpdate(t *testing.T) {
	n := startNode(t, testConfig(t))
	waitLive(t, n)
	ws := n.live(adminToken)
	ws.send("subscribe", "kpi/26740")
	ws.send("subscribe", "kpi/79/24h")
	got := map[string]wsMessage{}
	for range 2 {
		m := ws.next(10 * time.Second)
		got[m.Topic] = m
	}
	for _, topic := range []string{"kpi/26740", "kpi/79/24h"} {
		m := got[topic]
		if m.Type != "snapshot" || num(m.snapshot(t).KPIs["dossiers_received"]) != 0 {
			t.Fatalf("%s: got %+v, want a snapshot with nothing received", topic, m)
		}
	}
	if s := got["kpi/79/24h"].snapshot(t); s.Window != "24h" || s.Area != "79" || s.Level != "province" {
		t.Errorf("province snapshot: got %+v", s)
	}
	posted := time.Now()
	if code, _ := n.ingest(event("w1", "d1", "26740", "received", "online", 0)); code != 202 {
		t.Fatal("ingest failed")
	}
	seen := map[string]wsMessage{}
	for len(seen) < 2 {
		m := ws.next(10 * time.Second)
		if m.Type != "update" {
			t.Fatalf("got %+v, want updates", m)
		}
		seen[m.Topic] = m
	}
	t.Logf("update reached the screen %s after the dossier was acknowledged", time.Since(posted).Round(time.Millisecond))
	for topic, m := range seen {
		if m.Version <= got[topic].Version || num(m.snapshot(t).KPIs["dossiers_received"]) != 1 || num(m.snapshot(t).KPIs["online_rate"]) != 1 {
			t.Errorf("%s: got version %s %s, want a newer version than the snapshot's with 1 received online", topic, m.Version, m.Data)
		}
	}
	// Unsubscribed topics stay quiet; bad requests get an error message.
	ws.send("unsubscribe", "kpi/79/24h")
	ws.send("subscribe", "weather/79")
	m := ws.next(10 * time.Second)
	if m.Type != "error" || m.Topic != "weather/79" || !strings.Contains(m.Error, "unknown topic") {
		t.Errorf("unknown topic: got %+v", m)
	}
	for _, bad := range []struct{ topic, want string }{
		{"kpi/99999", `unknown area "99999"`}, {"kpi/79/1y", `unknown window "1y"`},
	} {
		ws.send("subscribe", bad.topic)
		if m := ws.next(10 * time.Second); m.Type != "error" || !strings.Contains(m.Error, bad.want) {
			t.Errorf("%s: got %+v, want an error containing %q", bad.topic, m, bad.want)
		}
	}
	if code, _ := n.ingest(event("w2", "d2", "26740", "received", "online", 0)); code != 202 {
		t.Fatal("ingest failed")
	}
	m = ws.next(10 * time.Second)
	if m.Topic != "kpi/26740" || m.Type != "update" || num(m.snapshot(t).KPIs["dossiers_received"]) != 2 {
		t.Errorf("after unsubscribing the province: got %+v, want only an update of kpi/26740", m)
	}
}

func TestScopeEnforcement(t *testing.T) {
	n := startNode(t, testConfig(t))
	commune := issueToken(t, auth.Viewer, "26740")
	province := issueToken(t, auth.Viewer, "79")
	ingestOnly := issueToken(t, auth.Ingest)
	f := func(path, tok string, want int) {
		t.Helper()
		var body map[string]any
		if got := n.get(path, tok, &body); got != want {
			t.Errorf("GET %s: got %d %v, want %d", path, got, body, want)
		} else if want >= 400 && body["error"] == "" {
			t.Errorf("GET %s: %d without an error message", path, got)
		}
	}
	f("/api/v1/areas/26740/kpis", commune, 200)
	f("/api/v1/areas/26740", commune, 200)
	f("/api/v1/areas/26740/children/kpis", commune, 200)
	f("/api/v1/areas/26743/kpis", commune, 403)
	f("/api/v1/areas/79/kpis", commune, 403)
	f("/api/v1/areas/79/children/kpis", commune, 403)
	f("/api/v1/areas/79", commune, 403)
	f("/api/v1/areas/26743/kpis", province, 200)
	f("/api/v1/areas/79/children/kpis", province, 200)
	f("/api/v1/areas/01/kpis", province, 403)
	f("/api/v1/areas/79/kpis", ingestOnly, 403)
	f("/api/v1/areas/79/kpis", "", 401)
	f("/api/v1/areas/79/kpis", "not-a-token", 401)
	f("/api/v1/areas/79/kpis", issueToken(t, auth.Viewer, "79")+"x", 401)
	f("/api/v1/areas/99999/kpis", adminToken, 404)
	f("/api/v1/areas/79/kpis?window=1y", adminToken, 400)
	f("/api/v1/areas?level=district", adminToken, 400)
	f("/api/v1/areas?hierarchy=vn-1999", adminToken, 404)
	f("/metrics", province, 403)
	var list struct {
		Count int `json:"count"`
		Areas []struct {
			Code string `json:"code"`
		} `json:"areas"`
	}
	n.get("/api/v1/areas?parent=79", commune, &list)
	if list.Count != 1 || list.Areas[0].Code != "26740" {
		t.Errorf("areas a commune viewer sees under 79: got %+v, want only 26740", list)
	}
	n.get("/api/v1/areas?level=commune&parent=79", province, &list)
	if list.Count != 168 {
		t.Errorf("communes a province viewer sees: got %d, want 168", list.Count)
	}
	n.get("/api/v1/areas?level=province", adminToken, &list)
	if list.Count != 34 {
		t.Errorf("provinces: got %d, want 34", list.Count)
	}
	// A viewer may not push records.
	resp := n.do("POST", "/api/v1/ingest/dossiers", province, "application/json", []byte("[]"))
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("viewer ingest: got %d, want 403", resp.StatusCode)
	}
	// The websocket applies the same scope.
	ws := n.live(commune)
	ws.send("subscribe", "kpi/26743")
	if m := ws.next(10 * time.Second); m.Type != "error" || !strings.Contains(m.Error, "does not cover area 26743") {
		t.Errorf("commune viewer subscribing to a neighbour: got %+v", m)
	}
	ws.send("subscribe", "kpi/79")
	if m := ws.next(10 * time.Second); m.Type != "error" || m.Topic != "kpi/79" {
		t.Errorf("commune viewer subscribing to the province: got %+v", m)
	}
	ws.send("subscribe", "kpi/26740")
	if m := ws.next(10 * time.Second); m.Type != "snapshot" || m.Topic != "kpi/26740" {
		t.Errorf("commune viewer subscribing to its commune: got %+v", m)
	}
	// Without a token the websocket is refused before the upgrade.
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.base, "http")+"/api/v1/live", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("websocket without token: got %v, want a 401", err)
	}
	_, resp, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.base, "http")+"/api/v1/live?access_token="+ingestOnly, nil)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("websocket with an ingest-only token: got %v, want a 403", err)
	}
}

func TestTwoNodesSharingRedisDeliverTheSameUpdates(t *testing.T) {
	cfg := testConfig(t)
	cfg.Redis.Addr = testenv.RedisAddr(t)
	a, b := startNode(t, cfg), startNode(t, cfg)
	waitLive(t, a)
	waitLive(t, b)
	onA, onB := a.live(adminToken), b.live(adminToken)
	for _, ws := range []*wsClient{onA, onB} {
		ws.send("subscribe", "kpi/26740")
		if m := ws.next(10 * time.Second); m.Type != "snapshot" {
			t.Fatalf("got %+v, want a snapshot", m)
		}
	}
	// A dossier ingested on node A reaches a screen on node B.
	if code, _ := a.ingest(event("n1", "d1", "26740", "received", "online", 0)); code != 202 {
		t.Fatal("ingest on A failed")
	}
	for name, ws := range map[string]*wsClient{"A": onA, "B": onB} {
		m := ws.until(10*time.Second, func(m wsMessage) bool { return m.Type == "update" })
		if got := num(m.snapshot(t).KPIs["dossiers_received"]); got != 1 {
			t.Errorf("screen on node %s: got %v received, want 1", name, got)
		}
	}
	// And the other way round; the same event sent to both counts once.
	e := event("n2", "d2", "26740", "received", "online", 0)
	if code, _ := b.ingest(e); code != 202 {
		t.Fatal("ingest on B failed")
	}
	if code, r := a.ingest(e); code != 202 || r.Duplicates != 1 {
		t.Fatalf("resend to A: got %d %+v, want a duplicate", code, r)
	}
	m := onA.until(10*time.Second, func(m wsMessage) bool { return m.Type == "update" })
	if got := num(m.snapshot(t).KPIs["dossiers_received"]); got != 2 {
		t.Errorf("screen on A: got %v received, want 2", got)
	}
	if s := b.kpis("79", "24h"); num(s.KPIs["dossiers_received"]) != 2 {
		t.Errorf("province on B: got %v, want 2", s.KPIs["dossiers_received"])
	}
}

func TestShutdownFlushesPendingBatchesAndClosesWebsockets(t *testing.T) {
	cfg := testConfig(t)
	cfg.BatchAge = time.Hour // nothing flushes until shutdown
	cfg.BatchRows = 1 << 20
	n := startNode(t, cfg)
	ws := n.live(adminToken)
	ws.send("subscribe", "kpi/26740")
	ws.next(10 * time.Second)
	replies := make(chan int, 1)
	go func() {
		code, r := n.ingest(event("s1", "d1", "26740", "received", "online", time.Minute))
		if code != 202 || r.Accepted != 1 {
			code = -code
		}
		replies <- code
	}()
	// Wait for the record to be queued, then stop as SIGTERM does: the gauge
	// counts rows once they are in the queue that shutdown flushes.
	deadline := time.Now().Add(20 * time.Second)
	for n.metric(`ioc_ingest_queue_rows{table="dossier_history"}`) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the record was not queued within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped := make(chan struct{})
	go func() {
		n.stop()
		close(stopped)
	}()
	_ = ws.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var closeErr *websocket.CloseError
	for {
		if _, _, err := ws.conn.ReadMessage(); err != nil {
			if !errors.As(err, &closeErr) {
				t.Fatalf("websocket ended with %v, want a close frame", err)
			}
			break
		}
	}
	if closeErr.Code != websocket.CloseGoingAway {
		t.Errorf("close code: got %d, want 1001 (going away)", closeErr.Code)
	}
	if code := <-replies; code != 202 {
		t.Fatalf("pending request: got %d, want 202 once flushed at shutdown", code)
	}
	<-stopped
	n = startNode(t, cfg)
	if s := n.kpis("26740", "24h"); num(s.KPIs["dossiers_received"]) != 1 {
		t.Errorf("after restart: got %v received, want the 1 flushed at shutdown", s.KPIs["dossiers_received"])
	}
}

func TestLimits(t *testing.T) {
	cfg := testConfig(t)
	cfg.BodyLimit = 4096
	cfg.QueueRows = 3
	n := startNode(t, cfg)
	var big bytes.Buffer
	for i := 0; big.Len() < 8192; i++ {
		big.WriteString(mustJSON(event(fmt.Sprint("l", i), "d", "26740", "received", "online", time.Minute)) + "\n")
	}
	resp := n.do("POST", "/api/v1/ingest/dossiers", adminToken, "application/x-ndjson", big.Bytes())
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(raw), "larger than 4096 bytes") {
		t.Errorf("oversize body: got %d %s, want 413 naming the limit", resp.StatusCode, raw)
	}
	var four []map[string]any
	for i := range 4 {
		four = append(four, event(fmt.Sprint("q", i), "d", "26740", "received", "online", time.Minute))
	}
	resp = n.do("POST", "/api/v1/ingest/dossiers", adminToken, "application/json", []byte(mustJSON(four)))
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(raw), "IOC_INGEST_QUEUE_ROWS") {
		t.Errorf("over the queue: got %d %s, want 503 with Retry-After naming IOC_INGEST_QUEUE_ROWS", resp.StatusCode, raw)
	}
	var body map[string]string
	if code := n.get("/api/v1/nowhere", adminToken, &body); code != 404 || !strings.Contains(body["error"], "no route GET /api/v1/nowhere") {
		t.Errorf("unknown route: got %d %v", code, body)
	}
	var health map[string]string
	if code := n.get("/healthz", "", &health); code != 200 || health["status"] != "ok" {
		t.Errorf("healthz: got %d %v", code, health)
	}
	resp = n.do("GET", "/metrics", adminToken, "", nil)
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, metric := range []string{"ioc_ingest_records_total", "ioc_ingest_queue_rows", "ioc_ws_clients", "ioc_http_requests_total"} {
		if !strings.Contains(string(raw), metric) {
			t.Errorf("/metrics lacks %s", metric)
		}
	}
}
