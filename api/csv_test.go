package api

import (
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openioc/ioc/alarm"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/api/internal/apitest"
	"github.com/openioc/ioc/device"
	"github.com/openioc/ioc/geo"
)

func TestNeutralise(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "",
		"Sài Gòn":                        "Sài Gòn",
		"=HYPERLINK(\"http://x\",\"y\")": "'=HYPERLINK(\"http://x\",\"y\")",
		"+1+1":                           "'+1+1",
		"-2+3":                           "'-2+3",
		"@SUM(A1)":                       "'@SUM(A1)",
		"\t=1":                           "'\t=1",
		"\r=1":                           "'\r=1",
		"-":                              "'-",
		"-Inf":                           "'-Inf",
		"-0x1p3":                         "'-0x1p3",
		"-1e":                            "'-1e",
		"-0.25":                          "-0.25",
		"+3":                             "+3",
		"-106.7009":                      "-106.7009",
		"-1.5e-07":                       "-1.5e-07",
		"-.5":                            "-.5",
		"a=b":                            "a=b",
	} {
		if got := neutralise(in); got != want {
			t.Errorf("neutralise(%q) = %q, want %q", in, got, want)
		}
	}
}

// csvAlarms answers one alarm whose text could be a formula.
type csvAlarms struct{ noAlarms }

func (csvAlarms) List(context.Context, alarm.Query) ([]alarm.Alarm, error) {
	return []alarm.Alarm{{ID: "ALM-1", RuleName: "@SUM(1+1)", DeviceID: "cam-1", DeviceName: "=cmd|' /C calc'!A0",
		AreaCode: apitest.SaiGon, Severity: "warning", State: "acknowledged", Message: "-1+1 violations", Value: -2.5,
		AcknowledgedBy: "+op", OpenedAt: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}}, nil
}

// TestCSVNeutralisesFormulas: names and messages that start like a
// formula reach the spreadsheet as text; negative numbers stay numbers.
func TestCSVNeutralisesFormulas(t *testing.T) {
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := reg.Hierarchy("vn-2025")
	devs := &apitest.Devices{H: h, List: []device.View{{Device: device.Device{ID: "cam-1", Kind: device.Camera,
		Name: "=HYPERLINK(\"http://evil\",\"click\")", Lat: -0.5, Lon: 106.7, Hierarchy: h.Name(), AreaCode: apitest.SaiGon, Source: "\tapi"}, Status: "online"}}}
	s, err := New(Config{}, Deps{
		Geo: reg, KPIs: &apitest.Figures{Reg: reg, H: h}, Auth: auth.NewVerifier(apitest.Admin, apitest.Secret),
		Devices: devs, Alarms: csvAlarms{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := func(target string) [][]string {
		t.Helper()
		r := apitest.Get(t, s, target, apitest.Admin)
		if r.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", target, r.Code, r.Body)
		}
		recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(r.Body), bom))).ReadAll()
		if err != nil || len(recs) != 2 {
			t.Fatalf("%s: %v, %d records", target, err, len(recs))
		}
		return recs
	}
	cell := func(recs [][]string, column string) string {
		for i, h := range recs[0] {
			if h == column {
				return recs[1][i]
			}
		}
		t.Fatalf("no column %q in %v", column, recs[0])
		return ""
	}
	d := rows("/api/v1/devices?format=csv")
	for column, want := range map[string]string{"name": `'=HYPERLINK("http://evil","click")`, "lat [degrees]": "-0.5", "source": "'\tapi"} {
		if got := cell(d, column); got != want {
			t.Errorf("devices CSV %s: got %q, want %q", column, got, want)
		}
	}
	a := rows("/api/v1/alarms?format=csv")
	for column, want := range map[string]string{"rule_name": "'@SUM(1+1)", "device_name": "'=cmd|' /C calc'!A0",
		"message": "'-1+1 violations", "acknowledged_by": "'+op", "value": "-2.5"} {
		if got := cell(a, column); got != want {
			t.Errorf("alarms CSV %s: got %q, want %q", column, got, want)
		}
	}
}
