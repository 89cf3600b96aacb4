package ingest

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/device"
)

// PipelineConfig tunes the pipeline. Zero fields take the defaults.
type PipelineConfig struct {
	// WaitTimeout bounds how long a request waits for its records to be
	// stored; default 30s.
	WaitTimeout time.Duration
	// MaxErrors bounds the per-record errors listed in a response; default
	// 1000. Beyond it refusals are only counted.
	MaxErrors int
	// MaxRecords bounds the records of one request (IOC_INGEST_MAX_RECORDS);
	// default 50,000. A body holding more is refused whole.
	MaxRecords int
	// Location is the zone of camera-platform times sent without an offset;
	// default UTC.
	Location *time.Location
}

// Writers store each kind of record: a writer each, or on a cluster a
// Shards each.
type Writers struct {
	Dossiers Sink[Dossier]
	Cameras  Sink[CameraEvent]
	Readings Sink[Reading]
	Feedback Sink[Feedback]
}

// Sink stores rows and returns once they are in ClickHouse, with what
// became of each.
type Sink[T any] interface {
	Write(ctx context.Context, rows []T) (Outcome, error)
}

// DeviceRegistrar registers devices on their first report and finds the
// camera of a platform notification.
type DeviceRegistrar interface {
	Ensure(ctx context.Context, ds []device.Device) error
	MatchCamera(channelName, ip, channel string) (device.Device, bool)
}

// Pipeline takes a request's records in: it decodes and validates each
// record, hands the valid ones to a writer and returns once they are
// stored, with what became of each. It knows nothing of the protocol the
// records came by: the HTTP routes (package api), MQTT and imports each
// answer its outcome and errors in their own terms.
type Pipeline struct {
	cfg     PipelineConfig
	rules   Rules
	w       Writers
	devices DeviceRegistrar
	records *prometheus.CounterVec
}

// Response is the outcome of a request some of whose records may have been
// taken: what was taken and what was refused. Its JSON is the document
// senders are answered with.
type Response struct {
	Accepted   int           `json:"accepted"`
	Rejected   int           `json:"rejected"`
	Duplicates int           `json:"duplicates"`
	Errors     []RecordError `json:"errors"`
	// ErrorsOmitted counts refused records beyond MaxErrors: listed are
	// those with the lowest indexes.
	ErrorsOmitted int `json:"errors_omitted,omitempty"`
}

// NewPipeline returns the pipeline over the given writers. Writers left
// nil, and devices when nil, disable their kinds.
func NewPipeline(cfg PipelineConfig, rules Rules, w Writers, devices DeviceRegistrar, reg prometheus.Registerer) *Pipeline {
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
	p := &Pipeline{
		cfg: cfg, rules: rules, w: w, devices: devices,
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_ingest_records_total",
			Help: "Records received by ingest, by kind and outcome (accepted, duplicate, conflict, rejected, failed).",
		}, []string{"kind", "outcome"}),
	}
	if reg != nil {
		reg.MustRegister(p.records)
	}
	return p
}

// Dossiers takes the dossier events of body (POST /api/v1/ingest/dossiers),
// a JSON array or NDJSON (ndjson: declared so by the sender).
func (p *Pipeline) Dossiers(ctx context.Context, body io.Reader, ndjson bool) (Response, error) {
	return take(ctx, p, p.dossierStream(), body, ndjson)
}

// Feedback takes the feedback items of body (POST
// /api/v1/ingest/feedback). A resent item replaces the stored one, so none
// counts as a duplicate.
func (p *Pipeline) Feedback(ctx context.Context, body io.Reader, ndjson bool) (Response, error) {
	return take(ctx, p, p.feedbackStream(), body, ndjson)
}

func (p *Pipeline) feedbackStream() stream[FeedbackRecord, Feedback] {
	return stream[FeedbackRecord, Feedback]{kind: "feedback", validate: Rules.ValidateFeedback,
		device: func(Feedback) *device.Device { return nil }, write: p.w.Feedback.Write,
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
func (p *Pipeline) count(kind string, rows int, out Outcome, index []int, refused *refusals) int {
	rejected := refused.total
	for _, c := range out.Conflicts {
		refused.add(RecordError{Index: index[c.Row], Error: c.Error, Problems: []string{c.Error}})
	}
	accepted := rows - len(out.Conflicts)
	p.records.WithLabelValues(kind, "accepted").Add(float64(accepted - out.Duplicates))
	p.records.WithLabelValues(kind, "duplicate").Add(float64(out.Duplicates))
	p.records.WithLabelValues(kind, "conflict").Add(float64(len(out.Conflicts)))
	p.records.WithLabelValues(kind, "rejected").Add(float64(rejected))
	return accepted
}

func (p *Pipeline) response(o outcome, refused *refusals) Response {
	r := Response{Accepted: o.accepted, Rejected: refused.total, Duplicates: o.duplicates,
		Errors: refused.list(), ErrorsOmitted: refused.omitted()}
	if r.Errors == nil {
		r.Errors = []RecordError{}
	}
	return r
}

// unstored is the error of a request none of whose records was
// acknowledged: a wait that ran out says how long it was.
func (p *Pipeline) unstored(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &TimeoutError{Wait: p.cfg.WaitTimeout, Err: err}
	}
	return err
}
