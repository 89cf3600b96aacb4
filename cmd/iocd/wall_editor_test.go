package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/openioc/ioc/api/auth"
)

// The dashboard editor, driven as an admin would: a new dashboard, a
// KPI tile added, configured from the catalog, moved and resized with the
// keyboard and by dragging; a map added; an overlap and an indicator the
// catalog does not have refused on save with the server's field errors
// shown at their fields; fixed and saved with PUT; the stored document is
// the one edited, the previews draw it at 1080p and 4K in proportion, and
// the wall page shows it.
func TestWallEditor(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, testConfig(t))
	seedWall(t, n)
	w := startWallAPI(t, n)
	dir := artifacts(t)
	tab := openTab(t, browser, w.base+"/wall/editor.html?dashboard=ed-test&area=79&access_token="+adminToken, chromedp.EmulateViewport(1600, 1100))
	tab.await(20*time.Second, "editor loaded", `document.documentElement.dataset.loaded`)
	boxes := `Array.from(document.querySelectorAll('#ed-canvas .ed-box')).map(b => b.dataset.widget).join(',')`
	tab.expectEqual("a new dashboard's widgets", boxes, "head,clock")
	widget := func(id string) string {
		return fmt.Sprintf(`JSON.stringify((w => w ? [w.x, w.y, w.w, w.h] : null)(IOCEditor.def.widgets.find(w => w.id === %q)))`, id)
	}
	set := func(what, sel, value, event string) {
		t.Helper()
		tab.do(what, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(e => { e.value = %q; e.dispatchEvent(new Event(%q, {bubbles: true})); })(document.querySelector(%q))`, value, event, sel)))
	}

	set("title", "#ed-title-vi", "Thử nghiệm bảng", "input")
	set("choose a KPI tile", "#ed-add-type", "kpi", "change")
	tab.do("add it", chromedp.Click(chromedp.ID("ed-add")))
	tab.awaitEqual(5*time.Second, "widgets after adding", boxes, "head,clock,kpi-1")
	tab.expectEqual("placed in the first free cells", widget("kpi-1"), "[0,1,4,2]")
	set("its indicator", `[data-path="widgets[2].options.indicator"]`, "on_time_rate", "change")
	tab.expectEqual("indicator options from the catalog", `String(document.querySelectorAll('[data-path="widgets[2].options.indicator"] option').length > 20)`, "true")

	// The keyboard: two cells right, one taller.
	tab.do("focus the grid", chromedp.Evaluate[chromedp.Void](`document.getElementById('ed-canvas').focus()`))
	tab.do("move right twice", chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(kb.ArrowRight))
	tab.do("one row taller", chromedp.KeyEvent(kb.ArrowDown, chromedp.KeyModifiers(chromedp.ModifierShift)))
	tab.expectEqual("after the keys", widget("kpi-1"), "[2,1,4,3]")

	// The pointer: the corner two cells wider, the box one row down.
	cell := func(x, y float64) (float64, float64) {
		var r struct{ X, Y, W, H float64 }
		if err := json.Unmarshal([]byte(tab.value(`(r => JSON.stringify({X: r.left, Y: r.top, W: r.width, H: r.height}))(document.getElementById('ed-canvas').getBoundingClientRect())`)), &r); err != nil {
			t.Fatal(err)
		}
		return r.X + (x+0.5)*r.W/24, r.Y + (y+0.5)*r.H/12
	}
	drag := func(what string, fromX, fromY, toX, toY float64) {
		t.Helper()
		left := chromedp.ButtonType(input.MouseButtonLeft)
		tab.do(what, chromedp.MouseEvent(chromedp.MousePressed, fromX, fromY, left, chromedp.ClickCount(1)),
			chromedp.MouseEvent(chromedp.MouseMoved, (fromX+toX)/2, (fromY+toY)/2, left),
			chromedp.MouseEvent(chromedp.MouseMoved, toX, toY, left),
			chromedp.MouseEvent(chromedp.MouseReleased, toX, toY, left, chromedp.ClickCount(1)))
	}
	hx, _ := cell(5, 3) // the lower-right cell of the box, where its handle is
	var handle struct{ X, Y float64 }
	json.Unmarshal([]byte(tab.value(`(r => JSON.stringify({X: r.left + r.width / 2, Y: r.top + r.height / 2}))(document.querySelector('.ed-box[data-widget="kpi-1"] .ed-handle').getBoundingClientRect())`)), &handle)
	tx, _ := cell(7, 3)
	drag("drag the corner two cells right", handle.X, handle.Y, handle.X+(tx-hx), handle.Y)
	tab.expectEqual("after dragging the corner", widget("kpi-1"), "[2,1,6,3]")
	fx, fy := cell(3, 2)
	_, ty := cell(3, 3)
	drag("drag the box a row down", fx, fy, fx, ty)
	tab.expectEqual("after dragging the box", widget("kpi-1"), "[2,2,6,3]")

	// A map beside it; then the tile moved onto the map.
	set("choose a map", "#ed-add-type", "map", "change")
	tab.do("add it", chromedp.Click(chromedp.ID("ed-add")))
	tab.awaitEqual(5*time.Second, "widgets after adding the map", boxes, "head,clock,kpi-1,map-1")
	mapBox := tab.value(widget("map-1"))
	var mb [4]int
	json.Unmarshal([]byte(mapBox), &mb)
	drag("select the tile with a click", fx, ty, fx, ty)
	tab.expectEqual("tile selected", `String(IOCEditor.sel)`, "2")
	set("its x onto the map", `[data-path="widgets[2].x"]`, fmt.Sprint(mb[0]), "change")
	set("its y onto the map", `[data-path="widgets[2].y"]`, fmt.Sprint(mb[1]), "change")
	tab.await(5*time.Second, "overlap noticed here", `document.querySelector('#ed-errors li[data-from="local"]')`)
	// And an indicator the catalog does not have, through the JSON.
	tab.do("edit the JSON", chromedp.Evaluate[chromedp.Void](`(t => {
		const d = JSON.parse(t.value);
		d.widgets[2].options.indicator = 'no_such_kpi';
		t.value = JSON.stringify(d);
		document.getElementById('ed-json-apply').click();
	})(document.getElementById('ed-json'))`))
	tab.do("save", chromedp.Click(chromedp.ID("ed-save")))
	tab.awaitEqual(10*time.Second, "refused", `document.documentElement.dataset.saveError`, "400")
	paths := tab.value(`Array.from(document.querySelectorAll('#ed-errors li[data-from="server"]')).map(li => li.dataset.errorPath).join(',')`)
	for _, want := range []string{"widgets[2].options.indicator", "widgets[3]"} {
		if !strings.Contains(paths, want) {
			t.Errorf("server errors shown: %q, want %s among them", paths, want)
		}
	}
	tab.expectEqual("the indicator field marked", `document.querySelector('[data-path="widgets[2].options.indicator"]').getAttribute('aria-invalid')`, "true")
	// The server's own message, whatever its wording: it names the value
	// and where to find the right ones.
	tab.expectEqual("its message beside it", `(() => {
		const m = document.querySelector('[data-path="widgets[2].options.indicator"]').closest('.ed-field').querySelector('.ed-field-error').textContent;
		return String(m.includes('"no_such_kpi"') && m.includes('GET /api/v1/kpis'));
	})()`, "true")
	tab.expectEqual("the overlapping box marked", `String(document.querySelector('.ed-box[data-widget="map-1"]').classList.contains('invalid'))`, "true")
	saveScreenshot(t, tab, filepath.Join(dir, "editor-field-errors.png"), "")

	// Fixed: the catalog's indicator, the tile back where it was.
	set("a catalog indicator", `[data-path="widgets[2].options.indicator"]`, "on_time_rate", "change")
	set("its x back", `[data-path="widgets[2].x"]`, "2", "change")
	set("its y back", `[data-path="widgets[2].y"]`, "2", "change")
	tab.expectEqual("no errors left", `String(document.querySelectorAll('#ed-errors li').length)`, "0")
	tab.do("save", chromedp.Click(chromedp.ID("ed-save")))
	tab.awaitEqual(10*time.Second, "saved", `document.documentElement.dataset.saved ? 'saved' : document.getElementById('ed-status').textContent + ' ' + document.getElementById('ed-errors').textContent`, "saved")
	tab.expectEqual("status", `document.getElementById('ed-status').textContent`, "Đã lưu (saved)")
	var edited map[string]any
	if err := json.Unmarshal([]byte(tab.value(`JSON.stringify(IOCEditor.def)`)), &edited); err != nil {
		t.Fatal(err)
	}
	if stored := w.doc("dashboards/ed-test"); !reflect.DeepEqual(stored, edited) {
		t.Errorf("stored document differs from the edited one:\nstored %v\nedited %v", stored, edited)
	}
	if edited["title"].(map[string]any)["vi"] != "Thử nghiệm bảng" {
		t.Errorf("title: got %v", edited["title"])
	}

	// The previews: the wall's own boards at 1920×1080 and 3840×2160, in
	// proportion.
	tab.await(20*time.Second, "both previews drawn", `Array.from(document.querySelectorAll('.ed-screen')).every(s => s.querySelector('.board') && s.querySelector('.board').dataset.rendered === 'true' &&
		s.querySelector('.board [data-widget="kpi-1"] .kpi-value').dataset.value !== '')`)
	tab.expectEqual("preview sizes", `Array.from(document.querySelectorAll('.ed-screen')).map(s => s.offsetWidth + 'x' + s.offsetHeight).join(',')`, "1920x1080,3840x2160")
	tab.expectEqual("4K twice the size of 1080p", `(([a, b]) => String(parseFloat(getComputedStyle(b).fontSize) / parseFloat(getComputedStyle(a).fontSize)))(
		Array.from(document.querySelectorAll('.ed-screen [data-widget="kpi-1"] .kpi-value')))`, "2")
	tab.expectEqual("KPI value 6% of the preview's height", `(v => String(parseFloat(getComputedStyle(v).fontSize) / 1080 >= 0.06))(document.querySelector('.ed-screen [data-widget="kpi-1"] .kpi-value'))`, "true")
	saveScreenshot(t, tab, filepath.Join(dir, "editor.png"), "")
	tab.noExceptions()

	// The wall shows what was saved.
	wall := openTab(t, browser, w.base+"/wall/?dashboard=ed-test&access_token="+issueToken(t, auth.Viewer, "79"), chromedp.EmulateViewport(1920, 1080))
	wall.await(30*time.Second, "saved dashboard on the wall", `document.documentElement.dataset.firstRender`)
	wall.awaitEqual(15*time.Second, "the tile's figure", `document.querySelector('[data-widget="kpi-1"] .kpi-value').dataset.value`, jsonValue(n.kpis("79", "today").KPIs["on_time_rate"]))
	wall.expectEqual("widgets", `Array.from(document.querySelectorAll('.board .widget')).map(w => w.dataset.widget).sort().join(',')`, "clock,head,kpi-1,map-1")
	wall.noExceptions()
}
