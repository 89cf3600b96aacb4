// Package severity owns the one scale of how serious an alarm or a camera
// event is: info, warning, critical, mildest first. Alarm rules, camera
// events, the wall's alarm takeover and the dashboards' filters all read
// it from here (dashboards, a leaf, keeps a copy that its tests check
// against this one). Its values are constants and pure functions, safe for
// concurrent use.
package severity

import "slices"

// The levels.
const (
	Info     = "info"
	Warning  = "warning"
	Critical = "critical"
)

// Levels are the levels, mildest first.
var Levels = []string{Info, Warning, Critical}

// Rank is a level's place on the scale, 0 the mildest, or -1 for a text
// that is no level.
func Rank(level string) int { return slices.Index(Levels, level) }

// Known says whether level is on the scale.
func Known(level string) bool { return Rank(level) >= 0 }
