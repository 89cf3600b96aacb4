package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

type tree map[string]string // child → parent

func (t tree) Contains(root, code string) bool {
	for c := code; c != ""; c = t[c] {
		if c == root {
			return true
		}
	}
	return false
}

// Covers treats t as the current hierarchy "t"; no other is reachable.
func (t tree) Covers(areas []string, hierarchy, code string) bool {
	if hierarchy != "t" {
		return false
	}
	for _, a := range areas {
		if t.Contains(a, code) {
			return true
		}
	}
	return false
}

var tn = HierarchyName("t")

var units = tree{"79": "", "26740": "79", "26743": "79", "01": "", "00004": "01"}

func TestVerify(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	v := NewVerifier("admin-xyz", secret)
	v.now = func() time.Time { return now }
	issue := func(p Principal, ttl time.Duration) string {
		t.Helper()
		tok, err := Issue(secret, p, ttl, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	f := func(token string, wantErr string) Principal {
		t.Helper()
		p, err := v.Verify(token)
		if wantErr == "" && err != nil {
			t.Fatalf("got %v, want no error", err)
		}
		if wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("got %v, want an error containing %q", err, wantErr)
		}
		return p.WithScope(units)
	}
	if p := f("admin-xyz", ""); p.Role != Admin || !p.MayRead(tn, "00004") {
		t.Errorf("admin token: got %+v", p)
	}
	p := f(issue(Principal{Subject: "leader", Role: Viewer, Areas: []string{"26740"}}, time.Hour), "")
	if p.Subject != "leader" || !p.MayRead(tn, "26740") || p.MayRead(tn, "26743") || p.MayRead(tn, "79") || p.CanIngest() {
		t.Errorf("commune viewer: got %+v with wrong rights", p)
	}
	p = f(issue(Principal{Role: Viewer, Areas: []string{"79"}}, time.Hour), "")
	if !p.MayRead(tn, "79") || !p.MayRead(tn, "26743") || p.MayRead(tn, "00004") {
		t.Errorf("province viewer: got %+v with wrong rights", p)
	}
	p = f(issue(Principal{Role: Ingest, Areas: []string{"26740"}}, time.Hour), "")
	if !p.CanIngest() || p.MayRead(tn, "26740") || !p.Covers(tn, "26740") || p.Covers(tn, "00004") {
		t.Errorf("ingest token: got %+v with wrong rights", p)
	}
	if p.ID == "" || p.Key != "jti:"+p.ID {
		t.Errorf("ingest token: id %q, key %q; want an id, and the key naming it", p.ID, p.Key)
	}
	// An ingest token issued before tokens had ids and areas keeps its reach
	// until it expires; a new one without areas is refused.
	legacy, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "ingest", "sub": "old", "exp": now.Add(time.Hour).Unix()}).SignedString(secret)
	if p := f(legacy, ""); !p.Covers(tn, "00004") || p.ID != "" || !strings.HasPrefix(p.Key, "sha256:") {
		t.Errorf("legacy ingest token: got %+v, want every unit and a digest as key", p)
	}
	scopeless, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "ingest", "jti": "abc", "exp": now.Add(time.Hour).Unix()}).SignedString(secret)
	f(scopeless, "ingest tokens must name areas")
	f("", "missing bearer token")
	f("admin-xy", "not the admin token and not a JWT")
	f(issue(Principal{Role: Viewer, Areas: []string{"*"}}, time.Hour)+"x", "signature is invalid")
	expired, _ := Issue(secret, Principal{Role: Viewer, Areas: []string{"*"}}, time.Minute, now.Add(-time.Hour))
	f(expired, "token is expired")
	other, _ := Issue([]byte("other"), Principal{Role: Admin}, time.Hour, now)
	f(other, "signature is invalid")
	// A token without exp, or signed with another algorithm, is refused.
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "admin"}).SignedString(secret)
	f(noExp, "exp claim is required")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"role": "admin", "exp": now.Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	f(none, "signing method none is invalid")
	badRole, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "root", "exp": now.Add(time.Hour).Unix()}).SignedString(secret)
	f(badRole, `role "root" is not one of admin, ingest, viewer`)
	if _, err := v.Verify("a.b.c"); !errors.Is(err, ErrInvalid) {
		t.Errorf("garbage JWT: got %v, want ErrInvalid", err)
	}
}

func TestIssueRefuses(t *testing.T) {
	now := time.Now()
	if _, err := Issue(nil, Principal{Role: Admin}, time.Hour, now); err == nil || !strings.Contains(err.Error(), "IOC_JWT_SECRET") {
		t.Errorf("no secret: got %v", err)
	}
	if _, err := Issue([]byte("s"), Principal{Role: Viewer}, time.Hour, now); err == nil || !strings.Contains(err.Error(), "must name areas") {
		t.Errorf("viewer without areas: got %v", err)
	}
	if _, err := Issue([]byte("s"), Principal{Role: Admin}, 0, now); err == nil {
		t.Error("zero lifetime: got no error")
	}
}
