// Package testenv gives tests real ClickHouse, Redis, Mosquitto and
// PostgreSQL servers.
//
// Shared servers come from IOC_TEST_CLICKHOUSE_ADDR, IOC_TEST_REDIS_ADDR,
// IOC_TEST_MQTT_URL and IOC_TEST_POSTGRES_DSN when set (make test starts
// the first three once for the whole run);
// otherwise the first test that asks starts them on free loopback ports with
// throwaway data directories, and Main stops them when the package's tests
// end. Tests isolate themselves with a database of their own (Database,
// PostgresDatabase), or
// on MQTT with client ids and topics of their own. A test that
// must stop or kill a server starts a dedicated one (StartClickHouse).
//
// Concurrency: all functions are safe for parallel tests.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/devservices"
)

var (
	mu      sync.Mutex
	shared  = map[string]*devservices.Server{}
	dirs    []string
	started []*devservices.Server
	cluster *Cluster // StartCluster's
)

// Main runs the tests and stops every server this package started. Use it
// from TestMain: os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	for _, s := range started {
		_ = s.Stop()
	}
	if cluster != nil {
		cluster.Stop()
		_ = cluster.ZooKeeper.Stop()
	}
	for _, d := range dirs {
		os.RemoveAll(d)
	}
	return code
}

// ClickHouseAddr returns the address of the shared test ClickHouse.
func ClickHouseAddr(t testing.TB) string {
	return sharedAddr(t, "clickhouse", "IOC_TEST_CLICKHOUSE_ADDR", devservices.StartClickHouse)
}

// RedisAddr returns the address of the shared test Redis.
func RedisAddr(t testing.TB) string {
	return sharedAddr(t, "redis", "IOC_TEST_REDIS_ADDR", devservices.StartRedis)
}

// PostgresDSN returns the URL of the shared test PostgreSQL (superuser
// postgres, database postgres), from IOC_TEST_POSTGRES_DSN or started on
// first use: it stands for a department's database.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv("IOC_TEST_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return devservices.PostgresURL(&devservices.Server{Addr: sharedAddr(t, "postgres", "", devservices.StartPostgres)})
}

// PostgresDatabase creates a fresh database on the shared test PostgreSQL
// and returns its URL; it is dropped when the test ends.
func PostgresDatabase(t testing.TB) string {
	t.Helper()
	base := PostgresDSN(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("IOC_TEST_POSTGRES_DSN: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	name := databaseName()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create a test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u.Path = "/" + name
	return u.String()
}

// StartClickHouse starts a ClickHouse for this test alone, stopped when the
// test ends; the test may stop, kill or restart it.
func StartClickHouse(t testing.TB) *devservices.Server {
	t.Helper()
	return startDedicated(t, devservices.StartClickHouse, devservices.Options{})
}

// RestartClickHouse starts ClickHouse again on the same directory and port
// after s was stopped or killed.
func RestartClickHouse(t testing.TB, s *devservices.Server) *devservices.Server {
	t.Helper()
	return restart(t, devservices.StartClickHouse, s)
}

// MQTTURL returns the URL (tcp://host:port) of the shared test Mosquitto.
func MQTTURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("IOC_TEST_MQTT_URL"); u != "" {
		return u
	}
	return "tcp://" + sharedAddr(t, "mosquitto", "", devservices.StartMosquitto)
}

// StartMosquitto starts a Mosquitto for this test alone, stopped when the
// test ends; the test may stop, kill or restart it. Its URL is
// devservices.MQTTURL(s).
func StartMosquitto(t testing.TB) *devservices.Server {
	t.Helper()
	return startDedicated(t, devservices.StartMosquitto, devservices.Options{})
}

// RestartMosquitto starts Mosquitto again on the same directory and port
// after s was stopped or killed; persisted sessions and queued messages
// come back with it.
func RestartMosquitto(t testing.TB, s *devservices.Server) *devservices.Server {
	t.Helper()
	return restart(t, devservices.StartMosquitto, s)
}

func restart(t testing.TB, start startFunc, s *devservices.Server) *devservices.Server {
	t.Helper()
	var port int
	if _, err := fmt.Sscanf(s.Addr[strings.LastIndexByte(s.Addr, ':')+1:], "%d", &port); err != nil {
		t.Fatalf("parse port of %s: %v", s.Addr, err)
	}
	return startDedicated(t, start, devservices.Options{Dir: s.Dir, Port: port})
}

// StartRedis starts a Redis for this test alone.
func StartRedis(t testing.TB) *devservices.Server {
	t.Helper()
	return startDedicated(t, devservices.StartRedis, devservices.Options{})
}

// RestartRedis starts Redis again on the same port after s was stopped or
// killed; it comes back empty, as Redis without persistence does.
func RestartRedis(t testing.TB, s *devservices.Server) *devservices.Server {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Logf("stop redis before restarting it: %v", err)
	}
	return restart(t, devservices.StartRedis, s)
}

// StartHAProxy starts HAProxy in front of servers (the nodes' host:port)
// for this test alone, and returns it: its Addr is the one URL.
func StartHAProxy(t testing.TB, servers ...string) *devservices.Server {
	t.Helper()
	s, err := devservices.StartHAProxy(context.Background(), devservices.Options{Dir: t.TempDir()}, servers)
	if err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// Sentinels is a Redis master with one replica, watched by three
// sentinels under the master name Master, for this test alone.
type Sentinels struct {
	Master    string
	Primary   *devservices.Server // the master when started
	Replica   *devservices.Server
	Sentinels []*devservices.Server
}

// Addrs are the sentinels' addresses, as IOC_REDIS_SENTINEL_ADDRS takes them.
func (s *Sentinels) Addrs() []string {
	out := make([]string, len(s.Sentinels))
	for i, x := range s.Sentinels {
		out[i] = x.Addr
	}
	return out
}

// StartSentinels starts a master, its replica and three sentinels that
// call the master down after half a second without an answer (two must
// agree), and waits until every sentinel knows the replica and the other
// sentinels, so that a failover can happen from then on.
func StartSentinels(t testing.TB) *Sentinels {
	t.Helper()
	s := &Sentinels{Master: "ioc"}
	s.Primary = StartRedis(t)
	s.Replica = startDedicated(t, devservices.StartRedis, devservices.Options{ReplicaOf: s.Primary.Addr})
	timings := devservices.SentinelTimings{DownAfter: 500 * time.Millisecond, FailoverTimeout: 5 * time.Second}
	for range 3 {
		x, err := devservices.StartSentinel(context.Background(), devservices.Options{Dir: t.TempDir()}, s.Master, s.Primary.Addr, 2, timings)
		if err != nil {
			t.Fatalf("start a redis sentinel: %v", err)
		}
		t.Cleanup(func() { _ = x.Stop() })
		s.Sentinels = append(s.Sentinels, x)
	}
	for _, x := range s.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: x.Addr})
		Eventually(t, 30*time.Second, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			replicas, err := c.Replicas(ctx, s.Master).Result()
			if err != nil {
				return false, err.Error()
			}
			others, err := c.Sentinels(ctx, s.Master).Result()
			if err != nil {
				return false, err.Error()
			}
			return len(replicas) == 1 && len(others) == 2, fmt.Sprintf("sentinel %s knows %d replicas and %d other sentinels", x.Addr, len(replicas), len(others))
		})
		_ = c.Close()
	}
	return s
}

// Database returns a fresh database name on the shared ClickHouse, dropped
// when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	return DatabaseOn(t, ClickHouseAddr(t))
}

// databaseName is a fresh database name.
func databaseName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "test_" + hex.EncodeToString(b)
}

// DatabaseOn returns a fresh database name on the ClickHouse at addr,
// dropped when the test ends if the server still answers.
func DatabaseOn(t testing.TB, addr string) string {
	t.Helper()
	name := databaseName()
	t.Cleanup(func() {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Second})
		if err != nil {
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
	})
	return name
}

// TempDir returns a new directory that lives until Main returns, for what
// a whole test binary shares (a program built once for every test); a
// single test's files belong in t.TempDir.
func TempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("create temporary directory: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	dirs = append(dirs, dir)
	return dir, nil
}

type startFunc func(context.Context, devservices.Options) (*devservices.Server, error)

func sharedAddr(t testing.TB, name, env string, start startFunc) string {
	t.Helper()
	if addr := os.Getenv(env); addr != "" {
		return addr
	}
	mu.Lock()
	defer mu.Unlock()
	if s, ok := shared[name]; ok {
		return s.Addr
	}
	dir, err := os.MkdirTemp("", "ioc-test-"+name+"-")
	if err != nil {
		t.Fatalf("create data directory for %s: %v", name, err)
	}
	dirs = append(dirs, dir)
	s, err := start(context.Background(), devservices.Options{Dir: dir})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	shared[name] = s
	started = append(started, s)
	return s.Addr
}

func startDedicated(t testing.TB, start startFunc, opts devservices.Options) *devservices.Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start dedicated server: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// Store opens a fresh, migrated database on the shared ClickHouse, closed
// and dropped when the test ends.
func Store(t testing.TB) *chstore.Store {
	t.Helper()
	return StoreOn(t, Database(t))
}

// StoreOn opens the named database on the shared ClickHouse and migrates
// it; tests playing two nodes open the same database twice.
func StoreOn(t testing.TB, db string) *chstore.Store {
	t.Helper()
	return openMigrated(t, chstore.Config{Addr: ClickHouseAddr(t), Database: db})
}

// openMigrated opens a store, closed when the test ends, and migrates it.
func openMigrated(t testing.TB, cfg chstore.Config) *chstore.Store {
	t.Helper()
	ctx := context.Background()
	s, err := chstore.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}
