package clusterlock

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	keyPrefix     = "ioc:lock:"
	defaultTTL    = 30 * time.Second
	minBackoff    = 5 * time.Millisecond
	maxBackoff    = 50 * time.Millisecond
	unlockTimeout = 5 * time.Second
	// abandonTimeout is short because the caller of a failed Lock waits.
	abandonTimeout = time.Second
)

// unlockScript deletes the key only while it holds our token, so that a
// holder whose lock lapsed cannot release the next holder's lock.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0
`)

// Redis is a set of named mutexes shared by every node using the same Redis.
// A lock is the key "ioc:lock:<name>", holding a random token of its holder,
// that expires after the TTL in case the holder dies.
type Redis struct {
	client *redis.Client
	ttl    time.Duration
}

// NewRedis returns locks on client, which stays owned by the caller. A zero
// ttl means 30 s.
func NewRedis(client *redis.Client, ttl time.Duration) *Redis {
	if ttl <= 0 {
		ttl = defaultTTL
	}
	return &Redis{client: client, ttl: ttl}
}

// Lock waits until the lock called name is free or ctx is done, and returns
// the function that releases it. A Redis error ends the wait at once.
func (l *Redis) Lock(ctx context.Context, name string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("acquire lock %s: %w", name, err)
	}
	key := keyPrefix + name
	token := crand.Text()
	backoff := minBackoff
	for {
		ok, err := l.client.SetNX(ctx, key, token, l.ttl).Result()
		if err != nil {
			// The SET may have succeeded with its reply lost; without this
			// the key would block every node until it expires.
			l.release(ctx, key, token, abandonTimeout)
			if ctxErr := ctx.Err(); ctxErr != nil {
				err = ctxErr
			}
			return nil, fmt.Errorf("acquire lock %s: %w", name, err)
		}
		if ok {
			break
		}
		// Jitter keeps waiters on several nodes from retrying in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("acquire lock %s: %w", name, ctx.Err())
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxBackoff)
	}
	return sync.OnceFunc(func() { l.release(ctx, key, token, unlockTimeout) }), nil
}

// release deletes key if it still holds token. The caller's ctx may be done
// by now, and the lock must still go; if Redis cannot be reached, the TTL
// frees it instead.
func (l *Redis) release(ctx context.Context, key, token string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	_ = unlockScript.Run(ctx, l.client, []string{key}, token).Err()
}
