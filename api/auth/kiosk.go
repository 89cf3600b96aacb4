package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Kiosk tokens drive the screens of a control-room wall: each is bound to
// one screen (Principal.Screen) and its areas, lives long (a year by
// default), and is revocable like any token. A wall PC has no keyboard, so
// every kiosk token gets a short link, /k/{code}: the code stands for the
// token, kept by the server with the token's id, so that a revoked token's
// link no longer opens anything.

// DefaultKioskTTL is the lifetime of a kiosk token unless told otherwise:
// a screen on a wall runs for months, and is revoked when it must stop.
const DefaultKioskTTL = 365 * 24 * time.Hour

// KioskLink is what a short link's code stands for.
type KioskLink struct {
	Code      string
	TokenID   string // the token's jti, which a revocation names
	Screen    string
	Token     string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// KioskLinkStore keeps the links where every node finds them.
type KioskLinkStore interface {
	AddKioskLink(ctx context.Context, l KioskLink) error
	// KioskLink returns the link of code; false when there is none.
	KioskLink(ctx context.Context, code string) (KioskLink, bool, error)
}

// KioskToken is an issued kiosk token and its short link's code.
type KioskToken struct {
	Token     string    `json:"token"`
	ID        string    `json:"id"`
	Screen    string    `json:"screen"`
	Areas     []string  `json:"areas"`
	Subject   string    `json:"subject"`
	ExpiresAt time.Time `json:"expires_at"`
	Code      string    `json:"code"`
}

// Errors of opening a short link.
var (
	ErrUnknownLink = errors.New("unknown kiosk link")
	ErrLinkExpired = errors.New("kiosk link expired")
)

// Kiosks issues kiosk tokens with their short links, and opens the links.
//
// Concurrency: safe for concurrent use.
type Kiosks struct {
	secret  []byte
	store   KioskLinkStore
	revoked Revoked // nil: nothing is revoked
	now     func() time.Time
}

// NewKiosks issues with secret (IOC_JWT_SECRET), keeps links in store and
// refuses links whose token revoked lists (nil: none).
func NewKiosks(secret []byte, store KioskLinkStore, revoked Revoked) *Kiosks {
	return &Kiosks{secret: secret, store: store, revoked: revoked, now: time.Now}
}

// CanIssue says whether tokens can be signed: IOC_JWT_SECRET is set.
func (k *Kiosks) CanIssue() bool { return len(k.secret) > 0 }

// Issue signs a kiosk token for screen over areas, valid for ttl
// (DefaultKioskTTL when 0), and stores its short link; by is who asked.
func (k *Kiosks) Issue(ctx context.Context, screen string, areas []string, subject string, ttl time.Duration, by string) (KioskToken, error) {
	if ttl == 0 {
		ttl = DefaultKioskTTL
	}
	if subject == "" {
		subject = "kiosk " + screen
	}
	now := k.now()
	p := Principal{Subject: subject, Role: Kiosk, Areas: areas, Screen: screen, ID: NewID()}
	tok, err := Issue(k.secret, p, ttl, now)
	if err != nil {
		return KioskToken{}, err
	}
	exp := now.Add(ttl).UTC().Truncate(time.Second)
	l := KioskLink{Code: NewKioskCode(), TokenID: p.ID, Screen: screen, Token: tok, CreatedBy: by,
		CreatedAt: now.UTC().Truncate(time.Second), ExpiresAt: exp}
	if err := k.store.AddKioskLink(ctx, l); err != nil {
		return KioskToken{}, fmt.Errorf("store the short link of the kiosk token for screen %s: %w", screen, err)
	}
	return KioskToken{Token: tok, ID: p.ID, Screen: screen, Areas: areas, Subject: subject, ExpiresAt: exp, Code: l.Code}, nil
}

// Open returns the link of code if its token may still be used: an error
// wrapping ErrUnknownLink, ErrRevoked or ErrLinkExpired says why not.
func (k *Kiosks) Open(ctx context.Context, code string) (KioskLink, error) {
	code = strings.ToLower(code)
	if !ValidKioskCode(code) {
		return KioskLink{}, fmt.Errorf("%w: a code is %d letters and digits, as printed by iocd token --kiosk", ErrUnknownLink, KioskCodeLen)
	}
	l, ok, err := k.store.KioskLink(ctx, code)
	switch {
	case err != nil:
		return KioskLink{}, err
	case !ok:
		return KioskLink{}, fmt.Errorf("%w: check the address, or ask your administrator for a new kiosk link", ErrUnknownLink)
	}
	if k.revoked != nil {
		if r, revoked := k.revoked.Revoked(l.TokenID); revoked {
			return KioskLink{}, fmt.Errorf("%w: %s", ErrRevoked, r.describe())
		}
	}
	if !k.now().Before(l.ExpiresAt) {
		return KioskLink{}, fmt.Errorf("%w at %s: ask your administrator for a new kiosk link", ErrLinkExpired, l.ExpiresAt.Format(time.RFC3339))
	}
	return l, nil
}

// KioskCodeLen is the length of a short link's code: 50 random bits, too
// many to guess when failed attempts are limited per address.
const KioskCodeLen = 10

// kioskAlphabet is Crockford's base32 in lower case: no i, l, o or u, so
// that a code read off a screen or a sheet of paper is typed right.
const kioskAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// NewKioskCode returns a fresh random code.
func NewKioskCode() string {
	var b [KioskCodeLen]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	for i := range b {
		b[i] = kioskAlphabet[b[i]&31]
	}
	return string(b[:])
}

// ValidKioskCode says whether code has the form of a code (lower case).
func ValidKioskCode(code string) bool {
	if len(code) != KioskCodeLen {
		return false
	}
	for i := range len(code) {
		if !strings.ContainsRune(kioskAlphabet, rune(code[i])) {
			return false
		}
	}
	return true
}

// MemoryKioskLinks keeps links in memory: a single node in tests.
type MemoryKioskLinks struct {
	mu    sync.Mutex
	links map[string]KioskLink
}

// NewMemoryKioskLinks returns an empty store.
func NewMemoryKioskLinks() *MemoryKioskLinks {
	return &MemoryKioskLinks{links: map[string]KioskLink{}}
}

// AddKioskLink keeps l.
func (m *MemoryKioskLinks) AddKioskLink(_ context.Context, l KioskLink) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.links[l.Code] = l
	return nil
}

// KioskLink returns the link of code.
func (m *MemoryKioskLinks) KioskLink(_ context.Context, code string) (KioskLink, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[code]
	return l, ok, nil
}
