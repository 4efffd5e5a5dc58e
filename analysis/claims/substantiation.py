"""The claim substantiation memo's content, as plain text tables fit for
outsiders (rendered by :mod:`analysis.reports.memo`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from analysis.claims.claim import ClaimReport
from analysis.core import definitions
from analysis.core.audience import SMALL_CELL, SUPPRESSED
from analysis.claims.wording import (CLAIM_AS_PUBLISHED, OPTIMISTIC, TOO_FEW, VERDICT_LABELS,
                                     VERDICTS, claim_wording, target_text)
from analysis.core.formatting import count, long_date, month_year


@dataclass(frozen=True)
class MemoTable:
    title: str
    columns: list[str]
    rows: list[list[str]]
    verdicts: list[list[str | None]] | None = None   # per cell: colour it by this verdict
    note: str = ""


@dataclass(frozen=True)
class Memo:
    title: str
    claim: str
    reading: str
    verdict: str
    verdict_text: str
    facts: list[tuple[str, str]]          # label, value
    flow_text: str
    tables: list[MemoTable]
    defensible: list[str]                 # the strongest wording, highest lower bound first
    supported: list[str]
    not_supported: list[str]
    warnings: list[str]                   # completers-only passes but ITT does not
    fingerprint: str
    generated: str
    footnotes: list[str]
    synthetic: bool = False               # invented data: every page says so


def sensitivity_table(frame: pd.DataFrame) -> MemoTable:
    """Definitions down, timepoints × populations across, rate and verdict colour."""
    columns = ["Definition"]
    keys = []
    for population in definitions.POPULATIONS:
        for timepoint in definitions.TIMEPOINTS:
            label = "ITT" if population == "itt" else OPTIMISTIC
            columns.append(f"{definitions.TIMEPOINT_LABELS[timepoint]}, {label}")
            keys.append((timepoint, population))
    index = {(r.timepoint, r.definition, r.population): r for r in frame.itertuples()}
    rows, verdicts = [], []
    for definition in definitions.DEFINITIONS:
        row = [f"{definitions.DEFINITION_LABELS[definition]} ({definition})"]
        colours: list[str | None] = [None]
        for timepoint, population in keys:
            r = index[(timepoint, definition, population)]
            if r.too_few or r.n in (0, None):
                row.append(r.rate_text)
            else:
                row.append(f"{r.rate_text} of {count(r.n)} ({r.at_least_text})")
            colours.append(r.verdict if r.verdict in VERDICTS else None)
        rows.append(row)
        verdicts.append(colours)
    return MemoTable("Sensitivity: every reading of the claim", columns, rows, verdicts,
                     note=f"Each cell: responder rate of the patients counted (n) and, in "
                          f"brackets, the defensible figure (≥ the one-sided 95% exact lower "
                          f"bound: at least that share did it), coloured by its verdict. "
                          f"“{TOO_FEW}”: too few patients or responders to report, no "
                          f"verdict. "
                          f"Completers-only cells are {OPTIMISTIC}: they leave out patients "
                          f"who missed the follow-up.")


def breakdown_table(frame: pd.DataFrame, title: str, group_label: str,
                    target: float) -> MemoTable:
    rows, verdicts = [], []
    for r in frame.itertuples():
        verdict = "–" if r.suppressed or r.verdict is None else VERDICT_LABELS[r.verdict]
        rows.append([r.group, r.patients, r.rate_text, verdict])
        verdicts.append([None, None, None,
                         r.verdict if not r.suppressed and r.verdict in VERDICTS else None])
    return MemoTable(title, [group_label, "Patients", "Rate (95% CI)",
                             f"Against {target_text(target)}"], rows, verdicts,
                     note=f"“{SUPPRESSED}”: withheld, a count from 1 to {SMALL_CELL - 1} or one that would let "
                          f"such a count be worked out from the counts shown.")


def memo_data(report: ClaimReport, fingerprint: str,
              generated: dt.datetime | None = None) -> Memo:
    """The substantiation memo's content: only text fit for outsiders."""
    generated = generated or dt.datetime.now()
    reading = report.reading
    first, last = report.period
    filters = report.filters
    facts = [
        ("Claim as published", f"“{CLAIM_AS_PUBLISHED[0].upper()}{CLAIM_AS_PUBLISHED[1:]}”"),
        ("Reading tested", reading.describe()),
        ("Claim wording tested", claim_wording(reading.definition, reading.timepoint,
                                               reading.target)),
        ("Patients in view", filters.describe()),
        ("Data period", "first infusions " + (
            f"{month_year(first)} to {month_year(last)}" if first and last and not report.too_few
            else "–") + " (patients counted)"),
        ("Data cutoff", long_date(report.cutoff) + " (latest visit in the data)"),
        ("Patients counted (n)", report.n_text()),
        ("Responder rate (95% CI, Wilson)", report.rate_text()),
        ("One-sided 95% exact bounds", report.bounds_text()),
        ("Defensible figure (rounded down from the lower bound)", report.at_least_text()),
        ("Test", report.test_text),
        ("p-value (one-sided exact binomial)", report.p_text()),
    ]
    flow_rows = [[("    " * max(0, r.level - 1)) + r.step, r.shown]
                 for r in report.flow.itertuples()]
    tables = [
        MemoTable("Who is counted", ["Who", "Patients"], flow_rows,
                  note=f"“{SUPPRESSED}”: withheld, a count from 1 to {SMALL_CELL - 1} or one that would let "
                          f"such a count be worked out from the counts shown."),
        sensitivity_table(report.sensitivity),
        breakdown_table(report.by_condition, "By condition (this reading)", "Condition",
                        reading.target),
        breakdown_table(report.by_site, "By site (this reading)", "Site", reading.target),
    ]
    defensible = [s.defensible for s in report.defensible]
    supported = [s.text for s in report.statements if s.kind == "supported"]
    not_supported = [s.text for s in report.statements
                     if s.kind in ("not supported", "too few", "no data")]
    warnings = [s.text for s in report.statements if s.kind == "completers only"]
    footnotes = [
        "Definitions (SPEC §3): a responder’s pain fell by at least 30% (pain30) or 50% "
        "(pain50) or 2 points (pain2pt) from the last score in the 30 days before the first "
        "infusion; their daily opioid dose (morphine milligram equivalents) fell by at least "
        "half (mme50) or to zero (mme_stop) from the last dose in the 90 days before; claim = "
        "pain30 and mme50. Follow-up values come from the visit closest to the target day "
        "inside its window.",
        "ITT (intention to treat) counts every eligible patient whose follow-up window has "
        "closed; one without the follow-up counts as not improved. Completers-only counts only "
        "patients with the follow-up and overstates a program that loses patients. An early "
        "follow-up of a patient whose window is still open is provisional and not counted.",
        "Defensible figure: the one-sided 95% exact (Clopper–Pearson) lower bound L of a "
        "reading’s rate, rounded down. “At least L% of the N patients …” is the strongest "
        "wording the data support for that reading; readings of fewer than "
        f"{SMALL_CELL} patients are too few to tell.",
        f"Small cells: the memo covers the whole program, whatever filters were chosen; no "
        f"count from 1 to {SMALL_CELL - 1} is shown or can be worked out from the counts shown "
        "(totals, ITT and completers, one definition beside another: complementary "
        "suppression across every reading as one publication). No patient identifier or "
        "free text appears in this memo.",
        "Data fingerprint: SHA-256 of the visit records in a canonical order (ingest "
        "bookkeeping left out). The same data always give the same fingerprint.",
    ]
    return Memo(
        title="Claim substantiation memo", claim=CLAIM_AS_PUBLISHED, reading=reading.describe(),
        verdict=report.verdict, verdict_text=report.verdict_text, facts=facts,
        flow_text=report.flow_text, tables=tables, defensible=defensible, supported=supported,
        not_supported=not_supported, warnings=warnings, fingerprint=fingerprint,
        generated=f"{long_date(generated.date())}, {generated:%H:%M}", footnotes=footnotes,
        synthetic=report.synthetic)
