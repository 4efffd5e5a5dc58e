"""Load test: concurrent users clicking through the dashboard while an
ingest writes to the same database.  Loopback only, bounded in sessions,
pages and time; stops by itself.

    python bench/load_test.py [--sessions 20] [--rounds 2] [--patients 2000]
                              [--time-limit 600] [--think 2] [--client websocket|browser]

Each user signs in, then switches through PAGES ``--rounds`` times, reading
each page ``--think`` seconds before the next click (default 2 s, a fast
reader; ``--think 0`` is a stress test with no reading time at all).  Two kinds of user (``--client``):

* ``websocket`` (default): a Streamlit websocket client that speaks the
  frontend's own protocol on ``/_stcore/stream`` (protobuf BackMsg
  ``rerun_script`` out, ForwardMsg in).  It sends what the browser sends (the
  page's script hash from the ``navigation`` message, the sidebar's widget
  values, the sign-in form's values with the submit trigger, the hashes of
  the messages it has cached) and times a click from sending the rerun to
  ``script_finished``.  It checks that the page's title was drawn and reports
  every exception or ``st.error`` element.  The server does the same script
  runs and sends the same messages as for a browser (only the static files
  are not fetched), without 20 Chromiums competing for the CPU.
* ``browser``: headless Chromium through Playwright, timed from the click to
  the page drawn and idle (includes the browser's own rendering).  Needs
  Debian's chromium (/usr/bin/chromium) and the playwright package; on a
  2-core machine 20 Chromiums swamp the CPU themselves.

Reports p50/p95/max page-load time and every error seen.  Target on a 2-core
machine: p95 < 3 s with 20 sessions, no errors.  ``--verbose`` prints what each
websocket page load received (element types, headings).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.access import auth
from analysis.storage import db
from analysis.ingest.pipeline import ingest_files  # noqa: E402
from analysis.ingest.demo.generate import generate_demo  # noqa: E402
from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, running_dashboard  # noqa: E402
from ui.pages import PAGES as PAGE_SPECS  # noqa: E402

PAGES = ["Conditions", "Pain over time", "Opioid tapering", "Patient flow", "Claim check",
         "Overview"]
PASSWORD = "load-test-password"
RAMP_UP = 0.5  # seconds between two users' arrivals
PAGE_TIMEOUT = 60.0  # seconds one click may take before it counts as an error


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def wait_idle(page, timeout: float = 60.0) -> None:
    """Drawn and idle: the status line is there and nothing runs for 0.3 s."""
    await page.wait_for_selector("[data-testid='stMain'] >> text=data cutoff",
                                 timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        running = await page.query_selector("[data-testid='stStatusWidget']")
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 0.3:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("page did not become idle")


async def user_session(browser, base: str, number: int, rounds: int, think: float, loads: list,
                       errors: list):
    await asyncio.sleep(number * RAMP_UP)  # users arrive over a few seconds, not at once
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(60_000)
    try:
        await page.goto(base, wait_until="domcontentloaded", timeout=60_000)
        await page.get_by_label("User name").fill(f"user{number}")
        await page.get_by_role("textbox", name="Password").fill(PASSWORD)
        start = time.monotonic()
        await page.get_by_role("button", name="Sign in").click()
        await wait_idle(page)
        loads.append(("Overview (sign-in)", time.monotonic() - start))
        for _ in range(rounds):
            for title in PAGES:
                if think:
                    await asyncio.sleep(think)
                start = time.monotonic()
                spec = next(s for s in PAGE_SPECS if s.title == title)
                stem = "" if spec.default else Path(spec.path).stem
                await page.get_by_role("link", name=title).first.click()
                target = f"{base}/{stem}".rstrip("/")
                await page.wait_for_url(
                    lambda url, target=target: url.split("?")[0].rstrip("/") == target,
                    timeout=60_000)
                await wait_idle(page)
                loads.append((title, time.monotonic() - start))
                problems = await page.query_selector_all(
                    "[data-testid='stException'], [data-testid='stAlertContentError']")
                for problem in problems:
                    errors.append(f"session {number} {title}: {(await problem.inner_text())[:200]}")
    except Exception as error:  # noqa: BLE001 - every failure is reported
        errors.append(f"session {number}: {type(error).__name__}: {str(error)[:200]}")
    finally:
        await context.close()


async def drive_browser(base: str, sessions: int, rounds: int, think: float, ingest_during,
                        time_limit: float):
    from playwright.async_api import async_playwright
    loads: list[tuple[str, float]] = []
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=CHROMIUM_ARGS)
        tasks = [user_session(browser, base, n, rounds, think, loads, errors)
                 for n in range(sessions)]
        ingest_seconds = await run_with_ingest(tasks, ingest_during, time_limit, errors)
        await browser.close()
    return loads, errors, ingest_seconds


async def run_with_ingest(tasks: list, ingest_during, time_limit: float, errors: list) -> float:
    """Run the users' sessions, bounded in time, while the ingest writes."""
    writer = asyncio.get_running_loop().run_in_executor(None, ingest_during)
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=time_limit)
    except TimeoutError:
        errors.append(f"time limit of {time_limit:.0f} s reached")
    return await writer


# --- websocket clients -------------------------------------------------------
#
# What the frontend does (streamlit/static/.../index.js, app_session.py,
# web/server/starlette/starlette_websocket.py): it opens /_stcore/stream with
# the subprotocol "streamlit" (the next entries would carry an XSRF token and a
# session id to resume; the server only needs them for st.login's cookie and
# for reconnects), then sends a BackMsg rerun_script for every run it wants:
# the first with an empty page_script_hash and the URL's page name, a page
# switch with that page's script hash from the `navigation` message, always
# with the current query string, the values of the widgets on screen and the
# hashes of the big messages it has cached (the server then sends a ref_hash
# instead of the message).  The server answers with ForwardMsgs: new_session
# at the start of each run, navigation, delta (the elements), page_info_changed
# (query string) and script_finished at the end.


def _page_headings() -> dict[str, str]:
    """Navigation title -> the st.title the page draws (e.g. Overview -> Program overview)."""
    headings = {}
    for spec in PAGE_SPECS:
        try:
            source = (ROOT / spec.path).read_text(encoding="utf-8")
        except OSError:
            continue
        found = re.search(r"""st\.title\(\s*(["'])(.+?)\1""", source)
        headings[spec.title] = found.group(2) if found else spec.title
    return headings


def _widget_state(element):
    """The WidgetState a widget element carries: the value the script set
    (``set_value``, e.g. through session state), else the widget's default.
    None for a button (a trigger is only sent when clicked) or a kind not
    modelled here (the server keeps its last value for a widget the client
    leaves out)."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    kind = element.WhichOneof("type")
    widget = getattr(element, kind)
    state = WidgetState(id=widget.id)
    if kind in ("text_input", "text_area"):
        if widget.set_value:
            if not widget.HasField("value"):
                return None
            state.string_value = widget.value
        elif widget.HasField("default"):
            state.string_value = widget.default
        else:
            return None
    elif kind == "checkbox":
        state.bool_value = widget.value if widget.set_value else widget.default
    elif kind == "number_input":
        if widget.set_value and widget.HasField("value"):
            state.double_value = widget.value
        elif not widget.set_value and widget.HasField("default"):
            state.double_value = widget.default
        else:
            return None
    elif kind in ("selectbox", "radio"):
        if widget.set_value:
            if not widget.HasField("raw_value"):
                return None
            state.string_value = widget.raw_value
        elif widget.HasField("default") and widget.default < len(widget.options):
            state.string_value = widget.options[widget.default]
        else:
            return None
    elif kind == "multiselect":
        values = (list(widget.raw_values) if widget.set_value
                  else [widget.options[i] for i in widget.default if i < len(widget.options)])
        state.string_array_value.data[:] = values
    elif kind == "slider":
        if widget.type == widget.SELECT_SLIDER:
            values = (list(widget.raw_value) if widget.set_value
                      else [widget.options[int(i)] for i in widget.default])
            state.string_array_value.data[:] = values
        else:
            state.double_array_value.data[:] = list(widget.value if widget.set_value
                                                    else widget.default)
    else:
        return None
    return state


class Run:
    """What one rerun drew: its elements (with the script that drew them) and problems."""

    def __init__(self, page_script_hash: str):
        self.page_script_hash = page_script_hash
        self.elements: list = []  # (Element, active_script_hash)
        self.problems: list[str] = []

    def kinds(self) -> list[str]:
        return [element.WhichOneof("type") for element, _ in self.elements]

    def headings(self) -> list[str]:
        return [element.heading.body for element, _ in self.elements
                if element.WhichOneof("type") == "heading"]

    def texts(self) -> list[str]:
        texts = []
        for element, _ in self.elements:
            kind = element.WhichOneof("type")
            if kind == "heading":
                texts.append(element.heading.body)
            elif kind == "markdown":
                texts.append(element.markdown.body)
        return texts

    def errors(self) -> list[str]:
        from streamlit.proto.Alert_pb2 import Alert

        found = list(self.problems)
        for element, _ in self.elements:
            kind = element.WhichOneof("type")
            if kind == "exception":
                exc = element.exception
                found.append(f"{exc.type}: {exc.message}")
            elif kind == "alert" and element.alert.format == Alert.ERROR:
                found.append(element.alert.body)
        return [" ".join(text.split()) for text in found]

    def widgets(self, script_hash: str | None = None) -> dict:
        """id -> element of every widget drawn (by one script only, if given)."""
        found = {}
        for element, active in self.elements:
            widget = getattr(element, element.WhichOneof("type") or "", None)
            if getattr(widget, "id", "") and (script_hash is None or active == script_hash):
                found[widget.id] = element
        return found


class StreamlitClient:
    """One browser tab's worth of Streamlit protocol over a websocket."""

    def __init__(self, base: str):
        self.base = base
        self.url = base.replace("http://", "ws://", 1) + "/_stcore/stream"
        self.socket = None
        self.reader = None
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.cache: dict[str, list] = {}  # hash -> [ForwardMsg, run count last used]
        self.run_count = 0
        self.max_cache_age = 2
        self.query_string = ""
        self.main_script_hash = ""
        self.pages: dict[str, str] = {}  # page title -> page_script_hash
        self.values: dict = {}  # widget id -> the WidgetState the frontend holds for it

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        self.socket = await connect(self.url, subprotocols=["streamlit"], max_size=None,
                                    ping_interval=None, proxy=None, open_timeout=PAGE_TIMEOUT,
                                    origin=self.base)
        self.reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        try:
            async for payload in self.socket:
                self.inbox.put_nowait((time.monotonic(), ForwardMsg.FromString(payload)))
        except Exception as error:  # noqa: BLE001 - reported by whoever waits
            self.inbox.put_nowait((time.monotonic(), error))
            return
        self.inbox.put_nowait((time.monotonic(), ConnectionError("server closed the websocket")))

    def _resolve(self, msg):
        """Cache big messages as the frontend does; expand a ref_hash from the cache."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if msg.WhichOneof("type") == "ref_hash":
            entry = self.cache.get(msg.ref_hash)
            if entry is None:
                raise RuntimeError(f"cached ForwardMsg miss for {msg.ref_hash}")
            entry[1] = self.run_count
            full = ForwardMsg()
            full.CopyFrom(entry[0])
            full.metadata.CopyFrom(msg.metadata)
            return full
        if msg.metadata.cacheable and msg.hash:
            self.cache[msg.hash] = [msg, self.run_count]
        return msg

    def _remember(self, element) -> None:
        """Keep a widget's value as the frontend does: a new widget starts at
        the value it carries; later runs change it only when the script sets
        it (``set_value``), otherwise the user's last value stays."""
        widget = getattr(element, element.WhichOneof("type") or "", None)
        widget_id = getattr(widget, "id", "")
        if not widget_id or not (getattr(widget, "set_value", False)
                                 or widget_id not in self.values):
            return
        state = _widget_state(element)
        if state is None:  # set to no value, or a kind not modelled: send nothing
            self.values.pop(widget_id, None)
        else:
            self.values[widget_id] = state

    def states(self, widget_ids, **changed) -> list:
        """The widget states to send for these widgets; `changed` maps an id to
        a new value (a user's input) or to True for a button's trigger."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        states = []
        for widget_id in widget_ids:
            if widget_id in changed and changed[widget_id] is True:
                states.append(WidgetState(id=widget_id, trigger_value=True))
                continue
            state = self.values.get(widget_id)
            if widget_id in changed:
                state = WidgetState(id=widget_id, string_value=changed[widget_id])
                self.values[widget_id] = state
            if state is not None:
                states.append(state)
        return states

    def _age_cache(self) -> None:
        self.run_count += 1
        for key in [k for k, (_, used) in self.cache.items()
                    if self.run_count - used > self.max_cache_age]:
            del self.cache[key]

    async def rerun(self, page_script_hash: str = "", page_name: str = "", widgets=(),
                    timeout: float = PAGE_TIMEOUT) -> tuple[float, Run]:
        """Send a rerun_script and wait for the run to finish; (seconds, what it drew)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        back = BackMsg()
        state = back.rerun_script
        state.query_string = self.query_string
        state.page_script_hash = page_script_hash
        state.page_name = page_name
        state.widget_states.widgets.extend(widgets)
        state.cached_message_hashes.extend(self.cache)
        info = state.context_info
        info.timezone, info.timezone_offset, info.locale = "UTC", 0, "en-US"
        info.url, info.is_embedded, info.color_scheme = self.base + "/", False, "light"
        start = time.monotonic()
        await self.socket.send(back.SerializeToString())
        run = Run(page_script_hash)
        deadline = start + timeout
        while True:
            try:
                arrived, msg = await asyncio.wait_for(self.inbox.get(),
                                                      max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise TimeoutError(f"no script_finished within {timeout:.0f} s") from None
            if isinstance(msg, BaseException):
                raise msg
            msg = self._resolve(msg)
            kind = msg.WhichOneof("type")
            if kind == "new_session":  # a run starts (st.rerun() starts another)
                run = Run(msg.new_session.page_script_hash)
                self.main_script_hash = msg.new_session.main_script_hash
                if msg.new_session.config.max_cached_message_age:
                    self.max_cache_age = msg.new_session.config.max_cached_message_age
            elif kind == "navigation":
                self.pages = {page.page_name: page.page_script_hash
                              for page in msg.navigation.app_pages}
                run.page_script_hash = msg.navigation.page_script_hash or run.page_script_hash
            elif kind == "page_info_changed":
                self.query_string = msg.page_info_changed.query_string
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                run.elements.append((msg.delta.new_element, msg.metadata.active_script_hash))
                self._remember(msg.delta.new_element)
            elif kind == "page_not_found":
                run.problems.append(f"page not found: {msg.page_not_found.page_name!r}")
            elif kind == "session_event" and msg.session_event.HasField(
                    "script_compilation_exception"):
                exc = msg.session_event.script_compilation_exception
                run.problems.append(f"{exc.type}: {exc.message}")
            elif kind == "script_finished":
                status = msg.script_finished
                if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # st.rerun(): the next run follows
                if status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                    continue
                self._age_cache()
                drawn = run.widgets()  # the frontend forgets widgets no longer drawn
                self.values = {k: v for k, v in self.values.items() if k in drawn}
                if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    run.problems.append("script finished with a compile error")
                return arrived - start, run


def _describe(run: Run) -> str:
    kinds = collections.Counter(run.kinds())
    return (f"{len(run.elements)} elements ({', '.join(f'{k} {n}' for k, n in kinds.most_common())})"
            f"; headings {run.headings()}")


async def open_sign_in(client: StreamlitClient) -> tuple[float, Run]:
    """The first run, as a browser opening the root URL: the sign-in page."""
    return await client.rerun(page_name="")


async def submit_sign_in(client: StreamlitClient, run: Run, user_name: str,
                         password: str) -> tuple[float, Run]:
    """Fill in and submit the sign-in form ``run`` drew; (seconds, what the
    next run drew: the first page, or the form again with its message)."""
    widgets = run.widgets()
    by_label = {getattr(el, el.WhichOneof("type")).label: el for el in widgets.values()}
    user, secret = by_label.get("User name"), by_label.get("Password")
    submit = next((el for el in widgets.values() if el.WhichOneof("type") == "button"
                   and el.button.is_form_submitter and el.button.label == "Sign in"), None)
    if not (user and secret and submit):
        raise RuntimeError(f"no sign-in form; got {_describe(run)}; errors {run.errors()}")
    # Submitting a form: the values of the widgets on screen, the form's
    # fields included, plus a trigger for the submit button.
    states = client.states(widgets, **{user.text_input.id: user_name,
                                       secret.text_input.id: password,
                                       submit.button.id: True})
    return await client.rerun(run.page_script_hash, widgets=states)


async def ws_user_session(base: str, number: int, rounds: int, think: float, loads: list,
                          errors: list, verbose: bool) -> None:
    await asyncio.sleep(number * RAMP_UP)  # users arrive over a few seconds, not at once
    headings = _page_headings()
    client = StreamlitClient(base)
    where = f"session {number}"

    def show(title: str, seconds: float, run: Run) -> None:
        if verbose:
            print(f"  [{where}] {title}: {seconds:.2f} s, {_describe(run)}", flush=True)

    try:
        await client.connect()
        seconds, run = await open_sign_in(client)
        show("open", seconds, run)
        seconds, run = await submit_sign_in(client, run, f"user{number}", PASSWORD)
        show("sign in", seconds, run)
        if "Sign in" in run.headings() or headings["Overview"] not in run.headings():
            raise RuntimeError(f"sign-in failed: {run.errors() or _describe(run)}")
        loads.append(("Overview (sign-in)", seconds))
        for problem in run.errors():
            errors.append(f"{where} Overview (sign-in): {problem[:200]}")
        for _ in range(rounds):
            for title in PAGES:
                if think:
                    await asyncio.sleep(think)
                page_hash = client.pages.get(title)
                if not page_hash:
                    errors.append(f"{where} {title}: not in the navigation {sorted(client.pages)}")
                    continue
                # A page switch sends the values of the widgets the main script
                # drew (the sidebar's filters); the page's own are cleared.
                states = client.states(run.widgets(client.main_script_hash))
                seconds, run = await client.rerun(page_hash, widgets=states)
                show(title, seconds, run)
                if run.page_script_hash != page_hash or headings[title] not in run.texts():
                    errors.append(f"{where} {title}: page not drawn: "
                                  f"{'; '.join(run.errors()) or _describe(run)}"[:400])
                    continue
                loads.append((title, seconds))
                for problem in run.errors():
                    errors.append(f"{where} {title}: {problem[:200]}")
    except Exception as error:  # noqa: BLE001 - every failure is reported
        errors.append(f"{where}: {type(error).__name__}: {str(error)[:300]}")
    finally:
        await client.close()


async def drive_websocket(base: str, sessions: int, rounds: int, think: float, ingest_during,
                          time_limit: float, verbose: bool = False):
    loads: list[tuple[str, float]] = []
    errors: list[str] = []
    tasks = [ws_user_session(base, n, rounds, think, loads, errors, verbose)
             for n in range(sessions)]
    ingest_seconds = await run_with_ingest(tasks, ingest_during, time_limit, errors)
    return loads, errors, ingest_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--time-limit", type=float, default=600)
    parser.add_argument("--think", type=float, default=2.0,
                        help="seconds a user reads a page before the next click (default 2, "
                             "a fast reader; 0 is a stress test: every user clicks the moment "
                             "a page is drawn)")
    parser.add_argument("--client", choices=("websocket", "browser"), default="websocket",
                        help="websocket: Streamlit protocol clients (default); "
                             "browser: headless Chromium through Playwright")
    parser.add_argument("--verbose", action="store_true",
                        help="websocket: print what every page load received")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="load-test-"))
    exports = generate_demo(work / "exports", patients=args.patients, seed=7)
    later = generate_demo(work / "later", patients=args.patients, seed=8)
    db_path = work / "clinic.duckdb"
    with db.writer(db_path) as con:
        ingest_files(con, [exports.sessions, exports.medications])
    users = work / "users.toml"
    for n in range(args.sessions):
        auth.add_user(users, f"user{n}", "clinical", PASSWORD)

    env = {**os.environ, "OUTCOMES_DB": str(db_path), "OUTCOMES_USERS": str(users)}

    def ingest_during() -> float:
        time.sleep(5)  # let the sessions start, then write while they read
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "analysis", "ingest", str(later.sessions),
                        "--db", str(db_path)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        return time.monotonic() - start

    # Serve the code as it was at start: with the file watcher on, an edit to
    # a module in the tree during the run makes Streamlit unload it under the
    # running sessions (KeyError: 'analysis.storage.db', cache errors).
    try:
        with running_dashboard(env, extra_args=["--server.fileWatcherType", "none"],
                               timeout=60) as (base, server):
            started, client_cpu = time.monotonic(), time.process_time()
            server_cpu = process_cpu_seconds(server.pid)
            if args.client == "browser":
                run = drive_browser(base, args.sessions, args.rounds, args.think, ingest_during,
                                    args.time_limit)
            else:
                run = drive_websocket(base, args.sessions, args.rounds, args.think,
                                      ingest_during, args.time_limit, args.verbose)
            loads, errors, ingest_seconds = asyncio.run(run)
            elapsed, client_cpu = time.monotonic() - started, time.process_time() - client_cpu
            server_end = process_cpu_seconds(server.pid)
            server_cpu = (None if server_cpu is None or server_end is None
                          else server_end - server_cpu)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    times = sorted(t for _, t in loads)
    kind = "websocket clients" if args.client == "websocket" else "headless Chromiums"
    print(f"{args.sessions} {kind} × {args.rounds} rounds of {len(PAGES)} pages on "
          f"{args.patients:,} demo patients, ingest of {later.visit_rows:,} visits during the run "
          f"({ingest_seconds:.1f} s); think {args.think:g} s; wall time {elapsed:.0f} s")
    cpu = f"server CPU {server_cpu:.0f} s" if server_cpu is not None else "server CPU n/a"
    if args.client == "websocket":
        cpu += f", load-test clients' CPU {client_cpu:.0f} s"
    print(f"{cpu}; {os.cpu_count()} cores, load average at the end "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if times:
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        print(f"page loads: {len(times)}  p50 {statistics.median(times):.2f} s  "
              f"p95 {p95:.2f} s  max {times[-1]:.2f} s")
        by_page: dict[str, list[float]] = {}
        for title, seconds in loads:
            by_page.setdefault(title, []).append(seconds)
        for title, values in by_page.items():
            print(f"  {title:<22} median {statistics.median(values):.2f} s  n={len(values)}")
    print(f"errors: {len(errors)}")
    for error in errors[:20]:
        print("  " + error)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
