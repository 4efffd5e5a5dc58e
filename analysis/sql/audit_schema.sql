-- The audit log lives in its own DuckDB file beside the clinic's database
-- (<name>.audit.duckdb): an ingest holds the clinic file's single write lock,
-- and must never make a sign-in or an audit row wait.
-- Append-only audit trail: the code only ever INSERTs here.  row_hash is the
-- row's HMAC-SHA-256 under the clinic's audit key (kept outside this file),
-- over its content and prev_hash (the MAC of the row before); the last seq
-- and MAC are also kept outside this file (analysis.access.audit.head_path), so an
-- edited, recomputed, truncated or deleted log is detected.
CREATE TABLE IF NOT EXISTS audit_log (
    seq       BIGINT PRIMARY KEY,
    logged_at TIMESTAMP NOT NULL,
    user_name VARCHAR,
    role      VARCHAR,
    -- sign_in | sign_in_failed | locked_out | sign_out | page_view | download
    -- | report | ingest | audit_gap
    action    VARCHAR NOT NULL,
    detail    VARCHAR,            -- JSON
    prev_hash VARCHAR,
    row_hash  VARCHAR NOT NULL
);
