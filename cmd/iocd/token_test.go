package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/openioc/ioc/api/auth"
)

func TestTokenCommand(t *testing.T) {
	v := auth.NewVerifier("", []byte(jwtSecret))
	f := func(args []string, wantRole auth.Role, wantAreas []string) {
		t.Helper()
		var out bytes.Buffer
		if err := token(append([]string{"--jwt-secret", jwtSecret}, args...), &out); err != nil {
			t.Fatalf("iocd token %v: %v", args, err)
		}
		p, err := v.Verify(strings.TrimSpace(out.String()))
		if err != nil {
			t.Fatalf("iocd token %v printed a token that does not verify: %v", args, err)
		}
		if p.Role != wantRole || !slices.Equal(p.Areas, wantAreas) {
			t.Errorf("iocd token %v: got role %s areas %v, want %s %v", args, p.Role, p.Areas, wantRole, wantAreas)
		}
	}
	f([]string{"--role", "viewer", "--area", "26740", "--ttl", "24h"}, auth.Viewer, []string{"26740"})
	f([]string{"--role", "viewer", "--area", "26740,26743", "--area", "01"}, auth.Viewer, []string{"26740", "26743", "01"})
	f([]string{"--role", "admin"}, auth.Admin, []string{"*"})
	f([]string{"--role", "ingest"}, auth.Ingest, nil)

	refuse := func(args []string, want string) {
		t.Helper()
		err := token(args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("iocd token %v: got %v, want an error containing %q", args, err, want)
		}
	}
	refuse([]string{"--jwt-secret", jwtSecret, "--role", "viewer", "--area", "26734"}, `area "26734" is not a unit of vn-2025`)
	refuse([]string{"--jwt-secret", jwtSecret, "--role", "viewer"}, "a viewer token needs --area")
	refuse([]string{"--jwt-secret", jwtSecret, "--role", "root", "--area", "79"}, `role "root" is not one of`)
	refuse([]string{"--role", "viewer", "--area", "79"}, "IOC_JWT_SECRET")
}
