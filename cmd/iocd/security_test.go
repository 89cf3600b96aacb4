package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/testenv"
)

// These tests speak HTTP to a whole node only, so that they also run
// against a node built before the fixes they check.

// TestScopeIsHierarchyAndCode: a token's areas are units of the current
// hierarchy; another hierarchy's unit with the same code is not covered.
func TestScopeIsHierarchyAndCode(t *testing.T) {
	n := startNode(t, testConfig(t))
	for _, c := range []struct {
		area, path string
		want       int
	}{
		// vn-2025's 28108 is Can Duoc; jp-2021's is Kobe's Tarumi-ku.
		{"28108", "/api/v1/areas/28108/kpis", 200},
		{"28108", "/api/v1/areas/28108/kpis?hierarchy=jp-2021", 403},
		{"28108", "/api/v1/layers/jp-2021.municipality.geojson?parent=28", 200}, // and empty
		// vn-2024's 23710 went into vn-2025's 23869, not into today's 23710.
		{"23710", "/api/v1/areas/23710/kpis?hierarchy=vn-2024", 403},
		{"23869", "/api/v1/areas/23710/kpis?hierarchy=vn-2024", 200},
		{"23710", "/api/v1/areas/23716/kpis?hierarchy=vn-2024", 200}, // went wholly into 23710
	} {
		resp := n.do("GET", c.path, issueToken(t, auth.Viewer, c.area), "", nil)
		body := readAll(t, resp)
		if resp.StatusCode != c.want {
			t.Errorf("viewer of %s, %s: got %d %.200s, want %d", c.area, c.path, resp.StatusCode, body, c.want)
		}
		if strings.Contains(c.path, "geojson") && strings.Contains(body, `"code":"28108"`) {
			t.Errorf("viewer of %s, %s: the layer carries Tarumi-ku: %.300s", c.area, c.path, body)
		}
	}
}

// TestIngestTokensAreScoped: records outside an ingest token's areas are
// refused one by one, the others stored; ingest tokens no longer register
// or move devices through the API, but still register them by their first
// report, in their areas.
func TestIngestTokensAreScoped(t *testing.T) {
	n := startNode(t, testConfig(t))
	tok := issueToken(t, auth.Ingest, "26740")
	var b strings.Builder
	for _, e := range []map[string]any{
		event("s1", "ds1", "26740", "received", "online", 0),
		event("s2", "ds2", "00004", "received", "online", 0), // Hanoi
	} {
		line, _ := json.Marshal(e)
		b.Write(line)
		b.WriteByte('\n')
	}
	var r ingestReply
	if code := n.post("/api/v1/ingest/dossiers", tok, "application/x-ndjson", []byte(b.String()), &r); code != 202 || r.Accepted != 1 || r.Rejected != 1 ||
		len(r.Errors) != 1 || r.Errors[0].Index != 1 || !strings.Contains(r.Errors[0].Error, "does not cover") {
		t.Fatalf("dossiers for 26740 and 00004: got %d %+v, want the first stored and the second refused as outside the token", code, r)
	}
	if s := n.kpis("00004", "today"); num(s.KPIs["dossiers_received"]) != 0 {
		t.Errorf("00004 received %v dossiers, want 0", s.KPIs["dossiers_received"])
	}

	now := stamp(time.Now())
	events, _ := json.Marshal([]map[string]any{
		{"event_id": "c1", "camera_id": "CAM-IN", "type": "congestion", "severity": "info", "lat": nhLat, "lon": nhLon, "occurred_at": now},
		{"event_id": "c2", "camera_id": "CAM-OUT", "type": "congestion", "severity": "info", "lat": 21.03, "lon": 105.85, "occurred_at": now},
	})
	if code := n.post("/api/v1/ingest/camera-events", tok, "application/json", events, &r); code != 202 || r.Accepted != 1 || r.Rejected != 1 {
		t.Fatalf("camera events in and out of 26740: got %d %+v", code, r)
	}
	if code := n.get("/api/v1/devices/CAM-OUT", adminToken, nil); code != 404 {
		t.Errorf("the camera outside the token's scope was registered by its report (GET gives %d)", code)
	}
	if code := n.get("/api/v1/devices/CAM-IN", adminToken, nil); code != 200 {
		t.Errorf("the camera inside the token's scope was not registered by its first report (GET gives %d)", code)
	}
	// Moving or renaming a device takes an operator or admin, in scope.
	cam := map[string]any{"kind": "camera", "name": "renamed", "lat": 21.03, "lon": 105.85}
	for _, c := range []struct {
		token string
		want  int
	}{
		{issueToken(t, auth.Ingest, "*"), 403},
		{issueToken(t, auth.Operator, "26740"), 403}, // the new position is in Hanoi
		{issueToken(t, auth.Operator, "01"), 403},    // the camera stands in 26740
		{issueToken(t, auth.Operator, "26740", "01"), 200},
	} {
		if code, body := n.put("/api/v1/devices/CAM-IN", c.token, cam); code != c.want {
			t.Errorf("moving CAM-IN to Hanoi: got %d %s, want %d", code, body, c.want)
		}
	}
}

// TestCameraPostsWithItsOwnCredentials: a camera platform authenticates
// with HTTP Basic, as a camera's credentials, and posts only that camera's
// alerts.
func TestCameraPostsWithItsOwnCredentials(t *testing.T) {
	n := startNode(t, testConfig(t))
	xml, err := os.ReadFile("../../ingest/cameraxml/testdata/camera-event-notification.xml")
	if err != nil {
		t.Fatal(err)
	}
	for id, c := range map[string]map[string]any{
		"HCM-Q1-017": {"kind": "camera", "lat": nhLat, "lon": nhLon, "channel_name": "HCM-Q1-017 Nguyen Hue / Le Loi",
			"address": "10.20.30.41/1", "password": "correct horse battery"},
		"HCM-Q1-018": {"kind": "camera", "lat": nhLat, "lon": nhLon, "address": "10.20.30.42/1", "password": "another long secret"},
	} {
		if code, body := n.put("/api/v1/devices/"+id, adminToken, c); code != 201 || strings.Contains(body, "horse") || !strings.Contains(body, `"credentials":true`) {
			t.Fatalf("register %s: got %d %s", id, code, body)
		}
	}
	post := func(user, pass string, body []byte) (int, http.Header, string) {
		req, _ := http.NewRequest("POST", n.base+"/api/v1/ingest/camera-xml", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/xml")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, readAll(t, resp)
	}
	if code, h, _ := post("", "", xml); code != 401 || !strings.Contains(strings.Join(h.Values("WWW-Authenticate"), ","), "Basic") {
		t.Errorf("no credentials: got %d %v, want 401 with a Basic challenge", code, h.Values("WWW-Authenticate"))
	}
	if code, _, body := post("HCM-Q1-017", "correct horse battery", xml); code != 202 {
		t.Errorf("the camera's own credentials: got %d %s, want 202", code, body)
	}
	if code, _, _ := post("HCM-Q1-017", "wrong horse battery", xml); code != 401 {
		t.Errorf("a wrong password: got %d, want 401", code)
	}
	// Another camera's credentials may not post this camera's alert.
	if code, _, body := post("HCM-Q1-018", "another long secret", xml); code != 403 || !strings.Contains(body, "HCM-Q1-018") {
		t.Errorf("another camera's credentials: got %d %s, want 403", code, body)
	}
}

// TestRevocationReachesEveryNode: a token revoked on one node is refused by
// the other at once, and its sockets there are closed with 4401.
func TestRevocationReachesEveryNode(t *testing.T) {
	cfg := testConfig(t)
	cfg.Redis.Addr = testenv.RedisAddr(t)
	a, b := startNode(t, cfg), startNode(t, cfg)
	tok := issueToken(t, auth.Viewer, "79")
	var claims struct {
		ID string `json:"jti"`
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	_ = json.Unmarshal(payload, &claims)
	if claims.ID == "" {
		t.Fatal("the token has no jti")
	}
	ws := b.live(tok)
	ws.send("subscribe", "kpi/79")
	if m := ws.next(10 * time.Second); m.Type != "snapshot" {
		t.Fatalf("got %+v, want a snapshot", m)
	}
	var r map[string]any
	if code := a.post("/api/v1/tokens/"+claims.ID+"/revoke", adminToken, "application/json", []byte(`{"reason":"wall screen stolen"}`), &r); code != 200 {
		t.Fatalf("revoke on A: got %d %v", code, r)
	}
	// B closes the socket within seconds: the announcement on the bus is
	// applied at once (the 5 s refresh is the fallback).
	_ = ws.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ce *websocket.CloseError
	for {
		_, _, err := ws.conn.ReadMessage()
		if err == nil {
			continue // an update already on its way
		}
		if !errors.As(err, &ce) || ce.Code != 4401 {
			t.Fatalf("socket on B: got %v, want closed with 4401", err)
		}
		break
	}
	resp := b.do("GET", "/api/v1/areas/79", tok, "", nil)
	if body := readAll(t, resp); resp.StatusCode != 401 || !strings.Contains(body, "revoked") {
		t.Errorf("request on B: got %d %s, want 401 saying the token was revoked", resp.StatusCode, body)
	}
}

// TestHostileClientsAreBounded: with the default settings, a page of
// another origin cannot open the live socket, one token cannot hold more
// than 50 sockets, and wrong tokens get 429 after 60 a minute, while valid
// ones still pass.
func TestHostileClientsAreBounded(t *testing.T) {
	n := startNode(t, testConfig(t))
	url := "ws" + strings.TrimPrefix(n.base, "http") + "/api/v1/live"
	header := func(tok, origin string) http.Header {
		h := http.Header{"Authorization": {"Bearer " + tok}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return h
	}
	if c, resp, err := websocket.DefaultDialer.Dial(url, header(adminToken, "https://evil.example")); err == nil || resp == nil || resp.StatusCode != 403 {
		if c != nil {
			c.Close()
		}
		t.Errorf("a page of another origin: got %v (%v), want 403", resp, err)
	}
	if c, _, err := websocket.DefaultDialer.Dial(url, header(adminToken, n.base)); err != nil {
		t.Errorf("the server's own page: %v", err)
	} else {
		c.Close()
	}

	tok := issueToken(t, auth.Viewer, "79")
	for i := range 50 {
		c, _, err := websocket.DefaultDialer.Dial(url, header(tok, ""))
		if err != nil {
			t.Fatalf("socket %d of one token: %v", i+1, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	// A socket counts once the hub serves it, a moment after its upgrade:
	// the 51st is refused before its upgrade once the 50 are counted.
	eventually(t, 10*time.Second, func() (bool, string) {
		v := n.metric("ioc_ws_clients")
		return v == 50, fmt.Sprintf("%v live clients counted, want 50", v)
	})
	c, resp, err := websocket.DefaultDialer.Dial(url, header(tok, ""))
	if err == nil {
		c.Close()
		t.Error("a 51st socket of one token was opened")
	} else if resp == nil || resp.StatusCode != 429 || !strings.Contains(readAll(t, resp), "IOC_WS_MAX_PER_TOKEN") {
		t.Errorf("a 51st socket of one token: got %v, want 429 naming IOC_WS_MAX_PER_TOKEN", resp)
	}

	limited := 0
	for i := range 61 {
		resp := n.do("GET", "/api/v1/areas/79", "not-a-token-"+strings.Repeat("x", i), "", nil)
		body := readAll(t, resp)
		if resp.StatusCode == 429 {
			limited++
			if resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "IOC_AUTH_FAILURES_PER_MINUTE") {
				t.Errorf("429 without Retry-After or reason: %s", body)
			}
		}
	}
	if limited == 0 {
		t.Error("61 wrong tokens in a row were never answered 429")
	}
	if code := n.get("/api/v1/areas/79", adminToken, nil); code != 200 {
		t.Errorf("a valid token from the limited address: got %d, want 200", code)
	}
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
