package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"golang.org/x/sys/unix"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/qrcode/qrcodetest"
	"github.com/openioc/ioc/internal/testenv"
	"github.com/openioc/ioc/wall"
)

// TestTokenKioskCommand: iocd token --kiosk prints a kiosk token for the
// screen and its short URL, and on a terminal the URL's QR code; a node on the same database opens the link to
// the wall page with the token, whose websocket follows the screen's
// topic; revoking the token closes that websocket with 4401 and kills the
// link.
func TestTokenKioskCommand(t *testing.T) {
	t.Setenv("IOC_CLICKHOUSE_ADDR", testenv.ClickHouseAddr(t))
	t.Setenv("IOC_CLICKHOUSE_DATABASE", testenv.Database(t))
	t.Setenv("IOC_REDIS_ADDR", "")
	t.Setenv("IOC_PUBLIC_URL", "")
	t.Setenv("IOC_HTTP_ADDR", ":18080")

	refuse := func(args []string, want string) {
		t.Helper()
		err := token(append([]string{"--jwt-secret", jwtSecret}, args...), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("iocd token %v: got %v, want an error containing %q", args, err, want)
		}
	}
	refuse([]string{"--kiosk", "s1"}, "needs --area")
	refuse([]string{"--kiosk", "Wall 1", "--area", "79"}, "not a screen id")
	refuse([]string{"--kiosk", "s1", "--role", "operator", "--area", "79"}, "leave --role out")
	refuse([]string{"--role", "kiosk", "--area", "79"}, "--kiosk SCREEN")

	var out, errOut bytes.Buffer
	if err := token([]string{"--jwt-secret", jwtSecret, "--kiosk", "s1", "--area", "79"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("iocd token --kiosk printed %q, want the token and the URL", out.String())
	}
	tok, link := lines[0], lines[1]
	p, err := auth.NewVerifier("", []byte(jwtSecret)).Verify(tok)
	if err != nil || p.Role != auth.Kiosk || p.Screen != "s1" || strings.Join(p.Areas, ",") != "79" ||
		time.Until(p.ExpiresAt) < auth.DefaultKioskTTL-time.Hour {
		t.Fatalf("the kiosk token: %+v %v, want a kiosk of s1 over 79 for a year", p, err)
	}
	code, ok := strings.CutPrefix(link, "http://127.0.0.1:18080/k/")
	if !ok || !auth.ValidKioskCode(code) || !strings.Contains(errOut.String(), "kiosk token "+p.ID) {
		t.Fatalf("the link %q (stderr %q), want http://127.0.0.1:18080/k/{code} and the token's id", link, errOut.String())
	}
	out.Reset()
	if err := token([]string{"--jwt-secret", jwtSecret, "--kiosk", "s2", "--area", "79", "--ttl", "2h", "--public-url", "https://ioc.example.gov.vn/wall-room"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "https://ioc.example.gov.vn/wall-room/k/") {
		t.Errorf("with --public-url: %q, want the link under it", out.String())
	} else if p, _ := auth.NewVerifier("", []byte(jwtSecret)).Verify(lines[0]); time.Until(p.ExpiresAt) > 2*time.Hour {
		t.Errorf("with --ttl 2h the token expires at %v", p.ExpiresAt)
	}

	// On a terminal the link's QR code follows it, and reads back as the
	// link; --qr=false leaves it out there, --qr puts it into a pipe too.
	onTerminal := func(args ...string) (printed string) {
		t.Helper()
		text, err := onPTY(t, func(tty *os.File) error {
			return token(append([]string{"--jwt-secret", jwtSecret, "--kiosk", "s1", "--area", "79"}, args...), tty, &bytes.Buffer{})
		})
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	checkQR := func(what, printed string) {
		t.Helper()
		lines := strings.SplitN(printed, "\n", 3)
		if len(lines) != 3 || !strings.HasPrefix(lines[1], "http://127.0.0.1:18080/k/") {
			t.Fatalf("%s: printed %q, want the token, the link and its QR code", what, printed)
		}
		img, _, err := qrcodetest.FromTerminal(lines[2], 4)
		if err != nil {
			t.Fatalf("%s: %v in %q", what, err, lines[2])
		}
		if got, err := qrcodetest.Decode(img); err != nil || got != lines[1] {
			t.Errorf("%s: the QR code reads back as %q (%v), want the link %s", what, got, err, lines[1])
		}
	}
	checkQR("on a terminal", onTerminal())
	if printed := onTerminal("--qr=false"); strings.Count(printed, "\n") != 2 {
		t.Errorf("--qr=false on a terminal printed %q, want the token and the link alone", printed)
	}
	out.Reset()
	if err := token([]string{"--jwt-secret", jwtSecret, "--kiosk", "s1", "--area", "79", "--qr"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	checkQR("--qr into a pipe", out.String())
	out.Reset()
	if err := token([]string{"qr", link}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	checkQR("iocd token qr LINK", "token\n"+link+"\n"+out.String())
	refuse([]string{"--qr", "--role", "viewer", "--area", "79"}, "give --kiosk SCREEN")
	if err := token([]string{"qr"}, &out, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "usage: iocd token qr LINK") {
		t.Errorf("iocd token qr without a link: %v, want its usage", err)
	}

	// A node on the same database opens the link.
	cfg := testConfig(t)
	cfg.ClickHouse.Database = os.Getenv("IOC_CLICKHOUSE_DATABASE")
	n := startNode(t, cfg)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	open := func() *http.Response {
		t.Helper()
		resp, err := noFollow.Get(n.base + "/k/" + code)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := open()
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Path != "/wall/" || loc.Query().Get("screen") != "s1" || loc.Query().Get("access_token") != tok {
		t.Fatalf("GET /k/%s: %d Location %q, want 302 to /wall/?screen=s1&access_token=<the token>", code, resp.StatusCode, resp.Header.Get("Location"))
	}

	// The page's websocket, with the token the link gave it, follows the
	// screen's topic (s1 of the default wall, provisioned at start) and its
	// areas.
	ws := n.live(loc.Query().Get("access_token"))
	ws.send("subscribe", "screen/s1")
	m := ws.until(10*time.Second, func(m wsMessage) bool { return m.Topic == "screen/s1" })
	var st struct {
		Screen    string `json:"screen"`
		Wall      string `json:"wall"`
		Dashboard string `json:"dashboard"`
	}
	_ = json.Unmarshal(m.Data, &st)
	if m.Type != "snapshot" || st.Screen != "s1" || st.Wall != "wall-79" || st.Dashboard == "" {
		t.Fatalf("screen/s1 for its kiosk: %+v, want a snapshot of the default wall's first screen with its dashboard", m)
	}
	ws.send("subscribe", "screen/s2")
	if m := ws.until(10*time.Second, func(m wsMessage) bool { return m.Topic == "screen/s2" }); m.Type != "error" {
		t.Errorf("screen/s2 for the kiosk of s1: %+v, want an error", m)
	}

	// Revoked: its screen goes blank (4401) and the link no longer opens.
	var revOut bytes.Buffer
	if err := revokeToken([]string{"--reason", "wall PC replaced", p.ID}, &revOut); err != nil {
		t.Fatal(err)
	}
	_ = ws.conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // the node reads the list every 5 s
	var readErr error
	for readErr == nil {
		_, _, readErr = ws.conn.ReadMessage()
	}
	if ce, ok := readErr.(*websocket.CloseError); !ok || ce.Code != 4401 {
		t.Errorf("the kiosk's websocket after the revocation: %v, want close 4401", readErr)
	}
	resp = open()
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "wall PC replaced") {
		t.Errorf("the link of the revoked token: %d %s, want 410 saying why", resp.StatusCode, body)
	}
}

// TestAlarmTakesTheWallOver: on a real node, an alarm opened by the engine
// from a reading ingested over HTTP takes the designated screen over at
// once, through the bus; an operator's acknowledgement releases it; the
// screens are listed with what they show, and a command switches them.
func TestAlarmTakesTheWallOver(t *testing.T) {
	docs := wall.NewMemoryDocuments()
	for kind, doc := range map[string]string{
		wall.KindDashboard: `{"id":"ops-79","area":"79","window":"today"}`,
		wall.KindWall: `{"id":"wall-79","columns":2,"rows":1,"span":true,"dashboard":"ops-79",
			"screens":[{"screen":"s1","col":0,"row":0},{"screen":"s2","col":1,"row":0}],
			"takeover":{"min_severity":"critical","screens":["s1"],"timeout_seconds":600}}`,
	} {
		if err := docs.Put(kind, json.RawMessage(doc)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"s1", "s2"} {
		if err := docs.Put(wall.KindScreen, json.RawMessage(`{"id":"`+id+`","areas":["79"],"wall":"wall-79"}`)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(t)
	cfg.wallDocs = docs
	n := startNode(t, cfg)
	kiosk, err := auth.Issue([]byte(jwtSecret), auth.Principal{Subject: "wall pc 1", Role: auth.Kiosk, Areas: []string{"79"}, Screen: "s1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	type state struct {
		Dashboard string          `json:"dashboard"`
		Takeover  json.RawMessage `json:"takeover"`
		Override  bool            `json:"override"`
	}
	ws := n.live(kiosk)
	ws.send("subscribe", "screen/s1")
	read := func(what string, match func(state) bool) state {
		t.Helper()
		var s state
		ws.until(10*time.Second, func(m wsMessage) bool {
			s = state{}
			_ = json.Unmarshal(m.Data, &s)
			return m.Topic == "screen/s1" && match(s)
		})
		return s
	}
	read("ops-79", func(s state) bool { return s.Dashboard == "ops-79" && string(s.Takeover) == "null" })

	now := time.Now().Truncate(time.Second)
	if code, r := n.readings(adminToken, map[string]any{"sensor_id": "WL-W1", "kind": "water_level", "value": 1.7, "unit": "m",
		"alert_level": 1.5, "danger_level": 1.8, "lat": nhLat, "lon": nhLon, "observed_at": stamp(now)}); code != 202 || r.Accepted != 1 {
		t.Fatalf("reading: got %d %+v", code, r)
	}
	start := time.Now()
	s := read("the takeover", func(s state) bool { return string(s.Takeover) != "null" && len(s.Takeover) > 0 })
	t.Logf("screen taken over %s after the reading was stored", time.Since(start).Round(time.Millisecond))
	var tk struct {
		Alarm struct {
			ID       string `json:"id"`
			RuleID   string `json:"rule_id"`
			Severity string `json:"severity"`
		} `json:"alarm"`
	}
	_ = json.Unmarshal(s.Takeover, &tk)
	if tk.Alarm.RuleID != "water-alert-level" || tk.Alarm.Severity != "critical" {
		t.Fatalf("takeover %s, want the critical water alert", s.Takeover)
	}

	op := issueTokenAs(t, "duty officer", auth.Operator, "79")
	if code := n.post("/api/v1/alarms/"+tk.Alarm.ID+"/ack", op, "application/json", []byte(`{"note":"on it"}`), nil); code != 200 {
		t.Fatalf("acknowledge: %d", code)
	}
	read("released", func(s state) bool { return string(s.Takeover) == "null" })

	var list struct {
		Count   int `json:"count"`
		Screens []struct {
			ID    string `json:"id"`
			State state  `json:"state"`
		} `json:"screens"`
	}
	if code := n.get("/api/v1/screens", op, &list); code != 200 || list.Count != 2 || list.Screens[0].ID != "s1" || list.Screens[1].State.Dashboard != "ops-79" {
		t.Errorf("GET /api/v1/screens: %d %+v, want s1 and s2 showing ops-79", code, list)
	}
	if code := n.post("/api/v1/screens/s2/command", op, "application/json", []byte(`{"op":"show","dashboard":"ops-79"}`), nil); code != 202 {
		t.Fatalf("command: %d", code)
	}
	read("the override", func(s state) bool { return s.Override })
}

// onPTY runs write with a pseudo-terminal's end a program writes to, as a
// terminal's stdout is, and returns what it wrote, read at the other end
// (the line discipline's \r before each \n taken out again).
func onPTY(t *testing.T, write func(tty *os.File) error) (string, error) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("name the pseudo-terminal: %v", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pseudo-terminal's end: %v", err)
	}
	// Read while write writes: a terminal's buffer is small, and a writer
	// nobody reads from waits.
	read := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(ptmx) // ends with EIO once tty is closed
		read <- b
	}()
	err = write(tty)
	tty.Close()
	select {
	case b := <-read:
		return strings.ReplaceAll(string(b), "\r\n", "\n"), err
	case <-time.After(10 * time.Second):
		t.Fatal("the pseudo-terminal did not close")
		return "", nil
	}
}
