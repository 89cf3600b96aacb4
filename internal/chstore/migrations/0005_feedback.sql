-- Citizen feedback (the 1022 hotline, portal complaints), one row per item.
-- A sender resends an item's whole state as it advances, so a row replaces
-- the earlier one of the same item: version is the time of the latest status
-- change (received_at when there is none), and an equal version keeps the
-- later insert, so resending the same state, or adding only a rating, is
-- harmless. Readers take FINAL (or argMax by version) rather than trusting
-- merges. status is the latest status; resolved_at the first change to
-- resolved or closed; change_status and change_at the changes in time order.
CREATE TABLE IF NOT EXISTS {db}.feedback (
    feedback_id   String,
    hierarchy     String,
    area_code     String,
    category      String,
    channel       String,
    dossier_id    String,
    received_at   DateTime('UTC'),
    due_at        Nullable(DateTime('UTC')),
    status        Enum8('received' = 1, 'assigned' = 2, 'processing' = 3, 'resolved' = 4, 'closed' = 5),
    resolved_at   Nullable(DateTime('UTC')),
    rating        Enum8('' = 0, 'satisfied' = 1, 'dissatisfied' = 2),
    change_status Array(String),
    change_at     Array(DateTime('UTC')),
    version       UInt64,
    ingested_at   DateTime('UTC')
) ENGINE = ReplacingMergeTree(version)
ORDER BY (hierarchy, area_code, feedback_id);
