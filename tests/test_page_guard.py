"""The role guard (ui/page_guard.py): a page the user's role may not open
stops before it draws anything.  The navigation already leaves such pages
out; the guard is the second check, for a page run some other way (a stale
link, Streamlit's direct-file mode, a harness).  It goes by the page's own
file, which the page passes, never by something a session, a URL or the
call stack says, and it fails closed on a page it cannot place."""

from __future__ import annotations

import ast
import shutil

import pytest

from tests.helpers.apptest import ROOT, page_alone
from ui import page_guard
from ui.pages import PAGES, ROLES


def run_alone(page_file, db_path, snapshot, role, query=None):
    """Run one page file on its own with a ``role``'s context in the session
    (as dashboard.py leaves it), the way a page runs when Streamlit opens its
    file directly."""
    return page_alone(page_file, db_path, role=role, snapshot=snapshot, query=query, check=False)


def drew_nothing(app) -> bool:
    return (not app.dataframe and not app.table and not app.metric
            and not app.get("plotly_chart") and not app.get("download_button"))


def test_a_page_the_guard_cannot_place_is_refused(tmp_path, demo_db, demo_snapshot):
    """The worklist's own code, run from another folder (a stale copy, a
    harness): not one of the dashboard's pages, so it is refused even for
    the clinical team, whom the real worklist is for.  A guard that lets
    through what it does not recognise (the stack-frame guard matched the
    caller's file against the page list and passed anything else) fails."""
    copy = tmp_path / "pages" / "worklist.py"
    copy.parent.mkdir()
    shutil.copy(ROOT / "pages" / "worklist.py", copy)
    app = run_alone(copy, demo_db, demo_snapshot, "clinical")
    assert not app.exception, [e.message for e in app.exception]
    assert any("not one of the dashboard's pages" in w.value for w in app.warning), \
        [w.value for w in app.warning]
    assert drew_nothing(app)


@pytest.mark.parametrize("spec", PAGES, ids=lambda spec: spec.title)
def test_each_page_opens_for_its_roles_only(spec):
    for role in ROLES:
        for page_file in (spec.path, ROOT / spec.path, str((ROOT / spec.path).resolve())):
            why = page_guard.refusal(page_file, role)
            if role in spec.roles:
                assert why is None, (page_file, role)
            else:
                assert why == f"The {spec.title} page is not available to the {role} role."


@pytest.mark.parametrize("page_file", [
    "pages/no_such_page.py", "dashboard.py", "ui/page_context.py", "worklist.py",
    "pages/../pages/../worklist.py", ""])
def test_a_file_that_is_not_a_page_is_refused_for_every_role(page_file):
    for role in ROLES:
        assert "not one of the dashboard's pages" in page_guard.refusal(page_file, role)


PAGE_FILES = sorted((ROOT / "pages").glob("*.py"))


def test_the_page_list_and_the_page_files_agree():
    """Every page file is in the page list (else the guard refuses it for
    everyone) and every listed page has its file."""
    assert {p.relative_to(ROOT).as_posix() for p in PAGE_FILES} == {s.path for s in PAGES}


def _asks_for_its_context(call: ast.AST) -> bool:
    return (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == "get" and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "page_context")


@pytest.mark.parametrize("path", PAGE_FILES, ids=lambda p: p.name)
def test_every_page_names_itself_before_it_draws(path):
    """A page's first statement after its imports is
    ``ctx = page_context.get(__file__)``: its own file, not another page's
    name (which would borrow that page's roles), and before anything is
    drawn or computed."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = [node for node in tree.body
            if not isinstance(node, (ast.Import, ast.ImportFrom))
            and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    first = body[0]
    assert isinstance(first, ast.Assign) and _asks_for_its_context(first.value), \
        f"{path.name}: first statement is not ctx = page_context.get(__file__)"
    assert [ast.dump(a) for a in first.value.args] == [ast.dump(ast.Name("__file__", ast.Load()))]
    assert not first.value.keywords
    asks = [n for n in ast.walk(tree) if _asks_for_its_context(n)]
    assert len(asks) == 1, f"{path.name} asks for its context {len(asks)} times"


def test_the_guard_reads_no_call_stack():
    """No UI module finds out which page runs by inspecting frames."""
    for path in sorted((ROOT / "ui").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for needle in ("_getframe", "inspect.stack", "inspect.currentframe", "f_back", "co_filename"):
            assert needle not in text, f"{path.name} uses {needle}"


@pytest.mark.parametrize("role", ["analyst", "marketing"])
def test_the_role_is_the_sessions_not_the_addresses(demo_db, demo_snapshot, role):
    """The worklist run for an analyst or marketing session stays refused
    whatever the URL carries (a role, a page, a patient)."""
    app = run_alone(ROOT / "pages" / "worklist.py", demo_db, demo_snapshot, role,
                    query={"role": "clinical", "page": "worklist", "patient": "P0001"})
    assert not app.exception, [e.message for e in app.exception]
    assert [w.value for w in app.warning] == [
        f"The Follow-up worklist page is not available to the {role} role."]
    assert drew_nothing(app)
