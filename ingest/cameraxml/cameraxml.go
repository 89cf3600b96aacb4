// Package cameraxml decodes a camera platform's EventNotificationAlert — the
// XML document an ISAPI camera or video platform posts, plain or as the XML
// part of a multipart body with its pictures — into an Alert, within
// limits on the document's depth and size, and maps an alert to the camera
// event it reports (Event) through the table of the platform's event
// types. It owns the format and nothing of the pipeline: ingest matches the
// alert to a registered camera, bounds the event id and validates the
// event like any other.
//
// Concurrency: it holds no state; Decode and Alert.Event are pure and safe
// for concurrent use.
package cameraxml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
	"time"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest/wire"
)

// Alert is a camera platform's EventNotificationAlert, as sent.
type Alert struct {
	IPAddress, PortNo, MACAddress, ChannelID, ChannelName, DateTime, EventType, EventState, EventDescription string
	ActivePostCount                                                                                          int
	ANPR                                                                                                     *ANPR
}

// ANPR is the plate recognition part of an alert.
type ANPR struct {
	Country, LicensePlate, Direction, VehicleType, IllegalCode string
	Confidence                                                 int
}

// Limits on an alert's XML. A real alert is a few dozen elements three
// levels deep; the limits stop crafted documents from costing much.
const (
	maxXMLDepth    = 32
	maxXMLElements = 10000
)

// Decode reads an EventNotificationAlert from body: XML, or a
// multipart/form-data or multipart/mixed body whose XML part is taken (the
// pictures sent alongside are ignored); contentType is the one the body was
// sent with. Every error wraps wire.ErrUnparseable.
func Decode(body []byte, contentType string) (Alert, error) {
	if mt, params, err := mime.ParseMediaType(contentType); err == nil && strings.HasPrefix(mt, "multipart/") {
		part, err := xmlPart(body, params["boundary"])
		if err != nil {
			return Alert{}, fmt.Errorf("%w: %v", wire.ErrUnparseable, err)
		}
		body = part
	} else if err != nil && strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "multipart/") {
		return Alert{}, fmt.Errorf("%w: Content-Type %q cannot be parsed (%v); send multipart/form-data; boundary=…", wire.ErrUnparseable, wire.Clip(contentType), err)
	}
	a, err := decodeAlert(body)
	if err != nil {
		return Alert{}, fmt.Errorf("%w: %v", wire.ErrUnparseable, err)
	}
	return a, nil
}

// xmlPart finds the alert among a multipart body's parts: the first one
// labelled XML or whose content starts like XML.
func xmlPart(body []byte, boundary string) ([]byte, error) {
	if boundary == "" {
		return nil, errors.New("the multipart Content-Type has no boundary; send e.g. multipart/form-data; boundary=MIME_boundary")
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	var seen []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(seen) == 0 {
				return nil, fmt.Errorf("the multipart body cannot be read (%v); check that it uses the boundary %q of its Content-Type", err, wire.Clip(boundary))
			}
			return nil, fmt.Errorf("multipart part %d cannot be read: %v", len(seen)+1, err)
		}
		ct := p.Header.Get("Content-Type")
		content, err := io.ReadAll(p)
		if err != nil {
			return nil, fmt.Errorf("multipart part %d cannot be read: %v", len(seen)+1, err)
		}
		if strings.Contains(strings.ToLower(ct), "xml") || bytes.HasPrefix(trimXML(content), []byte("<")) {
			return content, nil
		}
		if ct == "" {
			ct = "no Content-Type"
		}
		seen = append(seen, ct)
	}
	if len(seen) == 0 {
		return nil, errors.New("the multipart body has no parts; send the alert XML as a part")
	}
	if len(seen) > 5 {
		seen = append(seen[:5], "…")
	}
	return nil, fmt.Errorf("no part of the multipart body is XML (parts: %s); send the alert as a part with Content-Type application/xml", wire.Clip(strings.Join(seen, ", ")))
}

// trimXML drops the byte order mark and white space some senders put first.
func trimXML(b []byte) []byte {
	return bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(b), []byte("\xef\xbb\xbf")))
}

// alertFields are the texts read, by path below the root.
var alertFields = map[string]func(*Alert, string){
	"ipAddress":                    func(a *Alert, s string) { a.IPAddress = s },
	"portNo":                       func(a *Alert, s string) { a.PortNo = s },
	"macAddress":                   func(a *Alert, s string) { a.MACAddress = s },
	"channelID":                    func(a *Alert, s string) { a.ChannelID = s },
	"channelName":                  func(a *Alert, s string) { a.ChannelName = s },
	"dateTime":                     func(a *Alert, s string) { a.DateTime = s },
	"eventType":                    func(a *Alert, s string) { a.EventType = s },
	"eventState":                   func(a *Alert, s string) { a.EventState = s },
	"eventDescription":             func(a *Alert, s string) { a.EventDescription = s },
	"ANPR/country":                 func(a *Alert, s string) { a.ANPR.Country = s },
	"ANPR/licensePlate":            func(a *Alert, s string) { a.ANPR.LicensePlate = s },
	"ANPR/direction":               func(a *Alert, s string) { a.ANPR.Direction = s },
	"ANPR/vehicleType":             func(a *Alert, s string) { a.ANPR.VehicleType = s },
	"ANPR/illegalInfo/illegalCode": func(a *Alert, s string) { a.ANPR.IllegalCode = s },
	// Numbers are parsed in fillAlert, which reports bad ones.
	"activePostCount":      nil,
	"ANPR/confidenceLevel": nil,
}

// decodeAlert parses the alert document with bounded depth and size, by
// local names so that any namespace (or none) is accepted.
func decodeAlert(body []byte) (Alert, error) {
	var a Alert
	body = trimXML(body)
	if len(body) == 0 {
		return a, errors.New("the body is empty; send an EventNotificationAlert XML document")
	}
	if body[0] != '<' {
		return a, fmt.Errorf("the body is not XML (it starts with %s); send an EventNotificationAlert document, or multipart/form-data with the Content-Type and its boundary", wire.Preview(body))
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "us-ascii", "ascii":
			return input, nil
		}
		return nil, fmt.Errorf("encoding %q is not supported; send UTF-8", wire.Clip(charset))
	}
	var path []string
	texts := map[string]*strings.Builder{}
	var text *strings.Builder // the field being read, if any
	elements := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if elements == 0 {
				return a, errors.New("the document has no element; send an EventNotificationAlert")
			}
			return a, errors.New("the document ends before </EventNotificationAlert>")
		}
		if err != nil {
			return a, fmt.Errorf("malformed XML: %v", strings.TrimPrefix(err.Error(), "XML syntax error on "))
		}
		switch t := tok.(type) {
		case xml.Directive:
			// DOCTYPE brings entity definitions: nothing an alert needs, and
			// the way into entity-expansion attacks.
			return a, errors.New("<!DOCTYPE> and other XML directives are not accepted in an alert; remove them")
		case xml.StartElement:
			elements++
			if elements > maxXMLElements {
				return a, fmt.Errorf("the document has more than %d elements; an alert has a few dozen", maxXMLElements)
			}
			if len(path) >= maxXMLDepth {
				return a, fmt.Errorf("elements are nested more than %d deep; an alert is a few levels deep", maxXMLDepth)
			}
			if len(path) == 0 && t.Name.Local != "EventNotificationAlert" {
				return a, fmt.Errorf("the root element is <%s>, want <EventNotificationAlert>", wire.Clip(t.Name.Local))
			}
			path = append(path, t.Name.Local)
			if len(path) == 2 && t.Name.Local == "ANPR" && a.ANPR == nil {
				a.ANPR = &ANPR{}
			}
			text = nil
			if len(path) < 2 {
				continue
			}
			// A repeated field keeps its first value.
			if key := strings.Join(path[1:], "/"); texts[key] == nil {
				if _, ok := alertFields[key]; ok {
					text = &strings.Builder{}
					texts[key] = text
				}
			}
		case xml.EndElement:
			path, text = path[:len(path)-1], nil
			if len(path) == 0 {
				return a, fillAlert(&a, texts)
			}
		case xml.CharData:
			if text != nil {
				text.Write(t)
			}
		}
	}
}

// fillAlert sets the alert's fields from the texts read.
func fillAlert(a *Alert, texts map[string]*strings.Builder) error {
	text := func(k string) (string, bool) {
		b, ok := texts[k]
		if !ok {
			return "", false
		}
		return strings.TrimSpace(b.String()), true
	}
	for k, set := range alertFields {
		s, ok := text(k)
		if !ok || set == nil || (strings.HasPrefix(k, "ANPR/") && a.ANPR == nil) {
			continue
		}
		set(a, s)
	}
	if s, ok := text("activePostCount"); ok && s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("activePostCount %q is not a whole number", wire.Clip(s))
		}
		a.ActivePostCount = n
	}
	if s, ok := text("ANPR/confidenceLevel"); ok && s != "" && a.ANPR != nil {
		// Some firmware sends a decimal confidence; the nearest whole
		// percent is precise enough.
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
			return fmt.Errorf("ANPR confidenceLevel %q is not a number 0..100", wire.Clip(s))
		}
		a.ANPR.Confidence = int(math.Round(f))
	}
	return nil
}

// platformType is what a platform's eventType reports.
type platformType struct {
	name, typ, severity string
}

// platformTypes maps platform event types (matched case-insensitively)
// to camera event types. ANPR is decided by its violation, below.
var platformTypes = []platformType{
	{"ANPR", "plate_read", "info"},
	{"TFS", "traffic_violation", "warning"},
	{"trafficJam", "congestion", "warning"}, {"congestion", "congestion", "warning"},
	{"AID", "accident", "critical"}, {"accident", "accident", "critical"},
	{"linedetection", "line_crossing", "warning"},
	{"fielddetection", "intrusion", "warning"}, {"regionEntrance", "intrusion", "warning"}, {"regionExiting", "intrusion", "warning"},
	{"loitering", "loitering", "info"},
	{"fireDetection", "fire", "critical"}, {"fire", "fire", "critical"},
	{"smokeDetection", "smoke", "critical"},
	{"peopleGathering", "crowd", "warning"}, {"crowdDetection", "crowd", "warning"},
	{"VMD", "motion", "info"},
	{"videoloss", "video_loss", "warning"},
	{"shelteralarm", "tamper", "warning"}, {"tamperdetection", "tamper", "warning"},
	{"unattendedBaggage", "abandoned_object", "warning"}, {"attendedBaggage", "abandoned_object", "warning"},
	{"parking", "illegal_parking", "info"}, {"illegalParking", "illegal_parking", "info"},
	{"retrograde", "wrong_way", "warning"}, {"wrongDirection", "wrong_way", "warning"},
}

func platformTypeNames() string {
	names := make([]string, len(platformTypes))
	for i, t := range platformTypes {
		names[i] = t.name
	}
	return strings.Join(names, ", ")
}

// Event is the camera event an alert reports, in the terms of a camera
// event on the wire; ingest places it and validates it.
type Event struct {
	// Key identifies the alert: a resent notification has the same. It is
	// not bounded; ingest bounds it to an event id.
	Key        string
	Type       string
	Severity   string
	OccurredAt string // RFC 3339
	Attrs      map[string]any
}

// Event maps the alert to a camera event of the given camera. loc is the
// zone of times sent without an offset.
func (a Alert) Event(cameraID string, loc *time.Location) (Event, error) {
	if strings.TrimSpace(cameraID) == "" {
		return Event{}, errors.New("camera id is required to map an alert; name the camera in the request")
	}
	var e Event
	eventType := strings.TrimSpace(a.EventType)
	switch {
	case strings.EqualFold(strings.TrimSpace(a.EventState), "inactive"):
		// Platforms repeat inactive alerts as keep-alives.
		e.Type, e.Severity = device.HeartbeatType, "info"
	case eventType == "":
		return e, fmt.Errorf("eventType is required; send one of %s", platformTypeNames())
	default:
		found := false
		for _, t := range platformTypes {
			if strings.EqualFold(t.name, eventType) {
				e.Type, e.Severity, found = t.typ, t.severity, true
				break
			}
		}
		if !found {
			return e, fmt.Errorf("eventType %q is not supported; send one of %s", wire.Clip(eventType), platformTypeNames())
		}
		if strings.EqualFold(eventType, "ANPR") && a.ANPR != nil && a.ANPR.IllegalCode != "" {
			e.Type, e.Severity = "traffic_violation", "warning"
		}
	}
	t, err := alertTime(a.DateTime, loc)
	if err != nil {
		return e, err
	}
	e.OccurredAt = t.Format(time.RFC3339)

	attrs := map[string]any{}
	set := func(k, v string) {
		if v != "" {
			attrs[k] = v
		}
	}
	set("ip", a.IPAddress)
	set("channel_id", a.ChannelID)
	set("channel_name", a.ChannelName)
	set("event_type", eventType)
	plate := ""
	if p := a.ANPR; p != nil {
		plate = p.LicensePlate
		set("plate", p.LicensePlate)
		set("country", p.Country)
		set("vehicle_type", p.VehicleType)
		set("direction", p.Direction)
		set("violation", p.IllegalCode)
		if p.Confidence > 0 {
			attrs["confidence"] = p.Confidence
		}
	}
	if len(attrs) > 0 {
		e.Attrs = attrs
	}
	kind := strings.ToLower(eventType)
	if kind == "" {
		kind = device.HeartbeatType
	}
	e.Key = "xml/" + cameraID + "/" + strconv.FormatInt(t.Unix(), 10) + "/" + kind + "/" + plate
	return e, nil
}

// alertTime reads dateTime: RFC 3339, or a local time taken in loc.
func alertTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("dateTime is required, e.g. 2026-11-22T09:15:03+07:00")
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	// Some firmware writes the offset without a colon.
	if t, err := time.Parse("2006-01-02T15:04:05.999999999Z0700", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		if loc == nil {
			return time.Time{}, fmt.Errorf("dateTime %q has no UTC offset and no time zone is configured for the camera; send it with an offset, e.g. 2026-11-22T09:15:03+07:00", wire.Clip(s))
		}
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc), nil
	}
	return time.Time{}, fmt.Errorf("dateTime %q is not a time such as 2026-11-22T09:15:03+07:00", wire.Clip(s))
}
