"""No module under analysis/ is longer than 600 lines (issue 16): a module that
grows past it is split by its own sections, each part named for its job, so a
newcomer can read one job in one file."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 600

# Named, dated exceptions, each with its owner; an exception goes as soon as
# its module is split (test_every_exception_is_still_needed says when).
EXCEPTIONS = {
}


def physical_lines(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def oversized(root: Path) -> dict[str, int]:
    """Modules under ``root/analysis`` over the limit: path -> lines."""
    sizes = {path.relative_to(root).as_posix(): physical_lines(path)
             for path in sorted((root / "analysis").rglob("*.py"))}
    return {path: lines for path, lines in sizes.items() if lines > LIMIT}


def test_no_module_in_analysis_is_over_600_lines():
    offenders = {p: n for p, n in oversized(ROOT).items() if p not in EXCEPTIONS}
    assert not offenders, "split these by their own sections: " + ", ".join(
        f"{path} ({lines} lines)" for path, lines in offenders.items())


def test_every_exception_is_still_needed():
    done = [path for path in EXCEPTIONS
            if not (ROOT / path).exists() or physical_lines(ROOT / path) <= LIMIT]
    assert not done, f"no longer over {LIMIT} lines, remove their exception: {done}"


def test_an_oversized_module_is_named(tmp_path):
    (tmp_path / "analysis" / "metrics").mkdir(parents=True)
    (tmp_path / "analysis" / "metrics" / "big.py").write_text("x = 1\n" * (LIMIT + 1))
    (tmp_path / "analysis" / "metrics" / "fits.py").write_text("x = 1\n" * LIMIT)
    (tmp_path / "analysis" / "last.py").write_text("x = 1\n" * LIMIT + "y = 2")  # no final newline
    assert oversized(tmp_path) == {"analysis/metrics/big.py": LIMIT + 1,
                                   "analysis/last.py": LIMIT + 1}
