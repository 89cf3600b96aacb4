package topic_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/topic"
)

// example is a row of testdata/topics.json, which the page's tests read
// too (cmd/iocd/testdata/live/live_test.js).
type example struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Area      string `json:"area"`
	Screen    string `json:"screen"`
	Window    string `json:"window"`
	Canonical string `json:"canonical"`
	Error     bool   `json:"error"`
}

// table is testdata/topics.json: names and what they parse to, and names
// and the kind KindOf reads from them.
type table struct {
	Topics []example `json:"topics"`
	Kinds  []struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
	} `json:"kinds"`
}

func readTable(t testing.TB) table {
	t.Helper()
	b, err := os.ReadFile("testdata/topics.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc table
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Topics) < 40 || len(doc.Kinds) < 10 {
		t.Fatalf("read %d examples and %d kinds, want the file's 40 and 10 or so", len(doc.Topics), len(doc.Kinds))
	}
	return doc
}

func examples(t testing.TB) []example { return readTable(t).Topics }

// TestExamples: every name of the shared table parses to what it says, or
// is refused; the canonical name is what String writes and what the
// constructors build; KindOf agrees with Parse.
func TestExamples(t *testing.T) {
	for _, e := range examples(t) {
		got, err := topic.Parse(e.Name)
		if e.Error {
			if err == nil {
				t.Errorf("Parse(%q) = %+v, want an error", e.Name, got)
			}
			continue
		}
		want := topic.Topic{Kind: topic.Kind(e.Kind), Area: e.Area, Screen: e.Screen, Window: e.Window}
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", e.Name, got, err, want)
			continue
		}
		if s := got.String(); s != e.Canonical {
			t.Errorf("Parse(%q).String() = %q, want %q", e.Name, s, e.Canonical)
		}
		id := e.Area + e.Screen
		built := topic.Kind(e.Kind).Of(id)
		if e.Window != "" {
			built = built.Over(e.Window)
		}
		if built != want || built.String() != e.Canonical {
			t.Errorf("Kind(%q).Of(%q).Over(%q) = %+v (%q), want %q", e.Kind, id, e.Window, built, built.String(), e.Canonical)
		}
		if k := topic.KindOf(e.Name); k != want.Kind {
			t.Errorf("KindOf(%q) = %q, want %q", e.Name, k, want.Kind)
		}
		if again, err := topic.Parse(e.Canonical); err != nil || again != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", e.Canonical, again, err, want)
		}
	}
}

// TestRefusalsSayWhatIsWrong: a screen is told what topics there are,
// which windows exist, and what a screen id is.
func TestRefusalsSayWhatIsWrong(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"weather/79", `unknown topic "weather/79": topics are kpi/{area} and map/{area} (today), kpi/{area}/{window} and map/{area}/{window} with window 24h, 7d or 30d, alarms/{area}, events/{area}, devices/{area}, and screen/{id}`},
		{"alarms/79/7d", `unknown topic "alarms/79/7d": topics are kpi/{area}`},
		{"kpi/79/1y", `topic "kpi/79/1y": unknown window "1y": use today, 24h, 7d or 30d`},
		{"map/79/", `topic "map/79/": unknown window "": use today, 24h, 7d or 30d`},
		{"screen/a/b", `unknown topic "screen/a/b": screen/{id} takes a screen id (lower-case letters, digits and '-')`},
		{"screen", `unknown topic "screen": topics are kpi/{area}`},
	} {
		_, err := topic.Parse(c.name)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Parse(%q): got %v, want %s…", c.name, err, c.want)
		}
	}
	// Screens may not subscribe to what nodes tell each other.
	for _, name := range []string{"internal/auth/revoked", "internal/screens/seen/s1"} {
		if _, err := topic.ParseLive(name); err == nil || !strings.Contains(err.Error(), "unknown topic") {
			t.Errorf("ParseLive(%q): got %v, want unknown topic", name, err)
		}
	}
	if got, err := topic.ParseLive("kpi/79/7d"); err != nil || got.String() != "kpi/79/7d" {
		t.Errorf("ParseLive(kpi/79/7d): got %+v, %v", got, err)
	}
}

// TestKindOf: the router's reading looks at the head of a name only, as
// it did with prefixes.
func TestKindOf(t *testing.T) {
	for _, c := range readTable(t).Kinds {
		if got := topic.KindOf(c.Name); got != topic.Kind(c.Kind) {
			t.Errorf("KindOf(%q) = %q, want %q", c.Name, got, c.Kind)
		}
	}
}

// TestKinds: what each kind is, as docs/asyncapi.yaml describes them.
func TestKinds(t *testing.T) {
	type is struct{ live, internal, windowed, stream, safety bool }
	for k, want := range map[topic.Kind]is{
		topic.KPI: {live: true, windowed: true}, topic.Map: {live: true, windowed: true},
		topic.Alarms: {live: true, safety: true}, topic.Devices: {live: true, safety: true},
		topic.Events: {live: true, stream: true}, topic.Screen: {live: true, safety: true},
		topic.AggregateDirty: {internal: true}, topic.AggregateDelta: {internal: true}, topic.AggregateTerm: {internal: true},
		topic.AggregateRepublish: {internal: true},
		topic.Revoked:            {internal: true}, topic.ScreenCommand: {internal: true}, topic.ScreenSeen: {internal: true},
		topic.Internal: {internal: true}, "": {},
	} {
		if got := (is{k.Live(), k.Internal(), k.Windowed(), k.Stream(), k.Safety()}); got != want {
			t.Errorf("kind %q: got %+v, want %+v", k, got, want)
		}
	}
}

// TestWindowsAreAggregates: topics name the windows aggregate computes,
// by the same names.
func TestWindowsAreAggregates(t *testing.T) {
	var agg []string
	for _, w := range aggregate.Windows {
		agg = append(agg, string(w))
	}
	if !slices.Equal(topic.Windows, agg) || topic.Today != string(aggregate.Today) {
		t.Errorf("topic.Windows %v (today %q), aggregate.Windows %v (today %q)", topic.Windows, topic.Today, agg, aggregate.Today)
	}
	for _, w := range aggregate.Windows {
		if got, want := w.Topic("79"), topic.KPI.Of("79").Over(string(w)).String(); got != want {
			t.Errorf("%s: Window.Topic %q, topic %q", w, got, want)
		}
	}
}

// TestAsyncAPIGrammar: the grammar docs/asyncapi.yaml gives clients (the
// Topic schema's pattern) takes exactly the live topics Parse takes, and
// its examples are names the server sends.
func TestAsyncAPIGrammar(t *testing.T) {
	raw, err := os.ReadFile("../docs/asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas struct {
				Topic struct {
					Pattern  string   `yaml:"pattern"`
					Examples []string `yaml:"examples"`
				} `yaml:"Topic"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	schema := doc.Components.Schemas.Topic
	pattern, err := regexp.Compile(schema.Pattern)
	if err != nil || schema.Pattern == "" || len(schema.Examples) == 0 {
		t.Fatalf("Topic schema: pattern %q (%v), %d examples", schema.Pattern, err, len(schema.Examples))
	}
	for _, e := range examples(t) {
		_, err := topic.ParseLive(e.Name)
		if got := pattern.MatchString(e.Name); got != (err == nil) {
			t.Errorf("%q: the documented pattern matches: %v; ParseLive: %v", e.Name, got, err)
		}
	}
	for _, name := range schema.Examples {
		if got, err := topic.ParseLive(name); err != nil || got.String() != name {
			t.Errorf("documented example %q: ParseLive %+v, %v; want a live topic's own name", name, got, err)
		}
	}
}

// FuzzParse: whatever parses, its canonical name parses to the same topic,
// is its own canonical name, and KindOf reads the same kind from both.
func FuzzParse(f *testing.F) {
	for _, e := range examples(f) {
		f.Add(e.Name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := topic.Parse(name)
		if err != nil {
			if _, lerr := topic.ParseLive(name); lerr == nil {
				t.Fatalf("ParseLive(%q) took what Parse refused (%v)", name, err)
			}
			return
		}
		s := got.String()
		again, err := topic.Parse(s)
		if err != nil || again != got {
			t.Fatalf("Parse(%q) = %+v; Parse(%q) = %+v, %v", name, got, s, again, err)
		}
		if again.String() != s {
			t.Fatalf("%q is not canonical: it parses to %q", s, again.String())
		}
		if k := topic.KindOf(name); k != got.Kind {
			t.Fatalf("KindOf(%q) = %q, Parse says %q", name, k, got.Kind)
		}
		if k := topic.KindOf(s); k != got.Kind {
			t.Fatalf("KindOf(%q) = %q, Parse says %q", s, k, got.Kind)
		}
		if _, err := topic.ParseLive(name); (err == nil) != got.Kind.Live() {
			t.Fatalf("ParseLive(%q): %v, but kind %q live: %v", name, err, got.Kind, got.Kind.Live())
		}
	})
}
