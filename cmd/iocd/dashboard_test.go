package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/headless"
)

// chromiumPath is Debian's chromium package.
const chromiumPath = headless.Chromium

// The built-in page, in a real headless Chromium against a real node: it
// lists the province's communes and maps them, follows the live websocket
// across a restart, and explains what is wrong when it cannot show anything.
//
// Set IOC_DASHBOARD_SCREENSHOT=/path/to/file.png to also save a screenshot
// of the page with some figures in it.
func TestDashboardInChromium(t *testing.T) {
	browser := newBrowser(t)
	cfg := testConfig(t)
	n := startNode(t, cfg)

	t.Run("no token", func(t *testing.T) {
		tab := openTab(t, browser, n.base+"/?area=79")
		tab.waitMatch(30*time.Second, "message", visibleMessage, "a message that mentions access_token",
			func(got string) bool {
				return strings.Contains(got, "access_token") && strings.Contains(got, "make run")
			})
		tab.expectEqual("table hidden", `String(document.getElementById('content').hidden)`, "true")
		tab.noExceptions()
	})

	t.Run("token for another area", func(t *testing.T) {
		tab := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "26740")+"&area=79")
		tab.waitMatch(30*time.Second, "message", visibleMessage, `a message that contains "does not cover"`,
			func(got string) bool { return strings.Contains(got, "does not cover") })
		tab.expectEqual("table hidden", `String(document.getElementById('content').hidden)`, "true")
		tab.expectEqual("connection state", `document.getElementById('connection').dataset.state`, "offline")
		tab.expectEqual("token left in location.href", `String(location.href.includes('access_token'))`, "false")
		tab.noExceptions()
	})

	t.Run("commune token on its own commune", func(t *testing.T) {
		tab := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "26740")+"&area=26740")
		tab.waitEqual(30*time.Second, "connection state", `document.getElementById('connection').dataset.state`, "connected")
		tab.expectEqual("heading", `document.getElementById('area-name').textContent`, "Phường Sài Gòn")
		tab.expectEqual("ancestors", `document.getElementById('ancestors').textContent`, "Hồ Chí Minh")
		tab.expectEqual("received", provinceCell("dossiers_received"), "0")
		tab.expectEqual("rows", `String(document.querySelectorAll('#communes tr[data-area]').length)`, "0")
		tab.expectEqual("empty-table note shown", `String(!document.getElementById('empty').hidden)`, "true")
		tab.expectEqual("map hidden", mapHidden, "true")
		tab.expectEqual("units on the map", mapUnits, "0")
		tab.noExceptions()
	})

	t.Run("map geometry unavailable", func(t *testing.T) {
		tab := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "79")+"&area=79", blockURLs("*://*:*/api/v1/layers/*"))
		tab.waitEqual(30*time.Second, "commune rows", `String(document.querySelectorAll('#communes tr[data-area]').length)`, "168")
		tab.waitEqual(30*time.Second, "connection state", `document.getElementById('connection').dataset.state`, "connected")
		tab.waitMatch(30*time.Second, "notice", visibleNotice, "a notice that the map is unavailable",
			func(got string) bool { return strings.Contains(got, "bản đồ") })
		tab.expectEqual("map hidden", mapHidden, "true")
		tab.noExceptions()
	})

	// The live path, end to end.
	tab := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "79")+"&area=79")
	tab.waitEqual(30*time.Second, "commune rows", `String(document.querySelectorAll('#communes tr[data-area]').length)`, "168")
	tab.waitEqual(30*time.Second, "units on the map", mapUnits, "168")
	tab.waitEqual(30*time.Second, "connection state", `document.getElementById('connection').dataset.state`, "connected")
	tab.expectEqual("URL after the token was taken out of it", `location.pathname + location.search`, "/?area=79")
	tab.expectEqual("token left in location.href", `String(location.href.includes('access_token'))`, "false")
	tab.expectEqual("heading", `document.getElementById('area-name').textContent`, "Thành phố Hồ Chí Minh")
	tab.expectEqual("window selector", `document.getElementById('window').value`, "today")
	tab.expectEqual("received in 26740 before ingest", communeCell("26740", "dossiers_received"), "0")
	tab.expectEqual("online rate in 26740 before ingest", communeCell("26740", "online_rate"), "–")
	tab.expectEqual("province received before ingest", provinceCell("dossiers_received"), "0")
	tab.expectEqual("map shown", mapHidden, "false")
	tab.expectEqual("map indicator", `document.getElementById('map-kpi').value`, "online_rate")
	tab.expectEqual("online rate of 26740 on the map before ingest", mapValue("26740"), "")
	tab.expectEqual("fill of 26740 before ingest", mapFill("26740"), noDataFill)

	if code, r := n.ingest(event("p1", "d1", "26740", "received", "online", 0)); code != 202 || r.Accepted != 1 {
		t.Fatalf("ingest: got %d %+v, want 202 with 1 accepted", code, r)
	}
	// The page never polls REST: only the websocket can bring these.
	tab.waitEqual(15*time.Second, "received in 26740 after ingest", communeCell("26740", "dossiers_received"), "1")
	tab.waitEqual(15*time.Second, "province received after ingest", provinceCell("dossiers_received"), "1")
	tab.expectEqual("online rate in 26740 after ingest", communeCell("26740", "online_rate"), "100,0%")
	tab.expectEqual("received in 26743", communeCell("26743", "dossiers_received"), "0")

	// The map recolours from map/79, which carries every commune's figures.
	tab.waitEqual(15*time.Second, "online rate of 26740 on the map after ingest", mapValue("26740"), "1")
	tab.waitMatch(15*time.Second, "fill of 26740 after ingest", mapFill("26740"), "a colour, not the no-data fill",
		func(got string) bool { return got != "" && got != noDataFill })
	tab.expectEqual("online rate of 26743 on the map", mapValue("26743"), "")
	tab.do("show received on the map", chromedp.Evaluate[chromedp.Void](
		`(s => { s.value = 'dossiers_received'; s.dispatchEvent(new Event('change')); })(document.getElementById('map-kpi'))`))
	tab.waitEqual(15*time.Second, "received in 26740 on the map", mapValue("26740"), "1")
	tab.expectEqual("received in 26743 on the map", mapValue("26743"), "0")
	tab.expectEqual("legend maximum", `document.getElementById('legend-max').textContent`, "1")
	if a, b := tab.value(mapFill("26740")), tab.value(mapFill("26743")); a == b || a == noDataFill || b == noDataFill {
		t.Errorf("fills of 26740 (1 received) and 26743 (none): got %q and %q, want two different colours", a, b)
	}

	// Pointing at a commune names it; clicking it picks its row.
	x, y := tab.pointIn("26740")
	tab.do("point at 26740 on the map", chromedp.MouseEvent(chromedp.MouseMoved, x, y))
	tab.waitMatch(5*time.Second, "map tooltip", mapTip, `the name and figure of 26740`,
		func(got string) bool {
			return strings.Contains(got, "Sài Gòn") && strings.Contains(got, "Hồ sơ tiếp nhận: 1")
		})
	tab.do("click 26740 on the map", chromedp.MouseClickXY(x, y))
	tab.waitEqual(5*time.Second, "row of 26740 picked", `String(document.querySelector('#communes tr[data-area="26740"]').classList.contains('selected'))`, "true")
	tab.expectEqual("26740 pressed on the map", `document.querySelector('#map path[data-area="26740"]').getAttribute('aria-pressed')`, "true")
	// From the keyboard: one unit in the tab order, arrows move, Enter picks.
	tab.do("focus the map and move on", chromedp.Evaluate[chromedp.Void](`document.querySelector('#map path[tabindex="0"]').focus()`),
		chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(kb.Enter))
	tab.expectEqual("units in the tab order", `String(document.querySelectorAll('#map path[tabindex="0"]').length)`, "1")
	tab.expectEqual("row picked from the keyboard",
		`(a => a && a !== '26740' && document.querySelector('#communes tr[data-area="' + a + '"]').classList.contains('selected') ? 'picked' : 'not picked: ' + a)(document.activeElement.dataset.area)`, "picked")

	// Sorting by received puts the only commune with a dossier first.
	tab.do("sort by received", chromedp.Click(chromedp.CSS(`#communes th[data-sort="dossiers_received"] button`)))
	tab.waitEqual(30*time.Second, "first row sorted by received", `document.querySelector('#communes tbody tr').dataset.area`, "26740")
	// The filter ignores diacritics: "sai gon" finds Sài Gòn.
	tab.do("type in the filter", chromedp.SendKeys(chromedp.CSS(`#filter`), "sai gon"))
	tab.waitEqual(30*time.Second, "rows shown by the filter",
		`Array.from(document.querySelectorAll('#communes tr[data-area]')).filter(r => !r.hidden).map(r => r.dataset.area).join(',')`, "26740")

	// A restart closes the websocket with 1001; the page reconnects to
	// the node that comes back on the same address and subscribes again.
	n.stop()
	tab.waitEqual(30*time.Second, "connection state while the node is down", `document.getElementById('connection').dataset.state`, "reconnecting")
	cfg.HTTPAddr = strings.TrimPrefix(n.base, "http://")
	n = startNode(t, cfg)
	tab.waitEqual(30*time.Second, "connection state after the restart", `document.getElementById('connection').dataset.state`, "connected")
	if code, r := n.ingest(event("p2", "d2", "26740", "received", "in_person", 0)); code != 202 || r.Accepted != 1 {
		t.Fatalf("ingest after the restart: got %d %+v, want 202 with 1 accepted", code, r)
	}
	tab.waitEqual(15*time.Second, "received in 26740 after the restart", communeCell("26740", "dossiers_received"), "2")
	tab.waitEqual(15*time.Second, "province received after the restart", provinceCell("dossiers_received"), "2")
	tab.expectEqual("online rate in 26740 after the restart", communeCell("26740", "online_rate"), "50,0%")
	tab.waitEqual(15*time.Second, "received in 26740 on the map after the restart", mapValue("26740"), "2")

	// Another window: the page refetches, follows kpi/{code}/24h instead,
	// and keeps the choice in the URL.
	tab.do("choose the 24h window", chromedp.Evaluate[chromedp.Void](
		`(s => { s.value = '24h'; s.dispatchEvent(new Event('change')); })(document.getElementById('window'))`))
	tab.waitEqual(30*time.Second, "URL after choosing 24h", `location.pathname + location.search`, "/?area=79&window=24h")
	if code, r := n.ingest(event("p3", "d3", "26740", "received", "online", time.Minute)); code != 202 || r.Accepted != 1 {
		t.Fatalf("ingest in the 24h window: got %d %+v, want 202 with 1 accepted", code, r)
	}
	tab.waitEqual(15*time.Second, "received in 26740 over 24h", communeCell("26740", "dossiers_received"), "3")
	tab.waitEqual(15*time.Second, "province received over 24h", provinceCell("dossiers_received"), "3")
	tab.expectEqual("commune rows over 24h", `String(document.querySelectorAll('#communes tr[data-area]').length)`, "168")
	tab.waitEqual(15*time.Second, "received in 26740 on the map over 24h", mapValue("26740"), "3")
	tab.expectEqual("units on the map over 24h", mapUnits, "168")
	tab.noExceptions()

	if path := os.Getenv("IOC_DASHBOARD_SCREENSHOT"); path != "" {
		screenshot(t, n, tab, path)
	}
}

// The alarm panel, the devices on the map and the ticker of camera events,
// live, in Chromium: a viewer's screen watches while an operator's screen
// acknowledges and resolves an alarm with real clicks. A screen on a node
// that refuses those topics shows the figures and leaves the rest out.
func TestDashboardAlarmsDevicesAndEvents(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, testConfig(t))
	// A water gauge on Nguyễn Huệ, an air sensor in Thủ Đức, a camera in Chợ Lớn.
	const tdLat, tdLon = 10.8494, 106.7537
	const camLat, camLon = 10.7546, 106.6636
	here, there, camArea := n.communeAt(nhLat, nhLon), n.communeAt(tdLat, tdLon), n.communeAt(camLat, camLon)
	hereName, camName := n.kpis(here, "today").Name, n.kpis(camArea, "today").Name

	viewer := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "79")+"&area=79")
	viewer.waitEqual(30*time.Second, "units on the map", mapUnits, "168")
	viewer.waitEqual(30*time.Second, "connection state", `document.getElementById('connection').dataset.state`, "connected")
	viewer.waitEqual(10*time.Second, "alarm panel shown", `String(!document.getElementById('alarm-panel').hidden)`, "true")
	viewer.waitEqual(10*time.Second, "ticker shown", `String(!document.getElementById('ticker').hidden)`, "true")
	viewer.expectEqual("alarm rows before any reading", alarmRows, "0")
	viewer.expectEqual("device markers before any reading", deviceMarkers, "0")
	// Every numeric indicator is a map choice and a column; the breakdown
	// camera_events_by_type is neither.
	const numeric = "dossiers_received,online_rate,dossiers_resolved,on_time_rate,dossiers_overdue," +
		"avg_resolution_days,online_payment_rate,e_result_rate,digitization_rate,data_reuse_rate," +
		"alarms_open,cameras_online,cameras_offline,sensors_online,sensors_offline," +
		"camera_events,camera_events_critical,pm25_max,pm25_avg,water_level_max"
	viewer.expectEqual("map choices", `Array.from(document.querySelectorAll('#map-kpi option')).map(o => o.value).join(',')`, numeric)
	viewer.expectEqual("columns", `Array.from(document.querySelectorAll('#communes th[data-sort]')).slice(1).map(th => th.dataset.sort).join(',')`, numeric)
	viewer.expectEqual("PM2.5 of "+here+" without readings", communeCell(here, "pm25_max"), "–")
	viewer.expectEqual("province PM2.5 without readings", provinceCell("pm25_max"), "–")

	now := time.Now().Truncate(time.Second)
	if code, r := n.readings(adminToken,
		map[string]any{"sensor_id": "WL-D1", "kind": "water_level", "value": 1.7, "unit": "m", "alert_level": 1.5,
			"lat": nhLat, "lon": nhLon, "observed_at": stamp(now)},
		map[string]any{"sensor_id": "AQ-D2", "kind": "pm25", "value": 21.5, "unit": "ug/m3",
			"lat": tdLat, "lon": tdLon, "observed_at": stamp(now)},
	); code != 202 || r.Accepted != 2 {
		t.Fatalf("readings: got %d %+v, want 202 with 2 accepted", code, r)
	}
	cameraEvents(t, n, map[string]any{"event_id": "e1", "camera_id": "CAM-D1", "type": "congestion", "severity": "warning",
		"lat": camLat, "lon": camLon, "occurred_at": stamp(now)})

	// The water gauge's critical alarm, with its device and commune.
	wl := `document.querySelector('#alarms li[data-device="WL-D1"]')`
	viewer.waitEqual(15*time.Second, "severity of the WL-D1 alarm", orMissing(wl, `.dataset.severity`), "critical")
	viewer.waitMatch(5*time.Second, "WL-D1 alarm row", orMissing(wl, `.textContent`), "the device, "+hereName+" and the age",
		func(got string) bool {
			return strings.Contains(got, "WL-D1") && strings.Contains(got, hereName) && strings.Contains(got, "vừa xong")
		})
	viewer.expectEqual("state of the WL-D1 alarm", orMissing(wl, `.dataset.state`), "open")
	// A viewer may only watch: no buttons, and a note that says so.
	viewer.expectEqual("action buttons a viewer sees", visibleAlarmButtons, "0")
	viewer.expectEqual("view-only note shown", `String(!document.getElementById('alarm-view-only').hidden)`, "true")

	// Devices on the map, each inside its commune, the gauge ringed.
	for _, id := range []string{"WL-D1", "AQ-D2", "CAM-D1"} {
		viewer.waitEqual(15*time.Second, "status of "+id+" on the map", orMissing(marker(id), `.dataset.status`), "online")
	}
	viewer.expectEqual("kind of CAM-D1", orMissing(marker("CAM-D1"), `.dataset.kind`), "camera")
	viewer.expectEqual("kind of WL-D1", orMissing(marker("WL-D1"), `.dataset.kind`), "sensor")
	viewer.expectEqual("WL-D1 inside "+here, markerInside("WL-D1", here), "true")
	viewer.expectEqual("AQ-D2 inside "+there, markerInside("AQ-D2", there), "true")
	viewer.expectEqual("CAM-D1 inside "+camArea, markerInside("CAM-D1", camArea), "true")
	viewer.waitEqual(5*time.Second, "alarm of WL-D1 on the map", orMissing(marker("WL-D1"), `.dataset.alarm`), "critical")
	viewer.expectEqual("ring around WL-D1", ringState("WL-D1"), "critical open")
	viewer.expectEqual("alarm of AQ-D2 on the map", orMissing(marker("AQ-D2"), `.getAttribute('data-alarm') || ''`), "")
	viewer.waitMatch(5*time.Second, "tooltip of WL-D1", orMissing(marker("WL-D1"), `.querySelector('title').textContent`),
		"its status, reading and alarm", func(got string) bool {
			return strings.Contains(got, "online") && strings.Contains(got, "Mực nước: 1,7 m") && strings.Contains(got, "Nghiêm trọng")
		})

	// The ticker lists the congestion in Chợ Lớn.
	e1 := `document.querySelector('#ticker-list li[data-event="e1"]')`
	viewer.waitEqual(15*time.Second, "type of e1 in the ticker", orMissing(e1, `.dataset.type`), "congestion")
	viewer.expectEqual("text of e1 in the ticker", orMissing(e1, `.textContent`),
		now.In(hcm).Format("15:04:05")+" Ùn tắc giao thông "+camName)

	// The indicators follow: the open alarm, the highest water level.
	viewer.waitEqual(20*time.Second, "province alarms open", provinceCell("alarms_open"), "1")
	viewer.waitEqual(20*time.Second, "water level of "+here, communeCell(here, "water_level_max"), "1,7")
	viewer.expectEqual("province PM2.5 with a reading", provinceCell("pm25_max"), "21,5")
	viewer.expectEqual("PM2.5 of "+here+" still without readings", communeCell(here, "pm25_max"), "–")
	// The table shows one group of columns at a time, kept in the URL.
	viewer.do("show the alarm and device columns", chromedp.Evaluate[chromedp.Void](
		`(s => { s.value = 'devices'; s.dispatchEvent(new Event('change')); })(document.getElementById('columns'))`))
	viewer.expectEqual("columns shown", `Array.from(document.querySelectorAll('#communes th[data-sort]')).filter(th => th.offsetParent !== null).map(th => th.dataset.sort).join(',')`,
		"name,alarms_open,cameras_online,cameras_offline,sensors_online,sensors_offline")
	viewer.expectEqual("cells shown in a row", `String(Array.from(document.querySelectorAll('#communes tr[data-area="`+here+`"] td')).filter(td => td.offsetParent !== null).length)`, "5")
	viewer.expectEqual("URL with the columns", `location.pathname + location.search`, "/?area=79&columns=devices")

	// A burst of events: the ticker lists the newest and counts the rest.
	var burst []map[string]any
	for i := range 25 {
		burst = append(burst, map[string]any{"event_id": fmt.Sprintf("b%02d", i), "camera_id": "CAM-D1", "type": "plate_read",
			"lat": camLat, "lon": camLon, "occurred_at": stamp(now.Add(time.Duration(i) * time.Second / 10))})
	}
	cameraEvents(t, n, burst...)
	viewer.waitMatch(15*time.Second, "events folded in the ticker", `(m => m.hidden ? '(hidden)' : m.textContent)(document.getElementById('ticker-more'))`,
		`"+N sự kiện khác"`, func(got string) bool {
			return strings.HasPrefix(got, "+") && strings.HasSuffix(got, " sự kiện khác")
		})
	viewer.expectEqual("events listed and folded", `(document.querySelectorAll('#ticker-list li[data-type="plate_read"]').length + +document.getElementById('ticker-more').dataset.folded) + ''`, "25")
	viewer.expectEqual("newest first in the ticker", `document.querySelector('#ticker-list li').dataset.type`, "plate_read")
	if path := os.Getenv("IOC_DASHBOARD_SCREENSHOT"); path != "" {
		saveScreenshot(t, viewer, strings.TrimSuffix(path, ".png")+"-alarms.png", "")
		saveScreenshot(t, viewer, strings.TrimSuffix(path, ".png")+"-devices.png", "#map-panel")
	}

	// An operator acknowledges it with a click; every screen shows who.
	op := openTab(t, browser, n.base+"/?access_token="+issueTokenAs(t, "op-dana", auth.Operator, "79")+"&area=79")
	op.waitEqual(30*time.Second, "severity of the WL-D1 alarm for the operator", orMissing(wl, `.dataset.severity`), "critical")
	op.expectEqual("view-only note for the operator", `String(document.getElementById('alarm-view-only').hidden)`, "true")
	op.expectEqual("buttons of the WL-D1 alarm", alarmButtons("WL-D1"), "ack,resolve")
	if path := os.Getenv("IOC_DASHBOARD_SCREENSHOT"); path != "" {
		saveScreenshot(t, op, strings.TrimSuffix(path, ".png")+"-operator.png", "#alarm-panel")
	}
	op.do("click Acknowledge", chromedp.Click(chromedp.CSS(`#alarms li[data-device="WL-D1"] button[data-action="ack"]`)))
	op.waitEqual(10*time.Second, "state of the WL-D1 alarm after Acknowledge", orMissing(wl, `.dataset.state`), "acknowledged")
	op.waitMatch(5*time.Second, "acknowledgement of the WL-D1 alarm", orMissing(wl, `.querySelector('.alarm-ack').textContent`),
		`"Đã xác nhận bởi op-dana"`, func(got string) bool { return strings.HasPrefix(got, "Đã xác nhận bởi op-dana") })
	op.expectEqual("buttons of the acknowledged alarm", alarmButtons("WL-D1"), "resolve")
	var list struct {
		Alarms []alarmJSON `json:"alarms"`
	}
	if n.get("/api/v1/alarms?state=active&area=79", adminToken, &list); len(list.Alarms) != 1 ||
		list.Alarms[0].DeviceID != "WL-D1" || list.Alarms[0].State != "acknowledged" || list.Alarms[0].AcknowledgedBy != "op-dana" {
		t.Errorf("alarms after the click: got %+v, want WL-D1's acknowledged by op-dana", list.Alarms)
	}
	viewer.waitEqual(10*time.Second, "state of the WL-D1 alarm on the viewer's screen", orMissing(wl, `.dataset.state`), "acknowledged")
	viewer.waitMatch(5*time.Second, "acknowledgement on the viewer's screen", orMissing(wl, `.textContent`), `"op-dana"`,
		func(got string) bool { return strings.Contains(got, "Đã xác nhận bởi op-dana") })
	viewer.expectEqual("ring around WL-D1 once acknowledged", ringState("WL-D1"), "critical acknowledged")

	// Resolving it takes it off every screen and the ring off the map.
	op.do("click Resolve", chromedp.Click(chromedp.CSS(`#alarms li[data-device="WL-D1"] button[data-action="resolve"]`)))
	op.waitEqual(10*time.Second, "alarm rows after Resolve", alarmRows, "0")
	op.expectEqual("no-alarm note", `String(!document.getElementById('alarms-empty').hidden)`, "true")
	viewer.waitEqual(10*time.Second, "alarm rows on the viewer's screen after Resolve", alarmRows, "0")
	viewer.waitEqual(5*time.Second, "alarm of WL-D1 on the map after Resolve", orMissing(marker("WL-D1"), `.getAttribute('data-alarm') || ''`), "")
	viewer.expectEqual("ring around WL-D1 after Resolve", ringState("WL-D1"), "(no ring)")
	if n.get("/api/v1/alarms?state=active&area=79", adminToken, &list); len(list.Alarms) != 0 {
		t.Errorf("alarms after Resolve: got %+v, want none", list.Alarms)
	}
	op.noExceptions()
	viewer.noExceptions()

	// A node that does not serve alarms, devices or events (emulated: the
	// tab answers those subscriptions as such a node does) still shows the
	// figures, live, and nothing of the rest.
	bare := openTab(t, browser, n.base+"/?access_token="+issueToken(t, auth.Viewer, "79")+"&area=79", refuseOpsTopics)
	bare.waitEqual(30*time.Second, "units on the map without the ops topics", mapUnits, "168")
	bare.waitEqual(30*time.Second, "connection state without the ops topics", `document.getElementById('connection').dataset.state`, "connected")
	bare.waitEqual(10*time.Second, "topics refused", `window.__refused.slice().sort().join(',')`, "alarms/79,devices/79,events/79")
	if code, r := n.ingest(event("q1", "dq1", here, "received", "online", 0)); code != 202 || r.Accepted != 1 {
		t.Fatalf("ingest: got %d %+v, want 202 with 1 accepted", code, r)
	}
	bare.waitEqual(15*time.Second, "received in "+here+" without the ops topics", communeCell(here, "dossiers_received"), "1")
	bare.expectEqual("alarm panel hidden", `String(document.getElementById('alarm-panel').hidden)`, "true")
	bare.expectEqual("ticker hidden", `String(document.getElementById('ticker').hidden)`, "true")
	bare.expectEqual("device markers", deviceMarkers, "0")
	bare.expectEqual("notice", visibleNotice, "(no notice shown)")
	bare.expectEqual("province alarms open", provinceCell("alarms_open"), "0")
	bare.noExceptions()
}

// cameraEvents posts camera events with the admin token.
func cameraEvents(t *testing.T, n *node, events ...map[string]any) {
	t.Helper()
	b, _ := json.Marshal(events)
	var r ingestReply
	if code := n.post("/api/v1/ingest/camera-events", adminToken, "application/json", b, &r); code != 202 || r.Accepted != len(events) {
		t.Fatalf("camera events: got %d %+v, want 202 with %d accepted", code, r, len(events))
	}
}

const (
	alarmRows           = `String(document.querySelectorAll('#alarms li[data-alarm]').length)`
	deviceMarkers       = `String(document.querySelectorAll('#map [data-device]').length)`
	visibleAlarmButtons = `String(Array.from(document.querySelectorAll('#alarms button')).filter(b => b.offsetParent !== null).length)`
)

// orMissing evaluates expr+tail on the element expr finds, or says it is missing.
func orMissing(expr, tail string) string {
	return fmt.Sprintf(`(e => e ? String(e%s) : '(missing)')(%s)`, tail, expr)
}

func marker(id string) string {
	return fmt.Sprintf(`document.querySelector('#map circle[data-device="%s"]')`, id)
}

// markerInside tells whether a device's marker lies on its commune's shape.
func markerInside(id, area string) string {
	return fmt.Sprintf(`((c, p) => c && p ? String(p.isPointInFill(new DOMPoint(+c.getAttribute('cx'), +c.getAttribute('cy')))) : '(missing)')(%s, document.querySelector('#map path[data-area="%s"]'))`,
		marker(id), area)
}

// ringState is the severity and state of the ring around a device's marker.
func ringState(id string) string {
	return fmt.Sprintf(`((c) => {
		if (!c) return '(missing)';
		const r = Array.from(document.querySelectorAll('#map .device-rings circle')).find(r => r.getAttribute('cx') === c.getAttribute('cx') && r.getAttribute('cy') === c.getAttribute('cy'));
		return r ? r.dataset.severity + ' ' + r.dataset.state : '(no ring)';
	})(%s)`, marker(id))
}

// alarmButtons lists the actions offered on a device's alarm.
func alarmButtons(device string) string {
	return fmt.Sprintf(`Array.from(document.querySelectorAll('#alarms li[data-device="%s"] button')).filter(b => b.offsetParent !== null).map(b => b.dataset.action).join(',')`, device)
}

// refuseOpsTopics makes the tab's websocket answer subscriptions to
// alarms/, devices/ and events/ with the error a node that does not serve
// them sends, and records them in window.__refused.
var refuseOpsTopics = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `(() => {
		window.__refused = [];
		const send = WebSocket.prototype.send;
		WebSocket.prototype.send = function (data) {
			let m = null;
			try { m = JSON.parse(data); } catch (e) { /* not ours */ }
			if (m && m.op === 'subscribe' && /^(alarms|devices|events)\//.test(m.topic)) {
				window.__refused.push(m.topic);
				const error = 'topic "' + m.topic + '" is not served by this node';
				setTimeout(() => this.dispatchEvent(new MessageEvent('message', {data: JSON.stringify({type: 'error', topic: m.topic, error})})), 0);
				return;
			}
			return send.call(this, data);
		};
	})();`})
	return err
})

func communeCell(area, kpi string) string {
	return fmt.Sprintf(`(document.querySelector('#communes tr[data-area="%s"] [data-kpi="%s"]') || {textContent: '(no such cell)'}).textContent`, area, kpi)
}

func provinceCell(kpi string) string {
	return fmt.Sprintf(`(document.querySelector('#province-summary [data-kpi="%s"]') || {textContent: '(no such cell)'}).textContent`, kpi)
}

// noDataFill is the map's fill for a unit whose figure is null.
const noDataFill = "url(#map-nodata)"

const (
	mapUnits  = `String(document.querySelectorAll('#map path[data-area]').length)`
	mapHidden = `String(document.getElementById('map').closest('[hidden]') !== null)`
	mapTip    = `(t => !t || t.hidden ? '(no tooltip)' : t.textContent)(document.querySelector('#map .map-tip'))`
)

// mapValue is the raw figure a commune is coloured by, "" for none.
func mapValue(area string) string {
	return fmt.Sprintf(`(p => p ? p.dataset.value : '(no such unit)')(document.querySelector('#map path[data-area="%s"]'))`, area)
}

func mapFill(area string) string {
	return fmt.Sprintf(`(p => p ? p.getAttribute('fill') : '(no such unit)')(document.querySelector('#map path[data-area="%s"]'))`, area)
}

const visibleMessage = `(m => m.hidden ? '(no message shown)' : m.textContent)(document.getElementById('message'))`

const visibleNotice = `(m => m.hidden ? '(no notice shown)' : m.textContent)(document.getElementById('notice'))`

// newBrowser starts a headless Chromium with a profile of its own, closed
// when the test ends. Each openTab is a tab of it.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("this test drives a real browser: install Debian's chromium package (apt-get install chromium) so that %s exists: %v", chromiumPath, err)
	}
	opts := headless.Options(chromiumPath, t.TempDir(), 1600, 1000)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	logf := quietAfterTest(t)
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	// Cleanups run last first: the browser exits before its profile
	// directory is removed.
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first action starts the browser, bound to the context it is given:
	// a context with a deadline would end the browser with it.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start %s: %v (is Debian's chromium package installed and working?)", chromiumPath, err)
	}
	return browser
}

// quietAfterTest logs to t until the test has ended; the browser's
// goroutines may still say something while they stop.
func quietAfterTest(t *testing.T) func(string, ...any) {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { // registered first: runs after the browser is closed
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("chromium: "+format, args...)
		}
	}
}

type tab struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	exceptions []string // uncaught JavaScript exceptions
}

// openTab opens url in a new tab, closed when the test ends, after running
// before in it. A new tab has an empty sessionStorage, so no token carries
// over from another tab.
func openTab(t *testing.T, browser context.Context, url string, before ...chromedp.Action[chromedp.Void]) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil && e.ExceptionDetails.Exception.Description != "" {
				msg = e.ExceptionDetails.Exception.Description
			}
			tb.mu.Lock()
			tb.exceptions = append(tb.exceptions, msg)
			tb.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	tb.do("navigate to "+redactToken(url), append(before, chromedp.Navigate(url))...)
	return tb
}

// blockURLs makes the tab's requests matching pattern fail, as they would
// with the network down.
func blockURLs(pattern string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.SetBlockedURLs, network.SetBlockedURLsParams{
			URLPatterns: []*network.BlockPattern{{URLPattern: pattern, Block: true}},
		})
		return err
	})
}

func redactToken(url string) string {
	if i := strings.Index(url, "access_token="); i >= 0 {
		j := strings.IndexByte(url[i:], '&')
		if j < 0 {
			return url[:i] + "access_token=…"
		}
		return url[:i] + "access_token=…" + url[i+j:]
	}
	return url
}

func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

func (tb *tab) eval(expr string) (string, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](expr))
}

// waitMatch evaluates expr until match accepts its value; after d it fails
// with the last value.
func (tb *tab) waitMatch(d time.Duration, what, expr, want string, match func(string) bool) {
	tb.t.Helper()
	deadline := time.Now().Add(d)
	for {
		got, err := tb.eval(expr)
		if err == nil && match(got) {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				tb.t.Fatalf("%s: %v; want %s", what, err, want)
			}
			tb.t.Fatalf("%s: got %q, want %s", what, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (tb *tab) waitEqual(d time.Duration, what, expr, want string) {
	tb.t.Helper()
	tb.waitMatch(d, what, expr, fmt.Sprintf("%q", want), func(got string) bool { return got == want })
}

// value evaluates expr once.
func (tb *tab) value(expr string) string {
	tb.t.Helper()
	got, err := tb.eval(expr)
	if err != nil {
		tb.t.Fatalf("%s: %v", expr, err)
	}
	return got
}

// pointIn finds a point of the viewport where the pointer lands on the
// commune's shape, not a neighbour's: shapes are rarely convex.
func (tb *tab) pointIn(area string) (x, y float64) {
	tb.t.Helper()
	got := tb.value(fmt.Sprintf(`(p => {
		if (!p) return '';
		p.scrollIntoView({block: 'nearest'});
		const b = p.getBBox(), m = p.getScreenCTM();
		for (let i = 1; i < 16; i++) for (let j = 1; j < 16; j++) {
			const pt = new DOMPoint(b.x + b.width * i / 16, b.y + b.height * j / 16);
			if (!p.isPointInFill(pt)) continue;
			const s = pt.matrixTransform(m);
			if (document.elementFromPoint(s.x, s.y) === p) return s.x + ' ' + s.y;
		}
		return '';
	})(document.querySelector('#map path[data-area="%s"]'))`, area))
	if _, err := fmt.Sscan(got, &x, &y); err != nil {
		tb.t.Fatalf("no point of the viewport lands on %s on the map (got %q)", area, got)
	}
	return x, y
}

// expectEqual checks expr once: for what must already hold.
func (tb *tab) expectEqual(what, expr, want string) {
	tb.t.Helper()
	got, err := tb.eval(expr)
	if err != nil {
		tb.t.Errorf("%s: %v; want %q", what, err, want)
	} else if got != want {
		tb.t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func (tb *tab) noExceptions() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.exceptions) > 0 {
		tb.t.Errorf("uncaught JavaScript exceptions: got %q, want none", tb.exceptions)
	}
}

// screenshot fills the province with varied figures and saves the page,
// pointing at a commune on the map.
func screenshot(t *testing.T, n *node, tb *tab, path string) {
	t.Helper()
	var kids struct {
		Children []snapshot `json:"children"`
	}
	if code := n.get("/api/v1/areas/79/children/kpis", adminToken, &kids); code != 200 {
		t.Fatalf("children of 79: status %d", code)
	}
	events := spreadDossiers(kids.Children, "s", func(i int) bool { return i%3 == 2 })
	if code, r := n.ingest(events...); code != 202 || r.Rejected != 0 {
		t.Fatalf("ingest for the screenshot: got %d %+v", code, r)
	}
	want := fmt.Sprint(n.kpis("79", "today").KPIs["dossiers_received"])
	tb.waitEqual(30*time.Second, "province received", "("+provinceCell("dossiers_received")+").replaceAll('.', '')", want)
	tb.do("clear the filter", chromedp.Evaluate[chromedp.Void](
		`(f => { f.value = ''; f.dispatchEvent(new Event('input')); window.scrollTo(0, 0); })(document.getElementById('filter'))`))
	x, y := tb.pointIn("26740")
	tb.do("point at 26740 on the map", chromedp.MouseEvent(chromedp.MouseMoved, x, y))
	// Let the highlights fade: the flash class goes, then its transition ends.
	tb.waitEqual(10*time.Second, "highlights faded", `String(!document.querySelector('[data-kpi].flash') &&
		!document.getAnimations().some(a => a.effect && a.effect.target instanceof Element && a.effect.target.matches('[data-kpi]')))`, "true")
	saveScreenshot(t, tb, path, "")
}

// saveScreenshot saves the viewport, or the element of a CSS selector.
func saveScreenshot(t *testing.T, tb *tab, path, selector string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	shoot := chromedp.CaptureScreenshot()
	if selector != "" {
		shoot = chromedp.Screenshot(chromedp.CSS(selector))
	}
	png, err := chromedp.Run(ctx, shoot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved a screenshot to %s", path)
}

// spreadDossiers makes dossier events over the children of a unit, those
// skip does not leave out: a few received per child, some resolved on time,
// some late, some overdue, so that maps, rankings and tiles have figures
// that differ. Ids start with prefix.
func spreadDossiers(children []snapshot, prefix string, skip func(i int) bool) []map[string]any {
	var events []map[string]any
	for i, k := range children {
		if skip(i) {
			continue
		}
		for j := 0; j < 1+(i*7)%9; j++ {
			id := fmt.Sprintf("%s-%s-%d", prefix, k.Area, j)
			channel := "online"
			if (i+j)%4 == 0 {
				channel = "in_person"
			}
			events = append(events, event(id+"-r", id, k.Area, "received", channel, time.Duration(j+1)*time.Minute))
			switch {
			case j%3 == 0:
				events = append(events, event(id+"-z", id, k.Area, "resolved", channel, time.Duration(j)*time.Second))
			case j%3 == 1 && i%5 == 0:
				late := event(id+"-z", id, k.Area, "resolved", channel, time.Duration(j)*time.Second)
				late["due_at"] = time.Now().Add(-time.Hour).In(hcm).Format(time.RFC3339)
				events = append(events, late)
			case i%11 == 0:
				over := event(id+"-p", id, k.Area, "processing", channel, time.Duration(j)*time.Second)
				over["due_at"] = time.Now().Add(-time.Minute).In(hcm).Format(time.RFC3339)
				events = append(events, over)
			}
		}
	}
	return events
}
