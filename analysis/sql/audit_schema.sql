-- The audit log lives in its own DuckDB file beside the clinic's database
-- (<name>.audit.duckdb): an ingest holds the clinic file's single write lock,
-- and must never make a sign-in or an audit row wait.
-- Append-only audit trail: the code only ever INSERTs here.  Each row carries
-- the hash of the one before it, so an edited or deleted row breaks the chain.
CREATE TABLE IF NOT EXISTS audit_log (
    seq       BIGINT PRIMARY KEY,
    logged_at TIMESTAMP NOT NULL,
    user_name VARCHAR,
    role      VARCHAR,
    action    VARCHAR NOT NULL,   -- sign_in | sign_in_failed | locked_out | sign_out | page_view | download | report | ingest
    detail    VARCHAR,            -- JSON
    prev_hash VARCHAR,
    row_hash  VARCHAR NOT NULL
);
