"""The dashboard's pages and which roles may open each (issue: access control).

A page a role may not see is left out of its navigation, so Streamlit refuses
a direct URL to it.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("clinical", "analyst", "marketing")


#: The shared sidebar's controls: the patients in view (sites, conditions,
#: routes), the cohort range, and the outcome settings.  A page lists the ones
#: that change what it shows; the sidebar draws only those (issue 19: a control
#: that does nothing on a page is not there).
ALL_CONTROLS = frozenset({"patients", "cohort", "timepoint", "definition", "population", "ci"})
PATIENTS = frozenset({"patients", "cohort"})


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    icon: str
    section: str
    roles: tuple[str, ...]
    default: bool = False
    controls: frozenset = ALL_CONTROLS


ALL = ROLES
AGGREGATE = ("clinical", "analyst")

PAGES = (
    PageSpec("pages/overview.py", "Overview", ":material/dashboard:", "Program", AGGREGATE, True),
    PageSpec("pages/conditions.py", "Conditions", ":material/stacked_bar_chart:", "Program", AGGREGATE),
    PageSpec("pages/pain.py", "Pain over time", ":material/show_chart:", "Program", AGGREGATE,
             controls=PATIENTS | {"timepoint", "definition"}),
    PageSpec("pages/opioids.py", "Opioid tapering", ":material/medication:", "Program", AGGREGATE,
             controls=PATIENTS | {"timepoint", "population", "ci"}),
    PageSpec("pages/patient_flow.py", "Patient flow", ":material/account_tree:", "Program",
             AGGREGATE, controls=PATIENTS | {"timepoint", "definition"}),
    PageSpec("pages/mood.py", "Depression & PTSD", ":material/psychology:", "Program", AGGREGATE,
             controls=PATIENTS | {"timepoint", "population", "ci"}),
    PageSpec("pages/safety.py", "Safety", ":material/health_and_safety:", "Program", AGGREGATE,
             controls=PATIENTS | {"ci"}),
    PageSpec("pages/durability.py", "Durability", ":material/timelapse:", "Program", AGGREGATE,
             controls=PATIENTS),
    PageSpec("pages/who_responds.py", "Who responds", ":material/query_stats:", "Program",
             AGGREGATE, controls=PATIENTS | {"timepoint", "definition"}),
    PageSpec("pages/dose_course.py", "Dose & course", ":material/vaccines:", "Program", AGGREGATE),
    PageSpec("pages/patient_timeline.py", "Patient timeline", ":material/person:", "Patients",
             ("clinical",), controls=PATIENTS | {"timepoint", "definition"}),
    PageSpec("pages/worklist.py", "Follow-up worklist", ":material/checklist:", "Patients",
             ("clinical",), controls=PATIENTS),
    # The reports set their own periods: sites, conditions and routes act, the
    # cohort range and the outcome settings do not; the claim check has its own
    # reading and its period starts from the cohort range.
    PageSpec("pages/summary.py", "Program summary", ":material/description:", "Reporting",
             AGGREGATE, controls=frozenset({"patients"})),
    PageSpec("pages/claim_check.py", "Claim check", ":material/fact_check:", "Reporting", ALL,
             controls=PATIENTS),
    PageSpec("pages/quarterly_report.py", "Quarterly report", ":material/summarize:", "Reporting",
             ALL, controls=frozenset({"patients"})),
    # After the reports: marketing lands on Claim check, and sees the fixed sites table here.
    PageSpec("pages/site_comparison.py", "Sites & providers", ":material/scatter_plot:",
             "Reporting", ALL),
    PageSpec("pages/data.py", "Data", ":material/upload_file:", "Data", AGGREGATE,
             controls=PATIENTS),
    PageSpec("pages/audit.py", "Audit log", ":material/policy:", "Data", ("clinical",),
             controls=frozenset()),
)


def controls_for(page: PageSpec | None, reader) -> frozenset:
    """The shared controls drawn on ``page`` for ``reader`` (an
    :class:`analysis.core.audience.Audience`): the page's own, or none at all for
    the external audience, which sees fixed tables only (whole program; by
    condition, site or quarter), never a filter that changes a count."""
    if reader.external:
        return frozenset()
    return page.controls if page is not None else ALL_CONTROLS


def pages_for(role: str) -> list[PageSpec]:
    return [p for p in PAGES if role in p.roles]
