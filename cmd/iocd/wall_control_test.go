package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/qrcode/qrcodetest"
)

// The editor's screens panel, used by an admin on a real node running the
// default wall: it lists every screen with what it shows, its state's
// version, its page's last report and build; it switches screen s1 to
// another dashboard, which the server then lists and the kiosk page of s1
// (open in a second tab) shows; it has s1 identify itself, which the kiosk
// page flashes; it issues a kiosk link whose QR code, as the browser draws
// it, reads back as the link, which opens the wall page of s1; and it
// revokes that link, showing the server's refusal of a revocation without
// a reason first, as it shows a refused command's; all within the page's
// Content-Security-Policy. An operator gets the commands, not the links.
func TestWallControl(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, testConfig(t))
	w := startWallAPI(t, n)
	dir := artifacts(t)
	// Dashboards no playlist shows, so that seeing one on s1 is the
	// command's doing and not the rotation's; ctl-gone is deleted while the
	// panel still offers it.
	for _, id := range []string{"ctl-test", "ctl-gone"} {
		w.store("dashboards/"+id, []byte(`{"id":"`+id+`","title":{"vi":"Bảng thử điều khiển","en":"Control test"},"area":"79","window":"today",
		"theme":"wall","grid":{"columns":24,"rows":12},"widgets":[
		{"id":"head","type":"header","x":0,"y":0,"w":20,"h":2},{"id":"clock","type":"clock","x":20,"y":0,"w":4,"h":2},
		{"id":"recv","type":"kpi","x":0,"y":2,"w":6,"h":4,"options":{"indicator":"dossiers_received"}}]}`))
	}

	type listing struct {
		ID      string `json:"id"`
		Wall    string `json:"wall"`
		Version string `json:"version"`
		State   struct {
			Dashboard string `json:"dashboard"`
			Override  bool   `json:"override"`
		} `json:"state"`
		LastSeen  string `json:"last_seen"`
		PageBuild string `json:"page_build"`
	}
	screens := func() map[string]listing {
		t.Helper()
		var list struct {
			Screens []listing `json:"screens"`
		}
		if code := n.get("/api/v1/screens", adminToken, &list); code != 200 {
			t.Fatalf("GET /api/v1/screens: %d", code)
		}
		out := map[string]listing{}
		for _, l := range list.Screens {
			out[l.ID] = l
		}
		return out
	}

	// s1's wall PC, with a kiosk token of its own; its page reports itself
	// as a page would (build and the state version it shows).
	var issued struct {
		Token string `json:"token"`
	}
	if code := n.post("/api/v1/screens/s1/tokens", adminToken, "application/json", []byte(`{"subject":"wall pc s1"}`), &issued); code != 201 {
		t.Fatalf("a kiosk token for s1: %d", code)
	}
	kiosk := openTab(t, browser, w.base+"/wall/?screen=s1&access_token="+issued.Token, chromedp.EmulateViewport(1280, 720))
	kiosk.await(30*time.Second, "the kiosk shows the wall's dashboard", `(d => d.dashboard && document.querySelector('.board') && document.querySelector('.board').dataset.rendered === 'true' && d.dashboard)(document.documentElement.dataset)`)
	if code := n.post("/api/v1/screens/s1/seen", issued.Token, "application/json", []byte(`{"build":"page-build-7","version":"`+screens()["s1"].Version+`"}`), nil); code != 204 {
		t.Fatalf("s1's report of itself: %d", code)
	}

	ed := openTab(t, browser, w.base+"/wall/editor.html?dashboard=ops-79&access_token="+adminToken, chromedp.EmulateViewport(1600, 1100), cspEvents)
	ed.await(20*time.Second, "the screens listed", `document.getElementById('ed-screens').dataset.loaded`)
	card := func(id string) string {
		return fmt.Sprintf(`document.querySelector('#sc-list li[data-screen=%q]')`, id)
	}
	listed := screens()
	ed.expectEqual("every screen of the server, in its order", `Array.from(document.querySelectorAll('#sc-list li')).map(li => li.dataset.screen).join(',')`, "desk,s1,s2,s3,s4,s5,s6")
	if len(listed) != 7 {
		t.Fatalf("the server lists %d screens, want the default walls' seven", len(listed))
	}
	ed.expectEqual("s1's wall", card("s1")+`.querySelector('.sc-wall').textContent`, listed["s1"].Wall)
	if listed["s1"].LastSeen == "" || listed["s1"].PageBuild != "page-build-7" {
		t.Fatalf("the server lists s1 as last seen %q with build %q, want its report", listed["s1"].LastSeen, listed["s1"].PageBuild)
	}
	ed.awaitEqual(10*time.Second, "s1's last report and build", `(c => [c.dataset.lastSeen, c.querySelector('.sc-build').textContent.includes('page-build-7')].join(' '))(`+card("s1")+`)`,
		listed["s1"].LastSeen+" true")
	ed.expectEqual("s2 never reported", card("s2")+`.querySelector('.sc-seen').textContent`, "chưa báo never reported")
	ed.expectEqual("s1's state version, as the server lists it", `(c => c.querySelector('.sc-version code').textContent + ' ' + c.dataset.version)(`+card("s1")+`)`,
		listed["s1"].Version+" "+listed["s1"].Version)
	ed.expectEqual("no kiosk link yet", `String(document.querySelectorAll('.sc-kiosk').length)`, "0")
	ed.expectEqual("a dashboard to choose", `Array.from(`+card("s1")+`.querySelectorAll('select[data-field="dashboard"] option')).map(o => o.value).includes('ctl-test') ? 'yes' : 'no'`, "yes")

	// Show ctl-test on s1.
	ed.do("choose ctl-test for s1", chromedp.Evaluate[chromedp.Void](`(s => { s.value = 'ctl-test'; s.dispatchEvent(new Event('change', {bubbles: true})); })(`+card("s1")+`.querySelector('select[data-field="dashboard"]'))`))
	ed.do("show it", chromedp.Click(chromedp.CSS(`#sc-list li[data-screen="s1"] button[data-op="show"]`)))
	ed.awaitEqual(10*time.Second, "the command taken", card("s1")+`.dataset.result`, "ok")
	eventually(t, 10*time.Second, func() (bool, string) {
		s := screens()["s1"]
		return s.State.Dashboard == "ctl-test" && s.State.Override, fmt.Sprintf("GET /api/v1/screens has s1 showing %q (override %v)", s.State.Dashboard, s.State.Override)
	})
	ed.awaitEqual(10*time.Second, "the panel shows what s1 shows", card("s1")+`.dataset.dashboard + ' ' + `+card("s1")+`.dataset.override`, "ctl-test true")
	ed.awaitEqual(10*time.Second, "and its new state version", card("s1")+`.dataset.version`, screens()["s1"].Version)
	kiosk.await(20*time.Second, "the kiosk shows ctl-test", `(d => d.dashboard === 'ctl-test' && document.querySelectorAll('.board').length === 1 &&
		document.querySelector('.board').dataset.rendered === 'true' && document.querySelector('.board [data-widget="recv"]') && document.getElementById('message').hidden)(document.documentElement.dataset)`)

	// Identify s1: its name flashes on its page.
	ed.do("identify s1", chromedp.Click(chromedp.CSS(`#sc-list li[data-screen="s1"] button[data-op="identify"]`)))
	ed.awaitEqual(10*time.Second, "the identify command taken", card("s1")+`.dataset.sent + ' ' + `+card("s1")+`.dataset.result`, `{"op":"identify"} ok`)
	kiosk.await(10*time.Second, "the kiosk flashes its name", `(e => !e.hidden && e.textContent.includes('s1') && e.textContent)(document.getElementById('identify'))`)
	saveScreenshot(t, kiosk, filepath.Join(dir, "control-s1-identify.png"), "")

	// A new kiosk link for s1: its QR code, as the page shows it, reads back
	// as the link, and the link opens s1's wall page.
	ed.do("a new kiosk link for s1", chromedp.Click(chromedp.CSS(`#sc-list li[data-screen="s1"] button[data-op="kiosk"]`)))
	ed.await(10*time.Second, "the link shown", card("s1")+`.querySelector('.sc-kiosk img.sc-qr') && `+card("s1")+`.querySelector('.sc-kiosk img.sc-qr').complete`)
	link := ed.value(card("s1") + `.querySelector('.sc-kiosk').dataset.link`)
	ed.expectEqual("the link in its field", card("s1")+`.querySelector('.sc-kiosk input.sc-link').value`, link)
	ed.do("scroll to the QR code", chromedp.Evaluate[chromedp.Void](card("s1")+`.querySelector('.sc-kiosk').scrollIntoView({block: 'center'})`))
	shot := func() []byte {
		ctx, cancel := context.WithTimeout(ed.ctx, 30*time.Second)
		defer cancel()
		b, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`#sc-list li[data-screen="s1"] .sc-kiosk img.sc-qr`)))
		if err != nil {
			t.Fatalf("screenshot of the QR code: %v", err)
		}
		return b
	}()
	if err := os.WriteFile(filepath.Join(dir, "control-kiosk-qr.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := qrcodetest.Decode(img); err != nil || got != link {
		t.Fatalf("the QR code shown reads back as %q (%v), want the link %q", got, err, link)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	open := func() *http.Response {
		t.Helper()
		resp, err := noFollow.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := open()
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("screen") != "s1" {
		t.Fatalf("GET %s: %d to %q, want 302 to s1's wall page", link, resp.StatusCode, resp.Header.Get("Location"))
	}
	saveScreenshot(t, ed, filepath.Join(dir, "control-panel.png"), "#ed-screens")

	// Revoked from the panel: without a reason the server refuses, and says
	// why; with one, the link answers 410.
	box := card("s1") + `.querySelector('.sc-kiosk')`
	ed.do("revoke without a reason", chromedp.Click(chromedp.CSS(`#sc-list li[data-screen="s1"] .sc-kiosk button[data-op="revoke"]`)))
	ed.awaitEqual(10*time.Second, "the server's refusal shown", `(o => o.dataset.kind === 'error' && o.textContent.includes('needs a reason'))(`+box+`.querySelector('.sc-link-status'))`, "true")
	ed.do("give a reason", chromedp.SendKeys(chromedp.CSS(`#sc-list li[data-screen="s1"] .sc-kiosk input.sc-reason`), "thử nghiệm (test)"))
	ed.do("revoke", chromedp.Click(chromedp.CSS(`#sc-list li[data-screen="s1"] .sc-kiosk button[data-op="revoke"]`)))
	ed.awaitEqual(10*time.Second, "revoked", box+`.dataset.revoked`, "true")
	ed.expectEqual("its QR code taken away", `String(!`+box+`.querySelector('img.sc-qr'))`, "true")
	if resp := open(); resp.StatusCode != http.StatusGone {
		t.Errorf("the revoked link: %d, want 410", resp.StatusCode)
	}

	// A refused command shows the server's message: ctl-gone deleted under
	// the panel by someone else, then chosen.
	resp = n.do("DELETE", "/api/v1/dashboards/ctl-gone", adminToken, "", nil)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("delete ctl-gone: %d", resp.StatusCode)
	}
	ed.do("show the deleted ctl-gone on s1", chromedp.Evaluate[chromedp.Void](`(s => { s.value = 'ctl-gone'; s.dispatchEvent(new Event('change', {bubbles: true})); })(`+card("s1")+`.querySelector('select[data-field="dashboard"]'))`),
		chromedp.Click(chromedp.CSS(`#sc-list li[data-screen="s1"] button[data-op="show"]`)))
	msg := ed.await(10*time.Second, "the refusal shown", `(c => c.dataset.result === 'error' && c.querySelector('.sc-status').textContent)(`+card("s1")+`)`)
	var server struct {
		Error string `json:"error"`
	}
	body, _ := json.Marshal(map[string]string{"op": "show", "dashboard": "ctl-gone"})
	if code := n.post("/api/v1/screens/s1/command", adminToken, "application/json", body, &server); code != 400 || server.Error == "" || !strings.Contains(msg, server.Error) || !strings.Contains(msg, "HTTP 400") {
		t.Errorf("the refusal shown: %q, want the server's own message (%d %q)", msg, code, server.Error)
	}
	kiosk.expectEqual("s1 still shows ctl-test", `document.documentElement.dataset.dashboard`, "ctl-test")
	// An operator commands the screens of its areas, and is offered no
	// kiosk link, which only an admin issues.
	op := openTab(t, browser, w.base+"/wall/editor.html?dashboard=ops-79&access_token="+issueTokenAs(t, "duty officer", auth.Operator, "79"), chromedp.EmulateViewport(1600, 1100))
	op.await(20*time.Second, "the operator's screens listed", `document.getElementById('ed-screens').dataset.loaded`)
	op.expectEqual("the operator's buttons for s1", `Array.from(`+card("s1")+`.querySelectorAll('button[data-op]')).map(b => b.dataset.op).join(',')`, "show,play,reload,identify")
	op.noExceptions()

	ed.expectEqual("the editor within its page's policy (the QR code is an image of a data: URL, which it allows)", `JSON.stringify(window.__csp)`, "[]")
	ed.noExceptions()
	kiosk.noExceptions()
}

// cspEvents has a tab keep, in window.__csp, every violation of its page's
// Content-Security-Policy that the page is told of: style attributes too,
// which Chromium does not write to the log recordCSPViolations reads.
var cspEvents = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `(() => {
		window.__csp = [];
		document.addEventListener('securitypolicyviolation', (e) => { window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || '')); });
	})();`})
	return err
})
