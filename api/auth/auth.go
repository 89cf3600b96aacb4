// Package auth turns credentials into principals and says what each may
// reach: the bootstrap admin token, HS256 JWTs carrying a role, an id and
// the units whose subtrees the holder covers (and, for a kiosk, the one
// screen it drives), and cameras' own HTTP Basic credentials. It owns the area scope (Scope: units are keyed by hierarchy
// and code, and older hierarchies are reached through the crosswalks), the
// list of revoked tokens (Revocations), kiosk tokens and their short links
// (Kiosks), and the limit on failed authentications per client address
// (FailureLimiter). Scope always comes from the credentials, never from the
// request.
//
// Concurrency: a Verifier and a Scope are safe for concurrent use; so are
// Revocations, whose Run refreshes the list until its context ends, Kiosks
// and FailureLimiter.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openioc/ioc/dashboards"

	"github.com/golang-jwt/jwt/v5"
)

// Role is what a principal may do.
type Role string

const (
	Admin    Role = "admin"    // everything
	Ingest   Role = "ingest"   // push records of the units in its scope, nothing else
	Viewer   Role = "viewer"   // read figures of the units in its scope
	Operator Role = "operator" // read like a viewer, act on the alarms and register the devices in its scope
	// Kiosk reads like a viewer in its scope and follows the live state of
	// its one screen (Principal.Screen); it writes nothing but the reports
	// of that screen's page.
	Kiosk Role = "kiosk"
)

// Roles lists the valid roles.
var Roles = []Role{Admin, Ingest, Viewer, Operator, Kiosk}

// AllAreas in a token's areas grants every unit.
const AllAreas = "*"

// Principal is who a request acts as.
type Principal struct {
	Subject string
	Role    Role
	// Areas are units of the deployment's current hierarchy whose subtrees
	// the principal covers; ["*"] for all. Other hierarchies are covered
	// through the crosswalks (see Scope).
	Areas []string
	// ID is the token's id (the JWT's jti), which a revocation names. It is
	// empty for the admin token, for device credentials and for tokens
	// issued before tokens had ids.
	ID string
	// Device is set when a camera authenticated with its own credentials:
	// the one device whose reports the request may carry.
	Device string
	// Key identifies the credential for per-token limits: "jti:" and the
	// id, else a digest of the token.
	Key string
	// ExpiresAt is when the token stops being valid; zero for the admin
	// token and device credentials.
	ExpiresAt time.Time
	// Screen is the screen a kiosk token is bound to (the claim "screen");
	// empty for every other role.
	Screen string

	// scope maps Areas onto every hierarchy; see WithScope.
	scope Coverage
}

// CanIngest reports whether p may push records.
func (p Principal) CanIngest() bool { return p.Role == Admin || p.Role == Ingest }

// CanRead reports whether p may read figures (in some scope).
func (p Principal) CanRead() bool {
	return p.Role == Admin || p.Role == Viewer || p.Role == Operator || p.Role == Kiosk
}

// CanAct reports whether p may acknowledge and resolve alarms and register
// devices (in its scope).
func (p Principal) CanAct() bool { return p.Role == Admin || p.Role == Operator }

// Unrestricted reports whether p covers every unit of every hierarchy.
func (p Principal) Unrestricted() bool {
	return p.Role == Admin || slices.Contains(p.Areas, AllAreas)
}

// Coverage says whether the subtrees of areas, units of the deployment's
// current hierarchy, cover unit code of a hierarchy. Scope implements it.
type Coverage interface {
	Covers(areas []string, hierarchy, code string) bool
}

// WithScope returns p with the rule that maps its areas onto every
// hierarchy. The server sets it on every principal it authenticates; a
// principal without one covers nothing unless it is unrestricted.
func (p Principal) WithScope(c Coverage) Principal {
	p.scope = c
	return p
}

// Hierarchy names the hierarchy of a unit code; *geo.Hierarchy is one.
type Hierarchy interface{ Name() string }

// HierarchyName is a Hierarchy known by its name only.
type HierarchyName string

// Name returns n.
func (n HierarchyName) Name() string { return string(n) }

// Covers reports whether unit code of hierarchy h lies in p's scope,
// whatever p's role: units are keyed by (hierarchy, code).
func (p Principal) Covers(h Hierarchy, code string) bool {
	if p.Unrestricted() {
		return true
	}
	if p.scope == nil {
		return false
	}
	return p.scope.Covers(p.Areas, h.Name(), code)
}

// MayRead reports whether p may read unit code of hierarchy h.
func (p Principal) MayRead(h Hierarchy, code string) bool {
	return p.CanRead() && p.Covers(h, code)
}

// AreasText names p's areas for a refusal.
func (p Principal) AreasText() string {
	if len(p.Areas) == 0 {
		return "no areas"
	}
	return strings.Join(p.Areas, ", ")
}

// Errors a request can get.
var (
	ErrMissing = errors.New("missing bearer token: send Authorization: Bearer <token>")
	ErrInvalid = errors.New("invalid token")
	ErrRevoked = errors.New("token revoked")
)

// Revoked says whether a token id was revoked. Revocations implements it.
type Revoked interface {
	Revoked(id string) (Revocation, bool)
}

// Verifier checks tokens.
type Verifier struct {
	adminToken []byte
	secret     []byte
	revoked    Revoked
	now        func() time.Time
}

// NewVerifier accepts adminToken (if not empty) as an admin, and JWTs signed
// with secret (if not empty).
func NewVerifier(adminToken string, secret []byte) *Verifier {
	return &Verifier{adminToken: []byte(adminToken), secret: secret, now: time.Now}
}

// WithRevocations returns a copy of v that refuses the tokens r says were
// revoked.
func (v *Verifier) WithRevocations(r Revoked) *Verifier {
	c := *v
	c.revoked = r
	return &c
}

type claims struct {
	Role   Role     `json:"role"`
	Areas  []string `json:"areas"`
	Screen string   `json:"screen,omitempty"`
	jwt.RegisteredClaims
}

// Verify returns the principal a token stands for.
func (v *Verifier) Verify(token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrMissing
	}
	if len(v.adminToken) > 0 && subtle.ConstantTimeCompare([]byte(token), v.adminToken) == 1 {
		return Principal{Subject: "admin-token", Role: Admin, Areas: []string{AllAreas}, Key: "admin-token"}, nil
	}
	if len(v.secret) == 0 || strings.Count(token, ".") != 2 {
		return Principal{}, fmt.Errorf("%w: not the admin token and not a JWT", ErrInvalid)
	}
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(v.now))
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	p := Principal{Subject: c.Subject, Role: c.Role, Areas: c.Areas, ID: c.ID, ExpiresAt: c.ExpiresAt.Time, Screen: c.Screen}
	if p.Role == Ingest && p.ID == "" && len(p.Areas) == 0 {
		// Issued before ingest tokens were scoped (and before tokens had
		// ids): it keeps the reach it was issued with until it expires.
		p.Areas = []string{AllAreas}
	}
	if err := p.check(); err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if p.ID != "" {
		p.Key = "jti:" + p.ID
		if v.revoked != nil {
			if r, ok := v.revoked.Revoked(p.ID); ok {
				return Principal{}, fmt.Errorf("%w: %s", ErrRevoked, r.describe())
			}
		}
	} else {
		sum := sha256.Sum256([]byte(token))
		p.Key = "sha256:" + hex.EncodeToString(sum[:12])
	}
	return p, nil
}

func (p Principal) check() error {
	if !slices.Contains(Roles, p.Role) {
		return fmt.Errorf("role %q is not one of admin, ingest, viewer, operator, kiosk", p.Role)
	}
	if p.Role != Admin && len(p.Areas) == 0 {
		return fmt.Errorf("%s tokens must name areas (unit codes, or \"*\" for all)", p.Role)
	}
	switch {
	case p.Role == Kiosk && !ValidScreenID(p.Screen):
		return fmt.Errorf("a kiosk token must name its screen: an id of 1 to 63 lower-case letters, digits and '-', starting with a letter or digit (got %q)", p.Screen)
	case p.Role != Kiosk && p.Screen != "":
		return fmt.Errorf("only kiosk tokens are bound to a screen (this one is %s)", p.Role)
	}
	return nil
}

// ValidScreenID says whether id can name a screen: the id rule of every
// wall document, ^[a-z0-9][a-z0-9-]{0,62}$.
func ValidScreenID(id string) bool { return dashboards.ValidID(id) }

// NewID returns a fresh token id: 128 random bits in hexadecimal.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// Issue signs a token for p valid for ttl, with p.ID as its id (a fresh
// one when empty).
func Issue(secret []byte, p Principal, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("no signing secret: set IOC_JWT_SECRET")
	}
	if ttl <= 0 {
		return "", errors.New("token lifetime must be positive")
	}
	if err := p.check(); err != nil {
		return "", err
	}
	if p.Subject == "" {
		p.Subject = string(p.Role)
	}
	if p.ID == "" {
		p.ID = NewID()
	}
	c := claims{Role: p.Role, Areas: p.Areas, Screen: p.Screen, RegisteredClaims: jwt.RegisteredClaims{
		ID: p.ID, Subject: p.Subject, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}
