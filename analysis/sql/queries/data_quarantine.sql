-- data_quarantine: rows refused at ingest (SPEC §2), newest ingest first.

SELECT q.ingest_id, l.ingested_at, q.file_name, q.line, q.reason, q.raw_row
FROM quarantine AS q
LEFT JOIN ingest_log AS l USING (ingest_id)
ORDER BY q.ingest_id DESC, q.line ASC
