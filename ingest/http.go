package ingest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/internal/httpbody"
	"github.com/openioc/ioc/internal/requestid"
)

// ServiceConfig tunes the HTTP side of ingest. Zero fields take the defaults.
type ServiceConfig struct {
	// WaitTimeout bounds how long a request waits for its records to be
	// stored; default 30s.
	WaitTimeout time.Duration
	// MaxErrors bounds the per-record errors listed in a response; default
	// 1000. Beyond it refusals are only counted.
	MaxErrors int
	// MaxRecords bounds the records of one request (IOC_INGEST_MAX_RECORDS);
	// default 50,000. A body holding more is refused whole with 413.
	MaxRecords int
	// BodyLimit bounds a request body once its Content-Encoding is undone
	// (IOC_HTTP_BODY_LIMIT); default 16 MiB.
	BodyLimit int
	// Location is the zone of camera-platform times sent without an offset;
	// default UTC.
	Location *time.Location
}

// Writers store each kind of record.
type Writers struct {
	Dossiers *Writer
	Cameras  *RecordWriter[CameraEvent]
	Readings *RecordWriter[Reading]
	Feedback *RecordWriter[Feedback]
}

// DeviceRegistrar registers devices on their first report and finds the
// camera of a platform notification.
type DeviceRegistrar interface {
	Ensure(ctx context.Context, ds []device.Device) error
	MatchCamera(channelName, ip, channel string) (device.Device, bool)
}

// Service answers the ingest endpoints: it decodes and validates each
// record, hands the valid ones to a writer and acknowledges once stored.
type Service struct {
	cfg     ServiceConfig
	bodies  *httpbody.Reader
	rules   Rules
	w       Writers
	devices DeviceRegistrar
	logger  *slog.Logger
	records *prometheus.CounterVec
}

// Response is the body of a 202: what was taken and what was refused.
type Response struct {
	Accepted   int           `json:"accepted"`
	Rejected   int           `json:"rejected"`
	Duplicates int           `json:"duplicates"`
	Errors     []RecordError `json:"errors"`
	// ErrorsOmitted counts refused records beyond MaxErrors: listed are
	// those with the lowest indexes.
	ErrorsOmitted int `json:"errors_omitted,omitempty"`
}

// NewService returns the ingest endpoints over the given writers. Writers
// left nil, and devices when nil, disable their endpoints' kinds.
func NewService(cfg ServiceConfig, rules Rules, w Writers, devices DeviceRegistrar, logger *slog.Logger, reg prometheus.Registerer) *Service {
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 30 * time.Second
	}
	if cfg.MaxErrors <= 0 {
		cfg.MaxErrors = 1000
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 50000
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	s := &Service{
		cfg: cfg, bodies: httpbody.New(httpbody.Config{Limit: int64(cfg.BodyLimit)}), rules: rules, w: w, devices: devices, logger: logger,
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_ingest_records_total",
			Help: "Records received by ingest, by kind and outcome (accepted, duplicate, conflict, rejected, failed).",
		}, []string{"kind", "outcome"}),
	}
	if reg != nil {
		reg.MustRegister(s.records)
	}
	return s
}

// Dossiers handles POST /api/v1/ingest/dossiers.
func (s *Service) Dossiers(c *fiber.Ctx) error { return handle(s, c, s.dossierStream()) }

// Feedback handles POST /api/v1/ingest/feedback. A resent item replaces
// the stored one, so none counts as a duplicate.
func (s *Service) Feedback(c *fiber.Ctx) error { return handle(s, c, s.feedbackStream()) }

func (s *Service) feedbackStream() stream[FeedbackRecord, Feedback] {
	return stream[FeedbackRecord, Feedback]{kind: "feedback", validate: Rules.ValidateFeedback,
		device: func(Feedback) *device.Device { return nil }, write: s.w.Feedback.Write,
		scope: func(f Feedback) (string, string, string) {
			if f.Recorded != nil { // the unit as sent, as for dossiers
				return f.Recorded.Hierarchy, f.Recorded.AreaCode, ""
			}
			return f.Hierarchy, f.AreaCode, ""
		}}
}

// count records what became of a request's rows in the metrics, adds the
// conflicting resends to the refusals at their records' indexes and
// returns how many rows were taken.
func (s *Service) count(kind string, rows int, out Outcome, index []int, refused *refusals) int {
	rejected := refused.total
	for _, c := range out.Conflicts {
		refused.add(RecordError{Index: index[c.Row], Error: c.Error, Problems: []string{c.Error}})
	}
	accepted := rows - len(out.Conflicts)
	s.records.WithLabelValues(kind, "accepted").Add(float64(accepted - out.Duplicates))
	s.records.WithLabelValues(kind, "duplicate").Add(float64(out.Duplicates))
	s.records.WithLabelValues(kind, "conflict").Add(float64(len(out.Conflicts)))
	s.records.WithLabelValues(kind, "rejected").Add(float64(rejected))
	return accepted
}

func (s *Service) response(o outcome, refused *refusals) Response {
	r := Response{Accepted: o.accepted, Rejected: refused.total, Duplicates: o.duplicates,
		Errors: refused.list(), ErrorsOmitted: refused.omitted()}
	if r.Errors == nil {
		r.Errors = []RecordError{}
	}
	return r
}

// refuseBody answers a body that could not be read to its end. What is
// left of it is drained first, so that a body over the size limit is
// refused as such, whatever its first bytes are.
func (s *Service) refuseBody(body *httpbody.Body, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return fe
	}
	if derr := body.Drain(); derr != nil {
		return derr
	}
	var many *TooManyRecordsError
	if errors.As(err, &many) {
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, err.Error())
	}
	return fiber.NewError(fiber.StatusBadRequest, err.Error())
}

// refuse answers a request none of whose records were acknowledged.
func (s *Service) refuse(c *fiber.Ctx, err error) error {
	var full *QueueFullError
	var store *StoreError
	switch {
	case errors.As(err, &full):
		c.Set(fiber.HeaderRetryAfter, "1")
		return fiber.NewError(fiber.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrClosed):
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
	case errors.Is(err, context.DeadlineExceeded):
		c.Set(fiber.HeaderRetryAfter, "5")
		return fiber.NewError(fiber.StatusServiceUnavailable,
			"records were not stored within "+s.cfg.WaitTimeout.String()+"; retry the same request (ids already stored are skipped)")
	default:
		id := requestid.Get(c)
		s.logger.Warn("records not stored", "request_id", id, "err", err)
		c.Set(fiber.HeaderRetryAfter, "5")
		return fiber.NewError(fiber.StatusServiceUnavailable,
			"records could not be stored right now, nothing from this request was acknowledged; retry the same request (ids already stored are skipped); request id "+id)
	}
}
