package cameraxml

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/textproto"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest/wire"
)

var ict = time.FixedZone("ICT", 7*3600) // Ho Chi Minh City, without needing tzdata

func sampleAlertXML(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/camera-event-notification.xml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// alertXML builds a minimal alert; inner goes inside the root.
func alertXML(inner string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">` +
		inner + `</EventNotificationAlert>`
}

func TestDecodeSample(t *testing.T) {
	a, err := Decode(sampleAlertXML(t), "application/xml; charset=UTF-8")
	if err != nil {
		t.Fatal(err)
	}
	want := Alert{
		IPAddress: "10.20.30.41", PortNo: "80", MACAddress: "44:19:b6:0a:12:7f", ChannelID: "1",
		ChannelName: "HCM-Q1-017 Nguyen Hue / Le Loi", DateTime: "2026-11-22T09:15:03+07:00",
		EventType: "ANPR", EventState: "active", EventDescription: "ANPR", ActivePostCount: 1,
		ANPR: &ANPR{Country: "VN", LicensePlate: "51F12345", Direction: "forward", VehicleType: "car", IllegalCode: "red_light", Confidence: 96},
	}
	if !reflect.DeepEqual(a, want) || !reflect.DeepEqual(a.ANPR, want.ANPR) {
		t.Errorf("alert:\ngot  %+v %+v\nwant %+v %+v", a, a.ANPR, want, want.ANPR)
	}
	e, err := a.Event("HCM-CAM-017", ict)
	if err != nil {
		t.Fatal(err)
	}
	unix := time.Date(2026, 11, 22, 2, 15, 3, 0, time.UTC).Unix()
	wantEvent := Event{
		Key:  "xml/HCM-CAM-017/" + strconv.FormatInt(unix, 10) + "/anpr/51F12345",
		Type: "traffic_violation", Severity: "warning", OccurredAt: "2026-11-22T09:15:03+07:00",
		Attrs: map[string]any{
			"plate": "51F12345", "country": "VN", "vehicle_type": "car", "direction": "forward", "confidence": 96,
			"violation": "red_light", "ip": "10.20.30.41", "channel_id": "1", "channel_name": "HCM-Q1-017 Nguyen Hue / Le Loi",
			"event_type": "ANPR",
		},
	}
	if !reflect.DeepEqual(e, wantEvent) {
		t.Errorf("event:\ngot  %+v\nwant %+v", e, wantEvent)
	}
	// A resent notification is the same event.
	again, _ := a.Event("HCM-CAM-017", ict)
	if again.Key != e.Key {
		t.Errorf("key of a resend: got %q, want %q", again.Key, e.Key)
	}
}

func TestEventMapping(t *testing.T) {
	const at = `<dateTime>2026-11-22T09:15:03+07:00</dateTime>`
	tests := []struct {
		name     string
		inner    string
		loc      *time.Location
		typ      string // want; empty when an error is wanted
		severity string
		occurred string
		err      string
	}{
		{"plate read", at + `<eventType>ANPR</eventType><eventState>active</eventState><ANPR><licensePlate>59A67890</licensePlate></ANPR>`, ict, "plate_read", "info", "2026-11-22T09:15:03+07:00", ""},
		{"empty illegal info is a plate read", at + `<eventType>anpr</eventType><ANPR><licensePlate>59A67890</licensePlate><illegalInfo><illegalCode> </illegalCode></illegalInfo></ANPR>`, ict, "plate_read", "info", "2026-11-22T09:15:03+07:00", ""},
		{"case-insensitive", at + `<eventType>TRAFFICJAM</eventType>`, ict, "congestion", "warning", "2026-11-22T09:15:03+07:00", ""},
		{"inactive is a heartbeat", at + `<eventType>videoloss</eventType><eventState>inactive</eventState>`, ict, "heartbeat", "info", "2026-11-22T09:15:03+07:00", ""},
		{"inactive without an event type", at + `<eventState>Inactive</eventState>`, ict, "heartbeat", "info", "2026-11-22T09:15:03+07:00", ""},
		{"no offset uses loc", `<dateTime>2026-11-22T09:15:03</dateTime><eventType>fielddetection</eventType>`, ict, "intrusion", "warning", "2026-11-22T09:15:03+07:00", ""},
		{"no offset in UTC", `<dateTime>2026-11-22T09:15:03.250</dateTime><eventType>VMD</eventType>`, time.UTC, "motion", "info", "2026-11-22T09:15:03Z", ""},
		{"offset without colon", `<dateTime>2026-11-22T09:15:03+0700</dateTime><eventType>fire</eventType>`, nil, "fire", "critical", "2026-11-22T09:15:03+07:00", ""},
		{"no offset and no loc", `<dateTime>2026-11-22T09:15:03</dateTime><eventType>VMD</eventType>`, nil, "", "", "", "has no UTC offset and no time zone is configured"},
		{"missing dateTime", `<eventType>VMD</eventType>`, ict, "", "", "", "dateTime is required"},
		{"invalid dateTime", `<dateTime>22/11/2026 09:15</dateTime><eventType>VMD</eventType>`, ict, "", "", "", `dateTime "22/11/2026 09:15" is not a time`},
		{"unknown eventType", at + `<eventType>faceCapture</eventType>`, ict, "", "", "", `eventType "faceCapture" is not supported; send one of ANPR, TFS, trafficJam`},
		{"missing eventType", at, ict, "", "", "", "eventType is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Decode([]byte(alertXML(tt.inner)), "text/xml")
			if err != nil {
				t.Fatal(err)
			}
			e, err := a.Event("CAM-1", tt.loc)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got error %v, want one that says %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if e.Type != tt.typ || e.Severity != tt.severity || e.OccurredAt != tt.occurred {
				t.Errorf("got %s/%s at %s, want %s/%s at %s", e.Type, e.Severity, e.OccurredAt, tt.typ, tt.severity, tt.occurred)
			}
			// An Event has no position: the registry places the camera.
		})
	}
}

// Every platform event type maps to a camera event type and severity that
// validation accepts.
func TestPlatformTypesAreKnown(t *testing.T) {
	for _, x := range platformTypes {
		for _, state := range []string{"active", "inactive"} {
			a := Alert{EventType: x.name, EventState: state, DateTime: "2026-11-22T09:15:03+07:00", ANPR: &ANPR{IllegalCode: "red_light"}}
			e, err := a.Event("CAM-1", ict)
			if err != nil {
				t.Fatalf("%s %s: got error %v, want an event", x.name, state, err)
			}
			if !slices.Contains(device.CameraEventTypes, e.Type) || !slices.Contains(device.CameraSeverities, e.Severity) {
				t.Errorf("%s %s: got type %q severity %q, want ones of device.CameraEventTypes and device.CameraSeverities", x.name, state, e.Type, e.Severity)
			}
		}
	}
}

func TestDecodeBodies(t *testing.T) {
	sample := sampleAlertXML(t)
	multipartBody := func(mixed bool, parts ...[2]string) ([]byte, string) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for i, p := range parts {
			h := textproto.MIMEHeader{}
			if !mixed {
				h.Set("Content-Disposition", `form-data; name="part`+strconv.Itoa(i)+`"`)
			}
			if p[0] != "" {
				h.Set("Content-Type", p[0])
			}
			pw, _ := w.CreatePart(h)
			pw.Write([]byte(p[1]))
		}
		w.Close()
		kind := "form-data"
		if mixed {
			kind = "mixed"
		}
		return buf.Bytes(), "multipart/" + kind + "; boundary=" + w.Boundary()
	}
	jpeg := "\xff\xd8\xff\xe0\x00\x10JFIF\x00"
	formBody, formType := multipartBody(false, [2]string{"image/jpeg", jpeg}, [2]string{"application/xml", string(sample)})
	mixedBody, mixedType := multipartBody(true, [2]string{"image/jpeg", jpeg}, [2]string{"", "\r\n" + string(sample)}, [2]string{"text/xml", alertXML("")})
	picsBody, picsType := multipartBody(false, [2]string{"image/jpeg", jpeg})
	deep := strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40)

	tests := []struct {
		name, body, contentType string
		plate                   string // want, when decoding succeeds
		err                     string
	}{
		{"plain XML", string(sample), "application/xml", "51F12345", ""},
		{"no content type", string(sample), "", "51F12345", ""},
		{"byte order mark", "\xef\xbb\xbf" + string(sample), "text/xml", "51F12345", ""},
		{"no namespace", `<EventNotificationAlert><eventType>ANPR</eventType><ANPR><licensePlate>30A1</licensePlate></ANPR></EventNotificationAlert>`, "", "30A1", ""},
		{"prefixed namespace", `<i:EventNotificationAlert xmlns:i="http://www.isapi.org/ver20/XMLSchema"><i:ANPR><i:licensePlate>30A2</i:licensePlate></i:ANPR></i:EventNotificationAlert>`, "", "30A2", ""},
		{"repeated field keeps the first", alertXML(`<ANPR><licensePlate>30A3</licensePlate><licensePlate>99Z9</licensePlate></ANPR>`), "", "30A3", ""},
		{"multipart/form-data with pictures", string(formBody), formType, "51F12345", ""},
		{"multipart/mixed, XML part without content type", string(mixedBody), mixedType, "51F12345", ""},
		{"empty body", "", "application/xml", "", "the body is empty"},
		{"blank body", " \r\n", "", "", "the body is empty"},
		{"not XML", `{"eventType":"ANPR"}`, "application/json", "", "the body is not XML"},
		{"malformed XML", `<EventNotificationAlert><eventType>ANPR</EventNotificationAlert>`, "", "", "malformed XML: line 1: element <eventType> closed by </EventNotificationAlert>"},
		{"truncated XML", `<EventNotificationAlert><eventType>ANPR</eventType>`, "", "", "malformed XML"},
		{"DOCTYPE", `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><EventNotificationAlert>&lol2;</EventNotificationAlert>`, "", "", "<!DOCTYPE> and other XML directives are not accepted"},
		{"undefined entity", `<EventNotificationAlert><eventType>&xxe;</eventType></EventNotificationAlert>`, "", "", "malformed XML"},
		{"wrong root", `<EventTrigger><eventType>ANPR</eventType></EventTrigger>`, "", "", "the root element is <EventTrigger>, want <EventNotificationAlert>"},
		{"too deep", `<EventNotificationAlert>` + deep + `</EventNotificationAlert>`, "", "", "nested more than 32 deep"},
		{"too many elements", `<EventNotificationAlert>` + strings.Repeat("<a/>", maxXMLElements) + `</EventNotificationAlert>`, "", "", "more than 10000 elements"},
		{"other encoding", `<?xml version="1.0" encoding="GB2312"?><EventNotificationAlert/>`, "", "", `encoding "GB2312" is not supported; send UTF-8`},
		{"bad activePostCount", alertXML(`<activePostCount>many</activePostCount>`), "", "", `activePostCount "many" is not a whole number`},
		{"bad confidence", alertXML(`<ANPR><confidenceLevel>high</confidenceLevel></ANPR>`), "", "", `ANPR confidenceLevel "high" is not a number 0..100`},
		{"multipart without boundary", string(formBody), "multipart/form-data", "", "the multipart Content-Type has no boundary"},
		{"multipart with only pictures", string(picsBody), picsType, "", "no part of the multipart body is XML (parts: image/jpeg)"},
		{"multipart with another boundary", string(formBody), "multipart/form-data; boundary=nope", "", "the multipart body cannot be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Decode([]byte(tt.body), tt.contentType)
			if tt.err != "" {
				if err == nil || !errors.Is(err, wire.ErrUnparseable) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got error %v, want one wrapping wire.ErrUnparseable that says %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if a.ANPR == nil || a.ANPR.LicensePlate != tt.plate {
				t.Errorf("got ANPR %+v, want plate %q", a.ANPR, tt.plate)
			}
		})
	}
}

// FuzzDecode checks that no body makes the decoder or the mapping panic,
// that failures wrap wire.ErrUnparseable, and that every event mapped is
// one validation can accept (ingest's FuzzCameraAlertEvent checks the
// event id it derives from the key). Seeds are the sample and
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add(sampleAlertXML(f), "application/xml")
	f.Add([]byte(alertXML(`<dateTime>2026-11-22T09:15:03</dateTime><eventType>videoloss</eventType><eventState>inactive</eventState>`)), "")
	f.Add([]byte("--b\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\r\n--b\r\nContent-Type: text/xml\r\n\r\n<EventNotificationAlert><eventType>VMD</eventType><dateTime>2026-11-22T09:15:03Z</dateTime></EventNotificationAlert>\r\n--b--\r\n"), "multipart/mixed; boundary=b")
	f.Add([]byte(`<!DOCTYPE x><EventNotificationAlert/>`), "text/xml")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		a, err := Decode(body, contentType)
		if err != nil {
			if !errors.Is(err, wire.ErrUnparseable) {
				t.Fatalf("got error %v, want one wrapping wire.ErrUnparseable", err)
			}
			return
		}
		for _, loc := range []*time.Location{ict, nil} {
			e, err := a.Event("CAM-1", loc)
			if err != nil {
				continue
			}
			if !slices.Contains(device.CameraEventTypes, e.Type) || !slices.Contains(device.CameraSeverities, e.Severity) {
				t.Fatalf("got type %q severity %q, want ones validation accepts", e.Type, e.Severity)
			}
			if !strings.HasPrefix(e.Key, "xml/CAM-1/") || !utf8.ValidString(e.Key) {
				t.Fatalf("got key %q, want UTF-8 starting xml/CAM-1/", e.Key)
			}
			if _, err := time.Parse(time.RFC3339, e.OccurredAt); err != nil {
				t.Fatalf("got occurred_at %q, want RFC 3339: %v", e.OccurredAt, err)
			}
		}
	})
}
