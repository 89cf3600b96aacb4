package lease

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	defaultPrefix  = "ioc:"
	minBackoff     = 5 * time.Millisecond
	maxBackoff     = 100 * time.Millisecond
	releaseTimeout = 2 * time.Second
	// abandonTimeout is short because the caller of a failed Acquire waits.
	abandonTimeout = time.Second
)

// acquireScript takes the lease if it is free and hands out the next token,
// with the one before it: one more than the last, and never less than
// Redis's clock in milliseconds, so that tokens keep growing after Redis
// restarts empty. Tokens are returned as strings: Lua numbers are doubles.
var acquireScript = redis.NewScript(`
if not redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
	return {"0", "0"}
end
local prev = redis.call("GET", KEYS[2]) or "0"
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call("INCR", KEYS[2])
if n < now then
	redis.call("SET", KEYS[2], now)
	n = now
end
return {string.format("%d", n), prev}
`)

// renewScript extends the lease only while it holds our holder id.
var renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes the lease only while it holds our holder id, so that
// a holder whose lease lapsed cannot release the next holder's.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0
`)

// RedisConfig configures Redis leases. Zero fields take the defaults.
type RedisConfig struct {
	// Prefix starts every key, as IOC_REDIS_PREFIX does for the bus;
	// default "ioc:". A lease is "<prefix>lease:<name>" and its token
	// counter "<prefix>lease-token:<name>".
	Prefix string
	// TTL is how long a lease lives without renewal; default DefaultTTL.
	TTL time.Duration
}

// Redis is a set of leases shared by every node using the same Redis.
type Redis struct {
	client redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewRedis returns leases on client, which stays owned by the caller.
func NewRedis(client redis.UniversalClient, cfg RedisConfig) *Redis {
	if cfg.Prefix == "" {
		cfg.Prefix = defaultPrefix
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	return &Redis{client: client, prefix: cfg.Prefix, ttl: cfg.TTL}
}

// TTL is how long a lease lives without renewal.
func (r *Redis) TTL() time.Duration { return r.ttl }

// Acquire waits until the lease called name is free or ctx is done. A Redis
// error ends the wait at once: the caller cannot act on a lease it cannot
// renew.
func (r *Redis) Acquire(ctx context.Context, name string) (*Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	key, counter := r.prefix+"lease:"+name, r.prefix+"lease-token:"+name
	holder := crand.Text()
	ttlMS := r.ttl.Milliseconds()
	backoff := minBackoff
	for {
		start := time.Now()
		token, previous, err := acquireTokens(acquireScript.Run(ctx, r.client, []string{key, counter}, holder, ttlMS))
		if err != nil {
			// The SET may have succeeded with its reply lost; without this
			// the key would block every node until it expires.
			r.release(ctx, key, holder, abandonTimeout)
			if ctxErr := ctx.Err(); ctxErr != nil {
				err = ctxErr
			}
			return nil, fmt.Errorf("acquire lease %s: %w", name, err)
		}
		if token > 0 {
			l := newLease(name, token, previous, func() { r.release(ctx, key, holder, releaseTimeout) })
			l.renewing.Add(1)
			go r.renew(l, key, holder, start.Add(r.ttl))
			return l, nil
		}
		// Jitter keeps waiters on several nodes from retrying in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("acquire lease %s: %w", name, ctx.Err())
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// Lock acquires the lease called name and returns the function that
// releases it.
func (r *Redis) Lock(ctx context.Context, name string) (unlock func(), err error) {
	l, err := r.Acquire(ctx, name)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

// renew extends the lease every third of its TTL until it is released, and
// marks it lost when a renewal fails or the lease may have lapsed: the
// holder must stop before another node can take over. validUntil is when
// the lease lapses at the latest, counted from before the request that set
// it.
func (r *Redis) renew(l *Lease, key, holder string, validUntil time.Time) {
	defer l.renewing.Done()
	every := r.ttl / 3
	ttlMS := r.ttl.Milliseconds()
	for {
		select {
		case <-l.lost:
			return
		case <-time.After(every):
		}
		start := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), validUntil)
		n, err := renewScript.Run(ctx, r.client, []string{key}, holder, ttlMS).Int64()
		cancel()
		if err != nil || n == 0 || time.Now().After(validUntil) {
			l.markLost()
			return
		}
		validUntil = start.Add(r.ttl)
	}
}

// release deletes key if it still holds holder. The caller's ctx may be done
// by now, and the lease must still go; if Redis cannot be reached, the TTL
// frees it instead.
func (r *Redis) release(ctx context.Context, key, holder string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := releaseScript.Run(ctx, r.client, []string{key}, holder).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return // the TTL frees it
	}
}

// acquireTokens reads acquireScript's reply: the new token (0 when the
// lease is taken) and the previous one.
func acquireTokens(res *redis.Cmd) (token, previous uint64, err error) {
	vals, err := res.StringSlice()
	if err != nil {
		return 0, 0, err
	}
	if len(vals) != 2 {
		return 0, 0, fmt.Errorf("unexpected reply %q", vals)
	}
	if token, err = strconv.ParseUint(vals[0], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("unexpected token %q: %w", vals[0], err)
	}
	if previous, err = strconv.ParseUint(vals[1], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("unexpected previous token %q: %w", vals[1], err)
	}
	return token, previous, nil
}
