package dataset

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
)

// Connector pulls a dataset's values from where the department keeps
// them, so that it need not upload them: a query of its PostgreSQL
// database, or a file its web service answers. Each run reads the latest
// Periods periods and stores what it read as one upload.
type Connector struct {
	// Kind is postgres or http.
	Kind string `json:"kind"`
	// Every is how often it runs, a Go duration from 1m to 744h (31
	// days); default 1h.
	Every string `json:"every,omitempty"`
	// Periods is how many of the latest periods of the grain a run reads,
	// the current one included: 1 to 120, default 2 (a late correction
	// of the last period comes in).
	Periods int `json:"periods,omitempty"`

	// DSN is the PostgreSQL database, a URL without a password:
	// postgres://user@host:5432/db?sslmode=disable.
	DSN string `json:"dsn,omitempty"`
	// PasswordEnv names the environment variable of the node that holds
	// the password: a definition is read by every admin and kept in
	// every version, a secret is not.
	PasswordEnv string `json:"password_env,omitempty"`
	// Query is one SELECT (or WITH … SELECT) whose columns are named as
	// the rows' fields are (AS "Mã xã"); :from and :to are the first day
	// of the first period read and the first day after the last, as
	// DATEs.
	Query string `json:"query,omitempty"`

	// URL is what an http connector GETs; {from} and {to} in it are the
	// first and the last period read, in the grain's form (2025-Q1).
	URL string `json:"url,omitempty"`
	// Format is the answer's: csv, json or ndjson, as uploads.
	Format string `json:"format,omitempty"`
	// TokenEnv names the environment variable of the node whose value is
	// sent as Authorization: Bearer ….
	TokenEnv string `json:"token_env,omitempty"`
}

// The kinds of connector and their bounds.
const (
	ConnectorPostgres = "postgres"
	ConnectorHTTP     = "http"

	DefaultEvery   = time.Hour
	MinEvery       = time.Minute
	MaxEvery       = 31 * 24 * time.Hour
	DefaultPeriods = 2
	MaxPeriods     = 120

	// MaxConnectorBody bounds the answer an http connector reads.
	MaxConnectorBody = 64 << 20
)

var (
	connectorKinds   = []string{ConnectorPostgres, ConnectorHTTP}
	connectorFormats = []string{FormatCSV, FormatJSON, FormatNDJSON}
	envRE            = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// every is how often c runs.
func (c Connector) every() time.Duration {
	if d, err := time.ParseDuration(c.Every); err == nil && d > 0 {
		return d
	}
	return DefaultEvery
}

func (c Connector) periods() int {
	if c.Periods > 0 {
		return c.Periods
	}
	return DefaultPeriods
}

// window is the first and the last period a run at now reads: the one
// holding now and the Periods-1 before it.
func (c Connector) window(g Grain, now time.Time) (first, last time.Time) {
	last = g.Floor(now)
	first = last
	for range c.periods() - 1 {
		first = g.Floor(first.AddDate(0, 0, -1))
	}
	return first, last
}

// check lists what is wrong with c, at paths connector.<field>.
func (c Connector) check() []Problem {
	var out []Problem
	fail := func(field, format string, args ...any) {
		out = append(out, Problem{Path: "connector." + field, Error: fmt.Sprintf(format, args...)})
	}
	if !slices.Contains(connectorKinds, c.Kind) {
		fail("kind", "%q is not a kind of connector: postgres (a query of a PostgreSQL database) or http (a CSV, JSON or NDJSON answer of a web service)", c.Kind)
		return out
	}
	if c.Every != "" {
		d, err := time.ParseDuration(c.Every)
		switch {
		case err != nil:
			fail("every", "%q is not a duration: write it as 30m, 1h or 24h", c.Every)
		case d < MinEvery || d > MaxEvery:
			fail("every", "%s is out of range: from 1m to 744h (31 days)", c.Every)
		}
	}
	if c.Periods < 0 || c.Periods > MaxPeriods {
		fail("periods", "%d is out of range: 1 to %d periods, or 0 for the default %d", c.Periods, MaxPeriods, DefaultPeriods)
	}
	other := map[string]string{ConnectorPostgres: ConnectorHTTP, ConnectorHTTP: ConnectorPostgres}[c.Kind]
	for _, f := range []struct{ name, value, kind string }{
		{"dsn", c.DSN, ConnectorPostgres}, {"password_env", c.PasswordEnv, ConnectorPostgres}, {"query", c.Query, ConnectorPostgres},
		{"url", c.URL, ConnectorHTTP}, {"format", c.Format, ConnectorHTTP}, {"token_env", c.TokenEnv, ConnectorHTTP},
	} {
		if f.value != "" && f.kind == other {
			fail(f.name, "is a field of a %s connector: leave it out of a %s one", other, c.Kind)
		}
	}
	env := func(field, name string) {
		if name != "" && !envRE.MatchString(name) {
			fail(field, "%q is not the name of an environment variable: letters, digits and _, e.g. IOC_PG_EDU_PASSWORD", name)
		}
	}
	switch c.Kind {
	case ConnectorPostgres:
		if err := checkDSN(c.DSN); err != nil {
			fail("dsn", "%v", err)
		}
		env("password_env", c.PasswordEnv)
		if strings.TrimSpace(c.Query) == "" {
			fail("query", "give the query that reads the rows: SELECT … AS \"%s\", … WHERE … >= :from AND … < :to", "Mã xã")
		} else if _, _, err := bindQuery(c.Query); err != nil {
			fail("query", "%v", err)
		}
	case ConnectorHTTP:
		if err := checkURL(c.URL); err != nil {
			fail("url", "%v", err)
		}
		if !slices.Contains(connectorFormats, c.Format) {
			fail("format", "%q is not a format: csv, json (an array of objects) or ndjson (an object per line)", c.Format)
		}
		env("token_env", c.TokenEnv)
	}
	return out
}

// checkDSN checks a PostgreSQL URL. It never repeats the DSN: a password
// written in it by mistake must not travel on in an error.
func checkDSN(dsn string) error {
	const form = "postgres://user@host:5432/db?sslmode=disable"
	if dsn == "" {
		return fmt.Errorf("give the database as a URL: %s", form)
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return fmt.Errorf("is not a PostgreSQL URL: write it as %s", form)
	}
	if _, set := u.User.Password(); set || u.Query().Has("password") {
		return errors.New("holds a password: every admin reads a definition and every version is kept; put the password in an environment variable of the nodes and name it in password_env")
	}
	return nil
}

// checkURL checks an http connector's URL, with its {from} and {to}.
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("give the URL to GET: https://…, with {from} and {to} where the periods read go")
	}
	u, err := url.Parse(strings.NewReplacer("{from}", "2025", "{to}", "2025").Replace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("is not an http or https URL: write it as https://host/path?from={from}&to={to}")
	}
	if u.User != nil {
		return errors.New("holds credentials: every admin reads a definition; put a token in an environment variable of the nodes and name it in token_env")
	}
	return nil
}

// The named parameters of a connector's query, in the order they are
// numbered.
var queryParams = []string{"from", "to"}

// QueryError is a connector's query that cannot run, at a character
// (counted from 0, written from 1).
type QueryError struct {
	Pos int
	Msg string
}

func (e *QueryError) Error() string { return fmt.Sprintf("at character %d: %s", e.Pos+1, e.Msg) }

// bindQuery translates the named parameters of a connector's query, :from
// and :to, to PostgreSQL's positional ones ($1::date, $2::date, numbered in
// that order among those it names) and returns the query with the names
// it binds, in order. It refuses what is not a single SELECT (or WITH)
// statement, and any other :name, with the position. String literals,
// quoted names, comments and :: casts are kept as written.
//
// The check is for the department's sake, telling a mistake early: what
// guards the database is the READ ONLY transaction the query runs in.
func bindQuery(q string) (string, []string, error) {
	pos := func(i int) int { return utf8.RuneCountInString(q[:i]) }
	fail := func(i int, format string, args ...any) (string, []string, error) {
		return "", nil, &QueryError{pos(i), fmt.Sprintf(format, args...)}
	}
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 || !first && (c >= '0' && c <= '9' || c == '$')
	}
	// skip passes blanks and comments from i; it returns where they end,
	// or an error for a comment that is not closed.
	skip := func(i int) (int, error) {
		for i < len(q) {
			switch {
			case q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r' || q[i] == '\f':
				i++
			case strings.HasPrefix(q[i:], "--"):
				end := strings.IndexByte(q[i:], '\n')
				if end < 0 {
					return len(q), nil
				}
				i += end + 1
			case strings.HasPrefix(q[i:], "/*"):
				start, depth := i, 0
				for ; i < len(q); i++ {
					if strings.HasPrefix(q[i:], "/*") {
						depth++
						i++
					} else if strings.HasPrefix(q[i:], "*/") {
						depth--
						i++
						if depth == 0 {
							i++
							break
						}
					}
				}
				if depth > 0 {
					return 0, &QueryError{pos(start), "the comment opened here is not closed: end it with */"}
				}
			default:
				return i, nil
			}
		}
		return i, nil
	}
	i, err := skip(0)
	if err != nil {
		return "", nil, err
	}
	if i == len(q) {
		return fail(0, "the query is empty: write one SELECT")
	}
	word := i
	for word < len(q) && isIdent(q[word], word == i) {
		word++
	}
	if kw := strings.ToUpper(q[i:word]); kw != "SELECT" && kw != "WITH" {
		return fail(i, "the query starts with %q: a connector reads with one SELECT (or WITH … SELECT)", q[i:max(word, i+1)])
	}
	// The query is cut at its parameters, numbered once all are known.
	var b strings.Builder
	b.WriteString(q[:i])
	var texts, params []string
	for i < len(q) {
		c := q[i]
		start := i
		switch {
		case c == '\'' || c == '"':
			// A literal ('…', with '' for a quote; E'…' also with \)
			// or a quoted name ("…", with "").
			escapes := c == '\'' && i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && (i < 2 || !isIdent(q[i-2], false))
			i++
			for {
				if i >= len(q) {
					what := "string"
					if c == '"' {
						what = "quoted name"
					}
					return fail(start, "the %s opened here is not closed: end it with %c", what, c)
				}
				if escapes && q[i] == '\\' {
					i += 2
					continue
				}
				if q[i] == c {
					if i+1 < len(q) && q[i+1] == c {
						i += 2
						continue
					}
					i++
					break
				}
				i++
			}
			b.WriteString(q[start:i])
		case c == '$':
			// $tag$…$tag$ quotes a string; $1 is a parameter of another
			// form.
			j := i + 1
			if j < len(q) && q[j] >= '0' && q[j] <= '9' {
				return fail(i, "%s is a positional parameter: write :from and :to, which the connector fills", q[i:j+1])
			}
			for j < len(q) && isIdent(q[j], j == i+1) && q[j] != '$' {
				j++
			}
			if j >= len(q) || q[j] != '$' {
				b.WriteByte(c)
				i++
				continue
			}
			tag := q[i : j+1]
			end := strings.Index(q[j+1:], tag)
			if end < 0 {
				return fail(i, "the string quoted by %s is not closed: end it with %s", tag, tag)
			}
			i = j + 1 + end + len(tag)
			b.WriteString(q[start:i])
		case strings.HasPrefix(q[i:], "--") || strings.HasPrefix(q[i:], "/*"):
			if i, err = skip(i); err != nil {
				return "", nil, err
			}
			b.WriteString(q[start:i])
		case strings.HasPrefix(q[i:], "::"):
			b.WriteString("::")
			i += 2
		case c == ':' && i+1 < len(q) && isIdent(q[i+1], true):
			j := i + 1
			for j < len(q) && isIdent(q[j], false) && q[j] != '$' {
				j++
			}
			name := q[i+1 : j]
			if !slices.Contains(queryParams, name) {
				return fail(i, ":%s is not a parameter: a query takes :from (the first day of the first period read) and :to (the day after the last)", name)
			}
			texts, params = append(texts, b.String()), append(params, name)
			b.Reset()
			i = j
		case c == ';':
			rest, err := skip(i + 1)
			if err != nil {
				return "", nil, err
			}
			if rest < len(q) {
				return fail(rest, "a second statement: a connector runs one SELECT, without ;")
			}
			i = len(q)
		case isIdent(c, true):
			// A name or key word, whole: a $ in it is its own.
			j := i + 1
			for j < len(q) && isIdent(q[j], false) {
				j++
			}
			b.WriteString(q[i:j])
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	// Numbered in a fixed order, and only those the query names:
	// PostgreSQL cannot tell the type of a parameter a query leaves out.
	var names []string
	for _, p := range queryParams {
		if slices.Contains(params, p) {
			names = append(names, p)
		}
	}
	var out strings.Builder
	for k, text := range texts {
		fmt.Fprintf(&out, "%s$%d::date", text, slices.Index(names, params[k])+1)
	}
	out.WriteString(b.String())
	return out.String(), names, nil
}

// ConnectorsConfig tunes Connectors. Zero fields take the defaults.
type ConnectorsConfig struct {
	// Lease names the lease whose holder runs the connectors, so that
	// one node at a time reads each department's database; required (a
	// node names it after its database).
	Lease string
	// Tick is how often the connectors due are looked for; default 30s.
	Tick time.Duration
	// Timeout bounds a run, from connecting to the last row; default 2m.
	Timeout time.Duration
	// Location is the zone whose calendar the periods read are counted
	// in; default the node's (time.Local).
	Location *time.Location
	// Now tells the time; default time.Now.
	Now func() time.Time
	// Getenv reads the node's environment variables that password_env
	// and token_env name; default os.Getenv.
	Getenv func(string) string
	// Client is the HTTP client of http connectors; default one of its
	// own (each request is bounded by Timeout).
	Client *http.Client
}

// Leases elect the node that runs the connectors.
type Leases interface {
	Acquire(ctx context.Context, name string) (*lease.Lease, error)
}

// ConnectorState is how a dataset's connector ran: what its last run read
// and when the last one succeeded, or why it failed and since when.
type ConnectorState struct {
	Dataset string `json:"dataset"`
	Kind    string `json:"kind,omitempty"`
	Every   string `json:"every,omitempty"`
	// LastRun is when the last run started; nil: none yet. NextRun is
	// when the next is due.
	LastRun *time.Time `json:"last_run,omitempty"`
	NextRun *time.Time `json:"next_run,omitempty"`
	// LastSuccess is when the last run that stored its rows started (as
	// far as the store says: the runs of the last 62 days).
	LastSuccess *time.Time `json:"last_success,omitempty"`
	// Rows and Refused are what the last run stored and refused.
	Rows    int `json:"rows"`
	Refused int `json:"refused"`
	// Error is why the last run failed whole, "" if it did not; Failures
	// counts the failed runs since the last success, the first of them at
	// FailingSince.
	Error        string     `json:"error,omitempty"`
	Failures     int        `json:"consecutive_failures"`
	FailingSince *time.Time `json:"failing_since,omitempty"`

	// ran is the connector the last run of this node ran: a definition
	// changed since (a DSN corrected) runs at once.
	ran *Connector
}

// Connectors runs the connectors of the datasets in force, on the node
// that holds the lease: each when it is due, one at a time. Every run is
// recorded with the uploads (Values.Record, Put), so that the other nodes
// answer Runs and Failing from the store, and a node taking the lease over
// goes on where the last holder was.
//
// Concurrency: safe for concurrent use. Run owns the campaign goroutine
// for the lease and one that ends a term when its lease is lost; both
// exit before Run returns.
type Connectors struct {
	cfg    ConnectorsConfig
	ds     *Datasets
	units  Units
	leases Leases
	logger *slog.Logger
	m      connectorMetrics

	mu     sync.Mutex
	states map[string]ConnectorState
}

type connectorMetrics struct {
	runs        *prometheus.CounterVec
	rows        *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
}

// NewConnectors returns the connectors of ds's datasets, whose rows are
// checked against h as uploads are; a connector, set up by an admin, may
// give values of any unit.
func NewConnectors(cfg ConnectorsConfig, ds *Datasets, h *geo.Hierarchy, leases Leases, logger *slog.Logger, reg prometheus.Registerer) (*Connectors, error) {
	if ds == nil || h == nil || leases == nil || logger == nil {
		return nil, errors.New("connectors need the datasets, the hierarchy, leases and a logger")
	}
	if cfg.Lease == "" {
		return nil, errors.New("connectors need the name of their lease: name it after the node's database, <db>.dataset_connectors")
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	c := &Connectors{cfg: cfg, ds: ds, units: HierarchyUnits{H: h}, leases: leases, logger: logger, states: map[string]ConnectorState{},
		m: connectorMetrics{
			runs: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_dataset_connector_runs_total", Help: "Runs of datasets' connectors on this node, by dataset and result (ok, failed)."}, []string{"dataset", "result"}),
			rows: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "ioc_dataset_connector_rows_total", Help: "Rows datasets' connectors read, by dataset and outcome (stored, refused)."}, []string{"dataset", "outcome"}),
			lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "ioc_dataset_connector_last_success_timestamp_seconds", Help: "When a dataset's connector last stored its rows, in Unix seconds."}, []string{"dataset"}),
		}}
	if reg != nil {
		reg.MustRegister(c.m.runs, c.m.rows, c.m.lastSuccess)
	}
	return c, nil
}

// Run runs the connectors due every Tick while this node holds the lease,
// and otherwise reads how they ran from the store, until ctx ends.
func (c *Connectors) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before wg.Wait: ends the campaign and the lease watch
	won := make(chan *lease.Lease)
	wg.Go(func() {
		lease.Campaign(ctx, c.leases, c.cfg.Lease, won, func(err error) {
			c.logger.Warn("cannot take part in electing the node that runs the datasets' connectors; retrying", "err", err)
		})
	})
	// A term is one tenure as the node that runs the connectors: its
	// context ends when the lease is lost, abandoning the run under way.
	var held *lease.Lease
	var term context.Context
	endTerm := func() {}
	defer func() { endTerm() }()
	tick := time.NewTicker(c.cfg.Tick)
	defer tick.Stop()
	c.refresh(ctx)
	for {
		var lost <-chan struct{}
		if held != nil {
			lost = held.Lost()
		}
		select {
		case <-ctx.Done():
			return nil
		case l := <-won:
			endTerm()
			held = l
			tctx, tcancel := context.WithCancel(ctx)
			term = tctx
			wg.Go(func() {
				select {
				case <-l.Lost():
					tcancel()
				case <-tctx.Done():
				}
			})
			endTerm = func() {
				tcancel()
				l.Release()
				held, endTerm = nil, func() {}
			}
			// Where the last holder was: its runs are not repeated.
			c.refresh(term)
			c.logger.Info("running the datasets' connectors on this node", "token", l.Token())
			_ = c.RunDue(term)
		case <-lost:
			c.logger.Warn("lost the lease of the datasets' connectors; another node runs them", "token", held.Token())
			endTerm()
		case <-tick.C:
			if held != nil {
				_ = c.RunDue(term)
			} else {
				c.refresh(ctx)
			}
		}
	}
}

// refresh reads how the connectors ran from the store, for a node that
// does not run them or has just begun to.
func (c *Connectors) refresh(ctx context.Context) {
	states, err := c.load(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.logger.Warn("read how the datasets' connectors ran; keeping what this node knew", "err", err)
		}
		return
	}
	c.mu.Lock()
	c.states = states
	c.mu.Unlock()
	for id, st := range states {
		if st.LastSuccess != nil {
			c.m.lastSuccess.WithLabelValues(id).Set(float64(st.LastSuccess.Unix()))
		}
	}
}

// stateWindow is how far back load reads the runs: two of the longest
// intervals, so that the last run of every connector is in it.
const stateWindow = 2 * MaxEvery

// load reads the latest runs of every connector in force from the
// uploads' records.
func (c *Connectors) load(ctx context.Context) (map[string]ConnectorState, error) {
	var ids []string
	for _, d := range c.ds.List() {
		if d.Connector != nil {
			ids = append(ids, d.ID)
		}
	}
	out := map[string]ConnectorState{}
	if len(ids) == 0 {
		return out, nil
	}
	since := c.cfg.Now().Add(-stateWindow).Unix()
	rows, err := c.ds.conn.Query(ctx, "SELECT dataset, source, saved_at, rows, refused, error FROM "+c.ds.db+".dataset_uploads"+
		" WHERE dataset IN ? AND source LIKE 'connector:%' AND saved_at >= toDateTime(?)"+
		" ORDER BY dataset, saved_at DESC, upload DESC LIMIT 1000 BY dataset", chstore.In(ids), since)
	if err != nil {
		return nil, fmt.Errorf("query the connectors' runs: %w", err)
	}
	defer rows.Close()
	done := map[string]bool{} // the last success is found
	for rows.Next() {
		var id, source, runErr string
		var at time.Time
		var n, refused uint32
		if err := rows.Scan(&id, &source, &at, &n, &refused, &runErr); err != nil {
			return nil, fmt.Errorf("read the connectors' runs: %w", err)
		}
		at = at.UTC()
		st, seen := out[id]
		if !seen {
			st = ConnectorState{Dataset: id, Kind: strings.TrimPrefix(source, "connector:"), LastRun: &at, Rows: int(n), Refused: int(refused), Error: runErr}
		}
		if !done[id] {
			if runErr == "" {
				st.LastSuccess, done[id] = &at, true
			} else {
				st.Failures++
				st.FailingSince = &at
			}
		}
		out[id] = st
	}
	return out, rows.Err()
}

// RunDue runs, one at a time, the connector of every dataset in force
// that is due: never run, run Every ago or more, or changed since it ran.
// The caller holds the lease; when ctx ends, the run under way is
// abandoned unrecorded and ctx's error returned.
func (c *Connectors) RunDue(ctx context.Context) error {
	for _, d := range c.ds.List() {
		if d.Connector == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		st := c.state(d.ID)
		if st.LastRun != nil && (st.ran == nil || *st.ran == *d.Connector) && c.cfg.Now().Before(st.LastRun.Add(d.Connector.every())) {
			continue
		}
		c.run(ctx, d)
	}
	return ctx.Err()
}

func (c *Connectors) state(id string) ConnectorState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.states[id]
}

// run runs d's connector once and records the run.
func (c *Connectors) run(ctx context.Context, d Definition) {
	conn := *d.Connector
	start := c.cfg.Now()
	first, last := conn.window(d.Grain, start.In(c.cfg.Location))
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	var dec Decoded
	var err error
	switch conn.Kind {
	case ConnectorPostgres:
		dec, err = c.readPostgres(rctx, d, first, d.Grain.Next(last))
	case ConnectorHTTP:
		dec, err = c.readHTTP(rctx, d, d.Grain.Format(first), d.Grain.Format(last))
	default:
		err = fmt.Errorf("unknown kind of connector %q", conn.Kind) // Parse refuses it
	}
	timedOut := errors.Is(rctx.Err(), context.DeadlineExceeded)
	cancel()
	if ctx.Err() != nil {
		// The lease was lost or the node stops: the next holder runs it.
		return
	}
	if err != nil && timedOut {
		err = fmt.Errorf("the run took longer than %s: make the query or the service faster, or read fewer periods: %w", c.cfg.Timeout, err)
	}
	up := Upload{Dataset: d.ID, ID: runID(), Source: "connector:" + conn.Kind, By: "connector", At: start}
	// Storing has time of its own: a run that used all of its own is
	// still recorded.
	sctx, scancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer scancel()
	if err == nil {
		up.Refused, up.Problems = dec.Refused, dec.Problems
		if _, perr := c.ds.Put(sctx, d, dec.Rows, up); perr != nil {
			err = fmt.Errorf("store the rows read: %w", perr)
		}
	}
	if err != nil {
		up.Rows, up.Refused, up.Problems, up.Error = 0, 0, nil, err.Error()
		if rerr := c.ds.Record(sctx, up); rerr != nil && ctx.Err() == nil {
			c.logger.Warn("record a connector's failed run", "dataset", d.ID, "err", rerr)
		}
	}

	c.mu.Lock()
	st := c.states[d.ID]
	st.Dataset, st.Kind, st.LastRun, st.ran = d.ID, conn.Kind, &start, &conn
	if err != nil {
		st.Rows, st.Refused, st.Error = 0, 0, err.Error()
		if st.Failures == 0 {
			st.FailingSince = &start
		}
		st.Failures++
	} else {
		st.Rows, st.Refused, st.Error, st.Failures, st.FailingSince, st.LastSuccess = len(dec.Rows), dec.Refused, "", 0, nil, &start
	}
	c.states[d.ID] = st
	c.mu.Unlock()

	took := c.cfg.Now().Sub(start)
	if err != nil {
		c.m.runs.WithLabelValues(d.ID, "failed").Inc()
		c.logger.Warn("a dataset's connector failed; its values are as they were", "dataset", d.ID, "kind", conn.Kind,
			"consecutive_failures", st.Failures, "took", took, "err", err)
		return
	}
	c.m.runs.WithLabelValues(d.ID, "ok").Inc()
	c.m.rows.WithLabelValues(d.ID, "stored").Add(float64(len(dec.Rows)))
	c.m.rows.WithLabelValues(d.ID, "refused").Add(float64(dec.Refused))
	c.m.lastSuccess.WithLabelValues(d.ID).Set(float64(start.Unix()))
	c.logger.Info("a dataset's connector ran", "dataset", d.ID, "kind", conn.Kind, "stored", len(dec.Rows), "refused", dec.Refused, "took", took)
}

// Runs is how the connector of dataset ran, as far as this node knows:
// its own runs while it holds the lease, the store's otherwise (read every
// Tick).
func (c *Connectors) Runs(dataset string) ConnectorState {
	st := c.state(dataset)
	st.Dataset, st.ran = dataset, nil
	if d, ok := c.ds.Get(dataset); ok && d.Connector != nil {
		st.Kind, st.Every = d.Connector.Kind, d.Connector.every().String()
		if st.LastRun != nil {
			next := st.LastRun.Add(d.Connector.every())
			st.NextRun = &next
		}
	}
	return st
}

// Failing returns the datasets in force whose connector's last run
// failed, by id.
func (c *Connectors) Failing() map[string]ConnectorState {
	out := map[string]ConnectorState{}
	for _, d := range c.ds.List() {
		if d.Connector == nil {
			continue
		}
		if st := c.Runs(d.ID); st.Error != "" {
			out[d.ID] = st
		}
	}
	return out
}

// Failures is Failing as the alarm of a feed reads it (AlarmFeeds.Failing):
// why each failing connector's last run failed.
func (c *Connectors) Failures() map[string]string {
	out := map[string]string{}
	for id, st := range c.Failing() {
		out[id] = st.Error
	}
	return out
}

// readPostgres runs d's query for the days [from, to) in a READ ONLY
// transaction whose statements the database stops at the run's deadline.
func (c *Connectors) readPostgres(ctx context.Context, d Definition, from, to time.Time) (Decoded, error) {
	conn := d.Connector
	query, names, err := bindQuery(conn.Query)
	if err != nil {
		return Decoded{}, fmt.Errorf("the query: %w", err)
	}
	cfg, err := pgx.ParseConfig(conn.DSN)
	if err != nil {
		return Decoded{}, fmt.Errorf("read the dsn: %w", err)
	}
	if conn.PasswordEnv != "" {
		pw := c.cfg.Getenv(conn.PasswordEnv)
		if pw == "" {
			return Decoded{}, fmt.Errorf("the environment variable %s that password_env names is not set: set it for iocd on every node that may run connectors", conn.PasswordEnv)
		}
		cfg.Password = pw
	}
	cfg.RuntimeParams["application_name"] = "iocd connector " + d.ID
	pc, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return Decoded{}, fmt.Errorf("connect to the database: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = pc.Close(cctx)
	}()
	tx, err := pc.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return Decoded{}, fmt.Errorf("begin a read-only transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// The server stops the query itself at the deadline, rather than
	// going on for a client that left.
	if deadline, ok := ctx.Deadline(); ok {
		ms := max(time.Until(deadline).Milliseconds(), 1)
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", ms)); err != nil {
			return Decoded{}, fmt.Errorf("set the statement timeout: %w", err)
		}
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = map[string]time.Time{"from": from, "to": to}[n]
	}
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return Decoded{}, fmt.Errorf("run the query: %w", err)
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	columns := make([]string, len(fields))
	for i, f := range fields {
		columns[i] = f.Name
	}
	dec, err := DecodeRecords(d, columns, func() ([]any, error) {
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("run the query: %w", err)
			}
			return nil, io.EOF
		}
		vals, err := rows.Values()
		if err != nil {
			return nil, fmt.Errorf("read the query's rows: %w", err)
		}
		for i, v := range vals {
			if n, ok := v.(pgtype.Numeric); ok {
				f, err := n.Float64Value()
				switch {
				case err != nil || !f.Valid:
					vals[i] = nil
				default:
					vals[i] = f.Float64
				}
			}
		}
		return vals, nil
	}, c.units)
	if err != nil {
		return Decoded{}, err
	}
	return dec, nil
}

// readHTTP GETs the answer of d's service for the periods first to last
// (in the grain's form) and decodes it as an upload.
func (c *Connectors) readHTTP(ctx context.Context, d Definition, first, last string) (Decoded, error) {
	conn := d.Connector
	raw := strings.NewReplacer("{from}", url.QueryEscape(first), "{to}", url.QueryEscape(last)).Replace(conn.URL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return Decoded{}, fmt.Errorf("the url: %w", err)
	}
	where := req.URL.Scheme + "://" + req.URL.Host + req.URL.Path // not its query, which may hold a key
	if conn.TokenEnv != "" {
		tok := c.cfg.Getenv(conn.TokenEnv)
		if tok == "" {
			return Decoded{}, fmt.Errorf("the environment variable %s that token_env names is not set: set it for iocd on every node that may run connectors", conn.TokenEnv)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Accept", map[string]string{FormatCSV: "text/csv", FormatJSON: "application/json", FormatNDJSON: "application/x-ndjson"}[conn.Format])
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Decoded{}, fmt.Errorf("GET %s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		msg := strings.TrimSpace(strings.ToValidUTF8(string(b), "�"))
		if msg != "" {
			msg = ": " + msg
		}
		return Decoded{}, fmt.Errorf("GET %s answered %s%s", where, resp.Status, msg)
	}
	body := &boundedReader{r: resp.Body, left: MaxConnectorBody}
	dec, err := Decode(d, conn.Format, body, c.units)
	if body.over {
		return Decoded{}, fmt.Errorf("GET %s answered more than %d MiB: have the service answer only the periods asked for ({from}, {to}), or read fewer", where, MaxConnectorBody>>20)
	}
	if err != nil {
		return Decoded{}, fmt.Errorf("read the answer of GET %s: %w", where, err)
	}
	return dec, nil
}

// boundedReader reads r up to left bytes, and fails past them.
type boundedReader struct {
	r    io.Reader
	left int64
	over bool
}

var errTooLarge = errors.New("the answer is too large")

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left < 0 {
		b.over = true
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.over = true
		return n, errTooLarge
	}
	return n, err
}

// runID names a run in the uploads' history.
func runID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
