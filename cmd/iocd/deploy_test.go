package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The systemd unit shipped in deploy/ is valid for this systemd, and
// starts the binary with its secrets as credential files.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("this test checks deploy/iocd.service with systemd-analyze: install Debian's systemd package (scripts/install-deps.sh does): %v", err)
	}
	unit, err := os.ReadFile("../../deploy/iocd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/iocd serve", "LoadCredential=admin-token:", "IOC_ADMIN_TOKEN_FILE=%d/admin-token", "IOC_JWT_SECRET_FILE=%d/jwt-secret"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("deploy/iocd.service lacks %q", want)
		}
	}
	// Verified against a real binary where the unit expects it.
	dir := t.TempDir()
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/iocd", iocdBinary(t))
	path := filepath.Join(dir, "iocd.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify deploy/iocd.service: %v\n%s", err, out)
	}
}
