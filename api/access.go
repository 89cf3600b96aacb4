package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest"
)

// access is what the server checks credentials and their scope with.
type access struct {
	verifier    *auth.Verifier
	scope       *auth.Scope
	failures    *auth.FailureLimiter
	revocations *auth.Revocations
	devices     *auth.DeviceVerifier // nil without a device registry
	origins     map[string]bool      // allowed websocket origins besides the server's own
	anyOrigin   bool
	outcomes    *prometheus.CounterVec
}

func (s *Server) newAccess() error {
	scope, err := auth.NewScope(s.d.Geo, s.d.KPIs.Hierarchy().Name())
	if err != nil {
		return err
	}
	revs := s.d.Revocations
	if revs == nil {
		revs = auth.NewRevocations(auth.RevocationsConfig{}, nil, nil, s.logger)
	}
	a := access{
		verifier: s.d.Auth.WithRevocations(revs), scope: scope, revocations: revs,
		failures: auth.NewFailureLimiter(auth.LimiterConfig{PerMinute: s.cfg.AuthFailuresPerMinute}, nil),
		origins:  map[string]bool{},
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_http_auth_failures_total",
			Help: "Failed authentications, by what the client was answered: refused (401) or limited (429, too many from its address).",
		}, []string{"outcome"}),
	}
	if s.d.Registerer != nil {
		s.d.Registerer.MustRegister(a.outcomes)
	}
	if s.d.Devices != nil {
		devices := s.d.Devices
		a.devices = auth.NewDeviceVerifier(func(id string) (string, string, bool) {
			d, ok := devices.Device(id)
			if !ok || d.Kind != device.Camera {
				return "", "", false
			}
			return d.SecretHash, d.AreaCode, true
		})
	}
	for _, o := range s.cfg.AllowedOrigins {
		o = strings.TrimSpace(o)
		switch {
		case o == "":
		case o == "*":
			a.anyOrigin = true
		default:
			u, err := url.Parse(o)
			if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return fmt.Errorf("allowed origin %q is not an origin like https://wall.example.gov.vn (IOC_ALLOWED_ORIGINS)", o)
			}
			a.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
		}
	}
	s.access = a
	return nil
}

// clientAddr is the address a request comes from: the socket's. The
// project has no notion of trusted proxies, so forwarded headers are not
// believed; behind a proxy every client counts as the proxy's address.
func clientAddr(c *fiber.Ctx) netip.Addr {
	a, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	return a.Unmap()
}

// refuseAuth answers a request whose credentials were refused: 401 with
// the reason and the challenges, or 429 once its address failed too often.
// A request with no credentials at all is not counted: camera platforms
// send them only after a challenge.
func (s *Server) refuseAuth(c *fiber.Ctx, err error, challenges ...string) error {
	if !errors.Is(err, auth.ErrMissing) {
		if wait, ok := s.access.failures.Fail(clientAddr(c)); !ok {
			return s.limited(c, wait)
		}
		s.access.outcomes.WithLabelValues("refused").Inc()
	}
	for _, ch := range challenges {
		c.Context().Response.Header.Add(fiber.HeaderWWWAuthenticate, ch)
	}
	return fiber.NewError(fiber.StatusUnauthorized, err.Error())
}

func (s *Server) limited(c *fiber.Ctx, wait time.Duration) error {
	s.access.outcomes.WithLabelValues("limited").Inc()
	secs := int(wait / time.Second)
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	return fiber.NewError(fiber.StatusTooManyRequests, fmt.Sprintf(
		"too many failed authentications from your address (at most %d a minute, IOC_AUTH_FAILURES_PER_MINUTE): retry in %d s with a valid token; requests with valid credentials are never limited",
		s.access.failures.PerMinute(), secs))
}

const (
	bearerChallenge = `Bearer realm="iocd"`
	basicChallenge  = `Basic realm="iocd cameras", charset="UTF-8"`
)

// authenticateCamera takes a camera's own HTTP Basic credentials (user
// name: the device id) as well as a bearer token. A request without any is
// challenged for both, as camera platforms expect.
func (s *Server) authenticateCamera(bearer fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		h := c.Get(fiber.HeaderAuthorization)
		scheme, rest, _ := strings.Cut(h, " ")
		switch {
		case h == "":
			return s.refuseAuth(c, fmt.Errorf("%w, or the camera's own credentials (HTTP Basic: the device id and the password set with PUT /api/v1/devices/{id})", auth.ErrMissing),
				basicChallenge, bearerChallenge)
		case !strings.EqualFold(scheme, "Basic") || s.access.devices == nil:
			return bearer(c)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		user, pass, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok || user == "" {
			return fiber.NewError(fiber.StatusUnauthorized, "malformed Basic credentials: send base64 of \"<device id>:<password>\"")
		}
		// bcrypt is slow on purpose: an address over its failures is
		// refused before it runs, unless these credentials passed before.
		if !s.access.devices.Known(user, pass) {
			if wait, blocked := s.access.failures.Blocked(clientAddr(c)); blocked {
				return s.limited(c, wait)
			}
		}
		p, err := s.access.devices.Verify(user, pass)
		if err != nil {
			return s.refuseAuth(c, fmt.Errorf("%w for camera %q: check the device id and the password set with PUT /api/v1/devices/{id}", err, user), basicChallenge)
		}
		c.Locals(principalKey, p.WithScope(s.access.scope))
		return c.Next()
	}
}

// ingestAuth authenticates an ingest route: camera-platform XML also
// takes cameras' own credentials.
func (s *Server) ingestAuth(name string) fiber.Handler {
	bearer := s.authenticate(false)
	if name == "camera-xml" {
		return s.authenticateCamera(bearer)
	}
	return bearer
}

// scopeIngest puts the principal's scope in the request's context, where
// ingest checks every record against it.
func (s *Server) scopeIngest(c *fiber.Ctx) error {
	c.SetUserContext(ingest.WithScope(c.UserContext(), recordScope{principal(c)}))
	return c.Next()
}

// recordScope is a principal's scope as ingest sees it.
type recordScope struct{ p auth.Principal }

func (r recordScope) Covers(hierarchy, code string) error {
	if r.p.Covers(auth.HierarchyName(hierarchy), code) {
		return nil
	}
	return fmt.Errorf("your token does not cover unit %s of %s (it covers %s, of the current hierarchy, and older units only when all they went into is covered): send this record with a token that covers its unit",
		code, hierarchy, r.p.AreasText())
}

func (r recordScope) CoversDevice(id string) error {
	if r.p.Device == "" || r.p.Device == id {
		return nil
	}
	return fmt.Errorf("these are the credentials of camera %s, and the alert is from camera %s (matched by its channel or address): each camera posts its own alerts with its own credentials",
		r.p.Device, id)
}

// tokenRoutes lets admins list and revoke tokens.
func (s *Server) tokenRoutes(v1 fiber.Router, reader fiber.Handler) {
	v1.Get("/tokens/revoked", reader, requireAdmin, s.listRevoked)
	v1.Post("/tokens/:jti/revoke", reader, requireAdmin, s.revokeToken)
}

type revocationList struct {
	Count       int               `json:"count"`
	Revocations []auth.Revocation `json:"revocations"`
}

func (s *Server) listRevoked(c *fiber.Ctx) error {
	l := s.access.revocations.List()
	return c.JSON(revocationList{Count: len(l), Revocations: l})
}

type revokeBody struct {
	Reason string `json:"reason"`
}

func (s *Server) revokeToken(c *fiber.Ctx) error {
	var body revokeBody
	if err := strictJSON(c.Body(), &body); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, `body: `+err.Error()+` (send {"reason":"…"})`)
	}
	r := auth.Revocation{ID: strings.Clone(c.Params("jti")), Reason: body.Reason, RevokedBy: actor(principal(c))}
	if err := auth.CheckRevocation(r); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	r, err := s.access.revocations.Revoke(c.UserContext(), r)
	if err != nil {
		s.logger.Warn("revoke token", "id", r.ID, "err", err)
		c.Set(fiber.HeaderRetryAfter, "5")
		return fiber.NewError(fiber.StatusServiceUnavailable, "the revocation could not be stored, so it is not in force; retry shortly: "+err.Error())
	}
	return c.JSON(r)
}

// closeRevoked ends the websockets of revoked tokens.
func (s *Server) closeRevoked(ids []string) {
	revoked := make(map[string]bool, len(ids))
	for _, id := range ids {
		revoked[id] = true
	}
	if n := s.hub.CloseWhere(func(p auth.Principal) bool { return p.ID != "" && revoked[p.ID] }, closeRevoked, revokedReason); n > 0 {
		s.logger.Info("closed the websockets of revoked tokens", "connections", n)
	}
}

// closeRevoked is the close code of a websocket whose token was revoked:
// an application code in the style of HTTP's 401.
const (
	closeRevoked  = 4401
	revokedReason = "token revoked: ask for a new token"
)

// Revoked takes a revocation announced on the bus (auth.RevokedTopic). It
// never blocks.
func (s *Server) Revoked(payload []byte) { s.access.revocations.Apply(payload) }
