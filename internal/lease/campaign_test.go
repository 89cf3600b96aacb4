package lease

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// flaky fails its first attempts, then acquires from Local.
type flaky struct {
	*Local
	failures atomic.Int32
}

func (f *flaky) Acquire(ctx context.Context, name string) (*Lease, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, errors.New("connection refused")
	}
	return f.Local.Acquire(ctx, name)
}

// TestCampaignElectsOneHolderAtATime: of two nodes campaigning for one
// name, one holds the lease; when it gives it back both campaign again
// and one of them takes it. Failed attempts are reported once per run of
// failures and retried.
func TestCampaignElectsOneHolderAtATime(t *testing.T) {
	leases := &flaky{Local: NewLocal()}
	leases.failures.Store(3)
	var reported atomic.Int32
	ctx, cancel := context.WithCancel(t.Context())
	wonA, wonB := make(chan *Lease), make(chan *Lease)
	doneA, doneB := make(chan struct{}), make(chan struct{})
	failed := func(error) { reported.Add(1) }
	go func() { defer close(doneA); Campaign(ctx, leases, "role", wonA, failed) }()
	go func() { defer close(doneB); Campaign(ctx, leases, "role", wonB, failed) }()

	var first *Lease
	var other chan *Lease
	select {
	case first = <-wonA:
		other = wonB
	case first = <-wonB:
		other = wonA
	case <-time.After(30 * time.Second):
		t.Fatal("nobody elected within 30s")
	}
	select {
	case l := <-other:
		t.Fatalf("two holders at once: %d and %d", first.Token(), l.Token())
	case <-time.After(50 * time.Millisecond):
	}
	if n := reported.Load(); n < 1 || n > 2 {
		t.Errorf("3 failed attempts reported %d times, want once per campaign that met them (1 or 2)", n)
	}

	first.Release()
	var second *Lease
	select {
	case second = <-wonA:
	case second = <-wonB:
	case <-time.After(30 * time.Second):
		t.Fatal("nobody elected within 30s after the holder gave the lease back")
	}
	if second.Token() <= first.Token() {
		t.Errorf("token %d after %d: tokens must grow", second.Token(), first.Token())
	}
	cancel()
	for _, done := range []chan struct{}{doneA, doneB} {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("a campaign did not end with its context")
		}
	}
	second.Release()
}
