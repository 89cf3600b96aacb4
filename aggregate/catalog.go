package aggregate

import "math"

// Definition describes one indicator of the catalog.
type Definition struct {
	ID          string `json:"id"`
	NameEn      string `json:"name_en"`
	NameVi      string `json:"name_vi"`
	Kind        string `json:"kind"` // count or ratio
	Unit        string `json:"unit"`
	Direction   string `json:"direction"` // higher_is_better, lower_is_better or neutral
	Formula     string `json:"formula"`
	Numerator   string `json:"numerator,omitempty"`
	Denominator string `json:"denominator,omitempty"`
	Source      string `json:"source"`

	value func(Counts) any
}

// Counts are the additive figures behind every dossier indicator. Summing
// Counts over units and then deriving rates is what makes a province's rate
// the rate of its dossiers, not the average of its communes' rates.
type Counts struct {
	Received uint64 // received events in the window
	Online   uint64 // … of which through the online channel
	Resolved uint64 // resolved events in the window
	OnTime   uint64 // … of which at or before the due date
	Overdue  uint64 // open dossiers past their due date, now
	// Approximate counts events filed under a split unit of an older
	// hierarchy and placed here without a position to settle which part.
	Approximate uint64
}

// Add sums o into c.
func (c *Counts) Add(o Counts) {
	c.Received += o.Received
	c.Online += o.Online
	c.Resolved += o.Resolved
	c.OnTime += o.OnTime
	c.Overdue += o.Overdue
	c.Approximate += o.Approximate
}

// ratio is num/den rounded to 4 decimals, or nil (JSON null) when den is 0.
func ratio(num, den uint64) any {
	if den == 0 {
		return (*float64)(nil)
	}
	r := math.Round(float64(num)/float64(den)*1e4) / 1e4
	return &r
}

var catalog = []Definition{
	{
		ID: "dossiers_received", NameEn: "Dossiers received", NameVi: "Hồ sơ tiếp nhận",
		Kind: "count", Unit: "dossiers", Direction: "neutral",
		Formula: "Number of dossiers received in the window (events with status received).",
		Source:  "dossier events", value: func(c Counts) any { return c.Received },
	},
	{
		ID: "dossiers_online", NameEn: "Dossiers received online", NameVi: "Hồ sơ tiếp nhận trực tuyến",
		Kind: "count", Unit: "dossiers", Direction: "higher_is_better",
		Formula: "Dossiers received in the window through the online channel.",
		Source:  "dossier events", value: func(c Counts) any { return c.Online },
	},
	{
		ID: "online_rate", NameEn: "Online submission rate", NameVi: "Tỷ lệ hồ sơ trực tuyến",
		Kind: "ratio", Unit: "fraction", Direction: "higher_is_better",
		Formula:   "Dossiers received online ÷ all dossiers received in the window; null when none were received.",
		Numerator: "dossiers_online", Denominator: "dossiers_received",
		Source: "dossier events", value: func(c Counts) any { return ratio(c.Online, c.Received) },
	},
	{
		ID: "dossiers_resolved", NameEn: "Dossiers resolved", NameVi: "Hồ sơ đã giải quyết",
		Kind: "count", Unit: "dossiers", Direction: "neutral",
		Formula: "Number of dossiers resolved in the window (events with status resolved).",
		Source:  "dossier events", value: func(c Counts) any { return c.Resolved },
	},
	{
		ID: "dossiers_on_time", NameEn: "Dossiers resolved on time", NameVi: "Hồ sơ giải quyết đúng hạn",
		Kind: "count", Unit: "dossiers", Direction: "higher_is_better",
		Formula: "Dossiers resolved in the window at or before their due date (occurred_at ≤ due_at).",
		Source:  "dossier events", value: func(c Counts) any { return c.OnTime },
	},
	{
		ID: "on_time_rate", NameEn: "On-time resolution rate", NameVi: "Tỷ lệ giải quyết đúng hạn",
		Kind: "ratio", Unit: "fraction", Direction: "higher_is_better",
		Formula:   "Dossiers resolved on time ÷ dossiers resolved in the window; null when none were resolved.",
		Numerator: "dossiers_on_time", Denominator: "dossiers_resolved",
		Source: "dossier events", value: func(c Counts) any { return ratio(c.OnTime, c.Resolved) },
	},
	{
		ID: "dossiers_overdue", NameEn: "Dossiers overdue", NameVi: "Hồ sơ quá hạn",
		Kind: "count", Unit: "dossiers", Direction: "lower_is_better",
		Formula: "Open dossiers (latest status received or processing) whose due date has passed, now, whatever the window. " +
			"Dossiers waiting for the citizen's additional documents are not counted: their clock is stopped.",
		Source: "latest state of each dossier", value: func(c Counts) any { return c.Overdue },
	},
	{
		ID: "records_approximate", NameEn: "Records placed approximately", NameVi: "Bản ghi quy đổi gần đúng",
		Kind: "count", Unit: "events", Direction: "lower_is_better",
		Formula: "Dossier events in the window filed under a unit of an older hierarchy that was split, and placed here " +
			"on the crosswalk's designated successor because they carried no position to settle which part they belong to.",
		Source: "dossier events re-attributed through a crosswalk", value: func(c Counts) any { return c.Approximate },
	},
}

// Catalog lists the indicators, in the order screens show them.
func Catalog() []Definition { return catalog }

// KPIs derives every indicator of the catalog from c.
func KPIs(c Counts) map[string]any {
	out := make(map[string]any, len(catalog))
	for _, d := range catalog {
		out[d.ID] = d.value(c)
	}
	return out
}
