package aggregate

import (
	"math"
	"strconv"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/rollup"
)

// Definition describes one indicator of the catalog.
type Definition struct {
	ID          string `json:"id"`
	NameEn      string `json:"name_en"`
	NameVi      string `json:"name_vi"`
	Kind        string `json:"kind"` // count, ratio, duration, mean, max or breakdown
	Unit        string `json:"unit"`
	Direction   string `json:"direction"` // higher_is_better, lower_is_better or neutral
	Formula     string `json:"formula"`
	Numerator   string `json:"numerator,omitempty"`
	Denominator string `json:"denominator,omitempty"`
	// Source says, for people, what the figures come from.
	Source string `json:"source"`
	// Sources are what the figures are summed from: reads of any range
	// sum exactly these. None for figures of devices and alarms now.
	Sources []Source `json:"-"`
	// Needs lists the record fields the indicator is computed from.
	Needs []string `json:"needs"`
	// Live says the indicator is part of the live snapshots (windows).
	Live bool `json:"live"`
	// History says it has series and rankings over any past range.
	History bool `json:"history"`
	// Grain is the shortest step its series take (a department's dataset
	// reported by month or year); empty: any step.
	Grain string `json:"grain,omitempty"`
	// Thresholds are where its figures turn to a warning and critical, as
	// a department's dataset defines them; nil: none given.
	Thresholds *Thresholds `json:"thresholds,omitempty"`
	// Breakdowns are the dimensions it can be broken down by.
	Breakdowns []string `json:"breakdowns,omitempty"`
	// Scoreboard places the indicator on the national index.
	Scoreboard *ScoreRule `json:"scoreboard,omitempty"`
	// AtEnd says it counts the dossiers still open at the end of the
	// range (Counts.OpenAtEnd, LateAtEnd), which need reading every change
	// before that end.
	AtEnd bool `json:"-"`

	value func(Counts) any
	parts func(Counts) Parts
	// enc appends the JSON of value(c) without boxing it: the live
	// snapshots are encoded through it (see appendKPIs).
	enc func(b []byte, c Counts) []byte
}

// Thresholds colour a value: past Warning it is a warning, past Critical
// critical — "past" is below for an indicator where higher is better,
// above otherwise.
type Thresholds struct {
	Warning  *float64 `json:"warning,omitempty"`
	Critical *float64 `json:"critical,omitempty"`
}

// ScoreRule is how an indicator scores on the scoreboard: max_points at or
// beyond full_points_at, in proportion below it.
type ScoreRule struct {
	Group        string  `json:"group"`
	MaxPoints    float64 `json:"max_points"`
	FullPointsAt float64 `json:"full_points_at"`
}

// Group is a group of the national index.
type Group struct {
	ID        string  `json:"id"`
	NameEn    string  `json:"name_en"`
	NameVi    string  `json:"name_vi"`
	MaxPoints float64 `json:"max_points"`
}

// Unsupported is an item of the national index that the ingested data
// cannot measure; the scoreboard lists it rather than scoring it zero.
type Unsupported struct {
	ID        string  `json:"id"`
	Group     string  `json:"group"`
	NameEn    string  `json:"name_en"`
	NameVi    string  `json:"name_vi"`
	MaxPoints float64 `json:"max_points"`
	Reason    string  `json:"reason"`
}

// Parts is an indicator's value with what it is computed from: a ratio's
// numerator and denominator, a count's number (Den nil).
type Parts struct {
	Value *float64
	Num   *float64
	Den   *float64
}

// Parts returns the indicator's value over c, or false when it has none
// (a breakdown, or a figure of now only).
func (d Definition) Parts(c Counts) (Parts, bool) {
	if d.parts == nil {
		return Parts{}, false
	}
	return d.parts(c), true
}

func f64(v float64) *float64 { return &v }

func countParts(n uint64) Parts {
	v := float64(n)
	return Parts{Value: &v, Num: &v}
}

// ratioParts rounds like the snapshots do; the numerator and denominator
// stay exact.
func ratioParts(num, den float64) Parts {
	p := Parts{Num: f64(num), Den: f64(den)}
	if den != 0 {
		p.Value = f64(math.Round(num/den*1e4) / 1e4)
	}
	return p
}

// Counts are the additive figures behind every indicator. Summing Counts
// over units and then deriving rates is what makes a province's rate the
// rate of its dossiers, not the average of its communes' rates.
type Counts struct {
	Received          uint64 // dossiers received in the range
	Online            uint64 // … through the online channel
	Digitized         uint64 // … with components and result digitized
	Reused            uint64 // … reusing already-digitized data
	FeeBearing        uint64 // … of procedures with a fee or financial obligation
	PaidOnline        uint64 // … of which paid online
	Resolved          uint64 // dossiers resolved in the range
	OnTime            uint64 // … on time (waits for documents excluded, at most one request)
	Timed             uint64 // … with a known receipt time
	ResolutionSeconds uint64 // … their total processing time
	EResult           uint64 // … with an electronic result
	// OpenAtEnd and LateAtEnd are the dossiers open, and open past their
	// deadline, at the end of the range (history only).
	OpenAtEnd uint64
	LateAtEnd uint64
	Overdue   uint64 // open dossiers past their deadline, now (the late-open balance)
	// Approximate counts dossiers filed under a split unit of an older
	// hierarchy and placed here without a position to settle which part.
	Approximate uint64
	// Flow is every dossier measure of dossier.Table over the range, at
	// least 0, balances left out: the fields above are the same figures
	// under the names the catalog has long used, and an indicator of a
	// measure added since reads it here (e.g. Flow[dossier.ReceivedPostal]:
	// see the package doc of dossier).
	Flow dossier.Measures

	FeedbackReceived  uint64 // citizen feedback received in the range
	FeedbackResolved  uint64 // … resolved in the range
	FeedbackOnTime    uint64 // … by their due time
	FeedbackRated     uint64 // resolved in the range with a rating
	FeedbackSatisfied uint64 // … satisfied
	Complaints        uint64 // dossiers complained about (feedback on procedures) in the range

	CameraEvents   uint64            // camera detections in the window, heartbeats aside
	CameraCritical uint64            // … of which critical
	ByType         map[string]uint64 // … by type
	CamerasOnline  uint64            // now
	CamerasOffline uint64
	SensorsOnline  uint64
	SensorsOffline uint64
	PM25           Stat   // PM2.5 readings in the window
	WaterLevel     Stat   // water-level readings in the window
	AlarmsOpen     uint64 // alarms not yet resolved, now
}

// Stat summarises readings so that units combine exactly: the maximum of
// maxima, and the mean from summed sums and counts.
type Stat struct {
	Max float64
	Sum float64
	N   uint64
}

// Add combines o into s.
func (s *Stat) Add(o Stat) {
	if o.N == 0 {
		return
	}
	if s.N == 0 || o.Max > s.Max {
		s.Max = o.Max
	}
	s.Sum += o.Sum
	s.N += o.N
}

// maxValue is the highest reading, rounded for display, or false without
// readings.
func (s Stat) maxValue() (float64, bool) {
	if s.N == 0 {
		return 0, false
	}
	return math.Round(s.Max*100) / 100, true
}

// meanValue is the mean of the readings, rounded for display, or false
// without readings.
func (s Stat) meanValue() (float64, bool) {
	if s.N == 0 {
		return 0, false
	}
	return math.Round(s.Sum/float64(s.N)*100) / 100, true
}

func (s Stat) max() any  { return optional(s.maxValue()) }
func (s Stat) mean() any { return optional(s.meanValue()) }

// optional is v as a *float64, nil (JSON null) when not ok.
func optional(v float64, ok bool) any {
	if !ok {
		return (*float64)(nil)
	}
	return &v
}

// Add sums o into c.
func (c *Counts) Add(o Counts) {
	for _, p := range []struct {
		dst *uint64
		src uint64
	}{
		{&c.Received, o.Received}, {&c.Online, o.Online}, {&c.Digitized, o.Digitized}, {&c.Reused, o.Reused},
		{&c.FeeBearing, o.FeeBearing}, {&c.PaidOnline, o.PaidOnline}, {&c.Resolved, o.Resolved}, {&c.OnTime, o.OnTime},
		{&c.Timed, o.Timed}, {&c.ResolutionSeconds, o.ResolutionSeconds}, {&c.EResult, o.EResult},
		{&c.OpenAtEnd, o.OpenAtEnd}, {&c.LateAtEnd, o.LateAtEnd}, {&c.Overdue, o.Overdue}, {&c.Approximate, o.Approximate},
		{&c.FeedbackReceived, o.FeedbackReceived}, {&c.FeedbackResolved, o.FeedbackResolved},
		{&c.FeedbackOnTime, o.FeedbackOnTime}, {&c.FeedbackRated, o.FeedbackRated},
		{&c.FeedbackSatisfied, o.FeedbackSatisfied}, {&c.Complaints, o.Complaints},
		{&c.CameraEvents, o.CameraEvents}, {&c.CameraCritical, o.CameraCritical},
		{&c.CamerasOnline, o.CamerasOnline}, {&c.CamerasOffline, o.CamerasOffline},
		{&c.SensorsOnline, o.SensorsOnline}, {&c.SensorsOffline, o.SensorsOffline}, {&c.AlarmsOpen, o.AlarmsOpen},
	} {
		*p.dst += p.src
	}
	c.Flow.Add(o.Flow)
	for t, n := range o.ByType {
		if c.ByType == nil {
			c.ByType = map[string]uint64{}
		}
		c.ByType[t] += n
	}
	c.PM25.Add(o.PM25)
	c.WaterLevel.Add(o.WaterLevel)
}

// rate is num/den rounded to 4 decimals, or false when den is 0.
func rate(num, den uint64) (float64, bool) {
	if den == 0 {
		return 0, false
	}
	return math.Round(float64(num)/float64(den)*1e4) / 1e4, true
}

// ratio is rate as a value: nil (JSON null) when den is 0.
func ratio(num, den uint64) any { return optional(rate(num, den)) }

// Source is where an indicator's figures are summed from.
type Source = rollup.Source

// The sources an indicator may name.
const (
	SourceDossierFlow = rollup.SourceDossierFlow // the dossier measures (dossier.Table)
	SourceFeedback    = rollup.SourceFeedback    // citizen feedback
	SourceCameras     = rollup.SourceCameras     // camera events
	SourceReadings    = rollup.SourceReadings    // PM2.5 and water-level readings
)

var (
	fromDossiers            = []Source{SourceDossierFlow}
	fromFeedback            = []Source{SourceFeedback}
	fromDossiersAndFeedback = []Source{SourceDossierFlow, SourceFeedback}
	fromCameras             = []Source{SourceCameras}
	fromReadings            = []Source{SourceReadings}
)

var (
	dossierDims  = []string{"sector", "procedure", "channel", "online_level"}
	cameraDims   = []string{"type", "severity"}
	receiptNeeds = []string{"status", "occurred_at", "received_at"}
	resolveNeeds = []string{"status", "occurred_at", "due_at"}
)

// counted makes d a count read from get.
func counted(d Definition, get func(Counts) uint64) Definition {
	d.Kind = "count"
	d.value = func(c Counts) any { return get(c) }
	d.enc = func(b []byte, c Counts) []byte { return strconv.AppendUint(b, get(c), 10) }
	if d.History {
		d.parts = func(c Counts) Parts { return countParts(get(c)) }
	}
	return d
}

// rated makes d the ratio num ÷ den, null when den is 0.
func rated(d Definition, num, den func(Counts) uint64) Definition {
	d.Kind, d.Unit = "ratio", "ratio"
	d.value = func(c Counts) any { return ratio(num(c), den(c)) }
	d.enc = func(b []byte, c Counts) []byte { v, ok := rate(num(c), den(c)); return appendOptional(b, v, ok) }
	d.parts = func(c Counts) Parts { return ratioParts(float64(num(c)), float64(den(c))) }
	return d
}

// now makes d a figure of the present moment, whatever the window.
func now(d Definition, get func(Counts) uint64) Definition {
	d.Kind, d.Live = "count", true
	d.value = func(c Counts) any { return get(c) }
	d.enc = func(b []byte, c Counts) []byte { return strconv.AppendUint(b, get(c), 10) }
	return d
}

// stat makes d the maximum or the mean of readings.
func stat(d Definition, get func(Counts) Stat, mean bool) Definition {
	d.Kind, d.Live, d.History = "max", true, true
	d.value = func(c Counts) any { return get(c).max() }
	d.enc = func(b []byte, c Counts) []byte { v, ok := get(c).maxValue(); return appendOptional(b, v, ok) }
	d.parts = func(c Counts) Parts {
		s := get(c)
		if s.N == 0 {
			return Parts{}
		}
		v := math.Round(s.Max*100) / 100
		return Parts{Value: &v, Num: &v}
	}
	if mean {
		d.Kind = "mean"
		d.value = func(c Counts) any { return get(c).mean() }
		d.enc = func(b []byte, c Counts) []byte { v, ok := get(c).meanValue(); return appendOptional(b, v, ok) }
		d.parts = func(c Counts) Parts {
			s := get(c)
			p := Parts{Num: f64(s.Sum), Den: f64(float64(s.N))}
			if s.N > 0 {
				p.Value = f64(math.Round(s.Sum/float64(s.N)*100) / 100)
			}
			return p
		}
	}
	return d
}

var catalog = []Definition{
	counted(Definition{
		ID: "dossiers_received", NameEn: "Dossiers received", NameVi: "Hồ sơ tiếp nhận",
		Unit: "dossiers", Direction: "neutral", Live: true, History: true, Breakdowns: dossierDims,
		Formula: "Dossiers received in the period, counted at their received event (or, without one, at the earliest received_at reported).",
		Source:  "dossier events", Sources: fromDossiers, Needs: receiptNeeds,
	}, func(c Counts) uint64 { return c.Received }),
	counted(Definition{
		ID: "dossiers_online", NameEn: "Dossiers received online", NameVi: "Hồ sơ tiếp nhận trực tuyến",
		Unit: "dossiers", Direction: "higher_is_better", Live: true, History: true, Breakdowns: dossierDims,
		Formula: "Dossiers received in the period through the online channel.",
		Source:  "dossier events", Sources: fromDossiers, Needs: append(receiptNeeds, "channel"),
	}, func(c Counts) uint64 { return c.Online }),
	rated(Definition{
		ID: "online_rate", NameEn: "Online submission rate", NameVi: "Tỷ lệ hồ sơ trực tuyến",
		Direction: "higher_is_better", Live: true, History: true, Breakdowns: dossierDims,
		Formula:   "Dossiers received online ÷ all dossiers received in the period; null when none were received.",
		Numerator: "dossiers received online", Denominator: "dossiers received",
		Source: "dossier events", Sources: fromDossiers, Needs: append(receiptNeeds, "channel"),
		Scoreboard: &ScoreRule{Group: "online", MaxPoints: 12, FullPointsAt: 0.8},
	}, func(c Counts) uint64 { return c.Online }, func(c Counts) uint64 { return c.Received }),
	counted(Definition{
		ID: "dossiers_resolved", NameEn: "Dossiers resolved", NameVi: "Hồ sơ đã giải quyết",
		Unit: "dossiers", Direction: "neutral", Live: true, History: true, Breakdowns: dossierDims,
		Formula: "Dossiers resolved in the period, counted at their first resolved (or returned) event.",
		Source:  "dossier events", Sources: fromDossiers, Needs: resolveNeeds,
	}, func(c Counts) uint64 { return c.Resolved }),
	counted(Definition{
		ID: "dossiers_on_time", NameEn: "Dossiers resolved on time", NameVi: "Hồ sơ giải quyết đúng hạn",
		Unit: "dossiers", Direction: "higher_is_better", Live: true, History: true, Breakdowns: dossierDims,
		Formula: "Dossiers resolved in the period whose resolution, less the time spent waiting for the citizen's additional " +
			"documents (from each supplement_requested event to the dossier's next event), is at or before the due date; " +
			"a dossier with more than one request for additional documents is late.",
		Source: "dossier events", Sources: fromDossiers, Needs: resolveNeeds,
	}, func(c Counts) uint64 { return c.OnTime }),
	rated(Definition{
		ID: "on_time_rate", NameEn: "On-time resolution rate", NameVi: "Tỷ lệ giải quyết đúng hạn",
		Direction: "higher_is_better", Live: true, History: true, Breakdowns: dossierDims,
		Formula: "Dossiers resolved on time ÷ dossiers resolved in the period; null when none were resolved. Waits for the " +
			"citizen's additional documents do not count against the deadline; more than one request for them makes the dossier late.",
		Numerator: "dossiers resolved on time", Denominator: "dossiers resolved",
		Source: "dossier events", Sources: fromDossiers, Needs: resolveNeeds,
	}, func(c Counts) uint64 { return c.OnTime }, func(c Counts) uint64 { return c.Resolved }),
	rated(Definition{
		ID: "on_time_open_rate", NameEn: "On-time rate, open dossiers included", NameVi: "Tỷ lệ đúng hạn (kể cả hồ sơ đang giải quyết)",
		Direction: "higher_is_better", History: true,
		Formula: "(Dossiers resolved on time in the period + dossiers still open at its end and not yet late) ÷ (dossiers resolved " +
			"in the period + dossiers still open at its end). The same deadline rules as on_time_rate; open dossiers are judged at the end of the period, " +
			"or at the start of the current hour for a period not yet over.",
		Numerator: "dossiers resolved on time + open dossiers not late at the end", Denominator: "dossiers resolved + dossiers open at the end",
		Source: "dossier events", Sources: fromDossiers, Needs: resolveNeeds, AtEnd: true,
		Scoreboard: &ScoreRule{Group: "progress", MaxPoints: 20, FullPointsAt: 0.95},
	}, func(c Counts) uint64 { return c.OnTime + c.OpenAtEnd - min(c.LateAtEnd, c.OpenAtEnd) },
		func(c Counts) uint64 { return c.Resolved + c.OpenAtEnd }),
	func() Definition {
		d := Definition{
			ID: "avg_resolution_days", NameEn: "Average resolution time", NameVi: "Thời gian giải quyết trung bình",
			Kind: "duration", Unit: "days", Direction: "lower_is_better", Live: true, History: true, Breakdowns: dossierDims,
			Formula: "Total processing time of the dossiers resolved in the period (receipt to resolution, less the waits for the " +
				"citizen's additional documents), in days ÷ those dossiers; dossiers without a known receipt are left out.",
			Numerator: "total processing days", Denominator: "dossiers resolved with a known receipt",
			Source: "dossier events", Sources: fromDossiers, Needs: append(resolveNeeds, "received_at"),
		}
		// days is the mean in days, rounded like a rate and then to
		// hundredths, or false without dossiers.
		days := func(c Counts) (float64, bool) {
			num, den := float64(c.ResolutionSeconds)/86400, float64(c.Timed)
			if den == 0 {
				return 0, false
			}
			return math.Round(math.Round(num/den*1e4)/1e4*100) / 100, true
		}
		d.parts = func(c Counts) Parts {
			p := Parts{Num: f64(float64(c.ResolutionSeconds) / 86400), Den: f64(float64(c.Timed))}
			if v, ok := days(c); ok {
				p.Value = &v
			}
			return p
		}
		d.value = func(c Counts) any { return d.parts(c).Value }
		d.enc = func(b []byte, c Counts) []byte { v, ok := days(c); return appendOptional(b, v, ok) }
		return d
	}(),
	rated(Definition{
		ID: "online_payment_rate", NameEn: "Online payment rate", NameVi: "Tỷ lệ thanh toán trực tuyến",
		Direction: "higher_is_better", Live: true, History: true, Breakdowns: dossierDims,
		Formula:   "Dossiers received in the period and paid online ÷ dossiers received of procedures with a fee or financial obligation.",
		Numerator: "dossiers paid online", Denominator: "dossiers with a fee (fee_required or paid_online)",
		Source: "dossier events", Sources: fromDossiers, Needs: append(receiptNeeds, "fee_required", "paid_online"),
		Scoreboard: &ScoreRule{Group: "online", MaxPoints: 10, FullPointsAt: 0.5},
	}, func(c Counts) uint64 { return c.PaidOnline }, func(c Counts) uint64 { return c.FeeBearing }),
	rated(Definition{
		ID: "e_result_rate", NameEn: "Electronic result rate", NameVi: "Tỷ lệ cấp kết quả điện tử",
		Direction: "higher_is_better", Live: true, History: true, Breakdowns: dossierDims,
		Formula:   "Dossiers resolved in the period with an electronic result ÷ dossiers resolved.",
		Numerator: "dossiers with an electronic result", Denominator: "dossiers resolved",
		Source: "dossier events", Sources: fromDossiers, Needs: append(resolveNeeds, "e_result"),
		Scoreboard: &ScoreRule{Group: "digitization", MaxPoints: 6, FullPointsAt: 1},
	}, func(c Counts) uint64 { return c.EResult }, func(c Counts) uint64 { return c.Resolved }),
	rated(Definition{
		ID: "digitization_rate", NameEn: "Digitization rate", NameVi: "Tỷ lệ số hóa hồ sơ",
		Direction: "higher_is_better", Live: true, History: true, Breakdowns: dossierDims,
		Formula:   "Dossiers received in the period whose components and result are digitized ÷ all dossiers received.",
		Numerator: "dossiers digitized", Denominator: "dossiers received",
		Source: "dossier events", Sources: fromDossiers, Needs: append(receiptNeeds, "digitized"),
		Scoreboard: &ScoreRule{Group: "digitization", MaxPoints: 10, FullPointsAt: 1},
	}, func(c Counts) uint64 { return c.Digitized }, func(c Counts) uint64 { return c.Received }),
	rated(Definition{
		ID: "data_reuse_rate", NameEn: "Data reuse rate", NameVi: "Tỷ lệ khai thác, tái sử dụng dữ liệu số hóa",
		Direction: "higher_is_better", Live: true, History: true, Breakdowns: dossierDims,
		Formula:   "Dossiers received in the period that reused already-digitized data ÷ dossiers received.",
		Numerator: "dossiers reusing data", Denominator: "dossiers received",
		Source: "dossier events", Sources: fromDossiers, Needs: append(receiptNeeds, "reused_data"),
		Scoreboard: &ScoreRule{Group: "digitization", MaxPoints: 6, FullPointsAt: 0.5},
	}, func(c Counts) uint64 { return c.Reused }, func(c Counts) uint64 { return c.Received }),
	now(Definition{
		ID: "dossiers_overdue", NameEn: "Dossiers overdue", NameVi: "Hồ sơ quá hạn",
		Unit: "dossiers", Direction: "lower_is_better",
		Formula: "Open dossiers past their deadline, now, whatever the window, under the on-time rules: time spent waiting for " +
			"the citizen's additional documents moves the deadline on, and a second request for documents makes a dossier late " +
			"at once. The same count as the late dossiers still open at the end of a period in the history.",
		Source: "dossier events", Sources: fromDossiers, Needs: []string{"status", "due_at"},
	}, func(c Counts) uint64 { return c.Overdue }),
	counted(Definition{
		ID: "records_approximate", NameEn: "Dossiers placed approximately", NameVi: "Hồ sơ quy đổi gần đúng",
		Unit: "dossiers", Direction: "lower_is_better", Live: true, History: true,
		Formula: "Dossiers received in the period that were filed under a unit of an older hierarchy that was split, and placed here " +
			"on the crosswalk's designated successor because they carried no position to settle which part they belong to.",
		Source: "dossier events re-attributed through a crosswalk", Sources: fromDossiers, Needs: []string{"hierarchy", "area_code", "lat", "lon"},
	}, func(c Counts) uint64 { return c.Approximate }),
	counted(Definition{
		ID: "feedback_received", NameEn: "Citizen feedback received", NameVi: "Phản ánh, kiến nghị tiếp nhận",
		Unit: "items", Direction: "neutral", History: true,
		Formula: "Feedback items (1022 hotline, portal) received in the period.",
		Source:  "citizen feedback", Sources: fromFeedback, Needs: []string{"received_at"},
	}, func(c Counts) uint64 { return c.FeedbackReceived }),
	rated(Definition{
		ID: "feedback_on_time_rate", NameEn: "Feedback handled on time", NameVi: "Tỷ lệ xử lý phản ánh, kiến nghị đúng hạn",
		Direction: "higher_is_better", History: true,
		Formula:   "Feedback resolved in the period by its due time ÷ feedback resolved in the period.",
		Numerator: "feedback resolved on time", Denominator: "feedback resolved",
		Source: "citizen feedback", Sources: fromFeedback, Needs: []string{"status_changes", "due_at"},
		Scoreboard: &ScoreRule{Group: "satisfaction", MaxPoints: 6, FullPointsAt: 1},
	}, func(c Counts) uint64 { return c.FeedbackOnTime }, func(c Counts) uint64 { return c.FeedbackResolved }),
	rated(Definition{
		ID: "feedback_satisfaction_rate", NameEn: "Satisfaction with feedback handling", NameVi: "Mức độ hài lòng về xử lý phản ánh, kiến nghị",
		Direction: "higher_is_better", History: true,
		Formula:   "Feedback resolved in the period rated satisfied ÷ feedback resolved in the period with a rating.",
		Numerator: "feedback rated satisfied", Denominator: "feedback rated",
		Source: "citizen feedback", Sources: fromFeedback, Needs: []string{"status_changes", "rating"},
		Scoreboard: &ScoreRule{Group: "satisfaction", MaxPoints: 6, FullPointsAt: 1},
	}, func(c Counts) uint64 { return c.FeedbackSatisfied }, func(c Counts) uint64 { return c.FeedbackRated }),
	rated(Definition{
		ID: "procedure_satisfaction_rate", NameEn: "Satisfaction with procedures", NameVi: "Mức độ hài lòng trong giải quyết thủ tục hành chính",
		Direction: "higher_is_better", History: true,
		Formula: "100% − (late % + complaint %) of the dossiers resolved in the period: (dossiers resolved on time − dossiers " +
			"complained about in the period, at least 0) ÷ dossiers resolved. Complaints are feedback of category procedure, one per dossier.",
		Numerator: "dossiers resolved on time − dossiers complained about", Denominator: "dossiers resolved",
		Source: "dossier events and citizen feedback", Sources: fromDossiersAndFeedback, Needs: []string{"status", "due_at", "category", "dossier_id"},
		Scoreboard: &ScoreRule{Group: "satisfaction", MaxPoints: 6, FullPointsAt: 1},
	}, func(c Counts) uint64 { return c.OnTime - min(c.Complaints, c.OnTime) }, func(c Counts) uint64 { return c.Resolved }),
	counted(Definition{
		ID: "camera_events", NameEn: "Camera events", NameVi: "Sự kiện camera",
		Unit: "events", Direction: "neutral", Live: true, History: true, Breakdowns: cameraDims,
		Formula: "AI detections reported by cameras in the period (heartbeats are not counted).",
		Source:  "camera events", Sources: fromCameras, Needs: []string{"type", "severity", "occurred_at"},
	}, func(c Counts) uint64 { return c.CameraEvents }),
	counted(Definition{
		ID: "camera_events_critical", NameEn: "Critical camera events", NameVi: "Sự kiện camera nghiêm trọng",
		Unit: "events", Direction: "lower_is_better", Live: true, History: true, Breakdowns: []string{"type"},
		Formula: "Camera events of severity critical in the period.",
		Source:  "camera events", Sources: fromCameras, Needs: []string{"type", "severity", "occurred_at"},
	}, func(c Counts) uint64 { return c.CameraCritical }),
	{
		ID: "camera_events_by_type", NameEn: "Camera events by type", NameVi: "Sự kiện camera theo loại",
		Kind: "breakdown", Unit: "events", Direction: "neutral", Live: true,
		Formula: "Camera events in the window per type (traffic_violation, congestion, …); types with none are left out. " +
			"For history, ask camera_events with by=type.",
		Source: "camera events", Sources: fromCameras, Needs: []string{"type", "occurred_at"},
		value: func(c Counts) any {
			if c.ByType == nil {
				return map[string]uint64{}
			}
			return c.ByType
		},
		enc: func(b []byte, c Counts) []byte { return appendCountMap(b, c.ByType) },
	},
	now(Definition{
		ID: "cameras_online", NameEn: "Cameras online", NameVi: "Camera đang hoạt động",
		Unit: "devices", Direction: "higher_is_better",
		Formula: "Registered cameras that reported within their offline timeout, now, whatever the window.",
		Source:  "device registry and reports", Needs: []string{"camera_id"},
	}, func(c Counts) uint64 { return c.CamerasOnline }),
	now(Definition{
		ID: "cameras_offline", NameEn: "Cameras offline", NameVi: "Camera mất kết nối",
		Unit: "devices", Direction: "lower_is_better",
		Formula: "Registered cameras silent for longer than their offline timeout, now.",
		Source:  "device registry and reports", Needs: []string{"camera_id"},
	}, func(c Counts) uint64 { return c.CamerasOffline }),
	now(Definition{
		ID: "sensors_online", NameEn: "Sensors online", NameVi: "Cảm biến đang hoạt động",
		Unit: "devices", Direction: "higher_is_better",
		Formula: "Registered sensors that reported within their offline timeout, now, whatever the window.",
		Source:  "device registry and reports", Needs: []string{"sensor_id"},
	}, func(c Counts) uint64 { return c.SensorsOnline }),
	now(Definition{
		ID: "sensors_offline", NameEn: "Sensors offline", NameVi: "Cảm biến mất kết nối",
		Unit: "devices", Direction: "lower_is_better",
		Formula: "Registered sensors silent for longer than their offline timeout, now.",
		Source:  "device registry and reports", Needs: []string{"sensor_id"},
	}, func(c Counts) uint64 { return c.SensorsOffline }),
	stat(Definition{
		ID: "pm25_max", NameEn: "PM2.5, highest reading", NameVi: "PM2.5 cao nhất",
		Unit: "ug/m3", Direction: "lower_is_better",
		Formula: "Highest PM2.5 reading of any sensor in the unit in the period; null without readings.",
		Source:  "sensor readings", Sources: fromReadings, Needs: []string{"kind", "value", "observed_at"},
	}, func(c Counts) Stat { return c.PM25 }, false),
	stat(Definition{
		ID: "pm25_avg", NameEn: "PM2.5, mean of readings", NameVi: "PM2.5 trung bình",
		Unit: "ug/m3", Direction: "lower_is_better",
		Formula:   "Sum of PM2.5 readings ÷ number of readings in the period, over every sensor in the unit; null without readings.",
		Numerator: "sum of PM2.5 readings", Denominator: "number of PM2.5 readings",
		Source: "sensor readings", Sources: fromReadings, Needs: []string{"kind", "value", "observed_at"},
	}, func(c Counts) Stat { return c.PM25 }, true),
	stat(Definition{
		ID: "water_level_max", NameEn: "Water level, highest reading", NameVi: "Mực nước cao nhất",
		Unit: "m", Direction: "lower_is_better",
		Formula: "Highest water-level reading of any gauge in the unit in the period; null without readings.",
		Source:  "sensor readings", Sources: fromReadings, Needs: []string{"kind", "value", "observed_at"},
	}, func(c Counts) Stat { return c.WaterLevel }, false),
	now(Definition{
		ID: "alarms_open", NameEn: "Open alarms", NameVi: "Cảnh báo đang mở",
		Unit: "alarms", Direction: "lower_is_better",
		Formula: "Alarms of devices in the unit not yet resolved (open or acknowledged), now, whatever the window.",
		Source:  "alarms", Needs: []string{"alarm rules", "device reports"},
	}, func(c Counts) uint64 { return c.AlarmsOpen }),
}

// Groups are the groups of the national index (Decision 766/QĐ-TTg), 100
// points in all.
var Groups = []Group{
	{ID: "publicity", NameEn: "Publicity and transparency", NameVi: "Công khai, minh bạch", MaxPoints: 18},
	{ID: "progress", NameEn: "Progress of resolution", NameVi: "Tiến độ giải quyết", MaxPoints: 20},
	{ID: "digitization", NameEn: "Digitization of dossiers and results", NameVi: "Số hóa hồ sơ, kết quả", MaxPoints: 22},
	{ID: "online", NameEn: "Online public services", NameVi: "Cung cấp dịch vụ công trực tuyến", MaxPoints: 22},
	{ID: "satisfaction", NameEn: "Satisfaction", NameVi: "Mức độ hài lòng", MaxPoints: 18},
}

// NotMeasured are the index's items the ingested data cannot support.
var NotMeasured = []Unsupported{
	{ID: "procedures_published", Group: "publicity", MaxPoints: 10,
		NameEn: "Procedures published on the national portal", NameVi: "Công khai thủ tục hành chính trên Cổng Dịch vụ công quốc gia",
		Reason: "needs the publication status of each procedure in the national procedure database, which is not ingested"},
	{ID: "dossiers_synced", Group: "publicity", MaxPoints: 8,
		NameEn: "Dossier progress synchronized to the national portal", NameVi: "Đồng bộ trạng thái hồ sơ lên Cổng Dịch vụ công quốc gia",
		Reason: "needs the national portal's synchronization log, which is not ingested"},
}

// Catalog lists the indicators, in the order screens show them.
func Catalog() []Definition { return catalog }

// Lookup finds an indicator by id.
func Lookup(id string) (Definition, bool) {
	for _, d := range catalog {
		if d.ID == id {
			return d, true
		}
	}
	return Definition{}, false
}

// KPIs derives every live indicator of the catalog from c.
func KPIs(c Counts) map[string]any {
	out := make(map[string]any, len(catalog))
	for _, d := range catalog {
		if d.Live {
			out[d.ID] = d.value(c)
		}
	}
	return out
}
