package api

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/internal/apitest"
	"github.com/openioc/ioc/ingest"
)

// newGISServer is a server of the built-in geography, its figures those
// of apitest.Figures.
func newGISServer(t *testing.T) (*Server, *apitest.Figures) {
	t.Helper()
	reg, h := apitest.Vn2025(t)
	figs := &apitest.Figures{Reg: reg, H: h}
	s, err := New(Config{}, Deps{
		Geo: reg, KPIs: figs, Auth: auth.NewVerifier(apitest.Admin, apitest.Secret),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, figs
}

// newLiveServer is a server with apitest's devices and camera events too.
func newLiveServer(t *testing.T) (*Server, *apitest.Devices, *apitest.Events) {
	t.Helper()
	reg, h := apitest.Vn2025(t)
	devs := &apitest.Devices{H: h, List: apitest.LiveDevices(t, h)}
	evs := &apitest.Events{H: h, List: apitest.LiveEvents(time.Now())}
	s, err := New(Config{}, Deps{
		Geo: reg, KPIs: &apitest.Figures{Reg: reg, H: h}, Auth: auth.NewVerifier(apitest.Admin, apitest.Secret),
		Devices: devs, Events: evs,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, devs, evs
}

// stubIngest stands in for the ingest pipeline where only the routes
// matter: it stores nothing, answers every body with an empty outcome and
// calls took, when set, for each.
type stubIngest struct{ took func() }

func (s stubIngest) records() (ingest.Response, error) {
	if s.took != nil {
		s.took()
	}
	return ingest.Response{Errors: []ingest.RecordError{}}, nil
}

func (s stubIngest) Dossiers(context.Context, io.Reader, bool) (ingest.Response, error) {
	return s.records()
}
func (s stubIngest) CameraEvents(context.Context, io.Reader, bool) (ingest.Response, error) {
	return s.records()
}
func (s stubIngest) SensorReadings(context.Context, io.Reader, bool) (ingest.Response, error) {
	return s.records()
}
func (s stubIngest) Feedback(context.Context, io.Reader, bool) (ingest.Response, error) {
	return s.records()
}
func (s stubIngest) NGSILD(context.Context, []byte) (ingest.Response, error) { return s.records() }
func (s stubIngest) CameraXML(context.Context, []byte, string) (ingest.Response, error) {
	return s.records()
}
