-- Records filed under another hierarchy's units (vn-2024 codes after the
-- 2025 reorganisation) are stored twice: once as recorded, so the old
-- hierarchy's figures stay complete, and once placed in the current one,
-- with where it came from and whether the placement is approximate (a split
-- unit and no position to settle it). lat/lon are the record's position,
-- when it has one.
-- One column per ALTER, so that each is applied or skipped on its own.
ALTER TABLE {db}.dossier_events ADD COLUMN recorded_hierarchy String DEFAULT '';
ALTER TABLE {db}.dossier_events ADD COLUMN recorded_area_code String DEFAULT '';
ALTER TABLE {db}.dossier_events ADD COLUMN approximate UInt8 DEFAULT 0;
ALTER TABLE {db}.dossier_events ADD COLUMN lat Nullable(Float64);
ALTER TABLE {db}.dossier_events ADD COLUMN lon Nullable(Float64);

ALTER TABLE {db}.dossier_kpi_minute ADD COLUMN approximate UInt64 DEFAULT 0;
ALTER TABLE {db}.dossier_kpi_hour ADD COLUMN approximate UInt64 DEFAULT 0;

-- ClickHouse 18.16 cannot alter a view's query: replace the views.
DROP TABLE IF EXISTS {db}.dossier_kpi_minute_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dossier_kpi_minute_mv TO {db}.dossier_kpi_minute AS
SELECT hierarchy, area_code, toStartOfMinute(occurred_at) AS t,
       countIf(status = 'received') AS received,
       countIf(status = 'received' AND channel = 'online') AS received_online,
       countIf(status = 'resolved') AS resolved,
       countIf(status = 'resolved' AND ifNull(occurred_at <= due_at, 0)) AS resolved_on_time,
       countIf(approximate = 1) AS approximate
FROM {db}.dossier_events
GROUP BY hierarchy, area_code, t;

DROP TABLE IF EXISTS {db}.dossier_kpi_hour_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dossier_kpi_hour_mv TO {db}.dossier_kpi_hour AS
SELECT hierarchy, area_code, toStartOfHour(occurred_at) AS t,
       countIf(status = 'received') AS received,
       countIf(status = 'received' AND channel = 'online') AS received_online,
       countIf(status = 'resolved') AS resolved,
       countIf(status = 'resolved' AND ifNull(occurred_at <= due_at, 0)) AS resolved_on_time,
       countIf(approximate = 1) AS approximate
FROM {db}.dossier_events
GROUP BY hierarchy, area_code, t;
