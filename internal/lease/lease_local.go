package lease

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Local is a set of in-process leases, for a node that runs alone: a lease
// is never lost while its holder lives, and tokens grow with the clock so
// that they also grow across restarts of the node.
type Local struct {
	mu     sync.Mutex
	leases map[string]*localLease
	tokens map[string]uint64 // the last token of each name; names are few
}

type localLease struct {
	held chan struct{} // holds a token while the lease is held
	refs int           // holders and waiters; the entry is dropped at zero
}

// NewLocal returns a Local with no lease held.
func NewLocal() *Local {
	return &Local{leases: map[string]*localLease{}, tokens: map[string]uint64{}}
}

// Acquire waits until the lease called name is free or ctx is done.
func (l *Local) Acquire(ctx context.Context, name string) (*Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	l.mu.Lock()
	e := l.leases[name]
	if e == nil {
		e = &localLease{held: make(chan struct{}, 1)}
		l.leases[name] = e
	}
	e.refs++
	l.mu.Unlock()

	select {
	case e.held <- struct{}{}:
	case <-ctx.Done():
		l.drop(name, e)
		return nil, fmt.Errorf("acquire lease %s: %w", name, ctx.Err())
	}
	l.mu.Lock()
	previous := l.tokens[name]
	token := clockToken(time.Now(), previous)
	l.tokens[name] = token
	l.mu.Unlock()
	return newLease(name, token, previous, func() {
		<-e.held
		l.drop(name, e)
	}), nil
}

// Lock acquires the lease called name and returns the function that
// releases it.
func (l *Local) Lock(ctx context.Context, name string) (unlock func(), err error) {
	ls, err := l.Acquire(ctx, name)
	if err != nil {
		return nil, err
	}
	return ls.Release, nil
}

func (l *Local) drop(name string, e *localLease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(l.leases, name)
	}
}
