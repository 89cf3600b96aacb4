package main

import (
	"strings"
	"testing"
)

// IOC_PUBLIC_URL and IOC_TRUSTED_PROXIES are checked at start, and a bad
// value names its variable.
func TestPublicURLAndTrustedProxiesConfig(t *testing.T) {
	base := []string{"-admin-token", "0123456789abcdef"}
	cfg, err := parseServeConfig(append(base, "-public-url", "https://ioc.example.gov.vn/", "-trusted-proxies", "10.0.0.0/8, 192.168.1.10"))
	if err != nil || cfg.PublicURL != "https://ioc.example.gov.vn" || len(cfg.TrustedProxies) != 2 {
		t.Errorf("got %q %v, %v", cfg.PublicURL, cfg.TrustedProxies, err)
	}
	for _, bad := range [][]string{{"-public-url", "ioc.example.gov.vn"}, {"-trusted-proxies", "proxy.local"}} {
		want := map[string]string{"-public-url": "IOC_PUBLIC_URL", "-trusted-proxies": "IOC_TRUSTED_PROXIES"}[bad[0]]
		if _, err := parseServeConfig(append(base, bad...)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want an error naming %s", bad, err, want)
		}
	}
	if cfg, err := parseServeConfig(base); err != nil || cfg.PublicURL != "" || len(cfg.TrustedProxies) != 0 {
		t.Errorf("defaults: got %q %v, %v", cfg.PublicURL, cfg.TrustedProxies, err)
	}
}
