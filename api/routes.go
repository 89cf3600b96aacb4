package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/websocket/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/requestid"
)

func (s *Server) routes(m *httpMetrics) {
	app := s.app
	// Outermost first: the id is known to every later step and log line;
	// frame answers errors and panics (recover turns one into an error),
	// preflights included, so that the metrics and the access log see the
	// status the client got.
	app.Use(requestid.Middleware)
	app.Use(m.middleware)
	app.Use(s.frame)
	app.Use(recover.New())
	app.Use(newQueryChecker(queryParams).handler) // unknown query parameters: 400
	app.Use(compressAnswers())                    // gzip or brotli as Accept-Encoding allows

	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	if s.d.Kiosks != nil {
		app.Get("/k/:code", s.openKioskLink) // no token: the code stands for one
	}
	s.dashboard(app)

	if s.d.Gatherer != nil {
		metrics := adaptor.HTTPHandler(promhttp.HandlerFor(s.d.Gatherer, promhttp.HandlerOpts{}))
		app.Get("/metrics", s.authenticate(false), requireAdmin, metrics)
	}

	v1 := app.Group("/api/v1")
	v1.Get("/openapi.json", s.openAPI()) // no token: the API's own description
	if s.d.Ingest != nil {
		for _, r := range s.ingestRoutes() {
			v1.Post("/ingest/"+r.name, s.ingestAuth(r.name), requireIngest, s.scopeIngest, r.h)
		}
	}
	// Middleware per route: a Group's handlers would apply to every route
	// under its prefix, the ingest and live routes included.
	reader := s.authenticate(false)
	v1.Get("/kpis", reader, requireRead, s.catalog)
	v1.Get("/areas", reader, requireRead, s.listAreas)
	v1.Get("/areas/:code", reader, requireRead, s.getArea)
	v1.Get("/areas/:code/kpis", reader, requireRead, s.areaKPIs)
	v1.Get("/areas/:code/children/kpis", reader, requireRead, s.childrenKPIs)
	v1.Get("/areas/:code/lineage", reader, requireRead, s.lineage)
	v1.Get("/geo/lookup", reader, requireRead, s.lookup)
	s.operationsRoutes(v1, reader)
	if s.d.Reports != nil {
		s.reportRoutes(v1, reader)
	}
	s.gis.Register(app) // layers, tiles, OGC API – Features: package gis
	s.tokenRoutes(v1, reader)
	// Before the documents: GET /api/v1/screens is the screens with what
	// each shows and when it was last seen, their documents included.
	if s.d.Screens != nil {
		s.screenRoutes(v1, reader)
	}
	s.documentRoutes(v1, reader)
	s.datasetRoutes(v1, reader)

	v1.Get("/live", s.authenticate(true), requireRead, upgradeOnly, s.admitLive,
		websocket.New(s.live, websocket.Config{
			// Client messages are small ops; figures go out as prepared
			// frames written straight to the socket, so a write buffer is
			// only lent (from the pool) for the odd error message: an idle
			// screen holds none.
			ReadBufferSize: 1024, WriteBufferSize: 4096, WriteBufferPool: liveWriteBuffers}))

	app.Use(func(c *fiber.Ctx) error {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no route %s %s; the API is described at GET /api/v1/openapi.json", c.Method(), c.Path()))
	})
}

const principalKey = "principal"

// authenticate puts the token's principal in the request's locals. The
// websocket route also takes the token from ?access_token=, because
// browsers cannot set headers on a websocket.
func (s *Server) authenticate(queryToken bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		token := ""
		if h := c.Get(fiber.HeaderAuthorization); h != "" {
			scheme, rest, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return fiber.NewError(fiber.StatusUnauthorized, "Authorization must be \"Bearer <token>\"")
			}
			token = strings.TrimSpace(rest)
		} else if queryToken {
			token = c.Query("access_token")
		}
		p, err := s.access.verifier.Verify(token)
		if err != nil {
			return s.refuseAuth(c, err, bearerChallenge)
		}
		c.Locals(principalKey, p.WithScope(s.access.scope))
		return c.Next()
	}
}

func principal(c *fiber.Ctx) auth.Principal {
	p, _ := c.Locals(principalKey).(auth.Principal)
	return p
}

func requireRead(c *fiber.Ctx) error {
	if !principal(c).CanRead() {
		return fiber.NewError(fiber.StatusForbidden, "this token may only push records; reading needs a viewer, operator, kiosk or admin token")
	}
	return c.Next()
}

func requireIngest(c *fiber.Ctx) error {
	if !principal(c).CanIngest() {
		return fiber.NewError(fiber.StatusForbidden, "pushing records needs a token with the ingest or admin role")
	}
	return c.Next()
}

func requireAdmin(c *fiber.Ctx) error {
	if principal(c).Role != auth.Admin {
		return fiber.NewError(fiber.StatusForbidden, "this endpoint needs an admin token")
	}
	return c.Next()
}

func upgradeOnly(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return fiber.NewError(fiber.StatusUpgradeRequired, "connect with a websocket client (Upgrade: websocket)")
	}
	return c.Next()
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_http_requests_total", Help: "HTTP requests by route, method and status code."},
			[]string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ioc_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

func (m *httpMetrics) middleware(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	code := c.Response().StatusCode()
	if fe, ok := err.(*fiber.Error); ok {
		code = fe.Code
	} else if err != nil {
		code = fiber.StatusInternalServerError
	}
	route := c.Route().Path // the pattern, so labels stay few
	// c.Method() points into a buffer the next request reuses: a label
	// kept by the registry must be a copy, or series change under it and
	// every later scrape fails.
	m.requests.WithLabelValues(route, strings.Clone(c.Method()), strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	return err
}
