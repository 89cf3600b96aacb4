package report

import "fmt"

// InvalidError is a request the engine cannot read: a malformed parameter.
type InvalidError struct{ msg string }

func (e *InvalidError) Error() string { return e.msg }

func invalidf(format string, args ...any) error {
	return &InvalidError{fmt.Sprintf(format, args...)}
}

// LimitError is a well-formed request beyond what the engine answers: too
// long a range, an indicator without history, a breakdown not offered.
type LimitError struct{ msg string }

func (e *LimitError) Error() string { return e.msg }

func limitf(format string, args ...any) error {
	return &LimitError{fmt.Sprintf(format, args...)}
}

// NotFoundError names an indicator, unit or period that does not exist.
type NotFoundError struct{ msg string }

func (e *NotFoundError) Error() string { return e.msg }

func notFoundf(format string, args ...any) error {
	return &NotFoundError{fmt.Sprintf(format, args...)}
}

// ConflictError is a period whose state refuses the action: closed
// already when closing, not closed when reopening.
type ConflictError struct{ msg string }

func (e *ConflictError) Error() string { return e.msg }

// TimeoutError is a query that ran past the execution limit.
type TimeoutError struct {
	Limit string
	Err   error
}

func (e *TimeoutError) Error() string {
	return "the query took longer than " + e.Limit + " (IOC_QUERY_TIMEOUT); narrow the range or the area"
}
func (e *TimeoutError) Unwrap() error { return e.Err }
