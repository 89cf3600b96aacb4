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
// then rows, CRLF line ends as RFC 4180 has them. Every cell goes through
// neutralise: this is the one place the API writes CSV, so that no text
// from a device name, an alarm message or a note reaches a spreadsheet as a
// formula.
func sendCSV(c *fiber.Ctx, name string, header []string, rows [][]string) error {
	var b bytes.Buffer
	b.WriteString(bom)
	w := csv.NewWriter(&b)
	w.UseCRLF = true
	_ = w.Write(neutraliseRow(header))
	for _, row := range rows {
		_ = w.Write(neutraliseRow(row))
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`.csv"`)
	return c.Send(b.Bytes())
}

// neutraliseRow is row with every cell neutralised, in a new slice: rows
// may share their backing arrays with the caller's.
func neutraliseRow(row []string) []string {
	out := make([]string, len(row))
	for i, cell := range row {
		out[i] = neutralise(cell)
	}
	return out
}

// neutralise keeps a spreadsheet from reading a cell as a formula (CSV
// injection): a cell starting with =, +, -, @, a tab or a carriage return
// gets a leading single quote, as OWASP recommends, which spreadsheets show
// as text. A number such as -0.25 or +3 is left as it is, so that figures
// stay figures.
func neutralise(cell string) string {
	if cell == "" {
		return cell
	}
	switch cell[0] {
	case '=', '@', '\t', '\r':
		return "'" + cell
	case '+', '-':
		if plainNumber(cell[1:]) {
			return cell
		}
		return "'" + cell
	}
	return cell
}

// plainNumber reports whether s is digits with at most one decimal point
// and an optional exponent: what the API writes for figures, and nothing a
// spreadsheet could evaluate as more than a number.
func plainNumber(s string) bool {
	mantissa, exp, hasExp := s, "", false
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mantissa, exp, hasExp = s[:i], s[i+1:], true
	}
	digits, dot := 0, false
	for i := 0; i < len(mantissa); i++ {
		switch c := mantissa[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	if digits == 0 {
		return false
	}
	if !hasExp {
		return true
	}
	if exp != "" && (exp[0] == '+' || exp[0] == '-') {
		exp = exp[1:]
	}
	return exp != "" && strings.Trim(exp, "0123456789") == ""
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
