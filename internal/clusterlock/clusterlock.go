// Package clusterlock provides named mutexes held by one caller at a time
// across all iocd nodes, to serialize critical sections such as "check which
// event ids are already stored, then insert the rest". Local serves a node
// that runs alone; Redis serves several nodes sharing one Redis.
//
// A lock is not reentrant, and a Redis lock lapses after its TTL, so a
// critical section must finish well within the TTL.
//
// Concurrency: Local and Redis are safe for concurrent use; each unlock
// function may be called more than once, and only the first call releases.
package clusterlock

import (
	"context"
	"fmt"
	"sync"
)

// Local is a set of in-process named mutexes.
type Local struct {
	mu    sync.Mutex
	locks map[string]*localLock
}

type localLock struct {
	held chan struct{} // holds a token while the lock is held
	refs int           // holders and waiters; the entry is dropped at zero
}

// NewLocal returns a Local with no lock held.
func NewLocal() *Local {
	return &Local{locks: map[string]*localLock{}}
}

// Lock waits until the lock called name is free or ctx is done, and returns
// the function that releases it.
func (l *Local) Lock(ctx context.Context, name string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("acquire lock %s: %w", name, err)
	}
	l.mu.Lock()
	e := l.locks[name]
	if e == nil {
		e = &localLock{held: make(chan struct{}, 1)}
		l.locks[name] = e
	}
	e.refs++
	l.mu.Unlock()

	select {
	case e.held <- struct{}{}:
	case <-ctx.Done():
		l.release(name, e)
		return nil, fmt.Errorf("acquire lock %s: %w", name, ctx.Err())
	}
	return sync.OnceFunc(func() {
		<-e.held
		l.release(name, e)
	}), nil
}

func (l *Local) release(name string, e *localLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(l.locks, name)
	}
}
