// Package layout states the rules of the module's import graph and checks a
// graph against them; its tests check the module's own graph, as go list
// reports it, so that a plain go test ./... (and make test) fails when an
// import breaks a rule, naming the import and the rule.
//
// The rules keep the layout README.md describes: geo and dashboards are
// leaves that anything may use; nothing imports a command; the api serves
// through interfaces it declares and never reaches into the ClickHouse
// store; the ingest core decodes, validates and writes records without
// knowing the HTTP framework that the api serves it through, and its
// wire-format decoders know nothing of the pipeline nor of the api;
// internal/ holds infrastructure, which knows nothing of the packages built
// on it.
//
// Concurrency: Rules and Check hold no state; Check may run from any
// goroutine.
package layout

import (
	"fmt"
	"strings"
)

// Module is the module path the rules speak of.
const Module = "github.com/openioc/ioc"

// Import is one edge of the graph: From imports To. Test marks an import
// made only by From's tests (its _test.go files, in package From or
// From_test).
type Import struct {
	From, To string
	Test     bool
}

// Rule is one constraint on the graph.
type Rule struct {
	// ID is the rule's short name, as the known violations cite it.
	ID string
	// Text says the rule in a sentence, as a failure prints it.
	Text string
	// Tests says whether the imports of tests must follow the rule too.
	Tests bool
	// Breaks says whether the import breaks the rule.
	Breaks func(from, to string) bool
}

// Violation is an import that breaks a rule.
type Violation struct {
	Rule   string // Rule.ID
	Import Import
	Text   string // Rule.Text
}

func (v Violation) String() string {
	by := ""
	if v.Import.Test {
		by = " (in its tests)"
	}
	return fmt.Sprintf("%s imports %s%s: breaks rule (%s) %s", v.Import.From, v.Import.To, by, v.Rule, v.Text)
}

// inModule says whether path is the module's or one of its packages.
func inModule(path string) bool {
	return path == Module || strings.HasPrefix(path, Module+"/")
}

// under says whether path is dir (relative to the module) or below it.
func under(path, dir string) bool {
	p := Module + "/" + dir
	return path == p || strings.HasPrefix(path, p+"/")
}

// decoders are the packages of ingest's wire-format decoders, and the one
// they share, relative to the module.
var decoders = []string{"ingest/cameraxml", "ingest/ngsild", "ingest/wire"}

// decoder says whether path is one of the decoders or below one.
func decoder(path string) bool {
	for _, d := range decoders {
		if under(path, d) {
			return true
		}
	}
	return false
}

// Rules are the module's rules.
var Rules = []Rule{
	{
		ID:   "a",
		Text: "geo and dashboards import nothing of the module: they are the leaves everything else builds on",
		Breaks: func(from, to string) bool {
			return (from == Module+"/geo" || from == Module+"/dashboards") && inModule(to) && to != from
		},
	},
	{
		ID:    "b",
		Text:  "no package imports anything under cmd/: commands wire packages, they are not libraries",
		Tests: true,
		Breaks: func(from, to string) bool {
			return under(to, "cmd") && !under(from, "cmd")
		},
	},
	{
		ID:    "c",
		Text:  "nothing under api/ imports internal/chstore: the api reads and writes through interfaces it declares",
		Tests: true,
		Breaks: func(from, to string) bool {
			return under(from, "api") && under(to, "internal/chstore")
		},
	},
	{
		ID:   "d",
		Text: "the ingest core imports no HTTP framework (github.com/gofiber/*, github.com/valyala/fasthttp): the api serves it",
		Breaks: func(from, to string) bool {
			return from == Module+"/ingest" &&
				(strings.HasPrefix(to, "github.com/gofiber/") || to == "github.com/valyala/fasthttp" || strings.HasPrefix(to, "github.com/valyala/fasthttp/"))
		},
	},
	{
		ID:    "e",
		Text:  "no package under internal/ imports a package of the module outside internal/: infrastructure knows nothing of what is built on it",
		Tests: true,
		Breaks: func(from, to string) bool {
			return under(from, "internal") && inModule(to) && !under(to, "internal")
		},
	},
	{
		ID:    "f",
		Text:  "ingest's wire-format decoders (ingest/cameraxml, ingest/ngsild, and ingest/wire they share) import nothing else of ingest nor anything under api/: they decode, the pipeline takes what they decode",
		Tests: true,
		Breaks: func(from, to string) bool {
			return decoder(from) && ((under(to, "ingest") && !decoder(to)) || under(to, "api"))
		},
	},
}

// Check returns the imports of graph that break rules, in the order of the
// rules and then of the graph.
func Check(graph []Import, rules []Rule) []Violation {
	var out []Violation
	for _, r := range rules {
		for _, imp := range graph {
			if imp.Test && !r.Tests {
				continue
			}
			if r.Breaks(imp.From, imp.To) {
				out = append(out, Violation{Rule: r.ID, Import: imp, Text: r.Text})
			}
		}
	}
	return out
}
