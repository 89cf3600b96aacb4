-- Values of department datasets (package dataset). Every uploaded row is
-- kept, never changed: sending a unit's period again is a new version (the
-- upload's receipt time in nanoseconds; the latest counts), so a
-- correction replaces the figure and the history shows both, each with its
-- upload, source and who sent it. An upload writes a row for every measure
-- of the definition; present = 0 is a measure it left out, which then has
-- no value any more.
CREATE TABLE IF NOT EXISTS {db}.dataset_values (
    dataset  String,
    unit     String,
    period   Date,
    measure  String,
    value    Float64,
    present  UInt8,
    version  UInt64,
    upload   String,
    source   String,
    saved_by String,
    saved_at DateTime('UTC')
) ENGINE = MergeTree
ORDER BY (dataset, unit, period, measure, version);

-- One row per upload or connector run: what the feed's health is read from
-- (when values last came, rows refused, the first problems).
CREATE TABLE IF NOT EXISTS {db}.dataset_uploads (
    dataset  String,
    upload   String,
    source   String,
    saved_by String,
    saved_at DateTime('UTC'),
    rows     UInt32,
    refused  UInt32,
    problems String,
    error    String
) ENGINE = MergeTree
ORDER BY (dataset, saved_at, upload);
