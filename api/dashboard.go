package api

import (
	"path"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/openioc/ioc/dashboards"
)

// dashboard serves the built-in pages: the single-unit page at / and the
// wall at /wall/ (its editor at /wall/editor.html). They hold no data: a
// page asks the API with the token it was opened with.
func (s *Server) dashboard(app *fiber.App) {
	app.Use(pageFiles)
	app.Use("/", filesystem.New(filesystem.Config{
		Root:  assets,
		Index: "index.html",
		Next:  func(c *fiber.Ctx) bool { return !isPageFile(c) },
	}))
}

// assets are the pages' files.
var assets = dashboards.Assets()

// isPageFile says whether the request asks for one of the pages' files
// (or a folder of them), rather than the API, tiles, health or metrics.
func isPageFile(c *fiber.Ctx) bool {
	if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
		return false
	}
	f, err := assets.Open(path.Clean(c.Path()))
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// pageFiles sends /wall on to /wall/ (its modules are addressed relative to
// it), keeping the query, and has every page file checked again on every
// load: a wall screen reloads itself when the server's build changes, and
// the built-in page imports the wall's modules, so both must get the new
// modules together, never some of them cached for minutes.
func pageFiles(c *fiber.Ctx) error {
	if !isPageFile(c) {
		return c.Next()
	}
	if c.Path() == "/wall" {
		to := "/wall/"
		if q := c.Request().URI().QueryString(); len(q) > 0 {
			to += "?" + string(q) // string() copies: the buffer is reused
		}
		return c.Redirect(to, fiber.StatusMovedPermanently)
	}
	err := c.Next()
	if c.Response().StatusCode() == fiber.StatusOK {
		c.Set(fiber.HeaderCacheControl, "no-cache")
	}
	return err
}
