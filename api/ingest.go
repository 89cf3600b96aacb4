package api

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/httpbody"
	"github.com/openioc/ioc/internal/requestid"
)

// Ingest is what the routes under /api/v1/ingest/ need of the ingest
// pipeline (ingest.Pipeline): each takes a request's decoded body in the
// context the route's credentials scope (ingest.WithScope), and returns
// what became of its records or the typed error that refuses it whole.
type Ingest interface {
	Dossiers(ctx context.Context, body io.Reader, ndjson bool) (ingest.Response, error)
	CameraEvents(ctx context.Context, body io.Reader, ndjson bool) (ingest.Response, error)
	SensorReadings(ctx context.Context, body io.Reader, ndjson bool) (ingest.Response, error)
	Feedback(ctx context.Context, body io.Reader, ndjson bool) (ingest.Response, error)
	NGSILD(ctx context.Context, raw []byte) (ingest.Response, error)
	CameraXML(ctx context.Context, raw []byte, contentType string) (ingest.Response, error)
}

// ingestRoutes are the handlers of the routes under /api/v1/ingest/, by the
// last element of their path.
func (s *Server) ingestRoutes() []struct {
	name string
	h    fiber.Handler
} {
	in := s.d.Ingest
	return []struct {
		name string
		h    fiber.Handler
	}{
		{"dossiers", s.ingestRecords(in.Dossiers)},
		{"camera-events", s.ingestRecords(in.CameraEvents)},
		{"sensor-readings", s.ingestRecords(in.SensorReadings)},
		{"feedback", s.ingestRecords(in.Feedback)},
		{"ngsi-ld", s.ingestNGSILD},
		{"camera-xml", s.ingestCameraXML},
	}
}

// ingestRecords answers a JSON or NDJSON body of records: it is streamed to
// the pipeline as it is decompressed, never held whole, and answered 202
// with what became of each record once the valid ones are stored.
func (s *Server) ingestRecords(take func(context.Context, io.Reader, bool) (ingest.Response, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ndjson := strings.HasPrefix(string(c.Request().Header.ContentType()), "application/x-ndjson")
		body, err := s.bodies.Open(c)
		if err != nil {
			return err
		}
		r, err := take(c.UserContext(), body, ndjson)
		if err != nil {
			return s.refuseIngest(c, body, err)
		}
		return c.Status(fiber.StatusAccepted).JSON(r)
	}
}

// ingestRefusal is the body of a 422 for an NGSI-LD notification nothing
// of which was taken: the reason, with each entity's problems.
type ingestRefusal struct {
	Error string `json:"error"`
	ingest.Response
}

// ingestNGSILD answers POST /api/v1/ingest/ngsi-ld. A notification none of
// whose readings was taken is refused with 422 and every entity's
// problems, so that the context broker records it as failed instead of
// delivered.
func (s *Server) ingestNGSILD(c *fiber.Ctx) error {
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	r, err := s.d.Ingest.NGSILD(c.UserContext(), raw)
	var refused *ingest.RefusedError
	if errors.As(err, &refused) {
		return c.Status(fiber.StatusUnprocessableEntity).JSON(ingestRefusal{Error: refused.Reason, Response: refused.Response})
	}
	if err != nil {
		return s.refuseIngest(c, nil, err)
	}
	return c.Status(fiber.StatusAccepted).JSON(r)
}

// ingestCameraXML answers POST /api/v1/ingest/camera-xml: one
// camera-platform alert. A platform only reads the status, so an alert
// that cannot be stored is refused with 422 rather than listed in a 202.
func (s *Server) ingestCameraXML(c *fiber.Ctx) error {
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	r, err := s.d.Ingest.CameraXML(c.UserContext(), raw, string(c.Request().Header.ContentType()))
	if err != nil {
		return s.refuseIngest(c, nil, err)
	}
	return c.Status(fiber.StatusAccepted).JSON(r)
}

// refuseIngest answers a request of which nothing was acknowledged. body,
// when the records were streamed from it, is drained before a refusal of
// what it holds, so that a body over the size limit is refused as such,
// whatever its first bytes are.
func (s *Server) refuseIngest(c *fiber.Ctx, body *httpbody.Body, err error) error {
	var bad *ingest.BodyError
	var scope *ingest.OutOfScopeError
	var refused *ingest.RefusedError
	switch {
	case errors.As(err, &bad):
		var fe *fiber.Error // the body's own refusal, as httpbody words it
		if errors.As(bad.Err, &fe) {
			return fe
		}
		if body != nil {
			if derr := body.Drain(); derr != nil {
				return derr
			}
		}
		var many *ingest.TooManyRecordsError
		if errors.As(bad.Err, &many) {
			return fiber.NewError(fiber.StatusRequestEntityTooLarge, bad.Error())
		}
		return fiber.NewError(fiber.StatusBadRequest, bad.Error())
	case errors.As(err, &scope):
		return fiber.NewError(fiber.StatusForbidden, scope.Error())
	case errors.As(err, &refused):
		return fiber.NewError(fiber.StatusUnprocessableEntity, refused.Reason)
	}
	return s.unstored(c, err)
}

// unstored answers a request whose records could not be stored: 503, and
// when to retry it.
func (s *Server) unstored(c *fiber.Ctx, err error) error {
	var full *ingest.QueueFullError
	var store *ingest.StoreError
	var timeout *ingest.TimeoutError
	switch {
	case errors.As(err, &full):
		c.Set(fiber.HeaderRetryAfter, "1")
		return fiber.NewError(fiber.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ingest.ErrClosed):
		c.Set(fiber.HeaderRetryAfter, "5")
		return fiber.NewError(fiber.StatusServiceUnavailable, err.Error())
	case errors.As(err, &store):
		// The storage's own text (queries, addresses) stays in the log,
		// under the id the client is given.
		id := requestid.Get(c)
		s.logger.Warn("records not stored", "request_id", id, "err", store.Err)
		c.Set(fiber.HeaderRetryAfter, "5")
		return fiber.NewError(fiber.StatusServiceUnavailable,
			"storage is unavailable, nothing from this request was acknowledged; retry the same request (ids already stored are skipped); request id "+id)
	case errors.As(err, &timeout):
		c.Set(fiber.HeaderRetryAfter, "5")
		return fiber.NewError(fiber.StatusServiceUnavailable, timeout.Error())
	default:
		id := requestid.Get(c)
		s.logger.Warn("records not stored", "request_id", id, "err", err)
		c.Set(fiber.HeaderRetryAfter, "5")
		return fiber.NewError(fiber.StatusServiceUnavailable,
			"records could not be stored right now, nothing from this request was acknowledged; retry the same request (ids already stored are skipped); request id "+id)
	}
}
