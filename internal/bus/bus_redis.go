package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

const (
	defaultPrefix = "ioc:"
	// confirmTimeout bounds Subscribe when Redis accepts the connection but
	// does not answer; the caller's ctx is the subscription's lifetime and
	// usually has no deadline.
	confirmTimeout = 10 * time.Second
	// healthInterval is how long a quiet subscription waits before it pings,
	// so that a dead connection is noticed and go-redis redials it.
	healthInterval = 15 * time.Second
	pingTimeout    = 5 * time.Second
	minRetry       = 100 * time.Millisecond
	// maxRetry is short so that a subscription is back, and its gap
	// reported, within a second or so of Redis answering again: screens
	// are resynchronised only then.
	maxRetry = time.Second
	// batchSize bounds the commands of one pipeline.
	batchSize = 500
	// latestKey, under the prefix, is the hash of each topic's latest
	// message.
	latestKey = "latest"
	// streamKey and historyKey, under the prefix and before a stream
	// topic's name, are its numbering and its retained messages.
	streamKey  = "stream:"
	historyKey = "history:"
)

// publishScript publishes a versioned message only if its version is
// greater than the topic's latest, and then keeps it as the latest, in one
// step. Versions are compared byte by byte rather than with Lua's < on
// strings, which follows the server's locale.
//
// KEYS[1] the hash of latest messages; ARGV channel, topic, version, frame.
// Returns 1 once published, else the latest version that refused it.
var publishScript = redis.NewScript(`
local cur = redis.call("HGET", KEYS[1], ARGV[2])
if cur then
	local v = ARGV[3]
	for i = 1, 24 do
		local a, b = string.byte(v, i), string.byte(cur, i)
		if b == nil or a > b then
			break
		end
		if a < b or i == 24 then
			return string.sub(cur, 1, 24)
		end
	end
end
redis.call("HSET", KEYS[1], ARGV[2], ARGV[4])
redis.call("PUBLISH", ARGV[1], ARGV[5] or ARGV[4])
return 1
`)

// ensureEpoch starts a stream topic's numbering with the proposed epoch
// unless it has one; a history left from a lost numbering goes with it.
const ensureEpoch = `
local epoch = redis.call("HGET", KEYS[1], "epoch")
if not epoch then
	epoch = ARGV[2]
	redis.call("DEL", KEYS[2])
	redis.call("HSET", KEYS[1], "epoch", epoch, "offset", 0)
end
`

// streamScript numbers a stream message and publishes it, keeping the last
// ARGV[4] messages of the topic, in one step: offsets follow the order in
// which Redis publishes, whichever node sent the message. The epoch is the
// first one a publisher proposed; it is new whenever Redis lost the
// topic's numbering, so that a reader never takes offsets of two
// numberings for one.
//
// KEYS[1] the topic's numbering (a hash: epoch, offset), KEYS[2] its
// history (a list of frames); ARGV channel, proposed epoch, payload,
// history length. Returns the frame.
var streamScript = redis.NewScript(ensureEpoch + `
local offset = redis.call("HINCRBY", KEYS[1], "offset", 1)
local frame = "#" .. epoch .. ":" .. offset .. " " .. ARGV[3]
redis.call("RPUSH", KEYS[2], frame)
redis.call("LTRIM", KEYS[2], -tonumber(ARGV[4]), -1)
redis.call("PUBLISH", ARGV[1], frame)
return frame
`)

// positionScript returns a stream topic's epoch, making one if the topic
// has none yet, and the offset of its newest message; KEYS and ARGV[2] as
// for streamScript.
var positionScript = redis.NewScript(ensureEpoch + `
return {epoch, redis.call("HGET", KEYS[1], "offset")}
`)

// RedisConfig configures a Redis bus.
type RedisConfig struct {
	Prefix string // channel prefix; zero value means "ioc:"
	// History is how many messages of each stream topic Redis retains;
	// zero means DefaultHistory.
	History int
}

// Redis is a bus over Redis pub/sub, so that several iocd nodes see each
// other's messages. Each subscription holds one Redis connection.
type Redis struct {
	client  *redis.Client
	prefix  string
	pattern string
	history int
	logger  *slog.Logger
	metrics *metrics
}

type metrics struct {
	published       prometheus.Counter
	received        prometheus.Counter
	refused         prometheus.Counter
	gaps            prometheus.Counter
	publishErrors   prometheus.Counter
	publishDuration prometheus.Histogram
}

// NewRedis returns a bus on client, which stays owned by the caller. Metrics
// are registered on reg unless it is nil; buses sharing reg share them.
func NewRedis(client *redis.Client, cfg RedisConfig, logger *slog.Logger, reg prometheus.Registerer) (*Redis, error) {
	if client == nil {
		return nil, errors.New("new redis bus: nil client")
	}
	if logger == nil {
		logger = slog.Default()
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = defaultPrefix
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("new redis bus: %w", err)
	}
	return &Redis{
		client:  client,
		prefix:  prefix,
		pattern: escapeGlob(prefix) + "*",
		history: cmp.Or(max(cfg.History, 0), DefaultHistory),
		logger:  logger,
		metrics: m,
	}, nil
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_bus_messages_published_total",
			Help: "Messages published to the Redis bus.",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_bus_messages_received_total",
			Help: "Messages received from the Redis bus, counted once per subscription.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_bus_messages_refused_total",
			Help: "Messages refused because their topic already had a version at least as new.",
		}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_bus_subscription_gaps_total",
			Help: "Subscriptions restored after a failure, during which messages may have been lost.",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ioc_bus_publish_errors_total",
			Help: "Publishes to the Redis bus that failed.",
		}),
		publishDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ioc_bus_publish_duration_seconds",
			Help:    "Time taken by a publish to the Redis bus, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.published, err = register(reg, m.published)
	if err == nil {
		m.received, err = register(reg, m.received)
	}
	if err == nil {
		m.refused, err = register(reg, m.refused)
	}
	if err == nil {
		m.gaps, err = register(reg, m.gaps)
	}
	if err == nil {
		m.publishErrors, err = register(reg, m.publishErrors)
	}
	if err == nil {
		m.publishDuration, err = register(reg, m.publishDuration)
	}
	return m, err
}

// register returns the collector already registered under c's name, if any,
// so that several buses of one process can share a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("register metrics: %w", err)
	}
	return c, nil
}

// Publish sends the messages, in order, to every subscriber of every node,
// pipelined. A versioned message is sent only if its version is greater
// than its topic's latest, and then kept as the latest; one that is not is
// refused with ErrStale and the others still go out.
func (b *Redis) Publish(ctx context.Context, msgs ...Message) error {
	for _, m := range msgs {
		if err := validate(m); err != nil {
			return err
		}
	}
	start := time.Now()
	var errs []error
	for chunk := range slices.Chunk(msgs, batchSize) {
		if err := b.publish(ctx, chunk); err != nil {
			errs = append(errs, err)
			if !OnlyStale(err) {
				break // Redis failed: the rest would too
			}
		}
	}
	b.metrics.publishDuration.Observe(time.Since(start).Seconds())
	return errors.Join(errs...)
}

func (b *Redis) publish(ctx context.Context, msgs []Message) error {
	if len(msgs) == 1 {
		// Run loads the script if Redis does not know it.
		return b.result(msgs, []redis.Cmder{b.send(ctx, b.client, msgs[0], true)})
	}
	cmds := b.pipeline(ctx, msgs)
	var retry []Message
	for i, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			retry = append(retry, msgs[i])
		}
	}
	if len(retry) > 0 {
		// Redis restarted since the script was loaded; the messages it ran
		// are not sent again.
		for _, script := range []*redis.Script{publishScript, streamScript} {
			if err := script.Load(ctx, b.client).Err(); err != nil {
				b.metrics.publishErrors.Inc()
				return fmt.Errorf("publish to redis: load script: %w", err)
			}
		}
		done := b.result(msgs, cmds)
		return errors.Join(done, b.result(retry, b.pipeline(ctx, retry)))
	}
	return b.result(msgs, cmds)
}

// pipeline sends msgs in one round trip and returns their commands.
func (b *Redis) pipeline(ctx context.Context, msgs []Message) []redis.Cmder {
	cmds := make([]redis.Cmder, len(msgs))
	_, _ = b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range msgs {
			cmds[i] = b.send(ctx, p, m, false)
		}
		return nil
	})
	return cmds
}

// send queues or runs the command that publishes m; with load, a script
// unknown to Redis is loaded (which a pipeline cannot do).
func (b *Redis) send(ctx context.Context, c redis.Cmdable, m Message, load bool) redis.Cmder {
	script, keys, args := publishScript, []string{b.prefix + latestKey}, []any(nil)
	switch {
	case m.Stream:
		script, keys = streamScript, b.streamKeys(m.Topic)
		args = []any{b.prefix + m.Topic, newEpoch(), m.Payload, b.history}
	case m.Version == "":
		return c.Publish(ctx, b.prefix+m.Topic, encodeFrame(m))
	default:
		whole := m
		whole.Base, whole.Delta = "", nil
		args = []any{b.prefix + m.Topic, m.Topic, m.Version, encodeFrame(whole)}
		if m.Base != "" {
			args = append(args, encodeFrame(m))
		}
	}
	if load {
		return script.Run(ctx, c, keys, args...)
	}
	return script.EvalSha(ctx, c, keys, args...)
}

func (b *Redis) streamKeys(topic string) []string {
	return []string{b.prefix + streamKey + topic, b.prefix + historyKey + topic}
}

// result reads the replies to the commands that published msgs, counts
// them, and returns the refusals, or the first failure (Redis failing fails
// them all), skipping scripts Redis did not know.
func (b *Redis) result(msgs []Message, cmds []redis.Cmder) error {
	var errs []error
	for i, c := range cmds {
		m := msgs[i]
		err := c.Err()
		switch {
		case err != nil && redis.HasErrorPrefix(err, "NOSCRIPT"):
		case err != nil:
			b.metrics.publishErrors.Inc()
			return errors.Join(append(errs, fmt.Errorf("publish %s to redis: %w", m.Topic, err))...)
		default:
			if cmd, ok := c.(*redis.Cmd); ok && !m.Stream {
				if cur, ok := cmd.Val().(string); ok {
					b.metrics.refused.Inc()
					errs = append(errs, staleError(m, cur))
					continue
				}
			}
			b.metrics.published.Inc()
		}
	}
	return errors.Join(errs...)
}

// Latest returns the newest message of each of topics that has one.
func (b *Redis) Latest(ctx context.Context, topics []string) (map[string]Message, error) {
	out := make(map[string]Message, len(topics))
	for chunk := range slices.Chunk(topics, 1000) {
		vals, err := b.client.HMGet(ctx, b.prefix+latestKey, chunk...).Result()
		if err != nil {
			return nil, fmt.Errorf("read latest messages from redis: %w", err)
		}
		for i, v := range vals {
			if s, ok := v.(string); ok {
				m := decodeFrame(s)
				m.Topic = chunk[i]
				out[chunk[i]] = m
			}
		}
	}
	return out, nil
}

// History returns the retained messages of a stream topic after offset
// after, and whether they are all that a reader holding every message of
// epoch up to after missed. A topic nobody published to yet is given its
// epoch here, so that a reader can hold a position before its first
// message.
func (b *Redis) History(ctx context.Context, topic, epoch string, after uint64) (History, error) {
	keys := b.streamKeys(topic)
	var pos *redis.Cmd
	var list *redis.StringSliceCmd
	_, err := b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		pos = positionScript.Eval(ctx, p, keys, "", newEpoch())
		list = p.LRange(ctx, keys[1], 0, -1)
		return nil
	})
	if err != nil {
		return History{}, fmt.Errorf("read history of %s from redis: %w", topic, err)
	}
	vals, err := pos.Slice()
	if err != nil || len(vals) != 2 {
		return History{}, fmt.Errorf("read position of %s from redis: %v %w", topic, vals, err)
	}
	h := History{}
	h.Epoch, _ = vals[0].(string)
	last, _ := vals[1].(string)
	if h.Last, err = strconv.ParseUint(last, 10, 64); err != nil {
		return History{}, fmt.Errorf("read position of %s from redis: offset %q: %w", topic, last, err)
	}
	if epoch != h.Epoch {
		after = 0 // a position in another numbering: all of this one is new
	}
	for _, f := range list.Val() {
		m := decodeFrame(f)
		if m.Epoch == h.Epoch && m.Offset > after {
			m.Topic = topic
			h.Messages = append(h.Messages, m)
		}
	}
	h.complete(epoch, after)
	return h, nil
}

// encodeFrame is what goes over Redis: the version (empty on an
// unversioned topic), a space, the payload; with a delta, the version is
// followed by "+", the base, ":", the payload's length, before the space,
// and the delta follows the payload. streamScript frames stream messages.
func encodeFrame(m Message) string {
	b := make([]byte, 0, 2*VersionLen+24+len(m.Payload)+len(m.Delta))
	b = append(b, m.Version...)
	if m.Base != "" {
		b = append(b, '+')
		b = append(b, m.Base...)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(len(m.Payload)), 10)
	}
	b = append(b, ' ')
	b = append(b, m.Payload...)
	return string(append(b, m.Delta...))
}

// decodeFrame reads a frame; anything else is taken as an unversioned
// payload, as nodes before versions published them.
func decodeFrame(s string) Message {
	switch {
	case len(s) > 0 && s[0] == ' ':
		return Message{Payload: []byte(s[1:])}
	case len(s) > 0 && s[0] == '#':
		if m, ok := decodeStreamFrame(s[1:]); ok {
			return m
		}
	case len(s) > VersionLen && s[VersionLen] == ' ' && ValidVersion(s[:VersionLen]):
		return Message{Version: s[:VersionLen], Payload: []byte(s[VersionLen+1:])}
	case len(s) > 2*VersionLen+1 && s[VersionLen] == '+' && ValidVersion(s[:VersionLen]):
		if m, ok := decodeDeltaFrame(s); ok {
			return m
		}
	}
	return Message{Payload: []byte(s)}
}

// decodeStreamFrame reads "epoch:offset payload".
func decodeStreamFrame(s string) (Message, bool) {
	head, payload, ok := strings.Cut(s, " ")
	epoch, off, ok2 := strings.Cut(head, ":")
	offset, err := strconv.ParseUint(off, 10, 64)
	if !ok || !ok2 || epoch == "" || err != nil {
		return Message{}, false
	}
	return Message{Stream: true, Epoch: epoch, Offset: offset, Payload: []byte(payload)}, true
}

// decodeDeltaFrame reads "version+base:length payload delta".
func decodeDeltaFrame(s string) (Message, bool) {
	version, rest := s[:VersionLen], s[VersionLen+1:]
	base, rest := rest[:VersionLen], rest[VersionLen:]
	head, body, ok := strings.Cut(rest, " ")
	if !ok || !ValidVersion(base) || len(head) < 2 || head[0] != ':' {
		return Message{}, false
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n < 0 || n > len(body) {
		return Message{}, false
	}
	return Message{Version: version, Base: base, Payload: []byte(body[:n]), Delta: []byte(body[n:])}, true
}

// Subscribe registers h for every message published on the bus from now on,
// until the subscription is closed or ctx is cancelled. It returns once Redis
// has confirmed the subscription. gap, if not nil, is called on the delivery
// goroutine each time the subscription is restored after a failure: messages
// published meanwhile are lost, and the latest ones can be read with Latest.
// Like h, it must not block.
func (b *Redis) Subscribe(ctx context.Context, h Handler, gap func()) (*Subscription, error) {
	if h == nil {
		return nil, errors.New("subscribe: nil handler")
	}
	ps := b.client.PSubscribe(ctx, b.pattern)
	confirmCtx, cancel := context.WithTimeout(ctx, confirmTimeout)
	reply, err := ps.Receive(confirmCtx)
	cancel()
	if err == nil {
		if s, ok := reply.(*redis.Subscription); !ok || s.Kind != "psubscribe" {
			err = fmt.Errorf("unexpected reply %v", reply)
		}
	}
	if err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("subscribe to redis %s: %w", b.pattern, err)
	}

	stop := make(chan struct{})
	done := make(chan struct{})
	go b.deliver(ps, h, gap, stop, done)
	halt := sync.OnceFunc(func() {
		close(stop)
		// Unblocks the receive in deliver; the error is only about closing
		// a socket that nobody uses any more.
		_ = ps.Close()
	})
	unregister := context.AfterFunc(ctx, halt)
	return newSubscription(func() error {
		unregister()
		halt()
		<-done
		return nil
	}), nil
}

// deliver hands messages to h until stop is closed. go-redis redials and
// resubscribes after a failed receive; deliver only paces the attempts.
func (b *Redis) deliver(ps *redis.PubSub, h Handler, gap func(), stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	retry := minRetry
	for {
		msg, err := ps.ReceiveTimeout(context.Background(), healthInterval)
		if err != nil {
			select {
			case <-stop:
				return
			default:
			}
			if isTimeout(err) {
				ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
				err = ps.Ping(ctx)
				cancel()
				if err == nil {
					continue
				}
			}
			b.logger.Warn("redis bus subscription failed, reconnecting",
				"pattern", b.pattern, "retry_in", retry, "err", err)
			select {
			case <-stop:
				return
			case <-time.After(retry):
			}
			retry = min(2*retry, maxRetry)
			continue
		}
		retry = minRetry
		switch m := msg.(type) {
		case *redis.Message:
			b.metrics.received.Inc()
			msg := decodeFrame(m.Payload)
			msg.Topic = strings.TrimPrefix(m.Channel, b.prefix)
			h(msg)
		case *redis.Subscription:
			// Subscribe consumed the first confirmation, so this one follows
			// a redial; messages published meanwhile are lost.
			b.logger.Warn("redis bus subscription restored; messages published meanwhile are lost", "pattern", b.pattern)
			b.metrics.gaps.Inc()
			if gap != nil {
				gap()
			}
		case *redis.Pong:
		default:
			b.logger.Warn("redis bus: unexpected pubsub reply", "pattern", b.pattern, "reply", fmt.Sprint(msg))
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// escapeGlob makes a prefix match itself only in a PSUBSCRIBE pattern.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
