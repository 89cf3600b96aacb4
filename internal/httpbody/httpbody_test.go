package httpbody

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"
)

func compress(t testing.TB, coding string, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&out)
	case "deflate":
		w = zlib.NewWriter(&out)
	case "raw-deflate":
		w, _ = flate.NewWriter(&out, flate.BestCompression)
	case "br":
		w = brotli.NewWriter(&out)
	default:
		t.Fatalf("no coding %s", coding)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// result is what a handler made of a body: its bytes, or the refusal.
type result struct {
	body   []byte
	status int
	msg    string
}

// read sends raw with the given Content-Encoding through a Fiber handler
// that reads it with r, as a stream or (whole) with Bytes.
func read(t testing.TB, r *Reader, raw []byte, coding string, whole bool) result {
	t.Helper()
	var got result
	app := fiber.New(fiber.Config{BodyLimit: 64 << 20})
	app.Post("/", func(c *fiber.Ctx) error {
		var b []byte
		var err error
		if whole {
			b, err = r.Bytes(c)
		} else {
			var body *Body
			if body, err = r.Open(c); err == nil {
				b, err = io.ReadAll(body)
			}
		}
		var fe *fiber.Error
		switch {
		case err == nil:
			got.body = bytes.Clone(b)
		case errors.As(err, &fe):
			got.status, got.msg = fe.Code, fe.Message
		default:
			t.Errorf("error %v (%T) is not a *fiber.Error", err, err)
		}
		return nil
	})
	req := httptest.NewRequest("POST", "/", bytes.NewReader(raw))
	if coding != "" {
		req.Header.Set("Content-Encoding", coding)
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return got
}

func TestDecodesEveryCoding(t *testing.T) {
	r := New(Config{Limit: 1 << 20})
	plain := []byte(strings.Repeat(`{"event_id":"a"}`+"\n", 1000))
	for _, c := range []struct {
		name, coding string
		raw          []byte
	}{
		{"none", "", plain},
		{"identity", "identity", plain},
		{"gzip", "gzip", compress(t, "gzip", plain)},
		{"x-gzip, upper case", "X-GZIP", compress(t, "gzip", plain)},
		{"deflate (zlib)", "deflate", compress(t, "deflate", plain)},
		{"deflate (raw)", "deflate", compress(t, "raw-deflate", plain)},
		{"br", "br", compress(t, "br", plain)},
		{"gzip then br", "gzip, br", compress(t, "br", compress(t, "gzip", plain))},
		{"identity does not count", "identity, gzip, identity, gzip", compress(t, "gzip", compress(t, "gzip", plain))},
	} {
		for _, whole := range []bool{false, true} {
			got := read(t, r, c.raw, c.coding, whole)
			if got.status != 0 || !bytes.Equal(got.body, plain) {
				t.Errorf("%s (whole %v): got %d %q and %d bytes, want the %d bytes sent", c.name, whole, got.status, got.msg, len(got.body), len(plain))
			}
		}
	}
	// A header given twice is one list.
	app := fiber.New()
	var body []byte
	app.Post("/", func(c *fiber.Ctx) error {
		b, err := r.Bytes(c)
		body = bytes.Clone(b)
		return err
	})
	req := httptest.NewRequest("POST", "/", bytes.NewReader(compress(t, "br", compress(t, "gzip", plain))))
	req.Header.Add("Content-Encoding", "gzip")
	req.Header.Add("Content-Encoding", "br")
	if resp, err := app.Test(req, -1); err != nil || resp.StatusCode != 200 || !bytes.Equal(body, plain) {
		t.Errorf("two Content-Encoding headers: got %v %v and %d bytes", resp.StatusCode, err, len(body))
	}
}

func TestRefusals(t *testing.T) {
	const limit = 4096
	r := New(Config{Limit: limit})
	exact := bytes.Repeat([]byte("x"), limit)
	over := bytes.Repeat([]byte("x"), limit+1)
	zeros := make([]byte, 16<<20)
	bomb := compress(t, "gzip", compress(t, "gzip", zeros))
	for _, c := range []struct {
		name, coding string
		raw          []byte
		status       int
		msg          string
	}{
		{"exactly the limit", "gzip", compress(t, "gzip", exact), 0, ""},
		{"one byte over, decoded", "gzip", compress(t, "gzip", over), 413, "request body is larger than 4096 bytes once decoded (Content-Encoding: gzip) (IOC_HTTP_BODY_LIMIT)"},
		{"one byte over, as sent", "", over, 413, "larger than 4096 bytes (IOC_HTTP_BODY_LIMIT)"},
		{"gzip of gzip of 16 MiB", "gzip, gzip", bomb, 413, "once decoded (Content-Encoding: gzip, gzip)"},
		{"brotli over", "br", compress(t, "br", zeros[:1<<20]), 413, "larger than 4096 bytes"},
		{"unknown coding", "compress", []byte("x"), 415, `Content-Encoding "compress" is not supported; send the body as is, or compressed with gzip, deflate or br`},
		{"zstd", "gzip, zstd", []byte("x"), 415, `"zstd" is not supported`},
		{"three codings", "gzip, gzip, gzip", []byte("x"), 415, "lists 3 codings (gzip, gzip, gzip); at most 2 are undone"},
		{"not gzip", "gzip", []byte("{}"), 400, "the body is not valid gzip (Content-Encoding: gzip)"},
		{"truncated gzip", "gzip", compress(t, "gzip", exact)[:30], 400, "not valid gzip"},
		{"not deflate", "deflate", []byte{0xff, 0xff, 0xff, 0xff}, 400, "not valid deflate"},
		{"short deflate", "deflate", []byte{0x78}, 400, "not valid deflate"},
		{"not brotli", "br", []byte("{\"a\":1}"), 400, "not valid br"},
		{"inner layer not gzip", "gzip, gzip", compress(t, "gzip", []byte("plain")), 400, "not valid gzip (Content-Encoding: gzip, gzip)"},
		{"empty, labelled", "gzip", nil, 0, ""},
	} {
		for _, whole := range []bool{false, true} {
			got := read(t, r, c.raw, c.coding, whole)
			if got.status != c.status || !strings.Contains(got.msg, c.msg) {
				t.Errorf("%s (whole %v): got %d %q, want %d %q", c.name, whole, got.status, got.msg, c.status, c.msg)
			}
			if c.status == 0 && len(got.body) != len(c.raw) && c.name != "exactly the limit" {
				t.Errorf("%s: got %d bytes", c.name, len(got.body))
			}
		}
	}
	if got := New(Config{Limit: -1}).Limit(); got != 16<<20 {
		t.Errorf("a negative limit: got %d, want the default 16 MiB", got)
	}
}

// A handler that refuses a body early drains it, so a bomb is refused as
// too large whatever it starts with.
func TestDrainReportsTheLimit(t *testing.T) {
	r := New(Config{Limit: 1 << 20, Setting: "IOC_TEST_LIMIT"})
	raw := compress(t, "gzip", make([]byte, 8<<20))
	app := fiber.New()
	var first, rest error
	app.Post("/", func(c *fiber.Ctx) error {
		b, err := r.Open(c)
		if err != nil {
			return err
		}
		p := make([]byte, 10)
		_, first = io.ReadFull(b, p)
		rest = b.Drain()
		if again := b.Drain(); again != rest {
			t.Errorf("a second Drain returned %v, want the same %v", again, rest)
		}
		return nil
	})
	req := httptest.NewRequest("POST", "/", bytes.NewReader(raw))
	req.Header.Set("Content-Encoding", "gzip")
	if _, err := app.Test(req, -1); err != nil {
		t.Fatal(err)
	}
	var fe *fiber.Error
	if first != nil || !errors.As(rest, &fe) || fe.Code != 413 || !strings.Contains(fe.Message, "IOC_TEST_LIMIT") {
		t.Errorf("got first read %v, drain %v; want 413 naming IOC_TEST_LIMIT after a good first read", first, rest)
	}
}

// FuzzOpen checks that no body or Content-Encoding makes the reader
// panic, yield more than the limit, or fail with anything but a refusal.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("{}"), "")
	f.Add(compress(f, "gzip", []byte("{}\n{}")), "gzip")
	f.Add(compress(f, "gzip", compress(f, "gzip", make([]byte, 10000))), "gzip, gzip")
	f.Add(compress(f, "deflate", []byte("<xml/>")), "deflate")
	f.Add(compress(f, "raw-deflate", []byte("<xml/>")), "deflate")
	f.Add(compress(f, "br", []byte(`[{"a":1}]`)), "br")
	f.Add([]byte{0x1f, 0x8b, 0x08}, "x-gzip, identity")
	const limit = 2048
	r := New(Config{Limit: limit})
	f.Fuzz(func(t *testing.T, raw []byte, coding string) {
		for _, whole := range []bool{false, true} {
			got := read(t, r, raw, coding, whole)
			switch got.status {
			case 0:
				if len(got.body) > limit {
					t.Fatalf("got %d bytes, over the limit %d", len(got.body), limit)
				}
			case 400, 413, 415:
				if got.msg == "" {
					t.Fatal("a refusal without a message")
				}
			default:
				t.Fatalf("status %d %q", got.status, got.msg)
			}
		}
	})
}
