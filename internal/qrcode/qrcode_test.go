package qrcode_test

import (
	"strings"
	"testing"

	"github.com/openioc/ioc/internal/qrcode"
	"github.com/openioc/ioc/internal/qrcode/qrcodetest"
)

var links = []string{
	"http://127.0.0.1:8080/k/7k3m9q2x4p",
	"https://ioc.example.gov.vn/wall-room/k/0123456789",
	"https://trung-tam-dieu-hanh.hochiminhcity.gov.vn/phong-dieu-hanh/man-hinh-lon/k/zyxwvtsrqp",
}

// The SVG, drawn by an SVG renderer of its own (oksvg) at a size that is
// not a whole number of pixels per module, reads back as the link.
func TestSVGReadsBack(t *testing.T) {
	for _, link := range links {
		c, err := qrcode.New(link)
		if err != nil {
			t.Fatal(err)
		}
		doc := c.SVG()
		for _, banned := range []string{"<script", "style", "href", "<image", "<foreignObject", "url("} {
			if strings.Contains(doc, banned) {
				t.Errorf("the SVG holds %q: it must show under a strict Content-Security-Policy", banned)
			}
		}
		img, w, h, err := qrcodetest.RenderSVG(doc, 301)
		if err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if w != float64(c.Size()) || h != float64(c.Size()) {
			t.Errorf("view box %g×%g, want %d modules a side", w, h, c.Size())
		}
		got, err := qrcodetest.Decode(img)
		if err != nil || got != link {
			t.Errorf("the SVG of %s reads back as %q (%v)", link, got, err)
		}
	}
}

// A link whose symbol ZXing's detector misses at every size (jsQR reads
// it) reads back through DecodeSVG, as TestKioskLink reads the links it is
// given: the helper must not make a valid code look broken.
func TestSVGReadsBackWhereZXingsDetectorMisses(t *testing.T) {
	const link = "http://127.0.0.1:45787/k/4ey4m8nfc7"
	c, err := qrcode.New(link)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := qrcodetest.DecodeSVG(c.SVG(), 400); err != nil || got != link {
		t.Errorf("reads back as %q (%v)", got, err)
	}
}

// The terminal drawing reads back as the link, and holds the quiet zone:
// two blank lines above and below (four module rows, the last line's lower
// half being light when the rows are odd) and four blank columns each side.
func TestTerminalReadsBack(t *testing.T) {
	for _, link := range links {
		c, err := qrcode.New(link)
		if err != nil {
			t.Fatal(err)
		}
		text := c.Terminal()
		for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
			if !strings.HasPrefix(line, "\x1b[30;47m") || !strings.HasSuffix(line, "\x1b[0m") {
				t.Fatalf("line %d %q: want it black on white, then the colours reset", i+1, line)
			}
		}
		img, modules, err := qrcodetest.FromTerminal(text, 4)
		if err != nil {
			t.Fatal(err)
		}
		n := c.Size()
		if len(modules) != n+n%2 || len(modules[0]) != n {
			t.Fatalf("%d×%d modules drawn, want %d×%d", len(modules[0]), len(modules), n, n)
		}
		for y, row := range modules {
			for x, dark := range row {
				quiet := x < qrcode.QuietZone || x >= n-qrcode.QuietZone || y < qrcode.QuietZone || y >= n-qrcode.QuietZone
				if dark != c.Dark(x, y) || (quiet && dark) {
					t.Fatalf("module %d,%d: drawn dark %v, the code's %v (quiet zone %v)", x, y, dark, c.Dark(x, y), quiet)
				}
			}
		}
		got, err := qrcodetest.Decode(img)
		if err != nil || got != link {
			t.Errorf("the terminal drawing of %s reads back as %q (%v)", link, got, err)
		}
	}
}

func TestTooLong(t *testing.T) {
	if _, err := qrcode.New(strings.Repeat("x", 4000)); err == nil || !strings.Contains(err.Error(), "4000 bytes") {
		t.Errorf("4000 bytes: %v, want an error saying how long", err)
	}
}
