package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// RecordError reports one refused record by its position in the request.
type RecordError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// ErrUnparseable means the body as a whole is not JSON or NDJSON; the
// request gets a 400 rather than per-record errors.
var ErrUnparseable = errors.New("body cannot be parsed")

// decoded is a record that parsed, with its position in the request.
type decoded[T any] struct {
	index int
	value T
}

// decodeRecords splits body into records: a JSON array, or NDJSON (one
// object per line) when ndjson is set or the body does not start with '['.
// Records that do not decode are reported by index and skipped.
func decodeRecords[T any](body []byte, ndjson bool) (recs []decoded[T], errs []RecordError, err error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, nil, fmt.Errorf("%w: the body is empty; send a JSON array or NDJSON (one object per line)", ErrUnparseable)
	}
	if !ndjson && trimmed[0] == '[' {
		return decodeArray[T](trimmed)
	}
	if trimmed[0] != '{' {
		if ndjson {
			return nil, nil, fmt.Errorf("%w: Content-Type is application/x-ndjson but the body does not start with a JSON object (send one object per line, or a JSON array as application/json); got %s", ErrUnparseable, preview(trimmed))
		}
		return nil, nil, fmt.Errorf("%w: want a JSON array or NDJSON objects, got %s", ErrUnparseable, preview(trimmed))
	}
	parsedAny, n := false, 0
	for _, line := range bytes.Split(trimmed, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var v T
		if e := decodeOne(line, &v); e != nil {
			errs = append(errs, RecordError{Index: n, Error: e.Error()})
			if _, syntax := e.(*syntaxError); !syntax {
				parsedAny = true
			}
		} else {
			recs = append(recs, decoded[T]{index: n, value: v})
			parsedAny = true
		}
		n++
	}
	if !parsedAny {
		return nil, nil, fmt.Errorf("%w: no line is a JSON object (first: %s)", ErrUnparseable, errs[0].Error)
	}
	return recs, errs, nil
}

func decodeArray[T any](body []byte) (recs []decoded[T], errs []RecordError, err error) {
	var raws []json.RawMessage
	if e := json.Unmarshal(body, &raws); e != nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnparseable, describeJSONError(e, body))
	}
	for i, raw := range raws {
		var v T
		if e := decodeOne(raw, &v); e != nil {
			errs = append(errs, RecordError{Index: i, Error: e.Error()})
			continue
		}
		recs = append(recs, decoded[T]{index: i, value: v})
	}
	return recs, errs, nil
}

type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

func decodeOne[T any](raw []byte, v *T) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		if json.Valid(raw) {
			return fmt.Errorf("record is %s, want a JSON object", preview(raw))
		}
		return &syntaxError{"record is not valid JSON: " + preview(raw)}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return &syntaxError{describeJSONError(err, raw)}
		}
		return errors.New(describeJSONError(err, raw))
	}
	return nil
}

func describeJSONError(err error, raw []byte) string {
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

func preview(b []byte) string {
	const max = 40
	if len(b) > max {
		return fmt.Sprintf("%q…", b[:max])
	}
	return fmt.Sprintf("%q", b)
}
