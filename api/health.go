package api

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// readyz runs every dependency check at once; the node is ready only when
// all of them answer. Once the node is stopping it answers 503 without
// running them.
func (s *Server) readyz(c *fiber.Ctx) error {
	if s.stopping.Load() {
		return c.Status(fiber.StatusServiceUnavailable).JSON(readiness{Status: "not ready", Checks: map[string]string{"shutdown": stoppingReason}})
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	names := make([]string, 0, len(s.d.Ready))
	for n := range s.d.Ready {
		names = append(names, n)
	}
	sort.Strings(names)
	results := make([]string, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.checkResult(n, s.d.Ready[n](ctx))
		}()
	}
	wg.Wait()
	out := readiness{Status: "ready", Checks: map[string]string{}}
	for i, n := range names {
		out.Checks[n] = results[i]
		if results[i] != "ok" {
			out.Status = "not ready"
		}
	}
	if out.Status != "ready" {
		return c.Status(fiber.StatusServiceUnavailable).JSON(out)
	}
	return c.JSON(out)
}

// stoppingReason is what /readyz says once the node is stopping.
const stoppingReason = "the node is shutting down; send requests to another node"

// Stopping turns the node not ready for good: from now on /readyz answers
// 503 at once, while the node still serves, so that a load balancer stops
// sending it requests before ingest refuses them. It never blocks.
func (s *Server) Stopping() {
	if !s.stopping.Swap(true) {
		s.logger.Info("not ready", "check", "shutdown", "reason", stoppingReason)
	}
}

// NotReady is a readiness failure meant for the client: it says why and
// where to look. Any other error of a check is a dependency's own (a
// ClickHouse or Redis error, with addresses and internals): /readyz shows
// only that the dependency does not answer, and the log has the error.
type NotReady string

func (e NotReady) Error() string { return string(e) }

// notAnswering is what /readyz shows of a dependency's own error.
const notAnswering = "not answering; the server log (component api) has the error"

// checkResult is what /readyz shows of check name's outcome; a change is
// logged once, not at every probe of a load balancer.
func (s *Server) checkResult(name string, err error) string {
	shown, detail := "ok", ""
	if err != nil {
		var nr NotReady
		if errors.As(err, &nr) {
			shown = nr.Error()
		} else {
			shown = notAnswering
		}
		detail = err.Error()
	}
	s.readyMu.Lock()
	changed := s.readyLast[name] != detail
	if s.readyLast == nil {
		s.readyLast = map[string]string{}
	}
	s.readyLast[name] = detail
	s.readyMu.Unlock()
	if changed {
		var nr NotReady
		switch {
		case errors.As(err, &nr): // expected for a while, e.g. at start
			s.logger.Info("not ready", "check", name, "reason", err)
		case err != nil:
			s.logger.Warn("not ready", "check", name, "err", err)
		default:
			s.logger.Info("ready again", "check", name)
		}
	}
	return shown
}
