-- Official figures: a closed period's indicators for every unit, frozen as
-- reported. Figures are written before the period's row, so a period is
-- closed only once all its figures are stored; a retried close writes the
-- same keys again, which the engine folds.
CREATE TABLE IF NOT EXISTS {db}.closed_figures (
    hierarchy   String,
    period      String,
    area_code   String,
    kpi         String,
    value       Nullable(Float64),
    numerator   Nullable(Float64),
    denominator Nullable(Float64),
    closed_at   DateTime('UTC')
) ENGINE = ReplacingMergeTree(closed_at)
ORDER BY (hierarchy, period, area_code, kpi);

CREATE TABLE IF NOT EXISTS {db}.closed_periods (
    hierarchy String,
    period    String,
    from_t    DateTime('UTC'),
    to_t      DateTime('UTC'),
    closed_by String,
    closed_at DateTime('UTC'),
    note      String
) ENGINE = ReplacingMergeTree(closed_at)
ORDER BY (hierarchy, period);
