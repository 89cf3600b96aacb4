package rollup

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestAMeasureMoreIsReadToo builds the reader's queries from a measure
// table with one measure more: the live windows and the reads of any range
// select and sum its column, after the others, with no other change.
func TestAMeasureMoreIsReadToo(t *testing.T) {
	table := append(dossier.Table[:len(dossier.Table):len(dossier.Table)], dossier.Measure{Column: "received_postal",
		AtReceipt: func(f dossier.Facts) int64 {
			if f.Channel == "postal" {
				return 1
			}
			return 0
		}})
	f := FlowFamily(table)
	n := len(dossier.Table)
	if want := append(slices.Clone(dossier.Columns), "received_postal"); !slices.Equal(f.Ints, want) {
		t.Fatalf("the family's measures are %v, want %v", f.Ints, want)
	}
	if !f.Matches(Table{Name: DossierFlowHour, Marked: true, Ints: f.Ints}) || f.Matches(Table{Name: DossierFlowHour, Marked: true, Ints: dossier.Columns}) {
		t.Error("a writer's table must match the family of its measures, and only that")
	}
	if f.LateOpen != int(dossier.LateOpen) {
		t.Errorf("late_open is measure %d, want %d", f.LateOpen, dossier.LateOpen)
	}
	m := fmt.Sprint(n)
	start := time.Date(2026, 11, 22, 0, 30, 0, 0, time.UTC)
	windows, _ := f.windowsSQL("db", Scope{Hierarchy: "vn-2025"}, []Span{SpanFrom(start)}, true)
	for _, want := range []string{"approximate AS m" + fmt.Sprint(n-1) + ", received_postal AS m" + m + ", ", "sum(m" + m + ") FROM"} {
		if !strings.Contains(windows, want) {
			t.Errorf("the live windows' query lacks %q:\n%s", want, windows)
		}
	}
	r := &Reader{db: "db", loc: time.UTC}
	q := Query{Scope: Scope{Hierarchy: "vn-2025"}, From: start.Add(-30 * time.Minute), To: start.AddDate(0, 2, 0)}
	history, _ := r.familySQL(f, SourceDossierFlow, q, r.flowParts(q))
	for _, want := range []string{"sum(received_postal) AS s" + m + " FROM db.dossier_flow_hour", "sum(received_postal) AS s" + m + " FROM db.dossier_flow_day",
		"sum(received_postal) AS s" + m + " FROM db.dossier_flow_month", "sum(s" + m + ") FROM ("} {
		if !strings.Contains(history, want) {
			t.Errorf("the history's query lacks %q:\n%s", want, history)
		}
	}
	// Without the measure's expressions, the queries are those of
	// dossier.Table's family.
	was, _ := DossierFlowFamily.windowsSQL("db", Scope{Hierarchy: "vn-2025"}, []Span{SpanFrom(start)}, true)
	if got := strings.NewReplacer(", received_postal AS m"+m, "", ", sum(m"+m+")", "").Replace(windows); got != was {
		t.Errorf("the live windows' query changed beyond the measure added:\n%s\nwas\n%s", got, was)
	}
	was, _ = r.familySQL(DossierFlowFamily, SourceDossierFlow, q, r.flowParts(q))
	if got := strings.NewReplacer(", sum(received_postal) AS s"+m, "", ", sum(s"+m+")", "").Replace(history); got != was {
		t.Errorf("the history's query changed beyond the measure added:\n%s\nwas\n%s", got, was)
	}
	var s Sums
	ints := make([]int64, len(table))
	for i := range ints {
		ints[i] = int64(i + 1)
	}
	DossierFlowFamily.Add(&s, nil, ints[:n], nil)
	for i := range n {
		if s.Flow[i] != int64(i+1) {
			t.Fatalf("a row adds %v, want 1, 2, 3, …", s.Flow)
		}
	}
}

// recording records the tables every query names.
type recording struct {
	driver.Conn
	db     string
	mu     sync.Mutex
	tables map[string]bool
}

func (c *recording) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	c.mu.Lock()
	for _, m := range regexp.MustCompile(`\b`+regexp.QuoteMeta(c.db)+`\.(\w+)`).FindAllStringSubmatch(query, -1) {
		c.tables[m[1]] = true
	}
	c.mu.Unlock()
	return c.Conn.Query(ctx, query, args...)
}

// TestReadsNameWhatSumReads: what an answer over the rollups depends on
// (Reads, and BalanceReads) is exactly the tables its reads query, for
// every source, step and breakdown, so that a cache keyed on it cannot miss
// a change. Every shape of query runs on the server.
func TestReadsNameWhatSumReads(t *testing.T) {
	s := testenv.Store(t)
	hcm := mustLoc("Asia/Ho_Chi_Minh")
	conn := &recording{Conn: s.Conn(), db: s.Database()}
	r := &Reader{conn: conn, db: s.Database(), loc: hcm}
	ctx := context.Background()
	ragged := Query{Scope: Scope{Hierarchy: "vn-2025", Codes: []string{"79", "26734"}},
		From: time.Date(2026, 9, 30, 17, 0, 0, 0, hcm), To: time.Date(2026, 12, 2, 9, 0, 0, 0, hcm)}
	months := Query{Scope: Scope{Hierarchy: "vn-2025"}, From: time.Date(2026, 1, 1, 0, 0, 0, 0, hcm), To: time.Date(2026, 7, 1, 0, 0, 0, 0, hcm)}
	sources := []Source{SourceDossierFlow, SourceFeedback, SourceCameras, SourceReadings}
	for _, base := range []Query{ragged, months} {
		for _, step := range []Step{None, Hour, Day, Week, Month, Quarter, Year} {
			for _, by := range []string{"", "sector", "type"} {
				for n := 1; n <= len(sources); n++ {
					q := base
					q.Step, q.By, q.ByArea = step, by, by != "" || step == None
					srcs := sources[:n]
					if n == 2 {
						srcs = []Source{SourceCameras} // alone
					}
					conn.tables = map[string]bool{}
					if _, err := r.Sum(ctx, q, srcs...); err != nil {
						t.Fatalf("%v by %q step %q: %v", srcs, by, step, err)
					}
					var want []string
					for _, rd := range r.Reads(q, srcs...) {
						if !slices.Contains(want, rd.Table) {
							want = append(want, rd.Table)
						}
					}
					got := tableNames(conn.tables)
					slices.Sort(want)
					if !slices.Equal(got, want) {
						t.Errorf("%v by %q step %q: read %v, Reads names %v", srcs, by, step, got, want)
					}
				}
			}
		}
	}
	for _, at := range []time.Time{ragged.From, ragged.To.Add(13 * time.Minute), months.To} {
		conn.tables = map[string]bool{}
		if _, err := r.Balances(ctx, Scope{Hierarchy: "vn-2025"}, at, true); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, rd := range r.BalanceReads(at) {
			if !slices.Contains(want, rd.Table) {
				want = append(want, rd.Table)
			}
		}
		slices.Sort(want)
		if got := tableNames(conn.tables); !slices.Equal(got, want) {
			t.Errorf("balances at %s: read %v, BalanceReads names %v", at, got, want)
		}
	}
}

func tableNames(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
