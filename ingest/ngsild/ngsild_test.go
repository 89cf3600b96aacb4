package ngsild

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/ingest/wire"
)

// ngsiLine prints a reading compactly, so that a table states it in one line.
func ngsiLine(r Reading) string {
	num := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("%d %s %s: %s %s %s at %s lat %s lon %s alert %s danger %s",
		r.Entity, r.Attribute, r.SensorID, r.Kind, num(&r.Value), r.Unit, r.ObservedAt,
		num(r.Lat), num(r.Lon), num(r.AlertLevel), num(r.DangerLevel))
}

func TestDecodeSample(t *testing.T) {
	body, err := os.ReadFile("testdata/ngsi-ld-notification.json")
	if err != nil {
		t.Fatal(err)
	}
	rs, errs, err := Decode(body)
	if err != nil || len(errs) > 0 {
		t.Fatalf("got error %v and entity problems %v, want none", err, errs)
	}
	want := []string{
		"0 pm10 HCM-AQ-012: pm10 81 GQ at 2026-11-22T02:15:00Z lat 10.7796 lon 106.6953 alert - danger -",
		"0 pm25 HCM-AQ-012: pm25 57.2 GQ at 2026-11-22T02:15:00Z lat 10.7796 lon 106.6953 alert - danger -",
		"0 temperature HCM-AQ-012: temperature 31.4 CEL at 2026-11-22T02:15:00Z lat 10.7796 lon 106.6953 alert - danger -",
		"1 currentLevel HCM-WL-003: water_level 1.62 MTR at 2026-11-22T02:14:30Z lat 10.8012 lon 106.7215 alert 1.5 danger 1.8",
	}
	var got []string
	for _, r := range rs {
		got = append(got, ngsiLine(r))
	}
	if !slices.Equal(got, want) {
		t.Errorf("readings:\ngot  %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if len(rs) == 4 {
		if got, want := rs[0].EntityID, "urn:ngsi-ld:AirQualityObserved:HCM-AQ-012"; got != want {
			t.Errorf("entity id: got %q, want %q", got, want)
		}
		// Each reading owns its position.
		if rs[0].Lat == rs[1].Lat {
			t.Error("readings of one entity share a lat pointer; got the same, want copies")
		}
	}
}

func TestDecode(t *testing.T) {
	const aq = `"id":"urn:ngsi-ld:AirQualityObserved:AQ-1","type":"AirQualityObserved","dateObserved":"2026-11-22T02:15:00Z"`
	const pt = `"location":{"type":"Point","coordinates":[106.7,10.8]}`
	type want struct {
		readings []string
		errs     []string // "index: substring", in order
		failed   string   // substring of the error for the whole body
	}
	tests := []struct {
		name string
		body string
		want want
	}{
		{"keyValues entity", `{` + aq + `,` + pt + `,"refDevice":"urn:ngsi-ld:Device:DEV-9","pm25":12.5,"relativeHumidity":0.65}`, want{
			readings: []string{
				"0 pm25 DEV-9: pm25 12.5  at 2026-11-22T02:15:00Z lat 10.8 lon 106.7 alert - danger -",
				"0 relativeHumidity DEV-9: humidity 65 % at 2026-11-22T02:15:00Z lat 10.8 lon 106.7 alert - danger -",
			},
		}},
		{"array of entities, refDevice relationship, pm2_5", `[{` + aq + `,"refDevice":{"type":"Relationship","object":"urn:ngsi-ld:Device:AQ-DEV"},"pm2_5":{"type":"Property","value":9}}]`, want{
			readings: []string{"0 pm2_5 AQ-DEV: pm25 9  at 2026-11-22T02:15:00Z lat - lon - alert - danger -"},
		}},
		{"humidity in percent", `{` + aq + `,"relativeHumidity":{"type":"Property","value":65,"unitCode":"P1"}}`, want{
			readings: []string{"0 relativeHumidity AQ-1: humidity 65 P1 at 2026-11-22T02:15:00Z lat - lon - alert - danger -"},
		}},
		{"humidity percent sent as a fraction", `{` + aq + `,"relativeHumidity":65}`, want{
			errs: []string{`0: attribute "relativeHumidity" value 65 is not a fraction 0..1; send unitCode P1`},
		}},
		{"other air quality attributes", `{` + aq + `,"airQualityIndex":42,"windSpeed":{"value":3.5,"unitCode":"MTS"},"precipitation":{"value":2,"unitCode":"MMT"},"no2":1,"o3":2,"so2":3,"co":{"value":0.4,"unitCode":"GP"}}`, want{
			readings: []string{
				"0 airQualityIndex AQ-1: aqi 42  at 2026-11-22T02:15:00Z lat - lon - alert - danger -",
				"0 co AQ-1: co 0.4 GP at 2026-11-22T02:15:00Z lat - lon - alert - danger -",
				"0 no2 AQ-1: no2 1  at 2026-11-22T02:15:00Z lat - lon - alert - danger -",
				"0 o3 AQ-1: o3 2  at 2026-11-22T02:15:00Z lat - lon - alert - danger -",
				"0 precipitation AQ-1: rainfall 2 MMT at 2026-11-22T02:15:00Z lat - lon - alert - danger -",
				"0 so2 AQ-1: so2 3  at 2026-11-22T02:15:00Z lat - lon - alert - danger -",
				"0 windSpeed AQ-1: wind_speed 3.5 MTS at 2026-11-22T02:15:00Z lat - lon - alert - danger -",
			},
		}},
		{"unknown attribute reported, siblings kept", `{` + aq + `,"pm25":5,"noise":{"type":"Property","value":61},"name":"Ben Thanh"}`, want{
			readings: []string{"0 pm25 AQ-1: pm25 5  at 2026-11-22T02:15:00Z lat - lon - alert - danger -"},
			errs: []string{`0: entity urn:ngsi-ld:AirQualityObserved:AQ-1 (AirQualityObserved): attribute "noise" is not mapped to a sensor kind; ` +
				`mapped for AirQualityObserved: airQualityIndex (aqi), co, no2, o3, pm10, pm25, pm2_5 (pm25), precipitation (rainfall), relativeHumidity (humidity), so2, temperature, windSpeed (wind_speed)`},
		}},
		{"unknown entity type, next entity kept", `[{"id":"urn:ngsi-ld:ParkingSpot:P1","type":"ParkingSpot","occupancy":1},{` + aq + `,"pm10":3}]`, want{
			readings: []string{"1 pm10 AQ-1: pm10 3  at 2026-11-22T02:15:00Z lat - lon - alert - danger -"},
			errs:     []string{`0: entity urn:ngsi-ld:ParkingSpot:P1 (ParkingSpot): entity type "ParkingSpot" is not supported; send one of AirQualityObserved, FloodMonitoring, WaterObserved`},
		}},
		{"non-numeric values", `{` + aq + `,"pm25":"NaN","pm10":null,"no2":{"type":"Property","value":"12"},"o3":{"type":"Property","value":{"x":1}},"so2":{"type":"Property"},"co":[1],"temperature":30}`, want{
			readings: []string{"0 temperature AQ-1: temperature 30  at 2026-11-22T02:15:00Z lat - lon - alert - danger -"},
			errs: []string{
				`0: entity urn:ngsi-ld:AirQualityObserved:AQ-1 (AirQualityObserved): attribute "co" value is an array, want a single number`,
				`0: attribute "no2" value is a string ("12"), want a JSON number`,
				`0: attribute "o3" value is an object, want a number`,
				`0: attribute "pm10" value is null, want a number`,
				`0: attribute "pm25" value is a string ("NaN"), want a JSON number`,
				`0: attribute "so2" has no value`,
			},
		}},
		{"number out of range", `{` + aq + `,"pm25":1e999}`, want{
			errs: []string{`0: attribute "pm25" value 1e999 is not a finite number`},
		}},
		{"polygon location refuses the entity", `[{` + aq + `,"location":{"type":"GeoProperty","value":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},"pm25":5},{` + aq + `,"pm25":6}]`, want{
			readings: []string{"1 pm25 AQ-1: pm25 6  at 2026-11-22T02:15:00Z lat - lon - alert - danger -"},
			errs:     []string{`0: entity urn:ngsi-ld:AirQualityObserved:AQ-1 (AirQualityObserved): location is a Polygon, want a Point`},
		}},
		{"bad coordinates", `{` + aq + `,"location":{"type":"Point","coordinates":[106.7]},"pm25":5}`, want{
			errs: []string{`0: location coordinates must be [lon,lat]`},
		}},
		{"location that is no geometry", `{` + aq + `,"location":"Ben Thanh","pm25":5}`, want{
			errs: []string{`0: location is "\"Ben Thanh\"", not a GeoJSON Point`},
		}},
		{"missing id", `[{"type":"AirQualityObserved","pm25":5}]`, want{
			errs: []string{`0: entity 0: id is required`},
		}},
		{"missing type", `[{"id":"urn:ngsi-ld:AirQualityObserved:AQ-1","pm25":5}]`, want{
			errs: []string{`0: entity 0: type is required`},
		}},
		{"entity that is not an object", `[7,{` + aq + `,"pm25":1}]`, want{
			readings: []string{"1 pm25 AQ-1: pm25 1  at 2026-11-22T02:15:00Z lat - lon - alert - danger -"},
			errs:     []string{`0: entity 0 is "7", want a JSON object`},
		}},
		{"id without a sensor segment", `{"id":"urn:ngsi-ld:AirQualityObserved:","type":"AirQualityObserved","pm25":1,"observedAt":"2026-11-22T02:15:00Z"}`, want{
			errs: []string{`0: entity urn:ngsi-ld:AirQualityObserved: (AirQualityObserved): id "urn:ngsi-ld:AirQualityObserved:" does not end in a sensor id`},
		}},
		{"times: attribute, entity, dateObserved, notifiedAt", `{"type":"Notification","notifiedAt":"2026-11-22T02:20:00Z","data":[
			{"id":"a:A1","type":"AirQualityObserved","observedAt":"2026-11-22T02:11:00Z","dateObserved":"2026-11-22T02:12:00Z","pm25":{"value":1,"observedAt":"2026-11-22T02:10:00Z"},"pm10":2},
			{"id":"a:A2","type":"AirQualityObserved","dateObserved":{"@type":"DateTime","@value":"2026-11-22T02:12:00Z"},"pm10":3},
			{"id":"a:A3","type":"AirQualityObserved","pm10":4}]}`, want{
			readings: []string{
				"0 pm10 A1: pm10 2  at 2026-11-22T02:11:00Z lat - lon - alert - danger -",
				"0 pm25 A1: pm25 1  at 2026-11-22T02:10:00Z lat - lon - alert - danger -",
				"1 pm10 A2: pm10 3  at 2026-11-22T02:12:00Z lat - lon - alert - danger -",
				"2 pm10 A3: pm10 4  at 2026-11-22T02:20:00Z lat - lon - alert - danger -",
			},
		}},
		{"no time anywhere", `[{"id":"a:A1","type":"AirQualityObserved","pm25":1}]`, want{
			errs: []string{`0: entity a:A1 (AirQualityObserved): attribute "pm25" has no time: send observedAt on it, dateObserved on the entity, or notifiedAt on the notification`},
		}},
		{"bad dateObserved", `[{"id":"a:A1","type":"AirQualityObserved","dateObserved":5,"pm25":1}]`, want{
			errs: []string{`0: entity a:A1 (AirQualityObserved): dateObserved must be a date-time`},
		}},
		{"water observed: levels in other units, flow", `{"id":"urn:ngsi-ld:WaterObserved:WL-7","type":"WaterObserved","observedAt":"2026-11-22T02:00:00Z",
			"height":{"type":"Property","value":1.2,"unitCode":"MTR"},"alertLevel":{"type":"Property","value":150,"unitCode":"CMT"},"dangerLevel":2,
			"flow":{"type":"Property","value":35.5,"unitCode":"MQS"}}`, want{
			readings: []string{
				"0 flow WL-7: water_flow 35.5 MQS at 2026-11-22T02:00:00Z lat - lon - alert - danger -",
				"0 height WL-7: water_level 1.2 MTR at 2026-11-22T02:00:00Z lat - lon - alert 1.5 danger 2",
			},
		}},
		{"threshold in an unknown unit", `{"id":"x:WL-8","type":"FloodMonitoring","observedAt":"2026-11-22T02:00:00Z","currentLevel":{"value":1,"unitCode":"MTR"},"alertLevel":{"value":5,"unitCode":"FOT"}}`, want{
			readings: []string{"0 currentLevel WL-8: water_level 1 MTR at 2026-11-22T02:00:00Z lat - lon - alert - danger -"},
			errs:     []string{`0: entity x:WL-8 (FloodMonitoring): attribute "alertLevel" is in "FOT" and the level in "MTR"; send both in one unit`},
		}},
		{"flood monitoring maps only currentLevel", `{"id":"x:WL-9","type":"FloodMonitoring","observedAt":"2026-11-22T02:00:00Z","currentLevel":1,"flow":3,"floodLevelStatus":"normal"}`, want{
			readings: []string{"0 currentLevel WL-9: water_level 1  at 2026-11-22T02:00:00Z lat - lon - alert - danger -"},
			errs:     []string{`0: entity x:WL-9 (FloodMonitoring): attribute "flow" is not mapped to a sensor kind; mapped for FloodMonitoring: currentLevel (water_level)`},
		}},
		{"expanded type and attribute names", `{"id":"x:AQ-5","type":"https://smartdatamodels.org/dataModel.Environment/AirQualityObserved","https://smartdatamodels.org/dataModel.Environment/pm10":{"type":"Property","value":7},"https://smartdatamodels.org/dateObserved":"2026-11-22T02:00:00Z"}`, want{
			readings: []string{"0 https://smartdatamodels.org/dataModel.Environment/pm10 AQ-5: pm10 7  at 2026-11-22T02:00:00Z lat - lon - alert - danger -"},
		}},
		{"several types, the first supported one maps", `{"id":"urn:ngsi-ld:AirQualityObserved:AQ-2","type":["Device","AirQualityObserved","WaterObserved"],"dateObserved":"2026-11-22T02:15:00Z","pm25":4,"currentLevel":1}`, want{
			readings: []string{"0 pm25 AQ-2: pm25 4  at 2026-11-22T02:15:00Z lat - lon - alert - danger -"},
			errs:     []string{`0: entity urn:ngsi-ld:AirQualityObserved:AQ-2 (AirQualityObserved): attribute "currentLevel" is not mapped to a sensor kind`},
		}},
		{"several types, none supported", `[{"id":"x:P1","type":["ParkingSpot","Device"],"occupancy":1}]`, want{
			errs: []string{`0: entity x:P1 (ParkingSpot, Device): none of the entity's types is supported; send one of AirQualityObserved, FloodMonitoring, WaterObserved`},
		}},
		{"type neither string nor strings", `[{"id":"x:P1","type":["AirQualityObserved",7]}]`, want{
			errs: []string{`0: entity 0: type must be a non-empty string or an array of them`},
		}},
		{"id and type both missing, both reported", `[{"pm25":5}]`, want{
			errs: []string{`0: entity 0: id is required`, `0: entity 0: type is required`},
		}},
		{"attribute with several instances, each a reading", `{` + aq + `,"pm25":[
			{"type":"Property","value":10,"unitCode":"GQ"},
			{"type":"Property","value":12,"datasetId":"urn:ngsi-ld:Dataset:optical","observedAt":"2026-11-22T02:14:00Z"},
			{"type":"Property","value":11,"datasetId":"urn:ngsi-ld:Dataset:beta"}]}`, want{
			readings: []string{
				"0 pm25 AQ-1: pm25 10 GQ at 2026-11-22T02:15:00Z lat - lon - alert - danger -",
				"0 pm25 AQ-1: pm25 12  at 2026-11-22T02:14:00Z lat - lon - alert - danger -",
				"0 pm25 AQ-1: pm25 11  at 2026-11-22T02:15:00Z lat - lon - alert - danger -",
			},
		}},
		{"instances: a bad one reported with its datasetId, siblings kept", `{` + aq + `,"pm10":[{"type":"Property","value":3,"datasetId":"urn:a"},{"type":"Property","value":"x","datasetId":"urn:b"}]}`, want{
			readings: []string{"0 pm10 AQ-1: pm10 3  at 2026-11-22T02:15:00Z lat - lon - alert - danger -"},
			errs:     []string{`0: attribute "pm10 (datasetId urn:b)" value is a string ("x"), want a JSON number`},
		}},
		{"instances sharing a datasetId", `{` + aq + `,"pm10":[{"value":3,"datasetId":"urn:a"},{"value":4,"datasetId":"urn:a"}],"no2":[{"value":1},{"value":2}],"o3":[]}`, want{
			errs: []string{
				`0: attribute "no2" has two instances without datasetId`,
				`0: attribute "o3" is an empty array`,
				`0: attribute "pm10" has two instances with datasetId "urn:a"; an attribute has one instance per datasetId`,
			},
		}},
		{"location and time with several instances: the default one", `{"id":"x:AQ-7","type":"AirQualityObserved",
			"location":[{"type":"GeoProperty","value":{"type":"Point","coordinates":[1,2]},"datasetId":"urn:gps"},{"type":"GeoProperty","value":{"type":"Point","coordinates":[106.7,10.8]}}],
			"dateObserved":[{"type":"Property","value":"2026-11-22T02:00:00Z","datasetId":"urn:x"}],"pm25":1}`, want{
			readings: []string{"0 pm25 AQ-7: pm25 1  at 2026-11-22T02:00:00Z lat 10.8 lon 106.7 alert - danger -"},
		}},
		{"empty body", ``, want{failed: "the body is empty"}},
		{"blank body", " \n", want{failed: "the body is empty"}},
		{"not JSON", `pm25=5`, want{failed: `the body is not JSON ("pm25=5")`}},
		{"JSON number", `7`, want{failed: `want an NGSI-LD notification`}},
		{"malformed JSON", `{"data":[`, want{failed: "malformed JSON"}},
		{"notification without data", `{"id":"n","type":"Notification"}`, want{failed: "the notification has no data"}},
		{"object without data, id or type", `{"foo":1}`, want{failed: "the object has no data, id or type"}},
		{"data not an array", `{"type":"Notification","data":{"id":"a"}}`, want{failed: "data must be an array of NGSI-LD entities"}},
		{"data empty", `{"type":"Notification","data":[]}`, want{failed: "the notification has no entities"}},
		{"empty array", `[]`, want{failed: "the notification has no entities"}},
		{"notifiedAt not a string", `{"type":"Notification","notifiedAt":5,"data":[{"id":"a:1","type":"AirQualityObserved"}]}`, want{failed: "notifiedAt must be a date-time string"}},
		{"too many entities", "[" + strings.Repeat("{},", maxNGSIEntities) + "{}]", want{failed: "10001 entities in one notification; the limit is 10000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, errs, err := Decode([]byte(tt.body))
			if tt.want.failed != "" {
				if err == nil || !errors.Is(err, wire.ErrUnparseable) || !strings.Contains(err.Error(), tt.want.failed) {
					t.Fatalf("got error %v, want one wrapping wire.ErrUnparseable that says %q", err, tt.want.failed)
				}
				if rs != nil || errs != nil {
					t.Errorf("got %d readings and %d entity problems with a failed body, want none", len(rs), len(errs))
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, ngsiLine(r))
			}
			if !slices.Equal(got, tt.want.readings) {
				t.Errorf("readings:\ngot  %q\nwant %q", got, tt.want.readings)
			}
			// One error per entity, listing every problem of it.
			type problem struct {
				index int
				msg   string
			}
			var got2 []problem
			for i, e := range errs {
				if i > 0 && errs[i-1].Entity >= e.Entity {
					t.Errorf("entity %d has more than one EntityProblems, or they are out of order: %v", e.Entity, errs)
				}
				for _, msg := range e.Problems {
					got2 = append(got2, problem{e.Entity, msg})
				}
			}
			if len(got2) != len(tt.want.errs) {
				t.Fatalf("got problems %v, want %d: %q", got2, len(tt.want.errs), tt.want.errs)
			}
			for i, e := range got2 {
				idx, msg, _ := strings.Cut(tt.want.errs[i], ": ")
				if got := fmt.Sprint(e.index); got != idx || !strings.Contains(e.msg, msg) {
					t.Errorf("problem %d: got %d: %s, want %s: …%s…", i, e.index, e.msg, idx, msg)
				}
			}
		})
	}
}

// FuzzDecode checks that no body makes the decoder panic and that every
// reading it returns is complete and in order. Seeds are the sample and
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	if b, err := os.ReadFile("testdata/ngsi-ld-notification.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"id":"a:b","type":"AirQualityObserved","pm25":1,"dateObserved":"2026-11-22T02:15:00Z","location":{"type":"Point","coordinates":[1,2]}}`))
	f.Add([]byte(`[{"id":"x:WL","type":"FloodMonitoring","currentLevel":{"value":1,"unitCode":"CMT"},"alertLevel":{"value":0.5,"unitCode":"MTR"},"observedAt":"t"}]`))
	f.Add([]byte(`{"type":"Notification","data":[{"id":":","type":"WaterObserved","flow":"1"},7,null]}`))
	f.Add([]byte(`{"id":"a:b","type":["Device","AirQualityObserved"],"dateObserved":[{"value":"2026-11-22T02:15:00Z"}],"pm25":[{"value":1},{"value":2,"datasetId":"urn:x"},{"value":3,"datasetId":"urn:x"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rs, errs, err := Decode(body)
		if err != nil {
			if !errors.Is(err, wire.ErrUnparseable) || rs != nil || errs != nil {
				t.Fatalf("failed decode: got %v with %d readings and %d errors, want wire.ErrUnparseable alone", err, len(rs), len(errs))
			}
			return
		}
		kinds := device.SensorKindIDs()
		for i, r := range rs {
			w := r
			if w.SensorID == "" || w.Kind == "" {
				t.Fatalf("reading %d: got sensor %q, kind %q, want both set", i, w.SensorID, w.Kind)
			}
			if !slices.Contains(kinds, w.Kind) {
				t.Fatalf("reading %d: got kind %q, want one of %v", i, w.Kind, kinds)
			}
			if math.IsNaN(w.Value) || math.IsInf(w.Value, 0) {
				t.Fatalf("reading %d: got value %v, want a finite number", i, w.Value)
			}
			if (w.Lat == nil) != (w.Lon == nil) {
				t.Fatalf("reading %d: got lat %v and lon %v, want both or neither", i, w.Lat, w.Lon)
			}
			if i > 0 && (rs[i-1].Entity > r.Entity || rs[i-1].Entity == r.Entity && rs[i-1].Attribute > r.Attribute) {
				t.Fatalf("reading %d is out of order", i)
			}
		}
		for i, e := range errs {
			if len(e.Problems) == 0 || slices.Contains(e.Problems, "") || e.Entity < 0 || e.Entity > maxNGSIEntities {
				t.Fatalf("entity problems %d: got entity %d %q, want an entity index and a reason", i, e.Entity, e.Problems)
			}
			if i > 0 && errs[i-1].Entity >= e.Entity {
				t.Fatalf("entity problems %d are out of order or a second list for their entity", i)
			}
		}
	})
}
