package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/websocket/v2"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/hub"
	"github.com/openioc/ioc/internal/bus"
)

const clientAddrKey = "client_addr"

// liveWriteBuffers lends websocket connections a write buffer while they
// write a message that is not prepared.
var liveWriteBuffers = &sync.Pool{}

// admitLive checks a websocket request before the upgrade: its origin, and
// the connection caps of its token and address, so that a refusal is a
// plain HTTP answer a client can read.
func (s *Server) admitLive(c *fiber.Ctx) error {
	if err := s.checkOrigin(c); err != nil {
		return err
	}
	addr := ""
	if a := clientAddr(c); a.IsValid() {
		addr = a.String()
	}
	var limit *hub.LimitError
	if err := s.hub.Admit(principal(c), addr); errors.As(err, &limit) {
		return fiber.NewError(fiber.StatusTooManyRequests, limitText(limit))
	}
	c.Locals(clientAddrKey, addr)
	return c.Next()
}

// checkOrigin lets a browser page open the websocket only from the
// server's own origin or one in AllowedOrigins; clients that send no
// Origin (not browsers) are let through, their token being what counts.
func (s *Server) checkOrigin(c *fiber.Ctx) error {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" || s.access.anyOrigin {
		return nil
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" {
		if s.access.origins[strings.ToLower(u.Scheme+"://"+u.Host)] {
			return nil
		}
		// Same origin: the page was served by this host. Compared without
		// the scheme, which differs behind a TLS-terminating proxy.
		if strings.EqualFold(u.Host, string(c.Request().Host())) {
			return nil
		}
	}
	return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf(
		"websocket from origin %q refused: only pages served by this server may open it, unless their origin is listed in IOC_ALLOWED_ORIGINS (comma-separated, e.g. https://wall.example.gov.vn)", origin))
}

// limitText says which connection cap was reached and how to raise it; it
// fits a close frame's reason (123 bytes).
func limitText(e *hub.LimitError) string {
	env := "IOC_WS_MAX_PER_TOKEN"
	if e.Per == "address" {
		env = "IOC_WS_MAX_PER_ADDRESS"
	}
	return fmt.Sprintf("%d live connections per %s reached: close some, or raise %s", e.Limit, e.Per, env)
}

func (s *Server) live(c *websocket.Conn) {
	p, _ := c.Locals(principalKey).(auth.Principal)
	addr, _ := c.Locals(clientAddrKey).(string)
	err := s.hub.Serve(c.Conn, p, addr)
	var limit *hub.LimitError
	if errors.As(err, &limit) {
		// Taken by another connection since admitLive looked.
		_ = c.WriteControl(fws.CloseMessage, fws.FormatCloseMessage(fws.ClosePolicyViolation, limitText(limit)), time.Now().Add(time.Second))
		_ = c.Close()
	}
}

// topics tells the hub which topics exist, who may read them and what they
// hold now.
type topics struct{ s *Server }

type liveTopic struct {
	kind   string // kpi, map, alarms, events or devices
	area   string
	window aggregate.Window
}

// windowed says which kinds of topic take a window.
var windowed = map[string]bool{"kpi": true, "map": true, "alarms": false, "events": false, "devices": false}

func parseTopic(topic string) (liveTopic, error) {
	parts := strings.Split(topic, "/")
	w, known := windowed[parts[0]]
	if !known || len(parts) < 2 || len(parts) > 3 || parts[1] == "" || (!w && len(parts) == 3) {
		return liveTopic{}, fmt.Errorf("unknown topic %q: topics are kpi/{area} and map/{area} (today), kpi/{area}/{window} and map/{area}/{window} with window 24h, 7d or 30d, alarms/{area}, events/{area}, devices/{area}, and screen/{id}", topic)
	}
	t := liveTopic{kind: parts[0], area: parts[1], window: aggregate.Today}
	if len(parts) == 3 {
		w, err := aggregate.ParseWindow(parts[2])
		if err != nil || parts[2] == "" {
			return liveTopic{}, fmt.Errorf("topic %q: unknown window %q: use today, 24h, 7d or 30d", topic, parts[2])
		}
		t.window = w
	}
	return t, nil
}

func (t liveTopic) name() string {
	switch t.kind {
	case "map":
		return t.window.MapTopic(t.area)
	case "kpi":
		return t.window.Topic(t.area)
	}
	return t.kind + "/" + t.area
}

// Admit refuses a connection whose token was revoked since the handshake
// checked it.
func (t topics) Admit(p auth.Principal) *hub.CloseError {
	if p.ID == "" {
		return nil
	}
	if _, revoked := t.s.access.revocations.Revoked(p.ID); revoked {
		return &hub.CloseError{Code: closeRevoked, Reason: revokedReason}
	}
	return nil
}

// screenTopic is the prefix of the topics of screens' states.
const screenTopic = "screen/"

func (t topics) Resolve(p auth.Principal, topic string) (hub.Route, error) {
	if id, ok := strings.CutPrefix(topic, screenTopic); ok {
		return t.resolveScreen(p, id)
	}
	lt, err := parseTopic(topic)
	if err != nil {
		return hub.Route{}, err
	}
	h := t.s.d.KPIs.Hierarchy()
	if _, ok := h.Unit(lt.area); !ok {
		return hub.Route{}, fmt.Errorf("unknown area %q in %s", lt.area, h.Name())
	}
	if ce := t.Admit(p); ce != nil {
		return hub.Route{}, ce
	}
	if !p.MayRead(h, lt.area) {
		return hub.Route{}, fmt.Errorf("your token does not cover area %s", lt.area)
	}
	if lt.kind == "map" && len(h.ChildCodes(lt.area)) == 0 {
		return hub.Route{}, fmt.Errorf("area %s has no child units to map", lt.area)
	}
	d := t.s.d
	if lt.kind == "alarms" && d.Alarms == nil || lt.kind == "events" && d.Events == nil || lt.kind == "devices" && d.Devices == nil {
		return hub.Route{}, fmt.Errorf("topic %q is not served by this node", topic)
	}
	return hub.Route{Name: lt.name(), Stream: lt.kind == "events", Safety: lt.kind == "alarms" || lt.kind == "devices"}, nil
}

// resolveScreen lets a kiosk follow its own screen only, an operator the
// screens whose areas it covers, an admin any: a screen's state names its
// areas' alarms when they take it over.
func (t topics) resolveScreen(p auth.Principal, id string) (hub.Route, error) {
	if !auth.ValidScreenID(id) {
		return hub.Route{}, fmt.Errorf("unknown topic %q: screen/{id} takes a screen id (lower-case letters, digits and '-')", screenTopic+id)
	}
	if t.s.d.Screens == nil {
		return hub.Route{}, fmt.Errorf("topic %q is not served by this node", screenTopic+id)
	}
	if ce := t.Admit(p); ce != nil {
		return hub.Route{}, ce
	}
	switch {
	case p.Role == auth.Kiosk:
		if p.Screen != id {
			return hub.Route{}, fmt.Errorf("this kiosk token is for screen %s: it may not follow screen %s", p.Screen, id)
		}
	case p.Role == auth.Admin || p.Role == auth.Operator && p.Unrestricted():
	case p.Role == auth.Operator:
		areas, ok := t.s.d.Screens.ScreenAreas(id)
		if !ok || !t.s.coversAll(p, areas) {
			return hub.Route{}, fmt.Errorf("your token does not cover every area of screen %s", id)
		}
	default:
		return hub.Route{}, fmt.Errorf("screen topics are for the screen's kiosk token, operators and admins; a %s token may not follow screen %s", p.Role, id)
	}
	// Served first, like alarms: it says what the page must show at all.
	return hub.Route{Name: screenTopic + id, Safety: true}, nil
}

// Latest reads the bus's latest-value store.
func (t topics) Latest(ctx context.Context, names []string) (map[string]bus.Message, error) {
	return t.s.d.Latest.Latest(ctx, names)
}

// History reads what the bus retains of a stream topic.
func (t topics) History(ctx context.Context, topic, epoch string, after uint64) (bus.History, error) {
	return t.s.d.Latest.History(ctx, topic, epoch, after)
}

// Current computes the topic's figures here. On a state topic they carry
// the lowest version: the node may read storage a moment before the
// publisher's newer figures arrive, and those must win.
func (t topics) Current(ctx context.Context, topic string) (bus.Message, error) {
	payload, err := t.current(ctx, topic)
	if err != nil {
		return bus.Message{}, err
	}
	m := bus.Message{Topic: topic, Version: bus.LowestVersion, Payload: payload}
	if strings.HasPrefix(topic, "events/") {
		m.Version = "" // a stream: every message counts
	}
	return m, nil
}

func (t topics) current(ctx context.Context, topic string) ([]byte, error) {
	if id, ok := strings.CutPrefix(topic, screenTopic); ok {
		st, err := t.s.d.Screens.State(ctx, id)
		if err != nil {
			return nil, err
		}
		return json.Marshal(st)
	}
	lt, err := parseTopic(topic)
	if err != nil {
		return nil, err
	}
	name := t.s.d.KPIs.Hierarchy().Name()
	var v any
	switch lt.kind {
	case "alarms":
		v, err = t.s.d.Alarms.Snapshot(ctx, lt.area)
	case "events":
		v, err = t.s.d.Events.Snapshot(ctx, lt.area)
	case "devices":
		v, err = t.s.d.Devices.Snapshot(ctx, lt.area)
	}
	if err != nil {
		return nil, err
	}
	if v != nil {
		return json.Marshal(v)
	}
	if lt.kind == "map" {
		m, err := t.s.d.KPIs.MapSnapshot(ctx, name, lt.area, lt.window)
		if err != nil {
			return nil, err
		}
		return json.Marshal(m)
	}
	snap, err := t.s.d.KPIs.Snapshot(ctx, name, lt.area, lt.window)
	if err != nil {
		return nil, err
	}
	return json.Marshal(snap)
}
