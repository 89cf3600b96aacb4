package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/device"
)

// Topics the subscriber takes records from; + is the device id.
const (
	SensorReadingsTopic = "ioc/sensors/+/readings"
	CameraEventsTopic   = "ioc/cameras/+/events"
)

// Streams, as metric labels; "other" is a topic of neither shape.
const (
	streamSensors = "sensors"
	streamCameras = "cameras"
	streamOther   = "other"
)

// MQTTConfig configures the MQTT subscriber. Zero fields take the
// documented defaults.
type MQTTConfig struct {
	// URL is the broker, as tcp://host:port (also ssl://, ws://); required.
	URL string
	// ClientID defaults to "iocd-<hostname>". It must be stable across
	// restarts, because the broker keeps the session, and the messages not
	// yet acknowledged, under it.
	ClientID string
	Username string
	Password string
	// SharedGroup, when set, subscribes as $share/<group>/<topic> so that
	// several nodes split the stream.
	SharedGroup string
	// MaxPayload bounds a message in bytes; default 256 KiB. Larger
	// messages are refused (counted, logged and acknowledged).
	MaxPayload int
	// MaxInflight bounds the messages being stored at once; default 1000.
	MaxInflight int
	// RetryMin and RetryMax bound the wait before reconnecting after a
	// storage failure or a lost connection; it doubles from RetryMin up to
	// RetryMax and starts over once a message is stored (or a session lasted
	// longer than RetryMax). Defaults 1s and 30s.
	RetryMin time.Duration
	RetryMax time.Duration
}

func (c MQTTConfig) withDefaults() MQTTConfig {
	if c.ClientID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "unknown"
		}
		c.ClientID = "iocd-" + host
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = 256 << 10
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 1000
	}
	if c.RetryMin <= 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	return c
}

// MQTTSink stores decoded records. A nil error means every record that
// passed validation is durable; errs lists the records refused by
// validation, by index in the slice passed. A non-nil error means nothing
// was acknowledged (storage unavailable): the message must be delivered
// again. The sink must return once ctx ends.
type MQTTSink interface {
	StoreReadings(ctx context.Context, recs []SensorReadingWire) (errs []RecordError, err error)
	StoreCameraEvents(ctx context.Context, recs []CameraEventWire) (errs []RecordError, err error)
}

// MQTT subscribes with QoS 1 to the sensor and camera topics under a
// persistent session and acknowledges a message only once the sink has
// stored it (or it is invalid, so that it does not come back forever). When
// the sink fails it drops the connection and reconnects after a backoff: the
// broker then delivers the unacknowledged messages again.
//
// Concurrency: Run owns the connections and every handler. The MQTT client
// calls each message's handler in a goroutine of its own; at most
// MaxInflight of them work at once (the rest wait for a slot), and Run
// waits for all of them before it returns. A handler still running when its
// connection is dropped leaves its message unacknowledged; the broker
// redelivers it and storage deduplicates it by event id. Run may be called
// once; Connected is safe from any goroutine.
type MQTT struct {
	cfg       MQTTConfig
	sink      MQTTSink
	logger    *slog.Logger
	met       *mqttMetrics
	sem       chan struct{} // a slot per running handler
	connected atomic.Bool
	ran       atomic.Bool

	mu       sync.Mutex // guards closing against handlers.Add after Wait began
	closing  bool
	handlers sync.WaitGroup
}

// disconnectQuiesce is how long a disconnect waits for acknowledgements
// already queued to reach the broker.
const disconnectQuiesce = 250 // ms

// ackFenceTopic is the filter a clean shutdown unsubscribes from to learn
// that its acknowledgements reached the broker; nothing subscribes to it.
const ackFenceTopic = "ioc/internal/ack-fence"

// ackFenceTimeout bounds that wait, for a broker that does not answer.
const ackFenceTimeout = 2 * time.Second

// NewMQTT returns a subscriber that hands records to sink. logger may be
// nil (slog.Default), and so may reg (no metrics registered).
func NewMQTT(cfg MQTTConfig, sink MQTTSink, logger *slog.Logger, reg prometheus.Registerer) (*MQTT, error) {
	if sink == nil {
		return nil, errors.New("new mqtt subscriber: a sink is required")
	}
	if cfg.URL == "" {
		return nil, errors.New("new mqtt subscriber: a broker URL (tcp://host:port) is required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("new mqtt subscriber: parse broker URL: %w", err)
	}
	if u.Host == "" || !slices.Contains([]string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}, u.Scheme) {
		return nil, fmt.Errorf("new mqtt subscriber: broker URL %q is not like tcp://host:port", cfg.URL)
	}
	if cfg.SharedGroup != "" && strings.ContainsAny(cfg.SharedGroup, "/+#") {
		return nil, fmt.Errorf("new mqtt subscriber: shared group %q contains / + or #", cfg.SharedGroup)
	}
	if logger == nil {
		logger = slog.Default()
	}
	cfg = cfg.withDefaults()
	met, err := newMQTTMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("new mqtt subscriber: %w", err)
	}
	return &MQTT{cfg: cfg, sink: sink, logger: logger.With("client_id", cfg.ClientID), met: met,
		sem: make(chan struct{}, cfg.MaxInflight)}, nil
}

// Connected reports whether the subscriber is connected and subscribed.
func (m *MQTT) Connected() bool { return m.connected.Load() }

// Run connects, subscribes and stores messages until ctx ends; it
// reconnects after a lost connection or a storage failure. It returns nil
// once ctx ends, after its handlers have finished and it has disconnected.
func (m *MQTT) Run(ctx context.Context) error {
	if !m.ran.CompareAndSwap(false, true) {
		return errors.New("run mqtt subscriber: already run")
	}
	defer m.drain()
	backoff := m.cfg.RetryMin
	for {
		s, err := m.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			m.logger.Warn("mqtt session not established", "url", m.cfg.URL, "retry_in", backoff, "err", err)
		} else {
			m.setConnected(true)
			up := time.Now()
			m.logger.Info("mqtt subscribed", "url", m.cfg.URL, "topics", m.filters())
			select {
			case <-ctx.Done():
				// Handlers finish (or give up) first, so that their
				// acknowledgements go out before the DISCONNECT.
				m.drain()
				m.setConnected(false)
				s.fence()
				s.client.Disconnect(disconnectQuiesce)
				return nil
			case <-s.lost:
			}
			m.setConnected(false)
			s.client.Disconnect(disconnectQuiesce)
			// A session that stored something, or lasted, was a success: a
			// later failure is a new one, not the same one again.
			if s.stored.Load() || time.Since(up) > m.cfg.RetryMax {
				backoff = m.cfg.RetryMin
			}
			m.logger.Warn("mqtt session ended; reconnecting", "reason", s.why, "retry_in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, m.cfg.RetryMax)
	}
}

// session is one connection. It ends (lost is closed) when the connection
// drops or a message could not be stored.
type session struct {
	client paho.Client
	lost   chan struct{}
	once   sync.Once
	why    error       // read after lost is closed
	stored atomic.Bool // a message was stored: the backoff starts over
}

// fence returns once the broker has processed every acknowledgement sent
// so far, or after ackFenceTimeout. A broker handles a connection's packets
// in order, so the answer to an UNSUBSCRIBE (of a filter nobody uses)
// proves the PUBACKs before it were taken. Without it, acknowledgements
// queued just before a DISCONNECT were sometimes lost with the connection,
// and the broker delivered those messages again after a restart.
func (s *session) fence() {
	tok := s.client.Unsubscribe(ackFenceTopic)
	t := time.NewTimer(ackFenceTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
	case <-t.C:
	}
}

func (s *session) end(why error) {
	s.once.Do(func() {
		s.why = why
		close(s.lost)
	})
}

func (m *MQTT) filters() []string {
	fs := []string{SensorReadingsTopic, CameraEventsTopic}
	if m.cfg.SharedGroup != "" {
		for i, f := range fs {
			fs[i] = "$share/" + m.cfg.SharedGroup + "/" + f
		}
	}
	return fs
}

// connect opens a session with a new client: an old client's late
// acknowledgements then go nowhere rather than onto the new connection.
func (m *MQTT) connect(ctx context.Context) (*session, error) {
	s := &session{lost: make(chan struct{})}
	opts := paho.NewClientOptions().
		AddBroker(m.cfg.URL).
		SetClientID(m.cfg.ClientID).
		SetCleanSession(false).
		SetAutoReconnect(false). // Run reconnects, with its own backoff
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetOrderMatters(false).
		SetAutoAckDisabled(true).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).
		// The broker resends a session's unacknowledged messages right
		// after CONNACK, before SUBSCRIBE registers any route: the
		// default handler takes every message, whatever the topic.
		SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) { m.deliver(ctx, s, msg) }).
		SetConnectionLostHandler(func(_ paho.Client, err error) { s.end(fmt.Errorf("connection lost: %w", err)) })
	if m.cfg.Username != "" {
		opts.SetUsername(m.cfg.Username)
	}
	if m.cfg.Password != "" {
		opts.SetPassword(m.cfg.Password)
	}
	s.client = paho.NewClient(opts)
	if err := waitToken(ctx, s, s.client.Connect()); err != nil {
		s.client.Disconnect(disconnectQuiesce)
		return nil, fmt.Errorf("connect to %s: %w", m.cfg.URL, err)
	}
	filters := map[string]byte{}
	for _, f := range m.filters() {
		filters[f] = 1
	}
	tok := s.client.SubscribeMultiple(filters, nil)
	if err := waitToken(ctx, s, tok); err != nil {
		s.client.Disconnect(disconnectQuiesce)
		return nil, fmt.Errorf("subscribe to %s: %w", strings.Join(m.filters(), ", "), err)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code > 2 {
				s.client.Disconnect(disconnectQuiesce)
				return nil, fmt.Errorf("subscribe to %s: the broker refused it (code %#x)", f, code)
			}
		}
	}
	return s, nil
}

func waitToken(ctx context.Context, s *session, tok paho.Token) error {
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-s.lost:
		return s.why
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("no answer from the broker")
	}
}

func (m *MQTT) setConnected(up bool) {
	m.connected.Store(up)
	if up {
		m.met.connected.Set(1)
	} else {
		m.met.connected.Set(0)
	}
}

// enter registers a handler unless Run is over.
func (m *MQTT) enter() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return false
	}
	m.handlers.Add(1)
	return true
}

// drain refuses new handlers and waits for the running ones.
func (m *MQTT) drain() {
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	m.handlers.Wait()
}

// deliver runs in the MQTT client's goroutine for msg. A message it gives
// up on is left unacknowledged, and so comes again.
func (m *MQTT) deliver(ctx context.Context, s *session, msg paho.Message) {
	if !m.enter() {
		return
	}
	defer m.handlers.Done()
	select {
	case m.sem <- struct{}{}:
	case <-s.lost:
		return
	case <-ctx.Done():
		return
	}
	m.met.inflight.Inc()
	defer func() {
		m.met.inflight.Dec()
		<-m.sem
	}()
	m.handle(ctx, s, msg)
}

func (m *MQTT) handle(ctx context.Context, s *session, msg paho.Message) {
	topic, payload := msg.Topic(), msg.Payload()
	b, err := decodeMQTTBatch(topic, payload, m.cfg.MaxPayload)
	if msg.Duplicate() {
		m.met.redelivered.WithLabelValues(b.stream).Inc()
	}
	if err != nil {
		m.logger.Warn("mqtt message refused", "topic", topic, "bytes", len(payload), "err", err)
		m.met.messages.WithLabelValues(b.stream, "invalid").Inc()
		ack(s, msg)
		return
	}
	errs := b.errs
	if len(b.pos) > 0 {
		serrs, err := m.store(ctx, b)
		if err != nil {
			if ctx.Err() != nil {
				return // shutting down: the broker delivers it again after the restart
			}
			m.met.messages.WithLabelValues(b.stream, "store_failed").Inc()
			m.logger.Error("mqtt message not stored; reconnecting so that the broker delivers it again",
				"topic", topic, "records", len(b.pos), "err", err)
			s.end(fmt.Errorf("store a message of %s: %w", topic, err))
			return
		}
		s.stored.Store(true)
		for _, e := range serrs {
			if e.Index >= 0 && e.Index < len(b.pos) {
				e.Index = b.pos[e.Index]
				errs = append(errs, e)
			}
		}
		slices.SortFunc(errs, func(a, b RecordError) int { return a.Index - b.Index })
	}
	result := "stored"
	if len(errs) > 0 {
		m.met.rejected.WithLabelValues(b.stream).Add(float64(len(errs)))
		result = "partly_rejected"
		if len(errs) >= b.total {
			result = "rejected"
		}
		m.logger.Warn("mqtt records refused", "topic", topic, "refused", len(errs), "records", b.total,
			"first_index", errs[0].Index, "first_error", errs[0].Error)
	}
	m.met.messages.WithLabelValues(b.stream, result).Inc()
	ack(s, msg)
}

// ack acknowledges msg, or gives up once its session has ended. paho's
// Ack hands the PUBACK to the connection's writer while holding a lock of
// the session's router; a writer stopped by the connection's loss never
// takes it, and the router, ending, waits for that lock: the Ack waits for
// ever, and so would drain, and Run with it (seen once in make test, at a
// broker restart). A message whose acknowledgement is lost with its
// connection comes again, as any unacknowledged one does, and is counted
// once. The goroutine left waiting in paho is that session's, which is
// over.
func ack(s *session, msg paho.Message) {
	done := make(chan struct{})
	go func() {
		msg.Ack()
		close(done)
	}()
	select {
	case <-done:
	case <-s.lost:
	}
}

// store calls the sink; a panic there counts as a storage failure, so the
// message is kept for later rather than lost or taking the process down.
func (m *MQTT) store(ctx context.Context, b mqttBatch) (errs []RecordError, err error) {
	defer func() {
		if r := recover(); r != nil {
			m.logger.Error("mqtt sink panicked", "stream", b.stream, "panic", r, "stack", string(debug.Stack()))
			errs, err = nil, fmt.Errorf("sink panicked: %v", r)
		}
	}()
	if b.stream == streamSensors {
		return m.sink.StoreReadings(ctx, b.readings)
	}
	return m.sink.StoreCameraEvents(ctx, b.events)
}

// mqttBatch is a decoded message: the records to store, in order, with
// their positions in the message, and the records refused.
type mqttBatch struct {
	stream   string
	readings []SensorReadingWire
	events   []CameraEventWire
	pos      []int         // message index of each record to store
	errs     []RecordError // by message index
	total    int           // records in the message
}

// decodeMQTT decodes a message of topic: a JSON object, a JSON array or
// NDJSON. The device id in the topic fills the record's own when that is
// left out; a record naming another device is refused. err means the
// message is invalid as a whole: too large, unparseable, or on a topic of
// neither shape.
func decodeMQTT(topic string, payload []byte, maxPayload int) (readings []SensorReadingWire, events []CameraEventWire, errs []RecordError, err error) {
	b, err := decodeMQTTBatch(topic, payload, maxPayload)
	if err != nil {
		return nil, nil, nil, err
	}
	return b.readings, b.events, b.errs, nil
}

func decodeMQTTBatch(topic string, payload []byte, maxPayload int) (mqttBatch, error) {
	stream, id, err := parseTopic(topic)
	b := mqttBatch{stream: stream}
	if err != nil {
		return b, err
	}
	if len(payload) > maxPayload {
		return b, fmt.Errorf("payload is %d bytes; the limit is %d (split it into several messages)", len(payload), maxPayload)
	}
	switch stream {
	case streamSensors:
		b.readings, b.pos, b.errs, b.total, err = decodeForDevice(payload, id, "sensor_id", func(r *SensorReadingWire) *string { return &r.SensorID })
	default:
		b.events, b.pos, b.errs, b.total, err = decodeForDevice(payload, id, "camera_id", func(e *CameraEventWire) *string { return &e.CameraID })
	}
	return b, err
}

// parseTopic splits ioc/sensors/{id}/readings or ioc/cameras/{id}/events.
func parseTopic(topic string) (stream, id string, err error) {
	parts := strings.Split(topic, "/")
	stream = streamOther
	if len(parts) >= 2 && parts[0] == "ioc" && (parts[1] == streamSensors || parts[1] == streamCameras) {
		stream = parts[1]
	}
	want := map[string]string{streamSensors: "readings", streamCameras: "events"}[stream]
	if len(parts) != 4 || want == "" || parts[3] != want {
		return stream, "", fmt.Errorf("topic %q is neither ioc/sensors/{id}/readings nor ioc/cameras/{id}/events", topic)
	}
	if err := device.CheckID(parts[2]); err != nil {
		return stream, "", fmt.Errorf("topic %q: %w", topic, err)
	}
	return stream, parts[2], nil
}

func decodeForDevice[T any](payload []byte, id, field string, idOf func(*T) *string) (recs []T, pos []int, errs []RecordError, total int, err error) {
	body := bytes.TrimSpace(payload)
	if len(body) > 0 && body[0] == '{' && json.Valid(body) {
		// One object, perhaps spread over lines, which NDJSON would split.
		body = append(append([]byte{'['}, body...), ']')
	}
	ds, errs, err := decodeRecords[T](body, false)
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("decode payload: %w", err)
	}
	total = len(ds) + len(errs)
	if total == 0 {
		return nil, nil, nil, 0, errors.New("decode payload: it holds no records")
	}
	for _, d := range ds {
		v := d.value
		switch p := idOf(&v); *p {
		case "":
			*p = id
		case id:
		default:
			errs = append(errs, recordError(d.index,
				fmt.Errorf("%s %q differs from the topic's device %q; leave it out or publish to that device's topic", field, *p, id)))
			continue
		}
		recs = append(recs, v)
		pos = append(pos, d.index)
	}
	slices.SortFunc(errs, func(a, b RecordError) int { return a.Index - b.Index })
	return recs, pos, errs, total, nil
}

type mqttMetrics struct {
	messages    *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	redelivered *prometheus.CounterVec
	inflight    prometheus.Gauge
	connected   prometheus.Gauge
}

func newMQTTMetrics(reg prometheus.Registerer) (*mqttMetrics, error) {
	m := &mqttMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_mqtt_messages_total",
			Help: "MQTT messages handled, by stream and outcome (stored, partly_rejected, rejected, invalid, store_failed)."},
			[]string{"stream", "outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_mqtt_records_rejected_total", Help: "Records of MQTT messages refused by decoding or validation."},
			[]string{"stream"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ioc_mqtt_redelivered_total", Help: "MQTT messages the broker delivered again (DUP flag set)."},
			[]string{"stream"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ioc_mqtt_inflight_messages", Help: "MQTT messages being stored."}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ioc_mqtt_connected", Help: "1 while the MQTT subscriber is connected and subscribed."}),
	}
	// Every series exists from the start, so that rates and alerts see 0.
	for _, s := range []string{streamSensors, streamCameras} {
		for _, o := range []string{"stored", "partly_rejected", "rejected", "invalid", "store_failed"} {
			m.messages.WithLabelValues(s, o)
		}
		m.rejected.WithLabelValues(s)
		m.redelivered.WithLabelValues(s)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.messages, m.rejected, m.redelivered, m.inflight, m.connected} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register mqtt metrics: %w", err)
			}
		}
	}
	return m, nil
}
