package auth

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// LimiterConfig tunes a FailureLimiter. Zero fields take the defaults.
type LimiterConfig struct {
	// PerMinute is how many failed authentications an address may make
	// per minute, and at once after a quiet spell; default 60.
	PerMinute int
	// MaxAddresses bounds the addresses tracked; default 65536. While that
	// many are failing at once, a failure from a new address is limited.
	MaxAddresses int
}

// FailureLimiter limits failed authentications per client address with a
// token bucket: each failure takes a token, PerMinute tokens come back per
// minute up to PerMinute, and a failure that finds the bucket empty is
// refused with the time until the next token. Successful authentications
// never go through it. IPv6 addresses count per /64, which one client
// usually holds whole.
//
// Memory is bounded: an address whose bucket has filled up again is
// forgotten, and at most MaxAddresses are tracked.
type FailureLimiter struct {
	cfg LimiterConfig
	now func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewFailureLimiter returns a limiter; now is the clock (time.Now when nil).
func NewFailureLimiter(cfg LimiterConfig, now func() time.Time) *FailureLimiter {
	if cfg.PerMinute <= 0 {
		cfg.PerMinute = 60
	}
	if cfg.MaxAddresses <= 0 {
		cfg.MaxAddresses = 65536
	}
	if now == nil {
		now = time.Now
	}
	return &FailureLimiter{cfg: cfg, now: now, buckets: map[netip.Addr]*bucket{}}
}

// PerMinute is the failures allowed per address and minute.
func (l *FailureLimiter) PerMinute() int { return l.cfg.PerMinute }

func (l *FailureLimiter) rate() float64 { return float64(l.cfg.PerMinute) / 60 } // per second

func clientKey(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.Addr()
	}
	return addr
}

// refill brings b up to now; it says whether b is full.
func (l *FailureLimiter) refill(b *bucket, now time.Time) bool {
	if d := now.Sub(b.at).Seconds(); d > 0 {
		b.tokens = min(float64(l.cfg.PerMinute), b.tokens+d*l.rate())
		b.at = now
	}
	return b.tokens >= float64(l.cfg.PerMinute)
}

// Blocked reports whether a failure from addr would be refused now, and
// for how long, without counting one.
func (l *FailureLimiter) Blocked(addr netip.Addr) (time.Duration, bool) {
	key, now := clientKey(addr), l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.cfg.MaxAddresses {
			l.sweep(now)
			if len(l.buckets) >= l.cfg.MaxAddresses {
				return time.Minute, true
			}
		}
		return 0, false
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0, false
	}
	return l.wait(b), true
}

// Fail counts a failed authentication from addr. It returns false, and how
// long until another failure would be taken, when the address is over its
// limit.
func (l *FailureLimiter) Fail(addr netip.Addr) (time.Duration, bool) {
	key, now := clientKey(addr), l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) >= time.Minute {
		l.sweep(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.cfg.MaxAddresses {
			l.sweep(now)
			if len(l.buckets) >= l.cfg.MaxAddresses {
				return time.Minute, false
			}
		}
		b = &bucket{tokens: float64(l.cfg.PerMinute), at: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return l.wait(b), false
	}
	b.tokens--
	return 0, true
}

// wait is how long until b holds a token again, at least a second.
func (l *FailureLimiter) wait(b *bucket) time.Duration {
	secs := math.Ceil((1 - b.tokens) / l.rate())
	return time.Duration(max(1, secs)) * time.Second
}

// sweep forgets the addresses whose buckets have filled up again.
func (l *FailureLimiter) sweep(now time.Time) {
	l.swept = now
	for k, b := range l.buckets {
		if l.refill(b, now) {
			delete(l.buckets, k)
		}
	}
}

// Tracked is the number of addresses currently tracked.
func (l *FailureLimiter) Tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
