package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/rollup"
)

// TestMoveAServerIntoACluster moves a deployment's records from one server
// into a cluster of two shards, as the README's Scaling out tells: iocd
// export of each kind from the server, iocd import of each file into the
// cluster. The cluster then holds every record once, placed where the
// server had placed it, and its rollups (summed over the shards) are the
// server's, row for row.
func TestMoveAServerIntoACluster(t *testing.T) {
	ctx := context.Background()
	c := usesCluster(t)
	dir := t.TempDir()

	// The server: dossiers (good and bad, a resolution derived from its
	// receipt, a record sent twice) in communes of two provinces, camera
	// events and sensor readings placed by their positions in both.
	server := importEnv(t)
	_, files := dossierFiles(t, dir, [2]string{clusterAreas[0], clusterAreas[1]})
	write := func(name string, lines ...string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	positions := [][2]string{{"10.7769", "106.7009"}, {"21.0285", "105.8542"}} // Hồ Chí Minh City, Hà Nội
	var cams, readings []string
	for i := range 10 {
		p := positions[i%2]
		cams = append(cams, fmt.Sprintf(`{"event_id":"ce-%d","camera_id":"CAM-%d","type":"traffic_violation","severity":"warning","lat":%s,"lon":%s,"occurred_at":"2025-10-0%dT08:00:00+07:00","attrs":{"plate":"51F-%d","lane":%d}}`,
			i, i%4, p[0], p[1], 1+i%5, i, i%3))
		readings = append(readings, fmt.Sprintf(`{"event_id":"sr-%d","sensor_id":"AQ-%d","kind":"pm25","value":%d.5,"unit":"ug/m3","lat":%s,"lon":%s,"observed_at":"2025-10-0%dT%02d:00:00+07:00"}`,
			i, i%4, 20+i, p[0], p[1], 1+i%5, i))
	}
	write("cameras.ndjson", cams...)
	write("readings.ndjson", readings...)
	kinds := map[string][]string{"dossiers": files, "camera-events": {"cameras.ndjson"}, "sensor-readings": {"readings.ndjson"}}
	for _, kind := range []string{"dossiers", "camera-events", "sensor-readings"} {
		args := append([]string{kind, "--state", kind + ".state"}, kinds[kind]...)
		if exit, stdout, stderr := runImport(t, dir, server, args...); exit != 0 {
			t.Fatalf("iocd import %s into the server exited %d:\n%s\n%s", kind, exit, stdout, stderr)
		}
	}

	// The move.
	cluster := importEnv(t)
	cluster["IOC_CLICKHOUSE_ADDR"], cluster["IOC_CLICKHOUSE_CLUSTER"] = strings.Join(c.Addrs(), ","), c.Name
	cluster["IOC_STARTUP_TIMEOUT"] = "3m" // the schema, ON CLUSTER
	for _, kind := range []string{"dossiers", "camera-events", "sensor-readings"} {
		file := filepath.Join(dir, kind+".export.ndjson.gz")
		var stderr bytes.Buffer
		err := exportRecords(ctx, []string{kind, "--clickhouse-addr", server["IOC_CLICKHOUSE_ADDR"],
			"--clickhouse-database", server["IOC_CLICKHOUSE_DATABASE"], file}, nil, &stderr)
		if err != nil {
			t.Fatalf("iocd export %s: %v\n%s", kind, err, stderr.String())
		}
		if exit, stdout, stderr := runImport(t, dir, cluster, kind, "--state", kind+".move.state", file); exit != 0 {
			t.Fatalf("iocd import %s into the cluster exited %d:\n%s\n%s", kind, exit, stdout, stderr)
		}
	}

	from := openFaultDB(t, server["IOC_CLICKHOUSE_ADDR"], server["IOC_CLICKHOUSE_DATABASE"])
	to := openFaultStore(t, chstore.Config{Addr: cluster["IOC_CLICKHOUSE_ADDR"], Database: cluster["IOC_CLICKHOUSE_DATABASE"], Cluster: c.Name})
	for _, q := range []struct{ what, table, columns string }{
		{"dossier events", "dossier_history", "event_id, dossier_id, hierarchy, area_code, recorded_hierarchy, recorded_area_code, toString(status), occurred_at, due_at, supersedes"},
		{"camera events", "camera_events", "event_id, camera_id, type, toString(severity), hierarchy, area_code, lat, lon, occurred_at, attrs"},
		{"sensor readings", "sensor_readings", "event_id, sensor_id, kind, value, unit, hierarchy, area_code, lat, lon, observed_at"},
		{"daily dossier figures", "dossier_flow_day", sums("hierarchy, area_code, d", "received, received_online, digitized, reused, fee_bearing, paid_online, resolved, on_time, timed, resolution_seconds, e_result, open, late_open, approximate")},
		{"monthly dossier figures", "dossier_flow_month", sums("hierarchy, area_code, m", "received, resolved, on_time, timed, resolution_seconds, open, late_open")},
		{"hourly camera figures", "camera_kpi_hour", sums("hierarchy, area_code, t, type, toString(severity)", "events")},
	} {
		was, is := tableLines(t, from, q.table, q.columns), tableLines(t, to, q.table, q.columns)
		if len(was) == 0 {
			t.Errorf("the server holds no %s: the test moves nothing", q.what)
		}
		if !slices.Equal(was, is) {
			t.Errorf("%s: the server has %d rows, the cluster %d; first differences:\n%s", q.what, len(was), len(is), firstDifferences(was, is))
		}
	}
	var out bytes.Buffer
	if err := verify([]string{"--clickhouse-addr", cluster["IOC_CLICKHOUSE_ADDR"], "--clickhouse-database", cluster["IOC_CLICKHOUSE_DATABASE"],
		"--clickhouse-cluster", c.Name, "--confirm", "0"}, &out); err != nil {
		t.Errorf("iocd verify on the cluster: %v\n%s", err, out.String())
	}
}

// sums is the columns of a summed rollup's rows: its key, then the sum of
// each measure, as grouped by tableLines; rows whose sums are all 0 (which
// merges may or may not have dropped yet) are left out, as are the batch
// markers, whose ids differ from one store to another.
func sums(key, measures string) string {
	var cols, nonzero []string
	for _, m := range strings.Split(measures, ", ") {
		cols = append(cols, "sum("+m+")")
		nonzero = append(nonzero, "sum("+m+") != 0")
	}
	return key + ", " + strings.Join(cols, ", ") + " WHERE hierarchy != '" + rollup.MarkerHierarchy + "' GROUP BY " + key +
		" HAVING " + strings.Join(nonzero, " OR ")
}

// tableLines reads the distinct rows of columns (which may end in WHERE
// … GROUP BY …) of table, each as one line of text, sorted.
func tableLines(t *testing.T, db faultDB, table, columns string) []string {
	t.Helper()
	list, rest, _ := strings.Cut(columns, " WHERE ")
	if rest != "" {
		rest = " WHERE " + rest
	} else {
		rest = " GROUP BY " + list // distinct: copies not merged yet count once
	}
	var parts []string
	for _, c := range splitColumns(list) {
		parts = append(parts, "ifNull(toString("+c+"), 'NULL')")
	}
	var lines []string
	rows, err := db.store.Conn().Query(context.Background(), "SELECT arrayStringConcat(["+strings.Join(parts, ", ")+"], '\\t') FROM "+
		db.store.Database()+"."+table+rest)
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	slices.Sort(lines)
	return lines
}

// splitColumns splits a list of columns at its top-level commas.
func splitColumns(list string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range list {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(list[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(list[start:]))
}

// firstDifferences lists the first lines one side has and the other not.
func firstDifferences(was, is []string) string {
	var b strings.Builder
	n := 0
	for _, l := range was {
		if !slices.Contains(is, l) && n < 5 {
			fmt.Fprintf(&b, "  only on the server:  %s\n", l)
			n++
		}
	}
	for _, l := range is {
		if !slices.Contains(was, l) && n < 10 {
			fmt.Fprintf(&b, "  only on the cluster: %s\n", l)
			n++
		}
	}
	return b.String()
}

// TestExportRefusals: each refusal says what to do, before connecting.
func TestExportRefusals(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "say what to export: iocd export dossiers|camera-events|sensor-readings"},
		{[]string{"feedback"}, `iocd export takes dossiers, camera-events, sensor-readings, not "feedback"`},
		{[]string{"dossiers", "a.ndjson", "b.ndjson"}, "iocd export writes one file, and got 2 (a.ndjson, b.ndjson): name one, or none for stdout"},
	} {
		err := exportRecords(context.Background(), append([]string{"--clickhouse-addr", "127.0.0.1:1"}, c.args...), nil, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("iocd export %v: got %v, want %q", c.args, err, c.want)
		}
	}
}
