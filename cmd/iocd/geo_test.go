package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/aggregate"
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
// City, then, when one of them changes, the changed ones as a delta against
// what it holds (or the whole set): either way it holds all 168 after.
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
	held := m
	m = ws.next(10 * time.Second)
	if m.Type == "delta" {
		if m.Base != held.Version {
			t.Fatalf("delta against %s, but the screen holds %s", m.Base, held.Version)
		}
		whole, err := aggregate.ApplyMapDelta(held.Data, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if d := m.mapSnapshot(t); len(d.Children) != 1 {
			t.Errorf("delta for one changed commune carries %d children", len(d.Children))
		}
		m.Data = whole
	}
	snap = m.mapSnapshot(t)
	if m.Type == "snapshot" || m.Topic != "map/79" || len(snap.Children) != 168 {
		t.Fatalf("got %s %s with %d children, want an update or delta of map/79 holding 168", m.Type, m.Topic, len(snap.Children))
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

// History filed under vn-2024 units counts under today's vn-2025 units,
// and still under the old units when an analyst asks for vn-2024. The
// figures read are the last 24 h's: the events are an hour old, which
// just after midnight is yesterday.
func TestOldUnitsCountUnderTodaysUnits(t *testing.T) {
	runsBesideOthers(t)
	n := startNode(t, testConfig(t))
	old := func(id, dossier, area string, lat, lon float64) map[string]any {
		e := event(id, dossier, area, "received", "online", time.Hour)
		e["hierarchy"] = "vn-2024"
		if lat != 0 {
			e["lat"], e["lon"] = lat, lon
		}
		return e
	}
	noPosition := old("o3", "d3", "00016", 0, 0) // Ngọc Hà, split, no position: designated Ngọc Hà, approximate
	code, r := n.ingest(
		old("o1", "d1", "26734", 0, 0),              // Tân Định, whole into 26737
		old("o2", "d2", "00016", 21.0367, 105.8346), // Ngọc Hà, split: the position says Ba Đình
		noPosition,
		old("o4", "d4", "760", 0, 0), // District 1's desk: the city itself
	)
	if code != 202 || r.Accepted != 4 {
		t.Fatalf("ingest: got %d %+v, want 4 accepted", code, r)
	}
	f := func(path string, want map[string]float64) {
		t.Helper()
		var s snapshot
		if code := n.get(path, adminToken, &s); code != 200 {
			t.Fatalf("GET %s: status %d", path, code)
		}
		for k, v := range want {
			if got := num(s.KPIs[k]); got != v {
				t.Errorf("%s: %s got %v, want %v", path, k, got, v)
			}
		}
	}
	f("/api/v1/areas/26737/kpis?window=24h", map[string]float64{"dossiers_received": 1, "records_approximate": 0})
	f("/api/v1/areas/00004/kpis?window=24h", map[string]float64{"dossiers_received": 1, "records_approximate": 0})
	f("/api/v1/areas/00008/kpis?window=24h", map[string]float64{"dossiers_received": 1, "records_approximate": 1})
	f("/api/v1/areas/79/kpis?window=24h", map[string]float64{"dossiers_received": 2})
	f("/api/v1/areas/01/kpis?window=24h", map[string]float64{"dossiers_received": 2, "records_approximate": 1})
	// As recorded, in the old hierarchy's three levels.
	f("/api/v1/areas/00016/kpis?window=24h&hierarchy=vn-2024", map[string]float64{"dossiers_received": 2, "records_approximate": 0})
	f("/api/v1/areas/001/kpis?window=24h&hierarchy=vn-2024", map[string]float64{"dossiers_received": 2})
	f("/api/v1/areas/760/kpis?window=24h&hierarchy=vn-2024", map[string]float64{"dossiers_received": 2})
	f("/api/v1/areas/79/kpis?window=24h&hierarchy=vn-2024", map[string]float64{"dossiers_received": 2})

	// A resend is still a duplicate.
	if code, r := n.ingest(noPosition); code != 202 || r.Duplicates != 1 {
		t.Errorf("resend: got %d %+v, want 1 duplicate", code, r)
	}
	f("/api/v1/areas/00008/kpis?window=24h", map[string]float64{"dossiers_received": 1})
	f("/api/v1/areas/00016/kpis?window=24h&hierarchy=vn-2024", map[string]float64{"dossiers_received": 2})
}

func TestLookupAndLineage(t *testing.T) {
	n := startNode(t, testConfig(t))
	var got struct {
		Hierarchy string `json:"hierarchy"`
		Units     []struct {
			Code, Level string
		} `json:"units"`
	}
	lookup := func(query string, wantStatus int, wantCodes ...string) {
		t.Helper()
		got.Units = nil
		code := n.get("/api/v1/geo/lookup?"+query, adminToken, &got)
		var codes []string
		for _, u := range got.Units {
			codes = append(codes, u.Code)
		}
		if code != wantStatus || strings.Join(codes, ",") != strings.Join(wantCodes, ",") {
			t.Errorf("lookup %s: got %d %v, want %d %v", query, code, codes, wantStatus, wantCodes)
		}
	}
	lookup("lat=10.7769&lon=106.7009", 200, "79", "26740")
	lookup("lat=34.69&lon=135.19&hierarchy=jp-2021", 200, "28", "28110")
	lookup("lat=12&lon=112", 404)
	lookup("lat=91&lon=106", 400)
	lookup("lat=10.7&lon=abc", 400)
	lookup("lat=10.7", 400)
	lookup("lat=10.7769&lon=106.7009&hierarchy=vn-1999", 404)
	lookup("lat=10.7769&lon=106.7009&hierarchy=vn-2024", 404) // no boundaries carried

	var e struct{ Error string }
	if code := n.get("/api/v1/geo/lookup?lat=10.7769&lon=106.7009", issueToken(t, "viewer", "01"), &e); code != 403 || !strings.Contains(e.Error, "26740") {
		t.Errorf("lookup outside the token's scope: got %d %q, want 403 naming the unit", code, e.Error)
	}

	var lin struct {
		Area         string `json:"area"`
		Predecessors []struct {
			Hierarchy, Code, Kind string
			Designated            bool
		} `json:"predecessors"`
		Successors []struct {
			Hierarchy, Code, Kind string
			Designated            bool
		} `json:"successors"`
	}
	if code := n.get("/api/v1/areas/00016/lineage?hierarchy=vn-2024", adminToken, &lin); code != 200 ||
		len(lin.Successors) != 2 || lin.Successors[0].Code != "00004" || lin.Successors[1].Code != "00008" ||
		lin.Successors[0].Kind != "partial" || !lin.Successors[1].Designated || lin.Successors[0].Designated {
		t.Errorf("lineage of vn-2024 00016: got %d %+v, want partial edges to 00004 and designated 00008", code, lin)
	}
	if code := n.get("/api/v1/areas/26737/lineage", adminToken, &lin); code != 200 || len(lin.Predecessors) != 2 ||
		lin.Predecessors[0].Code != "26734" || lin.Predecessors[0].Kind != "full" || lin.Predecessors[0].Hierarchy != "vn-2024" {
		t.Errorf("lineage of vn-2025 26737: got %d %+v, want 26734 (full) and 26737 (partial) from vn-2024", code, lin)
	}
}
