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

func (s Stat) max() any {
	if s.N == 0 {
		return (*float64)(nil)
	}
	v := math.Round(s.Max*100) / 100
	return &v
}

func (s Stat) mean() any {
	if s.N == 0 {
		return (*float64)(nil)
	}
	v := math.Round(s.Sum/float64(s.N)*100) / 100
	return &v
}

// Add sums o into c.
func (c *Counts) Add(o Counts) {
	c.Received += o.Received
	c.Online += o.Online
	c.Resolved += o.Resolved
	c.OnTime += o.OnTime
	c.Overdue += o.Overdue
	c.Approximate += o.Approximate
	c.CameraEvents += o.CameraEvents
	c.CameraCritical += o.CameraCritical
	for t, n := range o.ByType {
		if c.ByType == nil {
			c.ByType = map[string]uint64{}
		}
		c.ByType[t] += n
	}
	c.CamerasOnline += o.CamerasOnline
	c.CamerasOffline += o.CamerasOffline
	c.SensorsOnline += o.SensorsOnline
	c.SensorsOffline += o.SensorsOffline
	c.PM25.Add(o.PM25)
	c.WaterLevel.Add(o.WaterLevel)
	c.AlarmsOpen += o.AlarmsOpen
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
	{
		ID: "camera_events", NameEn: "Camera events", NameVi: "Sự kiện camera",
		Kind: "count", Unit: "events", Direction: "neutral",
		Formula: "AI detections reported by cameras in the window (heartbeats are not counted).",
		Source:  "camera events", value: func(c Counts) any { return c.CameraEvents },
	},
	{
		ID: "camera_events_critical", NameEn: "Critical camera events", NameVi: "Sự kiện camera nghiêm trọng",
		Kind: "count", Unit: "events", Direction: "lower_is_better",
		Formula: "Camera events of severity critical in the window.",
		Source:  "camera events", value: func(c Counts) any { return c.CameraCritical },
	},
	{
		ID: "camera_events_by_type", NameEn: "Camera events by type", NameVi: "Sự kiện camera theo loại",
		Kind: "breakdown", Unit: "events", Direction: "neutral",
		Formula: "Camera events in the window per type (traffic_violation, congestion, …); types with none are left out.",
		Source:  "camera events", value: func(c Counts) any {
			if c.ByType == nil {
				return map[string]uint64{}
			}
			return c.ByType
		},
	},
	{
		ID: "cameras_online", NameEn: "Cameras online", NameVi: "Camera đang hoạt động",
		Kind: "count", Unit: "devices", Direction: "higher_is_better",
		Formula: "Registered cameras that reported within their offline timeout, now, whatever the window.",
		Source:  "device registry and reports", value: func(c Counts) any { return c.CamerasOnline },
	},
	{
		ID: "cameras_offline", NameEn: "Cameras offline", NameVi: "Camera mất kết nối",
		Kind: "count", Unit: "devices", Direction: "lower_is_better",
		Formula: "Registered cameras silent for longer than their offline timeout, now.",
		Source:  "device registry and reports", value: func(c Counts) any { return c.CamerasOffline },
	},
	{
		ID: "sensors_online", NameEn: "Sensors online", NameVi: "Cảm biến đang hoạt động",
		Kind: "count", Unit: "devices", Direction: "higher_is_better",
		Formula: "Registered sensors that reported within their offline timeout, now, whatever the window.",
		Source:  "device registry and reports", value: func(c Counts) any { return c.SensorsOnline },
	},
	{
		ID: "sensors_offline", NameEn: "Sensors offline", NameVi: "Cảm biến mất kết nối",
		Kind: "count", Unit: "devices", Direction: "lower_is_better",
		Formula: "Registered sensors silent for longer than their offline timeout, now.",
		Source:  "device registry and reports", value: func(c Counts) any { return c.SensorsOffline },
	},
	{
		ID: "pm25_max", NameEn: "PM2.5, highest reading", NameVi: "PM2.5 cao nhất",
		Kind: "max", Unit: "ug/m3", Direction: "lower_is_better",
		Formula: "Highest PM2.5 reading of any sensor in the unit in the window; null without readings.",
		Source:  "sensor readings", value: func(c Counts) any { return c.PM25.max() },
	},
	{
		ID: "pm25_avg", NameEn: "PM2.5, mean of readings", NameVi: "PM2.5 trung bình",
		Kind: "mean", Unit: "ug/m3", Direction: "lower_is_better",
		Formula:   "Sum of PM2.5 readings ÷ number of readings in the window, over every sensor in the unit; null without readings.",
		Numerator: "sum of PM2.5 readings", Denominator: "number of PM2.5 readings",
		Source: "sensor readings", value: func(c Counts) any { return c.PM25.mean() },
	},
	{
		ID: "water_level_max", NameEn: "Water level, highest reading", NameVi: "Mực nước cao nhất",
		Kind: "max", Unit: "m", Direction: "lower_is_better",
		Formula: "Highest water-level reading of any gauge in the unit in the window; null without readings.",
		Source:  "sensor readings", value: func(c Counts) any { return c.WaterLevel.max() },
	},
	{
		ID: "alarms_open", NameEn: "Open alarms", NameVi: "Cảnh báo đang mở",
		Kind: "count", Unit: "alarms", Direction: "lower_is_better",
		Formula: "Alarms of devices in the unit not yet resolved (open or acknowledged), now, whatever the window.",
		Source:  "alarms", value: func(c Counts) any { return c.AlarmsOpen },
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
