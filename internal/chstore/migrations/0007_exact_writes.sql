-- Exact figures whatever fails. A materialized view is not atomic with the
-- insert into its source: a failed insert could leave some rollups written
-- and others not, and a retried batch then counted twice. From here on no
-- additive figure comes from a view. The writer journals each batch, inserts
-- its raw rows as one part (one partition per insert), and writes the
-- rollups itself, each part with a marker row that names the batch, so that
-- after any failure it is known which parts landed; the missing ones are
-- written again from the batch's stored rows. See ingest's package doc.
-- Statements are idempotent; copies run once (guarded by an empty target).

-- The journal: one row when a batch begins, one when it is done; the
-- highest state wins. t_min and t_max bound the batch's record times, so
-- that its rows are found again without a scan.
CREATE TABLE IF NOT EXISTS {db}.ingest_journal (
    kind       String,
    batch_id   UInt64,
    state      UInt8,
    node       String,
    t_min      DateTime('UTC'),
    t_max      DateTime('UTC'),
    created_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(state)
PARTITION BY toYYYYMMDD(created_at)
ORDER BY (kind, batch_id);

-- The nodes writing batches: each says it runs every few seconds and that
-- it stopped when it does, so that a repair run beside a single node (whose
-- leases live in its own process) can tell whether ingest is paused.
CREATE TABLE IF NOT EXISTS {db}.ingest_nodes (
    node    String,
    running UInt8,
    seen    DateTime('UTC')
) ENGINE = ReplacingMergeTree(seen)
ORDER BY node;

-- Every dossier event, with what it changed in its dossier's figures
-- (delta.*), sorted by dossier: the writer reads a batch's histories from
-- it, so the duplicate check and the derivation read the table that is
-- written first, and atomically. Partitioned by the time of the insert, so
-- that a batch (whose rows share ingested_at) is always one part.
CREATE TABLE IF NOT EXISTS {db}.dossier_history (
    event_id             String,
    dossier_id           String,
    procedure_code       String,
    sector               String,
    hierarchy            String,
    area_code            String,
    channel              Enum8('online' = 1, 'in_person' = 2, 'postal' = 3),
    status               Enum8('received' = 1, 'processing' = 2, 'supplement_requested' = 3, 'resolved' = 4, 'returned' = 5, 'rejected' = 6, 'withdrawn' = 7),
    occurred_at          DateTime('UTC'),
    received_at          Nullable(DateTime('UTC')),
    due_at               Nullable(DateTime('UTC')),
    online_level         Enum8('' = 0, 'full' = 1, 'partial' = 2),
    digitized            UInt8,
    e_result             UInt8,
    paid_online          UInt8,
    reused_data          UInt8,
    fee_required         UInt8,
    recorded_hierarchy   String,
    recorded_area_code   String,
    approximate          UInt8,
    lat                  Nullable(Float64),
    lon                  Nullable(Float64),
    supersedes           String,
    batch_id             UInt64,
    ingested_at          DateTime('UTC'),
    `delta.t`                  Array(DateTime('UTC')),
    `delta.area_code`          Array(String),
    `delta.sector`             Array(String),
    `delta.procedure_code`     Array(String),
    `delta.channel`            Array(String),
    `delta.online_level`       Array(String),
    `delta.received`           Array(Int8),
    `delta.received_online`    Array(Int8),
    `delta.digitized`          Array(Int8),
    `delta.reused`             Array(Int8),
    `delta.fee_bearing`        Array(Int8),
    `delta.paid_online`        Array(Int8),
    `delta.resolved`           Array(Int8),
    `delta.on_time`            Array(Int8),
    `delta.timed`              Array(Int8),
    `delta.resolution_seconds` Array(Int64),
    `delta.e_result`           Array(Int8),
    `delta.open`               Array(Int8),
    `delta.late_open`          Array(Int8),
    `delta.approximate`        Array(Int8)
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (hierarchy, dossier_id, event_id)
SETTINGS index_granularity = 1024;

-- The views on dossier_events go: the writer writes the rollups.
DROP TABLE IF EXISTS {db}.dossier_state_mv;
DROP TABLE IF EXISTS {db}.dossier_timeline_mv;
DROP TABLE IF EXISTS {db}.dossier_flow_minute_mv;
DROP TABLE IF EXISTS {db}.dossier_flow_hour_mv;
DROP TABLE IF EXISTS {db}.dossier_flow_day_mv;
DROP TABLE IF EXISTS {db}.dossier_flow_month_mv;
DROP TABLE IF EXISTS {db}.dossier_flow_day_by_mv;

-- The events stored so far, with the changes they carried (which the
-- rollups already hold).
INSERT INTO {db}.dossier_history (event_id, dossier_id, procedure_code, sector, hierarchy, area_code, channel, status,
    occurred_at, received_at, due_at, online_level, digitized, e_result, paid_online, reused_data, fee_required,
    recorded_hierarchy, recorded_area_code, approximate, lat, lon, supersedes, batch_id, ingested_at,
    `delta.t`, `delta.area_code`, `delta.sector`, `delta.procedure_code`, `delta.channel`, `delta.online_level`,
    `delta.received`, `delta.received_online`, `delta.digitized`, `delta.reused`, `delta.fee_bearing`, `delta.paid_online`,
    `delta.resolved`, `delta.on_time`, `delta.timed`, `delta.resolution_seconds`, `delta.e_result`,
    `delta.open`, `delta.late_open`, `delta.approximate`)
SELECT event_id, dossier_id, procedure_code, sector, hierarchy, area_code, channel, status,
    occurred_at, received_at, due_at, online_level, digitized, e_result, paid_online, reused_data, fee_required,
    recorded_hierarchy, recorded_area_code, approximate, lat, lon, '', 0, ingested_at,
    `delta.t`, `delta.area_code`, `delta.sector`, `delta.procedure_code`, `delta.channel`, `delta.online_level`,
    `delta.received`, `delta.received_online`, `delta.digitized`, `delta.reused`, `delta.fee_bearing`, `delta.paid_online`,
    `delta.resolved`, `delta.on_time`, `delta.timed`, `delta.resolution_seconds`, `delta.e_result`,
    `delta.open`, `delta.late_open`, `delta.approximate`
FROM {db}.dossier_events
WHERE (SELECT count() FROM {db}.dossier_history) = 0;

-- Camera events and sensor readings name their batch, so that a batch's
-- rows are found again.
ALTER TABLE {db}.camera_events ADD COLUMN batch_id UInt64 DEFAULT 0;
ALTER TABLE {db}.sensor_readings ADD COLUMN batch_id UInt64 DEFAULT 0;

-- Camera counts: the writer writes them, and a correction is a signed row.
DROP TABLE IF EXISTS {db}.camera_kpi_minute_mv;
DROP TABLE IF EXISTS {db}.camera_kpi_hour_mv;
ALTER TABLE {db}.camera_kpi_minute MODIFY COLUMN events Int64;
ALTER TABLE {db}.camera_kpi_hour MODIFY COLUMN events Int64;

-- Sensor statistics. Sums and counts are additive: the writer writes them,
-- and a correction is a signed row. Maxima do not add, but taking one twice
-- changes nothing, so views on the readings keep them; a batch whose views
-- may have failed is simply derived again.
CREATE TABLE IF NOT EXISTS {db}.sensor_stat_minute (
    hierarchy String,
    area_code String,
    t         DateTime('UTC'),
    kind      String,
    value_sum Float64,
    readings  Int64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMMDD(t)
ORDER BY (hierarchy, area_code, t, kind);

CREATE TABLE IF NOT EXISTS {db}.sensor_stat_hour (
    hierarchy String,
    area_code String,
    t         DateTime('UTC'),
    kind      String,
    value_sum Float64,
    readings  Int64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(t)
ORDER BY (hierarchy, area_code, t, kind);

CREATE TABLE IF NOT EXISTS {db}.sensor_max_minute (
    hierarchy String,
    area_code String,
    t         DateTime('UTC'),
    kind      String,
    value_max AggregateFunction(max, Float64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(t)
ORDER BY (hierarchy, area_code, t, kind);

CREATE TABLE IF NOT EXISTS {db}.sensor_max_hour (
    hierarchy String,
    area_code String,
    t         DateTime('UTC'),
    kind      String,
    value_max AggregateFunction(max, Float64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(t)
ORDER BY (hierarchy, area_code, t, kind);

DROP TABLE IF EXISTS {db}.sensor_kpi_minute_mv;
DROP TABLE IF EXISTS {db}.sensor_kpi_hour_mv;

INSERT INTO {db}.sensor_stat_minute (hierarchy, area_code, t, kind, value_sum, readings)
SELECT hierarchy, area_code, t, kind, sumMerge(value_sum), toInt64(countMerge(readings))
FROM {db}.sensor_kpi_minute
WHERE (SELECT count() FROM {db}.sensor_stat_minute) = 0
GROUP BY hierarchy, area_code, t, kind;

INSERT INTO {db}.sensor_stat_hour (hierarchy, area_code, t, kind, value_sum, readings)
SELECT hierarchy, area_code, t, kind, sumMerge(value_sum), toInt64(countMerge(readings))
FROM {db}.sensor_kpi_hour
WHERE (SELECT count() FROM {db}.sensor_stat_hour) = 0
GROUP BY hierarchy, area_code, t, kind;

INSERT INTO {db}.sensor_max_minute (hierarchy, area_code, t, kind, value_max)
SELECT hierarchy, area_code, t, kind, maxState(m)
FROM (SELECT hierarchy, area_code, t, kind, maxMerge(value_max) AS m FROM {db}.sensor_kpi_minute GROUP BY hierarchy, area_code, t, kind)
WHERE (SELECT count() FROM {db}.sensor_max_minute) = 0
GROUP BY hierarchy, area_code, t, kind;

INSERT INTO {db}.sensor_max_hour (hierarchy, area_code, t, kind, value_max)
SELECT hierarchy, area_code, t, kind, maxState(m)
FROM (SELECT hierarchy, area_code, t, kind, maxMerge(value_max) AS m FROM {db}.sensor_kpi_hour GROUP BY hierarchy, area_code, t, kind)
WHERE (SELECT count() FROM {db}.sensor_max_hour) = 0
GROUP BY hierarchy, area_code, t, kind;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sensor_max_minute_mv TO {db}.sensor_max_minute AS
SELECT hierarchy, area_code, toStartOfMinute(observed_at) AS t, kind, maxState(value) AS value_max
FROM {db}.sensor_readings
GROUP BY hierarchy, area_code, t, kind;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sensor_max_hour_mv TO {db}.sensor_max_hour AS
SELECT hierarchy, area_code, toStartOfHour(observed_at) AS t, kind, maxState(value) AS value_max
FROM {db}.sensor_readings
GROUP BY hierarchy, area_code, t, kind;
