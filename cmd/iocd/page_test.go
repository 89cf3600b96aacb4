package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openioc/ioc/dashboards"
)

// The built-in page's pure modules (how figures and times are written,
// which indicators are columns and how rows sort and filter, what the
// ticker of camera events holds), run by a test page in Chromium next to
// the page's own modules and the wall's they import; the page lists each
// failed check.
func TestDashboardPageFunctions(t *testing.T) {
	assets := http.FileServer(dashboards.Assets())
	if checks := runUnitPage(t, "testdata/pageunit", map[string]http.Handler{"/page/": assets, "/wall/": assets}); checks < 55 {
		t.Errorf("checks run: got %d, want the test page's 60 or so", checks)
	}
}

// unitPage runs a folder's unit_test.js, a module that writes its result
// to #result as JSON: {"checks": n, "failures": […]}.
const unitPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>module tests</title>
<script type="module" src="unit_test.js"></script>
</head>
<body>
<pre id="result"></pre>
</body>
</html>
`

// runUnitPage serves dir's unit_test.js on a test page next to the
// modules of modules (path prefix → its files), opens it in Chromium,
// reports each check it lists as failed, and returns how many checks it
// ran.
func runUnitPage(t *testing.T, dir string, modules map[string]http.Handler) int {
	t.Helper()
	browser := newBrowser(t)
	mux := http.NewServeMux()
	for prefix, h := range modules {
		mux.Handle(prefix, h)
	}
	mux.HandleFunc("/unit_test.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(unitPage))
	})
	mux.Handle("/", http.FileServer(http.Dir(dir)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tab := openTab(t, browser, srv.URL+"/unit_test.html")
	got := tab.await(30*time.Second, "test page result", `document.getElementById('result').textContent`)
	var res struct {
		Checks   int      `json:"checks"`
		Failures []string `json:"failures"`
	}
	if err := json.Unmarshal([]byte(got), &res); err != nil {
		t.Fatalf("test page result %q: %v", got, err)
	}
	for _, f := range res.Failures {
		t.Error(f)
	}
	tab.noExceptions()
	return res.Checks
}
