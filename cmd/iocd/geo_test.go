package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type mapSnapshot struct {
	Area       string `json:"area"`
	Window     string `json:"window"`
	ChildLevel string `json:"child_level"`
	Children   map[string]struct {
		Name string         `json:"name"`
		KPIs map[string]any `json:"kpis"`
	} `json:"children"`
}

func (m wsMessage) mapSnapshot(t testing.TB) mapSnapshot {
	t.Helper()
	var s mapSnapshot
	if err := json.Unmarshal(m.Data, &s); err != nil {
		t.Fatalf("message data %q: %v", m.Data, err)
	}
	return s
}

// A wall map subscribes to map/79 and gets all 168 communes of Ho Chi Minh
// City, then the whole set again when one of them changes.
func TestMapTopicCarriesEveryChild(t *testing.T) {
	n := startNode(t, testConfig(t))
	ws := n.live(issueToken(t, "viewer", "79"))
	ws.send("subscribe", "map/79")
	m := ws.next(10 * time.Second)
	snap := m.mapSnapshot(t)
	if m.Type != "snapshot" || snap.Area != "79" || snap.ChildLevel != "commune" || len(snap.Children) != 168 {
		t.Fatalf("got %s %s with %d children at level %q, want a snapshot of 79 with 168 communes", m.Type, m.Topic, len(snap.Children), snap.ChildLevel)
	}
	if c := snap.Children["26740"]; c.Name != "Sài Gòn" || c.KPIs["online_rate"] != nil {
		t.Errorf("26740 before ingest: got %+v, want Sài Gòn with a null online rate", c)
	}
	if code, _ := n.ingest(event("m1", "d1", "26740", "received", "online", 0)); code != 202 {
		t.Fatal("ingest failed")
	}
	m = ws.next(10 * time.Second)
	snap = m.mapSnapshot(t)
	if m.Type != "update" || m.Topic != "map/79" || len(snap.Children) != 168 {
		t.Fatalf("got %s %s with %d children, want an update of map/79 with 168", m.Type, m.Topic, len(snap.Children))
	}
	if got := snap.Children["26740"].KPIs; num(got["dossiers_received"]) != 1 || num(got["online_rate"]) != 1 {
		t.Errorf("26740 after ingest: got %v, want 1 received, online rate 1", got)
	}
	if got := snap.Children["26734"].KPIs; num(got["dossiers_received"]) != 0 {
		t.Errorf("26734 after ingest elsewhere: got %v, want nothing received", got)
	}

	for _, bad := range []struct{ topic, want string }{
		{"map/26740", "has no child units"}, {"map/01", "does not cover"}, {"map/79/1y", `unknown window "1y"`},
	} {
		ws.send("subscribe", bad.topic)
		if m := ws.next(10 * time.Second); m.Type != "error" || !contains(m.Error, bad.want) {
			t.Errorf("%s: got %+v, want an error containing %q", bad.topic, m, bad.want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
