package device

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func newRegistry(t *testing.T, db string) (*Registry, *chstore.Store) {
	t.Helper()
	s := testenv.StoreOn(t, db)
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	r, err := New(Config{}, s, h, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, s
}

func TestPutPlacesTheDeviceAndRefusesWhatCannotBePlaced(t *testing.T) {
	r, _ := newRegistry(t, testenv.Database(t))
	ctx := context.Background()
	f := func(d Device, want string) {
		t.Helper()
		_, _, err := r.Put(ctx, d)
		var bad *InvalidError
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: got %v, want an InvalidError containing %q", d, err, want)
		}
	}
	f(Device{ID: "C1", Kind: "drone", Lat: 10.77, Lon: 106.7}, `kind "drone"`)
	f(Device{ID: "a/b", Kind: Camera, Lat: 10.77, Lon: 106.7}, "reserve")
	f(Device{ID: "C1", Kind: Camera}, "lat and lon are required")
	f(Device{ID: "C1", Kind: Camera, Lat: 91, Lon: 106.7}, "out of range")
	f(Device{ID: "C1", Kind: Camera, Lat: 10.0, Lon: 110.0}, "outside every unit")
	f(Device{ID: "C1", Kind: Camera, Lat: 106.7009, Lon: 10.7769}, "out of range")

	d, created, err := r.Put(ctx, Device{ID: "C1", Kind: Camera, Name: "Nguyễn Huệ", Lat: 10.7769, Lon: 106.7009})
	if err != nil || !created || d.AreaCode != "26740" || d.Hierarchy != "vn-2025" || d.Source != "api" {
		t.Fatalf("got %+v created=%v err=%v, want C1 placed in 26740", d, created, err)
	}
	if _, created, _ := r.Put(ctx, Device{ID: "C1", Kind: Camera, Lat: 10.7769, Lon: 106.7009}); created {
		t.Error("second put: created, want updated")
	}
	// Times carry the deployment's offset, as every other time the API
	// writes, whether just stamped or read back after a restart.
	if got := d.UpdatedAt.Format("-07:00"); got != "+07:00" {
		t.Errorf("updated_at after put: offset %s, want +07:00", got)
	}
	again, _ := newRegistry(t, r.db)
	if err := again.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ := again.Device("C1"); d.UpdatedAt.Format("-07:00") != "+07:00" {
		t.Errorf("updated_at after a restart: %s, want the +07:00 offset", d.UpdatedAt.Format(time.RFC3339))
	}
}

func TestARegistrationThroughTheAPIWinsOverAFirstReport(t *testing.T) {
	db := testenv.Database(t)
	a, _ := newRegistry(t, db)
	b, _ := newRegistry(t, db) // another node, which has not seen a's registration
	ctx := context.Background()
	if _, _, err := a.Put(ctx, Device{ID: "S1", Kind: Sensor, Name: "Gauge at the lock", Lat: 10.7769, Lon: 106.7009}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := b.Ensure(ctx, []Device{{ID: "S1", Kind: Sensor, Name: "S1", Lat: 10.8494, Lon: 106.7537, Hierarchy: "vn-2025",
		AreaCode: "26800", Source: "first_report", UpdatedAt: now}}); err != nil {
		t.Fatal(err)
	}
	c, _ := newRegistry(t, db)
	if err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	d, ok := c.Device("S1")
	if !ok || d.Source != "api" || d.Name != "Gauge at the lock" || d.AreaCode != "26740" {
		t.Errorf("got %+v, want the API's registration", d)
	}
}

func TestMatchCameraByChannelNameOrAddress(t *testing.T) {
	r, _ := newRegistry(t, testenv.Database(t))
	ctx := context.Background()
	for _, d := range []Device{
		{ID: "HCM-Q1-017", Kind: Camera, Lat: 10.7769, Lon: 106.7009},
		{ID: "CAM-B", Kind: Camera, Lat: 10.7769, Lon: 106.7009, ChannelName: "Bến Thành gate"},
		{ID: "CAM-C", Kind: Camera, Lat: 10.7769, Lon: 106.7009, Address: "10.0.0.9/2"},
		{ID: "CAM-D", Kind: Camera, Lat: 10.7769, Lon: 106.7009, Address: "10.0.0.9"},
		{ID: "S-E", Kind: Sensor, Lat: 10.7769, Lon: 106.7009, ChannelName: "Sensor E"},
	} {
		if _, _, err := r.Put(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	f := func(name, ip, ch, want string) {
		t.Helper()
		d, ok := r.MatchCamera(name, ip, ch)
		if d.ID != want || ok != (want != "") {
			t.Errorf("MatchCamera(%q, %q, %q): got %q %v, want %q", name, ip, ch, d.ID, ok, want)
		}
	}
	f("HCM-Q1-017 Nguyen Hue / Le Loi", "10.20.30.41", "1", "HCM-Q1-017")
	f("Bến Thành gate", "", "", "CAM-B")
	f("unknown", "10.0.0.9", "2", "CAM-C")
	f("", "10.0.0.9", "5", "CAM-D")
	f("Sensor E", "", "", "")
	f("", "10.9.9.9", "1", "")
}

func TestStatusFollowsTheLastReportAndTheTimeout(t *testing.T) {
	r, s := newRegistry(t, testenv.Database(t))
	ctx := context.Background()
	for _, d := range []Device{
		{ID: "CAM-1", Kind: Camera, Lat: 10.7769, Lon: 106.7009},
		{ID: "CAM-2", Kind: Camera, Lat: 10.7769, Lon: 106.7009, OfflineAfter: Duration(30 * time.Second)},
		{ID: "CAM-3", Kind: Camera, Lat: 10.7769, Lon: 106.7009},
	} {
		if _, _, err := r.Put(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	b, err := s.Conn().PrepareBatch(ctx, "INSERT INTO "+s.Database()+".camera_events (event_id, camera_id, type, severity, hierarchy, area_code, lat, lon, occurred_at, attrs, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"CAM-1", "CAM-2"} {
		if err := b.Append("hb-"+id, id, "heartbeat", "info", "vn-2025", "26740", 10.7769, 106.7009, now.Add(-time.Minute), "{}", now); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	vs, err := r.Views(ctx, []string{"79"}, Camera)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		seen := "never"
		if v.LastSeen != nil {
			seen = now.Sub(*v.LastSeen).String()
		}
		got = append(got, v.ID+" "+v.Status+" "+seen)
	}
	if want := "CAM-1 online 1m0s, CAM-2 offline 1m0s, CAM-3 offline never"; strings.Join(got, ", ") != want {
		t.Errorf("got %s, want %s", strings.Join(got, ", "), want)
	}
	counts, err := r.AreaCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := counts["26740"]; c.CamerasOnline != 1 || c.CamerasOffline != 2 {
		t.Errorf("counts of 26740: got %+v", c)
	}
	if vs, _ := r.Views(ctx, []string{"01"}, ""); len(vs) != 0 {
		t.Errorf("Hà Nội: got %d devices, want none", len(vs))
	}
}

// TestCredentialsSurviveUpdatesAndRestarts: a camera's password hash is
// stored with it, kept when a later registration sends none, read back by
// another node, and never in its JSON.
func TestCredentialsSurviveUpdatesAndRestarts(t *testing.T) {
	db := testenv.Database(t)
	a, _ := newRegistry(t, db)
	ctx := context.Background()
	const hash = "$2a$04$abcdefghijklmnopqrstuuCo9v4tOrN1n6I2/3fA0uJ1m3Jd0i2eG"
	d, _, err := a.Put(ctx, Device{ID: "C1", Kind: Camera, Lat: 10.7769, Lon: 106.7009, SecretHash: hash})
	if err != nil || !d.Credentials {
		t.Fatalf("put with credentials: got %+v, %v", d, err)
	}
	if d, _, err = a.Put(ctx, Device{ID: "C1", Kind: Camera, Name: "renamed", Lat: 10.7769, Lon: 106.7009}); err != nil || d.SecretHash != hash {
		t.Fatalf("update without a password: hash %q, %v; want the one set", d.SecretHash, err)
	}
	b, _ := newRegistry(t, db)
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	got, ok := b.Device("C1")
	if !ok || got.SecretHash != hash || !got.Credentials || got.Name != "renamed" {
		t.Fatalf("another node reads %+v", got)
	}
	if js, _ := json.Marshal(got); strings.Contains(string(js), hash) || !strings.Contains(string(js), `"credentials":true`) {
		t.Errorf("JSON %s: want credentials true and no hash", js)
	}
}
