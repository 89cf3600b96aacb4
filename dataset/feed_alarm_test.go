package dataset

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/alarm"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus/bustest"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

// noDevices: a feed alarm is about a dataset, not a device.
type noDevices struct{}

func (noDevices) Device(string) (device.Device, bool)                    { return device.Device{}, false }
func (noDevices) List([]string, string) []device.Device                  { return nil }
func (noDevices) LastSeen(context.Context) (map[string]time.Time, error) { return nil, nil }

const permitsJSON = `{"id": "permits", "name_vi": "Giấy phép xây dựng", "name_en": "Building permits", "grain": "month",
  "level": "commune", "area": "79", "due_days": 15,
  "measures": [{"id": "issued", "name_vi": "Đã cấp", "name_en": "Issued", "unit": "permits", "rollup": "sum"}]}`

// TestAStoppedFeedRaisesALivenessAlarm: a monthly feed whose last values
// are years old is late, and the dataset_feed rule opens an alarm on the
// province's alarms; values up to the period due clear it. The engine
// runs on the real clock, so the values that clear it cover the periods
// around the one due now: the test holds at any hour of any day.
func TestAStoppedFeedRaisesALivenessAlarm(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ds, err := New(Config{}, st, storedDefs{{Kind: Kind, ID: "permits", Version: 1, Body: []byte(permitsJSON)}}, levels{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.Load(ctx); err != nil {
		t.Fatal(err)
	}
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	commune := h.Select("commune", "79")[0].Code
	d, _ := ds.Get("permits")
	month := func(t time.Time) Row {
		return Row{Unit: commune, Period: Month.Floor(t), Values: []float64{3}, Present: []bool{true}}
	}
	if _, err := ds.Put(ctx, d, []Row{month(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))}, Upload{ID: "old"}); err != nil {
		t.Fatal(err)
	}
	pub := &bustest.Capture[alarm.TopicMessage]{}
	rule := alarm.Rule{ID: "feed", Name: "feed", Kind: alarm.DatasetFeed, Severity: "warning", MinCompleteness: ptr(0.5), Source: "file"}
	e, err := alarm.New(alarm.Config{Feeds: AlarmFeeds{Datasets: ds, Hierarchy: h}}, st, h, noDevices{}, []alarm.Rule{rule},
		lease.NewLocal(), pub, nil, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	changes := func() []alarm.Change {
		t.Helper()
		if err := e.Evaluate(ctx); err != nil {
			t.Fatal(err)
		}
		var out []alarm.Change
		for _, m := range pub.Take()["alarms/79"] {
			if m.Change != nil {
				out = append(out, *m.Change)
			}
		}
		return out
	}
	got := changes()
	if len(got) != 1 || got[0].Action != "opened" || got[0].Alarm.DeviceID != alarm.FeedSubject("permits") || got[0].Alarm.AreaCode != "79" ||
		!strings.Contains(got[0].Alarm.Message, "latest 2020-01") {
		t.Fatalf("a feed stopped since 2020: got %+v, want one alarm opened on 79 naming the latest period", got)
	}
	// Every commune of 79 reports the months around today's due one.
	var rows []Row
	now := time.Now()
	for _, u := range h.Select("commune", "79") {
		for m := -3; m <= 3; m++ {
			r := month(now.AddDate(0, m, 0))
			r.Unit = u.Code
			rows = append(rows, r)
		}
	}
	if _, err := ds.Put(ctx, d, rows, Upload{ID: "caught-up"}); err != nil {
		t.Fatal(err)
	}
	got = changes()
	if len(got) != 1 || got[0].Action != "resolved" || got[0].Alarm.Resolution != "cleared" {
		t.Fatalf("the feed caught up: got %+v, want its alarm resolved as cleared", got)
	}
}

func ptr(v float64) *float64 { return &v }
