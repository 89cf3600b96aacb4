package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/openioc/ioc/api"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/config"
	"github.com/openioc/ioc/internal/redisconn"
	"github.com/openioc/ioc/simulator"
	"github.com/openioc/ioc/wall"
)

type serveConfig struct {
	HTTPAddr string
	// TLSCert and TLSKey are PEM files; set, the node serves HTTPS.
	TLSCert, TLSKey string
	// RedirectAddr, with TLS, answers plain HTTP there with a redirect to
	// HTTPS; empty: no plain HTTP at all.
	RedirectAddr    string
	CORSOrigins     []string
	AccessLog       string
	ClickHouse      chstore.Config
	Redis           redisconn.Config
	RedisPrefix     string
	Hierarchy       string
	GeoDir          string
	Timezone        string
	Simulate        float64
	SimulateArea    string
	AdminToken      string
	JWTSecret       string
	MaxFuture       time.Duration
	BatchRows       int
	BatchAge        time.Duration
	QueueRows       int
	HistoryEvents   int
	DebugAddr       string
	MaxRecords      int
	BodyLimit       int
	RefreshInterval time.Duration
	LiveDebounce    time.Duration
	StartupTimeout  time.Duration
	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string

	MQTT            ingest.MQTTConfig
	RulesFile       string
	DashboardsDir   string
	DatasetsDir     string
	CameraTimeout   time.Duration
	SensorTimeout   time.Duration
	AlarmInterval   time.Duration
	SimulateDevices bool
	// SimulateHistoryDays is how many days of history the simulator writes
	// before it starts, into a database without dossier events; 0 is none.
	SimulateHistoryDays int
	SimulatePace        simulator.Pace // how the live simulators move: PaceField (the default) or PaceDemo
	QueryTimeout        time.Duration
	LeaseTTL            time.Duration
	VerifyInterval      time.Duration
	FlushTimeout        time.Duration
	PublicURL           string
	TrustedProxies      []netip.Prefix

	// now is the simulators' clock and the end of their history; nil is
	// time.Now. Tests set it.
	now func() time.Time

	// Hostile and careless clients.
	AllowedOrigins        []string
	WSMaxPerToken         int
	WSMaxPerAddress       int
	AuthFailuresPerMinute int

	// wallDocs are the wall's documents (screens, walls, playlists,
	// dashboards); nil: none, kept in memory. Set by tests until the
	// dashboards store serves them.
	wallDocs wall.Documents
}

func parseServeConfig(args []string) (serveConfig, error) {
	var c serveConfig
	f := config.New("iocd serve")
	f.SetOutput(flagOutput)
	httpAddr := f.String("http-addr", "IOC_HTTP_ADDR", ":8080", "HTTP listen address (HTTPS with IOC_TLS_CERT and IOC_TLS_KEY)")
	tlsCert := f.String("tls-cert", "IOC_TLS_CERT", "", "PEM certificate (chain) to serve HTTPS with; empty: plain HTTP, e.g. behind a TLS-terminating proxy")
	tlsKey := f.String("tls-key", "IOC_TLS_KEY", "", "PEM private key of IOC_TLS_CERT")
	redirectAddr := f.String("http-redirect-addr", "IOC_HTTP_REDIRECT_ADDR", "", "with TLS, also listen here for plain HTTP and redirect it to HTTPS (e.g. :80); empty: plain HTTP is not served")
	corsOrigins := f.String("cors-origins", "IOC_CORS_ORIGINS", "", "comma-separated origins (https://host[:port]) whose pages may call the API from a browser, or *; empty: none")
	debugAddr := f.String("debug-addr", "IOC_DEBUG_ADDR", "", "address to serve Go's profiles on (/debug/pprof/), apart from the API, e.g. 127.0.0.1:6060; empty: off")
	accessLog := f.String("access-log", "IOC_ACCESS_LOG", "info", "level of the one log line per request (component http): info, debug or off")
	clickhouse := clickHouseFlags(f)
	redisConn := redisconn.Flags(f, "Redis address; empty (and no sentinels) runs a single node with an in-process bus")
	redisPrefix := f.String("redis-prefix", "IOC_REDIS_PREFIX", "ioc:", "prefix of the Redis channels and keys; deployments sharing one Redis need different ones")
	leaseTTL := f.Duration("lease-ttl", "IOC_LEASE_TTL", 3*time.Second, "how long a node's lease (on a table's writes, on publishing figures) outlives the node; renewed every third of it")
	hierarchy := f.String("hierarchy", "IOC_HIERARCHY", "vn-2025", "current hierarchy of administrative units")
	geoDir := f.String("geo-dir", "IOC_GEO_DIR", "", "directory of hierarchies installed with iocd import-units; empty: the built-in ones only")
	tz := timezoneFlag(f)
	simulate := f.Float("simulate", "IOC_SIMULATE", 0, "the built-in simulator's scale: at field pace the volume (20: about 2,500 dossiers a day, in proportion, at most 25,000), at demo pace events per second at the office-hours peak; 0 is off")
	simPace := f.String("simulate-pace", "IOC_SIMULATE_PACE", string(simulator.PaceField), "with IOC_SIMULATE, field (the simulated history carried on in real time at its volume, lifecycles over days and weeks) or demo (lifecycles in minutes at IOC_SIMULATE events a second, many times the history's volume: for demos of whole lifecycles and load tests)")
	simArea := f.String("simulate-area", "IOC_SIMULATE_AREA", "79", "province the simulator files dossiers in")
	admin := f.Secret("admin-token", "IOC_ADMIN_TOKEN", "bootstrap bearer token with every right (at least 16 characters)")
	secret := f.Secret("jwt-secret", "IOC_JWT_SECRET", "secret that signs and checks user tokens (HS256)")
	maxFuture := f.Duration("ingest-max-future", "IOC_INGEST_MAX_FUTURE", 5*time.Minute, "how far ahead of the server's clock a record may be stamped")
	batchRows := f.Int("ingest-batch-rows", "IOC_INGEST_BATCH_ROWS", 5000, "rows that trigger a flush to ClickHouse")
	batchAge := f.Duration("ingest-batch-age", "IOC_INGEST_BATCH_AGE", 200*time.Millisecond, "longest a record waits for its flush")
	flushTimeout := f.Duration("ingest-flush-timeout", "IOC_INGEST_FLUSH_TIMEOUT", 15*time.Second, "longest the storing of a batch may take, and again the writing of its rollups; a batch another node began is taken for abandoned after twice this and two lease lifetimes")
	queueRows := f.Int("ingest-queue-rows", "IOC_INGEST_QUEUE_ROWS", 100000, "rows waiting for a flush beyond which ingest answers 503")
	historyEvents := f.Int("ingest-history-events", "IOC_INGEST_HISTORY_EVENTS", ingest.DefaultHistoryEvents,
		"stored dossier events the writer remembers so as not to look them up again (about 400 bytes each)")
	maxRecords := f.Int("ingest-max-records", "IOC_INGEST_MAX_RECORDS", 50000, "most records one ingest request may hold (413 beyond)")
	bodyLimit := f.Int("http-body-limit", "IOC_HTTP_BODY_LIMIT", 16<<20, "largest request body in bytes, also once its Content-Encoding is undone (413 beyond)")
	refresh := f.Duration("refresh-interval", "IOC_REFRESH_INTERVAL", 15*time.Second, "how often every unit's figures are read again (windows slide, due dates pass, and the figures new records advanced are checked)")
	debounce := f.Duration("live-debounce", "IOC_LIVE_DEBOUNCE", time.Second, "shortest time between two publications of the units new records changed")
	startup := f.Duration("startup-timeout", "IOC_STARTUP_TIMEOUT", 60*time.Second, "how long to wait for ClickHouse and Redis at start")
	shutdown := f.Duration("shutdown-timeout", "IOC_SHUTDOWN_TIMEOUT", 30*time.Second, "how long to wait for requests and websockets at stop")
	logLevel := f.String("log-level", "IOC_LOG_LEVEL", "info", "debug, info, warn or error")
	logFormat := f.String("log-format", "IOC_LOG_FORMAT", "text", "text or json")
	mqttURL := f.String("mqtt-url", "IOC_MQTT_URL", "", "MQTT broker to take sensor readings and camera events from, e.g. tcp://127.0.0.1:1883; empty is off")
	mqttClient := f.String("mqtt-client-id", "IOC_MQTT_CLIENT_ID", "", "MQTT client id; the broker keeps unacknowledged messages under it, so keep it stable (default iocd-<hostname>)")
	mqttUser := f.String("mqtt-username", "IOC_MQTT_USERNAME", "", "MQTT user name")
	mqttPass := f.Secret("mqtt-password", "IOC_MQTT_PASSWORD", "MQTT password")
	mqttShare := f.String("mqtt-shared-group", "IOC_MQTT_SHARED_GROUP", "", "subscribe as $share/<group>/… so that several nodes split the stream")
	mqttPayload := f.Int("mqtt-max-payload", "IOC_MQTT_MAX_PAYLOAD", 256<<10, "largest MQTT message in bytes; larger ones are refused")
	rules := f.String("rules-file", "IOC_RULES_FILE", "", "JSON file of alarm rules ({\"rules\": […]}); empty: the default rules")
	datasetsDir := f.String("datasets-dir", "IOC_DATASETS_DIR", "", "folder of dataset definitions (*.json, *.yaml) stored at start when they changed; empty: none")
	dashboardsDir := f.String("dashboards-dir", "IOC_DASHBOARDS_DIR", "", "folder of dashboards, playlists, walls and screens (*.json: documents or exports) stored at start when they changed; empty: none (a store without dashboards gets the defaults for province 79)")
	camTimeout := f.Duration("camera-offline-after", "IOC_CAMERA_OFFLINE_AFTER", 3*time.Minute, "a camera silent this long counts as offline")
	sensorTimeout := f.Duration("sensor-offline-after", "IOC_SENSOR_OFFLINE_AFTER", 5*time.Minute, "a sensor silent this long counts as offline")
	alarmInterval := f.Duration("alarm-interval", "IOC_ALARM_INTERVAL", 5*time.Second, "how often every alarm rule is evaluated (also after stored batches, at most once a second)")
	queryTimeout := f.Duration("query-timeout", "IOC_QUERY_TIMEOUT", 10*time.Second, "longest ClickHouse may work on one query of a series, ranking or scoreboard (504 beyond)")
	verifyEvery := f.Duration("verify-interval", "IOC_VERIFY_INTERVAL", time.Hour, "how often the last 48 hours of rollups are checked against the stored records (metric ioc_verify_differences); 0 is off")
	simDevices := f.Int("simulate-devices", "IOC_SIMULATE_DEVICES", 1, "with IOC_SIMULATE, also simulate cameras and sensors (1) or not (0)")
	simHistory := f.Int("simulate-history-days", "IOC_SIMULATE_HISTORY_DAYS", 90, "with IOC_SIMULATE, days of history (dossiers, feedback, readings) written before the simulator starts when the database holds no dossier event yet (the node is ready once it is written: about half a minute for 90 days at IOC_SIMULATE=20 on two cores); 0 is none")
	publicURL := f.String("public-url", "IOC_PUBLIC_URL", "", "base URL clients reach the server at, e.g. https://ioc.example.gov.vn; every absolute link (OGC, TileJSON) is built from it and keeps the caller's access_token. Empty: links use the request's Host and carry no token")
	proxies := f.String("trusted-proxies", "IOC_TRUSTED_PROXIES", "", "comma-separated CIDRs or addresses of the reverse proxies whose X-Forwarded-Host and X-Forwarded-Proto are believed; empty: none")
	origins := f.String("allowed-origins", "IOC_ALLOWED_ORIGINS", "", "web origins besides the server's own whose pages may open the live websocket, comma-separated (https://wall.example.gov.vn); * for any")
	wsPerToken := f.Int("ws-max-per-token", "IOC_WS_MAX_PER_TOKEN", 50, "live websocket connections one token may hold at once on a node")
	wsPerAddress := f.Int("ws-max-per-address", "IOC_WS_MAX_PER_ADDRESS", 200, "live websocket connections from one client address at once on a node (the socket's address: behind a proxy, all of its clients)")
	authFailures := f.Int("auth-failures-per-minute", "IOC_AUTH_FAILURES_PER_MINUTE", 60, "failed authentications a client address may make per minute before 429")
	if err := f.Parse(args); err != nil {
		return c, err
	}
	c = serveConfig{
		HTTPAddr: *httpAddr, TLSCert: *tlsCert, TLSKey: *tlsKey, RedirectAddr: *redirectAddr,
		CORSOrigins: splitList(*corsOrigins), AccessLog: *accessLog, DebugAddr: *debugAddr,
		ClickHouse: clickhouse(*tz),
		Redis:      redisConn(), RedisPrefix: *redisPrefix,
		Hierarchy: *hierarchy, GeoDir: *geoDir, Timezone: *tz, Simulate: *simulate, SimulateArea: *simArea,
		AdminToken: *admin, JWTSecret: *secret, MaxFuture: *maxFuture,
		BatchRows: *batchRows, BatchAge: *batchAge, QueueRows: *queueRows, HistoryEvents: *historyEvents, MaxRecords: *maxRecords, BodyLimit: *bodyLimit,
		RefreshInterval: *refresh, LiveDebounce: *debounce, StartupTimeout: *startup, ShutdownTimeout: *shutdown,
		LogLevel: *logLevel, LogFormat: *logFormat,
		MQTT: ingest.MQTTConfig{URL: *mqttURL, ClientID: *mqttClient, Username: *mqttUser, Password: *mqttPass,
			SharedGroup: *mqttShare, MaxPayload: *mqttPayload},
		RulesFile: *rules, DashboardsDir: *dashboardsDir, DatasetsDir: *datasetsDir, CameraTimeout: *camTimeout, SensorTimeout: *sensorTimeout, AlarmInterval: *alarmInterval,
		SimulateDevices: *simDevices != 0, SimulateHistoryDays: *simHistory, QueryTimeout: *queryTimeout, LeaseTTL: *leaseTTL, VerifyInterval: *verifyEvery, FlushTimeout: *flushTimeout,
	}
	if *publicURL != "" {
		u, err := api.ParsePublicURL(*publicURL)
		if err != nil {
			return c, fmt.Errorf("IOC_PUBLIC_URL: %w", err)
		}
		c.PublicURL = u
	}
	trusted, err := api.ParseTrustedProxies(*proxies)
	if err != nil {
		return c, fmt.Errorf("IOC_TRUSTED_PROXIES: %w", err)
	}
	c.TrustedProxies = trusted
	for _, o := range strings.Split(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	c.WSMaxPerToken, c.WSMaxPerAddress, c.AuthFailuresPerMinute = *wsPerToken, *wsPerAddress, *authFailures
	if c.WSMaxPerToken < 1 || c.WSMaxPerAddress < 1 || c.AuthFailuresPerMinute < 1 {
		return c, errors.New("IOC_WS_MAX_PER_TOKEN, IOC_WS_MAX_PER_ADDRESS and IOC_AUTH_FAILURES_PER_MINUTE must be at least 1")
	}
	pace := strings.TrimSpace(*simPace)
	if pace == "" {
		pace = string(simulator.PaceField)
	}
	if c.SimulatePace, err = simulator.ParsePace(pace); err != nil {
		return c, fmt.Errorf("IOC_SIMULATE_PACE: %w", err)
	}
	if c.SimulateHistoryDays < 0 || c.SimulateHistoryDays > simulator.MaxHistoryDays {
		return c, fmt.Errorf("IOC_SIMULATE_HISTORY_DAYS=%d must be between 0 (no history) and %d", c.SimulateHistoryDays, simulator.MaxHistoryDays)
	}
	if c.AdminToken == "" && c.JWTSecret == "" {
		return c, errors.New("set IOC_ADMIN_TOKEN or IOC_JWT_SECRET (or both): without them no client can authenticate")
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return c, errors.New("IOC_ADMIN_TOKEN must be at least 16 characters")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, errors.New("set both IOC_TLS_CERT and IOC_TLS_KEY to serve HTTPS, or neither to serve plain HTTP")
	}
	if c.RedirectAddr != "" && c.TLSCert == "" {
		return c, errors.New("IOC_HTTP_REDIRECT_ADDR redirects plain HTTP to HTTPS: it needs IOC_TLS_CERT and IOC_TLS_KEY")
	}
	return c, nil
}

// splitList reads a comma-separated setting.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// clickHouseFlags defines the settings that say where ClickHouse is, for
// every command that opens it; the returned function gives the store's
// configuration once the flags are parsed, with the zone of local days.
func clickHouseFlags(f *config.FlagSet) func(zone string) chstore.Config {
	addr := f.String("clickhouse-addr", "IOC_CLICKHOUSE_ADDR", "127.0.0.1:9000", "ClickHouse native protocol address; on a cluster, several, comma-separated, tried in order")
	db := f.String("clickhouse-database", "IOC_CLICKHOUSE_DATABASE", "ioc", "ClickHouse database (created if missing)")
	user := f.String("clickhouse-user", "IOC_CLICKHOUSE_USER", "default", "ClickHouse user")
	pass := f.Secret("clickhouse-password", "IOC_CLICKHOUSE_PASSWORD", "ClickHouse password")
	cluster := f.String("clickhouse-cluster", "IOC_CLICKHOUSE_CLUSTER", "", "ClickHouse cluster (of remote_servers) to replicate and shard the tables over; empty: one server")
	return func(zone string) chstore.Config {
		return chstore.Config{Addr: *addr, Database: *db, Username: *user, Password: *pass, TimeZone: zone, Cluster: *cluster}
	}
}

// timezoneFlag defines IOC_TIMEZONE.
func timezoneFlag(f *config.FlagSet) *string {
	return f.String("timezone", "IOC_TIMEZONE", "Asia/Ho_Chi_Minh", "time zone of the today window, of local days and months (the rollups are cut in it) and of displayed times")
}

// loggerFlags defines -log-level and -log-format for a command other than
// serve; what it returns makes the command's logger, writing to w, once
// the flags are parsed.
func loggerFlags(f *config.FlagSet) func(w io.Writer) *slog.Logger {
	level := f.String("log-level", "IOC_LOG_LEVEL", "info", "debug, info, warn or error")
	format := f.String("log-format", "IOC_LOG_FORMAT", "text", "text or json")
	return func(w io.Writer) *slog.Logger { return newLoggerTo(w, *level, *format) }
}
