package clusterlock

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/testenv"
)

func TestRedisExpiredHolderCannotUnlockNext(t *testing.T) {
	t.Parallel()
	addr := testenv.RedisAddr(t)
	probe := newClient(t, addr)
	name := lockName(t)
	key := "ioc:lock:" + name

	short := NewRedis(newClient(t, addr), 100*time.Millisecond)
	other := NewRedis(newClient(t, addr), 0)
	expired := lock(t, short, name)
	deadline := time.Now().Add(waitTimeout)
	for {
		n, err := probe.Exists(context.Background(), key).Result()
		if err != nil {
			t.Fatalf("EXISTS %s: %v", key, err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock key %s: still present %v after its TTL", key, waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}

	next := lock(t, other, name)
	expired()
	expectHeld(t, short, name)
	next()
	if n, err := probe.Exists(context.Background(), key).Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS %s after unlock: got %d, %v, want 0, nil", key, n, err)
	}
}

func TestRedisDefaultTTL(t *testing.T) {
	t.Parallel()
	client := newClient(t, testenv.RedisAddr(t))
	name := lockName(t)
	unlock := lock(t, NewRedis(client, 0), name)
	defer unlock()
	ttl, err := client.PTTL(context.Background(), "ioc:lock:"+name).Result()
	if err != nil {
		t.Fatalf("PTTL: %v", err)
	}
	if ttl <= 25*time.Second || ttl > 30*time.Second {
		t.Fatalf("got TTL %v, want about 30s", ttl)
	}
}

func TestRedisLockFailsWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	l := NewRedis(newClient(t, srv.Addr), 0)
	name := lockName(t)
	lock(t, l, name)()
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop redis: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	unlock, err := l.Lock(ctx, name)
	if err == nil {
		unlock()
		t.Fatalf("Lock with Redis down: got the lock, want an error")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with Redis down: got %v, want the Redis error before the deadline", err)
	}
}
