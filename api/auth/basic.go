package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Device credentials: camera platforms and NVRs authenticate with HTTP
// Basic (or not at all), not bearer tokens. An admin or operator gives a
// camera a password when registering it; the user name is the device id.
// Only a bcrypt hash is stored, and the API never returns it.

// MinSecretLen and MaxSecretLen bound a device password; bcrypt reads at
// most 72 bytes.
const (
	MinSecretLen = 12
	MaxSecretLen = 72
)

// HashCost is the bcrypt cost of new hashes. Tests lower it: under the
// race detector one hash at the default cost takes seconds.
var HashCost = bcrypt.DefaultCost

// HashSecret returns the bcrypt hash a device's password is kept as.
func HashSecret(password string) (string, error) {
	if n := len(password); n < MinSecretLen || n > MaxSecretLen || !utf8.ValidString(password) {
		return "", fmt.Errorf("password must be %d to %d bytes of UTF-8 (camera platforms send it as HTTP Basic with the device id as user name)", MinSecretLen, MaxSecretLen)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), HashCost)
	if err != nil {
		return "", fmt.Errorf("hash device password: %w", err)
	}
	return string(h), nil
}

// DeviceSecret finds a registered device's password hash ("" when it has
// none) and the unit it stands in.
type DeviceSecret func(id string) (hash, area string, ok bool)

// ErrBadCredentials is a device name or password that does not match.
var ErrBadCredentials = errors.New("wrong device id or password")

// DeviceVerifier checks devices' HTTP Basic credentials. bcrypt is slow on
// purpose, and a camera may post several alerts a second, so a successful
// check is remembered as a SHA-256 of the password next to the hash it
// matched: the same password is then accepted at once until the hash
// changes.
//
// Concurrency: safe for concurrent use.
type DeviceVerifier struct {
	lookup DeviceSecret

	mu   sync.Mutex
	good map[string]verified // by device id
}

type verified struct {
	hash string
	sum  [32]byte
}

// maxVerified bounds the remembered checks; the memory is emptied when full.
const maxVerified = 10000

// NewDeviceVerifier returns a verifier over lookup.
func NewDeviceVerifier(lookup DeviceSecret) *DeviceVerifier {
	return &DeviceVerifier{lookup: lookup, good: map[string]verified{}}
}

// Known reports whether id and password were accepted before and still
// match, without running bcrypt.
func (v *DeviceVerifier) Known(id, password string) bool {
	hash, _, ok := v.lookup(id)
	if !ok || hash == "" {
		return false
	}
	sum := sha256.Sum256([]byte(password))
	v.mu.Lock()
	g, found := v.good[id]
	v.mu.Unlock()
	return found && g.hash == hash && subtle.ConstantTimeCompare(g.sum[:], sum[:]) == 1
}

// Verify returns the principal of a device's credentials: an ingest
// principal scoped to the device's unit that may report as that device only.
func (v *DeviceVerifier) Verify(id, password string) (Principal, error) {
	hash, area, ok := v.lookup(id)
	if !ok || hash == "" {
		// Run bcrypt anyway, so that timing does not tell which ids exist.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return Principal{}, ErrBadCredentials
	}
	if !v.Known(id, password) {
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
			return Principal{}, ErrBadCredentials
		}
		v.mu.Lock()
		if len(v.good) >= maxVerified {
			clear(v.good)
		}
		v.good[id] = verified{hash: hash, sum: sha256.Sum256([]byte(password))}
		v.mu.Unlock()
	}
	return Principal{Subject: "device:" + id, Role: Ingest, Areas: []string{area}, Device: id, Key: "device:" + id}, nil
}

// dummyHash is compared against for unknown devices, at the cost real
// hashes have; made on first use, as it takes a good part of a second.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such device, no such password"), HashCost)
	return h
})
