package devservices

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// HAProxyBackend is how HAProxy balances iocd nodes, the section that
// deploy/haproxy-iocd.cfg ships and StartHAProxy runs (a test checks that
// they agree): servers are the nodes' host:port.
//
//   - No stickiness: any node takes any request, and a screen resumes on
//     whichever node it reaches.
//   - A node is taken out once /readyz fails twice a second apart (a node
//     shutting down turns not-ready first) and back once it passes twice;
//     its websockets are closed when it goes, so that screens move on at
//     once rather than wait for TCP to notice.
//   - leastconn, since a websocket is held for days and requests are
//     short: counting connections spreads the screens.
func HAProxyBackend(servers []string) string {
	var b strings.Builder
	b.WriteString(`backend iocd
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
`)
	for i, s := range servers {
		fmt.Fprintf(&b, "    server node%d %s check\n", i+1, s)
	}
	return b.String()
}

// haproxyDefaults are what both configurations share: a connection a
// node refuses (it died, and its health checks have not failed yet) is
// tried on another node, which is safe for any request since nothing was
// sent; a websocket is a tunnel held for an hour without traffic at most
// (iocd pings every screen far more often); a request must arrive whole
// within 10 s.
const haproxyDefaults = `defaults
    mode http
    option forwardfor
    retries 2
    option redispatch 1
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout tunnel 1h
`

// StartHAProxy starts HAProxy on loopback in front of servers, plain HTTP,
// with the backend HAProxyBackend gives, and waits until it accepts
// connections. Its address is the one URL clients use.
func StartHAProxy(ctx context.Context, opts Options, servers []string) (*Server, error) {
	bin, dir, port, err := prepare("haproxy", opts)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := "global\n    maxconn 4096\n\n" + haproxyDefaults + "\nfrontend ioc\n    bind " + addr + "\n    default_backend iocd\n\n" + HAProxyBackend(servers)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("write haproxy configuration: %w", err)
	}
	s, err := start(opts, "haproxy", addr, dir, bin, "-db", "-f", path)
	if err != nil {
		return nil, err
	}
	ping := func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
	if err := s.waitReady(ctx, ping, filepath.Join(dir, "haproxy.out")); err != nil {
		return nil, err
	}
	return s, nil
}
