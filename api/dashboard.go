package api

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/openioc/ioc/dashboards"
)

// dashboard serves the built-in page. It holds no data: the page asks the
// API with the token it was opened with.
func (s *Server) dashboard(app *fiber.App) {
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
