package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/hub"
	"github.com/openioc/ioc/api/internal/apitest"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/internal/testenv"
)

// serveMatrix runs the matrix server on a loopback listener.
func serveMatrix(t *testing.T, cfg Config) (*matrixServer, string) {
	t.Helper()
	m := newMatrixServer(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = m.s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.s.Shutdown(ctx)
	})
	return m, ln.Addr().String()
}

type liveMsg struct {
	Type  string          `json:"type"`
	Topic string          `json:"topic"`
	Data  json.RawMessage `json:"data"`
	Error string          `json:"error"`
}

func dial(addr, token string, header http.Header) (*websocket.Conn, *http.Response, error) {
	if header == nil {
		header = http.Header{}
	}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	return d.Dial("ws://"+addr+"/api/v1/live", header)
}

// TestSecurityMatrixLive: every topic kind, for units in and out of each
// token's scope and for codes of other hierarchies, answers a snapshot
// only within the scope.
func TestSecurityMatrixLive(t *testing.T) {
	m, addr := serveMatrix(t, Config{})
	units := []string{"26740", "79", "01", "00004", "28108", "23710", "28", "760"}
	var topics []string
	for _, u := range units {
		for _, f := range []string{"kpi/%s", "kpi/%s/24h", "map/%s", "map/%s/7d", "alarms/%s", "events/%s", "devices/%s", "screen/s-%s"} {
			topics = append(topics, fmt.Sprintf(f, u))
		}
	}
	cur := auth.HierarchyName("vn-2025")
	served := 0
	for _, w := range matrixPrincipals(t, m.scope) {
		c, resp, err := dial(addr, w.token, nil)
		if w.token == "" || !w.p.CanRead() {
			if err == nil || resp == nil || (resp.StatusCode != 401 && resp.StatusCode != 403) {
				t.Errorf("live as %s: got %v, want refused with 401 or 403", w.name, err)
			}
			if c != nil {
				c.Close()
			}
			continue
		}
		if err != nil {
			t.Fatalf("live as %s: %v", w.name, err)
		}
		for _, topic := range topics {
			if err := c.WriteJSON(map[string]string{"op": "subscribe", "topic": topic}); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]liveMsg{}
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		for len(got) < len(topics) {
			var msg liveMsg
			if err := c.ReadJSON(&msg); err != nil {
				t.Fatalf("live as %s: read after %d of %d topics: %v", w.name, len(got), len(topics), err)
			}
			got[msg.Topic] = msg
		}
		c.Close()
		for _, topic := range topics {
			msg := got[topic]
			code := strings.Split(topic, "/")[1]
			inScope := w.p.Covers(cur, code)
			if id, ok := strings.CutPrefix(topic, "screen/"); ok {
				// A kiosk follows its own screen, an operator those whose
				// areas it covers, an admin any (one the documents do not
				// name shows that); nobody else.
				code = strings.TrimPrefix(id, "s-")
				_, named := m.screens.ScreenAreas(id)
				inScope = w.p.Role == auth.Kiosk && w.p.Screen == id || w.p.Role == auth.Admin ||
					w.p.Role == auth.Operator && (w.p.Unrestricted() || named && w.p.Covers(cur, code))
				if msg.Type == "error" && inScope {
					t.Errorf("live as %s: %s: refused in scope: %s", w.name, topic, msg.Error)
				}
			}
			switch {
			case msg.Type == "snapshot" && !inScope:
				t.Errorf("live as %s: %s: OUT-OF-SCOPE READ: a snapshot of %s", w.name, topic, msg.Data)
			case msg.Type == "error" && inScope && !strings.Contains(msg.Error, "unknown area") && !strings.Contains(msg.Error, "no child units"):
				t.Errorf("live as %s: %s: refused in scope: %s", w.name, topic, msg.Error)
			case msg.Type == "snapshot":
				served++
				if l := leaks(w.p, "vn-2025", msg.Data, "application/json"); len(l) > 0 {
					t.Errorf("live as %s: %s: OUT-OF-SCOPE READ of %v", w.name, topic, l)
				}
			}
		}
	}
	if served == 0 {
		t.Error("no topic was served: the matrix tests nothing")
	}
}

// TestLiveOriginAndCaps: a page of another origin cannot open the socket
// unless allowed; one token and one address hold a bounded number of
// sockets, and the refusal names the limit and how to raise it.
func TestLiveOriginAndCaps(t *testing.T) {
	m, addr := serveMatrix(t, Config{AllowedOrigins: []string{"https://wall.example.gov.vn"},
		Hub: hub.Config{MaxPerToken: 2, MaxPerAddress: 3}})
	origin := func(o string) http.Header { return http.Header{"Origin": {o}} }
	waitConns := func(n float64) {
		testenv.Eventually(t, 10*time.Second, func() (bool, string) {
			have := m.gauge(t, "ioc_ws_clients")
			return have == n, fmt.Sprintf("want %v connections, have %v", n, have)
		})
	}
	for _, c := range []struct {
		origin string
		want   int
	}{
		{"https://evil.example", 403},
		{"null", 403},
		{"http://" + addr, 101},               // the server's own pages
		{"https://wall.example.gov.vn", 101},  // listed
		{"https://WALL.example.gov.vn/", 101}, // origins compare without case
		{"", 101},                             // no Origin: not a browser
	} {
		h := http.Header{}
		if c.origin != "" {
			h = origin(c.origin)
		}
		conn, resp, _ := dial(addr, apitest.Admin, h)
		if resp == nil || resp.StatusCode != c.want {
			t.Errorf("origin %q: got %v, want %d", c.origin, resp, c.want)
		}
		if c.want == 403 && resp != nil {
			var e errorBody
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if !strings.Contains(e.Error, "IOC_ALLOWED_ORIGINS") {
				t.Errorf("origin %q: refusal %q does not say how to allow it", c.origin, e.Error)
			}
		}
		if conn != nil {
			conn.Close()
			waitConns(0) // so that the address's cap is not what refuses the next
		}
	}

	// Per token: a viewer's third socket is refused, naming the limit.
	tok, _ := auth.Issue(apitest.Secret, auth.Principal{Role: auth.Viewer, Areas: []string{"79"}}, time.Hour, time.Now())
	open := func(token string) (*websocket.Conn, *http.Response) {
		c, resp, _ := dial(addr, token, nil)
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, resp
	}
	waitConns(0)
	a, _ := open(tok)
	open(tok)
	waitConns(2)
	_, resp := open(tok)
	var e errorBody
	if resp == nil || resp.StatusCode != 429 {
		t.Fatalf("third socket of a token: got %v, want 429", resp)
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if !strings.Contains(e.Error, "2 live connections per token") || !strings.Contains(e.Error, "IOC_WS_MAX_PER_TOKEN") {
		t.Errorf("refusal %q: want the limit and IOC_WS_MAX_PER_TOKEN", e.Error)
	}
	// Per address: all come from 127.0.0.1; the admin token makes the third.
	open(apitest.Admin)
	waitConns(3)
	_, resp = open(apitest.Admin)
	if resp == nil || resp.StatusCode != 429 {
		t.Fatalf("fourth socket of an address: got %v, want 429", resp)
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if !strings.Contains(e.Error, "IOC_WS_MAX_PER_ADDRESS") {
		t.Errorf("refusal %q: want IOC_WS_MAX_PER_ADDRESS", e.Error)
	}
	// A socket that closes frees its place.
	a.Close()
	waitConns(2)
	if c, resp := open(tok); c == nil {
		t.Errorf("after one closed: got %v, want a socket", resp)
	}
}

// TestFailedAuthenticationIsLimited: wrong tokens from one address get 429
// with Retry-After once over the limit; valid tokens are never limited.
func TestFailedAuthenticationIsLimited(t *testing.T) {
	m := newMatrixServer(t, Config{AuthFailuresPerMinute: 5})
	r := request{method: "GET", url: "/api/v1/areas/79"}
	for i := range 5 {
		if got := m.do(t, r, fmt.Sprintf("wrong-token-%d", i)); got.code != 401 {
			t.Fatalf("failure %d: got %d, want 401", i+1, got.code)
		}
	}
	got := m.do(t, r, "wrong-token-6")
	if got.code != 429 || got.header.Get("Retry-After") == "" || !strings.Contains(string(got.body), "IOC_AUTH_FAILURES_PER_MINUTE") {
		t.Fatalf("6th failure: got %d %s (Retry-After %q), want 429 saying when and why", got.code, got.body, got.header.Get("Retry-After"))
	}
	if got := m.do(t, r, apitest.Admin); got.code != 200 {
		t.Errorf("a valid token from the limited address: got %d, want 200", got.code)
	}
	// No credentials at all is not a guess.
	if got := m.do(t, r, ""); got.code != 401 {
		t.Errorf("no token: got %d, want 401", got.code)
	}
}

// TestRevokedTokenIsRefusedAndItsSocketsClosed.
func TestRevokedTokenIsRefusedAndItsSocketsClosed(t *testing.T) {
	m, addr := serveMatrix(t, Config{})
	tok, _ := auth.Issue(apitest.Secret, auth.Principal{Subject: "wall-3", Role: auth.Viewer, Areas: []string{"79"}}, time.Hour, time.Now())
	p, _ := auth.NewVerifier("", apitest.Secret).Verify(tok)
	c, _, err := dial(addr, tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	other, _, err := dial(addr, apitest.Admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	viewer := request{method: "POST", url: "/api/v1/tokens/" + p.ID + "/revoke", body: `{"reason":"wall screen stolen"}`}
	if got := m.do(t, viewer, tok); got.code != 403 {
		t.Errorf("a viewer revoking: got %d, want 403", got.code)
	}
	if got := m.do(t, request{method: "POST", url: viewer.url, body: `{}`}, apitest.Admin); got.code != 400 || !strings.Contains(string(got.body), "reason") {
		t.Errorf("without a reason: got %d %s, want 400 asking for one", got.code, got.body)
	}
	got := m.do(t, viewer, apitest.Admin)
	var r auth.Revocation
	if err := json.Unmarshal(got.body, &r); got.code != 200 || err != nil || r.ID != p.ID || r.RevokedBy != "admin-token" {
		t.Fatalf("revoke: got %d %s", got.code, got.body)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4401 || !strings.Contains(ce.Text, "revoked") {
		t.Errorf("the revoked token's socket: got %v, want closed with 4401", err)
	}
	if err := other.WriteJSON(map[string]string{"op": "subscribe", "topic": "kpi/79"}); err != nil {
		t.Fatal(err)
	}
	_ = other.SetReadDeadline(time.Now().Add(10 * time.Second))
	var msg liveMsg
	if err := other.ReadJSON(&msg); err != nil || msg.Type != "snapshot" {
		t.Errorf("another token's socket: got %+v, %v; want it open", msg, err)
	}
	got = m.do(t, request{method: "GET", url: "/api/v1/areas/79"}, tok)
	if got.code != 401 || !strings.Contains(string(got.body), "revoked") || !strings.Contains(string(got.body), "wall screen stolen") {
		t.Errorf("a request with the revoked token: got %d %s, want 401 saying it was revoked and why", got.code, got.body)
	}
	if _, _, err := dial(addr, tok, nil); err == nil {
		t.Error("the revoked token opened a socket")
	}
	got = m.do(t, request{method: "GET", url: "/api/v1/tokens/revoked"}, apitest.Admin)
	if got.code != 200 || !strings.Contains(string(got.body), p.ID) {
		t.Errorf("list: got %d %s", got.code, got.body)
	}
}

// TestCameraCredentials: a camera posts with its own HTTP Basic
// credentials, only its own alerts; the password is never returned.
func TestCameraCredentials(t *testing.T) {
	auth.HashCost = bcrypt.MinCost
	t.Cleanup(func() { auth.HashCost = bcrypt.DefaultCost })
	m := newMatrixServer(t, Config{AuthFailuresPerMinute: 3})
	devs := m.s.d.Devices.(matrixDevices)
	hash, _ := auth.HashSecret("correct horse battery")
	for i, v := range devs.List {
		if v.ID == "cam-hcmc-1" {
			devs.List[i].SecretHash, devs.List[i].Credentials = hash, true
		}
	}
	post := func(user, pass string) matrixReply {
		req := request{method: "POST", url: "/api/v1/ingest/camera-xml", body: "<EventNotificationAlert/>"}
		tok := ""
		rep := m.doWith(t, req, tok, map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))})
		return rep
	}
	// Without credentials: the challenge camera platforms wait for.
	got := m.doWith(t, request{method: "POST", url: "/api/v1/ingest/camera-xml", body: "<x/>"}, "", nil)
	if got.code != 401 || !strings.Contains(strings.Join(got.header.Values("WWW-Authenticate"), " "), "Basic") {
		t.Errorf("no credentials: got %d, WWW-Authenticate %q; want 401 with a Basic challenge", got.code, got.header.Values("WWW-Authenticate"))
	}
	if got := post("cam-hcmc-1", "correct horse battery"); got.code != 202 {
		t.Errorf("the camera's credentials: got %d %s, want 202", got.code, got.body)
	}
	for _, c := range [][2]string{{"cam-hcmc-1", "wrong horse battery"}, {"cam-hcmc-2", "correct horse battery"}, {"nobody", "x"}} {
		if got := post(c[0], c[1]); got.code != 401 {
			t.Errorf("%s/%s: got %d %s, want 401", c[0], c[1], got.code, got.body)
		}
	}
	// Over the failure limit, wrong passwords are refused before bcrypt;
	// the right one still passes.
	if got := post("cam-hcmc-1", "wrong horse battery"); got.code != 429 {
		t.Errorf("4th wrong password: got %d, want 429", got.code)
	}
	if got := post("cam-hcmc-1", "correct horse battery"); got.code != 202 {
		t.Errorf("the right password while limited: got %d, want 202", got.code)
	}
	// Basic is taken on camera-xml only.
	got = m.doWith(t, request{method: "POST", url: "/api/v1/ingest/camera-events", body: "[]"}, "",
		map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("cam-hcmc-1:correct horse battery"))})
	if got.code != 401 {
		t.Errorf("Basic on camera-events: got %d, want 401", got.code)
	}
	// The device's JSON says it has credentials and never carries them.
	got = m.do(t, request{method: "GET", url: "/api/v1/devices/cam-hcmc-1"}, apitest.Admin)
	if !strings.Contains(string(got.body), `"credentials":true`) || strings.Contains(string(got.body), hash) || strings.Contains(string(got.body), "horse") {
		t.Errorf("device JSON %s: want credentials true and no secret", got.body)
	}
}

// TestDeviceRegistrationRolesAndPassword: ingest tokens no longer move or
// rename devices; operators do, in scope; a camera's password is hashed.
func TestDeviceRegistrationRolesAndPassword(t *testing.T) {
	auth.HashCost = bcrypt.MinCost
	t.Cleanup(func() { auth.HashCost = bcrypt.DefaultCost })
	m := newMatrixServer(t, Config{})
	op, _ := auth.Issue(apitest.Secret, auth.Principal{Role: auth.Operator, Areas: []string{"26740"}}, time.Hour, time.Now())
	ing, _ := auth.Issue(apitest.Secret, auth.Principal{Role: auth.Ingest, Areas: []string{"*"}}, time.Hour, time.Now())
	put := func(id, body, token string) matrixReply {
		return m.do(t, request{method: "PUT", url: "/api/v1/devices/" + id, body: body}, token)
	}
	here := `{"kind":"camera","lat":10.78,"lon":106.7`
	if got := put("cam-hcmc-1", here+`}`, ing); got.code != 403 || !strings.Contains(string(got.body), "operator or admin") {
		t.Errorf("ingest token moving a camera: got %d %s, want 403", got.code, got.body)
	}
	if got := put("cam-hanoi-1", here+`}`, op); got.code != 403 {
		t.Errorf("operator of 26740 taking a camera out of Hanoi: got %d %s, want 403", got.code, got.body)
	}
	if got := put("cam-new", `{"kind":"camera","lat":21.03,"lon":105.85}`, op); got.code != 403 {
		t.Errorf("operator of 26740 registering in Hanoi: got %d %s, want 403", got.code, got.body)
	}
	if got := put("cam-new", here+`,"password":"short"}`, op); got.code != 422 {
		t.Errorf("a short password: got %d %s, want 422", got.code, got.body)
	}
	if got := put("sensor-new", `{"kind":"sensor","lat":10.78,"lon":106.7,"password":"correct horse battery"}`, op); got.code != 422 {
		t.Errorf("a sensor's password: got %d %s, want 422", got.code, got.body)
	}
	got := put("cam-new", here+`,"password":"correct horse battery"}`, op)
	var d device.Device
	if err := json.Unmarshal(got.body, &d); got.code/100 != 2 || err != nil || !d.Credentials || strings.Contains(string(got.body), "horse") {
		t.Errorf("operator registering in scope with a password: got %d %s", got.code, got.body)
	}
}

// gauge reads a metric of the server's registry.
func (m *matrixServer) gauge(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// doWith makes a request with extra headers.
func (m *matrixServer) doWith(t *testing.T, r request, token string, headers map[string]string) matrixReply {
	t.Helper()
	req := httptest.NewRequest(r.method, r.url, strings.NewReader(r.body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := m.s.App().Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return matrixReply{resp.StatusCode, resp.Header.Get("Content-Type"), b, resp.Header}
}
