package layout

import (
	"slices"
	"testing"
)

// TestRulesReport is each rule's negative control: a graph that breaks the
// rule, and one beside it that does not, so that a rule which stopped
// seeing its imports fails here rather than passing on the module.
func TestRulesReport(t *testing.T) {
	m := func(p string) string { return Module + "/" + p }
	cases := []struct {
		rule    string
		breaks  []Import
		follows []Import
	}{
		{rule: "a",
			breaks: []Import{
				{From: m("geo"), To: m("topic")},
				{From: m("dashboards"), To: m("internal/bus")},
			},
			follows: []Import{
				{From: m("geo"), To: "github.com/paulmach/orb"},
				{From: m("api"), To: m("geo")},
				{From: m("dashboards"), To: m("report"), Test: true}, // a test may check against the catalog
				{From: m("geo/internal/gendata"), To: m("geo")},
			}},
		{rule: "b",
			breaks: []Import{
				{From: m("api"), To: m("cmd/iocd")},
				{From: m("report"), To: m("cmd/iocbench/load"), Test: true},
			},
			follows: []Import{
				{From: m("cmd/iocd"), To: m("api")},
				{From: m("cmd/iocbench"), To: m("cmd/iocbench/load")},
				{From: m("api"), To: m("command")},
			}},
		{rule: "c",
			breaks: []Import{
				{From: m("api"), To: m("internal/chstore")},
				{From: m("api/auth"), To: m("internal/chstore"), Test: true},
			},
			follows: []Import{
				{From: m("api"), To: m("versioned")},
				{From: m("versioned"), To: m("internal/chstore")},
				{From: m("apis"), To: m("internal/chstore")},
			}},
		{rule: "d",
			breaks: []Import{
				{From: m("ingest"), To: "github.com/gofiber/fiber/v2"},
				{From: m("ingest"), To: "github.com/gofiber/websocket/v2"},
				{From: m("ingest"), To: "github.com/valyala/fasthttp"},
				{From: m("ingest"), To: "github.com/valyala/fasthttp/fasthttpadaptor"},
			},
			follows: []Import{
				{From: m("ingest"), To: "net/http"},
				{From: m("ingest"), To: "github.com/valyala/bytebufferpool"},
				{From: m("ingest"), To: "github.com/gofiber/fiber/v2", Test: true},
				{From: m("ingest/backfill"), To: "github.com/gofiber/fiber/v2"},
				{From: m("api"), To: "github.com/gofiber/fiber/v2"},
			}},
		{rule: "e",
			breaks: []Import{
				{From: m("internal/chstore"), To: m("versioned")},
				{From: m("internal/bus"), To: m("topic"), Test: true},
			},
			follows: []Import{
				{From: m("internal/testenv"), To: m("internal/chstore")},
				{From: m("api/internal/apitest"), To: m("api/auth")},
				{From: m("internal/bus"), To: "github.com/redis/go-redis/v9"},
			}},
		{rule: "f",
			breaks: []Import{
				{From: m("ingest/cameraxml"), To: m("ingest")},
				{From: m("ingest/ngsild"), To: m("ingest"), Test: true},
				{From: m("ingest/ngsild"), To: m("api")},
				{From: m("ingest/wire"), To: m("ingest/ingesttest")},
				{From: m("ingest/cameraxml"), To: m("api/auth"), Test: true},
			},
			follows: []Import{
				{From: m("ingest/cameraxml"), To: m("ingest/wire")},
				{From: m("ingest/ngsild"), To: m("device")},
				{From: m("ingest"), To: m("ingest/ngsild")},
				{From: m("ingest/backfill"), To: m("ingest")},
				{From: m("ingest/ngsildx"), To: m("ingest")}, // a name that only starts like a decoder's
			}},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			i := slices.IndexFunc(Rules, func(r Rule) bool { return r.ID == c.rule })
			if i < 0 {
				t.Fatalf("no rule (%s)", c.rule)
			}
			got := Check(append(slices.Clone(c.breaks), c.follows...), Rules[i:i+1])
			var reported []Import
			for _, v := range got {
				reported = append(reported, v.Import)
				if v.Rule != c.rule || v.Text != Rules[i].Text {
					t.Errorf("%v: reported as rule (%s) %q", v.Import, v.Rule, v.Text)
				}
			}
			if !slices.Equal(reported, c.breaks) {
				t.Errorf("rule (%s) reported %v, want exactly %v", c.rule, reported, c.breaks)
			}
		})
	}
}

// TestViolationNamesImportAndRule: a failure says which import breaks
// which rule, and that it is a test's import when it is.
func TestViolationNamesImportAndRule(t *testing.T) {
	v := Check([]Import{{From: Module + "/api", To: Module + "/internal/chstore", Test: true}}, Rules)
	if len(v) != 1 {
		t.Fatalf("got %v, want one violation", v)
	}
	want := "github.com/openioc/ioc/api imports github.com/openioc/ioc/internal/chstore (in its tests): breaks rule (c) nothing under api/ imports internal/chstore: the api reads and writes through interfaces it declares"
	if got := v[0].String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
