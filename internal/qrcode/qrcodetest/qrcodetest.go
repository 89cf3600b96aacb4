// Package qrcodetest reads QR codes back, for tests: from an image with
// gozxing, a port of ZXing that shares nothing with the encoder; from an
// SVG document drawn by an SVG renderer of its own (oksvg); and from a
// terminal's half-block drawing, turned back into an image first; so that
// a test checks what a phone's camera would read.
//
// Concurrency: its functions share no state.
package qrcodetest

import (
	"fmt"
	"image"
	"image/color"
	"regexp"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/srwiley/oksvg"
	"github.com/srwiley/rasterx"
)

// Decode reads the one QR code in img: with ZXing's detector, as a camera
// would, and when that finds none, as a pure barcode (a symbol drawn
// square on the pixel grid, read from its bounds). ZXing's detector misses
// a few valid symbols at every size that other readers (jsQR, phones)
// read, such as that of http://127.0.0.1:45787/k/4ey4m8nfc7; the pure
// read still needs the symbol drawn right, quiet zone included, and at a
// whole number of pixels a module (DecodeSVG draws it so).
func Decode(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", fmt.Errorf("binarize the image: %w", err)
	}
	r, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		var pure error
		if r, pure = qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}); pure != nil {
			return "", fmt.Errorf("read a QR code in the %v image: %w (as a pure barcode: %v)", img.Bounds().Size(), err, pure)
		}
	}
	return r.GetText(), nil
}

// RenderSVG draws an SVG document on a transparent square of px pixels a
// side; the width and height of its view box are returned to be checked.
func RenderSVG(doc string, px int) (img *image.RGBA, viewW, viewH float64, err error) {
	icon, err := oksvg.ReadIconStream(strings.NewReader(doc), oksvg.StrictErrorMode)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("parse the SVG: %w", err)
	}
	img = image.NewRGBA(image.Rect(0, 0, px, px))
	icon.SetTarget(0, 0, float64(px), float64(px))
	icon.Draw(rasterx.NewDasher(px, px, rasterx.NewScannerGV(px, px, img, img.Bounds())), 1)
	return img, icon.ViewBox.W, icon.ViewBox.H, nil
}

// DecodeSVG reads the QR code of an SVG document drawn at about px pixels
// a side: at the next whole number of pixels a module, as a browser draws
// the document (it asks for crisp edges), so that a symbol ZXing's
// detector misses still reads as a pure barcode (see Decode).
func DecodeSVG(doc string, px int) (string, error) {
	_, modules, _, err := RenderSVG(doc, 1)
	if err != nil {
		return "", err
	}
	if n := int(modules); n > 0 {
		px = (px + n - 1) / n * n
	}
	img, _, _, err := RenderSVG(doc, px)
	if err != nil {
		return "", err
	}
	return Decode(img)
}

// sgr matches a terminal's colour sequences (ESC [ … m).
var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

// FromTerminal turns lines of half blocks (▀ ▄ █ and spaces, in any
// colour sequences, which it drops) back into the modules they draw, two
// module rows a line, and into an image of scale pixels a module: dark as
// black. It refuses any other character, and lines of unequal widths.
func FromTerminal(text string, scale int) (img *image.Gray, modules [][]bool, err error) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	width := -1
	for i, line := range lines {
		runes := []rune(sgr.ReplaceAllString(line, ""))
		if width == -1 {
			width = len(runes)
		} else if len(runes) != width {
			return nil, nil, fmt.Errorf("line %d is %d characters wide, the first %d", i+1, len(runes), width)
		}
		top, bottom := make([]bool, width), make([]bool, width)
		for x, r := range runes {
			switch r {
			case '█':
				top[x], bottom[x] = true, true
			case '▀':
				top[x] = true
			case '▄':
				bottom[x] = true
			case ' ':
			default:
				return nil, nil, fmt.Errorf("line %d, column %d: %q is not a half block", i+1, x+1, r)
			}
		}
		modules = append(modules, top, bottom)
	}
	img = image.NewGray(image.Rect(0, 0, width*scale, len(modules)*scale))
	for y, row := range modules {
		for x, dark := range row {
			v := color.Gray{Y: 255}
			if dark {
				v = color.Gray{}
			}
			for dy := range scale {
				for dx := range scale {
					img.SetGray(x*scale+dx, y*scale+dy, v)
				}
			}
		}
	}
	return img, modules, nil
}
