package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/internal/apitest"
	"github.com/openioc/ioc/dashboards"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
	"github.com/openioc/ioc/versioned"
)

const docAdminToken = "documents-admin-token"

var docSecret = []byte("documents-secret")

// docEnv is a server whose documents are stored in a ClickHouse database
// of its own.
type docEnv struct {
	s     *Server
	store *versioned.Documents
	h     *geo.Hierarchy
}

func newDocEnv(t *testing.T) docEnv {
	t.Helper()
	st := testenv.Store(t)
	docs, err := versioned.NewDocuments(versioned.DocumentsConfig{}, st, lease.NewLocal().Acquire)
	if err != nil {
		t.Fatal(err)
	}
	return newDocEnvOn(t, docs, nil)
}

// newDocEnvOn is the server of docEnv over docs, with what more adds to
// its deps for the deployment's hierarchy.
func newDocEnvOn(t *testing.T, docs *versioned.Documents, more func(h *geo.Hierarchy, d *Deps)) docEnv {
	t.Helper()
	units, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := units.Hierarchy("vn-2025")
	d := Deps{Geo: units, KPIs: noFigures{h}, Auth: auth.NewVerifier(docAdminToken, docSecret),
		Documents: docs, Logger: slog.New(slog.DiscardHandler)}
	if more != nil {
		more(h, &d)
	}
	s, err := New(Config{}, d)
	if err != nil {
		t.Fatal(err)
	}
	return docEnv{s: s, store: docs, h: h}
}

func docToken(t *testing.T, role auth.Role, sub string) string {
	t.Helper()
	tok, err := auth.Issue(docSecret, auth.Principal{Subject: sub, Role: role, Areas: []string{"26734"}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call sends a request with a body and headers (name, value, …).
func (e docEnv) call(t *testing.T, method, target, token, body string, headers ...string) apitest.Reply {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.s.App().Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apitest.Reply{Code: resp.StatusCode, Header: resp.Header, Body: b}
}

func expect(t *testing.T, what string, r apitest.Reply, status int) {
	t.Helper()
	if r.Code != status {
		t.Fatalf("%s: %d %s, want %d", what, r.Code, r.Body, status)
	}
}

func decodeJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

const boardV1 = `{"id":"board","title":{"vi":"Bảng","en":"Board"},"area":"79","grid":{"columns":12,"rows":6},
  "widgets":[{"id":"k","type":"kpi","x":0,"y":0,"w":4,"h":2,"options":{"indicator":"online_rate"}}]}`

// TestDocumentLifecycle: saves are versions with who saved them, an
// unchanged save stores nothing, If-Match refuses a save over a version
// the client did not read, a deletion is a version, and a document in use
// cannot be deleted.
func TestDocumentLifecycle(t *testing.T) {
	e := newDocEnv(t)
	editor := docToken(t, auth.Admin, "editor")
	viewer := docToken(t, auth.Viewer, "leader")

	r := e.call(t, "GET", "/api/v1/dashboards", viewer, "")
	expect(t, "list before any save", r, 200)
	if got := string(r.Body); got != `{"count":0,"dashboards":[]}` {
		t.Errorf("empty list %s", got)
	}
	r = e.call(t, "PUT", "/api/v1/dashboards/board", editor, boardV1)
	expect(t, "first save", r, 201)
	if r.Header.Get("ETag") != `"1"` || r.Header.Get("Location") != "/api/v1/dashboards/board" {
		t.Errorf("first save headers ETag %q Location %q", r.Header.Get("ETag"), r.Header.Get("Location"))
	}
	v := decodeJSON[documentVersion](t, r.Body)
	if v.Version != 1 || v.SavedBy != "editor" || v.Kind != "dashboard" || v.Deleted {
		t.Errorf("first save answered %+v", v)
	}

	r = e.call(t, "GET", "/api/v1/dashboards/board", viewer, "")
	expect(t, "viewer reads", r, 200)
	if !strings.Contains(string(r.Body), `"window":"today","theme":"wall"`) || !strings.Contains(string(r.Body), `"compare":"none"`) {
		t.Errorf("stored form lacks its defaults: %s", r.Body)
	}
	if r.Header.Get("ETag") != `"1"` {
		t.Errorf("GET ETag %q", r.Header.Get("ETag"))
	}
	expect(t, "If-None-Match the current version", e.call(t, "GET", "/api/v1/dashboards/board", viewer, "", "If-None-Match", `"1"`), 304)

	// The same document again, spaced differently: nothing new.
	r = e.call(t, "PUT", "/api/v1/dashboards/board", editor, strings.ReplaceAll(boardV1, "\n", " "))
	expect(t, "unchanged save", r, 200)
	if v := decodeJSON[documentVersion](t, r.Body); v.Version != 1 {
		t.Errorf("an unchanged save stored version %d", v.Version)
	}
	boardV2 := strings.Replace(boardV1, `"Board"`, `"Board 2"`, 1)
	r = e.call(t, "PUT", "/api/v1/dashboards/board", docAdminToken, boardV2)
	expect(t, "second save", r, 200)
	if v := decodeJSON[documentVersion](t, r.Body); v.Version != 2 || v.SavedBy != "admin-token" {
		t.Errorf("second save %+v", v)
	}
	// A client that read version 1 does not overwrite version 2.
	r = e.call(t, "PUT", "/api/v1/dashboards/board", editor, strings.Replace(boardV1, `"Board"`, `"Board 3"`, 1), "If-Match", `"1"`)
	expect(t, "save over a stale version", r, 412)
	if !strings.Contains(string(r.Body), "at version 2") || !strings.Contains(string(r.Body), "admin-token saved it") {
		t.Errorf("412 says %s", r.Body)
	}
	r = e.call(t, "PUT", "/api/v1/dashboards/board", editor, strings.Replace(boardV1, `"Board"`, `"Board 3"`, 1), "If-Match", `"2"`)
	expect(t, "save over the version read", r, 200)
	expect(t, "create-only save of an existing id", e.call(t, "PUT", "/api/v1/dashboards/board", editor, boardV1, "If-None-Match", "*"), 412)
	r = e.call(t, "PUT", "/api/v1/dashboards/board", editor, strings.Replace(boardV1, `"id":"board"`, `"id":"other"`, 1))
	expect(t, "body id differs from the path's", r, 400)
	if !strings.Contains(string(r.Body), `"path":"id"`) {
		t.Errorf("id mismatch answered %s", r.Body)
	}
	r = e.call(t, "GET", "/api/v1/dashboards/board?version=1", viewer, "")
	expect(t, "read version 1", r, 200)
	if !strings.Contains(string(r.Body), `"en":"Board"`) || r.Header.Get("ETag") != `"1"` {
		t.Errorf("version 1 is %s", r.Body)
	}

	// In use by a playlist: not deleted.
	expect(t, "playlist", e.call(t, "PUT", "/api/v1/playlists/rotation", editor,
		`{"title":{"vi":"Vòng","en":"Rotation"},"items":[{"dashboard":"board","seconds":30}]}`), 201)
	r = e.call(t, "DELETE", "/api/v1/dashboards/board", editor, "")
	expect(t, "delete a dashboard in use", r, 409)
	if !strings.Contains(string(r.Body), "playlist rotation (items[0].dashboard)") {
		t.Errorf("409 says %s", r.Body)
	}
	expect(t, "viewer deletes", e.call(t, "DELETE", "/api/v1/playlists/rotation", viewer, ""), 403)
	expect(t, "delete the playlist", e.call(t, "DELETE", "/api/v1/playlists/rotation", editor, ""), 200)
	expect(t, "delete with a stale If-Match", e.call(t, "DELETE", "/api/v1/dashboards/board", editor, "", "If-Match", `"2"`), 412)
	r = e.call(t, "DELETE", "/api/v1/dashboards/board", editor, "", "If-Match", `"3"`)
	expect(t, "delete the dashboard", r, 200)
	if v := decodeJSON[documentVersion](t, r.Body); v.Version != 4 || !v.Deleted || v.SavedBy != "editor" {
		t.Errorf("deletion %+v", v)
	}
	r = e.call(t, "GET", "/api/v1/dashboards/board", viewer, "")
	expect(t, "read a deleted dashboard", r, 404)
	if !strings.Contains(string(r.Body), "was deleted by editor") {
		t.Errorf("404 says %s", r.Body)
	}
	expect(t, "delete again", e.call(t, "DELETE", "/api/v1/dashboards/board", editor, ""), 404)
	expect(t, "list after delete", e.call(t, "GET", "/api/v1/dashboards", viewer, ""), 200)

	r = e.call(t, "GET", "/api/v1/dashboards/board/versions", viewer, "")
	expect(t, "versions", r, 200)
	vl := decodeJSON[versionList](t, r.Body)
	var got []string
	for _, v := range vl.Versions {
		got = append(got, v.SavedBy)
		if v.Deleted != (v.Version == 4) {
			t.Errorf("version %d deleted=%v", v.Version, v.Deleted)
		}
	}
	if !slices.Equal(got, []string{"editor", "admin-token", "editor", "editor"}) || vl.Count != 4 {
		t.Errorf("versions saved by %q (count %d)", got, vl.Count)
	}
	// Saved again after its deletion: created anew, numbering goes on.
	r = e.call(t, "PUT", "/api/v1/dashboards/board", editor, boardV1)
	expect(t, "save after delete", r, 201)
	if v := decodeJSON[documentVersion](t, r.Body); v.Version != 5 {
		t.Errorf("save after delete stored version %d, want 5", v.Version)
	}
	expect(t, "no such dashboard", e.call(t, "GET", "/api/v1/dashboards/nothing", viewer, ""), 404)
	expect(t, "no versions", e.call(t, "GET", "/api/v1/dashboards/nothing/versions", viewer, ""), 404)
}

// TestDocumentRefusals: an invalid document is refused with every wrong
// field, its JSON path and how to fix it, checked against the server's
// own catalog and units; roles are enforced.
func TestDocumentRefusals(t *testing.T) {
	e := newDocEnv(t)
	body := `{"id":"bad","title":{"vi":"x","en":"x"},"area":"99999","window":"week","grid":{"columns":24,"rows":12},"widgets":[
	  {"id":"a","type":"kpi","x":0,"y":0,"w":4,"h":2,"options":{"indicator":"overdue"}},
	  {"id":"b","type":"map","x":2,"y":0,"w":4,"h":2,"options":{"indicator":"feedback_received","drilldown":{"dashboard":"nowhere"}}}]}`
	r := e.call(t, "PUT", "/api/v1/dashboards/bad", docAdminToken, body)
	expect(t, "invalid dashboard", r, 400)
	got := decodeJSON[invalidBody](t, r.Body)
	var paths []string
	for _, f := range got.Fields {
		paths = append(paths, f.Path)
		if f.Error == "" {
			t.Errorf("field %s without a message", f.Path)
		}
	}
	want := []string{"area", "window", "widgets[0].options.indicator", "widgets[1]", "widgets[1].options.indicator", "widgets[1].options.drilldown.dashboard"}
	if !slices.Equal(paths, want) {
		t.Errorf("paths %q, want %q\n%s", paths, want, r.Body)
	}
	if !strings.HasPrefix(got.Error, `dashboard "bad" is invalid: area: "99999" is not a unit`) {
		t.Errorf("error %q", got.Error)
	}
	expect(t, "nothing stored", e.call(t, "GET", "/api/v1/dashboards/bad", docAdminToken, ""), 404)
	expect(t, "not JSON", e.call(t, "PUT", "/api/v1/walls/w", docAdminToken, "{"), 400)
	for _, b := range []string{"null", "[]", `"wall"`} {
		r := e.call(t, "PUT", "/api/v1/walls/w", docAdminToken, b)
		expect(t, "not an object: "+b, r, 400)
		if !strings.Contains(string(r.Body), "must be an object (a wall)") {
			t.Errorf("%s answered %s", b, r.Body)
		}
	}
	expect(t, "an id no route takes", e.call(t, "GET", "/api/v1/dashboards/Bad_Id", docAdminToken, ""), 404)

	viewer, operator := docToken(t, auth.Viewer, "leader"), docToken(t, auth.Operator, "duty")
	ingest := docToken(t, auth.Ingest, "feeder")
	for _, c := range []struct {
		method, target, token string
		status                int
	}{
		{"PUT", "/api/v1/dashboards/board", viewer, 403},
		{"PUT", "/api/v1/screens/s1", operator, 403},
		{"DELETE", "/api/v1/walls/w", operator, 403},
		{"POST", "/api/v1/dashboards/import", viewer, 403},
		{"GET", "/api/v1/dashboards", ingest, 403},
		{"GET", "/api/v1/walls", "", 401},
		{"GET", "/api/v1/playlists", viewer, 200},
		{"GET", "/api/v1/screens", operator, 200},
		{"GET", "/api/v1/dashboards/export", viewer, 200},
	} {
		expect(t, c.method+" "+c.target, e.call(t, c.method, c.target, c.token, boardV1), c.status)
	}
}

// TestExportImportRoundTrip: the defaults exported from one server and
// imported into another export the same; importing again stores nothing;
// a set with one invalid document stores none of it.
func TestExportImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	a, b := newDocEnv(t), newDocEnv(t)
	if err := ProvisionDocuments(ctx, a.store, a.h, nil, "", slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	r := a.call(t, "GET", "/api/v1/dashboards/export", docAdminToken, "")
	expect(t, "export", r, 200)
	exported := r.Body
	if cd := r.Header.Get("Content-Disposition"); cd != `attachment; filename="dashboards.json"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	set := decodeJSON[dashboards.Export](t, exported)
	if len(set.Dashboards) != 4 || len(set.Playlists) != 2 || len(set.Walls) != 2 || len(set.Screens) != 7 {
		t.Fatalf("export holds %d dashboards, %d playlists, %d walls, %d screens", len(set.Dashboards), len(set.Playlists), len(set.Walls), len(set.Screens))
	}

	r = b.call(t, "POST", "/api/v1/dashboards/import", docToken(t, auth.Admin, "importer"), string(exported))
	expect(t, "import", r, 200)
	res := decodeJSON[importResult](t, r.Body)
	if len(res.Stored) != 15 || len(res.Unchanged) != 0 || res.Stored[0].SavedBy != "importer" || res.Stored[0].Version != 1 {
		t.Errorf("import stored %d, unchanged %d: %s", len(res.Stored), len(res.Unchanged), r.Body)
	}
	r = b.call(t, "GET", "/api/v1/dashboards/export", docAdminToken, "")
	expect(t, "export the import", r, 200)
	if !bytes.Equal(r.Body, exported) {
		t.Errorf("round trip differs:\n%s\n%s", exported, r.Body)
	}
	r = b.call(t, "POST", "/api/v1/dashboards/import", docAdminToken, string(exported))
	expect(t, "import again", r, 200)
	if res := decodeJSON[importResult](t, r.Body); len(res.Stored) != 0 || len(res.Unchanged) != 15 {
		t.Errorf("importing again stored %d", len(res.Stored))
	}

	// One good change and one broken document: nothing stored, both paths
	// of the broken one named.
	changed := strings.Replace(string(exported), `"Operations overview"`, `"Overview"`, 1)
	broken := strings.Replace(changed, `"id":"s6","title":{"vi":"Màn hình 6","en":"Screen 6"},"areas":["79"]`,
		`"id":"s6","title":{"vi":"Màn hình 6","en":"Screen 6"},"areas":["00000"]`, 1)
	if broken == changed {
		t.Fatal("test set-up: screen s6 not found in the export")
	}
	r = b.call(t, "POST", "/api/v1/dashboards/import", docAdminToken, broken)
	expect(t, "import with an invalid document", r, 400)
	if !strings.Contains(string(r.Body), `"path":"screens[6].areas[0]"`) {
		t.Errorf("import refusal %s", r.Body)
	}
	r = b.call(t, "GET", "/api/v1/dashboards/ops-79", docAdminToken, "")
	if r.Header.Get("ETag") != `"1"` || !strings.Contains(string(r.Body), `"Operations overview"`) {
		t.Errorf("ops-79 after a refused import: ETag %s %s", r.Header.Get("ETag"), r.Body)
	}
	r = b.call(t, "POST", "/api/v1/dashboards/import", docAdminToken, changed)
	expect(t, "import a change", r, 200)
	if res := decodeJSON[importResult](t, r.Body); len(res.Stored) != 1 || res.Stored[0].ID != "ops-79" || res.Stored[0].Version != 2 {
		t.Errorf("import of one change stored %+v", res.Stored)
	}
}

// TestProvisioning: documents of IOC_DASHBOARDS_DIR become new versions
// when they differ from the stored ones, and only then; the defaults come
// only into a store without dashboards; a broken file stops the start and
// stores nothing.
func TestProvisioning(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	e := newDocEnv(t)
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	versions := func(kind, id string) []string {
		t.Helper()
		vs, err := e.store.Versions(ctx, kind, id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range vs {
			out = append(out, v.SavedBy)
		}
		return out
	}
	write("board.json", boardV1)
	write("more.json", `{"playlists":[{"id":"rotation","title":{"vi":"Vòng","en":"Rotation"},"items":[{"dashboard":"board"}]}]}`)
	if err := ProvisionDocuments(ctx, e.store, e.h, nil, dir, log); err != nil {
		t.Fatal(err)
	}
	if got := versions("dashboard", "board"); !slices.Equal(got, []string{Provisioner}) {
		t.Errorf("board versions %q, want one by provisioning", got)
	}
	if got := versions("playlist", "rotation"); len(got) != 1 {
		t.Errorf("rotation versions %q", got)
	}
	if got := versions("dashboard", "ops-79"); len(got) != 0 {
		t.Errorf("defaults provisioned into a store with dashboards: %q", got)
	}
	// A restart with the same files stores nothing.
	if err := ProvisionDocuments(ctx, e.store, e.h, nil, dir, log); err != nil {
		t.Fatal(err)
	}
	if got := versions("dashboard", "board"); len(got) != 1 {
		t.Errorf("unchanged file stored again: %q", got)
	}
	// A changed file is a new version; the unchanged one stays.
	write("board.json", strings.Replace(boardV1, `"Board"`, `"Board 2"`, 1))
	if err := ProvisionDocuments(ctx, e.store, e.h, nil, dir, log); err != nil {
		t.Fatal(err)
	}
	if got := versions("dashboard", "board"); len(got) != 2 {
		t.Errorf("changed file: board versions %q, want 2", got)
	}
	if got := versions("playlist", "rotation"); len(got) != 1 {
		t.Errorf("unchanged playlist stored again: %q", got)
	}
	// A broken file: the start fails naming it, and nothing is stored.
	write("board.json", strings.Replace(boardV1, `"Board"`, `"Board 3"`, 1))
	write("broken.json", `{"id":"w","title":{"vi":"a","en":"a"},"columns":2,"rows":1,"screens":[{"screen":"s1","col":0,"row":0}],"playlist":"nowhere"}`)
	err := ProvisionDocuments(ctx, e.store, e.h, nil, dir, log)
	if err == nil || !strings.Contains(err.Error(), "broken.json: playlist: playlist \"nowhere\" does not exist") || !strings.Contains(err.Error(), "IOC_DASHBOARDS_DIR="+dir) {
		t.Errorf("broken file: %v", err)
	}
	if got := versions("dashboard", "board"); len(got) != 2 {
		t.Errorf("a broken folder stored board anyway: %q", got)
	}
	if err := ProvisionDocuments(ctx, e.store, e.h, nil, filepath.Join(dir, "missing"), log); err == nil {
		t.Error("a missing folder was taken for an empty one")
	}

	// A store without dashboards gets the defaults, once.
	fresh := newDocEnv(t)
	for range 2 {
		if err := ProvisionDocuments(ctx, fresh.store, fresh.h, nil, "", log); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range dashboards.Kinds {
		list, err := fresh.store.List(ctx, string(kind))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list {
			if d.Version != 1 || d.SavedBy != Provisioner {
				t.Errorf("default %s %s: version %d by %s, want 1 by provisioning", kind, d.ID, d.Version, d.SavedBy)
			}
		}
	}
	if w, err := fresh.store.Get(ctx, "wall", "wall-79"); err != nil || !strings.Contains(string(w.Body), `"takeover":{"min_severity":"critical","screens":["s1"]`) {
		t.Errorf("default wall: %s, %v", w.Body, err)
	}
}

// TestDocumentCatalogFixture keeps dashboards/testdata/catalog.json, which
// that package's tests check documents against, equal to the server's
// catalog and scoreboard groups.
func TestDocumentCatalogFixture(t *testing.T) {
	b, err := os.ReadFile("../dashboards/testdata/catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	var fixture struct {
		Indicators map[string]dashboards.Indicator `json:"indicators"`
		Groups     []string                        `json:"groups"`
	}
	if err := json.Unmarshal(b, &fixture); err != nil {
		t.Fatal(err)
	}
	want := map[string]dashboards.Indicator{}
	for _, d := range aggregate.Catalog() {
		want[d.ID] = dashboards.Indicator{Kind: d.Kind, Live: d.Live, History: d.History}
	}
	for id, ind := range want {
		if fixture.Indicators[id] != ind {
			t.Errorf("catalog.json %s: %+v, the server's %+v", id, fixture.Indicators[id], ind)
		}
	}
	for id := range fixture.Indicators {
		if _, ok := want[id]; !ok {
			t.Errorf("catalog.json has %s, which the server's catalog does not", id)
		}
	}
	var groups []string
	for _, g := range aggregate.Groups {
		groups = append(groups, g.ID)
	}
	if !slices.Equal(groups, fixture.Groups) {
		t.Errorf("catalog.json groups %q, the server's %q", fixture.Groups, groups)
	}
}
