// Package lease provides named leases: each is held by one holder at a time
// across all iocd nodes, for a short time-to-live that the holder renews
// while it works. A holder that dies stops renewing, so others wait at most
// one TTL (seconds, not the half-minute a long lock would cost); a holder
// that cannot renew learns it through Lost and must stop acting on the
// lease. Local serves a node that runs alone; Redis serves several nodes
// sharing one Redis.
//
// Every acquisition carries a fencing token that is greater than the token
// of every earlier acquisition of the same name, on any node, even across a
// restart of Redis or of the node (tokens are at least the acquisition's
// Unix time in milliseconds). Work done under a lease is stamped with its
// token, so that whoever reads the results can drop those of a holder that
// was overtaken: live-message versions start with it.
//
// Uses: the ingest writers hold "<db>.<table>" while they look up what is
// stored and write a batch; the aggregator and the alarm engine hold their
// role's lease while they compute and publish figures. Campaign is the one
// election loop of the parts that run on one node at a time (figures,
// devices, walls).
//
// Concurrency: Local, Redis and Lease are safe for concurrent use. Each held
// Lease owns one renewal goroutine, which exits on Release or once the lease
// is lost. A lease is not reentrant. Campaign runs on its caller's
// goroutine until ctx ends.
package lease

import (
	"sync"
	"time"
)

// DefaultTTL is how long a lease lives without renewal. Holders renew it
// every third of it, so a pause of more than two renewals loses it.
const DefaultTTL = 3 * time.Second

// Lease is one acquisition of a named lease.
type Lease struct {
	name     string
	token    uint64
	previous uint64

	lost     chan struct{} // closed once the lease is lost or released
	lostOnce sync.Once
	release  func() // gives the lease back; called once
	relOnce  sync.Once
	renewing sync.WaitGroup
}

func newLease(name string, token, previous uint64, release func()) *Lease {
	return &Lease{name: name, token: token, previous: previous, lost: make(chan struct{}), release: release}
}

// Name is the lease's name.
func (l *Lease) Name() string { return l.name }

// Token is the acquisition's fencing token: greater than that of every
// earlier acquisition of the same name.
func (l *Lease) Token() uint64 { return l.token }

// Previous is the token of the acquisition just before this one of the
// same name, on any node, or 0 when it is not known (the counter was lost
// with Redis). A holder whose own last token equals it knows that nobody
// acted under the lease in between, so what it remembers of the work done
// under the lease is still current.
func (l *Lease) Previous() uint64 { return l.previous }

// Lost is closed once the holder may no longer hold the lease: a renewal
// failed or came too late, or the lease was released.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Held says whether the lease is still held.
func (l *Lease) Held() bool {
	select {
	case <-l.lost:
		return false
	default:
		return true
	}
}

// Release gives the lease back and stops renewing it. Later calls do nothing.
func (l *Lease) Release() {
	l.relOnce.Do(func() {
		l.markLost()
		l.renewing.Wait()
		l.release()
	})
}

func (l *Lease) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

// Unlock is Release, for holders that only need mutual exclusion.
func (l *Lease) Unlock() { l.Release() }

// clockToken is a token at least as large as the current Unix time in
// milliseconds, so that tokens keep growing when a counter restarts.
func clockToken(now time.Time, last uint64) uint64 {
	t := uint64(now.UnixMilli())
	if last >= t {
		return last + 1
	}
	return t
}
