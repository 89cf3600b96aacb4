package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// part is a long-running piece of a node: its run works until ctx ends and
// then returns nil. An error it returns stops the node; returning nil
// before ctx ends means it has nothing to do (a check turned off), which
// stops nothing.
type part struct {
	name string
	run  func(ctx context.Context) error
}

// lifecycle runs a node's parts together, as Prometheus's run group does:
// the first part to fail stops the node, and so does ctx ending. Unlike a
// run group it stops them in order, step by step as they were added: the
// parts of a step are told to stop together, and the next step begins
// once each of them has returned.
type lifecycle struct {
	logger *slog.Logger
	// timeout bounds the shutdown from the moment it begins: servers give
	// their clients what is left of it (see stopping).
	timeout time.Duration
	steps   [][]part

	mu   sync.Mutex
	stop context.Context // the shutdown's, once it began
}

// stopping is the context of the shutdown, which ends timeout after it
// began; a part calls it once its own context has ended.
func (l *lifecycle) stopping() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stop
}

// add appends a step of the shutdown: parts stopped together.
func (l *lifecycle) add(parts ...part) { l.steps = append(l.steps, parts) }

// run starts every part, calls up, and waits for ctx to end or a part to
// fail; then it stops the parts in order. It returns the failure, wrapped
// with the part's name, or nil; errors of parts as they stop are logged.
func (l *lifecycle) run(ctx context.Context, up func()) error {
	type failure struct {
		name string
		err  error
	}
	total := 0
	for _, s := range l.steps {
		total += len(s)
	}
	failed := make(chan failure, total)
	type running struct {
		part
		cancel context.CancelFunc
		done   chan error
	}
	steps := make([][]running, len(l.steps))
	for i, s := range l.steps {
		for _, p := range s {
			// Each part has a context of its own, not derived from ctx, so
			// that it stops in its turn.
			pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			r := running{part: p, cancel: cancel, done: make(chan error, 1)}
			go func() {
				err := p.run(pctx)
				if err != nil && pctx.Err() == nil {
					failed <- failure{p.name, err}
				}
				r.done <- err
			}()
			steps[i] = append(steps[i], r)
		}
	}
	if up != nil {
		up()
	}

	var cause error
	var culprit string
	select {
	case <-ctx.Done():
		l.logger.Info("shutting down")
	case f := <-failed:
		cause, culprit = fmt.Errorf("%s: %w", f.name, f.err), f.name
		l.logger.Error("a part failed; shutting down", "part", f.name, "err", f.err)
	}
	stop, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	l.mu.Lock()
	l.stop = stop
	l.mu.Unlock()
	for _, s := range steps {
		for _, r := range s {
			r.cancel()
		}
		for _, r := range s {
			err := <-r.done
			switch {
			case err != nil && r.name != culprit:
				l.logger.Warn("stopped with an error", "part", r.name, "err", err)
			default:
				l.logger.Info("stopped", "part", r.name)
			}
		}
	}
	return cause
}

// serverPart is a server that serves until it is shut down from another
// goroutine (serve, then shutdown) as a part: once its context ends it
// shuts the server down, giving clients until the context deadline
// returns ends (the shutdown's). A server that stops serving unasked fails.
func serverPart(name string, serve func() error, shutdown func(context.Context) error, deadline func() context.Context) part {
	return part{name: name, run: func(ctx context.Context) error {
		served := make(chan error, 1)
		go func() { served <- serve() }()
		select {
		case err := <-served:
			if err == nil {
				err = errors.New("the listener closed")
			}
			return fmt.Errorf("serve: %w", err)
		case <-ctx.Done():
		}
		sctx := deadline()
		err := shutdown(sctx)
		select {
		case <-served: // shutting down closes the listener first
		case <-sctx.Done():
		}
		return err
	}}
}
