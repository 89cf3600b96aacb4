-- The wall's documents (package dashboards): dashboards, playlists, walls
-- and screens. Every saved version of every document is a row, never
-- changed or removed; a deletion is a version too (deleted = 1, empty
-- body), so the history says who removed what and when. Versions of one
-- document count 1, 2, … and are numbered under the lease
-- "<db>.dashboard_documents" (chstore.Documents), so two saves never take
-- the same number. Documents are few and small: no partitions.
CREATE TABLE IF NOT EXISTS {db}.dashboard_documents (
    kind     String,
    id       String,
    version  UInt32,
    saved_at DateTime('UTC'),
    saved_by String,
    deleted  UInt8,
    body     String
) ENGINE = MergeTree
ORDER BY (kind, id, version);
