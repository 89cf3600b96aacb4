package main

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/openioc/ioc/api/auth"
)

// corsPage is an application on another origin, as a MapLibre or
// OpenLayers app would be: it reads the node's address and a token from
// its fragment, calls the API with the token as a bearer header, and
// writes what each call gave into window.results ("blocked" when the
// browser refused to let it read the answer).
const corsPage = `<!doctype html><meta charset="utf-8"><title>another origin</title><script>
const [api, token] = decodeURIComponent(location.hash.slice(1)).split('|');
const auth = {Authorization: 'Bearer ' + token};
async function call(path, opts) {
  try {
    const r = await fetch(api + path, opts);
    await r.arrayBuffer();
    return r.status + (r.headers.get('X-Request-Id') ? ' with id' : ' without id');
  } catch (e) {
    return 'blocked';
  }
}
(async () => {
  const out = {};
  out.kpis = await call('/api/v1/areas/79/kpis', {headers: auth});
  out.tilejson = await call('/tiles/vn-2025.commune.kpi.json', {headers: auth});
  out.tile = await call('/tiles/vn-2025.commune/8/203/120.mvt', {headers: auth});
  out.geojson = await call('/api/v1/layers/vn-2025.commune.geojson?parent=79', {headers: auth});
  out.post = await call('/api/v1/alarms/none/ack', {method: 'POST', headers: {...auth, 'Content-Type': 'application/json'}, body: '{}'});
  out.refused = await call('/api/v1/kpis', {});
  window.results = JSON.stringify(out);
})();
</script>`

// servePage serves corsPage at / on a free loopback port until the test
// ends, and returns its origin.
func servePage(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(corsPage))
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// Browsers on another origin could not use the API: no CORS headers, and
// OPTIONS answered 404. A page on an origin listed in IOC_CORS_ORIGINS now
// reads TileJSON, tiles, GeoJSON and REST with a bearer token, refusals
// and request ids included; a page on an origin not listed is refused by
// the browser.
func TestBrowserOnAnotherOrigin(t *testing.T) {
	browser := newBrowser(t)
	allowed, other := servePage(t), servePage(t)
	cfg := testConfig(t)
	cfg.CORSOrigins = []string{allowed}
	n := startNode(t, cfg)
	frag := "#" + n.base + "|" + issueToken(t, auth.Viewer, "79")

	tab := openTab(t, browser, allowed+"/"+frag)
	tab.waitMatch(30*time.Second, "calls from the allowed origin", `window.results || ''`, "every call read",
		func(got string) bool { return got != "" })
	got := tab.value(`window.results`)
	for _, want := range []string{`"kpis":"200 with id"`, `"tilejson":"200 with id"`, `"geojson":"200 with id"`,
		`"post":"403 with id"`, `"refused":"401 with id"`} {
		if !strings.Contains(got, want) {
			t.Errorf("from %s: got %s, want %s", allowed, got, want)
		}
	}
	if !strings.Contains(got, `"tile":"200 with id"`) && !strings.Contains(got, `"tile":"204 with id"`) {
		t.Errorf("from %s: got %s, want the tile read (200 or 204)", allowed, got)
	}
	tab.noExceptions()

	tab = openTab(t, browser, other+"/"+frag)
	tab.waitEqual(30*time.Second, "calls from an origin not listed", `window.results || ''`,
		`{"kpis":"blocked","tilejson":"blocked","tile":"blocked","geojson":"blocked","post":"blocked","refused":"blocked"}`)
}

// The built-in page works under its Content-Security-Policy (no violation
// while it loads, connects and draws its map), and the policy holds: an
// inline handler injected into it does not run.
func TestPageUnderCSPInChromium(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, testConfig(t))
	logViolations, cspViolations := recordCSPViolations()
	tab := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "79")+"&area=79", logViolations)
	tab.waitEqual(30*time.Second, "commune rows", `String(document.querySelectorAll('#communes tr[data-area]').length)`, "168")
	tab.waitEqual(30*time.Second, "units on the map", mapUnits, "168")
	tab.waitEqual(30*time.Second, "connection state", `document.getElementById('connection').dataset.state`, "connected")
	if violations := cspViolations(); len(violations) > 0 {
		t.Errorf("the page broke its own policy: %q", violations)
	}

	tab.do("inject an inline handler", chromedp.Evaluate[chromedp.Void](`(() => {
		document.addEventListener('securitypolicyviolation', e => { window.violated = e.violatedDirective; });
		const img = document.createElement('img');
		img.setAttribute('onerror', 'window.inlineRan = true');
		img.src = 'data:,not-an-image';
		document.body.append(img);
	})()`))
	tab.waitMatch(10*time.Second, "violation reported", `window.violated || ''`, "a script-src violation",
		func(got string) bool { return strings.HasPrefix(got, "script-src") })
	tab.expectEqual("inline handler ran", `String(window.inlineRan === true)`, "false")
}

// recordCSPViolations returns an action that has a tab report the page's
// Content Security Policy violations, and a function listing them so far:
// those Chromium writes to its log, and those it tells the page of (a
// style attribute blocked, which it does not log), which the page writes
// to its console.
func recordCSPViolations() (chromedp.Action[chromedp.Void], func() []string) {
	var mu sync.Mutex
	var violations []string
	add := func(text string) {
		mu.Lock()
		violations = append(violations, text)
		mu.Unlock()
	}
	record := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if err := chromedp.Listen(ctx, func(ev any) {
			switch e := ev.(type) {
			case *cdplog.EventEntryAdded:
				if strings.Contains(e.Entry.Text, "Content Security Policy") {
					add(e.Entry.Text)
				}
			case *runtime.EventConsoleAPICalled:
				for _, a := range e.Args {
					if s := string(a.Value); strings.Contains(s, "Content Security Policy violation") {
						add(s)
					}
				}
			}
		}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `document.addEventListener('securitypolicyviolation',
			(e) => console.warn('Content Security Policy violation: ' + e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || '')))`}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tg, runtime.Enable, cdp.Empty{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, cdplog.Enable, cdp.Empty{})
		return err
	})
	return record, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(violations)
	}
}
