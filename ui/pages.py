"""The dashboard's pages and which roles may open each (issue: access control).

A page a role may not see is left out of its navigation, so Streamlit refuses
a direct URL to it.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("clinical", "analyst", "marketing")


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    icon: str
    section: str
    roles: tuple[str, ...]
    default: bool = False


ALL = ROLES
AGGREGATE = ("clinical", "analyst")

PAGES = (
    PageSpec("pages/overview.py", "Overview", ":material/dashboard:", "Program", AGGREGATE, True),
    PageSpec("pages/conditions.py", "Conditions", ":material/stacked_bar_chart:", "Program", AGGREGATE),
    PageSpec("pages/pain.py", "Pain over time", ":material/show_chart:", "Program", AGGREGATE),
    PageSpec("pages/opioids.py", "Opioid tapering", ":material/medication:", "Program", AGGREGATE),
    PageSpec("pages/patient_flow.py", "Patient flow", ":material/account_tree:", "Program", AGGREGATE),
    PageSpec("pages/mood.py", "Depression & PTSD", ":material/psychology:", "Program", AGGREGATE),
    PageSpec("pages/safety.py", "Safety", ":material/health_and_safety:", "Program", AGGREGATE),
    PageSpec("pages/durability.py", "Durability", ":material/timelapse:", "Program", AGGREGATE),
    PageSpec("pages/who_responds.py", "Who responds", ":material/query_stats:", "Program",
             AGGREGATE),
    PageSpec("pages/dose_course.py", "Dose & course", ":material/vaccines:", "Program", AGGREGATE),
    PageSpec("pages/patient_timeline.py", "Patient timeline", ":material/person:", "Patients",
             ("clinical",)),
    PageSpec("pages/worklist.py", "Follow-up worklist", ":material/checklist:", "Patients",
             ("clinical",)),
    PageSpec("pages/summary.py", "Program summary", ":material/description:", "Reporting",
             AGGREGATE),
    PageSpec("pages/claim_check.py", "Claim check", ":material/fact_check:", "Reporting", ALL),
    PageSpec("pages/quarterly_report.py", "Quarterly report", ":material/summarize:", "Reporting", ALL),
    # After the reports: marketing lands on Claim check, and sees the fixed sites table here.
    PageSpec("pages/site_comparison.py", "Sites & providers", ":material/scatter_plot:",
             "Reporting", ALL),
    PageSpec("pages/data.py", "Data", ":material/upload_file:", "Data", AGGREGATE),
    PageSpec("pages/audit.py", "Audit log", ":material/policy:", "Data", ("clinical",)),
)


def pages_for(role: str) -> list[PageSpec]:
    return [p for p in PAGES if role in p.roles]
