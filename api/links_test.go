package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/internal/apitest"
	"github.com/openioc/ioc/geo"
)

// linkServer is a GIS server with cfg, served on a loopback port.
func linkServer(t *testing.T, cfg Config) string {
	t.Helper()
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	s, err := New(cfg, Deps{Geo: reg, KPIs: &apitest.Figures{Reg: reg, H: h}, Auth: auth.NewVerifier(apitest.Admin, apitest.Secret),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return apitest.Serve(t, s)
}

// links fetches target from base with the token in the URL and the given
// X-Forwarded headers, and returns every link of the answer.
func links(t *testing.T, base, target string, forwarded bool) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if forwarded {
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", "https")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", target, resp.StatusCode, body)
	}
	var doc struct {
		Links []apitest.Link `json:"links"`
		Tiles []string       `json:"tiles"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	out := doc.Tiles
	for _, l := range doc.Links {
		out = append(out, l.Href)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no links in %.300s", target, body)
	}
	return out
}

// TestLinksBase: links are built from IOC_PUBLIC_URL when set, and only then
// carry the caller's token; otherwise from the request's Host, believing
// X-Forwarded-Host and -Proto from trusted proxies only.
func TestLinksBase(t *testing.T) {
	targets := []string{"/ogc", "/ogc/collections/vn-2025.province/items?limit=2", "/tiles/vn-2025.commune.json"}
	check := func(what, base string, forwarded bool, wantPrefix string, wantToken bool) {
		t.Helper()
		for _, target := range targets {
			sep := "?"
			if strings.Contains(target, "?") {
				sep = "&"
			}
			for _, l := range links(t, base, target+sep+"access_token="+apitest.Admin, forwarded) {
				if !strings.HasPrefix(l, wantPrefix) {
					t.Errorf("%s, %s: link %s does not start with %s", what, target, l, wantPrefix)
				}
				if got := strings.Contains(l, apitest.Admin); got != wantToken {
					t.Errorf("%s, %s: link %s carries the token: %v, want %v", what, target, l, got, wantToken)
				}
			}
		}
	}
	plain := linkServer(t, Config{})
	check("no configuration, forged forwarded headers", plain, true, plain+"/", false)

	loopback := netip.MustParsePrefix("127.0.0.0/8")
	proxied := linkServer(t, Config{TrustedProxies: []netip.Prefix{loopback}})
	check("from a trusted proxy", proxied, true, "https://evil.example/", false)
	elsewhere := linkServer(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	check("from a peer that is not a trusted proxy", elsewhere, true, elsewhere+"/", false)

	public := linkServer(t, Config{PublicURL: "https://ioc.example.gov.vn/gis/", TrustedProxies: []netip.Prefix{loopback}})
	check("with a public URL", public, true, "https://ioc.example.gov.vn/gis/", true)
}

func TestParseLinkSettings(t *testing.T) {
	for _, bad := range []string{"ioc.example", "ftp://x", "https://u:p@x", "https://x/?a=1", "https://x/#f", "https://"} {
		if _, err := ParsePublicURL(bad); err == nil {
			t.Errorf("ParsePublicURL(%q): no error", bad)
		}
	}
	if u, err := ParsePublicURL("https://ioc.example.gov.vn/gis/"); err != nil || u != "https://ioc.example.gov.vn/gis" {
		t.Errorf("ParsePublicURL: got %q, %v", u, err)
	}
	got, err := ParseTrustedProxies(" 10.0.0.0/8, 192.168.1.10 ,::1,")
	if err != nil || len(got) != 3 || got[1].String() != "192.168.1.10/32" || got[2].String() != "::1/128" {
		t.Errorf("ParseTrustedProxies: got %v, %v", got, err)
	}
	if _, err := ParseTrustedProxies("10.0.0.0/8,proxy.local"); err == nil || !strings.Contains(err.Error(), "proxy.local") {
		t.Errorf("ParseTrustedProxies of a name: got %v", err)
	}
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	if _, err := New(Config{PublicURL: "ioc.example"}, Deps{Geo: reg, KPIs: &apitest.Figures{Reg: reg, H: h}, Auth: auth.NewVerifier(apitest.Admin, apitest.Secret),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err == nil || !strings.Contains(err.Error(), "public URL") {
		t.Errorf("New with a public URL without a scheme: got %v", err)
	}
}
