package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/openioc/ioc/ingest/wire"
)

// RecordError reports one refused record by its position in the request.
type RecordError struct {
	Index int `json:"index"`
	// Error is every problem of the record, joined with "; ", so that one
	// round trip tells an integrator all there is to fix.
	Error string `json:"error"`
	// Problems lists the same problems one by one.
	Problems []string `json:"problems,omitempty"`
}

// recordError reports err against the record at index, with every
// problem an *InvalidError carries.
func recordError(index int, err error) RecordError {
	e := RecordError{Index: index, Error: err.Error()}
	var inv *InvalidError
	if errors.As(err, &inv) {
		e.Problems = inv.Problems
	} else {
		e.Problems = []string{e.Error}
	}
	return e
}

// ErrUnparseable means the body as a whole cannot be read (not JSON or
// NDJSON, not an NGSI-LD notification, not an alert's XML); the request is
// refused whole (a BodyError) rather than answered per record. It is the
// one the protocol decoders wrap.
var ErrUnparseable = wire.ErrUnparseable

// TooManyRecordsError refuses a body holding more records than one request
// may: each record costs memory until the request is answered.
type TooManyRecordsError struct {
	Limit int
	// Readings, when set, counts the readings of an NGSI-LD notification,
	// refused whole: its sender can only lower the subscription's batch
	// size.
	Readings int
}

func (e *TooManyRecordsError) Error() string {
	if e.Readings > 0 {
		return fmt.Sprintf("the notification holds %d readings, more than the %d records (the IOC_INGEST_MAX_RECORDS limit) one request may; lower the subscription's batch size", e.Readings, e.Limit)
	}
	return fmt.Sprintf("the body holds more than %d records (the IOC_INGEST_MAX_RECORDS limit); split it into requests of at most %d records", e.Limit, e.Limit)
}

// decoded is a record that parsed, with its position in the request.
type decoded[T any] struct {
	index int
	value T
}

// decodeRecords splits body into records, as decodeStream does, and
// collects them; it serves bodies already bounded in memory (MQTT).
func decodeRecords[T any](body []byte, ndjson bool) (recs []decoded[T], errs []RecordError, err error) {
	err = decodeStream(bytes.NewReader(body), ndjson, 0, func(i int, v T, e error) {
		if e != nil {
			errs = append(errs, recordError(i, e))
			return
		}
		recs = append(recs, decoded[T]{index: i, value: v})
	})
	if err != nil {
		return nil, nil, err
	}
	return recs, errs, nil
}

// decodeStream reads records one at a time from r, never holding more
// than the one being read: a JSON array, or NDJSON (one object per line)
// when ndjson is set or the body does not start with '['. Each record is
// handed to each with its index, or with the reason it does not decode.
// More than maxRecords records (when positive) fail with a
// *TooManyRecordsError; a body that is not JSON or NDJSON at all fails with
// an error wrapping ErrUnparseable, and a failure to read r is returned as
// is. After an error, what each was given must be dropped.
func decodeStream[T any](r io.Reader, ndjson bool, maxRecords int, each func(index int, v T, err error)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	first, err := firstByte(br)
	switch {
	case err == io.EOF:
		return fmt.Errorf("%w: the body is empty; send a JSON array or NDJSON (one object per line)", ErrUnparseable)
	case err != nil:
		return err
	case !ndjson && first == '[':
		return decodeArray(br, maxRecords, each)
	case first != '{':
		start, _ := br.Peek(64)
		start = bytes.TrimSpace(start)
		if ndjson {
			return fmt.Errorf("%w: Content-Type is application/x-ndjson but the body does not start with a JSON object (send one object per line, or a JSON array as application/json); got %s", ErrUnparseable, wire.Preview(start))
		}
		return fmt.Errorf("%w: want a JSON array or NDJSON objects, got %s", ErrUnparseable, wire.Preview(start))
	}
	parsedAny, n, firstErr := false, 0, ""
	var line []byte // a line longer than the reader's buffer, gathered
	take := func(l []byte) error {
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			return nil
		}
		if maxRecords > 0 && n >= maxRecords {
			return &TooManyRecordsError{Limit: maxRecords}
		}
		var v T
		if e := decodeOne(l, &v); e != nil {
			each(n, v, e)
			if _, syntax := e.(*syntaxError); !syntax {
				parsedAny = true
			}
			if firstErr == "" {
				firstErr = e.Error()
			}
		} else {
			each(n, v, nil)
			parsedAny = true
		}
		n++
		return nil
	}
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			line = append(line, chunk...)
			continue
		}
		if err != nil && err != io.EOF {
			return err
		}
		l := chunk
		if len(line) > 0 {
			line = append(line, chunk...)
			l = line
		}
		if e := take(l); e != nil {
			return e
		}
		line = line[:0]
		if err == io.EOF {
			break
		}
	}
	if !parsedAny {
		return fmt.Errorf("%w: no line is a JSON object (first: %s)", ErrUnparseable, firstErr)
	}
	return nil
}

// firstByte skips white space and returns the byte after it, unread.
func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n', '\v', '\f':
			continue
		}
		return b, br.UnreadByte()
	}
}

// decodeArray reads the elements of a JSON array one at a time.
func decodeArray[T any](r io.Reader, maxRecords int, each func(int, T, error)) error {
	dec := json.NewDecoder(r)
	if _, err := dec.Token(); err != nil { // the '[' firstByte saw
		return err
	}
	for i := 0; dec.More(); i++ {
		if maxRecords > 0 && i >= maxRecords {
			return &TooManyRecordsError{Limit: maxRecords}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return arrayError(err)
		}
		var v T
		each(i, v, decodeOne(raw, &v))
	}
	if _, err := dec.Token(); err != nil { // ']'
		return arrayError(err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return arrayError(err)
		}
		return fmt.Errorf("%w: the body goes on after the JSON array (%v); send one array, or NDJSON", ErrUnparseable, tok)
	}
	return nil
}

// arrayError says why a JSON array cannot be read on: the body is not
// JSON, or reading it failed.
func arrayError(err error) error {
	var se *json.SyntaxError
	switch {
	// Where the body is cut decides whether the decoder says EOF or calls
	// it a syntax error; both mean the same to the sender.
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end of JSON input"):
		return fmt.Errorf("%w: the body ends before the JSON array is closed with ]", ErrUnparseable)
	case errors.As(err, &se):
		return fmt.Errorf("%w: malformed JSON at byte %d: %s", ErrUnparseable, se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	default:
		return err
	}
}

type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

func decodeOne[T any](raw []byte, v *T) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		if json.Valid(raw) {
			return fmt.Errorf("record is %s, want a JSON object", wire.Preview(raw))
		}
		return &syntaxError{"record is not valid JSON: " + wire.Preview(raw)}
	}
	if decodeFlat(raw, v) {
		return nil // the usual record, decoded as json.Unmarshal would
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return &syntaxError{wire.JSONError(err, raw)}
		case errors.As(err, &te):
			// The rest of the record decoded: it is still checked, so
			// that every problem is reported at once.
			return typeErrors[T](raw, err)
		}
		return errors.New(wire.JSONError(err, raw))
	}
	return nil
}
