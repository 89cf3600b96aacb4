// Package auth turns bearer tokens into principals: the bootstrap admin
// token, or HS256 JWTs carrying a role and the units whose subtrees the
// holder may read. Scope always comes from the token, never from the request.
//
// Concurrency: a Verifier is immutable and safe for concurrent use.
package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Role is what a principal may do.
type Role string

const (
	Admin    Role = "admin"    // everything
	Ingest   Role = "ingest"   // push records and register devices, nothing else
	Viewer   Role = "viewer"   // read figures of the units in its scope
	Operator Role = "operator" // read like a viewer, and act on the alarms in its scope
)

// Roles lists the valid roles.
var Roles = []Role{Admin, Ingest, Viewer, Operator}

// AllAreas in a token's areas grants every unit.
const AllAreas = "*"

// Principal is who a request acts as.
type Principal struct {
	Subject string
	Role    Role
	Areas   []string // unit codes whose subtrees may be read; ["*"] for all
}

// CanIngest reports whether p may push records.
func (p Principal) CanIngest() bool { return p.Role == Admin || p.Role == Ingest }

// CanRead reports whether p may read figures (in some scope).
func (p Principal) CanRead() bool { return p.Role == Admin || p.Role == Viewer || p.Role == Operator }

// CanAct reports whether p may acknowledge and resolve alarms (in its scope).
func (p Principal) CanAct() bool { return p.Role == Admin || p.Role == Operator }

// Unrestricted reports whether p reads every unit.
func (p Principal) Unrestricted() bool {
	return p.Role == Admin || slices.Contains(p.Areas, AllAreas)
}

// Tree answers whether a unit lies in the subtree of another.
type Tree interface {
	Contains(root, code string) bool
}

// MayRead reports whether p may read unit code of the tree.
func (p Principal) MayRead(t Tree, code string) bool {
	if !p.CanRead() {
		return false
	}
	if p.Unrestricted() {
		return true
	}
	for _, a := range p.Areas {
		if t.Contains(a, code) {
			return true
		}
	}
	return false
}

// Errors a request can get.
var (
	ErrMissing = errors.New("missing bearer token: send Authorization: Bearer <token>")
	ErrInvalid = errors.New("invalid token")
)

// Verifier checks tokens.
type Verifier struct {
	adminToken []byte
	secret     []byte
	now        func() time.Time
}

// NewVerifier accepts adminToken (if not empty) as an admin, and JWTs signed
// with secret (if not empty).
func NewVerifier(adminToken string, secret []byte) *Verifier {
	return &Verifier{adminToken: []byte(adminToken), secret: secret, now: time.Now}
}

type claims struct {
	Role  Role     `json:"role"`
	Areas []string `json:"areas"`
	jwt.RegisteredClaims
}

// Verify returns the principal a token stands for.
func (v *Verifier) Verify(token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrMissing
	}
	if len(v.adminToken) > 0 && subtle.ConstantTimeCompare([]byte(token), v.adminToken) == 1 {
		return Principal{Subject: "admin-token", Role: Admin, Areas: []string{AllAreas}}, nil
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
	p := Principal{Subject: c.Subject, Role: c.Role, Areas: c.Areas}
	if err := p.check(); err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return p, nil
}

func (p Principal) check() error {
	if !slices.Contains(Roles, p.Role) {
		return fmt.Errorf("role %q is not one of admin, ingest, viewer, operator", p.Role)
	}
	if (p.Role == Viewer || p.Role == Operator) && len(p.Areas) == 0 {
		return fmt.Errorf("a %s token must name areas (unit codes, or \"*\" for all)", p.Role)
	}
	return nil
}

// Issue signs a token for p valid for ttl.
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
	c := claims{Role: p.Role, Areas: p.Areas, RegisteredClaims: jwt.RegisteredClaims{
		Subject: p.Subject, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}
