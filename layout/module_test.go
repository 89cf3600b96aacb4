package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// goCommand is the go binary: the one on PATH, else the toolchain's that
// runs the test.
func goCommand(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// listed is what go list -json says of a package, as far as the rules need.
type listed struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// moduleGraph is the module's import graph: every import of each of its
// packages and of their tests, from go list -deps -json. Packages outside
// the module are listed by -deps too, but only the module's own imports
// are rules' business.
func moduleGraph(t *testing.T) []Import {
	t.Helper()
	cmd := exec.Command(goCommand(t), "list", "-deps", "-json", Module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps -json %s/...: %v\n%s", Module, err, stderr.String())
	}
	var graph []Import
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("read go list's answer: %v", err)
		}
		if !inModule(p.ImportPath) {
			continue
		}
		if p.Error != nil {
			t.Fatalf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		for _, to := range p.Imports {
			graph = append(graph, Import{From: p.ImportPath, To: to})
		}
		for _, to := range append(p.TestImports, p.XTestImports...) {
			if to != p.ImportPath {
				graph = append(graph, Import{From: p.ImportPath, To: to, Test: true})
			}
		}
	}
	if len(graph) == 0 {
		t.Fatal("go list listed no import of the module")
	}
	return graph
}

// TestModuleLayout checks the module's import graph against Rules.
func TestModuleLayout(t *testing.T) {
	graph := moduleGraph(t)
	// A graph that says nothing would pass: the imports that wire a node
	// must be in it.
	for _, want := range []Import{
		{From: Module + "/cmd/iocd", To: Module + "/api"},
		{From: Module + "/internal/testenv", To: Module + "/internal/chstore"},
		{From: Module + "/api", To: Module + "/versioned", Test: true},
	} {
		if !slices.Contains(graph, want) {
			t.Fatalf("the graph lacks %s → %s (test: %t); imports read: %d", want.From, want.To, want.Test, len(graph))
		}
	}
	for _, v := range Check(graph, Rules) {
		t.Error(v)
	}
}
