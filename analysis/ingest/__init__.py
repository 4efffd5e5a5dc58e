"""Getting a clinic's records in: the CSV/XLSX upload pipeline (columns,
checks, sessions, medications, the ingest log and quarantine), FHIR bulk exports
and long-format files, the upload limits, the Data page's view of what was
loaded and what was refused, and the synthetic demo clinic."""
