"""The patient flow (CONSORT style): seen → first infusion → completed
induction (:data:`analysis.definitions.INDUCTION_TEXT`) → due → with a
follow-up → responder, with the count and the reason at every exit
(``sql/queries/program_patient_flow.sql``)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.metrics import outcomes
from analysis.core import definitions
from analysis.core.audience import Audience
from analysis.core.filters import Filters
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot


EXIT_LABELS = {
    "not treated": "Not treated (no infusion)",
    "stopped before completing induction": "Stopped before completing induction",
    "no baseline pain": "No baseline pain score",
    "baseline pain 0": "Baseline pain 0",
    "opioid use at baseline unknown": "Opioid use at baseline unknown",
    "not on opioids at baseline": "Not on opioids at baseline",
    "not yet due": "Not yet due",
    "lost to follow-up": "Lost to follow-up (due, no follow-up)",
    "non-responder": "Non-responder",
}


@dataclass(frozen=True)
class FlowExit:
    reason: str
    label: str
    patients: int


@dataclass(frozen=True)
class FlowStage:
    key: str
    label: str
    patients: int
    exits: tuple[FlowExit, ...]   # who leaves between this stage and the next

    @property
    def exited(self) -> int:
        return sum(e.patients for e in self.exits)


@dataclass(frozen=True)
class PatientFlow:
    timepoint: str
    definition: str
    stages: tuple[FlowStage, ...]
    # patients who stopped before completing induction yet count in the
    # program's ITT rate (eligible and due), and how many of them respond
    stopped_early_due: int
    stopped_early_responders: int

    def stage(self, key: str) -> FlowStage:
        return next(s for s in self.stages if s.key == key)

    @property
    def itt_n(self) -> int:
        """The program's ITT denominator (as on Overview): due patients who
        completed induction and those who stopped before completing it."""
        return self.stage("due").patients + self.stopped_early_due

    @property
    def itt_responders(self) -> int:
        return self.stage("responder").patients + self.stopped_early_responders

    @property
    def reconciles(self) -> bool:
        """Each stage = the next stage + the exits between them."""
        return all(a.patients == b.patients + a.exited
                   for a, b in zip(self.stages, self.stages[1:])) and not self.stages[-1].exits

    def table(self) -> pd.DataFrame:
        """One row per stage (stage, patients) and per exit after it (exit,
        left); columns step, stage, patients, exit, left."""
        rows = []
        for number, stage in enumerate(self.stages, start=1):
            rows.append({"step": number, "stage": stage.label, "patients": stage.patients,
                         "exit": "", "left": None})
            for exit_ in stage.exits:
                rows.append({"step": number, "stage": "", "patients": None,
                             "exit": exit_.label, "left": exit_.patients})
        return pd.DataFrame(rows, columns=["step", "stage", "patients", "exit", "left"])


def flow_patients(snap: Snapshot, timepoint: str = "3m", definition: str = "pain30",
                  filters: Filters = Filters()) -> pd.DataFrame:
    """One row per patient in view with the stage flags and exit_reason (None
    for a responder).  See ``program_patient_flow.sql``."""
    definitions.check_setting(timepoint, definition)
    return run_query(snap, "program_patient_flow", filters, {
        "timepoint": timepoint, "definition": definition,
        "induction_days": definitions.INDUCTION_DAYS,
        "induction_min": definitions.INDUCTION_MIN_INFUSIONS})


def patient_flow(snap: Snapshot, timepoint: str = "3m", definition: str = "pain30",
                 filters: Filters = Filters(),
                 audience: Audience = Audience.CLINICAL) -> PatientFlow:
    """CONSORT-style flow: seen → first infusion → completed induction → due →
    with follow-up → responder, with the count and reason at every exit.
    Internal readers only: every exit is a count, most of them small."""
    outcomes.internal_only(audience, "The patient flow")
    people = flow_patients(snap, timepoint, definition, filters)
    reasons = people["exit_reason"].value_counts().to_dict()

    def exits(*names: str) -> tuple[FlowExit, ...]:
        return tuple(FlowExit(r, EXIT_LABELS[r], int(reasons.get(r, 0))) for r in names)

    baseline = _baseline_reasons(definition)
    treated = people["treated"]
    completed = treated & people["completed_induction"]
    due = completed & people["in_itt"]
    followed = due & people["in_completers"]
    responders = followed & people["responder"]
    timepoint_label = definitions.TIMEPOINT_LABELS[timepoint]
    stages = (
        FlowStage("seen", "Patients seen", len(people), exits("not treated")),
        FlowStage("treated", "Received a first infusion", int(treated.sum()),
                  exits("stopped before completing induction")),
        FlowStage("induction", "Completed induction", int(completed.sum()),
                  exits(*baseline, "not yet due")),
        FlowStage("due", f"Due at {timepoint_label}", int(due.sum()), exits("lost to follow-up")),
        FlowStage("follow_up", "With a follow-up", int(followed.sum()), exits("non-responder")),
        FlowStage("responder", f"Responders ({definition})", int(responders.sum()), ()),
    )
    early = treated & ~people["completed_induction"] & people["in_itt"]
    return PatientFlow(timepoint, definition, stages, int(early.sum()),
                       int((early & people["responder"]).sum()))


def _baseline_reasons(definition: str) -> tuple[str, ...]:
    """The "no baseline" exits that can apply to a definition."""
    needs = definitions.definition(definition)
    reasons: tuple[str, ...] = ()
    if needs.needs_pain:
        reasons += ("no baseline pain", "baseline pain 0")
    if needs.needs_mme:
        reasons += ("opioid use at baseline unknown", "not on opioids at baseline")
    return reasons
