-- Raw dossier events, one row per event. The batch writer never inserts an
-- event_id twice; ReplacingMergeTree is the safety net that folds a copy that
-- slipped through when parts merge. The sort key serves both area/time
-- drill-downs and the writer's "already stored?" lookup, which binds the
-- batch's areas, times and ids so that it reads a few granules only.
CREATE TABLE IF NOT EXISTS {db}.dossier_events (
    event_id       String,
    dossier_id     String,
    procedure_code String,
    sector         String,
    hierarchy      String,
    area_code      String,
    channel        Enum8('online' = 1, 'in_person' = 2, 'postal' = 3),
    status         Enum8('received' = 1, 'processing' = 2, 'supplement_requested' = 3, 'resolved' = 4, 'returned' = 5, 'rejected' = 6, 'withdrawn' = 7),
    occurred_at    DateTime('UTC'),
    received_at    Nullable(DateTime('UTC')),
    due_at         Nullable(DateTime('UTC')),
    online_level   Enum8('' = 0, 'full' = 1, 'partial' = 2),
    digitized      UInt8,
    e_result       UInt8,
    paid_online    UInt8,
    reused_data    UInt8,
    ingested_at    DateTime('UTC')
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (hierarchy, area_code, occurred_at, event_id);

-- Latest state of every dossier: the row with the highest version wins, and
-- version orders by event time, then by lifecycle step for events in the
-- same second. Readers take argMax(…, version) rather than trusting merges.
CREATE TABLE IF NOT EXISTS {db}.dossier_state (
    hierarchy   String,
    area_code   String,
    dossier_id  String,
    status      Enum8('received' = 1, 'processing' = 2, 'supplement_requested' = 3, 'resolved' = 4, 'returned' = 5, 'rejected' = 6, 'withdrawn' = 7),
    due_at      Nullable(DateTime('UTC')),
    occurred_at DateTime('UTC'),
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (hierarchy, area_code, dossier_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dossier_state_mv TO {db}.dossier_state AS
SELECT hierarchy, area_code, dossier_id, status, due_at, occurred_at,
       toUInt64(occurred_at) * 16 + toUInt64(CAST(status AS Int8)) AS version
FROM {db}.dossier_events;

-- Rollups: counts per unit per minute and per hour. Live windows read whole
-- hours from the hour table and the partial first hour from the minute table.
CREATE TABLE IF NOT EXISTS {db}.dossier_kpi_minute (
    hierarchy        String,
    area_code        String,
    t                DateTime('UTC'),
    received         UInt64,
    received_online  UInt64,
    resolved         UInt64,
    resolved_on_time UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMMDD(t)
ORDER BY (hierarchy, area_code, t);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dossier_kpi_minute_mv TO {db}.dossier_kpi_minute AS
SELECT hierarchy, area_code, toStartOfMinute(occurred_at) AS t,
       countIf(status = 'received') AS received,
       countIf(status = 'received' AND channel = 'online') AS received_online,
       countIf(status = 'resolved') AS resolved,
       countIf(status = 'resolved' AND ifNull(occurred_at <= due_at, 0)) AS resolved_on_time
FROM {db}.dossier_events
GROUP BY hierarchy, area_code, t;

CREATE TABLE IF NOT EXISTS {db}.dossier_kpi_hour (
    hierarchy        String,
    area_code        String,
    t                DateTime('UTC'),
    received         UInt64,
    received_online  UInt64,
    resolved         UInt64,
    resolved_on_time UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(t)
ORDER BY (hierarchy, area_code, t);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dossier_kpi_hour_mv TO {db}.dossier_kpi_hour AS
SELECT hierarchy, area_code, toStartOfHour(occurred_at) AS t,
       countIf(status = 'received') AS received,
       countIf(status = 'received' AND channel = 'online') AS received_online,
       countIf(status = 'resolved') AS resolved,
       countIf(status = 'resolved' AND ifNull(occurred_at <= due_at, 0)) AS resolved_on_time
FROM {db}.dossier_events
GROUP BY hierarchy, area_code, t;
