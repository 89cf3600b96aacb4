-- Revoked tokens, by id (jti): every node reads them at start and every few
-- seconds, so a revocation survives restarts and reaches every node. A token
-- is revoked once; a second revocation of the same id changes nothing.
-- expires_at is 0 when the token's expiry is not known.
CREATE TABLE IF NOT EXISTS {db}.token_revocations (
    jti        String,
    reason     String,
    revoked_by String,
    revoked_at DateTime('UTC'),
    expires_at DateTime('UTC')
) ENGINE = ReplacingMergeTree
ORDER BY jti;
