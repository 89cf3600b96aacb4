package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// debugPart listens on addr now and returns the part that serves Go's
// profiles (/debug/pprof/) there, apart from the API, until stopped: an
// operator profiles a busy node in place without exposing the profiles to
// API clients. Its clients get until deadline's context ends to finish;
// the listener is returned for the caller to close if the part never runs.
func debugPart(addr string, deadline func() context.Context, logger *slog.Logger) (part, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return part{}, nil, fmt.Errorf("listen on IOC_DEBUG_ADDR=%s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("serving profiles", "addr", ln.Addr().String())
	return serverPart("debug", func() error { return srv.Serve(ln) }, srv.Shutdown, deadline), ln, nil
}

// serveDebug serves the profiles of debugPart on addr until stop, for a
// command that runs no lifecycle of parts; a failure is logged.
func serveDebug(addr string, logger *slog.Logger) (stop func(), err error) {
	var stopCtx context.Context
	p, _, err := debugPart(addr, func() context.Context { return stopCtx }, logger)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.run(ctx); err != nil {
			logger.Warn("debug listener stopped", "err", err)
		}
	}()
	return func() {
		var cancelStop context.CancelFunc
		stopCtx, cancelStop = context.WithTimeout(context.Background(), time.Second)
		defer cancelStop()
		cancel()
		<-done
	}, nil
}
