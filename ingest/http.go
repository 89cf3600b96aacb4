package ingest

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/internal/requestid"
)

// ServiceConfig tunes the HTTP side of ingest. Zero fields take the defaults.
type ServiceConfig struct {
	// WaitTimeout bounds how long a request waits for its records to be
	// stored; default 30s.
	WaitTimeout time.Duration
	// MaxErrors bounds the per-record errors listed in a response; default 1000.
	MaxErrors int
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
	// ErrorsOmitted counts refused records beyond MaxErrors.
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
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	s := &Service{
		cfg: cfg, rules: rules, w: w, devices: devices, logger: logger,
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
func (s *Service) Dossiers(c *fiber.Ctx) error {
	ndjson := strings.HasPrefix(string(c.Request().Header.ContentType()), "application/x-ndjson")
	recs, errs, err := decodeRecords[DossierEvent](c.Body(), ndjson)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	now := time.Now()
	rows := make([]Dossier, 0, len(recs))
	index := make([]int, 0, len(recs)) // the record index of each row
	for _, r := range recs {
		d, err := s.rules.Validate(r.value, now)
		if err != nil {
			errs = append(errs, RecordError{Index: r.index, Error: err.Error()})
			continue
		}
		rows = append(rows, d)
		index = append(index, r.index)
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.WaitTimeout)
	defer cancel()
	out, err := s.w.Dossiers.Write(ctx, rows)
	if err != nil {
		s.records.WithLabelValues("dossier", "failed").Add(float64(len(rows)))
		return s.refuse(c, err)
	}
	accepted, errs := s.count("dossier", len(rows), out, index, errs)
	return c.Status(fiber.StatusAccepted).JSON(s.response(accepted, out.Duplicates, errs))
}

// count records what became of a request's rows in the metrics and returns
// how many were taken, with the conflicting resends added to errs at their
// records' indexes.
func (s *Service) count(kind string, rows int, out Outcome, index []int, errs []RecordError) (int, []RecordError) {
	for _, c := range out.Conflicts {
		errs = append(errs, RecordError{Index: index[c.Row], Error: c.Error})
	}
	accepted := rows - len(out.Conflicts)
	s.records.WithLabelValues(kind, "accepted").Add(float64(accepted - out.Duplicates))
	s.records.WithLabelValues(kind, "duplicate").Add(float64(out.Duplicates))
	s.records.WithLabelValues(kind, "conflict").Add(float64(len(out.Conflicts)))
	s.records.WithLabelValues(kind, "rejected").Add(float64(len(errs) - len(out.Conflicts)))
	return accepted, errs
}

// Feedback handles POST /api/v1/ingest/feedback. A resent item replaces
// the stored one, so none counts as a duplicate.
func (s *Service) Feedback(c *fiber.Ctx) error {
	return handle(s, c, stream[FeedbackRecord, Feedback]{kind: "feedback", validate: Rules.ValidateFeedback,
		device: func(Feedback) *device.Device { return nil }, write: s.w.Feedback.Write})
}

func (s *Service) response(accepted, dups int, errs []RecordError) Response {
	// Decode errors come first and validation errors after; clients read them by index.
	slices.SortFunc(errs, func(a, b RecordError) int { return a.Index - b.Index })
	r := Response{Accepted: accepted, Rejected: len(errs), Duplicates: dups, Errors: errs}
	if r.Errors == nil {
		r.Errors = []RecordError{}
	}
	if len(r.Errors) > s.cfg.MaxErrors {
		r.ErrorsOmitted = len(r.Errors) - s.cfg.MaxErrors
		r.Errors = r.Errors[:s.cfg.MaxErrors]
	}
	return r
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
