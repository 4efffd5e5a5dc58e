"""Pages never decide what is too few to show (issue 14).

The one audience policy lives in ``analysis`` (``analysis.core.audience``): every
builder feeding a page takes the reader's :class:`Audience` and returns its
results already made safe (suppressed values replaced, chart points from too
few patients dropped, with a note saying which).  A page that compares a
count with a threshold, or hides something itself, is a second owner of the
rule: the next change of the rule misses it.  This test reads every file in
``pages/`` with :mod:`ast` and fails on:

* a comparison naming a threshold (``SMALL_CELL``, ``MIN_PATIENTS*``,
  ``MIN_CELL``, any ``MIN_*`` constant) or the literal 10 or 11;
* a comparison of a count (``n``, ``.n``, ``*_n``, ``patients``, ``len(...)``,
  ``*_recorded``, responders, events ...) with a number past 2 or a name
  that holds a threshold (``least``, ``min_patients``); emptiness ("no
  patient") is a page's business, a size threshold is not;
* a page-level hiding helper (a function named ``hidden``, ``small`` or
  ``too_few``) or a call to one, or to ``privacy.suppress``;
* ``too_few`` used to filter rows or to choose between a value and
  "too few to report" (a label or a note from the flag is fine);
* ``.external`` in a page the external audience cannot open (a dead
  branch), or combined with ``too_few`` or a count in one condition.

It is checked against hand-written snippets too, so that it can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers.apptest import ROOT
from ui import pages as page_specs

PAGES = sorted((ROOT / "pages").glob("*.py"))
EXTERNAL_PAGES = {Path(s.path).name for s in page_specs.PAGES if "marketing" in s.roles}

THRESHOLD_WORDS = ("SMALL_CELL", "MIN_PATIENTS", "MIN_PER_POINT", "MIN_CELL")
COUNT_WORDS = ("patients", "responders", "events", "visits", "count", "at_risk", "censored",
               "users")
# A name that holds a threshold (``least = charts.MIN_PER_POINT``).
THRESHOLD_HINTS = ("min", "least", "few", "cell", "thresh", "enough")
HIDING_HELPERS = {"hidden", "small", "too_few", "suppress"}


def _name(node: ast.AST) -> str | None:
    """The last name of a Name, an Attribute or a string subscript
    (``frame["n"]``)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
            and isinstance(node.slice.value, str):
        return node.slice.value
    return None


def _is_threshold(node: ast.AST) -> bool:
    name = _name(node)
    if name and (any(w in name for w in THRESHOLD_WORDS)
                 or (name.isupper() and name.startswith("MIN_"))):
        return True
    return isinstance(node, ast.Constant) and type(node.value) is int and node.value in (10, 11)


def _is_count(node: ast.AST) -> bool:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == "len":
        return True
    if isinstance(node, ast.UnaryOp):
        return _is_count(node.operand)
    name = _name(node)
    if not name:
        return False
    lowered = name.lower()
    return (lowered in ("n", "k", "size") or lowered.endswith("_n") or lowered.startswith("n_")
            or lowered.endswith("_recorded") or any(w in lowered for w in COUNT_WORDS))


def _is_size_threshold(node: ast.AST) -> bool:
    """A number a count is held against: a literal past 2 (0, 1 and 2 are
    emptiness and grammar: "no patient", "1 patient", a pair), or a name
    that holds a threshold."""
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, float) and node.value > 2
    if isinstance(node, ast.UnaryOp):
        return _is_size_threshold(node.operand)
    name = _name(node)
    return bool(name) and any(h in name.lower() for h in THRESHOLD_HINTS)


def _mentions(node: ast.AST, predicate) -> bool:
    return any(predicate(n) for n in ast.walk(node))


def _too_few(node: ast.AST) -> bool:
    return _name(node) == "too_few"


def _external(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "external"


def _suppressed_text(node: ast.AST) -> bool:
    """What a hidden value reads: SUPPRESSED, or its words on their own."""
    return (_name(node) == "SUPPRESSED"
            or (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and node.value.strip(" .·").lower() in ("too few to report", "too few")))


def _hides(node: ast.AST) -> bool:
    """``SUPPRESSED if <flag> else value`` (a value replaced), or an ``if``
    whose body puts SUPPRESSED in or skips the rest (``continue``); a note
    from the flag (``"too few" if r.too_few else ""``) replaces nothing."""
    if isinstance(node, ast.IfExp):
        for hidden, other in ((node.body, node.orelse), (node.orelse, node.body)):
            if _suppressed_text(hidden) and not isinstance(other, ast.Constant):
                return True
        return False
    body = ast.Module(list(node.body), [])
    return _mentions(body, lambda n: _name(n) == "SUPPRESSED" or isinstance(n, ast.Continue))


def violations(source: str, external_page: bool = False) -> list[str]:
    """Each place ``source`` (a page) decides for itself what is too few."""
    tree = ast.parse(source)
    found: list[str] = []

    def flag(node: ast.AST, why: str) -> None:
        found.append(f"line {node.lineno}: {why}: {ast.unparse(node)[:90]}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_mentions(o, _is_threshold) for o in operands):
                flag(node, "compares with a small-cell threshold")
                continue
            if any(_is_count(o) for o in operands) \
                    and any(_is_size_threshold(o) for o in operands if not _is_count(o)):
                flag(node, "compares a count with a threshold")
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)) \
                and getattr(node, "name", None) in HIDING_HELPERS:
            flag(node, "defines a page-level hiding helper")
        elif isinstance(node, ast.Call):
            callee = _name(node.func)
            if callee in HIDING_HELPERS:
                flag(node, "calls a hiding helper")
        elif isinstance(node, ast.Subscript) and _mentions(node.slice, _too_few) \
                and not isinstance(node.slice, ast.Constant):
            flag(node, "filters rows by too_few")
        elif isinstance(node, (ast.If, ast.IfExp, ast.While)):
            test = node.test
            if _mentions(test, _too_few) and _hides(node):
                flag(test, "hides a value behind too_few")
            if _mentions(test, _external) and (_mentions(test, _too_few)
                                               or _mentions(test, _is_count)):
                flag(test, "hides for the external audience")
        if _external(node) and not external_page:
            flag(node, "an external-audience branch in a page marketing cannot open")
    return found


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_no_page_decides_what_is_too_few(path):
    found = violations(path.read_text(), external_page=path.name in EXTERNAL_PAGES)
    assert not found, f"{path.name} decides small cells itself (ask analysis):\n  " \
                      + "\n  ".join(found)


@pytest.mark.parametrize("snippet", [
    "if len(bars) < audience.SMALL_CELL: pass",
    "shown = rows['n'] >= charts.MIN_PER_POINT",
    "thin = monthly['patients_recorded'] < least",
    "ok = group.n >= 11",
    "x = value if n > 10 else None",
    "ticks = 1 if len(acute) <= 30 else None",
    "def hidden(g):\n    return ctx.external and g.too_few",
    "text = SUPPRESSED if hidden(rate) else rate.text",
    "rows = table[~table['too_few']]",
    "text = SUPPRESSED if r.too_few else r.text",
    "for c in curves:\n    if c.too_few:\n        continue",
    "if ctx.external:\n    table = privacy.suppress(table, 'n', ['rate'])",
    "if reader.external and pair.too_few:\n    st.info('too few')",
])
def test_the_check_catches_what_it_is_for(snippet):
    assert violations(snippet), snippet


@pytest.mark.parametrize("snippet", [
    "if overall.n == 0:\n    st.stop()",
    "if program_rate.n in (0, None): pass",
    "note = 'too few to draw' if row.too_few else ''",
    "caption = text + (' · too few to report' if g.too_few else '')",
    "flag = ['too few to report' if f else '' for f in table['too_few']]",
    "if not weeks.points.empty: pass",
    "label = f'fewer than {audience.SMALL_CELL} patients'",
    "if pop == 'itt': pass",
    "more = len(strongest) > LEAD",
    "if recorded_as != summary.condition: pass",
    "if i + 1 < len(stages): pass",
])
def test_the_check_leaves_plain_code_alone(snippet):
    assert not violations(snippet), violations(snippet)


def test_external_branches_are_allowed_only_where_marketing_goes():
    assert violations("if ctx.external: x = 1")
    assert not violations("audience = 'external' if ctx.external else 'clinical'",
                          external_page=True)
