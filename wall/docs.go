package wall

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/openioc/ioc/geo"
)

// Kinds of documents the walls read.
const (
	KindScreen    = "screen"
	KindWall      = "wall"
	KindPlaylist  = "playlist"
	KindDashboard = "dashboard"
)

// Documents is the store of wall documents (package dashboards keeps them
// versioned in ClickHouse) as the walls read it.
type Documents interface {
	// List returns the latest version of every document of kind (screen,
	// wall, playlist or dashboard) that is not deleted, as stored JSON.
	List(ctx context.Context, kind string) ([]json.RawMessage, error)
}

// MemoryDocuments keeps documents in memory: tests, and a node whose
// documents are given rather than stored.
//
// Concurrency: safe for concurrent use.
type MemoryDocuments struct {
	mu   sync.Mutex
	docs map[string]map[string]json.RawMessage // kind → id → body
}

// NewMemoryDocuments returns an empty store.
func NewMemoryDocuments() *MemoryDocuments {
	return &MemoryDocuments{docs: map[string]map[string]json.RawMessage{}}
}

// Put stores doc (any value that encodes to a document with an "id") as
// the latest of its kind and id.
func (m *MemoryDocuments) Put(kind string, doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode %s document: %w", kind, err)
	}
	var head struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &head); err != nil || head.ID == "" {
		return fmt.Errorf("a %s document needs an \"id\"", kind)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.docs[kind] == nil {
		m.docs[kind] = map[string]json.RawMessage{}
	}
	m.docs[kind][head.ID] = b
	return nil
}

// Delete removes a document.
func (m *MemoryDocuments) Delete(kind, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.docs[kind], id)
}

// List returns the documents of kind, by id.
func (m *MemoryDocuments) List(_ context.Context, kind string) ([]json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.docs[kind]))
	for id := range m.docs[kind] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]json.RawMessage, len(ids))
	for i, id := range ids {
		out[i] = m.docs[kind][id]
	}
	return out, nil
}

// The parts of the documents the walls use; package dashboards validates
// the whole when a document is saved.

type screenDoc struct {
	ID        string          `json:"id"`
	Title     json.RawMessage `json:"title,omitempty"`
	Areas     []string        `json:"areas"`
	Wall      string          `json:"wall"`
	Playlist  string          `json:"playlist"`
	Dashboard string          `json:"dashboard"`
}

type wallDoc struct {
	ID        string          `json:"id"`
	Title     json.RawMessage `json:"title,omitempty"`
	Columns   int             `json:"columns"`
	Rows      int             `json:"rows"`
	Screens   []placement     `json:"screens"`
	Playlist  string          `json:"playlist"`
	Dashboard string          `json:"dashboard"`
	Span      bool            `json:"span"`
	Takeover  *takeoverDoc    `json:"takeover"`
}

type placement struct {
	Screen string `json:"screen"`
	Col    int    `json:"col"`
	Row    int    `json:"row"`
}

type takeoverDoc struct {
	MinSeverity    string   `json:"min_severity"`
	Screens        []string `json:"screens"`
	TimeoutSeconds int      `json:"timeout_seconds"`
	Chime          bool     `json:"chime"`
}

type playlistDoc struct {
	ID    string    `json:"id"`
	Items []itemDoc `json:"items"`
}

type itemDoc struct {
	Dashboard   string `json:"dashboard"`
	Seconds     int    `json:"seconds"`
	Area        string `json:"area"`
	EachChildOf string `json:"each_child_of"`
}

type dashboardDoc struct {
	ID     string `json:"id"`
	Area   string `json:"area"`
	Window string `json:"window"`
}

// library is one reading of every document.
type library struct {
	screens    map[string]screenDoc
	walls      map[string]wallDoc
	playlists  map[string]playlistDoc
	dashboards map[string]dashboardDoc
	// revs are the dashboards' revisions: a digest of each document, so
	// that a screen's state changes, and its page reads the dashboard
	// again, when an admin edits the dashboard it shows.
	revs map[string]string
}

func loadLibrary(ctx context.Context, docs Documents) (*library, error) {
	lib := &library{revs: map[string]string{}}
	var err error
	if lib.screens, err = loadKind[screenDoc](ctx, docs, KindScreen, nil); err != nil {
		return nil, err
	}
	if lib.walls, err = loadKind[wallDoc](ctx, docs, KindWall, nil); err != nil {
		return nil, err
	}
	if lib.playlists, err = loadKind[playlistDoc](ctx, docs, KindPlaylist, nil); err != nil {
		return nil, err
	}
	if lib.dashboards, err = loadKind[dashboardDoc](ctx, docs, KindDashboard, lib.revs); err != nil {
		return nil, err
	}
	return lib, nil
}

// loadKind reads the documents of kind by id, and (revs not nil) their
// revisions.
func loadKind[T any](ctx context.Context, docs Documents, kind string, revs map[string]string) (map[string]T, error) {
	raw, err := docs.List(ctx, kind)
	if err != nil {
		return nil, fmt.Errorf("read %s documents: %w", kind, err)
	}
	out := make(map[string]T, len(raw))
	for _, b := range raw {
		var head struct {
			ID string `json:"id"`
		}
		var v T
		// A document the store holds was validated when saved; one that
		// does not decode (an older schema) is left out, not fatal.
		if json.Unmarshal(b, &head) != nil || head.ID == "" || json.Unmarshal(b, &v) != nil {
			continue
		}
		out[head.ID] = v
		if revs != nil {
			sum := sha256.Sum256(b)
			revs[head.ID] = hex.EncodeToString(sum[:6])
		}
	}
	return out, nil
}

// Part is the part of a dashboard's grid a screen renders: the screen at
// column Col and row Row of a wall of Columns × Rows screens. A screen that
// renders the whole dashboard has {0, 0, 1, 1}.
type Part struct {
	Col     int `json:"col"`
	Row     int `json:"row"`
	Columns int `json:"columns"`
	Rows    int `json:"rows"`
}

var whole = Part{Columns: 1, Rows: 1}

// member is a screen of a layout.
type member struct {
	id      string
	title   json.RawMessage
	areas   []string
	part    Part
	problem string // what is wrong with its documents, for the operator
}

// layout is what the documents say of one rotation: a wall and its
// screens, or a screen on its own. Every screen of a layout shows the same
// step at the same time.
type layout struct {
	key       string // "wall/{id}" or "screen/{id}"
	wall      string
	members   []member // by id
	playlist  string   // the documents' schedule: a playlist, else one dashboard
	dashboard string
	takeover  *takeoverDoc // nil: alarms never take this layout over
	areas     []string     // every member's areas
}

// layouts groups the screens the documents name: each wall's screens
// (a screen placed on several walls belongs to the first by id), and each
// other screen on its own.
func (lib *library) layouts() map[string]*layout {
	out := map[string]*layout{}
	placed := map[string]bool{}
	wallIDs := make([]string, 0, len(lib.walls))
	for id := range lib.walls {
		wallIDs = append(wallIDs, id)
	}
	sort.Strings(wallIDs)
	for _, id := range wallIDs {
		w := lib.walls[id]
		l := &layout{key: "wall/" + id, wall: id, playlist: w.Playlist, dashboard: w.Dashboard, takeover: w.Takeover}
		if l.playlist != "" {
			l.dashboard = ""
		}
		for _, p := range w.Screens {
			if placed[p.Screen] || p.Screen == "" {
				continue
			}
			placed[p.Screen] = true
			m := member{id: p.Screen, part: whole}
			if w.Span && w.Columns > 0 && w.Rows > 0 {
				m.part = Part{Col: p.Col, Row: p.Row, Columns: w.Columns, Rows: w.Rows}
			}
			if s, ok := lib.screens[p.Screen]; ok {
				m.title, m.areas = s.Title, s.Areas
			} else {
				m.problem = fmt.Sprintf("wall %s places screen %s, which is not defined: an admin creates it with PUT /api/v1/screens/%s", id, p.Screen, p.Screen)
			}
			l.members = append(l.members, m)
		}
		if len(l.members) == 0 {
			continue
		}
		sort.Slice(l.members, func(i, j int) bool { return l.members[i].id < l.members[j].id })
		for _, m := range l.members {
			for _, a := range m.areas {
				if !slices.Contains(l.areas, a) {
					l.areas = append(l.areas, a)
				}
			}
		}
		out[l.key] = l
	}
	for id, s := range lib.screens {
		if placed[id] {
			continue
		}
		l := &layout{key: "screen/" + id, playlist: s.Playlist, dashboard: s.Dashboard, areas: s.Areas,
			members: []member{{id: id, title: s.Title, areas: s.Areas, part: whole}}}
		if l.playlist != "" {
			l.dashboard = ""
		}
		switch _, ok := lib.walls[s.Wall]; {
		case s.Wall != "" && ok:
			l.members[0].problem = fmt.Sprintf("screen %s names wall %s, which does not place it: add it to the wall's screens", id, s.Wall)
		case s.Wall != "":
			l.members[0].problem = fmt.Sprintf("screen %s names wall %s, which is not defined", id, s.Wall)
		}
		out[l.key] = l
	}
	return out
}

// step is one dashboard of a schedule, for a time.
type step struct {
	dashboard string
	area      string // "" : the dashboard's own, else the screen's
	seconds   int
}

// steps expands a schedule: a playlist's items, an each_child_of item
// giving one step per child unit of its area (in the hierarchy's order);
// or one dashboard shown until told otherwise (seconds 0). problem says
// what could not be found.
func (lib *library) steps(playlist, dashboard string, h *geo.Hierarchy) (out []step, problem string) {
	if playlist == "" {
		if dashboard == "" {
			return nil, "nothing to show: give the screen or its wall a playlist or a dashboard"
		}
		return []step{{dashboard: dashboard}}, ""
	}
	pl, ok := lib.playlists[playlist]
	if !ok {
		return nil, fmt.Sprintf("playlist %s is not defined", playlist)
	}
	for _, it := range pl.Items {
		secs := max(it.Seconds, 1)
		if it.EachChildOf == "" {
			out = append(out, step{dashboard: it.Dashboard, area: it.Area, seconds: secs})
			continue
		}
		for _, c := range h.ChildCodes(it.EachChildOf) {
			out = append(out, step{dashboard: it.Dashboard, area: c, seconds: secs})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Sprintf("playlist %s has no dashboard to show", playlist)
	}
	return out, ""
}
