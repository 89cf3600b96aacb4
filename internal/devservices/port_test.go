package devservices

import (
	"errors"
	"testing"
)

// TestOnFreePortChoosesAgainWhenThePortWasTaken: a server that finds its
// free port taken by another process before it bound it is started again
// on another, three times at most; a port the caller named is not
// changed, and other failures are not retried.
func TestOnFreePortChoosesAgainWhenThePortWasTaken(t *testing.T) {
	taken := errors.New(`postgres exited during start-up: exit status 1; last lines: could not bind IPv4 address "127.0.0.1": Address already in use`)
	for _, c := range []struct {
		name      string
		opts      Options
		fails     int
		err       error
		wantCalls int
		wantErr   bool
	}{
		{"taken once, then started", Options{}, 1, taken, 2, false},
		{"taken every time: three tries", Options{}, 5, taken, 3, true},
		{"a named port is kept", Options{Port: 5432}, 1, taken, 1, true},
		{"another failure is not retried", Options{}, 1, errors.New("initdb failed"), 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ports []int
			s, err := onFreePort(c.opts, func(port int) (*Server, error) {
				ports = append(ports, port)
				if len(ports) <= c.fails {
					return nil, c.err
				}
				return &Server{Name: "postgres"}, nil
			})
			if len(ports) != c.wantCalls || (err != nil) != c.wantErr || (err == nil) != (s != nil) {
				t.Fatalf("got %d starts on %v, err %v; want %d starts, an error: %v", len(ports), ports, err, c.wantCalls, c.wantErr)
			}
			if c.opts.Port != 0 && ports[0] != c.opts.Port {
				t.Errorf("started on %d, want the named %d", ports[0], c.opts.Port)
			}
		})
	}
}
