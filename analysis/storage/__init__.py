"""Where the clinic's data lives: the DuckDB file and its schema, the
snapshot every page and report reads, the SQL model chain that turns visits into
patient outcomes, the named queries of ``analysis/sql``, the reference tables
(canonical columns, drug conversions) and the fingerprint that says which data
a number came from."""
