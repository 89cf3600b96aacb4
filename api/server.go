// Package api serves HTTP: the REST routes, the live websocket, the health
// and metrics endpoints and the built-in page, and mounts the GIS layers
// (package gis), to which it lends its authentication and links and whose
// refusals its error handler answers. It reads figures through the
// aggregate package and never writes SQL of its own; every request acts as
// the principal of its bearer token, whose area scope bounds what it sees.
// Request bodies are read through httpbody only, never Fiber's Ctx.Body,
// which inflates a Content-Encoding without bound. The ingest routes hand
// the bodies they read to the ingest pipeline (Deps.Ingest, an Ingest) and
// answer what it returns: 202 with what became of each record, or the
// status, Retry-After and reason each of its refusals calls for.
//
// Concurrency: a Server is safe for concurrent use; Deliver never blocks.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/answer"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/gis"
	"github.com/openioc/ioc/api/hub"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/httpbody"
	"github.com/openioc/ioc/internal/requestid"
)

// Config tunes the server. Zero fields take the defaults.
type Config struct {
	// BodyLimit bounds request bodies, as sent and once their
	// Content-Encoding is undone; default 16 MiB.
	BodyLimit int
	// RequestTimeout bounds reading figures for one request; default 30s.
	RequestTimeout time.Duration
	Hub            hub.Config
	// PublicURL is the base URL clients reach the server at (ParsePublicURL
	// form); every absolute link is built from it. Empty: from the
	// request's Host, without the caller's token (links.go).
	PublicURL string
	// TrustedProxies are the peers whose X-Forwarded-Host and
	// X-Forwarded-Proto are believed; none by default.
	TrustedProxies []netip.Prefix
	// AllowedOrigins are the web origins (scheme://host[:port]) whose pages
	// may open the live websocket besides the server's own; "*" allows
	// any. A request without Origin (not from a browser) is always allowed.
	AllowedOrigins []string
	// AuthFailuresPerMinute bounds failed authentications per client
	// address (429 beyond); default 60.
	AuthFailuresPerMinute int
	// CORSOrigins are the origins (scheme://host[:port]) whose pages may
	// call the API from a browser, or "*" for any; empty: none.
	CORSOrigins []string
	// AccessLog is the level of the one line logged per request: "info"
	// (the default), "debug" or "off".
	AccessLog string
	// HSTS adds Strict-Transport-Security to every answer: set it when the
	// node itself serves HTTPS.
	HSTS bool
}

// KPIs is how the API reads figures.
type KPIs interface {
	Hierarchy() *geo.Hierarchy
	Snapshot(ctx context.Context, hierarchy, code string, w aggregate.Window) (aggregate.Snapshot, error)
	ChildSnapshots(ctx context.Context, hierarchy, code string, w aggregate.Window) ([]aggregate.Snapshot, error)
	LevelSnapshots(ctx context.Context, hierarchy, level, parent string, w aggregate.Window) ([]aggregate.Snapshot, error)
	MapSnapshot(ctx context.Context, hierarchy, code string, w aggregate.Window) (aggregate.MapSnapshot, error)
	// Location is the deployment's time zone, where the today window starts.
	Location() *time.Location
}

// LatestValues is the bus's store of each topic's latest message.
type LatestValues interface {
	Latest(ctx context.Context, topics []string) (map[string]bus.Message, error)
	History(ctx context.Context, topic, epoch string, after uint64) (bus.History, error)
}

// Republisher asks the node publishing live figures to send topics again
// (aggregate.Aggregator).
type Republisher interface {
	Republish(ctx context.Context, topics []string) error
}

// Check is a readiness probe of one dependency.
type Check func(ctx context.Context) error

// Deps are what the server is built from.
type Deps struct {
	Geo  *geo.Registry
	KPIs KPIs
	Auth *auth.Verifier
	// Devices, Alarms and Events serve cameras, sensors and alarms; nil
	// leaves their routes and topics out.
	Devices Devices
	Alarms  Alarms
	Events  Events
	// Reports answers series, rankings, the scoreboard and closed periods;
	// nil leaves their routes out.
	Reports Reports
	// Screens runs the wall's screens (their routes and screen/ topics),
	// Kiosks issues kiosk tokens and opens their short links (/k/{code});
	// nil leaves them out.
	Screens Screens
	Kiosks  *auth.Kiosks
	// Ingest takes the bodies posted under /api/v1/ingest/; nil leaves
	// those routes out.
	Ingest Ingest
	// Latest reads the bus's latest value of topics and the history of
	// stream topics, for new websocket subscriptions and resyncs; nil:
	// nothing was published, figures are computed.
	Latest LatestValues
	// Republisher is asked to send figure topics again that a resync found
	// missing from the bus; nil: they wait for their next publication.
	Republisher Republisher
	// Documents keeps the wall's dashboards, playlists, walls and screens;
	// nil leaves their routes out.
	Documents DocumentStore
	// Datasets is the department datasets (definitions kept in
	// Documents); nil, or Documents nil, leaves their routes out.
	Datasets Datasets
	// Connectors tells how the datasets' connectors ran; nil: GET
	// /api/v1/datasets/{id}/connector answers that none run here.
	Connectors Connectors
	// Revocations is the list of revoked tokens, shared by the nodes;
	// nil keeps one in memory (a single node, tests).
	Revocations *auth.Revocations
	// Ready names the checks /readyz runs.
	Ready map[string]Check
	// Gatherer is what /metrics exposes.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// AccessLogger writes the access log (component http); nil: Logger.
	AccessLogger *slog.Logger
}

// Server is the HTTP side of a node.
type Server struct {
	cfg    Config
	bodies *httpbody.Reader
	d      Deps
	app    *fiber.App
	hub    *hub.Hub
	gis    *gis.Server
	logger *slog.Logger
	access access

	cors         cors
	accessLogger *slog.Logger
	accessLevel  slog.Level
	accessOn     bool

	readyMu   sync.Mutex
	readyLast map[string]string // each readiness check's last error text, "" when it passed
	stopping  atomic.Bool       // set by Stopping: /readyz answers 503 from then on
}

// New builds the server and its routes.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Geo == nil || d.KPIs == nil || d.Auth == nil || d.Logger == nil {
		return nil, errors.New("api server needs geography, figures, a token verifier and a logger")
	}
	if d.Latest == nil {
		// Nothing is published to a node without a bus: an empty one
		// answers for the topics.
		d.Latest = bus.NewMemory()
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 16 << 20
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.PublicURL != "" {
		u, err := ParsePublicURL(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("public URL: %w", err)
		}
		cfg.PublicURL = u
	}
	proxies := make([]string, len(cfg.TrustedProxies))
	for i, p := range cfg.TrustedProxies {
		proxies[i] = p.String()
	}
	s := &Server{cfg: cfg, bodies: httpbody.New(httpbody.Config{Limit: int64(cfg.BodyLimit)}), d: d, logger: d.Logger, accessLogger: d.AccessLogger}
	if s.accessLogger == nil {
		s.accessLogger = d.Logger
	}
	if err := s.newAccess(); err != nil {
		return nil, err
	}
	var err error
	if s.cors, err = parseCORS(cfg.CORSOrigins); err != nil {
		return nil, err
	}
	if s.accessLevel, s.accessOn, err = parseAccessLog(cfg.AccessLog); err != nil {
		return nil, err
	}
	s.hub = hub.New(cfg.Hub, topics{s}, d.Logger.With("component", "hub"), d.Registerer)
	if s.gis, err = gis.New(gis.Config{RequestTimeout: cfg.RequestTimeout}, gis.Deps{
		Geo: d.Geo, Figures: d.KPIs, Devices: d.Devices, Events: d.Events, Access: gisHost{s}, Links: gisHost{s},
		Indicators: s.indicators,
	}); err != nil {
		return nil, err
	}
	s.access.revocations.OnRevoke(s.closeRevoked)
	s.app = fiber.New(fiber.Config{
		AppName:               "iocd",
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           60 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           2 * time.Minute,
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		JSONEncoder:           answer.MarshalJSON,
		// Forwarded headers (c.Hostname, c.Protocol, c.IP) are believed
		// from the configured proxies only.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          proxies,
	})
	s.routes(newHTTPMetrics(d.Registerer))
	return s, nil
}

// App is the underlying Fiber application.
func (s *Server) App() *fiber.App { return s.app }

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }

// Deliver hands a bus message to the websocket subscribers of its topic.
func (s *Server) Deliver(m bus.Message) { s.hub.Deliver(m) }

// Resync has the websocket hub read every topic it keeps again, after a
// gap in the bus. It never blocks.
func (s *Server) Resync() { s.hub.Resync() }

// Shutdown closes websockets with code 1001, then stops accepting requests
// and waits for those in flight, up to ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.hub.Close(ctx); err != nil {
		s.logger.Warn("websocket clients did not all leave in time", "err", err)
	}
	return s.app.ShutdownWithContext(ctx)
}

type errorBody struct {
	Error string `json:"error"`
}

// handleError answers every refusal as JSON with a message that says what
// was wrong. Failures of storage and unexpected errors are logged with the
// request's id and answered without their text, which may carry queries,
// addresses or data: the client is told what was unavailable, to retry,
// and the id to quote.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	id := requestid.Get(c)
	msg := "internal error; the server log has details (request id " + id + ")"
	var fe *fiber.Error
	var se *answer.StorageError
	switch {
	case errors.As(err, &se):
		s.logger.Warn("storage did not answer", "request_id", id, "method", c.Method(), "route", routePattern(c), "err", se.Err)
		c.Set(fiber.HeaderRetryAfter, "5")
		code = fiber.StatusServiceUnavailable
		msg = unavailableWhat(routePattern(c)) + " unavailable right now: storage did not answer; retry in a few seconds (request id " + id + ")"
	case errors.As(err, &fe):
		code, msg = fe.Code, fe.Message
		switch code {
		case fiber.StatusRequestEntityTooLarge:
			if msg != fiber.ErrRequestEntityTooLarge.Message {
				break // a body reader's refusal, which names its limit
			}
			msg = fmt.Sprintf("request body is larger than %d bytes (IOC_HTTP_BODY_LIMIT); split it into smaller batches", s.cfg.BodyLimit)
		case fiber.StatusMethodNotAllowed:
			msg = fmt.Sprintf("method %s is not allowed on %s", c.Method(), c.Path())
		}
	default:
		s.logger.Error("request failed", "request_id", id, "method", c.Method(), "route", routePattern(c), "err", err)
	}
	return c.Status(code).JSON(errorBody{Error: msg})
}

// routePattern is the pattern of the route that answered, e.g.
// /api/v1/areas/:code: unlike the path it names no unit, and unlike the
// URL it carries no token.
func routePattern(c *fiber.Ctx) string {
	if r := c.Route(); r != nil {
		return r.Path
	}
	return ""
}

// unavailableWhat names what a route could not reach when storage failed.
func unavailableWhat(route string) string {
	for _, w := range []struct{ prefix, what string }{
		{"/api/v1/devices", "devices are"},
		{"/api/v1/alarms", "alarms are"},
		{"/api/v1/rules", "alarm rules are"},
		{"/api/v1/periods", "periods are"},
		{"/api/v1/scoreboard", "the scoreboard is"},
		{"/api/v1/dashboards", "dashboards are"},
		{"/api/v1/playlists", "playlists are"},
		{"/api/v1/walls", "walls are"},
		{"/api/v1/screens", "screens are"},
	} {
		if strings.HasPrefix(route, w.prefix) {
			return w.what
		}
	}
	return "figures are"
}
