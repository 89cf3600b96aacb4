package simulator

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/openioc/ioc/device"
	dsr "github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
)

// A Wednesday afternoon in the dry season.
var historyEnd = time.Date(2026, 3, 18, 14, 30, 15, 0, ict)

func testHistoryConfig(areas, days int) HistoryConfig {
	var as []string
	for i := range areas {
		as = append(as, strconv.Itoa(26000+3*i))
	}
	return HistoryConfig{End: historyEnd, Days: days, Areas: as, ProvinceArea: "79", Location: ict, Seed: 7}
}

func newTestHistory(t *testing.T, cfg HistoryConfig) *History {
	t.Helper()
	h, err := NewHistory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// historyDays generates every day of h.
func historyDays(h *History) ([]historyDay, *Carry) {
	g := h.generator()
	var out []historyDay
	for {
		var d historyDay
		if !g.day(&d) {
			return out, g.carry
		}
		out = append(out, d)
	}
}

// records gives every record of days as JSON, by kind and id (a reading's
// id is its sensor, kind and time, as the server makes it).
func records(t *testing.T, days []historyDay) map[string]string {
	t.Helper()
	out := map[string]string{}
	put := func(key string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := out[key]; dup {
			t.Errorf("%s generated twice", key)
		}
		out[key] = string(b)
	}
	for _, d := range days {
		for _, e := range d.dossiers {
			put("dossier "+e.EventID, e)
		}
		for _, f := range d.feedback {
			put("feedback "+f.FeedbackID, f)
		}
		for _, e := range d.cameras {
			put("camera "+e.EventID, e)
		}
		for _, r := range d.readings {
			put("reading "+r.SensorID+"/"+r.Kind+"/"+r.ObservedAt, r)
		}
	}
	return out
}

func fingerprint(t *testing.T, recs map[string]string) string {
	t.Helper()
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var h hash.Hash = sha256.New()
	for _, k := range keys {
		fmt.Fprintln(h, k, recs[k])
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// The history depends on its seed and end alone: generated twice it is the
// same, and another seed gives another. A day's records do not depend on
// the range around it: a history ending three days later, or starting a
// week later, holds the same records for the days they share, so that two
// writes of a province's history never disagree about a record.
func TestHistoryDependsOnSeedAndEndOnly(t *testing.T) {
	cfg := testHistoryConfig(30, 12)
	cfg.Rate = 2
	dc := testDevicesConfig(0)
	dc.Cameras, dc.Sensors, dc.Gauges = 10, 4, 2
	cfg.Devices = &dc
	days, _ := historyDays(newTestHistory(t, cfg))
	a := records(t, days)
	again, _ := historyDays(newTestHistory(t, cfg))
	if fingerprint(t, a) != fingerprint(t, records(t, again)) {
		t.Fatal("the same configuration generated two different histories")
	}
	other := cfg
	other.Seed = 8
	od, _ := historyDays(newTestHistory(t, other))
	if fingerprint(t, a) == fingerprint(t, records(t, od)) {
		t.Fatal("seeds 7 and 8 generated the same history")
	}

	later := cfg
	later.End, later.Days = cfg.End.AddDate(0, 0, 3), cfg.Days+3
	ld, _ := historyDays(newTestHistory(t, later))
	b := records(t, ld)
	dense := cfg.End.Add(-historyDenseSpan)
	compared := 0
	for k, v := range a {
		kind := strings.Fields(k)[0]
		if kind == "feedback" { // its state at the end: compared below
			continue
		}
		if kind == "reading" || strings.Contains(k, "-hb-") {
			var r struct {
				ObservedAt string `json:"observed_at"`
				OccurredAt string `json:"occurred_at"`
			}
			_ = json.Unmarshal([]byte(v), &r)
			if at := parseTime(t, r.ObservedAt+r.OccurredAt); !at.Before(dense) {
				continue // a minute's reports before the end, hourly in the longer history
			}
		}
		compared++
		if b[k] != v {
			t.Fatalf("%s differs in a history ending three days later:\n%s\n%s", k, v, b[k])
		}
	}
	if compared < 5000 {
		t.Fatalf("compared %d records, want the whole history", compared)
	}
	for _, d := range days {
		for _, f := range d.feedback {
			var g ingest.FeedbackRecord
			if err := json.Unmarshal([]byte(b["feedback "+f.FeedbackID]), &g); err != nil {
				t.Fatalf("feedback %s is missing from the longer history", f.FeedbackID)
			}
			if len(g.StatusChanges) < len(f.StatusChanges) || !slices.Equal(g.StatusChanges[:len(f.StatusChanges)], f.StatusChanges) {
				t.Fatalf("feedback %s: %v, then %v three days later, want the same changes and more", f.FeedbackID, f.StatusChanges, g.StatusChanges)
			}
		}
	}

	shorter := cfg
	shorter.Days = cfg.Days - 7
	sd, _ := historyDays(newTestHistory(t, shorter))
	for k, v := range records(t, sd) {
		if strings.HasPrefix(k, "dossier ") && a[k] != v {
			t.Fatalf("%s differs in a history starting a week later:\n%s\n%s", k, v, a[k])
		}
	}
}

var (
	histDossierRE = regexp.MustCompile(`^000\.00\.79\.H[A-Z2-7]{5}-\d{6}-\d{4,}$`)
	histEventRE   = regexp.MustCompile(`^hist-[A-Z2-7]{5}-\d{6}-\d+-\d+$`)
)

// What a user of the wall would notice in five weeks of a province's
// past: dossiers every day, fewer at weekends, most on Mondays, few in the
// Tết holidays; the shares of the field; desks working in office hours;
// resolutions in time and late; every record valid as the server checks
// it. (At a fifth of the default rate, to keep the test quick.)
func TestHistoryLooksLikeAProvince(t *testing.T) {
	cfg := testHistoryConfig(168, 35)
	cfg.Rate = 4
	h := newTestHistory(t, cfg)
	days, carry := historyDays(h)
	if len(days) != 36 || !days[0].date.Equal(time.Date(2026, 2, 11, 0, 0, 0, 0, ict)) {
		t.Fatalf("got %d days from %s, want 36 from 2026-02-11 (35 whole days, then the day of the end)", len(days), days[0].date)
	}
	areas := fakeAreasOf(cfg)
	rules := ingest.Rules{Hierarchy: "vn-2025", Areas: areas, MaxFuture: 5 * time.Minute}

	received := map[time.Weekday][]int{}
	events := map[time.Weekday][]int{}
	byDossier := map[string][]ingest.DossierEvent{}
	receipts := map[string]time.Time{}
	channels := map[string]int{}
	statuses := map[string]int{}
	total := 0
	for i, d := range days {
		n := 0
		for _, e := range d.dossiers {
			if _, err := rules.Validate(e, historyEnd); err != nil {
				t.Fatalf("invalid event %+v: %v", e, err)
			}
			at := parseTime(t, e.OccurredAt)
			if !at.Before(historyEnd) || at.Before(d.date) || !at.Before(d.date.AddDate(0, 0, 1)) {
				t.Fatalf("event %s at %s on day %s, want it on its day and before the end %s", e.EventID, e.OccurredAt, d.date, historyEnd)
			}
			if !histEventRE.MatchString(e.EventID) || !strings.HasPrefix(e.EventID, h.EventPrefix()) || !histDossierRE.MatchString(e.DossierID) {
				t.Fatalf("ids %s of %s, want hist-… events of 000.00.79.H…-yyMMdd-NNNN dossiers", e.EventID, e.DossierID)
			}
			byDossier[e.DossierID] = append(byDossier[e.DossierID], e)
			statuses[e.Status]++
			if e.Status == "received" {
				n++
				channels[e.Channel]++
				receipts[e.DossierID] = at
				if e.Channel != "online" && !deskOpen(at, true) {
					t.Errorf("dossier %s received %s at a desk at %s, when desks are closed", e.DossierID, e.Channel, e.OccurredAt)
				}
			} else if e.Status != "withdrawn" && !deskOpen(at, false) {
				t.Errorf("event %s (%s) at %s, outside the desks' working hours", e.EventID, e.Status, e.OccurredAt)
			}
		}
		if n == 0 && i < len(days)-1 {
			t.Errorf("no dossier received on %s", d.date.Format("Mon 2006-01-02"))
		}
		if i < len(days)-1 && !holiday(d.date) {
			received[d.date.Weekday()] = append(received[d.date.Weekday()], n)
			events[d.date.Weekday()] = append(events[d.date.Weekday()], len(d.dossiers))
			total += n
		}
	}
	mean := func(m map[time.Weekday][]int, wds ...time.Weekday) float64 {
		s, n := 0, 0
		for _, wd := range wds {
			for _, v := range m[wd] {
				s += v
				n++
			}
		}
		return float64(s) / float64(n)
	}
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	if wk, we := mean(received, weekdays...), mean(received, time.Saturday, time.Sunday); wk < 3*we {
		t.Errorf("%.0f dossiers received on a weekday, %.0f on a weekend day: want weekends quiet", wk, we)
	}
	if mon, rest := mean(received, time.Monday), mean(received, time.Tuesday, time.Wednesday, time.Thursday, time.Friday); mon < 1.1*rest {
		t.Errorf("%.0f dossiers received on a Monday, %.0f on other weekdays: want Monday's peak", mon, rest)
	}
	if mon, rest := mean(events, time.Monday), mean(events, time.Tuesday, time.Wednesday, time.Thursday, time.Friday); mon < 1.2*rest {
		t.Errorf("%.0f dossier events on a Monday, %.0f on other weekdays: want the weekend's work done on Monday", mon, rest)
	}
	// Tết 2026 (14–22 February) is as quiet as a Sunday.
	for _, d := range days {
		if s := d.date.Format(time.DateOnly); s == "2026-02-18" {
			n := 0
			for _, e := range d.dossiers {
				if e.Status == "received" {
					n++
				}
			}
			if float64(n) > 1.5*mean(received, time.Sunday) {
				t.Errorf("%d dossiers received on %s during Tết, want as few as on a Sunday (%.0f)", n, s, mean(received, time.Sunday))
			}
		}
	}
	// Field volumes: 2,500 dossiers a day on average at the default rate,
	// 500 at a fifth of it (holidays left out, which makes this a little
	// more); 98.5% online.
	perDay := float64(total) / float64(len(received[time.Monday])+len(received[time.Tuesday])+len(received[time.Wednesday])+
		len(received[time.Thursday])+len(received[time.Friday])+len(received[time.Saturday])+len(received[time.Sunday]))
	if perDay < 460 || perDay > 580 {
		t.Errorf("%.0f dossiers received a day, want about 500", perDay)
	}
	checkShareOf(t, "online", channels["online"], channels["online"]+channels["in_person"]+channels["postal"], 0.985, 0.006)
	for _, s := range []string{"processing", "supplement_requested", "resolved", "returned", "rejected", "withdrawn"} {
		if statuses[s] == 0 {
			t.Errorf("no %s event in five weeks; got %v", s, statuses)
		}
	}

	// Lifecycles as the server derives them: a dossier's events are all
	// here or in the carry, and resolutions come in time and late.
	resolved, onTime := 0, 0
	for id, evs := range byDossier {
		if evs[0].Status != "received" || evs[0].ReceivedAt != evs[0].OccurredAt {
			t.Fatalf("dossier %s starts with %+v, want its receipt", id, evs[0])
		}
		for i, e := range evs {
			if want := evs[0].EventID[:strings.LastIndexByte(evs[0].EventID, '-')+1] + strconv.Itoa(i+1); e.EventID != want {
				t.Fatalf("dossier %s: event %d is %s, want %s: events come in order, none missing", id, i, e.EventID, want)
			}
		}
		var des []dsr.Event
		for _, e := range evs {
			at, recv, due := parseTime(t, e.OccurredAt), parseTime(t, e.ReceivedAt), parseTime(t, e.DueAt)
			des = append(des, dsr.Event{EventID: e.EventID, Area: e.AreaCode, Status: e.Status, OccurredAt: at, ReceivedAt: &recv, DueAt: &due})
		}
		for _, c := range dsr.Derive(des) {
			if c.Measures[dsr.Resolved] == 1 {
				resolved++
				onTime += int(c.Measures[dsr.OnTime])
			}
		}
	}
	checkShareOf(t, "resolved in time", onTime, resolved, 0.95, 0.02)
	if resolved-onTime < 50 {
		t.Errorf("%d of %d resolutions late, want some", resolved-onTime, resolved)
	}

	// The carry holds the rest of the lifecycles, in time order, from the end.
	n, _ := carry.Len()
	if n < 1000 {
		t.Errorf("%d events carried past the end, want the dossiers still open to go on", n)
	}
	carried := map[*histDossier]bool{}
	for i, ref := range carry.dossiers {
		if ref.at().Before(historyEnd) || i > 0 && ref.at().Before(carry.dossiers[i-1].at()) {
			t.Fatalf("carried event %d at %s, want them from the end %s on, in time order", i, ref.at(), historyEnd)
		}
		if got := len(byDossier[ref.d.id]); got > ref.i || got < ref.i && !carried[ref.d] {
			t.Fatalf("dossier %s: step %d carried, %d in the history: want each step once, none missing", ref.d.id, ref.i+1, got)
		}
		carried[ref.d] = true
	}

	// Citizen feedback: about 20 items a day at this rate, each valid and known as at
	// the end; complaints name dossiers received before them, where they are.
	fb, complaints := 0, 0
	for _, d := range days {
		for _, f := range d.feedback {
			fb++
			if _, err := rules.ValidateFeedback(f, historyEnd); err != nil {
				t.Fatalf("invalid feedback %+v: %v", f, err)
			}
			for _, c := range f.StatusChanges {
				if !parseTime(t, c.At).Before(historyEnd) {
					t.Fatalf("feedback %s changes at %s, after the end", f.FeedbackID, c.At)
				}
			}
			if f.DossierID == "" {
				continue
			}
			complaints++
			recv, ok := receipts[f.DossierID]
			switch {
			case !ok:
				t.Errorf("complaint %s names %s, which the history did not receive", f.FeedbackID, f.DossierID)
			case !recv.Before(parseTime(t, f.ReceivedAt)):
				t.Errorf("complaint %s at %s names %s, received after it at %s", f.FeedbackID, f.ReceivedAt, f.DossierID, recv)
			case byDossier[f.DossierID][0].AreaCode != f.AreaCode:
				t.Errorf("complaint %s filed in %s about %s of %s", f.FeedbackID, f.AreaCode, f.DossierID, byDossier[f.DossierID][0].AreaCode)
			}
		}
	}
	if perDay := float64(fb) / float64(len(days)); perDay < 15 || perDay > 25 {
		t.Errorf("%.0f feedback items a day, want about 20", perDay)
	}
	checkShareOf(t, "complaints about a dossier", complaints, fb, 0.2, 0.05)
}

// The history's devices are the live simulator's, at the same places; each
// reports every hour, then every minute of the last hour, so that all are
// seen just before the live simulator takes over; haze and floods come and
// go, but none is under way at the end, when alarm rules would see it.
func TestHistoryDevicesAreTheLiveOnes(t *testing.T) {
	cfg := testHistoryConfig(30, 30)
	cfg.End = time.Date(2026, 10, 14, 9, 10, 0, 0, ict) // the rainy season
	dc := testDevicesConfig(0)
	cfg.Devices = &dc
	h := newTestHistory(t, cfg)
	days, _ := historyDays(h)
	live := newTestDevices(t, dc)
	byID := map[string]*simDevice{}
	for _, d := range live.world.devs {
		byID[d.id] = d
	}
	rules := ingest.Rules{Hierarchy: "vn-2025", MaxFuture: time.Minute, Places: anywhere{}}
	last, first := map[string]time.Time{}, map[string]time.Time{}
	perHour := map[string]map[int64]int{}
	seen := func(id string, lat, lon *float64, at time.Time) {
		t.Helper()
		if _, ok := first[id]; !ok {
			first[id] = at
		}
		d := byID[id]
		if d == nil || lat == nil || *lat != d.site.Lat || *lon != d.site.Lon {
			t.Fatalf("report of %s, which the live simulator does not place there (or at all)", id)
		}
		if !at.Before(cfg.End) {
			t.Fatalf("report of %s at %s, at or after the end", id, at)
		}
		if at.After(last[id]) {
			last[id] = at
		}
		if perHour[id] == nil {
			perHour[id] = map[int64]int{}
		}
		perHour[id][at.Truncate(time.Hour).Unix()]++
	}
	var smog, flood, detections int
	for _, d := range days {
		for _, e := range d.cameras {
			if _, err := rules.ValidateCamera(e, cfg.End); err != nil {
				t.Fatalf("invalid camera event %+v: %v", e, err)
			}
			if !strings.HasPrefix(e.EventID, h.EventPrefix()) {
				t.Fatalf("camera event id %s, want the history's prefix %s", e.EventID, h.EventPrefix())
			}
			at := parseTime(t, e.OccurredAt)
			switch {
			case e.Type == device.HeartbeatType:
				seen(e.CameraID, e.Lat, e.Lon, at)
			case strings.Contains(e.EventID, "-burst-") && !at.Before(cfg.End.Add(-historyEpisodeMargin)):
				t.Errorf("burst violation %s at %s, within two hours of the end: an alarm would open on the history", e.EventID, e.OccurredAt)
			default:
				detections++
			}
		}
		for _, r := range d.readings {
			if _, err := rules.ValidateReading(r, cfg.End); err != nil {
				t.Fatalf("invalid reading %+v: %v", r, err)
			}
			at := parseTime(t, r.ObservedAt)
			if r.Kind == "pm25" || r.Kind == "water_level" {
				seen(r.SensorID, r.Lat, r.Lon, at)
			}
			late := !at.Before(cfg.End.Add(-historyEpisodeMargin))
			switch {
			case r.Kind == "pm25" && *r.Value >= 55.5:
				smog++
				if late {
					t.Errorf("PM2.5 %v at %s, within two hours of the end: an alarm would open on the history", *r.Value, r.ObservedAt)
				}
			case r.Kind == "water_level" && *r.Value > 2:
				t.Errorf("water at %v m at %s, above any crest the history plans (1.55–1.9 m)", *r.Value, r.ObservedAt)
			case r.Kind == "water_level" && *r.Value >= *r.AlertLevel:
				flood++
				if late {
					t.Errorf("water at %v m at %s, within two hours of the end: an alarm would open on the history", *r.Value, r.ObservedAt)
				}
			}
		}
	}
	if smog == 0 || flood == 0 {
		t.Errorf("%d hazy readings and %d flooded ones in a month of the rainy season, want both", smog, flood)
	}
	if perDay := float64(detections) / float64(cfg.Days); perDay < 1500 || perDay > 4000 {
		t.Errorf("%.0f camera detections a day for 80 cameras, want about 2,700 (the hot spots' bursts included)", perDay)
	}
	for id, d := range byID {
		if gap := cfg.End.Sub(last[id]); gap <= 0 || gap > reportPeriod {
			t.Errorf("device %s last reported %s before the end, want within a minute", id, gap)
		}
		// Written first, its last report registers the device: the rule
		// for silent devices never sees it silent for months meanwhile.
		if !first[id].Equal(last[id]) {
			t.Errorf("device %s: first written report at %s, want its last (%s)", id, first[id], last[id])
		}
		if d.kind == cameraDev {
			continue
		}
		for hour := h.Start(); hour.Before(cfg.End.Add(-historyDenseSpan - time.Hour)); hour = hour.Add(time.Hour) {
			if perHour[id][hour.Unix()] != 1 {
				t.Fatalf("device %s reported %d times in the hour of %s, want once an hour", id, perHour[id][hour.Unix()], hour)
			}
		}
	}
}

func TestNewHistoryExplainsBadConfig(t *testing.T) {
	ok := testHistoryConfig(3, 10)
	for _, c := range []struct {
		change func(*HistoryConfig)
		want   string
	}{
		{func(c *HistoryConfig) { c.End = time.Time{} }, "End is required"},
		{func(c *HistoryConfig) { c.Days = -1 }, "Days -1 must be between 1 and 1098"},
		{func(c *HistoryConfig) { c.Days = MaxHistoryDays + 1 }, "must be between 1 and 1098"},
		{func(c *HistoryConfig) { c.Rate = math.NaN() }, "Rate NaN must be above 0"},
		{func(c *HistoryConfig) { c.Areas = nil }, "Areas is empty"},
		{func(c *HistoryConfig) { c.Areas = []string{"1", "1"} }, `area "1" is listed twice`},
		{func(c *HistoryConfig) { c.Devices = &DevicesConfig{} }, "Sites is empty"},
	} {
		cfg := ok
		c.change(&cfg)
		if _, err := NewHistory(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error saying %q", err, c.want)
		}
	}
	h := newTestHistory(t, HistoryConfig{End: historyEnd, Areas: []string{"26734"}})
	if h.Days() != 91 || h.perDay != 2500 || h.fbPerDay != 100 {
		t.Errorf("zero config: %d days, %v dossiers and %v feedback items a day, want 91 (90 and the last), 2500, 100", h.Days(), h.perDay, h.fbPerDay)
	}
	h = newTestHistory(t, HistoryConfig{End: historyEnd, Areas: []string{"26734"}, Rate: 2000})
	if h.perDay != maxPerDay {
		t.Errorf("at rate 2000, %v dossiers a day, want the bound %v", h.perDay, maxPerDay)
	}
}

func fakeAreasOf(cfg HistoryConfig) historyAreas {
	out := historyAreas{cfg.ProvinceArea: true}
	for _, a := range cfg.Areas {
		out[a] = true
	}
	return out
}

type historyAreas map[string]bool

func (a historyAreas) HasUnit(h, code string) bool { return h == "vn-2025" && a[code] }
func (a historyAreas) HasHierarchy(h string) bool  { return h == "vn-2025" }
func (a historyAreas) Attribute(from, to, code string, at *orb.Point) (geo.Attribution, error) {
	return geo.Attribution{}, geo.ErrNoCrosswalk
}

func checkShareOf(t *testing.T, name string, num, den int, want, tol float64) {
	t.Helper()
	if den == 0 {
		t.Errorf("%s: nothing to count", name)
		return
	}
	if got := float64(num) / float64(den); math.Abs(got-want) > tol {
		t.Errorf("%s: %d of %d (%.4f), want %.3f ± %.3f", name, num, den, got, want, tol)
	}
}
