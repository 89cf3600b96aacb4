package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// listenHTTP opens the node's listener on IOC_HTTP_ADDR: TLS with the
// configured certificate when there is one (then cert is it), else plain
// TCP, for a reverse proxy that terminates TLS in front.
func listenHTTP(cfg serveConfig) (ln net.Listener, cert *tls.Certificate, err error) {
	if cfg.TLSCert != "" {
		c, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, nil, fmt.Errorf("load the certificate IOC_TLS_CERT=%s with its key IOC_TLS_KEY=%s (PEM files, the certificate first in its chain): %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		cert = &c
	}
	ln, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s (IOC_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{
			Certificates: []tls.Certificate{*cert},
			MinVersion:   tls.VersionTLS12,
			// The websocket upgrade and fasthttp speak HTTP/1.1.
			NextProtos: []string{"http/1.1"},
		})
	}
	return ln, cert, nil
}

// pinnedClient is an HTTPS client that trusts exactly cert: the built-in
// simulators post to their own node at 127.0.0.1, a name the certificate
// does not carry, so they check the certificate itself instead.
func pinnedClient(cert *tls.Certificate) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the exact comparison below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, cert.Certificate[0]) {
				return errors.New("the node answered with another certificate than its own IOC_TLS_CERT")
			}
			return nil
		},
	}}}
}

// redirectServer answers plain HTTP on IOC_HTTP_REDIRECT_ADDR: a browser
// that typed http:// is sent to the same URL over HTTPS, on the port of
// IOC_HTTP_ADDR. A request that carried a token in its query is refused
// instead: the token has crossed the network in clear, and following a
// redirect would hide that from whoever sent it.
func redirectServer(addr string, httpsPort int, logger *slog.Logger) *http.Server {
	refuse := func(w http.ResponseWriter, code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			refuse(w, http.StatusBadRequest, "this node serves HTTPS only: use https://")
			return
		}
		target := "https://" + net.JoinHostPort(host, fmt.Sprint(httpsPort))
		if httpsPort == 443 {
			target = "https://" + host
		}
		if r.URL.Query().Has("access_token") {
			logger.Warn("refused a token sent over plain HTTP", "method", r.Method, "path", r.URL.Path)
			refuse(w, http.StatusBadRequest, "this request carried access_token over plain HTTP, where anyone on the network can read it: "+
				"send it to "+target+" instead, and treat the token as exposed (issue a new one)")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			refuse(w, http.StatusBadRequest, "this node serves HTTPS only: send "+r.Method+" to "+target+r.URL.Path)
			return
		}
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
}

// redirectPart listens on srv's address now and returns the part that
// serves srv there until stopped (clients get until deadline's context
// ends), and the listener, for the caller to close if the part never runs.
func redirectPart(srv *http.Server, deadline func() context.Context) (part, net.Listener, error) {
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return part{}, nil, fmt.Errorf("listen on %s (IOC_HTTP_REDIRECT_ADDR): %w", srv.Addr, err)
	}
	return serverPart("http redirects", func() error { return srv.Serve(ln) }, srv.Shutdown, deadline), ln, nil
}
