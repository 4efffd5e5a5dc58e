"""How large one export may be: the limits every ingest reader checks.

One owner for every size rule of an export, whatever reads it (the CSV,
XLSX and Parquet readers in :mod:`analysis.ingest.pipeline`, the dashboard's upload,
any later reader).  A reader checks what it can *before* parsing (a file's
size, a zip's declared sizes, a Parquet footer, a header line) and keeps
counting while it streams, so a hostile file is refused in moments and with
little memory, never after minutes at full CPU.

A file over a limit is refused whole with :class:`LimitExceeded`, whose
message is one line naming the file and the limit (never a row's values).
"""

from __future__ import annotations

import io

MB = 1024 * 1024

#: One file as sent to the dashboard's Data page.
MAX_UPLOAD_BYTES = 200 * MB
#: One export's data as read: a CSV's (or NDJSON's) size once decompressed,
#: a Parquet file's uncompressed pages.  10 million visits as CSV are ~1 GB.
MAX_DATA_BYTES = 4 * 1024 * MB
#: An XLSX workbook's members once unzipped (its XML is parsed in memory,
#: shared strings whole), checked on the zip's declared sizes before parsing.
MAX_UNZIPPED_BYTES = 128 * MB
#: Columns of one export (a session export has ~20; EHR extracts a few hundred).
MAX_COLUMNS = 1_000
#: Cells (rows x columns) of one export.
MAX_CELLS = 300_000_000
#: Cells of one XLSX sheet, held in memory as text while it is read (about
#: 100,000 visits of 20 columns); a larger export belongs in a CSV.
MAX_SPREADSHEET_CELLS = 2_000_000
#: The first line (the header row) of a text export, and any one line or
#: record of a line-based export (NDJSON).
MAX_LINE_BYTES = 1 * MB
#: One FHIR Bundle (a JSON file read whole: a patient's $everything, a
#: collection); Bulk Data exports come as NDJSON, one resource a line.
MAX_BUNDLE_BYTES = 256 * MB


class LimitExceeded(ValueError):
    """An export over one of the limits above; refused whole."""


def size_text(n_bytes: int) -> str:
    """Bytes for a person: ``600 MB``, ``2.1 GB``, ``512 KB``."""
    if n_bytes >= 1024 * MB:
        return f"{n_bytes / 1024 / MB:.1f} GB"
    if n_bytes >= MB:
        return f"{n_bytes / MB:.0f} MB"
    return f"{max(1, round(n_bytes / 1024))} KB"


def check_bytes(file_name: str, what: str, n_bytes: int, limit: int) -> None:
    """Refuse ``file_name`` when ``n_bytes`` of ``what`` exceed ``limit``."""
    if n_bytes > limit:
        raise LimitExceeded(f"{file_name}: {what} is {size_text(n_bytes)}, over the limit of "
                            f"{size_text(limit)}; nothing stored from it")


def check_count(file_name: str, what: str, count: int, limit: int) -> None:
    """Refuse ``file_name`` when it has more than ``limit`` ``what`` (columns, cells)."""
    if count > limit:
        raise LimitExceeded(f"{file_name}: more than {limit:,} {what} (the limit); "
                            "nothing stored from it")


class BoundedReader(io.RawIOBase):
    """A read-only stream that refuses to yield more than ``limit`` bytes of
    ``stream`` (a decompressing reader, say): it raises :class:`LimitExceeded`
    as soon as the limit is passed, while streaming."""

    def __init__(self, stream, limit: int, file_name: str, what: str = "its content"):
        self._stream, self._limit, self._name, self._what = stream, limit, file_name, what
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        self.bytes_read += len(data)
        if self.bytes_read > self._limit:
            raise LimitExceeded(f"{self._name}: {self._what} is over the limit of "
                                f"{size_text(self._limit)}; nothing stored from it")
        buffer[:len(data)] = data
        return len(data)
