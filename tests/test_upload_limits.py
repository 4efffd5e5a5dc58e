"""Upload limits (analysis.limits) and the attacks they stop: an XLSX zip
bomb, a CSV of 100,000 columns, oversized Parquet; refusal messages that
never echo a row's values."""

from __future__ import annotations

import gzip
import io

import pytest

from analysis import limits


def test_limit_messages_are_one_line_naming_the_file_and_the_limit():
    limits.check_bytes("a.xlsx", "its content once unzipped", limits.MAX_UNZIPPED_BYTES,
                       limits.MAX_UNZIPPED_BYTES)  # at the limit: allowed
    with pytest.raises(limits.LimitExceeded) as refused:
        limits.check_bytes("a.xlsx", "its content once unzipped", 600 * limits.MB,
                           limits.MAX_UNZIPPED_BYTES)
    assert str(refused.value) == ("a.xlsx: its content once unzipped is 600 MB, over the limit "
                                  "of 128 MB; nothing stored from it")
    limits.check_count("b.csv", "columns", limits.MAX_COLUMNS, limits.MAX_COLUMNS)
    with pytest.raises(limits.LimitExceeded) as refused:
        limits.check_count("b.csv", "columns", 100_000, limits.MAX_COLUMNS)
    assert str(refused.value) == "b.csv: more than 1,000 columns (the limit); nothing stored from it"
    assert "\n" not in str(refused.value)


def test_bounded_reader_stops_while_streaming():
    bomb = gzip.compress(b"x" * (8 * limits.MB))
    reader = limits.BoundedReader(gzip.GzipFile(fileobj=io.BytesIO(bomb)), limits.MB, "c.ndjson.gz")
    with pytest.raises(limits.LimitExceeded, match="c.ndjson.gz: its content is over the limit of 1 MB"):
        while reader.read(64 * 1024):
            pass
    assert reader.bytes_read <= limits.MB + 64 * 1024   # stopped at the limit, not at the end
    small = limits.BoundedReader(io.BytesIO(b"abc"), 3, "d.csv")
    assert small.read() == b"abc"
