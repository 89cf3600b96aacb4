package ingest

import "time"

// The errors a request is refused with as a whole, nothing of it stored.
// Each protocol answers them in its own terms (package api: 400 or 413 for
// a BodyError, 403 for an OutOfScopeError, 422 for a RefusedError, 503 with
// Retry-After for the failures to store: *QueueFullError, ErrClosed,
// *StoreError, *TimeoutError and any other).

// BodyError is a body that could not be read to its end or is not what the
// endpoint takes. Err is the reader's own error as it returned it, a
// *TooManyRecordsError, or an error of the decoder (wrapping ErrUnparseable
// for a JSON or NDJSON body).
type BodyError struct{ Err error }

func (e *BodyError) Error() string { return e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// OutOfScopeError refuses a request whose one record lies outside the
// scope of its credentials (Scope): a camera-platform alert.
type OutOfScopeError struct{ Err error }

func (e *OutOfScopeError) Error() string { return e.Err.Error() }
func (e *OutOfScopeError) Unwrap() error { return e.Err }

// RefusedError is a request of which nothing could be taken, for what its
// records hold: senders that read only the outcome (a context broker, a
// camera platform) must see it failed. Reason says why; Response lists
// what became of each record.
type RefusedError struct {
	Reason   string
	Response Response
}

func (e *RefusedError) Error() string { return e.Reason }

// TimeoutError says records were not stored within the pipeline's wait:
// nothing of the request was acknowledged, and resending it is safe.
type TimeoutError struct {
	Wait time.Duration
	Err  error
}

func (e *TimeoutError) Error() string {
	return "records were not stored within " + e.Wait.String() + "; retry the same request (ids already stored are skipped)"
}
func (e *TimeoutError) Unwrap() error { return e.Err }
