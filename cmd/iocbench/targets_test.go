package main

import (
	"strings"
	"testing"
	"time"
)

func TestTargetsAreFiftyMillisecondsAndFiftyTimes(t *testing.T) {
	for _, c := range []struct {
		p95      time.Duration
		x50, x95 float64
		want     string // the missed targets, joined
	}{
		{50 * time.Millisecond, 50, 50, ""},
		{12 * time.Millisecond, 900, 600, ""},
		{51 * time.Millisecond, 50, 50, "p95 51 ms > 50 ms"},
		{34 * time.Millisecond, 41, 39, "41.0× at p50 < 50×, 39.0× at p95 < 50×"},
		{76 * time.Millisecond, 901, 49.9, "p95 76 ms > 50 ms, 49.9× at p95 < 50×"},
	} {
		if got := strings.Join(missedTargets(c.p95, c.x50, c.x95), ", "); got != c.want {
			t.Errorf("p95 %s, %.1f×/%.1f×: missed %q, want %q", c.p95, c.x50, c.x95, got, c.want)
		}
	}
}
