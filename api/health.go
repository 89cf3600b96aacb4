package api

import (
	"context"
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
// all of them answer.
func (s *Server) readyz(c *fiber.Ctx) error {
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
			if err := s.d.Ready[n](ctx); err != nil {
				results[i] = err.Error()
			} else {
				results[i] = "ok"
			}
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
