package api

import "github.com/gofiber/fiber/v2"

// gisRoutes registers the GIS layers: catalog, GeoJSON, vector tiles and
// OGC API – Features.
func (s *Server) gisRoutes(app *fiber.App, v1 fiber.Router, reader fiber.Handler) {}
