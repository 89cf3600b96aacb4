// Package chstore owns the ClickHouse connection and the schema: it opens a
// pooled connection, creates the database and applies the versioned
// migrations under migrations/ at start-up, on one server or, replicated
// and sharded, on a ClickHouse cluster (cluster.go says how, and which
// setting carries which guarantee).
//
// The SQL here and in the packages that query through a Store must run on
// ClickHouse 18.16 and on current releases alike: MergeTree family engines
// with PARTITION BY/ORDER BY, DateTime (not DateTime64), plain String, no TTL,
// no window functions, explicit column lists on INSERT, and values bound on
// the client from allow-listed identifiers only.
//
// Concurrency: a Store is safe for concurrent use.
package chstore

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says where ClickHouse is. Zero fields take the documented defaults.
type Config struct {
	Addr     string // host:port of the native protocol; default 127.0.0.1:9000
	Database string // default "ioc"; created if missing
	Username string // default "default"
	Password string
	// DialTimeout bounds connecting; default 5s.
	DialTimeout time.Duration
	// MaxOpenConns bounds the pool; default 16.
	MaxOpenConns int
	// QueryTimeout is ClickHouse's max_execution_time for every query;
	// default 30s.
	QueryTimeout time.Duration
	// TimeZone cuts the day and month rollups; default Asia/Ho_Chi_Minh.
	TimeZone string
	// Cluster names a cluster of ClickHouse's remote_servers: empty for one
	// server. On a cluster every table is replicated within its shard and
	// read through a Distributed table of the same name (see cluster.go);
	// Addr may then list several servers, comma-separated, to fail over.
	Cluster string
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9000"
	}
	if c.Database == "" {
		c.Database = "ioc"
	}
	if c.Username == "" {
		c.Username = "default"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = 16
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = 30 * time.Second
	}
	if c.TimeZone == "" {
		c.TimeZone = "Asia/Ho_Chi_Minh"
	}
	return c
}

var (
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	zoneRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_/+-]{0,63}$`)
)

// Store is an open ClickHouse connection pool bound to one database. On a
// cluster it reads and writes the Distributed tables, and Shards holds a
// Store per shard bound to that shard's replicated tables.
type Store struct {
	conn   driver.Conn
	db     string
	zone   string
	loc    *time.Location
	logger *slog.Logger
	// scope names what this store writes, for the leases of its writers:
	// the database, or the database and the shard.
	scope string
	// On a cluster: its name, the database of the replicated tables, and
	// a store per shard.
	cluster string
	local   string
	shards  []*Store
	// A shard's place among the cluster's shards (BatchID); 0 of 0 for one
	// server and for the cluster's Distributed tables.
	shardIndex, shardCount int
	// quorum is how many replicas hold what the application writes
	// through the Distributed tables (the first shard's): 0 on one server.
	quorum int
}

// Open connects to ClickHouse and creates the database if it is missing. It
// does not migrate: call Migrate.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	cfg = cfg.withDefaults()
	if !identRE.MatchString(cfg.Database) {
		return nil, fmt.Errorf("clickhouse database name %q: use letters, digits and underscores", cfg.Database)
	}
	if cfg.Cluster != "" && !identRE.MatchString(cfg.Cluster) {
		return nil, fmt.Errorf("clickhouse cluster name %q: use the name of a cluster in remote_servers (letters, digits, underscores)", cfg.Cluster)
	}
	// The zone is written into view definitions, so it must be a name the
	// tz database knows and nothing else.
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil || !zoneRE.MatchString(cfg.TimeZone) {
		return nil, fmt.Errorf("time zone %q is not a tz database name such as Asia/Ho_Chi_Minh", cfg.TimeZone)
	}
	addrs := strings.Split(cfg.Addr, ",")
	boot, err := openConn(cfg, addrs, "default", nil)
	if err != nil {
		return nil, err
	}
	defer boot.Close()
	s := &Store{db: cfg.Database, zone: cfg.TimeZone, loc: loc, logger: logger, scope: cfg.Database}
	var settings clickhouse.Settings
	if cfg.Cluster == "" {
		if err := boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cfg.Database); err != nil {
			return nil, fmt.Errorf("create database %s on clickhouse at %s: %w", cfg.Database, cfg.Addr, err)
		}
	} else {
		if err := s.openShards(ctx, cfg, boot); err != nil {
			return nil, err
		}
		settings = distributedSettings
	}
	if s.conn, err = openConn(cfg, addrs, cfg.Database, settings); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.conn.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("ping clickhouse at %s: %w", cfg.Addr, err)
	}
	return s, nil
}

// openConn opens a pool on the first of addrs that answers, moving to the
// next when it fails.
func openConn(cfg Config, addrs []string, db string, extra clickhouse.Settings) (driver.Conn, error) {
	settings := clickhouse.Settings{"max_execution_time": int(cfg.QueryTimeout.Seconds())}
	maps.Copy(settings, extra)
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:             addrs,
		Auth:             clickhouse.Auth{Database: db, Username: cfg.Username, Password: cfg.Password},
		DialTimeout:      cfg.DialTimeout,
		MaxOpenConns:     cfg.MaxOpenConns,
		MaxIdleConns:     cfg.MaxOpenConns,
		ConnMaxLifetime:  time.Hour,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
		Compression:      &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		Settings:         settings,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to clickhouse at %s: %w", strings.Join(addrs, ","), err)
	}
	return conn, nil
}

// Conn is the pooled connection, for the packages that own their queries.
func (s *Store) Conn() driver.Conn { return s.conn }

// Database is the database every table lives in.
func (s *Store) Database() string { return s.db }

// TimeZone is the zone of the local day and month rollups.
func (s *Store) TimeZone() string { return s.zone }

// Location is the deployment's zone (TimeZone): the local days and months
// of the rollups, and the offset every time the API writes carries.
func (s *Store) Location() *time.Location { return s.loc }

// Ping checks that ClickHouse answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("ping clickhouse: %w", err)
	}
	return nil
}

// Scope names what the store writes, for the leases that let one writer
// at a time write it: the database, and on a cluster also the shard.
func (s *Store) Scope() string { return s.scope }

// Close releases the connections, the shards' too.
func (s *Store) Close() error {
	for _, sh := range s.shards {
		sh.Close()
	}
	if s.conn == nil {
		return nil
	}
	return s.conn.Close()
}
