package hub

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/testenv"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) { return cond(), "waiting for " + what })
}

func (h *Hub) connCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns)
}

func TestConnectionCaps(t *testing.T) {
	h := newHub(t, Config{MaxPerToken: 2, MaxPerAddress: 3})
	open := func(key, addr string) (*fakeConn, chan error) {
		c := newFakeConn()
		done := make(chan error, 1)
		go func() { done <- h.Serve(c, auth.Principal{Role: auth.Viewer, Areas: []string{"79"}, Key: key}, addr) }()
		return c, done
	}
	a1, done1 := open("jti:a", "192.0.2.1")
	open("jti:a", "192.0.2.1")
	waitFor(t, "two connections", func() bool { return h.connCount() == 2 })

	var limit *LimitError
	if err := h.Admit(auth.Principal{Key: "jti:a"}, "192.0.2.9"); !errors.As(err, &limit) || limit.Per != "token" || limit.Limit != 2 {
		t.Errorf("Admit a third of one token: got %v, want the token limit", err)
	}
	_, refused := open("jti:a", "192.0.2.9")
	if err := <-refused; !errors.As(err, &limit) || limit.Per != "token" {
		t.Errorf("Serve a third of one token: got %v, want the token limit", err)
	}
	open("jti:b", "192.0.2.1")
	waitFor(t, "three connections", func() bool { return h.connCount() == 3 })
	_, refused = open("jti:c", "192.0.2.1")
	if err := <-refused; !errors.As(err, &limit) || limit.Per != "address" || limit.Limit != 3 {
		t.Errorf("a fourth from one address: got %v, want the address limit", err)
	}
	if got := testutil.ToFloat64(h.m.refused.WithLabelValues("token")) + testutil.ToFloat64(h.m.refused.WithLabelValues("address")); got != 2 {
		t.Errorf("refusals counted: %v, want 2", got)
	}
	// A connection that ends frees its places.
	close(a1.in)
	<-done1
	if err := h.Admit(auth.Principal{Key: "jti:a"}, "192.0.2.1"); err != nil {
		t.Errorf("after one left: %v", err)
	}
	// Principals without a key or an address are not counted.
	if err := h.Admit(auth.Principal{}, ""); err != nil {
		t.Error(err)
	}
}

func TestCloseWhere(t *testing.T) {
	h := newHub(t, Config{})
	c := newFakeConn()
	done := make(chan error, 1)
	go func() {
		done <- h.Serve(c, auth.Principal{Role: auth.Viewer, Areas: []string{"79"}, ID: "t1", Key: "jti:t1"}, "")
	}()
	other, _ := serve(t, h)
	c.send("subscribe", "kpi/79")
	c.messages(t, 1)
	other.send("subscribe", "kpi/79")
	other.messages(t, 1)
	if n := h.CloseWhere(func(p auth.Principal) bool { return p.ID == "t1" }, 4401, "token revoked"); n != 1 {
		t.Fatalf("closed %d connections, want 1", n)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not closed")
	}
	c.mu.Lock()
	closes := fmt.Sprint(c.closes)
	c.mu.Unlock()
	if closes != "[4401]" {
		t.Errorf("close frames %s, want [4401]", closes)
	}
	// The other connection stays, and a topic Resolve refuses with a
	// CloseError ends it the same way.
	other.send("subscribe", "close/me")
	waitFor(t, "the second connection to close", func() bool { return h.connCount() == 0 })
	other.mu.Lock()
	defer other.mu.Unlock()
	if fmt.Sprint(other.closes) != "[4401]" {
		t.Errorf("close frames %v, want [4401]", other.closes)
	}
}

// TestSnapshotReadsBoundedPerNode: however many connections ask, at most
// MaxSnapshotReads reads for snapshots run at once on the node.
func TestSnapshotReadsBoundedPerNode(t *testing.T) {
	tp := &topics{gate: make(chan struct{})}
	h := newHubWith(t, Config{MaxSnapshotReads: 2}, tp)
	var conns []*fakeConn
	for i := range 3 {
		c, _ := serve(t, h)
		conns = append(conns, c)
		c.send("subscribe", fmt.Sprintf("kpi/%d", 2*i))
		c.send("subscribe", fmt.Sprintf("kpi/%d", 2*i+1))
	}
	// Six reads asked for: two run, four wait. The queue passes through
	// four on its way up too, so wait for the whole state: two reads
	// started and four queued (a hub without the bound would start six and
	// never get there).
	waitFor(t, "two reads running and four waiting", func() bool {
		_, current := tp.calls()
		return current == 2 && testutil.ToFloat64(h.m.fillsQueued) == 4 && testutil.ToFloat64(h.m.readsInFlight) == 2
	})
	if _, current := tp.calls(); current != 2 {
		t.Errorf("%d snapshots computed at once, want 2", current)
	}
	close(tp.gate)
	for _, c := range conns {
		c.messages(t, 2)
	}
	waitFor(t, "no read in flight", func() bool { return testutil.ToFloat64(h.m.readsInFlight) == 0 })
}
