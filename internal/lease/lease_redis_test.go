package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/testenv"
)

func acquire(t *testing.T, m interface {
	Acquire(context.Context, string) (*Lease, error)
}, name string) *Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	l, err := m.Acquire(ctx, name)
	if err != nil {
		t.Fatalf("Acquire(%s): %v", name, err)
	}
	return l
}

// waitLost fails the test unless l is lost within d.
func waitLost(t *testing.T, l *Lease, d time.Duration) {
	t.Helper()
	select {
	case <-l.Lost():
	case <-time.After(d):
		t.Fatalf("lease %s: still held %v after it can no longer be renewed", l.Name(), d)
	}
}

func TestRedisRenewsWhileHeld(t *testing.T) {
	t.Parallel()
	addr := testenv.RedisAddr(t)
	ttl := 300 * time.Millisecond
	holder := NewRedis(newClient(t, addr), RedisConfig{TTL: ttl})
	other := NewRedis(newClient(t, addr), RedisConfig{TTL: ttl})
	name := lockName(t)
	l := acquire(t, holder, name)
	defer l.Release()

	// Held across many TTLs: another node cannot take it meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), 5*ttl)
	defer cancel()
	if _, err := other.Acquire(ctx, name); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire while renewed: got %v, want %v", err, context.DeadlineExceeded)
	}
	if !l.Held() {
		t.Fatal("lease lost while Redis answered every renewal")
	}
}

func TestRedisDeadHolderBlocksAtMostOneTTL(t *testing.T) {
	t.Parallel()
	addr := testenv.RedisAddr(t)
	ttl := 500 * time.Millisecond
	name := lockName(t)
	// The holder's connection goes away as a killed node's would: nothing
	// renews the lease any more.
	deadClient := newClient(t, addr)
	dead := acquire(t, NewRedis(deadClient, RedisConfig{TTL: ttl}), name)
	deadClient.Close()
	start := time.Now()
	next := acquire(t, NewRedis(newClient(t, addr), RedisConfig{TTL: ttl}), name)
	defer next.Release()
	// One TTL, and scheduling slack for a loaded machine; the old 30 s lock
	// would fail this by far.
	if waited := time.Since(start); waited > ttl+2*time.Second {
		t.Fatalf("next holder waited %v for a dead holder's lease, want about the TTL %v", waited, ttl)
	}
	if next.Token() <= dead.Token() {
		t.Fatalf("token of the next holder %d, want more than the dead holder's %d", next.Token(), dead.Token())
	}
	waitLost(t, dead, 2*ttl+time.Second)
}

func TestRedisLapsedHolderLearnsItAndCannotReleaseNext(t *testing.T) {
	t.Parallel()
	addr := testenv.RedisAddr(t)
	probe := newClient(t, addr)
	ttl := 300 * time.Millisecond
	name := lockName(t)
	key := "ioc:lease:" + name
	lapsed := acquire(t, NewRedis(newClient(t, addr), RedisConfig{TTL: ttl}), name)
	// The lease lapses behind the holder's back, and another node takes it.
	if err := probe.Del(context.Background(), key).Err(); err != nil {
		t.Fatalf("DEL %s: %v", key, err)
	}
	other := NewRedis(newClient(t, addr), RedisConfig{TTL: ttl})
	next := acquire(t, other, name)
	waitLost(t, lapsed, 2*ttl+time.Second)
	within(t, "release of the lapsed lease", lapsed.Release)
	expectHeld(t, other, name)
	if !next.Held() {
		t.Fatal("the next holder lost its lease when the lapsed one released")
	}
	next.Release()
	if n, err := probe.Exists(context.Background(), key).Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS %s after release: got %d, %v, want 0, nil", key, n, err)
	}
}

func TestRedisTokensGrowAcrossARestartOfRedis(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	m := NewRedis(newClient(t, srv.Addr), RedisConfig{})
	name := lockName(t)
	var last uint64
	for range 3 {
		l := acquire(t, m, name)
		if l.Token() <= last {
			t.Fatalf("token %d after %d, want more", l.Token(), last)
		}
		last = l.Token()
		l.Release()
	}
	// Redis keeps nothing on disk here: after a restart every counter is gone.
	srv = testenv.RestartRedis(t, srv)
	m = NewRedis(newClient(t, srv.Addr), RedisConfig{})
	l := acquire(t, m, name)
	defer l.Release()
	if l.Token() <= last {
		t.Fatalf("token %d after Redis restarted, want more than %d from before", l.Token(), last)
	}
}

func TestRedisKeysHonourThePrefix(t *testing.T) {
	t.Parallel()
	addr := testenv.RedisAddr(t)
	probe := newClient(t, addr)
	name := lockName(t)
	l := acquire(t, NewRedis(newClient(t, addr), RedisConfig{Prefix: "city-a:"}), name)
	defer l.Release()
	for _, key := range []string{"city-a:lease:" + name, "city-a:lease-token:" + name} {
		if n, err := probe.Exists(context.Background(), key).Result(); err != nil || n != 1 {
			t.Fatalf("EXISTS %s: got %d, %v, want 1", key, n, err)
		}
	}
	// Another deployment on the same Redis has its own leases.
	other := acquire(t, NewRedis(newClient(t, addr), RedisConfig{Prefix: "city-b:"}), name)
	other.Release()
}

func TestRedisAcquireFailsWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	m := NewRedis(newClient(t, srv.Addr), RedisConfig{TTL: 300 * time.Millisecond})
	name := lockName(t)
	held := acquire(t, m, name)
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop redis: %v", err)
	}
	// The holder cannot renew: it must learn that it may have lost the lease.
	waitLost(t, held, 2*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	l, err := m.Acquire(ctx, name)
	if err == nil {
		l.Release()
		t.Fatalf("Acquire with Redis down: got the lease, want an error")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with Redis down: got %v, want the Redis error before the deadline", err)
	}
}

func TestLocalTokensGrow(t *testing.T) {
	m := NewLocal()
	var last uint64
	for range 100 {
		l := acquire(t, m, "a")
		if l.Token() <= last {
			t.Fatalf("token %d after %d, want more", l.Token(), last)
		}
		last = l.Token()
		l.Release()
	}
	if min := uint64(time.Now().Add(-time.Minute).UnixMilli()); last < min {
		t.Fatalf("token %d, want at least the clock in milliseconds (%d) so that tokens grow across restarts", last, min)
	}
}

// After Redis restarts empty, nobody can tell who held the lease last:
// Previous is 0, never a holder's own last token.
func TestRedisPreviousIsUnknownAfterARestartOfRedis(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	name := lockName(t)
	l := acquire(t, NewRedis(newClient(t, srv.Addr), RedisConfig{}), name)
	l.Release()
	srv = testenv.RestartRedis(t, srv)
	next := acquire(t, NewRedis(newClient(t, srv.Addr), RedisConfig{}), name)
	defer next.Release()
	if next.Previous() != 0 {
		t.Errorf("previous after Redis restarted: %d, want 0 (unknown)", next.Previous())
	}
}
