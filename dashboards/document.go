package dashboards

import "encoding/json"

// Kind is one of the four kinds of document the wall is defined by.
type Kind string

// The kinds of document.
const (
	KindDashboard Kind = "dashboard" // widgets on a grid
	KindPlaylist  Kind = "playlist"  // dashboards in turn, with durations and areas
	KindWall      Kind = "wall"      // screens in a grid, showing a playlist or a dashboard
	KindScreen    Kind = "screen"    // one display: its areas and what it shows
)

// Kinds lists the kinds in the order a set is written: what a document
// refers to comes before it.
var Kinds = []Kind{KindDashboard, KindPlaylist, KindWall, KindScreen}

// Plural is the kind's name in routes and in export files: dashboards,
// playlists, walls, screens.
func (k Kind) Plural() string { return string(k) + "s" }

// Text is a text in Vietnamese and English; both are required.
type Text struct {
	Vi string `json:"vi"`
	En string `json:"en"`
}

// Dashboard is widgets placed on a grid of screen units, so that the same
// definition fits a 1080p and a 4K screen.
type Dashboard struct {
	ID    string `json:"id"`
	Title Text   `json:"title"`
	// Area is a unit code, or "$area": the screen or playlist item
	// supplies the unit.
	Area    string   `json:"area"`
	Window  string   `json:"window"` // today, 24h, 7d, 30d; default today
	Theme   string   `json:"theme"`  // wall, dark, light; default wall
	Grid    Grid     `json:"grid"`
	Widgets []Widget `json:"widgets"`
}

// Grid is the dashboard's size in cells; every widget is placed in cells.
type Grid struct {
	Columns int `json:"columns"`
	Rows    int `json:"rows"`
}

// Widget is one tile of a dashboard: x, y from the top left cell (0, 0),
// w columns wide and h rows high.
type Widget struct {
	ID      string   `json:"id"`
	Type    string   `json:"type"`
	X       int      `json:"x"`
	Y       int      `json:"y"`
	W       int      `json:"w"`
	H       int      `json:"h"`
	Options *Options `json:"options,omitempty"`
}

// Widget types.
const (
	WidgetKPI        = "kpi"
	WidgetMap        = "map"
	WidgetRanking    = "ranking"
	WidgetSeries     = "series"
	WidgetAlarms     = "alarms"
	WidgetEvents     = "events"
	WidgetScoreboard = "scoreboard"
	WidgetFeeds      = "feeds"
	WidgetClock      = "clock"
	WidgetHeader     = "header"
	WidgetText       = "text"
)

// WidgetTypes lists the widget types.
var WidgetTypes = []string{WidgetKPI, WidgetMap, WidgetRanking, WidgetSeries, WidgetAlarms, WidgetEvents,
	WidgetScoreboard, WidgetFeeds, WidgetClock, WidgetHeader, WidgetText}

// Options are a widget's settings; which ones a widget takes depends on its
// type (see optionsOf). Stored documents carry every option of their type,
// defaults filled in.
type Options struct {
	// Indicator is a catalog indicator (kpi, map, ranking).
	Indicator string `json:"indicator,omitempty"`
	// Indicators are the catalog indicators of a series.
	Indicators []string `json:"indicators,omitempty"`
	// Compare is what a KPI tile shows its change against: none,
	// previous_period or year_ago; default previous_period.
	Compare   string `json:"compare,omitempty"`
	Sparkline bool   `json:"sparkline,omitempty"`
	// Thresholds colour a KPI tile or a map with a fixed legend: the
	// colour is that of the first threshold at or below the value, so they
	// are listed from the highest value down.
	Thresholds []Threshold `json:"thresholds,omitempty"`
	// Legend of a map: fitted to the data, or fixed by the thresholds.
	Legend string `json:"legend,omitempty"`
	// Ramp of a map's fitted legend: viridis (default) or cividis, both
	// readable with any colour vision.
	Ramp      string     `json:"ramp,omitempty"`
	Layers    []string   `json:"layers,omitempty"` // devices, alarms
	Drilldown *Drilldown `json:"drilldown,omitempty"`
	// Order of a ranking: top (highest first) or bottom.
	Order       string `json:"order,omitempty"`
	N           int    `json:"n,omitempty"`            // ranking: units shown per page, 1–50
	PageSeconds int    `json:"page_seconds,omitempty"` // ranking: seconds per page, 3–600
	Step        string `json:"step,omitempty"`         // series: hour, day, week, month
	Days        int    `json:"days,omitempty"`         // series: days back, 1–400
	// MinSeverity filters alarms and camera events: info, warning, critical.
	MinSeverity string `json:"min_severity,omitempty"`
	// Acknowledge offers operators the acknowledge action on alarms.
	Acknowledge bool `json:"acknowledge,omitempty"`
	// Group of the scoreboard: all, or one group of the national index.
	Group string `json:"group,omitempty"`
	// Period the scoreboard scores (2026, 2026-H1, 2026-Q3, 2026-11);
	// empty: the current quarter.
	Period string `json:"period,omitempty"`
	// OnlyLate lists, in a feeds widget, only the departments' datasets
	// that are late or incomplete.
	OnlyLate bool `json:"only_late,omitempty"`
	// Title of a widget with a title bar, in place of the one its
	// indicator or type gives it.
	Title *Text `json:"title,omitempty"`
	// Text of a text widget, or a header's own text instead of the title.
	Text *Text `json:"text,omitempty"`
}

// Threshold is a value and the colour of values at or above it.
type Threshold struct {
	Value float64 `json:"value"`
	Color string  `json:"color"` // good, warn, bad, neutral
}

// Drilldown opens a child unit's own dashboard from a map: on a click, or
// in turn every Seconds.
type Drilldown struct {
	Mode      string `json:"mode"` // click or timed; default click
	Dashboard string `json:"dashboard"`
	Seconds   int    `json:"seconds,omitempty"` // timed only, 5–600
}

// Playlist is dashboards shown in turn.
type Playlist struct {
	ID    string         `json:"id"`
	Title Text           `json:"title"`
	Items []PlaylistItem `json:"items"`
}

// PlaylistItem is one step of a playlist, or one step per child unit of
// EachChildOf ($area being the child).
type PlaylistItem struct {
	Dashboard   string `json:"dashboard"`
	Seconds     int    `json:"seconds"` // default 60
	Area        string `json:"area,omitempty"`
	EachChildOf string `json:"each_child_of,omitempty"`
}

// Wall is screens arranged in a grid, showing a playlist or one dashboard.
type Wall struct {
	ID      string       `json:"id"`
	Title   Text         `json:"title"`
	Columns int          `json:"columns"`
	Rows    int          `json:"rows"`
	Screens []WallScreen `json:"screens"`
	// Playlist or Dashboard: exactly one is set.
	Playlist  string `json:"playlist,omitempty"`
	Dashboard string `json:"dashboard,omitempty"`
	// Span makes a dashboard span the whole wall: each screen renders its
	// part of the grid.
	Span     bool      `json:"span"`
	Takeover *Takeover `json:"takeover,omitempty"`
}

// WallScreen places a screen in its wall.
type WallScreen struct {
	Screen string `json:"screen"`
	Col    int    `json:"col"`
	Row    int    `json:"row"`
}

// Takeover switches screens to an alarm at or above MinSeverity until it
// is acknowledged or TimeoutSeconds pass.
type Takeover struct {
	MinSeverity    string   `json:"min_severity"` // default critical
	Screens        []string `json:"screens"`
	TimeoutSeconds int      `json:"timeout_seconds"` // default 300
	Chime          bool     `json:"chime"`
}

// Screen is one display. It shows its wall's rotation, or, alone, a
// playlist or a dashboard; none leaves it to the operators' commands.
type Screen struct {
	ID        string   `json:"id"`
	Title     Text     `json:"title"`
	Areas     []string `json:"areas"`
	Wall      string   `json:"wall,omitempty"`
	Playlist  string   `json:"playlist,omitempty"`
	Dashboard string   `json:"dashboard,omitempty"`
}

// Document is a valid document: its kind and id, its canonical JSON (the
// fields in a fixed order, defaults filled in, what two saves compare) and
// the documents it refers to.
type Document struct {
	Kind Kind
	ID   string
	Body json.RawMessage
	Refs []Reference
	// Value is the decoded document: *Dashboard, *Playlist, *Wall or
	// *Screen.
	Value any
}

// Reference is a document another one names, at Path.
type Reference struct {
	Path string
	Kind Kind
	ID   string
}
