package api

import (
	"bytes"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/websocket/v2"
	"github.com/valyala/fasthttp"

	"github.com/openioc/ioc/api/gis"
)

// compressAnswers compresses answers (GeoJSON layers and OGC pages of
// several MB, JSON generally) with brotli or gzip as the request's
// Accept-Encoding allows. It leaves alone what is already encoded (gzip
// tiles), vector tiles sent plain (their ETag names the plain bytes),
// small bodies and websocket upgrades. It favours speed over ratio: a page
// of communes compresses several-fold even at the fastest level, and the
// server's cores are better spent answering.
func compressAnswers() fiber.Handler {
	compress := fasthttp.CompressHandlerBrotliLevel(func(*fasthttp.RequestCtx) {},
		fasthttp.CompressBrotliBestSpeed, fasthttp.CompressBestSpeed)
	return func(c *fiber.Ctx) error {
		if websocket.IsWebSocketUpgrade(c) {
			return c.Next()
		}
		if err := c.Next(); err != nil {
			return err
		}
		h := &c.Response().Header
		if len(h.ContentEncoding()) > 0 || bytes.HasPrefix(h.ContentType(), []byte(gis.MVTContentType)) {
			return nil
		}
		c.Vary(fiber.HeaderAcceptEncoding)
		compress(c.Context())
		return nil
	}
}
