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
	"github.com/openioc/ioc/topic"
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
// hold now. Names follow package topic's grammar.
type topics struct{ s *Server }

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

func (t topics) Resolve(p auth.Principal, name string) (hub.Route, error) {
	lt, err := topic.ParseLive(name)
	if err != nil {
		return hub.Route{}, err
	}
	if lt.Kind == topic.Screen {
		return t.resolveScreen(p, lt)
	}
	h := t.s.d.KPIs.Hierarchy()
	if _, ok := h.Unit(lt.Area); !ok {
		return hub.Route{}, fmt.Errorf("unknown area %q in %s", lt.Area, h.Name())
	}
	if ce := t.Admit(p); ce != nil {
		return hub.Route{}, ce
	}
	if !p.MayRead(h, lt.Area) {
		return hub.Route{}, fmt.Errorf("your token does not cover area %s", lt.Area)
	}
	if lt.Kind == topic.Map && len(h.ChildCodes(lt.Area)) == 0 {
		return hub.Route{}, fmt.Errorf("area %s has no child units to map", lt.Area)
	}
	d := t.s.d
	if lt.Kind == topic.Alarms && d.Alarms == nil || lt.Kind == topic.Events && d.Events == nil || lt.Kind == topic.Devices && d.Devices == nil {
		return hub.Route{}, fmt.Errorf("topic %q is not served by this node", name)
	}
	return hub.Route{Name: lt.String(), Stream: lt.Kind.Stream(), Safety: lt.Kind.Safety()}, nil
}

// resolveScreen lets a kiosk follow its own screen only, an operator the
// screens whose areas it covers, an admin any: a screen's state names its
// areas' alarms when they take it over.
func (t topics) resolveScreen(p auth.Principal, st topic.Topic) (hub.Route, error) {
	id := st.Screen
	if !auth.ValidScreenID(id) {
		return hub.Route{}, fmt.Errorf("unknown topic %q: screen/{id} takes a screen id (lower-case letters, digits and '-')", st)
	}
	if t.s.d.Screens == nil {
		return hub.Route{}, fmt.Errorf("topic %q is not served by this node", st)
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
	return hub.Route{Name: st.String(), Safety: st.Kind.Safety()}, nil
}

// Republish asks the node publishing live figures to send topics again
// that the bus lost; without a Republisher nothing is asked.
func (t topics) Republish(ctx context.Context, names []string) error {
	if t.s.d.Republisher == nil {
		return nil
	}
	return t.s.d.Republisher.Republish(ctx, names)
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
func (t topics) Current(ctx context.Context, name string) (bus.Message, error) {
	payload, err := t.current(ctx, name)
	if err != nil {
		return bus.Message{}, err
	}
	m := bus.Message{Topic: name, Version: bus.LowestVersion, Payload: payload}
	if topic.KindOf(name).Stream() {
		m.Version = "" // a stream: every message counts
	}
	return m, nil
}

func (t topics) current(ctx context.Context, name string) ([]byte, error) {
	lt, err := topic.ParseLive(name)
	if err != nil {
		return nil, err
	}
	if lt.Kind == topic.Screen {
		st, err := t.s.d.Screens.State(ctx, lt.Screen)
		if err != nil {
			return nil, err
		}
		return json.Marshal(st)
	}
	hierarchy := t.s.d.KPIs.Hierarchy().Name()
	w := aggregate.Window(lt.Window)
	var v any
	switch lt.Kind {
	case topic.Alarms:
		v, err = t.s.d.Alarms.Snapshot(ctx, lt.Area)
	case topic.Events:
		v, err = t.s.d.Events.Snapshot(ctx, lt.Area)
	case topic.Devices:
		v, err = t.s.d.Devices.Snapshot(ctx, lt.Area)
	}
	if err != nil {
		return nil, err
	}
	if v != nil {
		return json.Marshal(v)
	}
	if lt.Kind == topic.Map {
		m, err := t.s.d.KPIs.MapSnapshot(ctx, hierarchy, lt.Area, w)
		if err != nil {
			return nil, err
		}
		return json.Marshal(m)
	}
	snap, err := t.s.d.KPIs.Snapshot(ctx, hierarchy, lt.Area, w)
	if err != nil {
		return nil, err
	}
	return json.Marshal(snap)
}
