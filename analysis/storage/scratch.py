"""Where a snapshot's private copy of the clinic's file goes.

A snapshot (:mod:`analysis.storage.store`) serves every query from a copy of
the file, thrown away when the next data version is served.  A file that
holds its saved models (:mod:`analysis.storage.saved_models`) is copied as
is, and only views are written to the copy: it goes into shared memory
(tmpfs) when there is room, where the copy is a memory copy, instead of the
disk, where the copy also allocates blocks and queues the write-back of a
file nobody keeps (at ten million visits, 1 GB: ~0.7 s instead of 2.5-4.5 s
on the benchmark's machine).  What a snapshot spills stays on the disk.
``OUTCOMES_SNAPSHOT_SHARED_MEMORY=off`` keeps every copy on the disk.

A process killed before it removed its copy would leave it in memory: each
folder is named after its process, and the folders of processes that are
gone are removed whenever a new one is made there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

SHARED_MEMORY = Path("/dev/shm")
PREFIX = "outcomes-snapshot-"
#: Room a copy leaves: shared memory keeps this many times the file's size
#: free (the old snapshot and the new one exist side by side while a new
#: one is built) ...
SHARED_MEMORY_ROOM = 3
#: ... and the copy takes at most this share of the memory available.
SHARED_MEMORY_SHARE = 0.25


def fits_in_shared_memory(path: Path) -> bool:
    """The copy of ``path`` (and its WAL) may go into shared memory."""
    if os.environ.get("OUTCOMES_SNAPSHOT_SHARED_MEMORY", "on").lower() in ("off", "0", "no",
                                                                           "false"):
        return False
    try:
        size = sum(p.stat().st_size for p in (path, Path(str(path) + ".wal")) if p.exists())
        room = os.statvfs(SHARED_MEMORY)
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            available = next(int(line.split()[1]) * 1024 for line in meminfo
                             if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return False
    return (os.access(SHARED_MEMORY, os.W_OK)
            and room.f_bavail * room.f_frsize >= SHARED_MEMORY_ROOM * size
            and size <= SHARED_MEMORY_SHARE * available)


def shared_memory_folder() -> str:
    """A new private folder in shared memory, named after this process
    (the folders of processes that are gone are removed first)."""
    try:
        entries = list(SHARED_MEMORY.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        pid = entry.name[len(PREFIX):].split("-", 1)[0] if entry.name.startswith(PREFIX) else ""
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=SHARED_MEMORY)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True   # (another user's: alive)
    return True
