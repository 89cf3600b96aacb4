package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/api/auth"
)

// month is the month before last, local: closed, and in the past for ingest.
var month = func() time.Time {
	now := time.Now().In(hcm)
	return time.Date(now.Year(), now.Month()-2, 1, 0, 0, 0, 0, hcm)
}()

// at is a local time in month.
func at(day, hour int) string {
	return time.Date(month.Year(), month.Month(), day, hour, 0, 0, 0, hcm).Format(time.RFC3339)
}

// analystData files dossiers of month in two wards of Hồ Chí Minh City
// through HTTP: Bến Thành resolves one of two on time, Sài Gòn its only one.
func analystData(t *testing.T, n *node) {
	t.Helper()
	ev := func(id, dossier, area, status, occurred, due string) map[string]any {
		return map[string]any{"event_id": id, "dossier_id": dossier, "procedure_code": "1.004227", "sector": "land",
			"area_code": area, "channel": "online", "status": status, "occurred_at": occurred, "due_at": due}
	}
	code, r := n.ingest(
		ev("a1", "A", "26743", "received", at(1, 8), at(3, 17)),
		ev("a2", "A", "26743", "resolved", at(2, 8), at(3, 17)),
		ev("b1", "B", "26743", "received", at(1, 9), at(3, 17)),
		ev("b2", "B", "26743", "resolved", at(9, 9), at(3, 17)),
		ev("c1", "C", "26740", "received", at(5, 8), at(7, 17)),
		ev("c2", "C", "26740", "resolved", at(6, 8), at(7, 17)),
	)
	if code != 202 || r.Accepted != 6 {
		t.Fatalf("ingest: %d %+v", code, r)
	}
}

func TestAnalystSeriesRankingAndCSV(t *testing.T) {
	runsBesideOthers(t)
	n := startNode(t, testConfig(t))
	analystData(t, n)
	viewer := issueToken(t, auth.Viewer, "79")

	var s struct {
		KPI    string `json:"kpi"`
		Step   string `json:"step"`
		Points []struct {
			T           string   `json:"t"`
			Value       *float64 `json:"value"`
			Numerator   *float64 `json:"numerator"`
			Denominator *float64 `json:"denominator"`
		} `json:"points"`
	}
	days := month.AddDate(0, 1, -1).Day()
	if code := n.get("/api/v1/kpis/on_time_rate/series?from="+month.Format("2006-01-02")+"&to="+month.AddDate(0, 1, -1).Format("2006-01-02")+"&step=day", viewer, &s); code != 200 {
		t.Fatalf("series: status %d", code)
	}
	if len(s.Points) != days || s.Points[0].T != at(1, 0) {
		t.Fatalf("series: got %d points from %s, want %d from %s", len(s.Points), s.Points[0].T, days, at(1, 0))
	}
	if p := s.Points[1]; p.Value == nil || *p.Value != 1 || *p.Denominator != 1 {
		t.Errorf("the 2nd: got %+v, want 1 of 1 on time", p)
	}
	if p := s.Points[2]; p.Value != nil || *p.Denominator != 0 {
		t.Errorf("the 3rd, nothing resolved: got value %v, want null", p.Value)
	}

	// The ranking as a spreadsheet: BOM, a header naming units, Vietnamese names intact.
	rows := n.getCSV("/api/v1/kpis/on_time_rate/ranking?parent=79&level=commune&from="+month.Format("2006-01-02")+"&to="+month.AddDate(0, 1, -1).Format("2006-01-02")+"&limit=3&format=csv", viewer)
	want := [][]string{
		{"rank", "area", "area_name", "value [ratio]", "numerator [dossiers resolved on time]", "denominator [dossiers resolved]"},
		{"1", "26740", "Sài Gòn", "1", "1", "1"},
		{"2", "26743", "Bến Thành", "0.5", "1", "2"},
	}
	for i, w := range want {
		if strings.Join(rows[i], "|") != strings.Join(w, "|") {
			t.Errorf("CSV row %d: got %q, want %q", i, rows[i], w)
		}
	}
	if len(rows) != 4 || rows[3][3] != "" {
		t.Errorf("CSV: got %d rows, want the header and 3 units, the third without a value: %q", len(rows), rows)
	}
	areas := n.getCSV("/api/v1/areas?parent=79&level=commune&format=csv", viewer)
	if len(areas) != 169 || areas[0][0] != "code" {
		t.Errorf("areas as CSV: got %d rows starting %q, want a header and 168 communes", len(areas), areas[0])
	}
	kids := n.getCSV("/api/v1/areas/79/children/kpis?window=30d&format=csv", viewer)
	col := map[string]int{}
	for i, h := range kids[0] {
		col[h] = i
	}
	if _, ok := col["on_time_rate [ratio]"]; !ok {
		t.Fatalf("children figures as CSV: header %q has no on_time_rate [ratio]", kids[0])
	}
	for _, r := range kids[1:] {
		if r[0] == "26743" && r[1] != "Bến Thành" {
			t.Errorf("children figures as CSV: 26743 is named %q, want Bến Thành", r[1])
		}
	}
	var viaAccept bytes.Buffer
	r2 := n.doWith("GET", "/api/v1/kpis", viewer, map[string]string{"Accept": "text/csv"})
	io.Copy(&viaAccept, r2.Body)
	r2.Body.Close()
	if !strings.Contains(viaAccept.String(), "on_time_rate,Tỷ lệ giải quyết đúng hạn") {
		t.Errorf("catalog as CSV through Accept: got %.200q", viaAccept.String())
	}

	for _, c := range []struct {
		path string
		code int
		says string
	}{
		{"/api/v1/kpis/on_time_rate/series?step=hour&from=2026-01-01&to=2026-03-01", 422, "31 days"},
		{"/api/v1/kpis/on_time_rate/series?step=fortnight", 400, "step"},
		{"/api/v1/kpis/cameras_online/series", 422, "present moment"},
		{"/api/v1/kpis/nope/series", 404, "no indicator"},
		{"/api/v1/kpis/on_time_rate/series?area=01", 403, "does not cover"},
		{"/api/v1/kpis/on_time_rate/ranking?by=type", 422, "breaks down by"},
		{"/api/v1/kpis/on_time_rate/series?format=xlsx", 400, "format"},
		{"/api/v1/scoreboard?period=2026-Q5", 400, "period"},
	} {
		var e struct {
			Error string `json:"error"`
		}
		if code := n.get(c.path, viewer, &e); code != c.code || !strings.Contains(e.Error, c.says) {
			t.Errorf("%s: got %d %q, want %d saying %q", c.path, code, e.Error, c.code, c.says)
		}
	}

	var sb struct {
		Rank struct {
			Position int `json:"position"`
			Of       int `json:"of"`
		} `json:"rank"`
		Siblings []struct {
			Area string `json:"area"`
		} `json:"siblings"`
	}
	if code := n.get("/api/v1/scoreboard?period="+month.Format("2006-01"), viewer, &sb); code != 200 {
		t.Fatalf("scoreboard: status %d", code)
	}
	if sb.Rank.Position != 1 || sb.Rank.Of != 34 || len(sb.Siblings) != 1 || sb.Siblings[0].Area != "79" {
		t.Errorf("scoreboard for a province token: got rank %+v and siblings %+v, want 1 of 34 and only 79 listed", sb.Rank, sb.Siblings)
	}
}

func TestClosingAPeriodFreezesItsFigures(t *testing.T) {
	runsBesideOthers(t)
	n := startNode(t, testConfig(t))
	analystData(t, n)
	viewer := issueToken(t, auth.Viewer, "79")
	var e struct {
		Error string `json:"error"`
	}
	if code := n.post("/api/v1/periods/"+month.Format("2006-01")+"/close", viewer, "application/json", nil, &e); code != 403 {
		t.Errorf("close by a viewer: got %d, want 403", code)
	}
	var closed struct {
		ClosedBy string `json:"closed_by"`
		Figures  int    `json:"figures"`
	}
	if code := n.post("/api/v1/periods/"+month.Format("2006-01")+"/close", adminToken, "application/json", []byte(`{"note":"báo cáo tháng 10"}`), &closed); code != 201 || closed.ClosedBy != "admin-token" {
		t.Fatalf("close: got %d %+v", code, closed)
	}
	if code := n.post("/api/v1/periods/"+month.Format("2006-01")+"/close", adminToken, "application/json", nil, &e); code != 409 || !strings.Contains(e.Error, "admin-token") {
		t.Errorf("second close: got %d %q, want 409 naming who closed it", code, e.Error)
	}
	// A correction after the close: B's resolution really came on the 3rd.
	ev := map[string]any{"event_id": "b3", "dossier_id": "B", "procedure_code": "1.004227", "sector": "land", "area_code": "26743",
		"channel": "online", "status": "resolved", "occurred_at": at(3, 9), "due_at": at(3, 17)}
	if code, r := n.ingest(ev); code != 202 || r.Accepted != 1 {
		t.Fatalf("correction: %d %+v", code, r)
	}
	var figs struct {
		Note  string `json:"note"`
		Items []struct {
			Area   string `json:"area"`
			KPI    string `json:"kpi"`
			Closed struct {
				Value *float64 `json:"value"`
			} `json:"closed"`
			Live struct {
				Value *float64 `json:"value"`
			} `json:"live"`
			Drift *float64 `json:"drift"`
		} `json:"items"`
	}
	if code := n.get("/api/v1/periods/"+month.Format("2006-01"), viewer, &figs); code != 200 {
		t.Fatalf("closed figures: status %d", code)
	}
	found := false
	for _, it := range figs.Items {
		if it.Area == "26743" && it.KPI == "on_time_rate" {
			found = true
			if *it.Closed.Value != 0.5 || *it.Live.Value != 1 || *it.Drift != 0.5 {
				t.Errorf("Bến Thành on time: closed %v, live %v, drift %v; want 0.5, 1, 0.5", *it.Closed.Value, *it.Live.Value, *it.Drift)
			}
		}
	}
	if !found || figs.Note != "báo cáo tháng 10" {
		t.Errorf("closed figures: found Bến Thành %v, note %q", found, figs.Note)
	}
	var list struct {
		Periods []struct {
			Period string `json:"period"`
		} `json:"periods"`
	}
	if code := n.get("/api/v1/periods", viewer, &list); code != 200 || len(list.Periods) != 1 || list.Periods[0].Period != month.Format("2006-01") {
		t.Errorf("periods: got %d %+v", code, list)
	}
	if code := n.get("/api/v1/periods/"+month.AddDate(0, -1, 0).Format("2006-01"), viewer, &e); code != 404 {
		t.Errorf("a period never closed: got %d, want 404", code)
	}
}

// TestPeriodsCloseOnlyWithRecordsAndReopenWithAReason: an empty month is
// refused unless forced; an admin reopens a closed month with a reason, a
// late correction then moves its live figure and a new close freezes the
// new value; GET /api/v1/periods lists every step, in JSON and CSV.
func TestPeriodsCloseOnlyWithRecordsAndReopenWithAReason(t *testing.T) {
	runsBesideOthers(t)
	n := startNode(t, testConfig(t))
	analystData(t, n)
	viewer := issueToken(t, auth.Viewer, "79")
	name, empty := month.Format("2006-01"), month.AddDate(0, -1, 0).Format("2006-01")
	var e struct {
		Error string `json:"error"`
	}
	post := func(path, token, body string, v any) int {
		t.Helper()
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		e.Error = ""
		return n.post(path, token, "application/json", b, v)
	}
	if code := post("/api/v1/periods/"+empty+"/close", adminToken, "", &e); code != 422 || !strings.Contains(e.Error, "no records") || !strings.Contains(e.Error, "force=true") {
		t.Fatalf("closing a month without records: got %d %q, want 422 saying so and that force=true closes it", code, e.Error)
	}
	if code := post("/api/v1/periods/"+empty+"/close?force=maybe", adminToken, "", &e); code != 400 || !strings.Contains(e.Error, "force") {
		t.Errorf("force that is not a boolean: got %d %q, want 400", code, e.Error)
	}
	if code := post("/api/v1/periods/"+empty+"/close?force=true", adminToken, `{"note":"không có hồ sơ"}`, &e); code != 201 {
		t.Fatalf("closing it with force: got %d %q, want 201", code, e.Error)
	}
	if code := post("/api/v1/periods/"+name+"/reopen", adminToken, `{"reason":"không đóng"}`, &e); code != 409 || !strings.Contains(e.Error, "never been closed") {
		t.Errorf("reopening a period never closed: got %d %q, want 409", code, e.Error)
	}
	var first struct {
		ClosedAt string `json:"closed_at"`
		Figures  int    `json:"figures"`
	}
	if code := post("/api/v1/periods/"+name+"/close", adminToken, `{"note":"báo cáo tháng"}`, &first); code != 201 {
		t.Fatalf("close: got %d", code)
	}
	if code := post("/api/v1/periods/"+name+"/reopen", viewer, `{"reason":"x"}`, &e); code != 403 {
		t.Errorf("reopening with a viewer token: got %d, want 403", code)
	}
	for _, body := range []string{"", `{}`, `{"reason":"  "}`} {
		if code := post("/api/v1/periods/"+name+"/reopen", adminToken, body, &e); code != 400 || !strings.Contains(e.Error, "reason") {
			t.Errorf("reopening with body %q: got %d %q, want 400 asking for a reason", body, code, e.Error)
		}
	}
	var reopened struct {
		State string `json:"state"`
	}
	if code := post("/api/v1/periods/"+name+"/reopen", adminToken, `{"reason":"Bến Thành báo sai ngày trả kết quả"}`, &reopened); code != 200 || reopened.State != "open" {
		t.Fatalf("reopen: got %d %+v, want 200 and the period open", code, reopened)
	}
	if code := post("/api/v1/periods/"+name+"/reopen", adminToken, `{"reason":"again"}`, &e); code != 409 || !strings.Contains(e.Error, "not closed") {
		t.Errorf("reopening an open period: got %d %q, want 409", code, e.Error)
	}
	if code := n.get("/api/v1/periods/"+name, viewer, &e); code != 404 || !strings.Contains(e.Error, "reopened") {
		t.Errorf("official figures of a reopened period: got %d %q, want 404 saying it was reopened", code, e.Error)
	}
	// The correction: B's resolution really came on the 3rd, on time.
	ev := map[string]any{"event_id": "b3", "dossier_id": "B", "procedure_code": "1.004227", "sector": "land", "area_code": "26743",
		"channel": "online", "status": "resolved", "occurred_at": at(3, 9), "due_at": at(3, 17)}
	if code, r := n.ingest(ev); code != 202 || r.Accepted != 1 {
		t.Fatalf("correction: %d %+v", code, r)
	}
	if code := post("/api/v1/periods/"+name+"/close", adminToken, `{"note":"báo cáo tháng, đã sửa"}`, &e); code != 201 {
		t.Fatalf("second close: got %d %q", code, e.Error)
	}
	benThanh := func(query string) (closed, live float64, superseded bool) {
		t.Helper()
		var figs struct {
			Superseded bool `json:"superseded"`
			Items      []struct {
				Area   string `json:"area"`
				KPI    string `json:"kpi"`
				Closed struct {
					Value *float64 `json:"value"`
				} `json:"closed"`
				Live struct {
					Value *float64 `json:"value"`
				} `json:"live"`
			} `json:"items"`
		}
		if code := n.get("/api/v1/periods/"+name+query, viewer, &figs); code != 200 {
			t.Fatalf("figures%s: status %d", query, code)
		}
		for _, it := range figs.Items {
			if it.Area == "26743" && it.KPI == "on_time_rate" {
				return *it.Closed.Value, *it.Live.Value, figs.Superseded
			}
		}
		t.Fatalf("figures%s: no on_time_rate of Bến Thành", query)
		return 0, 0, false
	}
	if closed, live, superseded := benThanh(""); closed != 1 || live != 1 || superseded {
		t.Errorf("Bến Thành on time after the new close: closed %v, live %v, superseded %v; want 1, 1, false", closed, live, superseded)
	}
	if closed, _, superseded := benThanh("?closed_at=" + url.QueryEscape(first.ClosedAt)); closed != 0.5 || !superseded {
		t.Errorf("Bến Thành on time as first closed: closed %v, superseded %v; want 0.5, true", closed, superseded)
	}

	var list struct {
		Periods []struct {
			Period string `json:"period"`
			State  string `json:"state"`
			Audit  []struct {
				Action  string `json:"action"`
				By      string `json:"by"`
				Note    string `json:"note"`
				Figures int    `json:"figures"`
				Forced  bool   `json:"forced"`
			} `json:"audit"`
		} `json:"periods"`
	}
	if code := n.get("/api/v1/periods", viewer, &list); code != 200 || len(list.Periods) != 2 {
		t.Fatalf("periods: got %d %+v, want two", code, list)
	}
	var trail []string
	for _, p := range list.Periods {
		for _, a := range p.Audit {
			trail = append(trail, fmt.Sprintf("%s %s %s by %s (%s) %d forced=%v", p.Period, p.State, a.Action, a.By, a.Note, a.Figures, a.Forced))
		}
	}
	want := []string{
		fmt.Sprintf("%s closed close by admin-token (báo cáo tháng) %d forced=false", name, first.Figures),
		fmt.Sprintf("%s closed reopen by admin-token (Bến Thành báo sai ngày trả kết quả) %d forced=false", name, first.Figures),
		fmt.Sprintf("%s closed close by admin-token (báo cáo tháng, đã sửa) %d forced=false", name, first.Figures),
		fmt.Sprintf("%s closed close by admin-token (không có hồ sơ) %d forced=true", empty, first.Figures),
	}
	if strings.Join(trail, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit trail, newest period first, each in order:\n got %s\nwant %s", strings.Join(trail, "\n"), strings.Join(want, "\n"))
	}
	rows := n.getCSV("/api/v1/periods?format=csv", viewer)
	if len(rows) != 5 || strings.Join(rows[0], ",") != "period,from,to,state,action,by,at,note,figures,forced" {
		t.Fatalf("periods as CSV: got %q, want a header and a row per close and reopening", rows)
	}
	for i, r := range rows[1:] {
		if got := fmt.Sprintf("%s %s %s by %s (%s) %s forced=%s", r[0], r[3], r[4], r[5], r[7], r[8], r[9]); got != want[i] {
			t.Errorf("CSV row %d: got %s, want %s", i+1, got, want[i])
		}
	}
}

// doWith sends a request with extra headers.
func (n *node) doWith(method, path, token string, headers map[string]string) *http.Response {
	n.t.Helper()
	req, err := http.NewRequest(method, n.base+path, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// getCSV fetches a CSV answer, checks its type and byte-order mark, and
// parses it.
func (n *node) getCSV(path, token string) [][]string {
	n.t.Helper()
	resp := n.do("GET", path, token, "", nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		n.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		n.t.Errorf("GET %s: content type %q, want text/csv", path, ct)
	}
	if !bytes.HasPrefix(body, []byte("\xEF\xBB\xBF")) {
		n.t.Fatalf("GET %s: CSV does not start with a UTF-8 byte-order mark: %q", path, body[:min(len(body), 16)])
	}
	rows, err := csv.NewReader(bytes.NewReader(body[3:])).ReadAll()
	if err != nil {
		n.t.Fatalf("GET %s: parse CSV: %v", path, err)
	}
	return rows
}
