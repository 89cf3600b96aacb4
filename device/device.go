// Package device owns the registry of cameras and sensors: who they are,
// where they stand and in which unit, when each last reported, and whether
// it is online. Devices are registered through the API or on their first
// report; the registry is stored in ClickHouse and cached on every node.
// It also owns what devices report (vocabulary.go): the quantities sensors
// measure and the detections cameras report.
//
// Concurrency: a Registry is safe for concurrent use. Its cache is refreshed
// by Run, which its owner runs in one goroutine until the context ends; on
// the node holding the devices lease, Run also publishes the devices/
// topics, and it waits for the goroutine that takes part in the election.
package device

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Kinds of device.
const (
	Camera = "camera"
	Sensor = "sensor"
)

// Kinds lists the device kinds.
var Kinds = []string{Camera, Sensor}

// Device is a registered camera or sensor.
type Device struct {
	ID        string  `json:"id"`
	Kind      string  `json:"kind"`
	Name      string  `json:"name"`
	Lat       float64 `json:"lat"`
	Lon       float64 `json:"lon"`
	Hierarchy string  `json:"hierarchy"`
	AreaCode  string  `json:"area_code"`
	// ChannelName and Address match camera-platform XML notifications to
	// the camera (channelName, or ipAddress with channelID as "ip/channel").
	ChannelName string `json:"channel_name,omitempty"`
	Address     string `json:"address,omitempty"`
	// OfflineAfter overrides the kind's timeout: with no report for this
	// long the device counts as offline. Zero: the kind's default.
	OfflineAfter Duration `json:"offline_after,omitempty"`
	// Source says how the device was registered: "api" or "first_report".
	Source    string    `json:"source"`
	UpdatedAt time.Time `json:"updated_at"`
	// SecretHash is the bcrypt hash of a camera's own HTTP Basic password
	// (user name: the id); never sent out. Credentials says there is one.
	SecretHash  string `json:"-"`
	Credentials bool   `json:"credentials"`
}

// Duration is a time.Duration written as text in JSON ("10m").
type Duration time.Duration

// MarshalJSON writes d as "1h30m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalJSON reads "90s", "15m" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*d = 0
		return nil
	}
	if v, err := time.ParseDuration(s); err == nil {
		*d = Duration(v)
		return nil
	}
	var secs float64
	if _, err := fmt.Sscanf(s, "%g", &secs); err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
		return fmt.Errorf("duration %s is not like \"90s\", \"15m\" or a number of seconds", string(b))
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// CheckID reports whether id may name a device: 1 to 128 bytes of UTF-8
// without "/" or control characters, since it appears in URLs and MQTT topics.
func CheckID(id string) error {
	switch {
	case strings.TrimSpace(id) == "":
		return fmt.Errorf("device id is empty")
	case len(id) > 128:
		return fmt.Errorf("device id is %d bytes long; the limit is 128", len(id))
	case !utf8.ValidString(id):
		return fmt.Errorf("device id is not valid UTF-8")
	case strings.ContainsAny(id, "/+#"):
		return fmt.Errorf("device id %q contains / + or #, which MQTT topics and URLs reserve", id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("device id %q contains a control character", id)
		}
	}
	return nil
}
