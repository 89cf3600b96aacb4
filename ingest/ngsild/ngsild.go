// Package ngsild decodes FIWARE NGSI-LD notifications, as a context broker
// such as Orion-LD sends them, into sensor readings (Reading) and the
// problems of each entity that could not be read (EntityProblems): which
// entity types and attributes map to which sensor kinds, the normalized and
// keyValues forms, attributes of several instances, locations, times and
// water-level thresholds. It owns the format and nothing of the pipeline:
// ingest validates, deduplicates and stores the readings.
//
// Concurrency: it holds no state; Decode is pure and safe for concurrent
// use.
package ngsild

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest/wire"
)

// Reading is one reading taken from an entity of a notification, in the
// terms of a sensor reading on the wire. It is not validated: units and
// times are passed on as sent.
type Reading struct {
	Entity    int // index of the entity in the notification's data
	EntityID  string
	Attribute string // as sent: a short name or an expanded term
	// DatasetID tells apart the instances of an attribute sent with
	// several; empty for the default instance.
	DatasetID  string
	SensorID   string
	Kind       string // a sensor kind of device
	Value      float64
	Unit       string // the unitCode sent, if any
	ObservedAt string // as sent
	// Lat and Lon are the entity's position, both or neither; each reading
	// has its own copy.
	Lat, Lon *float64
	// AlertLevel and DangerLevel are the entity's thresholds, on water
	// levels only, in the reading's unit.
	AlertLevel, DangerLevel *float64
}

// EntityProblems are the problems of one entity of a notification: what
// could not be read of it, each a message saying what to fix.
type EntityProblems struct {
	Entity   int // index of the entity in the notification's data
	Problems []string
}

// maxNGSIEntities bounds one notification; a context broker batches far
// fewer, so more means a misconfigured subscription.
const maxNGSIEntities = 10000

// ngsiMapping maps an entity type's measurement attributes to sensor kinds.
var ngsiMapping = map[string]map[string]string{
	"AirQualityObserved": {
		"pm25": "pm25", "pm2_5": "pm25", "pm10": "pm10", "no2": "no2", "o3": "o3", "so2": "so2", "co": "co",
		"temperature": "temperature", "relativeHumidity": "humidity", "airQualityIndex": "aqi",
		"windSpeed": "wind_speed", "precipitation": "rainfall",
	},
	"WaterObserved": {
		"currentLevel": "water_level", "height": "water_level", "waterLevel": "water_level", "flow": "water_flow",
	},
	"FloodMonitoring": {
		"currentLevel": "water_level",
	},
}

// ngsiMetadata are attributes that describe an entity rather than measure
// anything; they are skipped without a word. The NGSI-LD system attributes
// (createdAt, modifiedAt…) come along when a subscription asks for them.
var ngsiMetadata = map[string]bool{
	"id": true, "type": true, "@context": true, "location": true, "dateObserved": true, "observedAt": true,
	"dateCreated": true, "dateModified": true, "name": true, "description": true, "address": true,
	"areaServed": true, "source": true, "dataProvider": true, "refDevice": true, "refPointOfInterest": true,
	"alertLevel": true, "dangerLevel": true, "reliability": true, "typeofLocation": true, "seeAlso": true,
	"owner": true, "floodLevelStatus": true, "measurand": true, "refWeatherObserved": true,
	"createdAt": true, "modifiedAt": true, "deletedAt": true, "scope": true,
	"observationSpace": true, "operationSpace": true,
}

// ngsiTypes lists the supported entity types, for messages.
func ngsiTypes() string {
	ts := make([]string, 0, len(ngsiMapping))
	for t := range ngsiMapping {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return strings.Join(ts, ", ")
}

// Decode takes the sensor readings out of a FIWARE NGSI-LD
// notification (or a bare array of entities, or one entity), in normalized
// or keyValues form, as Orion-LD sends them: an entity may have several
// types (the first supported one maps its attributes), and an attribute
// several instances (an array, each with its datasetId), each of which is
// a reading. A body that is not one of those fails as a whole with an
// error wrapping wire.wire.ErrUnparseable; an entity or attribute that cannot be
// used is reported by the entity's index, one EntityProblems per entity
// listing every problem, in the order of the entities, and its siblings
// are still read. Readings come in the order of their entities, then of
// their attributes' names.
func Decode(body []byte) (readings []Reading, refused []EntityProblems, err error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, nil, fmt.Errorf("%w: the body is empty; send an NGSI-LD notification ({\"type\":\"Notification\",\"data\":[entities]})", wire.ErrUnparseable)
	}
	entities, notifiedAt, err := ngsiEntities(trimmed)
	if err != nil {
		return nil, nil, err
	}
	for i, raw := range entities {
		rs, es := ngsiEntity(i, raw, notifiedAt)
		readings = append(readings, rs...)
		if len(es) > 0 {
			refused = append(refused, EntityProblems{Entity: i, Problems: es})
		}
	}
	sort.SliceStable(readings, func(a, b int) bool {
		if readings[a].Entity != readings[b].Entity {
			return readings[a].Entity < readings[b].Entity
		}
		return readings[a].Attribute < readings[b].Attribute
	})
	return readings, refused, nil
}

// ngsiEntities finds the entities of a body and the notification's time.
func ngsiEntities(body []byte) ([]json.RawMessage, string, error) {
	const want = "want an NGSI-LD notification ({\"type\":\"Notification\",\"data\":[entities]}), an array of entities or one entity"
	var entities []json.RawMessage
	var notifiedAt string
	switch body[0] {
	case '[':
		if err := json.Unmarshal(body, &entities); err != nil {
			return nil, "", fmt.Errorf("%w: %s", wire.ErrUnparseable, wire.JSONError(err, body))
		}
	case '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(body, &top); err != nil {
			return nil, "", fmt.Errorf("%w: %s", wire.ErrUnparseable, wire.JSONError(err, body))
		}
		var typ string
		if raw, ok := top["type"]; ok {
			_ = json.Unmarshal(raw, &typ) // a non-string type is the entity's problem
		}
		data, hasData := top["data"]
		_, hasID := top["id"]
		_, hasType := top["type"]
		switch {
		case hasData && (!hasType || typ == "Notification"):
			if raw, ok := top["notifiedAt"]; ok {
				if err := json.Unmarshal(raw, &notifiedAt); err != nil {
					return nil, "", fmt.Errorf("%w: notifiedAt must be a date-time string such as 2026-11-22T02:15:05Z, got %s", wire.ErrUnparseable, wire.Preview(raw))
				}
			}
			if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")) {
				return nil, "", fmt.Errorf("%w: data must be an array of NGSI-LD entities, got %s", wire.ErrUnparseable, wire.Preview(bytes.TrimSpace(data)))
			}
			if err := json.Unmarshal(data, &entities); err != nil {
				return nil, "", fmt.Errorf("%w: data: %s", wire.ErrUnparseable, wire.JSONError(err, data))
			}
		case typ == "Notification":
			return nil, "", fmt.Errorf("%w: the notification has no data; %s", wire.ErrUnparseable, want)
		case hasID || hasType:
			entities = []json.RawMessage{body}
		default:
			return nil, "", fmt.Errorf("%w: the object has no data, id or type; %s", wire.ErrUnparseable, want)
		}
	default:
		if !json.Valid(body) {
			return nil, "", fmt.Errorf("%w: the body is not JSON (%s); %s", wire.ErrUnparseable, wire.Preview(body), want)
		}
		return nil, "", fmt.Errorf("%w: %s, got %s", wire.ErrUnparseable, want, wire.Preview(body))
	}
	switch {
	case len(entities) == 0:
		return nil, "", fmt.Errorf("%w: the notification has no entities; %s", wire.ErrUnparseable, want)
	case len(entities) > maxNGSIEntities:
		return nil, "", fmt.Errorf("%w: %d entities in one notification; the limit is %d (lower the subscription's batch size)", wire.ErrUnparseable, len(entities), maxNGSIEntities)
	}
	return entities, notifiedAt, nil
}

// ngsiEntity reads one entity; errors are messages for its index.
func ngsiEntity(index int, raw json.RawMessage, notifiedAt string) ([]Reading, []string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, []string{fmt.Sprintf("entity %d is %s, want a JSON object with id and type", index, wire.Preview(raw))}
	}
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &attrs); err != nil {
		return nil, []string{fmt.Sprintf("entity %d: %s", index, wire.JSONError(err, raw))}
	}
	id, types, errs := ngsiIdentity(index, attrs)
	if len(errs) > 0 {
		return nil, errs
	}
	typ, mapping := ngsiMappedType(types)
	at := fmt.Sprintf("entity %s (%s)", wire.Clip(id), wire.Clip(typ))
	if mapping == nil {
		if len(types) == 1 {
			return nil, []string{fmt.Sprintf("%s: entity type %q is not supported; send one of %s", at, wire.Clip(typ), ngsiTypes())}
		}
		return nil, []string{fmt.Sprintf("%s: none of the entity's types is supported; send one of %s", at, ngsiTypes())}
	}

	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	// Shared attributes are looked up by short name, as measurements are;
	// the short form wins, else the first expanded one.
	shared := map[string]json.RawMessage{}
	for _, name := range names {
		l := localName(name)
		if _, seen := shared[l]; ngsiMetadata[l] && (!seen || name == l) {
			shared[l] = ngsiDefaultInstance(attrs[name])
		}
	}

	// Problems with what every reading shares refuse the whole entity: a
	// reading placed or attributed wrongly is worse than none.
	sensorID, err := ngsiSensorID(id, shared["refDevice"])
	if err != nil {
		errs = append(errs, at+": "+err.Error())
	}
	var lat, lon *float64
	if loc, ok := shared["location"]; ok {
		if lat, lon, err = ngsiLocation(loc); err != nil {
			errs = append(errs, at+": "+err.Error())
		}
	}
	when := notifiedAt
	for _, name := range []string{"dateObserved", "observedAt"} {
		v, ok := shared[name]
		if !ok {
			continue
		}
		t, err := ngsiTime(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %s %v", at, name, err))
			continue
		}
		if t != "" {
			when = t
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}

	// Thresholds are only read for entities whose water level they qualify.
	levels := map[string]ngsiValue{}
	if mapping["currentLevel"] == "water_level" {
		for _, name := range []string{"alertLevel", "dangerLevel"} {
			v, ok := shared[name]
			if !ok {
				continue
			}
			nv, err := ngsiNumber(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: attribute %q %v", at, name, err))
				continue
			}
			levels[name] = nv
		}
	}

	var out []Reading
	for _, name := range names {
		local := localName(name)
		if ngsiMetadata[local] {
			continue
		}
		kind, ok := mapping[local]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: attribute %q is not mapped to a sensor kind; mapped for %s: %s", at, wire.Clip(name), wire.Clip(typ), mappedNames(mapping)))
			continue
		}
		instances, err := ngsiInstances(attrs[name])
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: attribute %q %v", at, wire.Clip(name), err))
			continue
		}
		for _, in := range instances {
			attr := wire.Clip(name)
			if in.datasetID != "" {
				attr += " (datasetId " + wire.Clip(in.datasetID) + ")"
			}
			r, levelErrs, err := ngsiReading(in.raw, kind, sensorID, when, lat, lon, levels)
			for _, e := range levelErrs {
				errs = append(errs, at+": "+e)
			}
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: attribute %q %v", at, attr, err))
				continue
			}
			r.Entity, r.EntityID, r.Attribute, r.DatasetID = index, id, name, in.datasetID
			out = append(out, r)
		}
	}
	return out, errs
}

// ngsiIdentity reads an entity's id and its types: one string, or an
// array of them as Orion-LD sends an entity of several types. errs are
// messages for the entity's index.
func ngsiIdentity(index int, attrs map[string]json.RawMessage) (id string, types []string, errs []string) {
	const has = "an NGSI-LD entity has an id (e.g. urn:ngsi-ld:AirQualityObserved:HCM-AQ-012) and a type"
	v, ok := attrs["id"]
	switch {
	case !ok:
		errs = append(errs, fmt.Sprintf("entity %d: id is required: %s", index, has))
	case json.Unmarshal(v, &id) != nil || id == "":
		errs = append(errs, fmt.Sprintf("entity %d: id must be a non-empty string, got %s", index, wire.Preview(bytes.TrimSpace(v))))
	}
	v, ok = attrs["type"]
	if !ok {
		return id, nil, append(errs, fmt.Sprintf("entity %d: type is required: %s", index, has))
	}
	var one string
	if json.Unmarshal(v, &one) == nil && one != "" {
		return id, []string{one}, errs
	}
	if json.Unmarshal(v, &types) != nil || len(types) == 0 || slices.Contains(types, "") {
		return id, nil, append(errs, fmt.Sprintf("entity %d: type must be a non-empty string or an array of them, got %s", index, wire.Preview(bytes.TrimSpace(v))))
	}
	return id, types, errs
}

// ngsiMappedType is the first of an entity's types whose attributes are
// mapped, with its mapping; else all the types, for messages, and nil.
func ngsiMappedType(types []string) (string, map[string]string) {
	for _, t := range types {
		if m, ok := ngsiMapping[localName(t)]; ok {
			return t, m
		}
	}
	return strings.Join(types, ", "), nil
}

// ngsiInstance is one instance of an attribute.
type ngsiInstance struct {
	datasetID string // empty: the default instance
	raw       json.RawMessage
}

// ngsiInstances reads an attribute's instances: the attribute itself, or
// each element of the array Orion-LD sends for an attribute with several
// instances, told apart by datasetId.
func ngsiInstances(raw json.RawMessage) ([]ngsiInstance, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return []ngsiInstance{{datasetID: ngsiDatasetID(raw), raw: raw}}, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, fmt.Errorf("is not a valid array: %s", wire.JSONError(err, raw))
	}
	if len(elems) == 0 {
		return nil, errors.New("is an empty array; send a value, or an array of instances each with its datasetId")
	}
	seen := map[string]bool{}
	out := make([]ngsiInstance, 0, len(elems))
	for i, e := range elems {
		e = bytes.TrimSpace(e)
		if len(e) == 0 || e[0] != '{' {
			// A bare array is a value, not instances.
			return nil, fmt.Errorf("value is an array, want a single number (or an array of instances {\"type\":\"Property\",\"value\":…,\"datasetId\":…}); element %d is %s", i, wire.Preview(e))
		}
		ds := ngsiDatasetID(e)
		if seen[ds] {
			if ds == "" {
				return nil, errors.New("has two instances without datasetId; give every instance but one a datasetId of its own")
			}
			return nil, fmt.Errorf("has two instances with datasetId %q; an attribute has one instance per datasetId", wire.Clip(ds))
		}
		seen[ds] = true
		out = append(out, ngsiInstance{datasetID: ds, raw: e})
	}
	return out, nil
}

// ngsiDatasetID is an instance's datasetId, empty for the default one (or
// one whose datasetId is not a string, reported when its value is read).
func ngsiDatasetID(raw json.RawMessage) string {
	if len(raw) == 0 || raw[0] != '{' {
		return ""
	}
	var p struct {
		DatasetID string `json:"datasetId"`
	}
	_ = json.Unmarshal(raw, &p)
	return p.DatasetID
}

// ngsiDefaultInstance is what an attribute that describes the entity (its
// location, its time) says: the default instance of one sent with several,
// else the first.
func ngsiDefaultInstance(raw json.RawMessage) json.RawMessage {
	in, err := ngsiInstances(raw)
	if err != nil || len(in) == 0 {
		return raw
	}
	for _, i := range in {
		if i.datasetID == "" {
			return i.raw
		}
	}
	return in[0].raw
}

// ngsiReading makes the reading of one instance of a measurement
// attribute. A threshold that cannot qualify it is reported (levelErrs)
// without refusing the reading; err refuses the reading.
func ngsiReading(raw json.RawMessage, kind, sensorID, when string, lat, lon *float64, levels map[string]ngsiValue) (r Reading, levelErrs []string, err error) {
	nv, err := ngsiNumber(raw)
	if err != nil {
		return r, nil, err
	}
	r = Reading{SensorID: sensorID, Kind: kind, Value: nv.value, Unit: nv.unit, ObservedAt: when}
	if lat != nil {
		// Each reading gets its own copy: callers may adjust one.
		y, x := *lat, *lon
		r.Lat, r.Lon = &y, &x
	}
	if nv.observedAt != "" {
		r.ObservedAt = nv.observedAt
	}
	if r.ObservedAt == "" {
		return r, nil, errors.New("has no time: send observedAt on it, dateObserved on the entity, or notifiedAt on the notification")
	}
	if kind == "humidity" {
		if err := ngsiHumidity(&r); err != nil {
			return r, nil, err
		}
	}
	if kind == "water_level" {
		for _, lv := range []struct {
			name string
			dst  **float64
		}{{"alertLevel", &r.AlertLevel}, {"dangerLevel", &r.DangerLevel}} {
			l, ok := levels[lv.name]
			if !ok {
				continue
			}
			v, err := levelInUnit(l, r.Unit)
			if err != nil {
				levelErrs = append(levelErrs, fmt.Sprintf("attribute %q %v", lv.name, err))
				continue
			}
			*lv.dst = &v
		}
	}
	return r, levelErrs, nil
}

// ngsiValue is a measured number with what was said about it.
type ngsiValue struct {
	value      float64
	unit       string
	observedAt string
}

// ngsiNumber reads an attribute in normalized ({"type":"Property","value":…})
// or keyValues (a bare number) form.
func ngsiNumber(raw json.RawMessage) (ngsiValue, error) {
	raw = bytes.TrimSpace(raw)
	var nv ngsiValue
	if len(raw) > 0 && raw[0] == '{' {
		var p struct {
			Value      json.RawMessage `json:"value"`
			UnitCode   json.RawMessage `json:"unitCode"`
			ObservedAt json.RawMessage `json:"observedAt"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nv, fmt.Errorf("is not a Property: %s", wire.JSONError(err, raw))
		}
		if p.Value == nil {
			return nv, fmt.Errorf("has no value: send {\"type\":\"Property\",\"value\":<number>} or a bare number")
		}
		if p.UnitCode != nil {
			if err := json.Unmarshal(p.UnitCode, &nv.unit); err != nil {
				return nv, fmt.Errorf("unitCode must be a string such as GQ, MTR or CEL, got %s", wire.Preview(bytes.TrimSpace(p.UnitCode)))
			}
		}
		if p.ObservedAt != nil {
			t, err := ngsiTime(p.ObservedAt)
			if err != nil {
				return nv, fmt.Errorf("observedAt %v", err)
			}
			nv.observedAt = t
		}
		raw = bytes.TrimSpace(p.Value)
	}
	v, err := jsonNumber(raw)
	if err != nil {
		return nv, err
	}
	nv.value = v
	return nv, nil
}

// jsonNumber reads a finite JSON number, saying what came instead.
func jsonNumber(raw []byte) (float64, error) {
	if len(raw) == 0 {
		return 0, fmt.Errorf("value is missing, want a number")
	}
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return 0, fmt.Errorf("value is a string (%q), want a JSON number", wire.Clip(s))
	case 'n':
		return 0, fmt.Errorf("value is null, want a number")
	case 't', 'f':
		return 0, fmt.Errorf("value is a boolean, want a number")
	case '{':
		return 0, fmt.Errorf("value is an object, want a number")
	case '[':
		return 0, fmt.Errorf("value is an array, want a single number")
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("value %s is not a finite number", wire.Clip(string(raw)))
	}
	return v, nil
}

// ngsiTime reads a date-time: a string, a JSON-LD {"@type":"DateTime",
// "@value":…}, or a Property whose value is either. It is kept as text.
func ngsiTime(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	for range 3 { // Property → {"@value"} → string at most
		if len(raw) > 0 && raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", fmt.Errorf("is not a valid string")
			}
			return s, nil
		}
		var o struct {
			Value   json.RawMessage `json:"value"`
			AtValue json.RawMessage `json:"@value"`
		}
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &o) != nil {
			break
		}
		switch {
		case o.AtValue != nil:
			raw = bytes.TrimSpace(o.AtValue)
		case o.Value != nil:
			raw = bytes.TrimSpace(o.Value)
		default:
			raw = nil
		}
	}
	return "", fmt.Errorf("must be a date-time such as \"2026-11-22T02:15:00Z\" or {\"@type\":\"DateTime\",\"@value\":\"2026-11-22T02:15:00Z\"}")
}

// ngsiLocation reads a Point as GeoProperty or as bare GeoJSON.
func ngsiLocation(raw json.RawMessage) (lat, lon *float64, err error) {
	var g struct {
		Type        string          `json:"type"`
		Value       json.RawMessage `json:"value"`
		Coordinates json.RawMessage `json:"coordinates"`
	}
	const how = `send {"type":"GeoProperty","value":{"type":"Point","coordinates":[lon,lat]}}`
	raw = bytes.TrimSpace(raw)
	if json.Unmarshal(raw, &g) != nil {
		return nil, nil, fmt.Errorf("location is %s, not a GeoJSON Point; %s", wire.Preview(raw), how)
	}
	// Normalized form wraps the geometry in a GeoProperty's value.
	if g.Value != nil && g.Type != "Point" {
		raw = bytes.TrimSpace(g.Value)
		g.Type, g.Value, g.Coordinates = "", nil, nil
		if json.Unmarshal(raw, &g) != nil {
			return nil, nil, fmt.Errorf("location value is %s, not a GeoJSON Point; %s", wire.Preview(raw), how)
		}
	}
	switch g.Type {
	case "Point":
	case "":
		return nil, nil, fmt.Errorf("location is %s, not a GeoJSON Point; %s", wire.Preview(raw), how)
	default:
		return nil, nil, fmt.Errorf("location is a %s, want a Point: a reading is placed at one position; %s", wire.Clip(g.Type), how)
	}
	var c []json.RawMessage
	if json.Unmarshal(g.Coordinates, &c) != nil || len(c) < 2 || len(c) > 3 {
		return nil, nil, fmt.Errorf("location coordinates must be [lon,lat] (or [lon,lat,altitude]), got %s", wire.Preview(bytes.TrimSpace(g.Coordinates)))
	}
	x, err1 := jsonNumber(bytes.TrimSpace(c[0]))
	y, err2 := jsonNumber(bytes.TrimSpace(c[1]))
	if err1 != nil || err2 != nil {
		return nil, nil, fmt.Errorf("location coordinates must be numbers [lon,lat], got %s", wire.Preview(bytes.TrimSpace(g.Coordinates)))
	}
	return &y, &x, nil
}

// ngsiSensorID takes the last segment of the device the entity refers to,
// else of the entity id: urn:ngsi-ld:AirQualityObserved:HCM-AQ-012 is
// sensor HCM-AQ-012.
func ngsiSensorID(id string, refDevice json.RawMessage) (string, error) {
	from, what := id, "id"
	if refDevice != nil {
		raw := bytes.TrimSpace(refDevice)
		var s string
		var rel struct {
			Object json.RawMessage `json:"object"`
		}
		if json.Unmarshal(raw, &s) != nil {
			if json.Unmarshal(raw, &rel) != nil || json.Unmarshal(rel.Object, &s) != nil {
				return "", fmt.Errorf("refDevice is %s, want a device id or {\"type\":\"Relationship\",\"object\":\"urn:ngsi-ld:Device:…\"}", wire.Preview(raw))
			}
		}
		from, what = s, "refDevice"
	}
	seg := from[strings.LastIndexByte(from, ':')+1:]
	if strings.TrimSpace(seg) == "" {
		return "", fmt.Errorf("%s %q does not end in a sensor id (e.g. urn:ngsi-ld:Device:HCM-AQ-012)", what, wire.Clip(from))
	}
	return seg, nil
}

// ngsiHumidity converts FIWARE's relative humidity, a fraction of one
// unless said to be percent, to percent.
func ngsiHumidity(r *Reading) error {
	switch r.Unit {
	case "P1", "%", "percent":
		return nil
	case "", "C62": // C62 is UN/CEFACT "one": a plain ratio
		if r.Value < 0 || r.Value > 1 {
			return fmt.Errorf("value %v is not a fraction 0..1; send unitCode P1 if it is a percentage", r.Value)
		}
		r.Value, r.Unit = r.Value*100, "%"
	}
	return nil // another unit is refused by validation, which names the accepted ones
}

// levelInUnit expresses a threshold in the unit of the level it qualifies,
// because validation converts both with the reading's factor.
func levelInUnit(l ngsiValue, unit string) (float64, error) {
	if l.unit == "" || l.unit == unit {
		return l.value, nil
	}
	k, _ := device.LookupSensorKind("water_level")
	factor := func(u string) (float64, bool) {
		if u == "" || u == k.Unit {
			return 1, true
		}
		f, ok := k.Accepted[u]
		return f, ok
	}
	from, ok1 := factor(l.unit)
	to, ok2 := factor(unit)
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("is in %q and the level in %q; send both in one unit (e.g. MTR)", wire.Clip(l.unit), wire.Clip(unit))
	}
	return l.value * from / to, nil
}

// mappedNames lists an entity type's mapped attributes, for messages.
func mappedNames(m map[string]string) string {
	names := make([]string, 0, len(m))
	for n, k := range m {
		if n == k {
			names = append(names, n)
		} else {
			names = append(names, n+" ("+k+")")
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// localName strips an expanded JSON-LD term to its short name
// (https://smartdatamodels.org/dataModel.Environment/pm25 → pm25), so that
// entities sent without a compacting @context still map.
func localName(s string) string {
	if i := strings.LastIndexAny(s, "/#"); i >= 0 && strings.Contains(s, "://") {
		return s[i+1:]
	}
	return s
}
