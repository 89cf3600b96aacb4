package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/dataset"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
	"github.com/openioc/ioc/report"
	"github.com/openioc/ioc/versioned"
)

// enrolmentYAML is a definition as a department would keep it in
// IOC_DATASETS_DIR: YAML, Vietnamese column headers mapped to measures.
const enrolmentYAML = `id: enrolment
name_vi: Tuyển sinh
name_en: School enrolment
department: Sở Giáo dục và Đào tạo
grain: year
level: commune
area: "79"
columns: {unit: Mã xã, period: Năm học}
measures:
  - {id: pupils, name_vi: Học sinh, name_en: Pupils, unit: pupils, column: Số học sinh, rollup: sum, over_time: last}
  - {id: teachers, name_vi: Giáo viên, name_en: Teachers, unit: teachers, column: Số giáo viên, rollup: sum, over_time: last}
indicators:
  - {id: pupils_per_teacher, name_vi: Học sinh trên một giáo viên, name_en: Pupils per teacher, unit: pupils,
     numerator: pupils, denominator: teachers, direction: lower_is_better}
`

// datasetEnv is a server with datasets defined in and stored to a
// ClickHouse database of its own, and the report engine over it.
type datasetEnv struct {
	docEnv
	ds *dataset.Datasets
}

func newDatasetEnv(t *testing.T) datasetEnv {
	t.Helper()
	st := testenv.Store(t)
	leases := lease.NewLocal()
	docs, err := versioned.NewDocuments(versioned.DocumentsConfig{}, st, leases.Acquire)
	if err != nil {
		t.Fatal(err)
	}
	var ds *dataset.Datasets
	env := newDocEnvOn(t, docs, func(h *geo.Hierarchy, d *Deps) {
		if ds, err = dataset.New(dataset.Config{}, st, docs, h, d.Logger); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "enrolment.yaml"), []byte(enrolmentYAML), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := ProvisionDatasets(context.Background(), docs, ds, h, dir, d.Logger); err != nil {
			t.Fatal(err)
		}
		reports, err := report.New(report.Config{Datasets: ds}, st, h, leases, d.Logger)
		if err != nil {
			t.Fatal(err)
		}
		d.Datasets, d.Reports = ds, reports
	})
	return datasetEnv{docEnv: env, ds: ds}
}

// TestADatasetFromAFolderFedByCSVIsServedAsAnIndicator: a definition from
// IOC_DATASETS_DIR, values uploaded as a CSV with Vietnamese headers and a
// BOM, and the dataset's indicators in the catalog, series and rankings
// equal to hand computation; a corrected upload replaces a commune's
// year and the history keeps both.
func TestADatasetFromAFolderFedByCSVIsServedAsAnIndicator(t *testing.T) {
	e := newDatasetEnv(t)
	communes := e.h.Select("commune", "79")
	a, b, c := communes[0].Code, communes[1].Code, communes[2].Code
	csv := "\ufeffMã xã,Năm học,Số học sinh,Số giáo viên\n" +
		a + ",2024,1000,50\n" +
		a + ",2025,1200,60\n" +
		b + ",2025,900,30\n" +
		c + ",2025,\"1.234,5\",5\n" + // a decimal comma: refused, the rest stored
		"99999,2025,10,1\n"
	r := e.call(t, "POST", "/api/v1/datasets/enrolment/values", docAdminToken, csv, "Content-Type", "text/csv")
	expect(t, "upload", r, 200)
	up := decodeJSON[uploadAnswer](t, r.Body)
	if up.Stored != 3 || up.Refused != 2 || len(up.Problems) != 2 || up.Problems[0].Line != 5 || up.Problems[1].Line != 6 {
		t.Fatalf("upload: got %s, want 3 stored and lines 5 and 6 refused", r.Body)
	}
	if !strings.Contains(up.Problems[1].Error, `unit "99999" is not in the hierarchy`) {
		t.Errorf("an unknown unit's problem says %q", up.Problems[1].Error)
	}

	cat := e.call(t, "GET", "/api/v1/kpis", docAdminToken, "")
	expect(t, "catalog", cat, 200)
	var body struct {
		KPIs []struct{ ID, Kind, Unit, Direction, Numerator, Denominator, Source string }
	}
	if err := json.Unmarshal(cat.Body, &body); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(body.KPIs, func(k struct{ ID, Kind, Unit, Direction, Numerator, Denominator, Source string }) bool {
		return k.ID == "enrolment.pupils_per_teacher"
	})
	if i < 0 || body.KPIs[i].Kind != "ratio" || body.KPIs[i].Numerator != "enrolment.pupils" || body.KPIs[i].Direction != "lower_is_better" ||
		!strings.Contains(body.KPIs[i].Source, "Sở Giáo dục") {
		t.Fatalf("the catalog lacks the dataset's ratio as defined: %s", cat.Body)
	}

	// The province's pupils per teacher in 2025: (1200 + 900) / (60 + 30).
	series := e.call(t, "GET", "/api/v1/kpis/enrolment.pupils_per_teacher/series?area=79&step=year&from=2024-01-01&to=2025-12-31", docAdminToken, "")
	expect(t, "series", series, 200)
	s := decodeJSON[report.Series](t, series.Body)
	if got := pointsOf(s.Points); got != "2024:1000/50=20 2025:2100/90=23.3333" {
		t.Errorf("series: got %s, want 2024 1000/50 then 2025 2100/90", got)
	}
	// Over both years, each commune's latest year counts: the same.
	rank := e.call(t, "GET", "/api/v1/kpis/enrolment.pupils_per_teacher/ranking?parent=79&level=commune&from=2024-01-01&to=2025-12-31&limit=3", docAdminToken, "")
	expect(t, "ranking", rank, 200)
	rk := decodeJSON[report.Ranking](t, rank.Body)
	// Lower is better: 20 before 30; a commune without values last.
	if rk.Order != "asc" || len(rk.Items) != 3 || rk.Items[0].Area != a || *rk.Items[0].Value.Value != 20 || rk.Items[1].Area != b ||
		*rk.Items[1].Value.Value != 30 || rk.Items[2].Value.Value != nil {
		t.Errorf("ranking: got %s, want %s (1200/60) then %s (900/30), best (lowest) first", rank.Body, a, b)
	}
	// A month step is finer than the dataset's grain.
	expect(t, "a series by month", e.call(t, "GET", "/api/v1/kpis/enrolment.pupils/series?area=79&step=month", docAdminToken, ""), 422)

	// A correction: the commune's 2025 sent again as JSON.
	fix := fmt.Sprintf(`[{"Mã xã": %q, "Năm học": "2025", "Số học sinh": 1260, "Số giáo viên": 63}]`, a)
	expect(t, "correction", e.call(t, "POST", "/api/v1/datasets/enrolment/values", docAdminToken, fix), 200)
	series = e.call(t, "GET", "/api/v1/kpis/enrolment.pupils/series?area=79&step=year&from=2025-01-01&to=2025-12-31", docAdminToken, "")
	if got := pointsOf(decodeJSON[report.Series](t, series.Body).Points); got != "2025:2160/-=2160" {
		t.Errorf("pupils after the correction: got %s, want 1260 + 900", got)
	}
	// Where the corrected figure came from: the correction for the first
	// commune, the first upload for the second, one pupils value each.
	explained := e.call(t, "GET", "/api/v1/kpis/enrolment.pupils/series?area=79&step=year&from=2025-01-01&to=2025-12-31&explain=true", docAdminToken, "")
	expect(t, "series explained", explained, 200)
	ex := decodeJSON[report.Series](t, explained.Body).Explain
	// Uploads of the same second come in no set order.
	if ex == nil || len(ex.Datasets) != 1 || ex.Datasets[0].Dataset != "enrolment" || ex.Datasets[0].Definition != 1 ||
		len(ex.Datasets[0].Uploads) != 2 || ex.Datasets[0].Uploads[0].Values != 1 || ex.Datasets[0].Uploads[1].Values != 1 ||
		!slices.ContainsFunc(ex.Datasets[0].Uploads, func(u report.UploadSource) bool { return u.ID == up.Upload && u.Refused == 2 }) ||
		!slices.ContainsFunc(ex.Datasets[0].Uploads, func(u report.UploadSource) bool { return u.ID != up.Upload && u.Rows == 1 }) {
		t.Errorf("explain: got %s, want definition 1, upload %s and the correction, one value each", explained.Body, up.Upload)
	}
	expect(t, "explain as CSV", e.call(t, "GET", "/api/v1/kpis/enrolment.pupils/series?area=79&step=year&explain=true&format=csv", docAdminToken, ""), 400)
	hist := e.call(t, "GET", "/api/v1/datasets/enrolment/history?unit="+a+"&period=2025", docAdminToken, "")
	expect(t, "history", hist, 200)
	var h struct{ Versions []dataset.Version }
	if err := json.Unmarshal(hist.Body, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Versions) != 2 || h.Versions[0].Values["pupils"] != 1200 || h.Versions[1].Values["pupils"] != 1260 || !h.Versions[1].Current {
		t.Errorf("history: got %s, want 1200 then 1260 (current)", hist.Body)
	}

	// Do communes with more pupils have more teachers? Each commune's
	// latest year: (1260, 63), (900, 30), (500, 40).
	late := fmt.Sprintf(`{"Mã xã": %q, "Năm học": "2025", "Số học sinh": 500, "Số giáo viên": 40}`, c)
	expect(t, "a third commune", e.call(t, "POST", "/api/v1/datasets/enrolment/values", docAdminToken, late, "Content-Type", "application/x-ndjson"), 200)
	rel := e.call(t, "GET", "/api/v1/analysis/relationship?x=enrolment.pupils&y=enrolment.teachers&parent=79&level=commune&from=2024-01-01&to=2025-12-31", docAdminToken, "")
	expect(t, "relationship", rel, 200)
	rs := decodeJSON[report.Relationship](t, rel.Body)
	// The reference: the three pairs worked through the textbook formulas
	// outside the project (r = Sxy/√(Sxx·Syy), slope Sxy/Sxx).
	if rs.N != 3 || rs.Pearson == nil || *rs.Pearson != 0.657 || rs.Line == nil || rs.Line.Slope != 0.0292 || rs.Line.Intercept != 18.4041 ||
		len(rs.Outliers) != 3 || len(rs.Units) != len(communes) {
		t.Errorf("relationship: got n %d, pearson %v, line %+v, %d outliers, %d units; want 3, 0.657, 0.0292x + 18.4041, 3, %d",
			rs.N, rs.Pearson, rs.Line, len(rs.Outliers), len(rs.Units), len(communes))
	}
	csvRel := e.call(t, "GET", "/api/v1/analysis/relationship?x=enrolment.pupils&y=enrolment.teachers&parent=79&from=2024-01-01&to=2025-12-31&format=csv", docAdminToken, "")
	expect(t, "relationship as CSV", csvRel, 200)
	if !strings.Contains(string(csvRel.Body), "residual [teachers]") {
		t.Errorf("the CSV header lacks the residual: %.200s", csvRel.Body)
	}
	// The residuals as a map layer: every commune a feature with its
	// geometry, those with both figures their residual as in the JSON.
	geoRel := e.call(t, "GET", "/api/v1/analysis/relationship?x=enrolment.pupils&y=enrolment.teachers&parent=79&from=2024-01-01&to=2025-12-31&format=geojson&zoom=8", docAdminToken, "")
	expect(t, "relationship as a map", geoRel, 200)
	var fc struct {
		Features []struct {
			Geometry   struct{ Type string }
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(geoRel.Body, &fc); err != nil {
		t.Fatal(err)
	}
	residuals := map[string]float64{}
	for _, p := range rs.Units {
		if p.Residual != nil {
			residuals[p.Area] = *p.Residual
		}
	}
	mapped := 0
	for _, f := range fc.Features {
		code, _ := f.Properties["code"].(string)
		if f.Geometry.Type != "MultiPolygon" {
			t.Errorf("the map's %s has geometry %q, want MultiPolygon", code, f.Geometry.Type)
		}
		if want, ok := residuals[code]; ok {
			mapped++
			if got, _ := f.Properties["residual"].(float64); got != want || f.Properties["residual_sd"] == nil {
				t.Errorf("the map's %s: residual %v (sd %v), want %v as in the JSON", code, f.Properties["residual"], f.Properties["residual_sd"], want)
			}
		} else if f.Properties["residual"] != nil {
			t.Errorf("the map's %s has residual %v, want null: it lacks a figure", code, f.Properties["residual"])
		}
	}
	if len(fc.Features) != len(communes) || mapped != 3 {
		t.Errorf("the map has %d features, %d with residuals; want %d, 3", len(fc.Features), mapped, len(communes))
	}
	expect(t, "a series as a map", e.call(t, "GET", "/api/v1/kpis/enrolment.pupils/series?area=79&step=year&format=geojson", docAdminToken, ""), 400)

	// Liveness: a yearly feed whose 2025 came is due next for 2026 only
	// once 2026 has ended and its due days passed.
	health := e.call(t, "GET", "/api/v1/datasets/health", docAdminToken, "")
	expect(t, "health", health, 200)
	var hb struct{ Datasets []dataset.Health }
	if err := json.Unmarshal(health.Body, &hb); err != nil {
		t.Fatal(err)
	}
	if len(hb.Datasets) != 1 || hb.Datasets[0].LatestPeriod != "2025" || hb.Datasets[0].Reported != 3 ||
		hb.Datasets[0].Expected != len(e.h.Select("commune", "79")) || hb.Datasets[0].LastUpload == nil {
		t.Errorf("health: got %s", health.Body)
	}
}

// TestDatasetUploadsKeepToTheTokensAreas: an ingest token of one commune
// stores its own rows and is refused the others', row by row; a viewer
// may not upload at all.
func TestDatasetUploadsKeepToTheTokensAreas(t *testing.T) {
	e := newDatasetEnv(t)
	own, other := e.h.Select("commune", "79")[0].Code, e.h.Select("commune", "79")[1].Code
	tok, err := auth.Issue(docSecret, auth.Principal{Subject: "so-gd", Role: auth.Ingest, Areas: []string{own}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	nd := `{"Mã xã":"` + own + `","Năm học":"2025","Số học sinh":10}` + "\n" + `{"Mã xã":"` + other + `","Năm học":"2025","Số học sinh":20}` + "\n"
	r := e.call(t, "POST", "/api/v1/datasets/enrolment/values", tok, nd, "Content-Type", "application/x-ndjson")
	expect(t, "upload", r, 200)
	up := decodeJSON[uploadAnswer](t, r.Body)
	if up.Stored != 1 || up.Refused != 1 || !strings.Contains(up.Problems[0].Error, "outside the areas your token covers") {
		t.Errorf("got %s, want the token's commune's row stored and the other refused as outside the token", r.Body)
	}
	expect(t, "a viewer's upload", e.call(t, "POST", "/api/v1/datasets/enrolment/values", docToken(t, auth.Viewer, "v"), nd,
		"Content-Type", "application/x-ndjson"), 403)
	// A definition with a mistake is refused with the path of the field.
	bad := strings.Replace(enrolmentYAML, "rollup: sum, over_time: last}\n  - {id: teachers", "rollup: average}\n  - {id: teachers", 1)
	r = e.call(t, "PUT", "/api/v1/datasets/enrolment", docAdminToken, bad, "Content-Type", "application/yaml")
	expect(t, "a bad definition", r, 400)
	if !strings.Contains(string(r.Body), `"path":"measures[0].rollup"`) {
		t.Errorf("a bad rollup: got %s, want the path measures[0].rollup", r.Body)
	}
	// An area must be a unit above the level its values are given at.
	r = e.call(t, "PUT", "/api/v1/datasets/enrolment", docAdminToken, strings.Replace(enrolmentYAML, `area: "79"`, `area: "`+own+`"`, 1))
	expect(t, "a commune as the area of a dataset of communes", r, 400)
	if !strings.Contains(string(r.Body), `"path":"area"`) {
		t.Errorf("a commune as the area: got %s, want the path area", r.Body)
	}
}

// pointsOf writes a series' points as "year:num/den=value".
func pointsOf(points []report.Point) string {
	var out []string
	f := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprint(*v)
	}
	for _, p := range points {
		if p.Value.Value == nil {
			continue
		}
		out = append(out, fmt.Sprintf("%d:%s/%s=%s", p.T.Year(), f(p.Numerator), f(p.Denominator), f(p.Value.Value)))
	}
	return strings.Join(out, " ")
}

// TestTheShippedDatasetsLoadAndTakeTheirSample: the definitions of
// deploy/datasets (make run's IOC_DATASETS_DIR) pass every check, the
// enterprises' formula naming the population of the next file included,
// and the sample CSV of the README stores whole.
func TestTheShippedDatasetsLoadAndTakeTheirSample(t *testing.T) {
	e := newDatasetEnv(t)
	logger := slog.New(slog.DiscardHandler)
	if err := ProvisionDatasets(context.Background(), e.store, e.ds, e.h, filepath.Join("..", "deploy", "datasets"), logger); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"population", "enterprises", "enrolment"} {
		if _, ok := e.ds.Get(id); !ok {
			t.Errorf("dataset %s is not in force", id)
		}
	}
	sample, err := os.ReadFile(filepath.Join("..", "deploy", "datasets", "population-79-2025.csv"))
	if err != nil {
		t.Fatal(err)
	}
	r := e.call(t, "POST", "/api/v1/datasets/population/values", docAdminToken, string(sample), "Content-Type", "text/csv")
	expect(t, "the README's sample", r, 200)
	if up := decodeJSON[uploadAnswer](t, r.Body); up.Stored != 4 || up.Refused != 0 {
		t.Errorf("the sample: got %s, want its 4 rows stored", r.Body)
	}
	r = e.call(t, "GET", "/api/v1/kpis/population.people_per_household/ranking?parent=79&from=2025-01-01&to=2025-12-31&limit=1", docAdminToken, "")
	expect(t, "ranking", r, 200)
	if rk := decodeJSON[report.Ranking](t, r.Body); len(rk.Items) != 1 || rk.Items[0].Area != "26743" {
		t.Errorf("most people per household in the sample: got %s, want Bến Thành (35120 / 10640)", r.Body)
	}
	// make run stores the wall's department data dashboard, into the
	// desk's playlist, through the import as an admin would.
	if err := ProvisionDocuments(context.Background(), e.store, e.h, e.ds, "", logger); err != nil {
		t.Fatal(err)
	}
	wall, err := os.ReadFile(filepath.Join("..", "deploy", "walls", "departments-79.json"))
	if err != nil {
		t.Fatal(err)
	}
	r = e.call(t, "POST", "/api/v1/dashboards/import", docAdminToken, string(wall))
	expect(t, "make run's department data dashboard", r, 200)
	if !strings.Contains(string(r.Body), `"departments-79"`) {
		t.Errorf("the import stored %s, want the dashboard departments-79", r.Body)
	}
}

// TestDatasetRoutesKeepToRolesAndAreas asks every dataset route as every
// kind of token: definitions and health are for readers (health for
// senders too), changes, uploads' details and connectors for admins, and
// values, history and series only of the units a token covers.
func TestDatasetRoutesKeepToRolesAndAreas(t *testing.T) {
	e := newDatasetEnv(t)
	communes := e.h.Select("commune", "79")
	own := communes[0].Code
	csv := "Mã xã,Năm học,Số học sinh,Số giáo viên\n" + own + ",2025,100,5\n" + communes[1].Code + ",2025,200,10\n"
	expect(t, "upload", e.call(t, "POST", "/api/v1/datasets/enrolment/values", docAdminToken, csv, "Content-Type", "text/csv"), 200)

	token := func(role auth.Role, areas ...string) string {
		tok, err := auth.Issue(docSecret, auth.Principal{Subject: "t", Role: role, Areas: areas}, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	province, commune, elsewhere := token(auth.Viewer, "79"), token(auth.Viewer, own), token(auth.Viewer, "01")
	operator, sender := token(auth.Operator, "79"), token(auth.Ingest, own)
	tokens := []struct {
		name, tok string
	}{{"admin", docAdminToken}, {"viewer of 79", province}, {"viewer of " + own, commune}, {"viewer of 01", elsewhere},
		{"operator of 79", operator}, {"sender of " + own, sender}, {"no token", ""}}
	def := strings.Replace(enrolmentYAML, "name_vi: Tuyển sinh", "name_vi: Tuyển sinh học sinh", 1)
	for _, r := range []struct {
		method, url, body string
		want              []int // per token, in the order above
	}{
		{"GET", "/api/v1/datasets", "", []int{200, 200, 200, 200, 200, 403, 401}},
		{"GET", "/api/v1/datasets/enrolment", "", []int{200, 200, 200, 200, 200, 403, 401}},
		{"GET", "/api/v1/datasets/enrolment/versions", "", []int{200, 200, 200, 200, 200, 403, 401}},
		{"GET", "/api/v1/datasets/health", "", []int{200, 200, 200, 200, 200, 200, 401}},
		{"GET", "/api/v1/datasets/enrolment/values?area=79&from=2025&to=2025", "", []int{200, 200, 403, 403, 200, 403, 401}},
		{"GET", "/api/v1/datasets/enrolment/values?area=" + own + "&from=2025&to=2025", "", []int{200, 200, 200, 403, 200, 403, 401}},
		{"GET", "/api/v1/datasets/enrolment/history?unit=" + own + "&period=2025", "", []int{200, 200, 200, 403, 200, 403, 401}},
		{"GET", "/api/v1/kpis/enrolment.pupils/series?area=79&step=year&from=2025-01-01&to=2025-12-31", "", []int{200, 200, 403, 403, 200, 403, 401}},
		{"GET", "/api/v1/kpis/enrolment.pupils/ranking?parent=79&from=2025-01-01&to=2025-12-31", "", []int{200, 200, 403, 403, 200, 403, 401}},
		{"GET", "/api/v1/datasets/enrolment/uploads", "", []int{200, 403, 403, 403, 403, 403, 401}},
		// enrolment has no connector: an admin is told so.
		{"GET", "/api/v1/datasets/enrolment/connector", "", []int{404, 403, 403, 403, 403, 403, 401}},
		{"PUT", "/api/v1/datasets/enrolment", def, []int{200, 403, 403, 403, 403, 403, 401}},
	} {
		for i, tk := range tokens {
			got := e.call(t, r.method, r.url, tk.tok, r.body, "Content-Type", "application/yaml")
			if got.Code != r.want[i] {
				t.Errorf("%s %s as %s: got %d %.200s, want %d", r.method, r.url, tk.name, got.Code, got.Body, r.want[i])
			}
		}
	}
	// A commune's viewer reads its own values only, even over the province.
	r := e.call(t, "GET", "/api/v1/datasets/enrolment/values?area="+own+"&from=2025&to=2025", commune, "")
	if strings.Contains(string(r.Body), communes[1].Code) {
		t.Errorf("a commune's viewer was given another commune's values: %s", r.Body)
	}
}
