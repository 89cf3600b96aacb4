package ingest

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// However the body arrives, an array cut short is called that.
func TestAnArrayCutShortIsCalledThatHoweverTheBodyArrives(t *testing.T) {
	for how, wrap := range map[string]func(io.Reader) io.Reader{
		"at once":                  func(r io.Reader) io.Reader { return r },
		"byte by byte":             iotest.OneByteReader,
		"in halves":                iotest.HalfReader,
		"with an error at the end": func(r io.Reader) io.Reader { return iotest.DataErrReader(r) },
	} {
		for _, body := range []string{`[{},{}`, `[{},`, `[`, `[{"event_id":"x"`} {
			err := decodeStream[DossierEvent](wrap(strings.NewReader(body)), false, 0, func(int, DossierEvent, error) {})
			if err == nil || !strings.Contains(err.Error(), "the body ends before the JSON array is closed") {
				t.Errorf("%q read %s: got %v, want the array said to end before it is closed", body, how, err)
			}
		}
	}
}
