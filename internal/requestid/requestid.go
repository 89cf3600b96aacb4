// Package requestid names every HTTP request, so that what a client was
// told ("retry; request id 5f0c…") and the server's log line with the
// detail can be matched. It owns the X-Request-Id header and the request
// local that carries the id from the first middleware to the last log line.
//
// Concurrency: the middleware and Get are safe for concurrent requests.
package requestid

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/gofiber/fiber/v2"
)

// Header carries the id: a reverse proxy may set it (nginx:
// proxy_set_header X-Request-Id $request_id) so that its log and ours
// share ids, and every answer carries it back.
const Header = "X-Request-Id"

type localKey struct{}

// Middleware gives the request an id (the proxy's, if well formed, else a
// new random one), answers it in X-Request-Id, and keeps it for Get.
func Middleware(c *fiber.Ctx) error {
	id := c.Get(Header)
	if !wellFormed(id) {
		id = newID()
	} else {
		// c.Get points into the request's buffer, which the next request
		// reuses; log lines written after the handler need their own copy.
		id = string([]byte(id))
	}
	c.Locals(localKey{}, id)
	c.Set(Header, id)
	return c.Next()
}

// Get returns the request's id, or "" outside Middleware.
func Get(c *fiber.Ctx) string {
	id, _ := c.Locals(localKey{}).(string)
	return id
}

// wellFormed accepts ids of 1 to 64 letters, digits, '-', '_' and '.':
// what proxies generate, and nothing that could forge a log line.
func wellFormed(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
