-- Short links of kiosk tokens (/k/{code}): a wall PC opens the wall page from
-- a short URL or a QR code, without typing a token. The code maps to the
-- token, kept with its id (jti) so that revoking the token kills the link.
-- A code is written once; expires_at is the token's expiry.
CREATE TABLE IF NOT EXISTS {db}.kiosk_links (
    code       String,
    jti        String,
    screen     String,
    token      String,
    created_by String,
    created_at DateTime('UTC'),
    expires_at DateTime('UTC')
) ENGINE = ReplacingMergeTree
ORDER BY code;
