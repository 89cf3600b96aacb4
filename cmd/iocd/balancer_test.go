package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/testenv"
)

// Two nodes behind the shipped HAProxy configuration, one URL: the
// built-in page and ingest go through the balancer. Killing the node the
// page's websocket is on (kill -9, no goodbye) moves the page to the other
// node by itself, where it resumes and shows the next dossier; every
// dossier acknowledged through the balancer is counted once.
func TestScreenThroughTheBalancerSurvivesItsNodeKilled(t *testing.T) {
	browser := newBrowser(t)
	env := processEnv(t)
	env["IOC_REDIS_ADDR"] = testenv.RedisAddr(t)
	env["IOC_LEASE_TTL"] = "1s"
	pa, pb := startProcess(t, "a", env), startProcess(t, "b", env)
	lb := testenv.StartHAProxy(t, strings.TrimPrefix(pa.base, "http://"), strings.TrimPrefix(pb.base, "http://"))
	front := &node{t: t, base: "http://" + lb.Addr}

	tab := openTab(t, browser, front.base+"/?access_token="+issueToken(t, auth.Viewer, "79")+"&area=79")
	tab.waitEqual(30*time.Second, "connection state", `document.getElementById('connection').dataset.state`, "connected")
	if code, r := front.ingest(event("lb1", "d1", "26740", "received", "online", time.Minute)); code != 202 || r.Accepted != 1 {
		t.Fatalf("ingest through the balancer: got %d %+v, want 1 accepted", code, r)
	}
	tab.waitEqual(30*time.Second, "province received", provinceCell("dossiers_received"), "1")

	// The page's node is the one with a websocket client.
	var on, other *process
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		ca, cb := metricValue(t, pa.node(), "ioc_ws_clients"), metricValue(t, pb.node(), "ioc_ws_clients")
		switch {
		case ca == 1 && cb == 0:
			on, other = pa, pb
		case cb == 1 && ca == 0:
			on, other = pb, pa
		}
		return on != nil, fmt.Sprintf("websocket clients: a %v, b %v; want 1 on one node", ca, cb)
	})
	on.kill()
	killed := time.Now()
	tab.waitEqual(30*time.Second, "connection state after the kill", `document.getElementById('connection').dataset.state`, "connected")
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		c := metricValue(t, other.node(), "ioc_ws_clients")
		return c == 1, fmt.Sprintf("%s has %v websocket clients, want the page", other.name, c)
	})
	// Ingest through the balancer goes on: HAProxy sends a request to the
	// dead node until two health checks fail, and a refusal or a broken
	// connection acknowledges nothing; the client sends again.
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		code, _ := front.ingest(event("lb2", "d2", "26743", "received", "online", time.Minute))
		return code == 202, fmt.Sprintf("ingest after the kill: %d", code)
	})
	tab.waitEqual(30*time.Second, "province received after the kill", provinceCell("dossiers_received"), "2")
	t.Logf("the page on %s moved to %s and showed the next dossier %v after the kill", on.name, other.name, time.Since(killed).Round(time.Millisecond))
	if got := num(front.kpis("79", "24h").KPIs["dossiers_received"]); got != 2 {
		t.Errorf("dossiers received through the balancer: %v, want the 2 acknowledged", got)
	}
	tab.noExceptions()
}
