package api

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/openioc/ioc/dashboards"
)

// dashboard serves the built-in pages: the single-unit page at / and the
// wall at /wall/ (its editor at /wall/editor.html). They hold no data: a
// page asks the API with the token it was opened with.
func (s *Server) dashboard(app *fiber.App) {
	app.Use(wallPage)
	app.Use("/", filesystem.New(filesystem.Config{
		Root:   dashboards.Assets(),
		Index:  "index.html",
		MaxAge: 300,
		Next: func(c *fiber.Ctx) bool {
			p := c.Path()
			return c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead ||
				p == "/healthz" || p == "/readyz" || p == "/metrics" || len(p) >= 4 && p[:4] == "/api"
		},
	}))
}

// wallPage sends /wall on to /wall/ (its modules are addressed relative to
// it), keeping the query, and has the wall's files checked again on every
// load: a wall screen reloads itself when the server's build changes, and
// must then get the new modules, not those cached for five minutes.
func wallPage(c *fiber.Ctx) error {
	get := c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead
	p := c.Path()
	if get && p == "/wall" {
		to := "/wall/"
		if q := c.Request().URI().QueryString(); len(q) > 0 {
			to += "?" + string(q) // string() copies: the buffer is reused
		}
		return c.Redirect(to, fiber.StatusMovedPermanently)
	}
	if !get || !strings.HasPrefix(p, "/wall/") {
		return c.Next()
	}
	err := c.Next()
	if c.Response().StatusCode() == fiber.StatusOK {
		c.Set(fiber.HeaderCacheControl, "no-cache")
	}
	return err
}
