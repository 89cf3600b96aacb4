package ingest

import "context"

// Scope bounds what one request may store: the units its records may be
// filed under and the devices whose reports it may carry. The HTTP layer
// derives it from the request's credentials and puts it in the request's
// context (WithScope); a record outside it is refused at its index, with
// the reason, and its neighbours are stored. Without a scope (MQTT, whose
// broker authenticates its clients) records may name any unit.
type Scope interface {
	// Covers returns nil when records of unit code of hierarchy may be
	// stored, else an error that says why not.
	Covers(hierarchy, code string) error
	// CoversDevice returns nil when the request may carry reports of
	// device id, else an error that says why not.
	CoversDevice(id string) error
}

type scopeKey struct{}

// WithScope returns ctx carrying the scope of a request's records.
func WithScope(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

func scopeFrom(ctx context.Context) Scope {
	s, _ := ctx.Value(scopeKey{}).(Scope)
	return s
}

// inScope checks a record's unit and device against the request's scope.
func inScope(s Scope, hierarchy, code, deviceID string) error {
	if s == nil {
		return nil
	}
	if deviceID != "" {
		if err := s.CoversDevice(deviceID); err != nil {
			return err
		}
	}
	return s.Covers(hierarchy, code)
}
