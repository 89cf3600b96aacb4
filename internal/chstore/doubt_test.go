package chstore

import (
	"slices"
	"testing"
	"time"
)

// TestRestartableTablesArePastTheAgeAndSmall checks which tables' parts in
// doubt SettleDoubt detaches: only a table whose every such part is past
// the age, and only while they hold a small share of its rows, since
// ClickHouse refuses to attach again a table whose parts ZooKeeper lacks
// hold half of them.
func TestRestartableTablesArePastTheAgeAndSmall(t *testing.T) {
	old, young := doubtAge, doubtAge-time.Second
	parts := []doubtPart{
		{table: "dossier_history", name: "202612_1_1_0", age: old, rows: 15, tableRows: 4000},
		{table: "dossier_flow_day", name: "202612_7_7_0", age: old, rows: 3, tableRows: 900},
		{table: "dossier_flow_day", name: "202612_8_8_0", age: young, rows: 3, tableRows: 900},
		{table: "ingest_journal", name: "20261204_3_3_0", age: old, rows: 2, tableRows: 10},
		{table: "dossier_flow_hour", name: "202612_4_4_0", age: old, rows: 90, tableRows: 900},
		{table: "dossier_flow_month", name: "202612_5_5_0", age: old, rows: 91, tableRows: 900},
	}
	got := restartable(parts, doubtAge)
	want := []string{"dossier_history", "dossier_flow_hour"}
	if !slices.Equal(got, want) {
		t.Errorf("restartable: got %v, want %v (the young part keeps dossier_flow_day, 20%% of its rows ingest_journal, 10.1%% dossier_flow_month)", got, want)
	}
	if got := restartable(parts, 0); !slices.Contains(got, "dossier_flow_day") {
		t.Errorf("with no age to wait, dossier_flow_day should be restartable: got %v", got)
	}
	if got := restartable(nil, doubtAge); len(got) != 0 {
		t.Errorf("no parts in doubt: got %v", got)
	}
}
