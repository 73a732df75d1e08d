-- partition-deps schema, version 6.

-- Secrets every replica shares: the key that signs page tokens, drawn once when the schema
-- is created (gen_random_uuid draws from the server's strong random source; two of them
-- give 244 random bits). A replica reads it on its first page token.
CREATE TABLE server_secrets (
    name   text PRIMARY KEY,
    secret bytea NOT NULL
);
INSERT INTO server_secrets (name, secret)
VALUES ('page_tokens',
        decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
