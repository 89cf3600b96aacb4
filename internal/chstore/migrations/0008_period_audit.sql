-- Closing a period can be undone: an admin reopens it with a reason, and may
-- close it again later. Nothing of that history may be lost, so it moves to
-- two append-only tables; closed_periods and closed_figures (0006), which
-- keep one close per period and would overwrite an earlier close's figures,
-- are copied here below and no longer written or read.

-- The audit trail: every close and every reopening of a period, in order.
-- A period is closed while its latest entry is a close. Entries of a period
-- have distinct times (the engine keeps them a second apart), so the key
-- names one entry; a retried insert writes the same key again, which FINAL
-- folds.
CREATE TABLE IF NOT EXISTS {db}.period_audit (
    hierarchy String,
    period    String,
    at        DateTime('UTC'),
    action    String,
    from_t    DateTime('UTC'),
    to_t      DateTime('UTC'),
    actor     String,
    note      String,
    figures   UInt32,
    forced    UInt8
) ENGINE = ReplacingMergeTree
ORDER BY (hierarchy, period, at, action);

-- The figures of every close, under the close's time: a new close of a
-- reopened period adds its figures beside the earlier ones, which stay
-- readable. Figures are written before their close's audit entry, so a
-- close counts only once all its figures are stored.
CREATE TABLE IF NOT EXISTS {db}.period_figures (
    hierarchy   String,
    period      String,
    closed_at   DateTime('UTC'),
    area_code   String,
    kpi         String,
    value       Nullable(Float64),
    numerator   Nullable(Float64),
    denominator Nullable(Float64)
) ENGINE = ReplacingMergeTree
ORDER BY (hierarchy, period, closed_at, area_code, kpi);

-- Closes made before the audit trail, as they read. Running this again
-- writes the same keys, which fold.
INSERT INTO {db}.period_figures (hierarchy, period, closed_at, area_code, kpi, value, numerator, denominator)
SELECT hierarchy, period, closed_at, area_code, kpi, value, numerator, denominator
FROM {db}.closed_figures FINAL;

INSERT INTO {db}.period_audit (hierarchy, period, at, action, from_t, to_t, actor, note, figures, forced)
SELECT hierarchy, period, closed_at, 'close', from_t, to_t, closed_by, note, toUInt32(figures), toUInt8(0)
FROM {db}.closed_periods FINAL
ANY LEFT JOIN (
    SELECT hierarchy, period, count() AS figures FROM {db}.closed_figures FINAL GROUP BY hierarchy, period
) USING (hierarchy, period);
