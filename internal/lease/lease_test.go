package lease

import (
	"context"
	crand "crypto/rand"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const waitTimeout = 10 * time.Second

type locker interface {
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// kinds give each test two lockers that contend like two nodes: for Redis
// they have separate clients, for Local they are the one mutex of the node.
var kinds = []struct {
	name string
	new  func(t *testing.T) [2]locker
}{
	{"local", func(t *testing.T) [2]locker {
		l := NewLocal()
		return [2]locker{l, l}
	}},
	{"redis", func(t *testing.T) [2]locker {
		addr := testenv.RedisAddr(t)
		return [2]locker{NewRedis(newClient(t, addr), RedisConfig{}), NewRedis(newClient(t, addr), RedisConfig{})}
	}},
}

func forEachKind(t *testing.T, f func(t *testing.T, nodes [2]locker)) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			f(t, k.new(t))
		})
	}
}

func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// lockName isolates a test from the others on the shared Redis.
func lockName(t *testing.T) string {
	return "test:" + t.Name() + ":" + crand.Text()[:8]
}

// tryLock calls Lock with ctx, and fails the test if Lock outlives ctx by
// far, so that a Lock ignoring ctx fails the test instead of hanging it.
func tryLock(t *testing.T, ctx context.Context, l locker, name string) (unlock func(), err error) {
	t.Helper()
	type result struct {
		unlock func()
		err    error
	}
	done := make(chan result, 1)
	go func() {
		u, err := l.Lock(ctx, name)
		done <- result{u, err}
	}()
	select {
	case r := <-done:
		return r.unlock, r.err
	case <-ctx.Done():
	}
	select {
	case r := <-done:
		return r.unlock, r.err
	case <-time.After(waitTimeout):
		t.Fatalf("Lock(%s): still waiting %v after the context ended", name, waitTimeout)
		return nil, nil
	}
}

func lock(t *testing.T, l locker, name string) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	unlock, err := tryLock(t, ctx, l, name)
	if err != nil {
		t.Fatalf("Lock(%s): %v", name, err)
	}
	return unlock
}

// expectHeld checks that name cannot be locked within a short wait.
func expectHeld(t *testing.T, l locker, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	unlock, err := tryLock(t, ctx, l, name)
	if err == nil {
		unlock()
		t.Fatalf("Lock(%s) while held: got the lock, want %v", name, context.DeadlineExceeded)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock(%s) while held: got %v, want %v", name, err, context.DeadlineExceeded)
	}
}

func TestMutualExclusion(t *testing.T) {
	const workers, rounds = 6, 15
	forEachKind(t, func(t *testing.T, nodes [2]locker) {
		name := lockName(t)
		var inside atomic.Bool
		var overlaps atomic.Int32
		counter := 0 // guarded by the lock alone
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				l := nodes[w%2]
				for range rounds {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					unlock, err := l.Lock(ctx, name)
					cancel()
					if err != nil {
						errs <- err
						return
					}
					if !inside.CompareAndSwap(false, true) {
						overlaps.Add(1)
					}
					counter++
					// Widens the critical section so that an overlap shows.
					time.Sleep(100 * time.Microsecond)
					inside.Store(false)
					unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Lock: %v", err)
		}
		if got := overlaps.Load(); got != 0 {
			t.Fatalf("got %d overlapping critical sections, want 0", got)
		}
		if want := workers * rounds; counter != want {
			t.Fatalf("got counter %d, want %d", counter, want)
		}
	})
}

func TestLockRespectsContext(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel while waiting", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			go cancel()
			return ctx, cancel
		}, context.Canceled},
		{"cancelled before", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
	}
	forEachKind(t, func(t *testing.T, nodes [2]locker) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				name := lockName(t)
				unlock := lock(t, nodes[0], name)

				ctx, cancel := tt.ctx()
				defer cancel()
				u, err := tryLock(t, ctx, nodes[1], name)
				if err == nil {
					u()
					t.Fatalf("Lock while held: got the lock, want %v", tt.want)
				}
				if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "acquire lease "+name+": ") {
					t.Fatalf("Lock while held: got %q, want %v wrapped by %q", err, tt.want, "acquire lease "+name)
				}

				// The abandoned wait must not leave the lock taken.
				unlock()
				lock(t, nodes[1], name)()
			})
		}
	})
}

func TestNamesAreIndependent(t *testing.T) {
	forEachKind(t, func(t *testing.T, nodes [2]locker) {
		a, b := lockName(t)+":a", lockName(t)+":b"
		unlockA := lock(t, nodes[0], a)
		defer unlockA()
		lock(t, nodes[1], b)()
		expectHeld(t, nodes[1], a)
	})
}

func TestUnlockTwiceKeepsNextHolder(t *testing.T) {
	forEachKind(t, func(t *testing.T, nodes [2]locker) {
		name := lockName(t)
		first := lock(t, nodes[0], name)
		first()
		second := lock(t, nodes[1], name)
		within(t, "second unlock of the first holder", first)
		expectHeld(t, nodes[0], name)
		within(t, "unlock of the second holder", second)
	})
}

// within fails the test if f does not return in time, since a broken unlock
// is as likely to block as to release the wrong holder.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("%s: still blocked after %v", what, waitTimeout)
	}
}

func TestLocalForgetsReleasedLeases(t *testing.T) {
	l := NewLocal()
	for _, name := range []string{"a", "b", "a"} {
		lock(t, l, name)()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = l.Lock(ctx, "c")
	l.mu.Lock()
	defer l.mu.Unlock()
	if got := len(l.leases); got != 0 {
		t.Fatalf("got %d lock entries after all were released, want 0", got)
	}
}

// A holder learns whether anyone acted under the lease since its own last
// acquisition: Previous is the token just before, whichever node held it.
func TestPreviousNamesTheAcquisitionJustBefore(t *testing.T) {
	type acquirer interface {
		Acquire(ctx context.Context, name string) (*Lease, error)
	}
	for _, k := range []struct {
		name string
		new  func(t *testing.T) [2]acquirer
	}{
		{"local", func(t *testing.T) [2]acquirer { l := NewLocal(); return [2]acquirer{l, l} }},
		{"redis", func(t *testing.T) [2]acquirer {
			addr := testenv.RedisAddr(t)
			return [2]acquirer{NewRedis(newClient(t, addr), RedisConfig{}), NewRedis(newClient(t, addr), RedisConfig{})}
		}},
	} {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			nodes, name := k.new(t), lockName(t)
			take := func(n int) *Lease {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				l, err := nodes[n].Acquire(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				l.Release()
				return l
			}
			first := take(0)
			if first.Previous() != 0 {
				t.Errorf("first acquisition: previous %d, want 0", first.Previous())
			}
			second := take(0)
			other := take(1)
			third := take(0)
			if second.Previous() != first.Token() || other.Previous() != second.Token() || third.Previous() != other.Token() {
				t.Errorf("tokens %d %d %d %d with previous %d %d %d, want each previous to be the token before",
					first.Token(), second.Token(), other.Token(), third.Token(), second.Previous(), other.Previous(), third.Previous())
			}
		})
	}
}
