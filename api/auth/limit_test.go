package auth

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestFailureLimiter(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	l := NewFailureLimiter(LimiterConfig{PerMinute: 6, MaxAddresses: 3}, clk.now)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for i := range 6 {
		if _, ok := l.Fail(a); !ok {
			t.Fatalf("failure %d of 6 refused", i+1)
		}
	}
	wait, ok := l.Fail(a)
	if ok || wait != 10*time.Second {
		t.Fatalf("7th failure: got ok %v, wait %v; want refused, 10s (6 a minute)", ok, wait)
	}
	if _, blocked := l.Blocked(a); !blocked {
		t.Error("Blocked: want the address blocked")
	}
	for range 3 {
		if _, ok := l.Fail(b); !ok {
			t.Error("another address is not limited by the first")
		}
	}
	clk.add(10 * time.Second)
	if _, ok := l.Fail(a); !ok {
		t.Error("after 10s one more failure is taken")
	}
	if _, ok := l.Fail(a); ok {
		t.Error("and only one")
	}
	// IPv6 counts per /64.
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff")
	for range 6 {
		l.Fail(v6a)
	}
	if _, ok := l.Fail(v6b); ok {
		t.Error("another address of the same /64 shares its bucket")
	}
	// Memory is bounded: a fourth address finds the table full while the
	// three are limited, and is limited too; once they have filled up
	// again they are forgotten.
	if _, ok := l.Fail(netip.MustParseAddr("198.51.100.9")); ok {
		t.Error("with the table full of failing addresses, a new one is limited")
	}
	clk.add(2 * time.Minute)
	if _, ok := l.Fail(netip.MustParseAddr("198.51.100.9")); !ok {
		t.Error("after the others recovered, a new address is taken")
	}
	if n := l.Tracked(); n != 1 {
		t.Errorf("tracked %d addresses, want 1 (those recovered are forgotten)", n)
	}
}
