-- data_ingest_log: every ingest, newest first.

SELECT
    ingest_id, ingested_at, file_name, export_kind, status, rows_read, rows_accepted,
    rows_quarantined, duplicates_collapsed, values_nulled, rows_replaced,
    dropped_identifying_columns, pseudonymised_columns, unknown_columns, message
FROM ingest_log
ORDER BY ingest_id DESC
