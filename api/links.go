package api

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Links. Every absolute link the server writes (OGC landing, collections and
// items links, TileJSON tile templates, the layer catalog) is built by
// href, from one base:
//
//   - Config.PublicURL, the base URL clients reach the server at, when set.
//     Those links are the server's own by configuration, so they keep the
//     caller's access_token: a map client that opened a TileJSON document
//     with ?access_token= can then fetch its tiles, and a GIS client its
//     next pages, without setting headers.
//   - Otherwise the request's own scheme and Host header, or the
//     X-Forwarded-Proto and X-Forwarded-Host of a peer in
//     Config.TrustedProxies; from any other peer those headers are ignored.
//     Such links never carry the caller's token: the Host is whatever the
//     client sent, and a token must not follow a link to a host the server
//     did not choose. GDAL adds the query of the URL it was opened with to
//     every request, so OAPIF:…/ogc?access_token=… keeps working.
//
// A Host that is not a plain host[:port] gives relative links.

// ParsePublicURL checks a public base URL: absolute http or https, with
// an optional path prefix and no query, fragment or credentials. It
// returns it without a trailing slash.
func ParsePublicURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL: %w", raw, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return "", fmt.Errorf("%q must be an absolute http or https URL, e.g. https://ioc.example.gov.vn", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return "", fmt.Errorf("%q must be a scheme, host and optional path only, without credentials, query or fragment", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

// ParseTrustedProxies reads a comma-separated list of CIDRs or addresses.
func ParseTrustedProxies(raw string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(raw, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR or an IP address; write e.g. 10.0.0.0/8,192.168.1.10", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// trustedPeer reports whether the request comes straight from one of the
// configured proxies.
func (s *Server) trustedPeer(c *fiber.Ctx) bool {
	if len(s.cfg.TrustedProxies) == 0 {
		return false
	}
	a, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// baseURL is where links start, and whether it is the configured public
// URL; "" makes relative links.
func (s *Server) baseURL(c *fiber.Ctx) (base string, public bool) {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL, true
	}
	scheme := "http"
	if c.Context().IsTLS() {
		scheme = "https"
	}
	host := string(c.Request().Host())
	if s.trustedPeer(c) {
		if p := firstValue(c.Get(fiber.HeaderXForwardedProto)); p == "http" || p == "https" {
			scheme = p
		}
		if h := firstValue(c.Get(fiber.HeaderXForwardedHost)); h != "" {
			host = h
		}
	}
	if !plainHost(host) {
		return "", false
	}
	return scheme + "://" + host, false
}

// firstValue is the first of a header's comma-separated values: the one
// the proxy nearest the client set.
func firstValue(h string) string {
	v, _, _ := strings.Cut(h, ",")
	return strings.ToLower(strings.TrimSpace(v))
}

// plainHost accepts a host name or address with an optional port, nothing
// that could turn a link into another URL.
func plainHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// href is a link to path on this server with query q (which it may
// change). The caller's access_token is kept only in links built from the
// public URL; see the package's Links comment.
func (s *Server) href(c *fiber.Ctx, path string, q url.Values) string {
	base, public := s.baseURL(c)
	if q == nil {
		q = url.Values{}
	}
	q.Del("access_token")
	if tok := c.Query("access_token"); public && tok != "" {
		q.Set("access_token", tok)
	}
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}
