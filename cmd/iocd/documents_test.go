package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openioc/ioc/api/auth"
)

type documentList struct {
	Count      int `json:"count"`
	Dashboards []struct {
		ID      string `json:"id"`
		Version int    `json:"version"`
		SavedBy string `json:"saved_by"`
	} `json:"dashboards"`
}

// TestDefaultWallAtStart: a node on an empty database serves the default
// wall for province 79 as soon as it answers, as make run shows it.
func TestDefaultWallAtStart(t *testing.T) {
	n := startNode(t, testConfig(t))
	var l documentList
	if code := n.get("/api/v1/dashboards", issueToken(t, auth.Viewer, "79"), &l); code != 200 || l.Count != 4 {
		t.Fatalf("dashboards: %d, %+v; want the 4 defaults", code, l)
	}
	var wall struct {
		Screens  []struct{ Screen string }  `json:"screens"`
		Playlist string                     `json:"playlist"`
		Takeover struct{ Screens []string } `json:"takeover"`
	}
	if code := n.get("/api/v1/walls/wall-79", adminToken, &wall); code != 200 || len(wall.Screens) != 6 || wall.Playlist != "pl-79" ||
		strings.Join(wall.Takeover.Screens, ",") != "s1" {
		t.Errorf("wall-79: %d %+v", code, wall)
	}
}

// TestDashboardsDirAtStart: IOC_DASHBOARDS_DIR's documents are stored at
// start (and then no defaults); a broken one stops the start naming the
// file and the field.
func TestDashboardsDirAtStart(t *testing.T) {
	dir := t.TempDir()
	board := `{"id":"board","title":{"vi":"Bảng","en":"Board"},"area":"79","grid":{"columns":4,"rows":2},
	  "widgets":[{"id":"k","type":"kpi","x":0,"y":0,"w":2,"h":2,"options":{"indicator":"on_time_rate"}}]}`
	if err := os.WriteFile(filepath.Join(dir, "board.json"), []byte(board), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.DashboardsDir = dir
	n := startNode(t, cfg)
	var l documentList
	if code := n.get("/api/v1/dashboards", adminToken, &l); code != 200 || l.Count != 1 || l.Dashboards[0].ID != "board" || l.Dashboards[0].SavedBy != "provisioning" {
		t.Errorf("dashboards: %d, %+v; want board alone, saved by provisioning", code, l)
	}
	n.stop()

	broken := strings.Replace(board, `"on_time_rate"`, `"on_time"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "board.json"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), `board.json: widgets[0].options.indicator: "on_time" is not in the indicator catalog`) {
		t.Errorf("start with a broken folder: %v", err)
	}
}
