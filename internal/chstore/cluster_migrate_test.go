package chstore

import "testing"

// A new cluster skips what the migrations end up dropping: the tables and
// views that the exact write path replaced, and only those. A view dropped
// and made again (0002) and dropped later (0004) counts by its last word.
func TestDroppedInTheEndIsWhatTheLastMigrationsLeaveOut(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	dropped := droppedInTheEnd(ms)
	for _, gone := range []string{"dossier_events", "dossier_state", "dossier_timeline", "dossier_kpi_minute", "dossier_kpi_hour",
		"sensor_kpi_minute", "sensor_kpi_hour", "dossier_flow_day_mv", "dossier_kpi_minute_mv", "camera_kpi_hour_mv"} {
		if !dropped[gone] {
			t.Errorf("%s: dropped by a migration, but a new cluster would create it", gone)
		}
	}
	for _, kept := range []string{"dossier_history", "dossier_flow_day", "camera_events", "sensor_readings", "sensor_max_minute_mv",
		"sensor_latest_mv", "devices", "kiosk_links", "ingest_journal"} {
		if dropped[kept] {
			t.Errorf("%s: in the final schema, but a new cluster would skip it", kept)
		}
	}
}

// TestATimedOutStatementNamesItsTask reads the task out of 18.16's error
// for an ON CLUSTER statement that outlasted its timeout (as CI saw it on
// a loaded machine), which onCluster then waits for.
func TestATimedOutStatementNamesItsTask(t *testing.T) {
	msg := "Watching task /clickhouse/task_queue/ddl/query-0000000085 is executing longer than distributed_ddl_task_timeout (=30) seconds. " +
		"There are 1 unfinished hosts (1 of them are currently active), they are going to execute the query in background"
	m := ddlTaskRE.FindStringSubmatch(msg)
	if m == nil || m[1] != "/clickhouse/task_queue/ddl/query-0000000085" {
		t.Fatalf("got %q, want the task /clickhouse/task_queue/ddl/query-0000000085", m)
	}
}
