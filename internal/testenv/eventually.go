package testenv

import (
	"testing"
	"time"
)

// Eventually waits until cond holds, asking again on every tick of a short
// ticker, and fails t with cond's account of what is missing if it does not
// hold within d. Tests wait on conditions, never for a fixed time.
func Eventually(t testing.TB, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		select {
		case <-deadline.C:
			if ok, why = cond(); !ok {
				t.Fatalf("not within %s: %s", d, why)
			}
			return
		case <-tick.C:
		}
	}
}
