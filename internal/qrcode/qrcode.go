// Package qrcode draws the QR code of a short link for a person to scan:
// as an SVG for a page (no script, no style, no external resource, so it
// shows under the pages' Content-Security-Policy) and as half-block
// characters for a terminal. The symbol itself is encoded by
// github.com/piglig/go-qr; this package owns only how it is drawn.
//
// Concurrency: a Code is never changed once made, and is safe for
// concurrent use.
package qrcode

import (
	"fmt"
	"strconv"
	"strings"

	goqr "github.com/piglig/go-qr"
)

// QuietZone is the light margin around the symbol, in modules: the four
// that the standard asks for, without which many phone cameras do not
// find the code on a dark page or terminal.
const QuietZone = 4

// Code is a QR code's modules, the quiet zone included.
type Code struct {
	n    int    // modules a side, quiet zone included
	dark []bool // row by row
}

// New encodes text at error-correction level M (15% of the symbol may be
// lost: a photo of a screen with glare, a sheet of paper creased), or a
// higher one when that fits in the same size.
func New(text string) (*Code, error) {
	q, err := goqr.EncodeText(text, goqr.Medium)
	if err != nil {
		return nil, fmt.Errorf("encode a QR code of %d bytes: %w", len(text), err)
	}
	size := q.Size()
	c := &Code{n: size + 2*QuietZone}
	c.dark = make([]bool, c.n*c.n)
	for y := range size {
		for x := range size {
			c.dark[(y+QuietZone)*c.n+x+QuietZone] = q.Module(x, y)
		}
	}
	return c, nil
}

// Size is the number of modules a side, the quiet zone included.
func (c *Code) Size() int { return c.n }

// Dark says whether the module at column x and row y is dark; outside the
// code, it is light.
func (c *Code) Dark(x, y int) bool {
	if x < 0 || y < 0 || x >= c.n || y >= c.n {
		return false
	}
	return c.dark[y*c.n+x]
}

// SVGModulePixels is the size an SVG asks to be drawn at, per module,
// where its page does not size it.
const SVGModulePixels = 8

// SVG draws the code as an SVG document: a white square, the quiet zone
// included, and the dark modules as one black path, one rectangle per run
// of dark modules in a row. Its view box counts modules, so it scales to
// any size; crispEdges keeps module edges sharp at sizes that are not a
// whole number of pixels per module.
func (c *Code) SVG() string {
	var b strings.Builder
	n := strconv.Itoa(c.n)
	px := strconv.Itoa(c.n * SVGModulePixels)
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ` + n + ` ` + n + `" width="` + px + `" height="` + px +
		`" shape-rendering="crispEdges"><rect width="` + n + `" height="` + n + `" fill="#fff"/><path fill="#000" d="`)
	for y := range c.n {
		for x := 0; x < c.n; {
			if !c.Dark(x, y) {
				x++
				continue
			}
			run := 1
			for c.Dark(x+run, y) {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x, y, run, run)
			x += run
		}
	}
	b.WriteString(`"/></svg>`)
	return b.String()
}

// Terminal colours: black on white whatever the terminal's own colours,
// so that the code is dark on light (as scanners expect) on a dark
// terminal too.
const (
	termColours = "\x1b[30;47m"
	termReset   = "\x1b[0m"
)

// Terminal draws the code for a terminal, two rows of modules a line: each
// character is an upper half block (▀), a lower one (▄), a full block (█)
// or a space, drawn black on white. Lines end with a newline; the last
// line's lower half, when the module rows are odd, is light.
func (c *Code) Terminal() string {
	var b strings.Builder
	for y := 0; y < c.n; y += 2 {
		b.WriteString(termColours)
		for x := range c.n {
			top, bottom := c.Dark(x, y), c.Dark(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteString(termReset + "\n")
	}
	return b.String()
}
