package api

import (
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/api/auth"
)

// gisHost is what the GIS layers (package gis) use of the server: its
// authentication, and its links (links.go).
type gisHost struct{ s *Server }

// Readers authenticate a request, taking the token also from
// ?access_token= when queryToken is set, and refuse one that may not read.
func (h gisHost) Readers(queryToken bool) []fiber.Handler {
	return []fiber.Handler{h.s.authenticate(queryToken), requireRead}
}

func (h gisHost) Principal(c *fiber.Ctx) auth.Principal { return principal(c) }

func (h gisHost) Href(c *fiber.Ctx, path string, q url.Values) string { return h.s.href(c, path, q) }
