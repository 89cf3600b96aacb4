package alarm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/openioc/ioc/severity"

	"github.com/openioc/ioc/device"
)

// Kinds of rule.
const (
	Threshold  = "threshold"   // a sensor reading at or above a value, sustained
	EventCount = "event_count" // at least N camera events of a type at one camera within a window
	Offline    = "offline"     // a device silent longer than a limit
	// DatasetFeed is a department dataset's feed late against its
	// cadence, failing to pull, or reporting too few units.
	DatasetFeed = "dataset_feed"
)

// RuleKinds lists the kinds of rule.
var RuleKinds = []string{Threshold, EventCount, Offline, DatasetFeed}

// Rule says when an alarm opens. An alarm of a rule and device stays open
// while the condition holds, and resolves when it clears.
type Rule struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	// Area limits the rule to devices in this unit's subtree; empty: all.
	Area     string `json:"area,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`

	// Threshold: readings of SensorKind at or above Value, or at or above
	// the reading's own level named by ValueField (alert_level or
	// danger_level), for at least For.
	SensorKind string          `json:"sensor_kind,omitempty"`
	Value      *float64        `json:"value,omitempty"`
	ValueField string          `json:"value_field,omitempty"`
	For        device.Duration `json:"for,omitempty"`

	// EventCount: at least Count events of EventType at one camera within
	// Within.
	EventType string          `json:"event_type,omitempty"`
	Count     int             `json:"count,omitempty"`
	Within    device.Duration `json:"within,omitempty"`

	// Offline: a device of DeviceKind (any when empty) that has not
	// reported for After.
	DeviceKind string          `json:"device_kind,omitempty"`
	After      device.Duration `json:"after,omitempty"`

	// DatasetFeed: the feed of Dataset (every dataset when empty) is late,
	// its connector's last run failed, or fewer than MinCompleteness (a
	// share, 0 to 1) of its units reported for its latest period.
	Dataset         string   `json:"dataset,omitempty"`
	MinCompleteness *float64 `json:"min_completeness,omitempty"`

	// Source is where the rule comes from: default, file or api.
	Source string `json:"source"`
}

// Limits on rules, so that one rule cannot make every evaluation slow.
const (
	maxFor    = 24 * time.Hour
	maxWithin = 24 * time.Hour
	maxAfter  = 30 * 24 * time.Hour
)

// Check reports what is wrong with r, naming the field to fix. sensorKinds
// and eventTypes are what the ingest side accepts.
func (r Rule) Check(sensorKinds, eventTypes []string, hasArea func(string) bool) error {
	if err := device.CheckID(r.ID); err != nil {
		return fmt.Errorf("rule id: %v", err)
	}
	if !slices.Contains(RuleKinds, r.Kind) {
		return fmt.Errorf("kind %q is not one of %s", r.Kind, strings.Join(RuleKinds, ", "))
	}
	if !severity.Known(r.Severity) {
		return fmt.Errorf("severity %q is not one of %s", r.Severity, strings.Join(severity.Levels, ", "))
	}
	if r.Area != "" && hasArea != nil && !hasArea(r.Area) {
		return fmt.Errorf("area %q is not a unit of the current hierarchy", r.Area)
	}
	switch r.Kind {
	case Threshold:
		if !slices.Contains(sensorKinds, r.SensorKind) {
			return fmt.Errorf("sensor_kind %q is not one of %s", r.SensorKind, strings.Join(sensorKinds, ", "))
		}
		switch {
		case (r.Value == nil) == (r.ValueField == ""):
			return errors.New("a threshold rule needs value (a number) or value_field (alert_level or danger_level), not both")
		case r.Value != nil && (math.IsNaN(*r.Value) || math.IsInf(*r.Value, 0)):
			return errors.New("value must be a finite number")
		case r.ValueField != "" && r.ValueField != "alert_level" && r.ValueField != "danger_level":
			return fmt.Errorf("value_field %q is not alert_level or danger_level", r.ValueField)
		case r.For < 0 || time.Duration(r.For) > maxFor:
			return fmt.Errorf("for must be between 0 and %s", maxFor)
		}
	case EventCount:
		switch {
		case !slices.Contains(eventTypes, r.EventType) || r.EventType == "heartbeat":
			return fmt.Errorf("event_type %q is not a camera event type (%s)", r.EventType, strings.Join(eventTypes, ", "))
		case r.Count < 1 || r.Count > 1000000:
			return errors.New("count must be between 1 and 1000000")
		case r.Within <= 0 || time.Duration(r.Within) > maxWithin:
			return fmt.Errorf("within must be above 0 and at most %s, e.g. \"5m\"", maxWithin)
		}
	case Offline:
		switch {
		case r.DeviceKind != "" && !slices.Contains(device.Kinds, r.DeviceKind):
			return fmt.Errorf("device_kind %q is not one of %s (or leave it out for both)", r.DeviceKind, strings.Join(device.Kinds, ", "))
		case r.After <= 0 || time.Duration(r.After) > maxAfter:
			return fmt.Errorf("after must be above 0 and at most %s, e.g. \"10m\"", maxAfter)
		}
	case DatasetFeed:
		if m := r.MinCompleteness; m != nil && !(*m >= 0 && *m <= 1) {
			return fmt.Errorf("min_completeness %v is not a share between 0 and 1, e.g. 0.9 for nine units in ten", *m)
		}
	}
	return nil
}

func ptr(v float64) *float64 { return &v }

// DefaultRules are the rules of a deployment with no rules file.
func DefaultRules() []Rule {
	return []Rule{
		{ID: "pm25-unhealthy", Name: "PM2.5 unhealthy (≥ 55.5 µg/m³ for 5 minutes)", Kind: Threshold, Severity: "warning",
			SensorKind: "pm25", Value: ptr(55.5), For: device.Duration(5 * time.Minute), Source: "default"},
		{ID: "water-alert-level", Name: "Water at or above the gauge's alert level", Kind: Threshold, Severity: "critical",
			SensorKind: "water_level", ValueField: "alert_level", Source: "default"},
		{ID: "traffic-violations-burst", Name: "10 traffic violations at one camera in 5 minutes", Kind: EventCount, Severity: "warning",
			EventType: "traffic_violation", Count: 10, Within: device.Duration(5 * time.Minute), Source: "default"},
		{ID: "device-offline", Name: "Device silent for 10 minutes", Kind: Offline, Severity: "warning",
			After: device.Duration(10 * time.Minute), Source: "default"},
		{ID: "dataset-feed-late", Name: "Department data late or its pull failing", Kind: DatasetFeed, Severity: "warning", Source: "default"},
	}
}

// ruleFile is the rules file: {"rules": [...]}.
type ruleFile struct {
	Rules []Rule `json:"rules"`
}

// ReadRulesFile reads the rules of a JSON file; they replace the defaults.
func ReadRulesFile(path string, sensorKinds, eventTypes []string, hasArea func(string) bool) ([]Rule, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open rules file: %w", err)
	}
	defer f.Close()
	return readRules(f, path, sensorKinds, eventTypes, hasArea)
}

func readRules(r io.Reader, name string, sensorKinds, eventTypes []string, hasArea func(string) bool) ([]Rule, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var rf ruleFile
	if err := dec.Decode(&rf); err != nil {
		return nil, fmt.Errorf("rules file %s: %w (want {\"rules\": [{\"id\": …, \"kind\": …}]})", name, err)
	}
	seen := map[string]bool{}
	for i := range rf.Rules {
		rf.Rules[i].Source = "file"
		if err := rf.Rules[i].Check(sensorKinds, eventTypes, hasArea); err != nil {
			return nil, fmt.Errorf("rules file %s: rule %d (%q): %w", name, i, rf.Rules[i].ID, err)
		}
		if seen[rf.Rules[i].ID] {
			return nil, fmt.Errorf("rules file %s: rule id %q appears twice", name, rf.Rules[i].ID)
		}
		seen[rf.Rules[i].ID] = true
		if rf.Rules[i].Name == "" {
			rf.Rules[i].Name = rf.Rules[i].ID
		}
	}
	return rf.Rules, nil
}
