package ingest

import (
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest/cameraxml"
)

var ict = time.FixedZone("ICT", 7*3600) // Ho Chi Minh City, without needing tzdata

// The sample alert becomes the camera event on the wire, whole: the event
// cameraxml maps it to, its key the event id, no position (the registry
// places the camera).
func TestCameraAlertEventSample(t *testing.T) {
	b, err := os.ReadFile("cameraxml/testdata/camera-event-notification.xml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := cameraxml.Decode(b, "application/xml; charset=UTF-8")
	if err != nil {
		t.Fatal(err)
	}
	e, err := cameraAlertEvent(a, "HCM-CAM-017", ict)
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := a.Event("HCM-CAM-017", ict)
	unix := time.Date(2026, 11, 22, 2, 15, 3, 0, time.UTC).Unix()
	wantEvent := CameraEventWire{
		EventID: "xml/HCM-CAM-017/" + strconv.FormatInt(unix, 10) + "/anpr/51F12345", CameraID: "HCM-CAM-017",
		Type: "traffic_violation", Severity: "warning", OccurredAt: "2026-11-22T09:15:03+07:00", Attrs: ev.Attrs,
	}
	if !reflect.DeepEqual(e, wantEvent) || len(e.Attrs) != 10 {
		t.Errorf("event:\ngot  %+v\nwant %+v with the 10 attributes of the alert", e, wantEvent)
	}
	// A resent notification is the same event.
	again, _ := cameraAlertEvent(a, "HCM-CAM-017", ict)
	if again.EventID != e.EventID {
		t.Errorf("event id of a resend: got %q, want %q", again.EventID, e.EventID)
	}
	if _, err := cameraAlertEvent(a, " ", ict); err == nil || !strings.Contains(err.Error(), "camera id is required") {
		t.Errorf("no camera: got error %v, want one that says camera id is required", err)
	}
}

func TestCameraXMLEventID(t *testing.T) {
	a := cameraxml.Alert{EventType: "ANPR", DateTime: "2026-11-22T09:15:03+07:00", ANPR: &cameraxml.ANPR{LicensePlate: strings.Repeat("Đ", 80)}}
	e1, err := cameraAlertEvent(a, "CAM-1", ict)
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := cameraAlertEvent(a, "CAM-1", ict)
	a.ANPR.LicensePlate += "X"
	e3, _ := cameraAlertEvent(a, "CAM-1", ict)
	if len(e1.EventID) > maxIDLen || !utf8.ValidString(e1.EventID) || !strings.HasPrefix(e1.EventID, "xml/CAM-1/") {
		t.Errorf("long event id: got %q (%d bytes), want ≤ %d bytes of UTF-8 starting xml/CAM-1/", e1.EventID, len(e1.EventID), maxIDLen)
	}
	if e1.EventID != e2.EventID || e1.EventID == e3.EventID {
		t.Errorf("long event ids: got %q, %q, %q, want the first two equal and the third different", e1.EventID, e2.EventID, e3.EventID)
	}
	if got, want := boundedID("xml/c/1/vmd/"), "xml/c/1/vmd/"; got != want {
		t.Errorf("short event id: got %q, want %q", got, want)
	}
}

// FuzzCameraAlertEvent checks that whatever an alert's texts (cameraxml's
// FuzzDecode fuzzes the XML that brings them), an event mapped from it is
// one validation can accept: a known type and severity, an id within the
// limit in UTF-8, an RFC 3339 time.
func FuzzCameraAlertEvent(f *testing.F) {
	f.Add("ANPR", "active", "2026-11-22T09:15:03+07:00", "51F12345", "red_light")
	f.Add("videoloss", "inactive", "2026-11-22T09:15:03", "", "")
	f.Add("anpr", "", "2026-11-22T09:15:03+0700", strings.Repeat("Đ", 80), "")
	f.Add("VMD", "active", "2026-11-22T09:15:03.250", "\xff\xfe", "")
	f.Fuzz(func(t *testing.T, eventType, state, dateTime, plate, illegal string) {
		a := cameraxml.Alert{EventType: eventType, EventState: state, DateTime: dateTime,
			ANPR: &cameraxml.ANPR{LicensePlate: plate, IllegalCode: illegal}}
		for _, loc := range []*time.Location{ict, nil} {
			e, err := cameraAlertEvent(a, "CAM-1", loc)
			if err != nil {
				continue
			}
			if !slices.Contains(device.CameraEventTypes, e.Type) || !slices.Contains(device.CameraSeverities, e.Severity) {
				t.Fatalf("got type %q severity %q, want ones validation accepts", e.Type, e.Severity)
			}
			if e.EventID == "" || len(e.EventID) > maxIDLen || !utf8.ValidString(e.EventID) {
				t.Fatalf("got event id %q (%d bytes), want 1..%d bytes of UTF-8", e.EventID, len(e.EventID), maxIDLen)
			}
			if _, err := time.Parse(time.RFC3339, e.OccurredAt); err != nil {
				t.Fatalf("got occurred_at %q, want RFC 3339: %v", e.OccurredAt, err)
			}
		}
	})
}
