package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/testenv"
)

func TestTokenCommand(t *testing.T) {
	t.Setenv("IOC_JWT_SECRET", "")
	t.Setenv("VAR", "")
	v := auth.NewVerifier("", []byte(jwtSecret))
	f := func(args []string, wantRole auth.Role, wantAreas []string) auth.Principal {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := token(append([]string{"--jwt-secret", jwtSecret}, args...), &out, &errOut); err != nil {
			t.Fatalf("iocd token %v: %v", args, err)
		}
		p, err := v.Verify(strings.TrimSpace(out.String()))
		if err != nil {
			t.Fatalf("iocd token %v printed a token that does not verify: %v", args, err)
		}
		if p.Role != wantRole || !slices.Equal(p.Areas, wantAreas) {
			t.Errorf("iocd token %v: got role %s areas %v, want %s %v", args, p.Role, p.Areas, wantRole, wantAreas)
		}
		if p.ID == "" || !strings.Contains(errOut.String(), "token id "+p.ID) {
			t.Errorf("iocd token %v: id %q, stderr %q; want the token's id on stderr", args, p.ID, errOut.String())
		}
		return p
	}
	f([]string{"--role", "viewer", "--area", "26740", "--ttl", "24h"}, auth.Viewer, []string{"26740"})
	f([]string{"--role", "viewer", "--area", "26740,26743", "--area", "01"}, auth.Viewer, []string{"26740", "26743", "01"})
	f([]string{"--role", "admin"}, auth.Admin, []string{"*"})
	f([]string{"--role", "ingest", "--area", "79"}, auth.Ingest, []string{"79"})

	refuse := func(args []string, want string) {
		t.Helper()
		err := token(args, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("iocd token %v: got %v, want an error containing %q", args, err, want)
		}
	}
	refuse([]string{"--jwt-secret", jwtSecret, "--role", "viewer", "--area", "26734"}, `area "26734" is not a unit of vn-2025`)
	refuse([]string{"--jwt-secret", jwtSecret, "--role", "viewer"}, "a viewer token needs --area")
	refuse([]string{"--jwt-secret", jwtSecret, "--role", "ingest"}, "an ingest token needs --area")
	refuse([]string{"--jwt-secret", jwtSecret, "--role", "root", "--area", "79"}, `role "root" is not one of`)
}

// TestTokenSecretFile: iocd token finds the secret where make run keeps it,
// as the README's example expects, and says where it looked when it cannot.
func TestTokenSecretFile(t *testing.T) {
	t.Setenv("IOC_JWT_SECRET", "")
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("VAR", "")
	issue := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := token(append([]string{"--role", "viewer", "--area", "79"}, args...), &out, &bytes.Buffer{})
		return strings.TrimSpace(out.String()), err
	}
	if _, err := issue(); err == nil || !strings.Contains(err.Error(), "no signing secret") || !strings.Contains(err.Error(), filepath.Join("var", "jwt-secret")) {
		t.Errorf("without a secret: got %v, want one naming var/jwt-secret", err)
	}
	// make run's file, with the newline an editor adds.
	if err := os.MkdirAll("var", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("var", "jwt-secret"), []byte("make-run-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(tok, secret, what string) {
		t.Helper()
		if _, err := auth.NewVerifier("", []byte(secret)).Verify(tok); err != nil {
			t.Errorf("%s: the token does not verify with %q: %v", what, secret, err)
		}
	}
	tok, err := issue()
	if err != nil {
		t.Fatal(err)
	}
	check(tok, "make-run-secret", "var/jwt-secret")
	// $VAR moves it, as it moves make run's data.
	other := filepath.Join(dir, "elsewhere")
	os.MkdirAll(other, 0o700)
	os.WriteFile(filepath.Join(other, "jwt-secret"), []byte("moved-secret"), 0o600)
	t.Setenv("VAR", other)
	tok, _ = issue()
	check(tok, "moved-secret", "$VAR/jwt-secret")
	// IOC_JWT_SECRET comes before the file, --secret-file before both.
	t.Setenv("IOC_JWT_SECRET", "env-secret")
	tok, _ = issue()
	check(tok, "env-secret", "IOC_JWT_SECRET")
	tok, _ = issue("--secret-file", filepath.Join("var", "jwt-secret"))
	check(tok, "make-run-secret", "--secret-file")
	if _, err := issue("--secret-file", "missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing --secret-file: got %v", err)
	}
}

// TestTokenRevokeCommand: iocd token revoke stores the revocation where
// every node reads it, and iocd token revoked lists it.
func TestTokenRevokeCommand(t *testing.T) {
	t.Setenv("IOC_CLICKHOUSE_ADDR", testenv.ClickHouseAddr(t))
	t.Setenv("IOC_CLICKHOUSE_DATABASE", testenv.Database(t))
	t.Setenv("IOC_REDIS_ADDR", "")
	tok, err := auth.Issue([]byte(jwtSecret), auth.Principal{Subject: "wall-3", Role: auth.Viewer, Areas: []string{"79"}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := auth.NewVerifier("", []byte(jwtSecret)).Verify(tok)
	if err := revokeToken([]string{p.ID}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "needs a reason") {
		t.Errorf("revoke without a reason: got %v", err)
	}
	var out bytes.Buffer
	// The token itself may be given: its id and expiry are read from it.
	if err := revokeToken([]string{"--reason", "wall screen stolen", tok}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "token "+p.ID+" revoked") {
		t.Errorf("revoke printed %q", out.String())
	}
	out.Reset()
	if err := listRevoked(nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), p.ID) || !strings.Contains(out.String(), "wall screen stolen") {
		t.Errorf("revoked lists %q, want the token's id and reason", out.String())
	}
	// A node reading the same database refuses the token.
	cfg := testConfig(t)
	cfg.ClickHouse.Database = os.Getenv("IOC_CLICKHOUSE_DATABASE")
	n := startNode(t, cfg)
	resp := n.do("GET", "/api/v1/areas/79", tok, "", nil)
	body := readAll(t, resp)
	if resp.StatusCode != 401 || !strings.Contains(body, "revoked") || !strings.Contains(body, "wall screen stolen") {
		t.Errorf("a revoked token: got %d %s, want 401 saying it was revoked and why", resp.StatusCode, body)
	}
}
