package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/topic"
)

// RevokedTopic is the internal bus topic on which a node announces a
// revocation, so that every node refuses the token at once rather than at
// its next refresh. Like every "internal/" topic, no screen sees it.
const RevokedTopic = string(topic.Revoked)

// Revocation is a revoked token.
type Revocation struct {
	ID        string    `json:"id"`
	Reason    string    `json:"reason"`
	RevokedBy string    `json:"revoked_by"`
	RevokedAt time.Time `json:"revoked_at"`
	// ExpiresAt, when known, is when the token expires anyway; after it
	// the revocation is no longer kept in memory.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (r Revocation) describe() string {
	s := fmt.Sprintf("token %s was revoked at %s", r.ID, r.RevokedAt.UTC().Format(time.RFC3339))
	if r.RevokedBy != "" {
		s += " by " + r.RevokedBy
	}
	if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	return s + "; ask your administrator for a new token"
}

// CheckRevocation reports what is wrong with a revocation to be made.
func CheckRevocation(r Revocation) error {
	switch {
	case r.ID == "" || len(r.ID) > 128 || !utf8.ValidString(r.ID) || strings.ContainsAny(r.ID, "/ \t\r\n"):
		return fmt.Errorf("token id %q is not an id: give the token's jti (iocd token prints it when issuing)", r.ID)
	case strings.TrimSpace(r.Reason) == "":
		return errors.New("a revocation needs a reason, e.g. \"laptop lost\"")
	case len(r.Reason) > 500 || !utf8.ValidString(r.Reason):
		return errors.New("reason must be valid UTF-8 of at most 500 bytes")
	}
	return nil
}

// RevocationStore keeps revocations where every node and every restart
// finds them.
type RevocationStore interface {
	LoadRevocations(ctx context.Context) ([]Revocation, error)
	AddRevocation(ctx context.Context, r Revocation) error
}

// Announcer carries a revocation to the other nodes at once: the bus.
type Announcer interface {
	Publish(ctx context.Context, msgs ...bus.Message) error
}

// RevocationsConfig tunes Revocations. Zero fields take the defaults.
type RevocationsConfig struct {
	// Refresh is how often the list is read again from the store, which is
	// how revocations reach nodes that missed the announcement; default 5s.
	Refresh time.Duration
}

// Revocations is the list of revoked tokens every node shares: kept in the
// store, cached in memory, read again every Refresh and, when an Announcer
// is given, announced on RevokedTopic so that nodes apply it at once.
// Listeners learn of every revocation newly known here, however it came,
// so that open websockets of the token are closed.
type Revocations struct {
	cfg    RevocationsConfig
	store  RevocationStore
	pub    Announcer
	logger *slog.Logger
	now    func() time.Time

	mu        sync.RWMutex
	byID      map[string]Revocation
	listeners []func(ids []string)
}

// NewRevocations returns the list over store; with store nil it lives in
// memory only (a single node in tests), with pub nil nothing is announced.
func NewRevocations(cfg RevocationsConfig, store RevocationStore, pub Announcer, logger *slog.Logger) *Revocations {
	if cfg.Refresh <= 0 {
		cfg.Refresh = 5 * time.Second
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Revocations{cfg: cfg, store: store, pub: pub, logger: logger, now: time.Now, byID: map[string]Revocation{}}
}

// OnRevoke adds a listener; call it before the list is used. Listeners must
// not block.
func (l *Revocations) OnRevoke(f func(ids []string)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.listeners = append(l.listeners, f)
}

// Revoked says whether token id was revoked.
func (l *Revocations) Revoked(id string) (Revocation, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	r, ok := l.byID[id]
	return r, ok
}

// List returns the revocations in force, newest first.
func (l *Revocations) List() []Revocation {
	l.mu.RLock()
	out := make([]Revocation, 0, len(l.byID))
	for _, r := range l.byID {
		out = append(out, r)
	}
	l.mu.RUnlock()
	slices.SortFunc(out, func(a, b Revocation) int {
		if c := b.RevokedAt.Compare(a.RevokedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Revoke stores r, applies it here and announces it. A token revoked
// before keeps its first revocation, which is returned.
func (l *Revocations) Revoke(ctx context.Context, r Revocation) (Revocation, error) {
	if err := CheckRevocation(r); err != nil {
		return r, err
	}
	if was, ok := l.Revoked(r.ID); ok {
		return was, nil
	}
	if r.RevokedAt.IsZero() {
		r.RevokedAt = l.now()
	}
	r.RevokedAt = r.RevokedAt.UTC().Truncate(time.Second)
	if l.store != nil {
		if err := l.store.AddRevocation(ctx, r); err != nil {
			return r, fmt.Errorf("store revocation of token %s: %w", r.ID, err)
		}
	}
	l.add([]Revocation{r})
	if l.pub != nil {
		if err := Announce(ctx, l.pub, r); err != nil {
			// Stored: other nodes apply it at their next refresh.
			l.logger.Warn("announce revocation; other nodes apply it at their next refresh", "id", r.ID, "err", err)
		}
	}
	return r, nil
}

// Announce publishes r on RevokedTopic.
func Announce(ctx context.Context, pub Announcer, r Revocation) error {
	payload, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return pub.Publish(ctx, bus.Message{Topic: RevokedTopic, Payload: payload})
}

// Apply takes a revocation announced on the bus. It never blocks.
func (l *Revocations) Apply(payload []byte) {
	var r Revocation
	if err := json.Unmarshal(payload, &r); err != nil || r.ID == "" {
		l.logger.Warn("malformed message on "+RevokedTopic, "err", err)
		return
	}
	l.add([]Revocation{r})
}

// add keeps rs and tells the listeners of those newly known.
func (l *Revocations) add(rs []Revocation) {
	now := l.now()
	var fresh []string
	l.mu.Lock()
	for _, r := range rs {
		if r.ExpiresAt != nil && r.ExpiresAt.Before(now) {
			continue
		}
		if _, ok := l.byID[r.ID]; !ok {
			l.byID[r.ID] = r
			fresh = append(fresh, r.ID)
		}
	}
	listeners := slices.Clone(l.listeners)
	l.mu.Unlock()
	if len(fresh) > 0 {
		for _, f := range listeners {
			f(fresh)
		}
	}
}

// Load reads the list from the store.
func (l *Revocations) Load(ctx context.Context) error {
	if l.store == nil {
		return nil
	}
	rs, err := l.store.LoadRevocations(ctx)
	if err != nil {
		return fmt.Errorf("load token revocations: %w", err)
	}
	l.add(rs)
	// Forget what expired: an expired token is refused anyway.
	now := l.now()
	l.mu.Lock()
	for id, r := range l.byID {
		if r.ExpiresAt != nil && r.ExpiresAt.Before(now) {
			delete(l.byID, id)
		}
	}
	l.mu.Unlock()
	return nil
}

// Run reads the list again every Refresh until ctx ends, then returns nil;
// a failed read keeps the list in memory in force. Without a store it has
// nothing to read and returns nil at once.
func (l *Revocations) Run(ctx context.Context) error {
	if l.store == nil {
		return nil
	}
	t := time.NewTicker(l.cfg.Refresh)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, l.cfg.Refresh)
		err := l.Load(rctx)
		cancel()
		switch {
		case err != nil && !failing:
			failing = true
			l.logger.Warn("refresh token revocations; the list in memory stays in force", "err", err)
		case err == nil && failing:
			failing = false
			l.logger.Info("token revocations refreshed again")
		}
	}
}
