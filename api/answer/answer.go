// Package answer holds what the API's handlers, in api and api/gis, share
// about their answers: JSON is written as data, and a failure of storage is
// refused in one way. The server's error handler (api) turns a
// StorageError into 503 with Retry-After, naming what was unavailable and
// logging the cause, which may carry queries, addresses or data, instead of
// showing it.
//
// Concurrency: stateless; every function is safe for concurrent use.
package answer

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/aggregate"
)

// StorageError is a failure to read or write storage. Its text stays in
// the server's log.
type StorageError struct{ Err error }

func (e *StorageError) Error() string { return "storage: " + e.Err.Error() }
func (e *StorageError) Unwrap() error { return e.Err }

// Unavailable answers a failure to read or write storage: 503 with
// Retry-After, the detail logged (api's error handler).
func Unavailable(err error) error { return &StorageError{Err: err} }

// FiguresError answers a failure to read figures: 404 for a unit or
// hierarchy the figures do not know, which the client can fix, otherwise
// Unavailable.
func FiguresError(err error) error {
	if errors.Is(err, aggregate.ErrUnknownArea) || errors.Is(err, aggregate.ErrUnknownHierarchy) {
		return fiber.NewError(fiber.StatusNotFound, err.Error())
	}
	return Unavailable(err)
}

// MarshalJSON encodes v keeping <, > and & as they are: answers are data,
// not HTML. It is the server's JSON encoder, and what handlers that write
// JSON by hand (GeoJSON features, OGC links) encode their parts with.
func MarshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}
