package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
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
	"github.com/openioc/ioc/report"
	"github.com/openioc/ioc/versioned"
)

// DocumentStore keeps the wall's documents (dashboards, playlists, walls,
// screens) with every version: versioned.Documents.
type DocumentStore interface {
	Get(ctx context.Context, kind, id string) (versioned.Document, error)
	Version(ctx context.Context, kind, id string, version uint32) (versioned.Document, error)
	Versions(ctx context.Context, kind, id string) ([]versioned.Document, error)
	List(ctx context.Context, kind string) ([]versioned.Document, error)
	Write(ctx context.Context, plan func(versioned.Latest) ([]versioned.Write, error)) ([]versioned.Document, error)
}

// Provisioner is who saves the documents read at start.
const Provisioner = "provisioning"

// documentCatalog is what documents are checked against: the indicator
// catalog, the units of the deployment's hierarchy and the scoreboard's
// groups.
type documentCatalog struct {
	h     *geo.Hierarchy
	extra Indicators // nil: none
}

// Indicators are the indicators of the catalog beyond the built-in ones:
// the datasets' (dataset.Datasets).
type Indicators interface {
	Catalog() []aggregate.Definition
}

// lookupIndicator finds id among the built-in indicators and extra's.
func lookupIndicator(extra Indicators, id string) (aggregate.Definition, bool) {
	if d, ok := aggregate.Lookup(id); ok || extra == nil {
		return d, ok
	}
	for _, d := range extra.Catalog() {
		if d.ID == id {
			return d, true
		}
	}
	return aggregate.Definition{}, false
}

func (c documentCatalog) Indicator(id string) (dashboards.Indicator, bool) {
	d, ok := lookupIndicator(c.extra, id)
	if !ok {
		return dashboards.Indicator{}, false
	}
	return dashboards.Indicator{Kind: d.Kind, Live: d.Live, History: d.History}, true
}

func (c documentCatalog) Area(code string) (dashboards.Area, bool) {
	if _, ok := c.h.Unit(code); !ok {
		return dashboards.Area{}, false
	}
	return dashboards.Area{Children: len(c.h.ChildCodes(code))}, true
}

func (documentCatalog) ScoreboardGroup(id string) bool {
	return slices.ContainsFunc(aggregate.Groups, func(g aggregate.Group) bool { return g.ID == id })
}

func (documentCatalog) ScorePeriod(name string) error {
	// Only the name's form is checked: the location and the time only
	// place the period, which may be any year's.
	_, err := report.ParsePeriod(name, time.Now(), time.UTC)
	return err
}

// existing is the documents that exist (are not deleted) as a writer sees
// them under the lease.
type existing struct{ l versioned.Latest }

func (e existing) Has(kind dashboards.Kind, id string) bool {
	d, ok := e.l.Get(string(kind), id)
	return ok && !d.Deleted
}

func checksFor(h *geo.Hierarchy, extra Indicators, l versioned.Latest) dashboards.Checks {
	return dashboards.Checks{Catalog: documentCatalog{h, extra}, Documents: existing{l}}
}

// unchanged says whether doc is already the latest version of its id.
func unchanged(l versioned.Latest, doc dashboards.Document) (versioned.Document, bool) {
	cur, ok := l.Get(string(doc.Kind), doc.ID)
	return cur, ok && !cur.Deleted && bytes.Equal(cur.Body, doc.Body)
}

// saveSet is a plan storing the documents of a set that changed; stored
// and same list what it did.
type saveSet struct {
	h      *geo.Hierarchy
	extra  Indicators
	srcs   []dashboards.Source
	by     string
	stored []dashboards.Document
	same   []versioned.Document
}

func (p *saveSet) plan(l versioned.Latest) ([]versioned.Write, error) {
	p.stored, p.same = nil, nil
	docs, err := dashboards.ValidateSet(p.srcs, checksFor(p.h, p.extra, l))
	if err != nil {
		return nil, err
	}
	var ws []versioned.Write
	for _, d := range docs {
		if cur, ok := unchanged(l, d); ok {
			p.same = append(p.same, cur)
			continue
		}
		p.stored = append(p.stored, d)
		ws = append(ws, versioned.Write{Kind: string(d.Kind), ID: d.ID, Body: d.Body, By: p.by})
	}
	return ws, nil
}

// ProvisionDocuments stores, at start, every document of the *.json files
// of dir (IOC_DASHBOARDS_DIR; empty: none) that differs from its latest
// version, saved by "provisioning"; then, if the store holds no dashboard
// at all, the defaults of the dashboards package. The files are checked
// together, against the built-in indicators and extra's (nil: none), and
// any error stops the start, naming each file and field.
func ProvisionDocuments(ctx context.Context, store DocumentStore, h *geo.Hierarchy, extra Indicators, dir string, logger *slog.Logger) error {
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("IOC_DASHBOARDS_DIR=%s is not a directory: create it, or leave IOC_DASHBOARDS_DIR empty", dir)
		}
		srcs, err := dashboards.ReadDir(os.DirFS(dir))
		if err != nil {
			return fmt.Errorf("IOC_DASHBOARDS_DIR=%s: %w", dir, err)
		}
		p := &saveSet{h: h, extra: extra, srcs: srcs, by: Provisioner}
		if _, err := store.Write(ctx, p.plan); err != nil {
			return fmt.Errorf("IOC_DASHBOARDS_DIR=%s: %w", dir, err)
		}
		logger.Info("provisioned documents", "dir", dir, "stored", len(p.stored), "unchanged", len(p.same))
	}
	srcs, err := dashboards.ReadDir(dashboards.Defaults())
	if err != nil {
		return fmt.Errorf("the default documents: %w", err)
	}
	p := &saveSet{h: h, extra: extra, srcs: srcs, by: Provisioner}
	skipped := false
	_, err = store.Write(ctx, func(l versioned.Latest) ([]versioned.Write, error) {
		for _, d := range l.Live() {
			if d.Kind == string(dashboards.KindDashboard) {
				skipped = true
				return nil, nil
			}
		}
		return p.plan(l)
	})
	if err != nil {
		return fmt.Errorf("the default documents: %w", err)
	}
	if !skipped {
		logger.Info("provisioned the default documents: the store had no dashboard", "stored", len(p.stored))
	}
	return nil
}

func (s *Server) documentRoutes(v1 fiber.Router, reader fiber.Handler) {
	if s.d.Documents == nil {
		return
	}
	// Before /dashboards/:id, which would take them for ids; Validate
	// refuses the two as dashboard ids.
	v1.Get("/dashboards/export", reader, requireRead, s.exportDocuments)
	v1.Post("/dashboards/import", reader, requireAdmin, s.importDocuments)
	for _, k := range dashboards.Kinds {
		base := "/" + k.Plural()
		v1.Get(base, reader, requireRead, s.listDocuments(k))
		v1.Get(base+"/:id", reader, requireRead, s.getDocument(k))
		v1.Get(base+"/:id/versions", reader, requireRead, s.documentVersions(k))
		v1.Put(base+"/:id", reader, requireAdmin, s.putDocument(k))
		v1.Delete(base+"/:id", reader, requireAdmin, s.deleteDocument(k))
	}
}

// writeDocuments stores new versions and has the walls of this node read
// the documents again at once (other nodes do within their re-read
// interval), so that a screen shows an edited dashboard without waiting.
func (s *Server) writeDocuments(ctx context.Context, plan func(versioned.Latest) ([]versioned.Write, error)) ([]versioned.Document, error) {
	stored, err := s.d.Documents.Write(ctx, plan)
	if err != nil || len(stored) == 0 {
		return stored, err
	}
	if r, ok := s.d.Screens.(interface{ Reload() }); ok {
		r.Reload()
	}
	if s.d.Datasets != nil && slices.ContainsFunc(stored, func(d versioned.Document) bool { return d.Kind == dataset.Kind }) {
		if err := s.d.Datasets.Load(ctx); err != nil {
			s.logger.Warn("put the saved dataset definitions in force; they will be within the reload interval", "err", err)
		}
	}
	return stored, nil
}

// documentVersion is one version of a document, without its body.
type documentVersion struct {
	Kind    string    `json:"kind"`
	ID      string    `json:"id"`
	Version uint32    `json:"version"`
	SavedAt time.Time `json:"saved_at"`
	SavedBy string    `json:"saved_by"`
	Deleted bool      `json:"deleted"`
}

func (s *Server) versionOf(d versioned.Document) documentVersion {
	return documentVersion{Kind: d.Kind, ID: d.ID, Version: d.Version, SavedAt: d.SavedAt.In(s.d.KPIs.Location()), SavedBy: d.SavedBy, Deleted: d.Deleted}
}

// listedDocument is a document of a list with its latest version.
type listedDocument struct {
	ID       string          `json:"id"`
	Version  uint32          `json:"version"`
	SavedAt  time.Time       `json:"saved_at"`
	SavedBy  string          `json:"saved_by"`
	Document json.RawMessage `json:"document"`
}

func versionTag(v uint32) string { return `"` + strconv.FormatUint(uint64(v), 10) + `"` }

// matches says whether an If-Match or If-None-Match header names the
// version: "*" names any, a list names each of its (strong) tags.
func matches(header string, v uint32) bool {
	for _, t := range strings.Split(header, ",") {
		if t = strings.TrimSpace(t); t == "*" || t == versionTag(v) {
			return true
		}
	}
	return false
}

func (s *Server) documentID(c *fiber.Ctx, k dashboards.Kind) (string, error) {
	id := strings.Clone(c.Params("id"))
	if k == datasetKind {
		if !dataset.ValidID(id) {
			return "", fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no dataset %q: ids are lower-case letters, digits and _ (GET /api/v1/datasets lists them)", id))
		}
		return id, nil
	}
	if !dashboards.ValidID(id) {
		return "", fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no %s %q: ids are lower-case letters, digits and hyphens (GET /api/v1/%s lists them)", k, id, k.Plural()))
	}
	return id, nil
}

func (s *Server) documentCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
}

func (s *Server) listDocuments(k dashboards.Kind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := s.documentCtx(c)
		defer cancel()
		docs, err := s.d.Documents.List(ctx, string(k))
		if err != nil {
			return answer.Unavailable(err)
		}
		items := make([]listedDocument, len(docs))
		for i, d := range docs {
			items[i] = listedDocument{ID: d.ID, Version: d.Version, SavedAt: d.SavedAt.In(s.d.KPIs.Location()), SavedBy: d.SavedBy, Document: d.Body}
		}
		return c.JSON(fiber.Map{"count": len(items), k.Plural(): items})
	}
}

// notFound answers a document that has no version, or whose latest
// version deleted it.
func notFound(k dashboards.Kind, id string, d versioned.Document, err error) error {
	if errors.Is(err, versioned.ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no %s %q: GET /api/v1/%s lists them", k, id, k.Plural()))
	}
	return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("%s %q was deleted by %s at %s (version %d): GET /api/v1/%s/%s/versions lists its versions, and a PUT saves it again",
		k, id, d.SavedBy, d.SavedAt.Format(time.RFC3339), d.Version, k.Plural(), id))
}

func (s *Server) getDocument(k dashboards.Kind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := s.documentID(c, k)
		if err != nil {
			return err
		}
		ctx, cancel := s.documentCtx(c)
		defer cancel()
		var d versioned.Document
		if q := c.Query("version"); q != "" {
			v, perr := strconv.ParseUint(q, 10, 32)
			if perr != nil || v == 0 {
				return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("version %q is not a version number (1, 2, …: GET /api/v1/%s/%s/versions lists them)", q, k.Plural(), id))
			}
			d, err = s.d.Documents.Version(ctx, string(k), id, uint32(v))
			if errors.Is(err, versioned.ErrNotFound) {
				return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("%s %q has no version %d: GET /api/v1/%s/%s/versions lists them", k, id, v, k.Plural(), id))
			}
		} else {
			d, err = s.d.Documents.Get(ctx, string(k), id)
		}
		switch {
		case errors.Is(err, versioned.ErrNotFound):
			return notFound(k, id, d, err)
		case err != nil:
			return answer.Unavailable(err)
		case d.Deleted:
			return notFound(k, id, d, nil)
		}
		c.Set(fiber.HeaderETag, versionTag(d.Version))
		c.Set(fiber.HeaderLastModified, d.SavedAt.UTC().Format(http.TimeFormat))
		// A definition, not figures: a client may keep it and ask again
		// with If-None-Match.
		c.Set(fiber.HeaderCacheControl, "private, no-cache")
		if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && matches(inm, d.Version) {
			return c.SendStatus(fiber.StatusNotModified)
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(d.Body)
	}
}

type versionList struct {
	Kind     string            `json:"kind"`
	ID       string            `json:"id"`
	Count    int               `json:"count"`
	Versions []documentVersion `json:"versions"`
}

func (s *Server) documentVersions(k dashboards.Kind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := s.documentID(c, k)
		if err != nil {
			return err
		}
		ctx, cancel := s.documentCtx(c)
		defer cancel()
		vs, err := s.d.Documents.Versions(ctx, string(k), id)
		if err != nil {
			return answer.Unavailable(err)
		}
		if len(vs) == 0 {
			return notFound(k, id, versioned.Document{}, versioned.ErrNotFound)
		}
		out := versionList{Kind: string(k), ID: id, Count: len(vs), Versions: make([]documentVersion, len(vs))}
		for i, v := range vs {
			out.Versions[i] = s.versionOf(v)
		}
		return c.JSON(out)
	}
}

// invalidBody is a refused document: every wrong field with its path.
type invalidBody struct {
	Error  string                  `json:"error"`
	Fields []dashboards.FieldError `json:"fields"`
}

func invalid(c *fiber.Ctx, what string, inv *dashboards.InvalidError) error {
	return c.Status(fiber.StatusBadRequest).JSON(invalidBody{Error: what + " is invalid: " + inv.Error(), Fields: inv.Fields})
}

// preconditionError is a save refused by If-Match or If-None-Match.
type preconditionError struct{ msg string }

func (e *preconditionError) Error() string { return e.msg }

// conflictError is a deletion refused because other documents use the
// document.
type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

// precondition checks If-Match and If-None-Match against the latest
// version, under the lease.
func precondition(c *fiber.Ctx, k dashboards.Kind, id string, l versioned.Latest) error {
	cur, ok := l.Get(string(k), id)
	exists := ok && !cur.Deleted
	ifMatch, ifNone := strings.Clone(c.Get(fiber.HeaderIfMatch)), strings.Clone(c.Get(fiber.HeaderIfNoneMatch))
	switch {
	case ifMatch != "" && !exists:
		return &preconditionError{fmt.Sprintf("%s %q does not exist (If-Match %s): it was deleted or never saved; GET /api/v1/%s lists what there is", k, id, ifMatch, k.Plural())}
	case ifMatch != "" && !matches(ifMatch, cur.Version):
		return &preconditionError{fmt.Sprintf("%s %q is at version %d (ETag %s), not %s (If-Match): %s saved it at %s since you read it; GET it again, reapply your change and send its new ETag",
			k, id, cur.Version, versionTag(cur.Version), ifMatch, cur.SavedBy, cur.SavedAt.Format(time.RFC3339))}
	case ifNone != "" && exists && matches(ifNone, cur.Version):
		return &preconditionError{fmt.Sprintf("%s %q exists already, at version %d (If-None-Match %s): choose another id, or send If-Match %s to replace it", k, id, cur.Version, ifNone, versionTag(cur.Version))}
	}
	return nil
}

// withID gives a document without an id the path's id, and refuses one
// whose id differs from it.
func withID(body []byte, id string) ([]byte, *dashboards.InvalidError) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || m == nil {
		return body, nil // not an object: Validate says what is wrong with it
	}
	raw, ok := m["id"]
	if !ok {
		m["id"], _ = json.Marshal(id)
		b, err := json.Marshal(m)
		if err != nil {
			return body, nil
		}
		return b, nil
	}
	var got string
	if json.Unmarshal(raw, &got) == nil && got != id {
		return nil, &dashboards.InvalidError{Fields: []dashboards.FieldError{{Path: "id",
			Error: fmt.Sprintf("%q differs from the path's id %q: PUT a document to its own id, or leave id out", got, id)}}}
	}
	return body, nil
}

func (s *Server) putDocument(k dashboards.Kind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := s.documentID(c, k)
		if err != nil {
			return err
		}
		raw, err := s.bodies.Bytes(c)
		if err != nil {
			return err
		}
		body, bad := withID(raw, id)
		if bad != nil {
			return invalid(c, string(k), bad)
		}
		body = bytes.Clone(body)
		by := actor(principal(c))
		ctx, cancel := s.documentCtx(c)
		defer cancel()
		var same *versioned.Document
		created := false
		h := s.d.KPIs.Hierarchy()
		stored, err := s.writeDocuments(ctx, func(l versioned.Latest) ([]versioned.Write, error) {
			same, created = nil, false
			if err := precondition(c, k, id, l); err != nil {
				return nil, err
			}
			doc, err := dashboards.Validate(k, body, checksFor(h, s.extraIndicators(), l))
			if err != nil {
				return nil, err
			}
			if cur, ok := unchanged(l, doc); ok {
				same = &cur
				return nil, nil
			}
			cur, ok := l.Get(string(k), id)
			created = !ok || cur.Deleted
			return []versioned.Write{{Kind: string(k), ID: id, Body: doc.Body, By: by}}, nil
		})
		var inv *dashboards.InvalidError
		var pre *preconditionError
		switch {
		case errors.As(err, &inv):
			return invalid(c, fmt.Sprintf("%s %q", k, id), inv)
		case errors.As(err, &pre):
			return fiber.NewError(fiber.StatusPreconditionFailed, pre.msg)
		case err != nil:
			return answer.Unavailable(err)
		}
		return s.saved(c, same, stored, created, "/api/v1/"+k.Plural()+"/"+id)
	}
}

// saved answers a PUT of a document: the version stored, or the latest one
// when the body was the same, with its ETag; 201 and its Location when
// the document is new.
func (s *Server) saved(c *fiber.Ctx, same *versioned.Document, stored []versioned.Document, created bool, location string) error {
	v := same
	if v == nil {
		v = &stored[0]
	}
	c.Set(fiber.HeaderETag, versionTag(v.Version))
	if created {
		c.Set(fiber.HeaderLocation, location)
		c.Status(fiber.StatusCreated)
	}
	return c.JSON(s.versionOf(*v))
}

// users lists the live documents that refer to (kind, id), with where.
func users(l versioned.Latest, k dashboards.Kind, id string) []string {
	var out []string
	for _, d := range l.Live() {
		doc, err := dashboards.Validate(dashboards.Kind(d.Kind), d.Body, dashboards.Checks{})
		if err != nil {
			continue // stored before a rule it breaks: it names nothing we can tell
		}
		for _, r := range doc.Refs {
			if r.Kind == k && r.ID == id && (d.Kind != string(k) || d.ID != id) {
				out = append(out, fmt.Sprintf("%s %s (%s)", d.Kind, d.ID, r.Path))
			}
		}
	}
	return out
}

func (s *Server) deleteDocument(k dashboards.Kind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := s.documentID(c, k)
		if err != nil {
			return err
		}
		by := actor(principal(c))
		ctx, cancel := s.documentCtx(c)
		defer cancel()
		var gone versioned.Document
		stored, err := s.writeDocuments(ctx, func(l versioned.Latest) ([]versioned.Write, error) {
			cur, ok := l.Get(string(k), id)
			if !ok || cur.Deleted {
				gone = cur
				if !ok {
					return nil, versioned.ErrNotFound
				}
				return nil, errDeletedAlready
			}
			if err := precondition(c, k, id, l); err != nil {
				return nil, err
			}
			if us := users(l, k, id); len(us) > 0 {
				return nil, &conflictError{fmt.Sprintf("%s %q is used by %s: change or delete those first", k, id, strings.Join(us, ", "))}
			}
			return []versioned.Write{{Kind: string(k), ID: id, Deleted: true, By: by}}, nil
		})
		var pre *preconditionError
		var conflict *conflictError
		switch {
		case errors.Is(err, versioned.ErrNotFound):
			return notFound(k, id, gone, err)
		case errors.Is(err, errDeletedAlready):
			return notFound(k, id, gone, nil)
		case errors.As(err, &pre):
			return fiber.NewError(fiber.StatusPreconditionFailed, pre.msg)
		case errors.As(err, &conflict):
			return fiber.NewError(fiber.StatusConflict, conflict.msg)
		case err != nil:
			return answer.Unavailable(err)
		}
		c.Set(fiber.HeaderETag, versionTag(stored[0].Version))
		return c.JSON(s.versionOf(stored[0]))
	}
}

var errDeletedAlready = errors.New("deleted already")

func (s *Server) exportDocuments(c *fiber.Ctx) error {
	ctx, cancel := s.documentCtx(c)
	defer cancel()
	var docs []dashboards.Document
	for _, k := range dashboards.Kinds {
		list, err := s.d.Documents.List(ctx, string(k))
		if err != nil {
			return answer.Unavailable(err)
		}
		for _, d := range list {
			docs = append(docs, dashboards.Document{Kind: k, ID: d.ID, Body: d.Body})
		}
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="dashboards.json"`)
	return c.JSON(dashboards.NewExport(docs))
}

// importResult is what an import stored and what it found unchanged.
type importResult struct {
	Stored    []documentVersion `json:"stored"`
	Unchanged []documentVersion `json:"unchanged"`
}

func (s *Server) importDocuments(c *fiber.Ctx) error {
	raw, err := s.bodies.Bytes(c)
	if err != nil {
		return err
	}
	srcs, err := dashboards.ParseExport("", raw)
	var inv *dashboards.InvalidError
	if errors.As(err, &inv) {
		return invalid(c, "the import", inv)
	} else if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	for i := range srcs {
		srcs[i].Body = bytes.Clone(srcs[i].Body)
	}
	ctx, cancel := s.documentCtx(c)
	defer cancel()
	p := &saveSet{h: s.d.KPIs.Hierarchy(), extra: s.extraIndicators(), srcs: srcs, by: actor(principal(c))}
	stored, err := s.writeDocuments(ctx, p.plan)
	switch {
	case errors.As(err, &inv):
		return invalid(c, "the import", inv)
	case err != nil:
		return answer.Unavailable(err)
	}
	out := importResult{Stored: []documentVersion{}, Unchanged: []documentVersion{}}
	for _, d := range stored {
		out.Stored = append(out.Stored, s.versionOf(d))
	}
	for _, d := range p.same {
		out.Unchanged = append(out.Unchanged, s.versionOf(d))
	}
	return c.JSON(out)
}
