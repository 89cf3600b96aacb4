package lease

import (
	"context"
	"math/rand/v2"
	"time"
)

// Acquirer takes a named lease (Local, Redis).
type Acquirer interface {
	Acquire(ctx context.Context, name string) (*Lease, error)
}

// The back-off between failed attempts of Campaign: jittered, doubling
// from campaignMinWait to campaignMaxWait, so that a holder is elected
// within about a second of the store answering again.
const (
	campaignMinWait = 100 * time.Millisecond
	campaignMaxWait = time.Second
)

// Campaign takes part in electing the one holder of the lease name among
// the nodes: it acquires the lease whenever it is free and hands it on
// won, then waits until that lease is lost or released before trying
// again, until ctx ends. The receiver of a lease owns it (releases it); a
// lease won as ctx ends is released here. Failed attempts are retried
// with back-off; failed, if not nil, is told the first error of each run
// of failures, for the caller's log.
func Campaign(ctx context.Context, leases Acquirer, name string, won chan<- *Lease, failed func(error)) {
	wait := campaignMinWait
	for {
		l, err := leases.Acquire(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if wait == campaignMinWait && failed != nil {
				failed(err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait/2 + rand.N(wait/2+1)):
			}
			wait = min(2*wait, campaignMaxWait)
			continue
		}
		wait = campaignMinWait
		select {
		case won <- l:
		case <-ctx.Done():
			l.Release()
			return
		}
		select {
		case <-l.Lost():
		case <-ctx.Done():
			return // the receiver releases it
		}
	}
}
