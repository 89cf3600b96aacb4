package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/answer"
	"github.com/openioc/ioc/dashboards"
	"github.com/openioc/ioc/dataset"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/versioned"
)

// Datasets is the department datasets: the definitions in force and their
// values (dataset.Datasets).
type Datasets interface {
	Load(ctx context.Context) error
	Get(id string) (dataset.Definition, bool)
	List() []dataset.Definition
	Catalog() []aggregate.Definition
	// Operand says whether a catalog id may be named in a formula.
	Operand(id string) bool
	Put(ctx context.Context, d dataset.Definition, rows []dataset.Row, up dataset.Upload) (dataset.Upload, error)
	Record(ctx context.Context, up dataset.Upload) error
	Current(ctx context.Context, d dataset.Definition, units []string, from, to time.Time) ([]dataset.Value, error)
	History(ctx context.Context, set, unit string, period time.Time) ([]dataset.Version, error)
	Uploads(ctx context.Context, set string, limit int) ([]dataset.Upload, error)
	Health(ctx context.Context, h dataset.Hierarchy, now time.Time) ([]dataset.Health, error)
}

// Connectors tells how the datasets' connectors ran (dataset.Connectors).
type Connectors interface {
	Runs(dataset string) dataset.ConnectorState
}

// datasetKind labels the documents of dataset definitions in the answers
// the document handlers share.
const datasetKind = dashboards.Kind(dataset.Kind)

// indicators is the catalog: the built-in indicators, then those of the
// datasets in force.
func (s *Server) indicators() []aggregate.Definition {
	out := aggregate.Catalog()
	if s.d.Datasets != nil {
		out = append(slices.Clip(out), s.d.Datasets.Catalog()...)
	}
	return out
}

// extraIndicators are the datasets' indicators; nil without datasets.
func (s *Server) extraIndicators() Indicators {
	if s.d.Datasets == nil {
		return nil
	}
	return s.d.Datasets
}

// lookupIndicator finds an indicator of the catalog, a dataset's included.
func (s *Server) lookupIndicator(id string) (aggregate.Definition, bool) {
	return lookupIndicator(s.extraIndicators(), id)
}

func (s *Server) datasetRoutes(v1 fiber.Router, reader fiber.Handler) {
	if s.d.Datasets == nil || s.d.Documents == nil {
		return
	}
	// Before /datasets/:id, which would take it for an id; no dataset id
	// may be "health" (dataset.ValidID).
	v1.Get("/datasets/health", reader, requireReadOrIngest, s.datasetHealth)
	v1.Get("/datasets", reader, requireRead, s.listDocuments(datasetKind))
	v1.Get("/datasets/:id", reader, requireRead, s.getDocument(datasetKind))
	v1.Get("/datasets/:id/versions", reader, requireRead, s.documentVersions(datasetKind))
	v1.Put("/datasets/:id", reader, requireAdmin, s.putDataset)
	v1.Delete("/datasets/:id", reader, requireAdmin, s.deleteDocument(datasetKind))
	v1.Post("/datasets/:id/values", reader, requireIngest, s.uploadValues)
	v1.Get("/datasets/:id/values", reader, requireRead, s.datasetValues)
	v1.Get("/datasets/:id/history", reader, requireRead, s.datasetHistory)
	// The uploads' problems name the units of every sender: admins only.
	v1.Get("/datasets/:id/uploads", reader, requireAdmin, s.datasetUploads)
	// Its errors may name the department's hosts and tables: admins only.
	v1.Get("/datasets/:id/connector", reader, requireAdmin, s.datasetConnector)
}

// requireReadOrIngest lets a department's sender see how its feeds stand:
// the feeds' health holds counts, no unit's figures.
func requireReadOrIngest(c *fiber.Ctx) error {
	if p := principal(c); !p.CanRead() && !p.CanIngest() {
		return fiber.NewError(fiber.StatusForbidden, "the feeds' health needs a token that reads or pushes records")
	}
	return c.Next()
}

// datasetInForce is the definition of the path's dataset.
func (s *Server) datasetInForce(c *fiber.Ctx) (dataset.Definition, error) {
	id := strings.Clone(c.Params("id"))
	d, ok := s.d.Datasets.Get(id)
	if !ok {
		return d, fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no dataset %q in force: GET /api/v1/datasets lists them, and a PUT defines one", id))
	}
	return d, nil
}

// invalidDataset answers a refused definition with every wrong field.
func invalidDataset(c *fiber.Ctx, id string, inv *dataset.InvalidError) error {
	fields := make([]dashboards.FieldError, len(inv.Problems))
	for i, p := range inv.Problems {
		fields[i] = dashboards.FieldError{Path: p.Path, Error: p.Error}
	}
	return c.Status(fiber.StatusBadRequest).JSON(invalidBody{Error: fmt.Sprintf("dataset %q is invalid: %s", id, inv.Error()), Fields: fields})
}

// canonicalDataset parses a definition (JSON or YAML) for the path's id,
// checks the names of its formulas with known, and returns it with the
// JSON it is stored as.
func canonicalDataset(raw []byte, id string, h *geo.Hierarchy, known func(string) bool) (dataset.Definition, []byte, error) {
	d, err := dataset.Parse(raw, h)
	if err != nil {
		return d, nil, err
	}
	if d.ID != id {
		return d, nil, &dataset.InvalidError{Problems: []dataset.Problem{{Path: "id", Error: fmt.Sprintf("%q differs from the path's id %q: PUT a definition to its own id", d.ID, id)}}}
	}
	if probs := append(checkArea(d, h), d.CheckNames(known)...); len(probs) > 0 {
		return d, nil, &dataset.InvalidError{Problems: probs}
	}
	body, err := json.Marshal(d)
	return d, body, err
}

// checkArea checks a definition's area against the hierarchy: a unit above
// the dataset's level.
func checkArea(d dataset.Definition, h *geo.Hierarchy) []dataset.Problem {
	if d.Area == "" {
		return nil
	}
	u, ok := h.Unit(d.Area)
	levels := h.Levels()
	switch {
	case !ok:
		return []dataset.Problem{{Path: "area", Error: fmt.Sprintf("%q is not a unit of %s: GET /api/v1/areas lists them, or leave area out for the whole hierarchy", d.Area, h.Name())}}
	case d.Level != dataset.LevelPoint && slices.Index(levels, u.Level) >= slices.Index(levels, d.Level):
		return []dataset.Problem{{Path: "area", Error: fmt.Sprintf("%s is a %s: the area of a dataset given per %s is a unit above that level", d.Area, u.Level, d.Level)}}
	}
	return nil
}

func (s *Server) putDataset(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	raw = bytes.Clone(raw)
	by := actor(principal(c))
	ctx, cancel := s.documentCtx(c)
	defer cancel()
	h := s.d.KPIs.Hierarchy()
	var same *versioned.Document
	created := false
	stored, err := s.writeDocuments(ctx, func(l versioned.Latest) ([]versioned.Write, error) {
		same, created = nil, false
		if err := precondition(c, datasetKind, id, l); err != nil {
			return nil, err
		}
		_, body, err := canonicalDataset(raw, id, h, s.d.Datasets.Operand)
		if err != nil {
			return nil, err
		}
		cur, ok := l.Get(dataset.Kind, id)
		if ok && !cur.Deleted && bytes.Equal(cur.Body, body) {
			same = &cur
			return nil, nil
		}
		created = !ok || cur.Deleted
		return []versioned.Write{{Kind: dataset.Kind, ID: id, Body: body, By: by}}, nil
	})
	var inv *dataset.InvalidError
	var pre *preconditionError
	switch {
	case errors.As(err, &inv):
		return invalidDataset(c, id, inv)
	case errors.As(err, &pre):
		return fiber.NewError(fiber.StatusPreconditionFailed, pre.msg)
	case err != nil:
		return answer.Unavailable(err)
	}
	return s.saved(c, same, stored, created, "/api/v1/datasets/"+id)
}

// ProvisionDatasets stores, at start, every definition of the *.json,
// *.yaml and *.yml files of dir (IOC_DATASETS_DIR; empty: none) that
// differs from its latest version, saved by "provisioning", and puts the
// stored definitions in force. The files are checked together and any
// error stops the start, naming each file and field.
func ProvisionDatasets(ctx context.Context, store DocumentStore, ds Datasets, h *geo.Hierarchy, dir string, logger *slog.Logger) error {
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("IOC_DATASETS_DIR=%s is not a directory: create it, or leave IOC_DATASETS_DIR empty", dir)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("IOC_DATASETS_DIR=%s: %w", dir, err)
		}
		type file struct {
			name string
			def  dataset.Definition
			body []byte
		}
		var files []file
		var problems []string
		seen := map[string]string{}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if e.IsDir() || (ext != ".json" && ext != ".yaml" && ext != ".yml") {
				continue
			}
			raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return fmt.Errorf("IOC_DATASETS_DIR=%s: %w", dir, err)
			}
			d, err := dataset.Parse(raw, h)
			if err != nil {
				problems = append(problems, e.Name()+": "+err.Error())
				continue
			}
			if at, dup := seen[d.ID]; dup {
				problems = append(problems, fmt.Sprintf("%s: dataset %q is also defined in %s: each id once", e.Name(), d.ID, at))
				continue
			}
			seen[d.ID] = e.Name()
			files = append(files, file{name: e.Name(), def: d})
		}
		// A formula may name what the store holds or another file defines.
		if err := ds.Load(ctx); err != nil {
			return err
		}
		known := func(id string) bool {
			set, local, _ := strings.Cut(id, ".")
			for _, f := range files {
				if f.def.ID == set && slices.ContainsFunc(f.def.Catalog(), func(c aggregate.Definition) bool { return c.ID == id && c.Kind != "derived" }) {
					return local != ""
				}
			}
			return ds.Operand(id)
		}
		for i, f := range files {
			if probs := append(checkArea(f.def, h), f.def.CheckNames(known)...); len(probs) > 0 {
				problems = append(problems, f.name+": "+(&dataset.InvalidError{Problems: probs}).Error())
			}
			if files[i].body, err = json.Marshal(f.def); err != nil {
				return err
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("IOC_DATASETS_DIR=%s: %s", dir, strings.Join(problems, "; "))
		}
		stored := 0
		_, err = store.Write(ctx, func(l versioned.Latest) ([]versioned.Write, error) {
			var ws []versioned.Write
			for _, f := range files {
				if cur, ok := l.Get(dataset.Kind, f.def.ID); ok && !cur.Deleted && bytes.Equal(cur.Body, f.body) {
					continue
				}
				ws = append(ws, versioned.Write{Kind: dataset.Kind, ID: f.def.ID, Body: f.body, By: Provisioner})
			}
			stored = len(ws)
			return ws, nil
		})
		if err != nil {
			return fmt.Errorf("IOC_DATASETS_DIR=%s: %w", dir, err)
		}
		logger.Info("provisioned datasets", "dir", dir, "stored", stored, "unchanged", len(files)-stored)
	}
	return ds.Load(ctx)
}

// uploadFormat reads the format of an upload from ?format= or the
// Content-Type.
func uploadFormat(c *fiber.Ctx) (string, error) {
	if f := c.Query("format"); f != "" {
		switch f {
		case dataset.FormatCSV, dataset.FormatJSON, dataset.FormatNDJSON:
			return f, nil
		}
		return "", fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("format %q is not csv, json or ndjson", f))
	}
	mt, _, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	switch mt {
	case "text/csv":
		return dataset.FormatCSV, nil
	case "application/json":
		return dataset.FormatJSON, nil
	case "application/x-ndjson", "application/ndjson":
		return dataset.FormatNDJSON, nil
	}
	return "", fiber.NewError(fiber.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not one of text/csv, application/json or application/x-ndjson: send one of them, or name the format with ?format=csv", mt))
}

// uploadAnswer is what an upload stored and refused.
type uploadAnswer struct {
	Dataset  string            `json:"dataset"`
	Upload   string            `json:"upload"`
	Stored   int               `json:"stored"`
	Refused  int               `json:"refused"`
	Problems []dataset.Problem `json:"problems"`
}

func (s *Server) uploadValues(c *fiber.Ctx) error {
	d, err := s.datasetInForce(c)
	if err != nil {
		return err
	}
	format, err := uploadFormat(c)
	if err != nil {
		return err
	}
	body, err := s.bodies.Open(c)
	if err != nil {
		return err
	}
	p := principal(c)
	h := s.d.KPIs.Hierarchy()
	dec, err := dataset.Decode(d, format, body, dataset.HierarchyUnits{H: h, Covers: func(code string) bool { return p.Covers(h, code) }})
	if err != nil {
		var fe *fiber.Error // the body's own refusal, as httpbody words it
		if errors.As(err, &fe) {
			return fe
		}
		if derr := body.Drain(); derr != nil {
			return derr
		}
		status := fiber.StatusBadRequest
		if errors.Is(err, dataset.ErrTooManyRows) {
			status = fiber.StatusRequestEntityTooLarge
		}
		return fiber.NewError(status, fmt.Sprintf("dataset %s: %v", d.ID, err))
	}
	ctx, cancel := s.documentCtx(c)
	defer cancel()
	up, err := s.d.Datasets.Put(ctx, d, dec.Rows, dataset.Upload{ID: newUploadID(), Source: "upload", By: actor(p), Refused: dec.Refused, Problems: dec.Problems})
	if err != nil {
		return answer.Unavailable(err)
	}
	problems := dec.Problems
	if problems == nil {
		problems = []dataset.Problem{}
	}
	status := fiber.StatusOK
	if len(dec.Rows) == 0 && dec.Refused > 0 {
		status = fiber.StatusUnprocessableEntity
	}
	return c.Status(status).JSON(uploadAnswer{Dataset: d.ID, Upload: up.ID, Stored: len(dec.Rows), Refused: dec.Refused, Problems: problems})
}

// newUploadID names an upload in the history.
func newUploadID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// datasetValue is one unit's period in the answer of GET …/values.
type datasetValue struct {
	Unit   string             `json:"unit"`
	Name   string             `json:"name"`
	Period string             `json:"period"`
	Values map[string]float64 `json:"values"`
}

// datasetRange reads from and to as the dataset's periods: from's period
// to to's, both included; default the last twelve periods with values or
// not.
func datasetRange(c *fiber.Ctx, d dataset.Definition, now time.Time) (time.Time, time.Time, error) {
	to := d.Grain.Next(d.Grain.Floor(now))
	from := twelveBefore(d.Grain, to)
	var err error
	if q := c.Query("from"); q != "" {
		if from, err = d.Grain.Parse(q); err != nil {
			return from, to, fiber.NewError(fiber.StatusBadRequest, "from: "+err.Error())
		}
	}
	if q := c.Query("to"); q != "" {
		t, err := d.Grain.Parse(q)
		if err != nil {
			return from, to, fiber.NewError(fiber.StatusBadRequest, "to: "+err.Error())
		}
		to = d.Grain.Next(t)
		if c.Query("from") == "" {
			from = twelveBefore(d.Grain, to)
		}
	}
	if !from.Before(to) {
		return from, to, fiber.NewError(fiber.StatusBadRequest, "from must not be after to")
	}
	return from, to, nil
}

// twelveBefore is the start of the twelfth period of g before the one
// starting at t.
func twelveBefore(g dataset.Grain, t time.Time) time.Time {
	for range 12 {
		t = g.Floor(t.AddDate(0, 0, -1))
	}
	return t
}

func (s *Server) datasetValues(c *fiber.Ctx) error {
	d, err := s.datasetInForce(c)
	if err != nil {
		return err
	}
	csv, err := wantsCSV(c)
	if err != nil {
		return err
	}
	area, err := s.reportArea(c, "area", true)
	if err != nil {
		return err
	}
	from, to, err := datasetRange(c, d, time.Now().In(s.d.KPIs.Location()))
	if err != nil {
		return err
	}
	h := s.d.KPIs.Hierarchy()
	var units []string
	if area != "" {
		units = h.Subtree(area)
	}
	ctx, cancel := s.documentCtx(c)
	defer cancel()
	values, err := s.d.Datasets.Current(ctx, d, units, from, to)
	if err != nil {
		return answer.Unavailable(err)
	}
	type key struct {
		unit   string
		period time.Time
	}
	byKey := map[key]map[string]float64{}
	var keys []key
	for _, v := range values {
		k := key{v.Unit, v.Period}
		if byKey[k] == nil {
			byKey[k] = map[string]float64{}
			keys = append(keys, k)
		}
		byKey[k][v.Measure] = v.Value
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := a.period.Compare(b.period); c != 0 {
			return c
		}
		return strings.Compare(a.unit, b.unit)
	})
	out := make([]datasetValue, len(keys))
	for i, k := range keys {
		u, _ := h.Unit(k.unit)
		out[i] = datasetValue{Unit: k.unit, Name: u.Name, Period: d.Grain.Format(k.period), Values: byKey[k]}
	}
	if !csv {
		return c.JSON(fiber.Map{"dataset": d.ID, "from": d.Grain.Format(from), "to": d.Grain.Format(d.Grain.Floor(to.AddDate(0, 0, -1))), "count": len(out), "values": out})
	}
	header := []string{"unit", "name", "period"}
	for _, m := range d.Measures {
		header = append(header, m.ID+" ["+m.Unit+"]")
	}
	rows := make([][]string, len(out))
	for i, v := range out {
		row := []string{v.Unit, v.Name, v.Period}
		for _, m := range d.Measures {
			cell := ""
			if x, ok := v.Values[m.ID]; ok {
				cell = strconv.FormatFloat(x, 'f', -1, 64)
			}
			row = append(row, cell)
		}
		rows[i] = row
	}
	return sendCSV(c, fileName(d.ID, area, d.Grain.Format(from)), header, rows)
}

func (s *Server) datasetHistory(c *fiber.Ctx) error {
	d, err := s.datasetInForce(c)
	if err != nil {
		return err
	}
	unit, err := s.reportArea(c, "unit", false)
	if err != nil {
		return err
	}
	q := c.Query("period")
	if q == "" {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("period is required: a %s written %s", d.Grain, d.Grain.Form()))
	}
	period, err := d.Grain.Parse(q)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, "period: "+err.Error())
	}
	ctx, cancel := s.documentCtx(c)
	defer cancel()
	versions, err := s.d.Datasets.History(ctx, d.ID, unit, period)
	if err != nil {
		return answer.Unavailable(err)
	}
	if versions == nil {
		versions = []dataset.Version{}
	}
	for i := range versions {
		versions[i].At = versions[i].At.In(s.d.KPIs.Location())
	}
	return c.JSON(fiber.Map{"dataset": d.ID, "unit": unit, "period": d.Grain.Format(period), "versions": versions})
}

func (s *Server) datasetUploads(c *fiber.Ctx) error {
	d, err := s.datasetInForce(c)
	if err != nil {
		return err
	}
	limit := c.QueryInt("limit", 20)
	if limit < 1 || limit > 1000 {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("limit %d is outside 1..1000", limit))
	}
	ctx, cancel := s.documentCtx(c)
	defer cancel()
	ups, err := s.d.Datasets.Uploads(ctx, d.ID, limit)
	if err != nil {
		return answer.Unavailable(err)
	}
	if ups == nil {
		ups = []dataset.Upload{}
	}
	for i := range ups {
		ups[i].At = ups[i].At.In(s.d.KPIs.Location())
	}
	return c.JSON(fiber.Map{"dataset": d.ID, "uploads": ups})
}

func (s *Server) datasetConnector(c *fiber.Ctx) error {
	d, err := s.datasetInForce(c)
	if err != nil {
		return err
	}
	if d.Connector == nil {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("dataset %s has no connector: its values are uploaded (POST /api/v1/datasets/%s/values); add a connector to its definition to pull them", d.ID, d.ID))
	}
	if s.d.Connectors == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "this server runs no connectors: ask another node")
	}
	st := s.d.Connectors.Runs(d.ID)
	loc := s.d.KPIs.Location()
	for _, t := range []**time.Time{&st.LastRun, &st.NextRun, &st.LastSuccess, &st.FailingSince} {
		if *t != nil {
			at := (*t).In(loc)
			*t = &at
		}
	}
	return c.JSON(st)
}

func (s *Server) datasetHealth(c *fiber.Ctx) error {
	ctx, cancel := s.documentCtx(c)
	defer cancel()
	now := time.Now().In(s.d.KPIs.Location())
	out, err := s.d.Datasets.Health(ctx, s.d.KPIs.Hierarchy(), now)
	if err != nil {
		return answer.Unavailable(err)
	}
	for i := range out {
		if out[i].Received != nil {
			at := out[i].Received.In(now.Location())
			out[i].Received = &at
		}
		if u := out[i].LastUpload; u != nil {
			// Counts only: the problems name units of every sender.
			u.Problems = nil
			u.At = u.At.In(now.Location())
		}
	}
	return c.JSON(fiber.Map{"as_of": now, "datasets": out})
}
