package api

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/api/answer"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/qrcode"
	"github.com/openioc/ioc/wall"
)

// Screens is how the API reaches the screens of the wall (package wall).
type Screens interface {
	// ScreenAreas returns a screen's areas as last read, for checks that
	// cannot wait for storage (a websocket subscription).
	ScreenAreas(id string) ([]string, bool)
	State(ctx context.Context, id string) (wall.State, error)
	List(ctx context.Context) ([]wall.Listing, error)
	Command(ctx context.Context, c wall.Command) ([]string, error)
	Seen(ctx context.Context, r wall.Report) error
}

// screenRoutes: operators list and command the screens of their areas,
// pages report themselves, admins issue kiosk tokens.
func (s *Server) screenRoutes(v1 fiber.Router, reader fiber.Handler) {
	v1.Get("/screens", reader, requireRead, s.listScreens)
	v1.Post("/screens/:id/command", reader, requireRead, s.commandScreen)
	v1.Post("/screens/:id/seen", reader, requireRead, s.screenSeen)
	if s.d.Kiosks != nil {
		v1.Post("/screens/:id/tokens", reader, requireAdmin, s.issueKiosk)
	}
}

// coversAll says whether p covers every one of a screen's areas: what it
// takes to see or command a screen. A screen with no areas is for
// unrestricted tokens only.
func (s *Server) coversAll(p auth.Principal, areas []string) bool {
	if p.Unrestricted() {
		return true
	}
	h := s.d.KPIs.Hierarchy()
	for _, a := range areas {
		if !p.Covers(h, a) {
			return false
		}
	}
	return len(areas) > 0
}

func requireScreenControl(p auth.Principal) error {
	if !p.CanAct() {
		return fiber.NewError(fiber.StatusForbidden, "screens are listed and commanded with an operator or admin token")
	}
	return nil
}

type screenList struct {
	Count   int            `json:"count"`
	Screens []wall.Listing `json:"screens"`
}

func (s *Server) listScreens(c *fiber.Ctx) error {
	p := principal(c)
	if err := requireScreenControl(p); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	all, err := s.d.Screens.List(ctx)
	if err != nil {
		return answer.Unavailable(err)
	}
	out := []wall.Listing{}
	for _, l := range all {
		if s.coversAll(p, l.Areas) {
			out = append(out, l)
		}
	}
	return c.JSON(screenList{Count: len(out), Screens: out})
}

// screen finds a screen the principal may reach, or answers why not.
func (s *Server) findScreen(ctx context.Context, c *fiber.Ctx, id string) (wall.Listing, error) {
	if !auth.ValidScreenID(id) {
		return wall.Listing{}, fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("%q is not a screen id: ids are 1 to 63 lower-case letters, digits and '-'", id))
	}
	all, err := s.d.Screens.List(ctx)
	if err != nil {
		return wall.Listing{}, answer.Unavailable(err)
	}
	for _, l := range all {
		if l.ID != id {
			continue
		}
		if !s.coversAll(principal(c), l.Areas) {
			return wall.Listing{}, fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("your token does not cover every area of screen %s (%s)", id, strings.Join(l.Areas, ", ")))
		}
		return l, nil
	}
	return wall.Listing{}, fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no screen %s: an admin creates it with PUT /api/v1/screens/%s (GET /api/v1/screens lists them)", id, id))
}

type commandAnswer struct {
	Screen   string   `json:"screen"`
	Op       string   `json:"op"`
	Screens  []string `json:"screens"`
	Accepted bool     `json:"accepted"`
}

func (s *Server) commandScreen(c *fiber.Ctx) error {
	p := principal(c)
	if err := requireScreenControl(p); err != nil {
		return err
	}
	id := strings.Clone(c.Params("id"))
	var cmd wall.Command
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	if err := strictJSON(raw, &cmd); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, `body: `+err.Error()+` (send {"op":"show","dashboard":"…"}, {"op":"play","playlist":"…"}, {"op":"reload"} or {"op":"identify"})`)
	}
	if cmd.Screen != "" && cmd.Screen != id {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("the body names screen %s and the path %s: leave \"screen\" out", cmd.Screen, id))
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	if _, err := s.findScreen(ctx, c, id); err != nil {
		return err
	}
	cmd.Screen, cmd.By = id, actor(p)
	affected, err := s.d.Screens.Command(ctx, cmd)
	var invalid *wall.InvalidError
	switch {
	case errors.As(err, &invalid):
		return fiber.NewError(fiber.StatusBadRequest, invalid.Error())
	case errors.Is(err, wall.ErrUnknownScreen):
		return fiber.NewError(fiber.StatusNotFound, err.Error())
	case err != nil:
		return answer.Unavailable(err)
	}
	// Taken: the node running the walls applies it and publishes the
	// screens' states on screen/{id}.
	return c.Status(fiber.StatusAccepted).JSON(commandAnswer{Screen: id, Op: cmd.Op, Screens: affected, Accepted: true})
}

type seenBody struct {
	Build   string `json:"build"`
	Version string `json:"version"`
}

// screenSeen takes a page's report of itself: from the kiosk token of
// that screen, or an operator or admin covering it (a page opened by hand
// with ?screen=).
func (s *Server) screenSeen(c *fiber.Ctx) error {
	p := principal(c)
	id := strings.Clone(c.Params("id"))
	if p.Role == auth.Kiosk && p.Screen != id {
		return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("this kiosk token is for screen %s only", p.Screen))
	}
	if p.Role != auth.Kiosk && !p.CanAct() {
		return fiber.NewError(fiber.StatusForbidden, "a screen is reported by its own kiosk token, or by an operator or admin token")
	}
	var body seenBody
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	if err := strictJSON(raw, &body); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, `body: `+err.Error()+` (send {"build":"…","version":"<the screen state's version shown>"})`)
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	if p.Role != auth.Kiosk {
		if _, err := s.findScreen(ctx, c, id); err != nil {
			return err
		}
	}
	err = s.d.Screens.Seen(ctx, wall.Report{Screen: id, Build: body.Build, Version: body.Version})
	var invalid *wall.InvalidError
	switch {
	case errors.As(err, &invalid):
		return fiber.NewError(fiber.StatusBadRequest, invalid.Error())
	case err != nil:
		return answer.Unavailable(err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type kioskBody struct {
	Areas   []string `json:"areas"`
	TTL     string   `json:"ttl"`
	Subject string   `json:"subject"`
}

type kioskAnswer struct {
	auth.KioskToken
	URL string `json:"url"`
	// QRSVG is the short link's QR code, an SVG document, to show or print
	// for a wall PC to scan. It is in this answer and nowhere else: whoever
	// holds the QR code holds the token, so it goes only to whom the link
	// goes, and is not kept.
	QRSVG string `json:"qr_svg,omitempty"`
}

// issueKiosk issues a kiosk token for a screen, scoped to the areas given
// or else the screen's own, and its short link.
func (s *Server) issueKiosk(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	if !auth.ValidScreenID(id) {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("%q is not a screen id: ids are 1 to 63 lower-case letters, digits and '-'", id))
	}
	var body kioskBody
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	if len(raw) > 0 {
		if err := strictJSON(raw, &body); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, `body: `+err.Error()+` (send {"areas":["79"],"ttl":"8760h"}, both optional)`)
		}
	}
	ttl := time.Duration(0)
	if body.TTL != "" {
		d, err := time.ParseDuration(body.TTL)
		if err != nil || d < time.Minute || d > 10*auth.DefaultKioskTTL {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("ttl %q: give a duration from 1m to 87600h, e.g. 8760h (a year, the default)", body.TTL))
		}
		ttl = d
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	areas := body.Areas
	if len(areas) == 0 {
		l, err := s.findScreen(ctx, c, id)
		if err != nil {
			return err
		}
		if len(l.Areas) == 0 {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("screen %s has no areas: give \"areas\" (unit codes) for its token", id))
		}
		areas = l.Areas
	}
	h := s.d.KPIs.Hierarchy()
	for _, a := range areas {
		if _, ok := h.Unit(a); !ok && a != auth.AllAreas {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("area %q is not a unit of %s", a, h.Name()))
		}
	}
	if !s.d.Kiosks.CanIssue() {
		return fiber.NewError(fiber.StatusServiceUnavailable, "this server signs no tokens: set IOC_JWT_SECRET to issue kiosk tokens")
	}
	kt, err := s.d.Kiosks.Issue(ctx, id, areas, body.Subject, ttl, actor(principal(c)))
	if err != nil {
		return answer.Unavailable(err)
	}
	base, _ := s.baseURL(c)
	answer := kioskAnswer{KioskToken: kt, URL: base + "/k/" + kt.Code}
	if qr, err := qrcode.New(answer.URL); err != nil {
		// Only a public URL of kilobytes is too long for a QR code; the
		// token is issued and its link works all the same.
		s.logger.Warn("no QR code for the kiosk link", "screen", id, "err", err)
	} else {
		answer.QRSVG = qr.SVG()
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(answer)
}

// openKioskLink answers a short link: a redirect to the wall page with the
// screen and its token, which the page moves out of the address at once.
// Unknown codes count as failed authentications of the client's address.
func (s *Server) openKioskLink(c *fiber.Ctx) error {
	if wait, blocked := s.access.failures.Blocked(clientAddr(c)); blocked {
		return s.limited(c, wait)
	}
	code := strings.Clone(c.Params("code"))
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	l, err := s.d.Kiosks.Open(ctx, code)
	switch {
	case errors.Is(err, auth.ErrUnknownLink):
		if wait, ok := s.access.failures.Fail(clientAddr(c)); !ok {
			return s.limited(c, wait)
		}
		s.access.outcomes.WithLabelValues("refused").Inc()
		return fiber.NewError(fiber.StatusNotFound, err.Error())
	case errors.Is(err, auth.ErrRevoked), errors.Is(err, auth.ErrLinkExpired):
		return fiber.NewError(fiber.StatusGone, err.Error())
	case err != nil:
		return answer.Unavailable(err)
	}
	base, _ := s.baseURL(c)
	q := url.Values{"screen": {l.Screen}, "access_token": {l.Token}}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Redirect(base+"/wall/?"+q.Encode(), fiber.StatusFound)
}
