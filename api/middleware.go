package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/internal/requestid"
)

// pageCSP lets the built-in page load only what it ships (its script, its
// style sheet), talk only to its own origin (REST and the websocket) and
// never be framed: a token travels in its URL, so no other site may embed
// it or receive it. data: is for the empty favicon.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// apiCSP is for everything that is not the page: data is never a document
// to run or frame.
const apiCSP = "default-src 'none'; frame-ancestors 'none'"

// corsMethods and corsHeaders are what a page on an allowed origin may send.
const (
	corsMethods = "GET, HEAD, POST, PUT, DELETE, OPTIONS"
	corsHeaders = "Authorization, Content-Type, Content-Encoding, Accept, If-Match, If-None-Match, X-Request-Id"
	// corsExpose are the answer headers such a page may read.
	corsExpose = "ETag, Last-Modified, Location, Retry-After, X-Request-Id, Content-Disposition, WWW-Authenticate"
)

// cors is the parsed IOC_CORS_ORIGINS.
type cors struct {
	any     bool            // "*": every origin, and never with credentials
	origins map[string]bool // exact origins, e.g. https://maps.example.gov.vn
}

// parseCORS checks the configured origins: each scheme://host[:port], or
// "*" alone.
func parseCORS(list []string) (cors, error) {
	c := cors{origins: map[string]bool{}}
	for _, o := range list {
		o = strings.TrimSpace(o)
		switch {
		case o == "":
			continue
		case o == "*":
			c.any = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			return c, fmt.Errorf("IOC_CORS_ORIGINS: %q is not an origin; write scheme://host[:port] with nothing after it, e.g. https://maps.example.gov.vn", o)
		}
		c.origins[strings.ToLower(o)] = true
	}
	if c.any && len(c.origins) > 0 {
		return c, fmt.Errorf("IOC_CORS_ORIGINS: \"*\" already allows every origin; list origins or give \"*\" alone")
	}
	return c, nil
}

func (c cors) enabled() bool { return c.any || len(c.origins) > 0 }

func (c cors) allows(origin string) bool {
	return origin != "" && (c.any || c.origins[strings.ToLower(origin)])
}

// parseAccessLog reads IOC_ACCESS_LOG: the level of one line per request,
// or off.
func parseAccessLog(s string) (level slog.Level, on bool, err error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, true, nil
	case "debug":
		return slog.LevelDebug, true, nil
	case "off":
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("IOC_ACCESS_LOG=%q: use off, info or debug", s)
}

// isPage says whether path is the built-in page's (its HTML and assets)
// rather than the API's.
func isPage(path string) bool {
	for _, p := range []string{"/api/", "/tiles/", "/ogc", "/metrics", "/healthz", "/readyz"} {
		if strings.HasPrefix(path, p) {
			return false
		}
	}
	return true
}

// frame runs right inside requestid.Middleware, around everything else: it
// sets the security headers, answers CORS preflights, turns an error into
// its answer (so that status and size are known here), adds the CORS
// headers to every answer, and writes the access log line.
func (s *Server) frame(c *fiber.Ctx) error {
	start := time.Now()
	h := &c.Response().Header
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	h.Set(fiber.HeaderXFrameOptions, "DENY")
	if s.cfg.HSTS {
		h.Set(fiber.HeaderStrictTransportSecurity, "max-age=31536000")
	}
	page := isPage(c.Path())
	if page {
		h.Set(fiber.HeaderContentSecurityPolicy, pageCSP)
	} else {
		h.Set(fiber.HeaderContentSecurityPolicy, apiCSP)
		// Figures are no one's to keep: routes whose answers may be cached
		// (tiles, the API description) say so themselves.
		h.Set(fiber.HeaderCacheControl, "no-store")
	}

	var err error
	if c.Method() == fiber.MethodOptions {
		err = s.preflight(c)
	} else {
		err = c.Next()
	}
	if err != nil {
		if herr := s.handleError(c, err); herr != nil {
			c.Status(fiber.StatusInternalServerError)
		}
	}
	if s.cors.enabled() {
		origin := c.Get(fiber.HeaderOrigin)
		if !s.cors.any {
			c.Vary(fiber.HeaderOrigin)
		}
		if s.cors.allows(origin) {
			if s.cors.any {
				h.Set(fiber.HeaderAccessControlAllowOrigin, "*")
			} else {
				h.Set(fiber.HeaderAccessControlAllowOrigin, origin)
			}
			h.Set(fiber.HeaderAccessControlExposeHeaders, corsExpose)
		}
	}
	if s.accessOn {
		s.accessLog(c, start)
	}
	return nil
}

// preflight answers OPTIONS: for a page on an allowed origin, which
// methods and headers it may use; for any other origin a refusal that
// says how to allow it. Bearer tokens travel in a header, never in
// cookies, so credentials are never allowed.
func (s *Server) preflight(c *fiber.Ctx) error {
	origin := c.Get(fiber.HeaderOrigin)
	h := &c.Response().Header
	if origin == "" || c.Get(fiber.HeaderAccessControlRequestMethod) == "" {
		// Not a browser's preflight: say what the server takes.
		h.Set(fiber.HeaderAllow, corsMethods)
		return c.SendStatus(fiber.StatusNoContent)
	}
	if !s.cors.allows(origin) {
		return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf(
			"pages on %s may not call this API; an operator allows an origin by adding it to IOC_CORS_ORIGINS (comma-separated, e.g. https://maps.example.gov.vn)",
			strings.Clone(origin)))
	}
	h.Set(fiber.HeaderAccessControlAllowMethods, corsMethods)
	h.Set(fiber.HeaderAccessControlAllowHeaders, corsHeaders)
	h.Set(fiber.HeaderAccessControlMaxAge, "600")
	return c.SendStatus(fiber.StatusNoContent)
}

// accessLog writes one line for the request: what was asked (the route's
// pattern, never the path or query, which may carry a token), by whom (the
// token's subject, never the token), how it ended and how long it took.
func (s *Server) accessLog(c *fiber.Ctx, start time.Time) {
	if !s.accessLogger.Enabled(context.Background(), s.accessLevel) {
		return
	}
	resp := c.Response()
	size := resp.Header.ContentLength()
	if size < 0 {
		size = len(resp.Body())
	}
	route := ""
	if r := c.Route(); r != nil {
		route = r.Path
	}
	p := principal(c)
	attrs := []slog.Attr{
		slog.String("method", c.Method()),
		slog.String("route", route),
		slog.Int("status", resp.StatusCode()),
		slog.Duration("duration", time.Since(start)),
		slog.Int("bytes", size),
		slog.String("ip", c.IP()),
		slog.String("request_id", requestid.Get(c)),
	}
	if p.Subject != "" || p.Role != "" {
		attrs = append(attrs, slog.String("subject", p.Subject), slog.String("role", string(p.Role)))
	}
	s.accessLogger.LogAttrs(context.Background(), s.accessLevel, "request", attrs...)
}
