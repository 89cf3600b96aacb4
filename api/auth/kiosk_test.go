package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestKioskRole: a kiosk token carries its screen and reads like a viewer
// in its areas; it may not ingest nor act; only kiosk tokens carry a
// screen, and every kiosk token names one.
func TestKioskRole(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Now()
	tok, err := Issue(secret, Principal{Role: Kiosk, Areas: []string{"79"}, Screen: "wall-79-1"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewVerifier("", secret).Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Role != Kiosk || p.Screen != "wall-79-1" || !p.CanRead() || p.CanAct() || p.CanIngest() || p.Unrestricted() {
		t.Errorf("kiosk principal %+v: want a reader bound to wall-79-1 that may not act nor ingest", p)
	}
	for _, c := range []struct {
		p    Principal
		want string
	}{
		{Principal{Role: Kiosk, Areas: []string{"79"}}, "must name its screen"},
		{Principal{Role: Kiosk, Areas: []string{"79"}, Screen: "Wall 1"}, "must name its screen"},
		{Principal{Role: Kiosk, Screen: "s1"}, "must name areas"},
		{Principal{Role: Viewer, Areas: []string{"79"}, Screen: "s1"}, "only kiosk tokens"},
	} {
		if _, err := Issue(secret, c.p, time.Hour, now); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("issue %+v: got %v, want %q", c.p, err, c.want)
		}
	}
	// A token signed elsewhere with a screen on another role is refused.
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "viewer", "areas": []string{"79"}, "screen": "s1",
		"exp": now.Add(time.Hour).Unix()}).SignedString(secret)
	if _, err := NewVerifier("", secret).Verify(forged); !errors.Is(err, ErrInvalid) {
		t.Errorf("a viewer token with a screen: got %v, want ErrInvalid", err)
	}
}

// TestKioskLinks: a kiosk token's short link opens its token until the
// token is revoked or expires; unknown and malformed codes open nothing.
func TestKioskLinks(t *testing.T) {
	ctx := context.Background()
	secret := []byte("s3cret")
	revs := NewRevocations(RevocationsConfig{}, nil, nil, nil)
	store := NewMemoryKioskLinks()
	k := NewKiosks(secret, store, revs)
	kt, err := k.Issue(ctx, "s1", []string{"79"}, "", 0, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if !ValidKioskCode(kt.Code) || kt.Subject != "kiosk s1" || kt.ExpiresAt.Sub(time.Now()) < DefaultKioskTTL-time.Minute {
		t.Errorf("issued %+v: want a valid code, subject \"kiosk s1\", a year's life", kt)
	}
	p, err := NewVerifier("", secret).Verify(kt.Token)
	if err != nil || p.Screen != "s1" || p.ID != kt.ID {
		t.Fatalf("the issued token: %+v %v", p, err)
	}
	l, err := k.Open(ctx, strings.ToUpper(kt.Code)) // read off a sheet of paper, in capitals
	if err != nil || l.Token != kt.Token || l.Screen != "s1" || l.TokenID != kt.ID || l.CreatedBy != "admin" {
		t.Fatalf("open %s: %+v %v", kt.Code, l, err)
	}
	other := NewKioskCode()
	for other == kt.Code {
		other = NewKioskCode()
	}
	for _, code := range []string{other, "short", kt.Code + "x", "iiiiiiiiii"} {
		if _, err := k.Open(ctx, code); !errors.Is(err, ErrUnknownLink) {
			t.Errorf("open %q: got %v, want ErrUnknownLink", code, err)
		}
	}
	if _, err := revs.Revoke(ctx, Revocation{ID: kt.ID, Reason: "screen stolen", RevokedBy: "admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(ctx, kt.Code); !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "screen stolen") {
		t.Errorf("open a revoked token's link: got %v, want ErrRevoked with the reason", err)
	}
	short, err := k.Issue(ctx, "s2", []string{"79"}, "wall pc 2", time.Minute, "admin")
	if err != nil {
		t.Fatal(err)
	}
	k.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, err := k.Open(ctx, short.Code); !errors.Is(err, ErrLinkExpired) {
		t.Errorf("open an expired token's link: got %v, want ErrLinkExpired", err)
	}
	if _, err := k.Issue(ctx, "Not An Id", []string{"79"}, "", 0, "admin"); err == nil {
		t.Error("a kiosk token for a malformed screen id was issued")
	}
}
