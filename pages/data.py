"""Data: load the clinic's exports, see what ingest set aside, how complete
the records are and how current the data is."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.access import audit, auth as access
from analysis.ingest import data_quality, limits
from analysis.metrics import outcomes
from analysis.core.formatting import short_date, count, long_date, percent
from analysis.core.filters import Filters
from analysis.core.formatting import csv_bytes
from ui import auth, grid, page_context, safe, theme
from ui.grid import Column

ctx = page_context.get(__file__)
reader = ctx.audience
try:  # may this session load exports, and into which database?
    grant = auth.write_grant(ctx.source)
except access.WriteRefused as refused:
    grant, not_allowed = None, str(refused)
LAST = "data_last_ingest"       # the last load's result, shown after the rerun
ROUND = "data_upload_round"     # a new uploader after each load (clears the picked files)

# What each load counted, in columns that fit the page at 1280 px (ui.grid):
# short headers, the long name on hover.
COUNTS = {
    "rows read": Column(62, "Read", "Rows read from the file.", kind="count"),
    "accepted": Column(76, "Accepted", "Rows stored.", kind="count"),
    "quarantined": Column(72, "Set aside",
                          "Rows quarantined: refused whole (see “Rows set aside at ingest”).",
                          kind="count"),
    "duplicates collapsed": Column(64, "Merged",
                                   "Duplicate rows of one visit collapsed into one.",
                                   kind="count"),
    "values nulled": Column(62, "Nulled", "Values removed (out of range or not a number); "
                                          "the rest of the row was kept.", kind="count"),
    "rows replaced": Column(76, "Replaced",
                            "Rows of an earlier export of the same visit that this one replaced.",
                            kind="count"),
}

st.title("Data")


# -- loading exports ---------------------------------------------------------------


def readable_row(raw: str) -> str:
    """A quarantined row as exported, one field a line (as stored when it is
    not JSON)."""
    try:
        return json.dumps(json.loads(raw), indent=1, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(raw)


def remember(summary, display_names: dict, refused_uploads: list[str],
             previous: dict | None = None) -> None:
    """Keep the load's result (and files awaiting a column mapping) for the rerun."""
    table = data_quality.summary_table(summary, display_names)
    pending = {f.path: display_names.get(f.path, f.path) for f in summary.files
               if data_quality.needs_column_mapping(f)}
    if previous:  # a re-ingest of one file: replace its row, keep the others
        kept = previous["table"][~previous["table"]["file"].isin(table["file"])]
        table = pd.concat([kept, table], ignore_index=True)
        pending = {**{p: n for p, n in previous["pending"].items()
                      if p not in {f.path for f in summary.files}}, **pending}
        refused_uploads = previous["refused_uploads"] + refused_uploads
    st.session_state[LAST] = {"table": table, "pending": pending,
                              "refused_uploads": refused_uploads,
                              "at": dt.datetime.now()}


def record_audit(summary, display_names: dict) -> None:
    try:
        audit.record(grant.db_path, "ingest", user=grant.user, role=grant.role,
                     files=[{"file": display_names.get(f.path, f.path), "status": f.status,
                             "rows_read": f.rows_read, "rows_accepted": f.rows_accepted}
                            for f in summary.files])
    except Exception as error:  # the load itself succeeded; say so, don't fail
        st.session_state["data_audit_warning"] = \
            f"The ingest was not written to the audit log: {error}"


def refresh() -> None:
    """Show the new data: build its snapshot now (whoever loaded it waits for
    it; other sessions keep the previous one until it is ready), run again."""
    with st.spinner("Preparing the new data for the dashboard…"):
        data_quality.prepare_new_data(grant)
    st.rerun()


def show_last_load() -> None:
    last = st.session_state.get(LAST)
    if not last:
        return
    table: pd.DataFrame = last["table"]
    with st.container(border=True):
        st.markdown(f"**Last load** ({last['at']:%H:%M})")
        for message in last["refused_uploads"]:
            st.warning(safe.text(message))
        if not table.empty:
            refused = table[table.status == "refused"]
            loaded = table[table.status == "ingested"]
            unchanged = table[table.status == "unchanged"]
            if len(loaded):
                st.success(f"{count(len(loaded))} file(s) ingested into the clinic database.")
            if len(unchanged):
                st.info(f"{count(len(unchanged))} file(s) already loaded before: nothing changed.")
            for file_name, error in zip(refused["file"], refused["error"]):
                st.warning(f"Refused, nothing stored from it: {safe.text(error or file_name)}")
            m = st.columns(5)
            for column, (label, key) in zip(m, (("Rows read", "rows read"),
                                                ("Accepted", "accepted"),
                                                ("Quarantined", "quarantined"),
                                                ("Duplicates collapsed", "duplicates collapsed"),
                                                ("Values nulled", "values nulled"))):
                column.metric(label, count(int(table[key].sum())))
            shown = table.copy()
            for key in COUNTS:
                shown[key] = [count(v) for v in shown[key]]
            # Identifying and unknown columns are said below, errors above.
            grid.table(shown, {"file": Column(136, "File", wrap=True),
                               "status": Column(80, "Status"),
                               "export": Column(96, "Export", "The kind of export it was read as."),
                               **COUNTS})
            dropped = sorted({c.strip() for cell in table["identifying columns dropped"]
                              for c in cell.split(",") if c.strip()})
            if dropped:
                st.caption("Identifying columns dropped, never stored: " + safe.texts(dropped))
            keyed = sorted({c.strip() for cell in table["patient key pseudonymised"]
                            for c in cell.split(",") if c.strip()})
            if keyed:
                st.caption("Patient key that identifies a person, stored only as keyed "
                           "pseudonyms: " + safe.texts(keyed))
            unknown = sorted({c.strip() for cell in table["unknown columns"]
                              for c in cell.split(",") if c.strip()})
            if unknown:
                st.caption("Unknown columns reported, not used: " + safe.texts(unknown))
        warning = st.session_state.pop("data_audit_warning", None)
        if warning:
            st.warning(safe.text(warning))
        for path, name in list(last["pending"].items()):
            mapping_form(path, name)
        if st.button("Dismiss", key="data_dismiss_last"):
            for path in last["pending"]:
                data_quality.discard_upload(path)
            st.session_state.pop(LAST, None)
            st.rerun()


def mapping_form(path: str, name: str) -> None:
    """Ask which of the file's columns is each required one, then load it again."""
    try:
        request = data_quality.mapping_request(path)
    except Exception as error:  # the saved file can no longer be read
        st.warning(f"{safe.text(name)}: cannot offer a column mapping ({safe.text(error)}).")
        return
    st.markdown(f"**{safe.text(name)}**: which column holds each required field? "
                f"(read as a {request.export_kind} export)")
    form_key = "data_mapping_" + hashlib.sha1(path.encode("utf-8")).hexdigest()[:12]
    with st.form(form_key):
        choices = {}
        columns = st.columns(len(request.required))
        for column, required in zip(columns, request.required):
            suggested = request.suggested.get(required)
            choices[required] = column.selectbox(
                required, request.headers,
                index=request.headers.index(suggested) if suggested in request.headers else None,
                placeholder="choose a column", key=f"{form_key}_{required}")
        submitted = st.form_submit_button("Load with this mapping", type="primary")
    if not submitted:
        return
    try:
        column_map = data_quality.column_map_from_choices(choices)
    except ValueError as problem:
        st.warning(str(problem))
        return
    try:
        summary = data_quality.ingest_uploads([path], grant, column_map=column_map,
                                              display_names={path: name})
    except data_quality.DatabaseBusy as busy:
        st.warning(f"{safe.text(busy)}. Try again in a moment.")
        return
    remember(summary, {path: name}, [], previous=st.session_state.get(LAST))
    record_audit(summary, {path: name})
    refresh()


def upload_section() -> None:
    st.subheader("Load exports")
    st.caption(
        f"Session, medication and measurement exports (CSV, TSV, TXT, XLSX or Parquet), or a "
        f"FHIR R4 Bulk Data export (its NDJSON files together, Bundles, or a zip), up to "
        f"{limits.size_text(limits.MAX_UPLOAD_BYTES)} each, are loaded into the clinic database "
        f"`{grant.db_path.name}` and then deleted (the ingest log keeps each file's SHA-256). "
        "A later export replaces earlier rows of the same visit; loading the same file twice "
        "changes nothing. Columns that identify a person are dropped, never stored.")
    round_ = st.session_state.get(ROUND, 0)
    files = st.file_uploader("Exports", type=[s.lstrip(".") for s in data_quality.ALLOWED_SUFFIXES],
                             accept_multiple_files=True, key=f"data_uploader_{round_}")
    if not st.button(f"Load {count(len(files))} file(s)" if files else "Load files", type="primary",
                     disabled=not files, key="data_load"):
        return
    with st.status("Loading exports…", expanded=True) as status:
        bar = st.progress(0.0, text="Saving the files")
        saved, names, refused_uploads = [], {}, []
        for uploaded in files:
            try:
                path = data_quality.save_upload(grant, uploaded.name, uploaded.getvalue())
            except data_quality.UploadRefused as refusal:
                refused_uploads.append(str(refusal))
                st.write(f"Not loaded: {safe.text(refusal)}")
                continue
            saved.append(path)
            names[str(path)] = uploaded.name

        def progress(number: int, total: int, file_name: str) -> None:
            shown = next((n for p, n in names.items() if Path(p).name == file_name), file_name)
            bar.progress((number - 1) / total, text=f"Loading {shown} ({number} of {total})")

        try:
            summary = data_quality.ingest_uploads(saved, grant, display_names=names,
                                                  progress=progress)
        except data_quality.DatabaseBusy as busy:
            status.update(label="The clinic database is busy", state="error")
            st.warning(f"{safe.text(busy)}. Try again in a moment.")
            return
        bar.progress(1.0, text="Done")
        status.update(label="Loaded", state="complete")
    remember(summary, names, refused_uploads)
    record_audit(summary, names)
    st.session_state[ROUND] = round_ + 1
    refresh()


if grant is None:
    st.info(not_allowed)
else:
    upload_section()
    show_last_load()

# -- what is stored ------------------------------------------------------------------

scope_filters = safe.text(ctx.filters.describe())
fresh = ctx.call(data_quality.freshness, ctx.filters)
if fresh.ingests == 0 and fresh.refused == 0:
    st.info("No export has been loaded into this database yet.")
    st.stop()

st.subheader("Freshness")
st.caption(f"From here on: {safe.text(ctx.source.label)}.")
f1, f2, f3, f4 = st.columns([2, 2, 1, 1])
f1.metric("Data cutoff (latest visit)", long_date(fresh.cutoff))
f2.metric("Last load", long_date(fresh.last_ingest_at.date()) if fresh.last_ingest_at else "–")
f2.caption(f"at {fresh.last_ingest_at:%H:%M}" if fresh.last_ingest_at else "")
f3.metric("Files loaded", count(fresh.ingests))
f4.metric("Files refused", count(fresh.refused))
if fresh.sites.empty:
    st.info("No visits for the patients matching these filters.")
else:
    sites = fresh.sites
    st.dataframe(pd.DataFrame({
        "Site": sites["site"].fillna("Unknown"),
        "Latest visit": [long_date(d) for d in sites["latest_visit"]],
        "Days behind the cutoff": [count(d) for d in sites["days_behind_cutoff"]],
        "First visit": [long_date(d) for d in sites["first_visit"]],
        "Visits": [count(v) for v in sites["visits"]],
        "Patients": [count(v) for v in sites["patients"]],
    }), hide_index=True, width="stretch")
    in_view = ctx.call(outcomes.scope, ctx.filters)
    st.caption(f"Per site of the visit, for {scope_filters}. A site far behind the cutoff may "
               f"have missed an export. Visits here count every patient in view: "
               f"{in_view.all_visits_text()}.")

# -- completeness ------------------------------------------------------------------------

st.subheader("Completeness")
long = ctx.call(data_quality.completeness, ctx.filters)
overall = long[long.visit_type == "all"]
if overall.empty or int(overall["visits"].iloc[0]) == 0:
    st.info("No visits for the patients matching these filters.")
else:
    key = ctx.call(data_quality.key_completeness, ctx.filters)
    st.dataframe(height=36 * (len(key) + 1) + 2, data=pd.DataFrame({
        "Column": key["column"],
        "On": key["visit_types"],
        "Needed for": key["why"],
        "Recorded": [f"{percent(s)} ({count(r)} of {count(n)})" if n else "no such visits"
                     for s, r, n in zip(key["share"], key["recorded"], key["visits"])],
    }), hide_index=True, width="stretch")
    patients = ctx.call(data_quality.patient_completeness, ctx.filters)
    st.dataframe(pd.DataFrame({
        "Treated patients with": patients["item"],
        "Share": [f"{percent(s)} ({count(p)} of {count(t)})" if t else "–"
                  for s, p, t in zip(patients["share"], patients["patients"], patients["treated"])],
    }), hide_index=True, width="stretch")

    order = ["all", "intake", "infusion", "booster", "follow_up"]
    present = [v for v in order if v in set(long.visit_type)]
    shares = long.pivot(index="column", columns="visit_type", values="share").reindex(
        index=list(data_quality.COMPLETENESS_COLUMNS), columns=present)
    visits_by_type = long.drop_duplicates("visit_type").set_index("visit_type")["visits"]
    labels = [safe.Markup(f"{'all visits' if v == 'all' else v.replace('_', '-')}<br>"
                          f"({count(visits_by_type[v])})") for v in present]
    fig = go.Figure(go.Heatmap(
        z=shares.values, x=labels, y=list(shares.index), zmin=0, zmax=1,
        colorscale=[[0, "#f7f7f7"], [1, theme.PRIMARY]],
        text=[[percent(v) for v in row] for row in shares.values], texttemplate="%{text}",
        hovertemplate="%{y} on %{x}: %{text}<extra></extra>",
        colorbar=dict(title=dict(text="recorded", side="right"), tickformat=".0%")))
    fig.update_yaxes(autorange="reversed")
    st.plotly_chart(theme.styled(fig, "Share of visits recording each column, by visit type",
                                 height=640), width="stretch")
    st.caption(f"Visits of {scope_filters}. Opioid dose and benzodiazepine include what the "
               "medication export filled in. Many columns belong to one visit type only (e.g. "
               "pain after the infusion), so a low share over all visits is expected.")

# -- set aside at ingest -------------------------------------------------------------------

st.subheader("Rows set aside at ingest (quarantine)")
quarantine = ctx.call(data_quality.quarantine_rows, reader)
st.caption("Rows refused whole (no patient, date or known visit type, or conflicting copies). "
           "They belong to no stored visit, so the sidebar filters do not apply."
           + ("" if reader.sees_patients else
              " For your role: where each row is (file and line) and why, never its patient "
              "or values; the clinical team sees the row as exported."))
if quarantine.empty:
    st.success("No row has been quarantined.")
else:
    reasons = quarantine.groupby("reason").size().sort_values(ascending=False)
    st.markdown(" · ".join(f"{safe.text(reason)}: **{count(n)}**" for reason, n in reasons.items()))
    shown = quarantine.rename(columns={"ingest_id": "load", "ingested_at": "loaded at",
                                       "file_name": "file", "raw_row": "row as exported"})
    # When a load ran is in the ingest log below; here, what was set aside.
    # The row as exported (the clinical team's) is a few hundred characters:
    # it is shown whole below the grid, one row at a time, not cut in a cell.
    grid.table(shown.astype({"load": str, "line": str}), {
        "load": Column(50, "Load", "The load (see the ingest log)."),
        "file": Column(150, "File", wrap=True),
        "line": Column(62, "Line", "Line of the file (the header is line 1)."),
        "reason": Column(530, "Why set aside", wrap=True)})
    if "row as exported" in shown:
        picked = st.selectbox(
            "See a row as exported", range(len(shown)), index=None,
            format_func=lambda i: f"{shown['file'].iloc[i]}, line {shown['line'].iloc[i]} "
                                  f"(load {shown['load'].iloc[i]})",
            placeholder="Choose a row set aside", key="data_quarantine_row")
        if picked is not None:
            st.code(readable_row(shown["row as exported"].iloc[picked]), language="json",
                    wrap_lines=True)
    auth.download_button(ctx.source, "Download quarantine (CSV)",
                         csv_bytes(shown, synthetic=ctx.snap.synthetic),
                         "quarantine.csv", "text/csv", what="quarantine",
                         key="data_download_quarantine")

st.subheader("Values removed at ingest")
issues = ctx.call(data_quality.value_issue_rows, ctx.filters, reader)
st.caption("A value out of range or not a number is removed (the rest of the row kept) and "
           "logged here"
           + (" with what the export said." if reader.sees_patients else
              ": file, line, column and why; for your role never the patient, date or value.")
           + (f" Only the patients of {scope_filters}." if ctx.filters != Filters()
              else ""))
if issues.empty:
    st.success("No value has been removed.")
else:
    shown = issues.rename(columns={"ingest_id": "load", "file_name": "file",
                                   "patient_id": "patient", "visit_date": "date",
                                   "visit_type": "visit", "column_name": "column",
                                   "raw_value": "value in the export"})
    for column in ("patient", "visit"):
        if column in shown:
            shown[column] = shown[column].fillna("")
    if "date" in shown:
        shown["date"] = [short_date(d) if d is not None and not pd.isna(d) else ""
                         for d in shown["date"]]
    # Why, per column: a few reasons, each written once (the rows below
    # name the column; every row's reason is in the download).
    reasons = (shown.groupby(["column", "reason"]).size().rename("values").reset_index()
               .sort_values(["values", "column"], ascending=[False, True]))
    reasons["values"] = [count(v) for v in reasons["values"]]
    grid.table(reasons, {"column": Column(150, "Column"),
                         "reason": Column(560, "Why removed", wrap=True),
                         "values": Column(80, "Values", "Values removed for this reason.",
                                           kind="count")})
    sees_rows = "patient" in shown   # the clinical team's: patient, date, value
    grid.table(shown.astype({"load": str, "line": str}), {
        "load": Column(50, "Load", "The load (see the ingest log)."),
        "file": Column(124, "File", wrap=True),
        "line": Column(62, "Line", "Line of the file (the header is line 1)."),
        "patient": Column(72, "Patient"),
        "date": Column(88, "Date", "Date of the visit."),
        "visit": Column(78, "Visit", "Visit type."),
        "column": Column(150, "Column"),
        "value in the export": Column(96, "Value", "What the export said.", wrap=True),
        **({} if sees_rows else {"reason": Column(330, "Why removed", wrap=True)})})
    auth.download_button(ctx.source, "Download value issues (CSV)",
                         csv_bytes(shown, synthetic=ctx.snap.synthetic),
                         "value_issues.csv", "text/csv", what="value issues",
                         key="data_download_value_issues")

# -- the ingest log ------------------------------------------------------------------------

st.subheader("Ingest log")
log = ctx.call(data_quality.ingest_history)
# Two tables that each fit the page: what each load counted, and what it
# said about the export's columns.
load = log["ingest_id"].astype(str)
LOAD = Column(50, "Load", "The load's number (the quarantine and value issues name it).")
counts_table = pd.DataFrame({
    "Load": load,
    "When": [f"{pd.Timestamp(t):%Y-%m-%d %H:%M}" for t in log["ingested_at"]],
    "File": log["file_name"],
    "Status": log["status"],
    **{key.capitalize(): [count(v) for v in log[column]] for key, column in (
        ("rows read", "rows_read"), ("accepted", "rows_accepted"),
        ("quarantined", "rows_quarantined"), ("duplicates collapsed", "duplicates_collapsed"),
        ("values nulled", "values_nulled"), ("rows replaced", "rows_replaced"))},
})
columns_table = pd.DataFrame({
    "Load": load,
    "File": log["file_name"],
    "Export": log["export_kind"].fillna(""),
    "Identifying columns dropped": log["dropped_identifying_columns"],
    "Patient key pseudonymised": log["pseudonymised_columns"],
    "Unknown columns": log["unknown_columns"],
    "Message": log["message"].fillna(""),
})
grid.table(counts_table, {"Load": LOAD, "When": Column(118, "Loaded", "Date and time of the load."),
                          "File": Column(128, wrap=True), "Status": Column(80),
                          **{key.capitalize(): spec for key, spec in COUNTS.items()}})
st.markdown("**What each load said about the export's columns**")
grid.table(columns_table, {
    "Load": LOAD, "File": Column(128, wrap=True),
    "Export": Column(96, help="The kind of export it was read as."),
    "Identifying columns dropped": Column(
        130, "Dropped", "Columns that identify a person: dropped, never stored.", wrap=True),
    "Patient key pseudonymised": Column(
        116, "Pseudonymised", "A patient key that identifies a person, stored only as keyed "
                              "pseudonyms.", wrap=True),
    "Unknown columns": Column(110, "Unknown", "Columns not known: reported, not used.",
                              wrap=True),
    "Message": Column(170, wrap=True)})
