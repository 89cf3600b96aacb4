-- Cameras and sensors: their reports, rollups, registry and alarms.

-- Camera detections, one row per event; heartbeats are stored too (they keep
-- a camera online) but no rollup counts them.
CREATE TABLE IF NOT EXISTS {db}.camera_events (
    event_id    String,
    camera_id   String,
    type        String,
    severity    Enum8('info' = 1, 'warning' = 2, 'critical' = 3),
    hierarchy   String,
    area_code   String,
    lat         Float64,
    lon         Float64,
    occurred_at DateTime('UTC'),
    attrs       String,
    ingested_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (hierarchy, area_code, occurred_at, event_id);

CREATE TABLE IF NOT EXISTS {db}.camera_kpi_minute (
    hierarchy String,
    area_code String,
    t         DateTime('UTC'),
    type      String,
    severity  Enum8('info' = 1, 'warning' = 2, 'critical' = 3),
    events    UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMMDD(t)
ORDER BY (hierarchy, area_code, t, type, severity);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.camera_kpi_minute_mv TO {db}.camera_kpi_minute AS
SELECT hierarchy, area_code, toStartOfMinute(occurred_at) AS t, type, severity, count() AS events
FROM {db}.camera_events
WHERE type != 'heartbeat'
GROUP BY hierarchy, area_code, t, type, severity;

CREATE TABLE IF NOT EXISTS {db}.camera_kpi_hour (
    hierarchy String,
    area_code String,
    t         DateTime('UTC'),
    type      String,
    severity  Enum8('info' = 1, 'warning' = 2, 'critical' = 3),
    events    UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(t)
ORDER BY (hierarchy, area_code, t, type, severity);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.camera_kpi_hour_mv TO {db}.camera_kpi_hour AS
SELECT hierarchy, area_code, toStartOfHour(occurred_at) AS t, type, severity, count() AS events
FROM {db}.camera_events
WHERE type != 'heartbeat'
GROUP BY hierarchy, area_code, t, type, severity;

-- Sensor readings in their kind's unit. alert_level and danger_level are the
-- site's own thresholds when the sensor reports them.
CREATE TABLE IF NOT EXISTS {db}.sensor_readings (
    event_id     String,
    sensor_id    String,
    kind         String,
    value        Float64,
    unit         String,
    alert_level  Nullable(Float64),
    danger_level Nullable(Float64),
    hierarchy    String,
    area_code    String,
    lat          Float64,
    lon          Float64,
    observed_at  DateTime('UTC'),
    ingested_at  DateTime('UTC')
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(observed_at)
ORDER BY (hierarchy, area_code, observed_at, event_id);

-- Maximum and mean need aggregate states: they do not sum.
CREATE TABLE IF NOT EXISTS {db}.sensor_kpi_minute (
    hierarchy String,
    area_code String,
    t         DateTime('UTC'),
    kind      String,
    value_max AggregateFunction(max, Float64),
    value_sum AggregateFunction(sum, Float64),
    readings  AggregateFunction(count)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(t)
ORDER BY (hierarchy, area_code, t, kind);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sensor_kpi_minute_mv TO {db}.sensor_kpi_minute AS
SELECT hierarchy, area_code, toStartOfMinute(observed_at) AS t, kind,
       maxState(value) AS value_max, sumState(value) AS value_sum, countState() AS readings
FROM {db}.sensor_readings
GROUP BY hierarchy, area_code, t, kind;

CREATE TABLE IF NOT EXISTS {db}.sensor_kpi_hour (
    hierarchy String,
    area_code String,
    t         DateTime('UTC'),
    kind      String,
    value_max AggregateFunction(max, Float64),
    value_sum AggregateFunction(sum, Float64),
    readings  AggregateFunction(count)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(t)
ORDER BY (hierarchy, area_code, t, kind);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sensor_kpi_hour_mv TO {db}.sensor_kpi_hour AS
SELECT hierarchy, area_code, toStartOfHour(observed_at) AS t, kind,
       maxState(value) AS value_max, sumState(value) AS value_sum, countState() AS readings
FROM {db}.sensor_readings
GROUP BY hierarchy, area_code, t, kind;

-- The latest reading of every sensor and kind, for maps.
CREATE TABLE IF NOT EXISTS {db}.sensor_latest (
    sensor_id String,
    kind      String,
    value     AggregateFunction(argMax, Float64, DateTime('UTC')),
    observed  AggregateFunction(max, DateTime('UTC'))
) ENGINE = AggregatingMergeTree
ORDER BY (sensor_id, kind);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sensor_latest_mv TO {db}.sensor_latest AS
SELECT sensor_id, kind, argMaxState(value, observed_at) AS value, maxState(observed_at) AS observed
FROM {db}.sensor_readings
GROUP BY sensor_id, kind;

-- When each device last reported, whatever it reported.
CREATE TABLE IF NOT EXISTS {db}.device_last_seen (
    device_id String,
    seen      DateTime('UTC')
) ENGINE = ReplacingMergeTree(seen)
ORDER BY device_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.camera_last_seen_mv TO {db}.device_last_seen AS
SELECT camera_id AS device_id, max(occurred_at) AS seen FROM {db}.camera_events GROUP BY camera_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sensor_last_seen_mv TO {db}.device_last_seen AS
SELECT sensor_id AS device_id, max(observed_at) AS seen FROM {db}.sensor_readings GROUP BY sensor_id;

-- The device registry: the row with the highest version wins. A device
-- registered by its first report gets version 1, so that a registration
-- through the API always wins over it.
CREATE TABLE IF NOT EXISTS {db}.devices (
    id              String,
    kind            Enum8('camera' = 1, 'sensor' = 2),
    name            String,
    lat             Float64,
    lon             Float64,
    hierarchy       String,
    area_code       String,
    channel_name    String,
    address         String,
    offline_after_s UInt32,
    source          String,
    updated_at      DateTime('UTC'),
    version         UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- Alarms: one row per change of an alarm; the highest version is its state.
-- The area never changes, so history by area reads a few granules.
CREATE TABLE IF NOT EXISTS {db}.alarms (
    alarm_id        String,
    rule_id         String,
    rule_name       String,
    rule_kind       String,
    device_id       String,
    device_kind     String,
    device_name     String,
    hierarchy       String,
    area_code       String,
    lat             Float64,
    lon             Float64,
    severity        Enum8('info' = 1, 'warning' = 2, 'critical' = 3),
    state           Enum8('open' = 1, 'acknowledged' = 2, 'resolved' = 3),
    message         String,
    value           Float64,
    threshold       Float64,
    opened_at       DateTime('UTC'),
    acknowledged_at Nullable(DateTime('UTC')),
    acknowledged_by String,
    ack_note        String,
    resolved_at     Nullable(DateTime('UTC')),
    resolved_by     String,
    resolve_note    String,
    resolution      String,
    updated_at      DateTime('UTC'),
    version         UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(opened_at)
ORDER BY (hierarchy, area_code, alarm_id);

-- Alarm rules made through the API (rules from the file live in the file).
CREATE TABLE IF NOT EXISTS {db}.alarm_rules (
    rule_id    String,
    body       String,
    deleted    UInt8,
    updated_at DateTime('UTC'),
    updated_by String,
    version    UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY rule_id;
