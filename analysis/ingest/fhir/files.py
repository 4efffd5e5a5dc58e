"""Finding, unpacking and checking the files of a FHIR R4 export (SPEC §2).

A Bulk Data export arrives as a folder or a zip of NDJSON files (one
resource per line, one file per resource type), as single NDJSON files, or
as FHIR Bundles (JSON).  Before DuckDB reads anything, every file is checked
in one pass over its bytes: its SHA-256 (so that the same export loaded
twice changes nothing), that it is text, that it holds JSON objects, and
that no line is longer than ``limits.MAX_LINE_BYTES`` (a 200 MB line is
refused with a one-line message, never parsed).

The limits are :mod:`analysis.ingest.limits`' (one owner for every size rule):
one NDJSON line at most ``MAX_LINE_BYTES``, one Bundle file at most
``MAX_BUNDLE_BYTES``, a zip's members unpacked at most ``MAX_DATA_BYTES``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from analysis.ingest import limits
from analysis.ingest.limits import LimitExceeded

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
BUNDLE_SUFFIXES = (".json",)
ZIP_SUFFIXES = (".zip",)
FHIR_SUFFIXES = NDJSON_SUFFIXES + BUNDLE_SUFFIXES + ZIP_SUFFIXES

MAX_ZIP_MEMBERS = 10_000
MAX_ZIP_RATIO = 200                          # unpacked / packed, per member


class ExportRefused(Exception):
    """The whole export is refused; the message (one line) says why."""


@dataclass
class SourceFile:
    path: Path
    name: str            # as messages name it
    kind: str            # ndjson | bundle
    sha256: str = ""
    lines: int = 0       # physical lines holding something


@dataclass
class ExportFiles:
    name: str
    files: list[SourceFile] = field(default_factory=list)
    temporary: Path | None = None   # an unpacked zip, removed by close()

    def close(self) -> None:
        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)
            self.temporary = None

    @property
    def digest(self) -> str:
        """One SHA-256 for the export: its files' names and contents."""
        h = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.name):
            h.update(f"{f.name}\0{f.sha256}\n".encode("utf-8"))
        return h.hexdigest()


def is_fhir_path(path: str | os.PathLike) -> bool:
    """A folder, a zip, an NDJSON file or a JSON file (a Bundle)."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in FHIR_SUFFIXES


def group_exports(paths: list[Path]) -> list[list[Path]]:
    """Split the paths of one ingest into exports: each folder or zip is
    one; loose NDJSON and Bundle files together are one (at the place of
    the first); every other file is its own."""
    exports: list[list[Path]] = []
    loose: list[Path] | None = None
    for path in paths:
        if is_fhir_path(path) and not path.is_dir() and path.suffix.lower() not in ZIP_SUFFIXES:
            if loose is None:
                loose = []
                exports.append(loose)
            loose.append(path)
        else:
            exports.append([path])
    return exports


def collect(paths: list[Path], name: str) -> ExportFiles:
    """The files of one export, checked; :class:`ExportRefused` otherwise."""
    export = ExportFiles(name)
    try:
        for path in paths:
            if path.is_dir():
                found = sorted(p for p in path.rglob("*")
                               if p.is_file() and p.suffix.lower() in NDJSON_SUFFIXES + BUNDLE_SUFFIXES
                               and not p.name.startswith("."))
                export.files += [_source(p, str(p.relative_to(path.parent))) for p in found]
            elif path.suffix.lower() in ZIP_SUFFIXES:
                export.files += _unzip(path, export)
            elif path.is_file():
                export.files.append(_source(path, path.name))
            else:
                raise ExportRefused(f"{path.name}: no such file or folder")
        if not export.files:
            raise ExportRefused(f"{name}: no FHIR files in it (.ndjson, or .json Bundles)")
        for source in export.files:
            scan(source)
        return export
    except BaseException:
        export.close()
        raise


def _source(path: Path, name: str) -> SourceFile:
    kind = "ndjson" if path.suffix.lower() in NDJSON_SUFFIXES else "bundle"
    return SourceFile(path, name, kind)


def _unzip(path: Path, export: ExportFiles) -> list[SourceFile]:
    """Unpack the FHIR members of a zip into a private temporary folder,
    checking the declared and the actual sizes (a zip bomb stops while it
    is written); member names never choose where a file lands."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ExportRefused(f"{path.name}: not a readable zip file") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()
                   and Path(m.filename).suffix.lower() in NDJSON_SUFFIXES + BUNDLE_SUFFIXES
                   and not Path(m.filename).name.startswith(".")]
        if len(members) > MAX_ZIP_MEMBERS:
            raise ExportRefused(f"{path.name}: {len(members)} files is over the "
                                f"{MAX_ZIP_MEMBERS} files limit of one zip")
        limits.check_bytes(path.name, "its content unpacked", sum(m.file_size for m in members),
                           limits.MAX_DATA_BYTES)
        if export.temporary is None:
            export.temporary = Path(tempfile.mkdtemp(prefix="fhir-export-"))
        out: list[SourceFile] = []
        for number, member in enumerate(members, start=1):
            target = export.temporary / f"{number:05d}{Path(member.filename).suffix.lower()}"
            limit = min(member.file_size, max(member.compress_size, 1) * MAX_ZIP_RATIO,
                        limits.MAX_DATA_BYTES)
            written = 0
            try:
                with archive.open(member) as source, open(target, "wb") as sink:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        written += len(block)
                        if written > limit:
                            raise ExportRefused(
                                f"{path.name}: {member.filename} unpacks to more than it "
                                f"declares or {MAX_ZIP_RATIO} times its packed size (refused)")
                        sink.write(block)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError):
                raise ExportRefused(f"{path.name}: {member.filename} cannot be unpacked") from None
            out.append(SourceFile(target, f"{path.name}:{member.filename}",
                                  "ndjson" if target.suffix in NDJSON_SUFFIXES else "bundle"))
        return out


def scan(source: SourceFile) -> None:
    """One pass over the bytes: SHA-256, physical lines, no line longer than
    ``limits.MAX_LINE_BYTES`` (NDJSON; the scan stops at the first), text
    that starts with a JSON object.  Refuses the export otherwise."""
    limit = limits.MAX_LINE_BYTES
    digest = hashlib.sha256()
    run = 0            # bytes since the last newline
    newlines = 0
    first = None       # first byte that is not blank
    size = 0
    with open(source.path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
            if first is None:
                stripped = block.lstrip()
                if stripped:
                    first = stripped[:1]
                    head = stripped[:8192]
                    if b"\x00" in head:
                        raise ExportRefused(f"{source.name}: binary content, not FHIR JSON")
            if source.kind != "ndjson":
                continue
            at = block.find(b"\n")
            if at < 0:
                run += len(block)
            else:
                run += at
                if run > limit:
                    break
                newlines += block.count(b"\n")
                run = len(block) - block.rfind(b"\n") - 1
            if run > limit:
                break
    if source.kind == "ndjson" and run > limit:
        raise LimitExceeded(
            f"{source.name} line {newlines + 1}: one line (one resource) is over the limit of "
            f"{limits.size_text(limit)}; nothing from this export was stored")
    if source.kind == "bundle":
        limits.check_bytes(source.name, "one Bundle", size, limits.MAX_BUNDLE_BYTES)
    limits.check_bytes(source.name, "the file", size, limits.MAX_DATA_BYTES)
    if first is None:
        raise ExportRefused(f"{source.name}: the file is empty")
    if first != b"{":
        raise ExportRefused(f"{source.name}: not FHIR JSON (a JSON object "
                            f"{'on each line' if source.kind == 'ndjson' else ''} expected)"
                            .replace("  ", " "))
    source.sha256 = digest.hexdigest()
    source.lines = newlines + (1 if run else 0)


def nonblank_lines(source: SourceFile) -> list[int]:
    """The numbers of the lines holding something (for an NDJSON file with
    blank lines, whose reader skips them)."""
    numbers = []
    with open(source.path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                numbers.append(number)
    return numbers
