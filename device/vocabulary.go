package device

import "github.com/openioc/ioc/severity"

// The vocabulary of what devices report: the quantities a sensor measures,
// with their units and plausible ranges, and the detections a camera
// reports. Ingest validates against it, the alarm rules name it, and the
// simulator and the ticker speak it. Read-only after init.

// SensorKind describes a measured quantity: its unit as stored, the units
// accepted on the wire with their factor to it, and the plausible range.
type SensorKind struct {
	ID       string
	Unit     string
	Accepted map[string]float64 // unit as sent (also UN/CEFACT codes) → factor to Unit
	Min, Max float64
}

var concentration = map[string]float64{"ug/m3": 1, "µg/m3": 1, "µg/m³": 1, "ug/m³": 1, "GQ": 1}

// SensorKinds are the measurements a reading may carry.
var SensorKinds = []SensorKind{
	{ID: "pm25", Unit: "ug/m3", Accepted: concentration, Min: 0, Max: 2000},
	{ID: "pm10", Unit: "ug/m3", Accepted: concentration, Min: 0, Max: 5000},
	{ID: "no2", Unit: "ug/m3", Accepted: concentration, Min: 0, Max: 5000},
	{ID: "o3", Unit: "ug/m3", Accepted: concentration, Min: 0, Max: 5000},
	{ID: "so2", Unit: "ug/m3", Accepted: concentration, Min: 0, Max: 5000},
	{ID: "co", Unit: "mg/m3", Accepted: map[string]float64{"mg/m3": 1, "mg/m³": 1, "GP": 1, "ug/m3": 0.001, "µg/m3": 0.001, "GQ": 0.001}, Min: 0, Max: 1000},
	{ID: "aqi", Unit: "", Accepted: map[string]float64{"index": 1}, Min: 0, Max: 1000},
	{ID: "temperature", Unit: "C", Accepted: map[string]float64{"CEL": 1, "°C": 1, "celsius": 1}, Min: -60, Max: 70},
	{ID: "humidity", Unit: "%", Accepted: map[string]float64{"P1": 1, "percent": 1}, Min: 0, Max: 100},
	{ID: "water_level", Unit: "m", Accepted: map[string]float64{"MTR": 1, "cm": 0.01, "CMT": 0.01, "mm": 0.001, "MMT": 0.001}, Min: -100, Max: 1000},
	{ID: "water_flow", Unit: "m3/s", Accepted: map[string]float64{"m³/s": 1, "MQS": 1}, Min: 0, Max: 1e6},
	{ID: "rainfall", Unit: "mm", Accepted: map[string]float64{"MMT": 1, "cm": 10, "CMT": 10}, Min: 0, Max: 2000},
	{ID: "noise", Unit: "dB", Accepted: map[string]float64{"dBA": 1, "dB(A)": 1, "2N": 1}, Min: 0, Max: 200},
	{ID: "wind_speed", Unit: "m/s", Accepted: map[string]float64{"MTS": 1}, Min: 0, Max: 150},
}

// SensorKindIDs lists the kinds by id.
func SensorKindIDs() []string {
	out := make([]string, len(SensorKinds))
	for i, k := range SensorKinds {
		out[i] = k.ID
	}
	return out
}

// LookupSensorKind returns the kind of that id, if there is one.
func LookupSensorKind(id string) (SensorKind, bool) {
	for _, k := range SensorKinds {
		if k.ID == id {
			return k, true
		}
	}
	return SensorKind{}, false
}

// CameraEventTypes are the detections a camera event may report. A
// heartbeat only tells that the camera is alive: it keeps the camera online
// and is not counted as an event.
var CameraEventTypes = []string{
	"traffic_violation", "congestion", "accident", "wrong_way", "illegal_parking", "plate_read",
	"crowd", "intrusion", "line_crossing", "loitering", "abandoned_object", "fight",
	"fire", "smoke", "flooding", "motion", "video_loss", "tamper", "heartbeat",
}

// CameraSeverities are those of a camera event, mildest first: the one
// scale of alarms and events.
var CameraSeverities = severity.Levels

// HeartbeatType is the camera event type that only marks the camera alive.
const HeartbeatType = "heartbeat"
