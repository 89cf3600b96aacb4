// Package httpbody reads HTTP request bodies under one bound. It undoes the
// Content-Encoding itself (gzip, deflate, br), as a stream, and stops at a
// limit on the decoded size. Fiber's Ctx.Body inflates a Content-Encoding
// without any bound, so a kilobyte of gzip inside gzip becomes gigabytes in
// memory before a handler sees it: every route that reads a body reads it
// through a Reader instead, before any other work.
//
// Concurrency: a Reader is safe for concurrent use. The Body it opens
// belongs to the handler of its request and must not outlive it: it reads
// the request's buffer, which the next request on the connection reuses.
package httpbody

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"
)

// MaxCodings is how many stacked content codings are undone. A client
// compresses once; two allow for a proxy that compresses again. More is
// refused, since each layer only multiplies what a few bytes can become.
const MaxCodings = 2

// Supported names the content codings undone, for messages.
const Supported = "gzip, deflate or br"

// Config tunes a Reader. Zero fields take the defaults.
type Config struct {
	// Limit bounds a body once decoded, in bytes; default (0 or less)
	// 16 MiB, as IOC_HTTP_BODY_LIMIT's.
	Limit int64
	// Setting names what raises Limit, in refusals; default
	// IOC_HTTP_BODY_LIMIT.
	Setting string
}

// Reader opens request bodies under the limit.
type Reader struct {
	cfg Config
}

// New returns a Reader. Every Config is valid, so it cannot fail.
func New(cfg Config) *Reader {
	if cfg.Limit <= 0 {
		cfg.Limit = 16 << 20
	}
	if cfg.Setting == "" {
		cfg.Setting = "IOC_HTTP_BODY_LIMIT"
	}
	return &Reader{cfg: cfg}
}

// Limit is the largest decoded body, in bytes.
func (r *Reader) Limit() int64 { return r.cfg.Limit }

// Open returns the decoded body of the request as a stream. Errors, from
// Open and from the stream's Read alike, are *fiber.Error refusals that say
// how to fix the request: 415 for a coding that is not undone, 400 for a
// body that is not what its Content-Encoding says, 413 for a body larger
// than the limit once decoded.
func (r *Reader) Open(c *fiber.Ctx) (*Body, error) {
	return r.open(c.Request().Body(), encodings(c))
}

// Bytes reads the whole decoded body, under the limit. Without a
// Content-Encoding it is the request's own buffer, valid only until the
// handler returns. Errors are those of Open.
func (r *Reader) Bytes(c *fiber.Ctx) ([]byte, error) {
	raw, coding := c.Request().Body(), encodings(c)
	if len(raw) == 0 || isIdentity(coding) {
		if int64(len(raw)) > r.cfg.Limit {
			return nil, r.tooLarge("")
		}
		return raw, nil
	}
	b, err := r.open(raw, coding)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(b)
}

// encodings is every Content-Encoding the request declares, in the order
// they were applied; a header given twice counts as one list.
func encodings(c *fiber.Ctx) string {
	var all []string
	c.Request().Header.VisitAll(func(k, v []byte) {
		if strings.EqualFold(string(k), fiber.HeaderContentEncoding) {
			all = append(all, string(v))
		}
	})
	return strings.Join(all, ",")
}

func isIdentity(coding string) bool {
	for _, c := range strings.Split(coding, ",") {
		if c := strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
			return false
		}
	}
	return true
}

func (r *Reader) open(raw []byte, coding string) (*Body, error) {
	var codings []string
	for _, c := range strings.Split(coding, ",") {
		c = strings.ToLower(strings.TrimSpace(c))
		switch c {
		case "", "identity":
		case "gzip", "x-gzip", "deflate", "br":
			codings = append(codings, c)
		default:
			return nil, fiber.NewError(fiber.StatusUnsupportedMediaType, fmt.Sprintf(
				"Content-Encoding %q is not supported; send the body as is, or compressed with %s", clip(c), Supported))
		}
	}
	if len(codings) > MaxCodings {
		return nil, fiber.NewError(fiber.StatusUnsupportedMediaType, fmt.Sprintf(
			"Content-Encoding lists %d codings (%s); at most %d are undone: compress the body once, with %s",
			len(codings), clip(strings.Join(codings, ", ")), MaxCodings, Supported))
	}
	b := &Body{limit: r.cfg.Limit, setting: r.cfg.Setting, coding: strings.Join(codings, ", ")}
	var src io.Reader = bytes.NewReader(raw)
	if len(raw) == 0 {
		// Nothing to undo: some clients label even an empty body.
		codings = nil
	}
	// The last coding listed was applied last, so it is undone first.
	for i := len(codings) - 1; i >= 0; i-- {
		d, err := decoder(codings[i], src)
		if err != nil {
			var c *codingError
			if errors.As(err, &c) { // an outer layer failed while this one started
				return nil, b.corrupt(c.name, c.err)
			}
			return nil, b.corrupt(codings[i], err)
		}
		src = &layer{name: codings[i], r: d}
	}
	b.src = src
	return b, nil
}

// decoder undoes one coding of src.
func decoder(coding string, src io.Reader) (io.Reader, error) {
	switch coding {
	case "gzip", "x-gzip":
		return gzip.NewReader(src)
	case "deflate":
		// HTTP's deflate is a zlib stream, but some clients send raw
		// deflate: a zlib header is two bytes whose value is a multiple of
		// 31, with method 8.
		br := bufio.NewReader(src)
		h, err := br.Peek(2)
		if len(h) < 2 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
			return zlib.NewReader(br)
		}
		return flate.NewReader(br), nil
	default: // br
		return brotli.NewReader(src), nil
	}
}

// layer is one coding being undone; it names the coding in errors.
type layer struct {
	name string
	r    io.Reader
}

func (l *layer) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF {
		var c *codingError
		if !errors.As(err, &c) {
			err = &codingError{name: l.name, err: err}
		}
	}
	return n, err
}

// codingError is a layer that cannot be undone.
type codingError struct {
	name string
	err  error
}

func (e *codingError) Error() string { return e.name + ": " + e.err.Error() }

// Body is a request's decoded body. Reading past the limit fails.
type Body struct {
	src     io.Reader
	n       int64 // decoded bytes read so far
	limit   int64
	setting string
	coding  string
	err     error
}

// Read reads decoded bytes; an error other than io.EOF is a *fiber.Error
// refusal, and every later Read returns it again.
func (b *Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// Reading one byte past the limit tells a body of exactly the limit
	// from a larger one.
	if room := b.limit + 1 - b.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.src.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		b.err = b.tooLarge()
		return n - int(b.n-b.limit), b.err
	}
	if err != nil && err != io.EOF {
		var c *codingError
		if errors.As(err, &c) {
			err = b.corrupt(c.name, c.err)
		}
		b.err = err
	}
	return n, err
}

// Drain reads what is left of the body, keeping nothing, and returns the
// refusal that ends it early, if any. A handler that refuses a body before
// reading it all drains it first, so that a body over the limit is refused
// as such whatever its first bytes are.
func (b *Body) Drain() error {
	_, err := io.Copy(io.Discard, b)
	return err
}

func (b *Body) tooLarge() error {
	r := Reader{cfg: Config{Limit: b.limit, Setting: b.setting}}
	return r.tooLarge(b.coding)
}

func (r *Reader) tooLarge(coding string) error {
	decoded := ""
	if coding != "" {
		decoded = " once decoded (Content-Encoding: " + coding + ")"
	}
	return fiber.NewError(fiber.StatusRequestEntityTooLarge, fmt.Sprintf(
		"request body is larger than %d bytes%s (%s); split it into smaller batches", r.cfg.Limit, decoded, r.cfg.Setting))
}

func (b *Body) corrupt(name string, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf(
		"the body is not valid %s (Content-Encoding: %s): %v; send it compressed as Content-Encoding says, or leave the header out",
		name, b.coding, plain(err)))
}

// plain is an error of a decompressor without its package's prefix.
func plain(err error) string {
	msg := err.Error()
	for _, p := range []string{"gzip: ", "flate: ", "zlib: ", "brotli: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// clip bounds a sent string quoted in a message.
func clip(s string) string {
	if len(s) <= 40 {
		return strings.ToValidUTF8(s, "?")
	}
	return strings.ToValidUTF8(s[:40], "?") + "…"
}
