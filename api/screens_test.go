package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/internal/apitest"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/qrcode/qrcodetest"
	"github.com/openioc/ioc/internal/testenv"
	"github.com/openioc/ioc/wall"
	"github.com/openioc/ioc/wall/walltest"
)

// wallServer is a node's API with its walls running on an in-process bus,
// fed the bus's messages as a node's subscription feeds them, and a clock
// the test moves.
type wallServer struct {
	s     *Server
	addr  string
	clock *walltest.Clock
	walls *wall.Walls
	revs  *auth.Revocations
}

func newWallServer(t *testing.T) *wallServer {
	t.Helper()
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	b := bus.NewMemory()
	docs := wall.NewMemoryDocuments()
	for kind, list := range map[string][]string{
		wall.KindDashboard: {`{"id":"ops-79","area":"79"}`, `{"id":"dossiers","area":"$area","window":"7d"}`},
		wall.KindPlaylist:  {`{"id":"pl-79","items":[{"dashboard":"ops-79","seconds":60},{"dashboard":"dossiers","seconds":60}]}`},
		wall.KindScreen:    {`{"id":"s1","areas":["79"],"wall":"wall-79"}`, `{"id":"s2","areas":["79"],"wall":"wall-79"}`, `{"id":"s-01","areas":["01"],"dashboard":"ops-79"}`},
		wall.KindWall: {`{"id":"wall-79","columns":2,"rows":1,"span":true,"playlist":"pl-79",
			"screens":[{"screen":"s1","col":0,"row":0},{"screen":"s2","col":1,"row":0}]}`},
	} {
		for _, d := range list {
			if err := docs.Put(kind, json.RawMessage(d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	clock := walltest.NewClock(time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC))
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	walls, err := wall.New(wall.Config{Build: "b1", Clock: clock, Reload: time.Hour}, docs, h, b, lease.NewLocal(), logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := walls.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	revs := auth.NewRevocations(auth.RevocationsConfig{}, nil, nil, nil)
	s, err := New(Config{}, Deps{
		Geo: reg, KPIs: &apitest.Figures{Reg: reg, H: h}, Auth: auth.NewVerifier(apitest.Admin, apitest.Secret), Revocations: revs,
		Screens: walls, Kiosks: auth.NewKiosks(apitest.Secret, auth.NewMemoryKioskLinks(), revs), Latest: b, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(context.Background(), func(m bus.Message) {
		if !strings.HasPrefix(m.Topic, "internal/") {
			s.Deliver(m)
		}
		walls.Observe(m)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = walls.Run(ctx) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = s.Shutdown(sctx)
		cancel()
		<-done
		sub.Close()
	})
	return &wallServer{s: s, addr: ln.Addr().String(), clock: clock, walls: walls, revs: revs}
}

// call makes a request with token and a JSON body (none when empty).
func (ws *wallServer) call(t *testing.T, method, path, token, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+ws.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// kiosk issues a kiosk token for screen over areas through the API.
func (ws *wallServer) kiosk(t *testing.T, screen string, areas ...string) auth.KioskToken {
	t.Helper()
	body := ""
	if len(areas) > 0 {
		b, _ := json.Marshal(map[string]any{"areas": areas})
		body = string(b)
	}
	code, resp, _ := ws.call(t, "POST", "/api/v1/screens/"+screen+"/tokens", apitest.Admin, body)
	if code != 201 {
		t.Fatalf("issue a kiosk token for %s: %d %s", screen, code, resp)
	}
	var kt kioskAnswer
	if err := json.Unmarshal([]byte(resp), &kt); err != nil {
		t.Fatal(err)
	}
	return kt.KioskToken
}

type screenMsg struct {
	Type    string     `json:"type"`
	Topic   string     `json:"topic"`
	Version string     `json:"version"`
	Data    wall.State `json:"data"`
	Error   string     `json:"error"`
}

// follow opens a websocket with token and subscribes to topics (with since
// when given, as "topic@since").
func (ws *wallServer) follow(t *testing.T, token string, topics ...string) *websocket.Conn {
	t.Helper()
	c, resp, err := dial(ws.addr, token, nil)
	if err != nil {
		t.Fatalf("dial: %v %v", resp, err)
	}
	t.Cleanup(func() { c.Close() })
	for _, tp := range topics {
		op := map[string]string{"op": "subscribe", "topic": tp}
		if name, since, ok := strings.Cut(tp, "@"); ok {
			op["topic"], op["since"] = name, since
		}
		if err := c.WriteJSON(op); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// next reads the socket's next message.
func next(t *testing.T, c *websocket.Conn) screenMsg {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m screenMsg
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

// TestScreenTopic: a kiosk follows its screen's state over the live
// websocket: the step the wall is at when it connects, each switch as it
// happens, a command; a screen that reconnects gets the current step, or
// "current" when it holds it.
func TestScreenTopic(t *testing.T) {
	ws := newWallServer(t)
	kt := ws.kiosk(t, "s1") // scoped to the screen's own areas
	if strings.Join(kt.Areas, ",") != "79" || kt.Screen != "s1" {
		t.Fatalf("kiosk token %+v, want s1 over its areas 79", kt)
	}
	c := ws.follow(t, kt.Token, "screen/s1")
	var m screenMsg
	// The first state may be computed (nothing published yet) and then
	// published: wait for the published one.
	for m.Version == "" || m.Version == bus.LowestVersion {
		m = next(t, c)
	}
	if m.Topic != "screen/s1" || m.Data.Dashboard != "ops-79" || m.Data.Step != 0 || m.Data.Build != "b1" {
		t.Fatalf("first state %+v, want ops-79, step 0", m)
	}
	ws.clock.Advance(60 * time.Second)
	m = next(t, c)
	if m.Type != "update" || m.Data.Step != 1 || m.Data.Dashboard != "dossiers" || m.Data.Area != "79" || m.Data.Window != "7d" {
		t.Fatalf("after 60 s: %+v, want an update to step 1, dossiers over 79, 7d", m)
	}
	held := m.Version

	// A screen that reboots gets the step the wall is at, not the first.
	again := ws.follow(t, kt.Token, "screen/s1")
	if r := next(t, again); r.Type != "snapshot" || r.Data.Step != 1 || r.Version != held {
		t.Errorf("after a reboot: %+v, want a snapshot of step 1 at %s", r, held)
	}
	resumed := ws.follow(t, kt.Token, "screen/s1@"+held)
	if r := next(t, resumed); r.Type != "current" || r.Version != held {
		t.Errorf("resuming with the version held: %+v, want current", r)
	}

	// An operator's command reaches the screen.
	op, _ := auth.Issue(apitest.Secret, auth.Principal{Role: auth.Operator, Areas: []string{"79"}, Subject: "duty officer"}, time.Hour, time.Now())
	code, body, _ := ws.call(t, "POST", "/api/v1/screens/s1/command", op, `{"op":"reload"}`)
	if code != 202 || !strings.Contains(body, `"screens":["s1"]`) {
		t.Fatalf("reload command: %d %s", code, body)
	}
	if r := next(t, c); r.Data.Reload != 1 {
		t.Errorf("after the reload command: %+v, want reload 1", r)
	}
	code, body, _ = ws.call(t, "POST", "/api/v1/screens/s2/command", op, `{"op":"show","dashboard":"nope"}`)
	if code != 400 || !strings.Contains(body, "show needs") {
		t.Errorf("show an unknown dashboard: %d %s, want 400 saying what show needs", code, body)
	}
	code, body, _ = ws.call(t, "POST", "/api/v1/screens/s2/command", op, `{"op":"show","dashboard":"ops-79"}`)
	if code != 202 || !strings.Contains(body, `"screens":["s1","s2"]`) {
		t.Fatalf("show on s2: %d %s, want the wall's two screens", code, body)
	}
	if r := next(t, c); r.Data.Dashboard != "ops-79" || !r.Data.Override {
		t.Errorf("after show on s2, s1: %+v, want ops-79 (the whole wall switches)", r)
	}

	// The page reports itself; operators see it in the list.
	if code, body, _ := ws.call(t, "POST", "/api/v1/screens/s1/seen", kt.Token, `{"build":"b0","version":"`+held+`"}`); code != 204 {
		t.Fatalf("report: %d %s", code, body)
	}
	code, body, _ = ws.call(t, "GET", "/api/v1/screens", op, "")
	var list screenList
	_ = json.Unmarshal([]byte(body), &list)
	if code != 200 || list.Count != 2 || list.Screens[0].ID != "s1" || list.Screens[0].PageBuild != "b0" || list.Screens[0].LastSeen == nil ||
		!list.Screens[0].PageOutdated || list.Screens[0].State.Dashboard != "ops-79" {
		t.Errorf("list for an operator of 79: %d %s, want s1 (seen, page b0 outdated, showing ops-79) and s2, not s-01", code, body)
	}
}

// TestKioskScope: a kiosk token follows its own screen and the topics of
// its areas only, and writes nothing but its page's reports.
func TestKioskScope(t *testing.T) {
	ws := newWallServer(t)
	kt := ws.kiosk(t, "s1")
	c := ws.follow(t, kt.Token, "screen/s2", "screen/s-01", "kpi/01", "screen/s1", "kpi/79")
	got := map[string]screenMsg{}
	for len(got) < 5 {
		m := next(t, c)
		if _, ok := got[m.Topic]; !ok {
			got[m.Topic] = m
		}
	}
	for topic, want := range map[string]string{"screen/s2": "error", "screen/s-01": "error", "kpi/01": "error", "screen/s1": "snapshot", "kpi/79": "snapshot"} {
		if got[topic].Type != want {
			t.Errorf("kiosk of s1 subscribing to %s: %s %s, want %s", topic, got[topic].Type, got[topic].Error, want)
		}
	}
	if e := got["screen/s2"].Error; !strings.Contains(e, "for screen s1") {
		t.Errorf("refusal of screen/s2: %q, want it to say the token is for s1", e)
	}
	// A viewer, even of the screen's areas, does not follow screens.
	v := apitest.Viewer(t, "79")
	if m := next(t, ws.follow(t, v, "screen/s1")); m.Type != "error" {
		t.Errorf("viewer subscribing to screen/s1: %+v, want an error", m)
	}

	for _, r := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/v1/areas/79/kpis", "", 200},
		{"GET", "/api/v1/areas/01/kpis", "", 403},
		{"POST", "/api/v1/screens/s1/seen", `{"build":"b1"}`, 204},
		{"POST", "/api/v1/screens/s2/seen", `{"build":"b1"}`, 403},
		{"POST", "/api/v1/screens/s1/command", `{"op":"reload"}`, 403},
		{"POST", "/api/v1/screens/s1/tokens", ``, 403},
		{"GET", "/api/v1/screens", "", 403},
		{"POST", "/api/v1/tokens/" + kt.ID + "/revoke", `{"reason":"mine"}`, 403},
	} {
		if code, body, _ := ws.call(t, r.method, r.path, kt.Token, r.body); code != r.want {
			t.Errorf("kiosk %s %s: %d %s, want %d", r.method, r.path, code, body, r.want)
		}
	}
}

// TestKioskLink: an admin is given the short link and its QR code; the
// short link redirects to the wall page with the screen and the token, until the token is revoked; revoking it closes its
// screen's websocket with 4401.
func TestKioskLink(t *testing.T) {
	ws := newWallServer(t)
	kt := ws.kiosk(t, "s2", "79")
	code, body, _ := ws.call(t, "POST", "/api/v1/screens/s2/tokens", apitest.Admin, `{"ttl":"1h"}`)
	var issued kioskAnswer
	_ = json.Unmarshal([]byte(body), &issued)
	if code != 201 || issued.URL != "http://"+ws.addr+"/k/"+issued.Code || time.Until(issued.ExpiresAt) > time.Hour {
		t.Errorf("issue with a ttl: %d %s, want a link on this host and an hour's life", code, body)
	}
	// The link's QR code comes with it, as an SVG that reads back as the
	// link.
	var wire struct {
		QRSVG string `json:"qr_svg"`
	}
	_ = json.Unmarshal([]byte(body), &wire)
	if got, err := qrcodetest.DecodeSVG(wire.QRSVG, 400); err != nil || got != issued.URL {
		t.Errorf("qr_svg reads back as %q (%v), want the link %s", got, err, issued.URL)
	}
	code, _, h := ws.call(t, "GET", "/k/"+kt.Code, "", "")
	loc, _ := url.Parse(h.Get("Location"))
	if code != 302 || loc == nil || loc.Path != "/wall/" || loc.Query().Get("screen") != "s2" || loc.Query().Get("access_token") != kt.Token ||
		h.Get("Cache-Control") != "no-store" {
		t.Fatalf("open the short link: %d Location %q, want 302 to /wall/?screen=s2&access_token=<the token>", code, h.Get("Location"))
	}
	if code, body, _ := ws.call(t, "GET", "/k/"+strings.Repeat("0", 10), "", ""); code != 404 || !strings.Contains(body, "unknown kiosk link") {
		t.Errorf("an unknown code: %d %s, want 404", code, body)
	}
	for _, bad := range []string{"/api/v1/screens/s9/tokens", "/api/v1/screens/S%201/tokens"} {
		if code, body, _ := ws.call(t, "POST", bad, apitest.Admin, ""); code != 404 {
			t.Errorf("POST %s: %d %s, want 404 (no such screen, and no areas given)", bad, code, body)
		}
	}

	c := ws.follow(t, kt.Token, "screen/s2")
	next(t, c)
	if code, body, _ := ws.call(t, "POST", "/api/v1/tokens/"+kt.ID+"/revoke", apitest.Admin, `{"reason":"wall PC stolen"}`); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var err error
	for err == nil {
		_, _, err = c.ReadMessage()
	}
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 4401 {
		t.Errorf("the kiosk's socket after the revocation: %v, want close 4401", err)
	}
	code, body, _ = ws.call(t, "GET", "/k/"+kt.Code, "", "")
	if code != 410 || !strings.Contains(body, "wall PC stolen") {
		t.Errorf("the link of a revoked token: %d %s, want 410 saying why", code, body)
	}
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		code, body, _ := ws.call(t, "GET", "/api/v1/areas/79/kpis", kt.Token, "")
		return code == 401, fmt.Sprintf("the revoked kiosk token reads: %d %s", code, body)
	})
}
