package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/openioc/ioc/internal/devservices"
	"github.com/openioc/ioc/simulator"
)

// iocd -h printed the admin token, the JWT secret and passwords as flag
// defaults and exited 1, without naming the commands; there was no
// version. -h now exits 0, lists every command and shows a secret only as
// "set"; iocd --version and iocd version say what was built.
func TestHelpAndVersion(t *testing.T) {
	bin := iocdBinary(t)
	secrets := map[string]string{
		"IOC_ADMIN_TOKEN": "admin-token-never-printed", "IOC_JWT_SECRET": "jwt-secret-never-printed",
		"IOC_CLICKHOUSE_PASSWORD": "ch-password-never-printed", "IOC_REDIS_PASSWORD": "redis-password-never-printed",
		"IOC_MQTT_PASSWORD": "mqtt-password-never-printed",
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = os.Environ()
		for k, v := range secrets {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"serve", "-h"}, {"token", "-h"}, {"verify", "-h"}, {"migrate", "-h"}} {
		out, err := run(args...)
		if err != nil {
			t.Errorf("iocd %s: %v, want exit 0\n%s", strings.Join(args, " "), err, out)
		}
		for _, v := range secrets {
			if strings.Contains(out, v) {
				t.Errorf("iocd %s printed a secret (%s):\n%s", strings.Join(args, " "), v, out)
			}
		}
	}
	out, _ := run("-h")
	for _, want := range []string{"iocd [serve]", "iocd token", "iocd migrate", "iocd verify", "iocd import-units", "iocd version",
		"-admin-token", "IOC_ADMIN_TOKEN_FILE); set", "-tls-cert", "-cors-origins", "-access-log"} {
		if !strings.Contains(out, want) {
			t.Errorf("iocd -h lacks %q:\n%s", want, out)
		}
	}
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		out, err := run(args...)
		if err != nil || !strings.HasPrefix(out, "iocd ") || !strings.Contains(out, runtime.Version()) || !strings.Contains(out, "revision ") {
			t.Errorf("iocd %s: got %v\n%s\nwant the version, the revision and %s", args[0], err, out, runtime.Version())
		}
	}
	if out, err := run("frobnicate"); err == nil || !strings.Contains(out, "version or help") {
		t.Errorf("an unknown command: got %v %q, want exit 1 listing the commands", err, out)
	}
}

func TestBuildInfoMetric(t *testing.T) {
	n := startNode(t, testConfig(t))
	code, body := n.getText("/metrics", adminToken)
	re := regexp.MustCompile(`(?m)^ioc_build_info\{goversion="` + regexp.QuoteMeta(runtime.Version()) + `",revision="[^"]*",version="[^"]+"\} 1$`)
	if code != 200 || !re.MatchString(body) {
		t.Errorf("/metrics: got %d without a line matching %s", code, re)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and localhost
// into dir, and returns the paths of the certificate and its key.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "iocd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// No TLS anywhere, while tokens travel in URLs: with IOC_TLS_CERT and
// IOC_TLS_KEY the node serves HTTPS and wss (the simulator included), says
// Strict-Transport-Security, and IOC_HTTP_REDIRECT_ADDR sends plain HTTP
// to HTTPS, except a request that carried a token, which is refused.
func TestTLS(t *testing.T) {
	cfg := testConfig(t)
	cfg.TLSCert, cfg.TLSKey = writeCert(t, t.TempDir())
	port, err := devservices.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg.RedirectAddr = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.Simulate, cfg.SimulateDevices, cfg.SimulateHistoryDays = 50, false, 0
	// At demo pace, whatever the hour: field pace may file nothing for
	// minutes at night.
	cfg.SimulateArea, cfg.SimulatePace = "79", simulator.PaceDemo

	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(cfg.TLSCert)
	pool.AppendCertsFromPEM(pemBytes)
	tlsConf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- run(ctx, cfg, logger, func(a net.Addr) { addr <- a }) }()
	var base string
	select {
	case a := <-addr:
		base = "https://" + a.String()
	case err := <-done:
		t.Fatalf("node did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("node did not start within 30s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("node did not stop within 30s")
		}
	})

	get := func(url string, token string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := get(base+"/healthz", ""); resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("GET /healthz over HTTPS: %d %s", resp.StatusCode, body)
	} else if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
		t.Errorf("Strict-Transport-Security: got %q", hsts)
	}
	// Plain HTTP on the TLS port gets no answer.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(strings.Replace(base, "https", "http", 1) + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP on the TLS port answered 200")
		}
	}

	// The simulator posts to its own node over HTTPS: figures grow.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := get(base+"/api/v1/areas/79/kpis?window=24h", adminToken)
		if !strings.Contains(body, `"dossiers_received":0,`) && strings.Contains(body, `"dossiers_received":`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the simulator stored nothing over HTTPS within 30s: %s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// wss carries the live figures.
	dialer := websocket.Dialer{TLSClientConfig: tlsConf, HandshakeTimeout: 10 * time.Second}
	ws, _, err := dialer.Dial("wss"+strings.TrimPrefix(base, "https")+"/api/v1/live?access_token="+adminToken, nil)
	if err != nil {
		t.Fatalf("dial wss: %v", err)
	}
	defer ws.Close()
	if err := ws.WriteJSON(map[string]string{"op": "subscribe", "topic": "kpi/79"}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	var msg struct{ Type, Topic string }
	if err := ws.ReadJSON(&msg); err != nil || msg.Type != "snapshot" {
		t.Fatalf("over wss: got %+v, %v; want the snapshot of kpi/79", msg, err)
	}

	// The redirect listener.
	plain := fmt.Sprintf("http://127.0.0.1:%d", port)
	resp, _ := get(plain+"/api/v1/kpis?window=24h", "")
	if want := base + "/api/v1/kpis?window=24h"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: got %d to %q, want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	resp, body := get(plain+"/tiles/vn-2025.commune/5/25/14.mvt?access_token=abc", "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "exposed") || resp.Header.Get("Location") != "" {
		t.Errorf("a token over plain HTTP: got %d %s, want 400 saying it is exposed, no redirect", resp.StatusCode, body)
	}
}
