"""Writing the quarterly report out: HTML, XLSX and PDF, and the files they go to."""
