package api

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// wantsCSV says whether the client asked for CSV: ?format=csv, or an
// Accept header preferring text/csv.
func wantsCSV(c *fiber.Ctx) (bool, error) {
	switch c.Query("format") {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
		return strings.Contains(c.Get(fiber.HeaderAccept), "text/csv"), nil
	}
	return false, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("format %q is not json or csv", c.Query("format")))
}

// bom lets spreadsheet programs read the file as UTF-8, so that
// Vietnamese names survive being opened by double-click.
const bom = "\uFEFF"

// sendCSV answers with a CSV attachment: a byte-order mark, a header row,
// then rows, CRLF line ends as RFC 4180 has them.
func sendCSV(c *fiber.Ctx, name string, header []string, rows [][]string) error {
	var b bytes.Buffer
	b.WriteString(bom)
	w := csv.NewWriter(&b)
	w.UseCRLF = true
	_ = w.Write(header)
	_ = w.WriteAll(rows)
	if err := w.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`.csv"`)
	return c.Send(b.Bytes())
}

// num formats a figure for CSV: empty for null, no exponent, no rounding
// beyond what the figure carries.
func num(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

// anyNum formats a change held in an any (a *float64, nil for null).
func anyNum(v any) string {
	if p, ok := v.(*float64); ok {
		return num(p)
	}
	return ""
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}

// fileName keeps a download's name to safe characters.
func fileName(parts ...string) string {
	s := strings.Join(parts, "_")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
}
