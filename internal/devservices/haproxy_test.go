package devservices

import (
	"os"
	"strings"
	"testing"
)

// The balancer make test runs is the one deploy/ ships: the same
// defaults and backend, for the shipped file's three example nodes.
func TestShippedHAProxyConfigIsTheTestedOne(t *testing.T) {
	b, err := os.ReadFile("../../deploy/haproxy-iocd.cfg")
	if err != nil {
		t.Fatal(err)
	}
	shipped := string(b)
	for what, want := range map[string]string{
		"defaults": haproxyDefaults,
		"backend":  HAProxyBackend([]string{"10.0.0.11:8080", "10.0.0.12:8080", "10.0.0.13:8080"}),
	} {
		if !strings.Contains(shipped, want) {
			t.Errorf("deploy/haproxy-iocd.cfg: its %s section differs from the tested one; want:\n%s", what, want)
		}
	}
}
