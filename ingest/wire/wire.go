// Package wire owns what ingest and each of its wire-format decoders
// (ingest/cameraxml, ingest/ngsild) share: ErrUnparseable, the error that
// refuses a body whole, and the way a sent text is quoted in a message —
// bounded, so that a hostile body cannot make an answer large, and escaped.
//
// Concurrency: it holds no state; every function is pure and safe for
// concurrent use.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrUnparseable means the body as a whole cannot be read in its format;
// the request is refused whole rather than answered per record.
var ErrUnparseable = errors.New("body cannot be parsed")

// Clip bounds a sent string quoted in a message.
func Clip(s string) string {
	const max = 100
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && s[i]&0xC0 == 0x80 { // do not cut a UTF-8 sequence
		i--
	}
	return s[:i] + "…"
}

// Preview quotes the start of sent bytes, escaped, for a message saying
// what came instead of what was wanted.
func Preview(b []byte) string {
	const max = 40
	if len(b) > max {
		return fmt.Sprintf("%q…", b[:max])
	}
	return fmt.Sprintf("%q", b)
}

// JSONError says what is wrong with raw, given the error decoding it, in
// the sender's terms: where the syntax breaks, or which field has which
// wrong JSON type.
func JSONError(err error, raw []byte) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.As(err, &te):
		if te.Field == "" {
			return fmt.Sprintf("want %s, got a JSON %s", te.Type, te.Value)
		}
		return fmt.Sprintf("%s must be a %s, got a JSON %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	default:
		return strings.TrimPrefix(err.Error(), "json: ")
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "bool":
		return "boolean (true or false)"
	case "string":
		return "string"
	case "float64", "int", "int64", "uint64":
		return "number"
	default:
		return goKind
	}
}
