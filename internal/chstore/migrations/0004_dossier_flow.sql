-- Dossier flow: what each stored event changed in its dossier's figures.
-- A dossier's contributions (at receipt, at closure, when it turns late) are
-- derived from its whole history by the writer whenever it gains an event;
-- the change is stored on the event row itself, in the delta.* arrays, so
-- that the event and its effect on the figures land in one insert. The
-- rollups below sum the changes with ARRAY JOIN.
-- One column per ALTER, so that each is applied or skipped on its own.
ALTER TABLE {db}.dossier_events ADD COLUMN fee_required UInt8 DEFAULT 0;
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.t` Array(DateTime('UTC'));
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.area_code` Array(String);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.sector` Array(String);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.procedure_code` Array(String);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.channel` Array(String);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.online_level` Array(String);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.received` Array(Int8);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.received_online` Array(Int8);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.digitized` Array(Int8);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.reused` Array(Int8);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.fee_bearing` Array(Int8);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.paid_online` Array(Int8);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.resolved` Array(Int8);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.on_time` Array(Int8);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.timed` Array(Int8);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.resolution_seconds` Array(Int64);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.e_result` Array(Int8);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.open` Array(Int8);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.late_open` Array(Int8);
ALTER TABLE {db}.dossier_events ADD COLUMN `delta.approximate` Array(Int8);

-- Every event of a dossier together, for the writer to derive from: sorted
-- by dossier so that a batch's lookup reads a few small granules.
CREATE TABLE IF NOT EXISTS {db}.dossier_timeline (
    hierarchy      String,
    dossier_id     String,
    occurred_at    DateTime('UTC'),
    event_id       String,
    area_code      String,
    status         String,
    received_at    Nullable(DateTime('UTC')),
    due_at         Nullable(DateTime('UTC')),
    channel        String,
    sector         String,
    procedure_code String,
    online_level   String,
    digitized      UInt8,
    e_result       UInt8,
    paid_online    UInt8,
    reused_data    UInt8,
    fee_required   UInt8,
    approximate    UInt8
) ENGINE = MergeTree
ORDER BY (hierarchy, dossier_id, occurred_at, event_id)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dossier_timeline_mv TO {db}.dossier_timeline AS
SELECT hierarchy, dossier_id, occurred_at, event_id, area_code, toString(status) AS status, received_at, due_at,
       toString(channel) AS channel, sector, procedure_code, toString(online_level) AS online_level,
       digitized, e_result, paid_online, reused_data, fee_required, approximate
FROM {db}.dossier_events;

-- The rollups. Sums of signed changes: a row that sums to nothing vanishes
-- when parts merge. Days and months are local to the deployment's time zone
-- at the time the rollup was created (see dossier_flow_zone).
-- whole minutes, kept a few days for the live windows' ragged edges
CREATE TABLE IF NOT EXISTS {db}.dossier_flow_minute (
    hierarchy          String,
    area_code          String,
    t DateTime('UTC'),
    received           Int64,
    received_online    Int64,
    digitized          Int64,
    reused             Int64,
    fee_bearing        Int64,
    paid_online        Int64,
    resolved           Int64,
    on_time            Int64,
    timed              Int64,
    resolution_seconds Int64,
    e_result           Int64,
    open               Int64,
    late_open          Int64,
    approximate        Int64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMMDD(t)
ORDER BY (hierarchy, area_code, t);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dossier_flow_minute_mv TO {db}.dossier_flow_minute AS
SELECT hierarchy, x_area_code AS area_code, toStartOfMinute(x_t) AS t, sum(x_received) AS received, sum(x_received_online) AS received_online, sum(x_digitized) AS digitized, sum(x_reused) AS reused, sum(x_fee_bearing) AS fee_bearing, sum(x_paid_online) AS paid_online, sum(x_resolved) AS resolved, sum(x_on_time) AS on_time, sum(x_timed) AS timed, sum(x_resolution_seconds) AS resolution_seconds, sum(x_e_result) AS e_result, sum(x_open) AS open, sum(x_late_open) AS late_open, sum(x_approximate) AS approximate
FROM {db}.dossier_events
ARRAY JOIN `delta.t` AS x_t, `delta.area_code` AS x_area_code, `delta.received` AS x_received, `delta.received_online` AS x_received_online, `delta.digitized` AS x_digitized, `delta.reused` AS x_reused, `delta.fee_bearing` AS x_fee_bearing, `delta.paid_online` AS x_paid_online, `delta.resolved` AS x_resolved, `delta.on_time` AS x_on_time, `delta.timed` AS x_timed, `delta.resolution_seconds` AS x_resolution_seconds, `delta.e_result` AS x_e_result, `delta.open` AS x_open, `delta.late_open` AS x_late_open, `delta.approximate` AS x_approximate
GROUP BY hierarchy, area_code, t;

-- whole hours, for hour steps and the live windows
CREATE TABLE IF NOT EXISTS {db}.dossier_flow_hour (
    hierarchy          String,
    area_code          String,
    t DateTime('UTC'),
    received           Int64,
    received_online    Int64,
    digitized          Int64,
    reused             Int64,
    fee_bearing        Int64,
    paid_online        Int64,
    resolved           Int64,
    on_time            Int64,
    timed              Int64,
    resolution_seconds Int64,
    e_result           Int64,
    open               Int64,
    late_open          Int64,
    approximate        Int64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(t)
ORDER BY (hierarchy, area_code, t);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dossier_flow_hour_mv TO {db}.dossier_flow_hour AS
SELECT hierarchy, x_area_code AS area_code, toStartOfHour(x_t) AS t, sum(x_received) AS received, sum(x_received_online) AS received_online, sum(x_digitized) AS digitized, sum(x_reused) AS reused, sum(x_fee_bearing) AS fee_bearing, sum(x_paid_online) AS paid_online, sum(x_resolved) AS resolved, sum(x_on_time) AS on_time, sum(x_timed) AS timed, sum(x_resolution_seconds) AS resolution_seconds, sum(x_e_result) AS e_result, sum(x_open) AS open, sum(x_late_open) AS late_open, sum(x_approximate) AS approximate
FROM {db}.dossier_events
ARRAY JOIN `delta.t` AS x_t, `delta.area_code` AS x_area_code, `delta.received` AS x_received, `delta.received_online` AS x_received_online, `delta.digitized` AS x_digitized, `delta.reused` AS x_reused, `delta.fee_bearing` AS x_fee_bearing, `delta.paid_online` AS x_paid_online, `delta.resolved` AS x_resolved, `delta.on_time` AS x_on_time, `delta.timed` AS x_timed, `delta.resolution_seconds` AS x_resolution_seconds, `delta.e_result` AS x_e_result, `delta.open` AS x_open, `delta.late_open` AS x_late_open, `delta.approximate` AS x_approximate
GROUP BY hierarchy, area_code, t;

-- local days of the deployment's time zone, for day and week steps
CREATE TABLE IF NOT EXISTS {db}.dossier_flow_day (
    hierarchy          String,
    area_code          String,
    d Date,
    received           Int64,
    received_online    Int64,
    digitized          Int64,
    reused             Int64,
    fee_bearing        Int64,
    paid_online        Int64,
    resolved           Int64,
    on_time            Int64,
    timed              Int64,
    resolution_seconds Int64,
    e_result           Int64,
    open               Int64,
    late_open          Int64,
    approximate        Int64
) ENGINE = SummingMergeTree
PARTITION BY toYear(d)
ORDER BY (hierarchy, area_code, d);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dossier_flow_day_mv TO {db}.dossier_flow_day AS
SELECT hierarchy, x_area_code AS area_code, toDate(x_t, '{tz}') AS d, sum(x_received) AS received, sum(x_received_online) AS received_online, sum(x_digitized) AS digitized, sum(x_reused) AS reused, sum(x_fee_bearing) AS fee_bearing, sum(x_paid_online) AS paid_online, sum(x_resolved) AS resolved, sum(x_on_time) AS on_time, sum(x_timed) AS timed, sum(x_resolution_seconds) AS resolution_seconds, sum(x_e_result) AS e_result, sum(x_open) AS open, sum(x_late_open) AS late_open, sum(x_approximate) AS approximate
FROM {db}.dossier_events
ARRAY JOIN `delta.t` AS x_t, `delta.area_code` AS x_area_code, `delta.received` AS x_received, `delta.received_online` AS x_received_online, `delta.digitized` AS x_digitized, `delta.reused` AS x_reused, `delta.fee_bearing` AS x_fee_bearing, `delta.paid_online` AS x_paid_online, `delta.resolved` AS x_resolved, `delta.on_time` AS x_on_time, `delta.timed` AS x_timed, `delta.resolution_seconds` AS x_resolution_seconds, `delta.e_result` AS x_e_result, `delta.open` AS x_open, `delta.late_open` AS x_late_open, `delta.approximate` AS x_approximate
GROUP BY hierarchy, area_code, d;

-- local calendar months, for month steps, rankings and scoreboards
CREATE TABLE IF NOT EXISTS {db}.dossier_flow_month (
    hierarchy          String,
    area_code          String,
    m Date,
    received           Int64,
    received_online    Int64,
    digitized          Int64,
    reused             Int64,
    fee_bearing        Int64,
    paid_online        Int64,
    resolved           Int64,
    on_time            Int64,
    timed              Int64,
    resolution_seconds Int64,
    e_result           Int64,
    open               Int64,
    late_open          Int64,
    approximate        Int64
) ENGINE = SummingMergeTree
PARTITION BY toYear(m)
ORDER BY (hierarchy, area_code, m);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dossier_flow_month_mv TO {db}.dossier_flow_month AS
SELECT hierarchy, x_area_code AS area_code, toStartOfMonth(toDate(x_t, '{tz}')) AS m, sum(x_received) AS received, sum(x_received_online) AS received_online, sum(x_digitized) AS digitized, sum(x_reused) AS reused, sum(x_fee_bearing) AS fee_bearing, sum(x_paid_online) AS paid_online, sum(x_resolved) AS resolved, sum(x_on_time) AS on_time, sum(x_timed) AS timed, sum(x_resolution_seconds) AS resolution_seconds, sum(x_e_result) AS e_result, sum(x_open) AS open, sum(x_late_open) AS late_open, sum(x_approximate) AS approximate
FROM {db}.dossier_events
ARRAY JOIN `delta.t` AS x_t, `delta.area_code` AS x_area_code, `delta.received` AS x_received, `delta.received_online` AS x_received_online, `delta.digitized` AS x_digitized, `delta.reused` AS x_reused, `delta.fee_bearing` AS x_fee_bearing, `delta.paid_online` AS x_paid_online, `delta.resolved` AS x_resolved, `delta.on_time` AS x_on_time, `delta.timed` AS x_timed, `delta.resolution_seconds` AS x_resolution_seconds, `delta.e_result` AS x_e_result, `delta.open` AS x_open, `delta.late_open` AS x_late_open, `delta.approximate` AS x_approximate
GROUP BY hierarchy, area_code, m;

-- Local days by the dossier's dimensions, for breakdowns.
CREATE TABLE IF NOT EXISTS {db}.dossier_flow_day_by (
    hierarchy          String,
    area_code          String,
    d                  Date,
    sector             String,
    procedure_code     String,
    channel            String,
    online_level       String,
    received           Int64,
    received_online    Int64,
    digitized          Int64,
    reused             Int64,
    fee_bearing        Int64,
    paid_online        Int64,
    resolved           Int64,
    on_time            Int64,
    timed              Int64,
    resolution_seconds Int64,
    e_result           Int64,
    open               Int64,
    late_open          Int64,
    approximate        Int64
) ENGINE = SummingMergeTree
PARTITION BY toYear(d)
ORDER BY (hierarchy, area_code, d, sector, procedure_code, channel, online_level);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dossier_flow_day_by_mv TO {db}.dossier_flow_day_by AS
SELECT hierarchy, x_area_code AS area_code, toDate(x_t, '{tz}') AS d,
       x_sector AS sector, x_procedure_code AS procedure_code, x_channel AS channel, x_online_level AS online_level, sum(x_received) AS received, sum(x_received_online) AS received_online, sum(x_digitized) AS digitized, sum(x_reused) AS reused, sum(x_fee_bearing) AS fee_bearing, sum(x_paid_online) AS paid_online, sum(x_resolved) AS resolved, sum(x_on_time) AS on_time, sum(x_timed) AS timed, sum(x_resolution_seconds) AS resolution_seconds, sum(x_e_result) AS e_result, sum(x_open) AS open, sum(x_late_open) AS late_open, sum(x_approximate) AS approximate
FROM {db}.dossier_events
ARRAY JOIN `delta.t` AS x_t, `delta.area_code` AS x_area_code, `delta.sector` AS x_sector, `delta.procedure_code` AS x_procedure_code, `delta.channel` AS x_channel, `delta.online_level` AS x_online_level, `delta.received` AS x_received, `delta.received_online` AS x_received_online, `delta.digitized` AS x_digitized, `delta.reused` AS x_reused, `delta.fee_bearing` AS x_fee_bearing, `delta.paid_online` AS x_paid_online, `delta.resolved` AS x_resolved, `delta.on_time` AS x_on_time, `delta.timed` AS x_timed, `delta.resolution_seconds` AS x_resolution_seconds, `delta.e_result` AS x_e_result, `delta.open` AS x_open, `delta.late_open` AS x_late_open, `delta.approximate` AS x_approximate
GROUP BY hierarchy, area_code, d, sector, procedure_code, channel, online_level;

-- The zone the day and month rollups were cut in.
CREATE TABLE IF NOT EXISTS {db}.dossier_flow_zone (
    zone String,
    set_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(set_at)
ORDER BY tuple();

-- The event rollups these replace.
DROP TABLE IF EXISTS {db}.dossier_kpi_minute_mv;
DROP TABLE IF EXISTS {db}.dossier_kpi_hour_mv;
DROP TABLE IF EXISTS {db}.dossier_kpi_minute;
DROP TABLE IF EXISTS {db}.dossier_kpi_hour;
