package auth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/testenv"
)

// memStore is a revocation store shared by "nodes" in a test.
type memStore struct {
	mu   sync.Mutex
	rows []Revocation
	fail error
}

func (m *memStore) LoadRevocations(context.Context) ([]Revocation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	return append([]Revocation(nil), m.rows...), nil
}

func (m *memStore) AddRevocation(_ context.Context, r Revocation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.rows = append(m.rows, r)
	return nil
}

type announcements struct {
	mu   sync.Mutex
	msgs []bus.Message
}

func (a *announcements) Publish(_ context.Context, msgs ...bus.Message) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.msgs = append(a.msgs, msgs...)
	return nil
}

func TestRevocations(t *testing.T) {
	ctx := context.Background()
	secret := []byte("s3cret")
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	store, bus1 := &memStore{}, &announcements{}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := NewRevocations(RevocationsConfig{}, store, bus1, quiet)
	b := NewRevocations(RevocationsConfig{}, store, nil, quiet)
	var closed []string
	b.OnRevoke(func(ids []string) { closed = append(closed, ids...) })

	tok, _ := Issue(secret, Principal{Subject: "wall-3", Role: Viewer, Areas: []string{"79"}}, time.Hour, now)
	va := NewVerifier("", secret).WithRevocations(a)
	va.now = func() time.Time { return now }
	p, err := va.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := a.Revoke(ctx, Revocation{ID: p.ID}); err == nil || !strings.Contains(err.Error(), "needs a reason") {
		t.Errorf("revocation without a reason: got %v", err)
	}
	r, err := a.Revoke(ctx, Revocation{ID: p.ID, Reason: "screen stolen", RevokedBy: "admin-token"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = va.Verify(tok)
	if !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "screen stolen") || !strings.Contains(err.Error(), p.ID) {
		t.Errorf("revoked token: got %v, want ErrRevoked naming the id and the reason", err)
	}
	// Revoking again keeps the first revocation.
	if again, _ := a.Revoke(ctx, Revocation{ID: p.ID, Reason: "again"}); again.Reason != "screen stolen" {
		t.Errorf("second revocation: got %+v, want the first one", again)
	}

	// Node b learns of it at once from the bus, or from the store.
	if len(bus1.msgs) != 1 || bus1.msgs[0].Topic != RevokedTopic {
		t.Fatalf("announced %+v, want one message on %s", bus1.msgs, RevokedTopic)
	}
	b.Apply(bus1.msgs[0].Payload)
	if _, ok := b.Revoked(p.ID); !ok || len(closed) != 1 || closed[0] != p.ID {
		t.Errorf("after the announcement: revoked %v, listener got %v", ok, closed)
	}
	c := NewRevocations(RevocationsConfig{}, store, nil, quiet)
	if err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Revoked(p.ID); !ok || got.Reason != r.Reason || !got.RevokedAt.Equal(r.RevokedAt) {
		t.Errorf("after a load: got %+v, %v", got, ok)
	}
	// Loading again tells the listeners nothing new.
	_ = b.Load(ctx)
	if len(closed) != 1 {
		t.Errorf("listener called again: %v", closed)
	}
	// An expired revocation is not kept.
	past := now.Add(-time.Hour)
	store.AddRevocation(ctx, Revocation{ID: "old", Reason: "x", RevokedAt: past, ExpiresAt: &past})
	_ = c.Load(ctx)
	if _, ok := c.Revoked("old"); ok {
		t.Error("a revocation of an expired token is kept")
	}
	if l := c.List(); len(l) != 1 || l[0].ID != p.ID {
		t.Errorf("List: got %+v", l)
	}
	// A store that fails refuses the revocation: nothing is half done.
	store.fail = errors.New("clickhouse down")
	if _, err := c.Revoke(ctx, Revocation{ID: "other", Reason: "x"}); err == nil {
		t.Error("revocation with the store down: got no error")
	}
	if _, ok := c.Revoked("other"); ok {
		t.Error("a revocation that was not stored is in force on one node only")
	}
}

// TestRevocationsRunReadsTheStoreUntilStopped: Run takes in what another
// node stored, keeps the list in force while the store fails, and returns
// nil once its context ends (at once without a store).
func TestRevocationsRunReadsTheStoreUntilStopped(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := NewRevocations(RevocationsConfig{}, nil, nil, quiet).Run(context.Background()); err != nil {
		t.Errorf("Run without a store: got %v, want nil at once", err)
	}
	store := &memStore{}
	l := NewRevocations(RevocationsConfig{Refresh: 5 * time.Millisecond}, store, nil, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	_ = store.AddRevocation(ctx, Revocation{ID: "r1", Reason: "lost", RevokedAt: time.Now()})
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		_, ok := l.Revoked("r1")
		return ok, "Run has not read the revocation another node stored"
	})
	store.mu.Lock()
	store.fail = errors.New("clickhouse down")
	store.mu.Unlock()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run stopped with %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context ending")
	}
	if _, ok := l.Revoked("r1"); !ok {
		t.Error("a failing store dropped the list in force")
	}
}

func TestDeviceVerifier(t *testing.T) {
	HashCost = bcrypt.MinCost
	hash, err := HashSecret("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := HashSecret("short"); err == nil {
		t.Error("a short password is hashed")
	}
	lookups := 0
	v := NewDeviceVerifier(func(id string) (string, string, bool) {
		lookups++
		switch id {
		case "CAM-1":
			return hash, "26740", true
		case "CAM-2":
			return "", "26740", true
		}
		return "", "", false
	})
	p, err := v.Verify("CAM-1", "correct horse battery")
	if err != nil || p.Device != "CAM-1" || p.Role != Ingest || len(p.Areas) != 1 || p.Areas[0] != "26740" {
		t.Fatalf("got %+v, %v", p, err)
	}
	if !v.Known("CAM-1", "correct horse battery") || v.Known("CAM-1", "wrong horse battery") {
		t.Error("Known: want the accepted password only")
	}
	for _, c := range [][2]string{{"CAM-1", "wrong horse battery"}, {"CAM-2", ""}, {"CAM-9", "correct horse battery"}} {
		if _, err := v.Verify(c[0], c[1]); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s/%q: got %v, want ErrBadCredentials", c[0], c[1], err)
		}
	}
}
