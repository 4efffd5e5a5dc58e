"""The clinic's words for what a count counts (SPEC §3, "Words").

One owner for the vocabulary every page, report and memo uses, so that one
quantity is always called the same thing:

* an **infusion visit** is a visit of the induction series (``infusion``);
* a **booster** is a ketamine visit after it (``booster``);
* both are **treatment sessions**: per-session rates (safety) are per 100
  treatment sessions;
* a **visit** is any row of the session export (intake, infusion, booster,
  follow-up);
* a **patient** is counted once, whatever their visits.
"""

from __future__ import annotations

from analysis.core.formatting import count

INFUSION_VISITS = "infusion visits"
BOOSTERS = "boosters"
TREATMENT_SESSIONS = "treatment sessions"
VISITS = "visits"
PER_100_SESSIONS = "per 100 treatment sessions"


def capitalised(words: str) -> str:
    return words[:1].upper() + words[1:]


def sessions_text(infusion_visits: int, boosters: int) -> str:
    """"1,593 treatment sessions (1,000 infusion visits and 593 boosters)"."""
    return (f"{count(infusion_visits + boosters)} {TREATMENT_SESSIONS} "
            f"({count(infusion_visits)} {INFUSION_VISITS} and {count(boosters)} {BOOSTERS})")


#: A difference is called clear when a test says chance alone would give one at
#: least as large less than 5% of the time; otherwise it "could be chance".
#: Pages lead with these words and keep the test one click away.
CLEAR_BELOW = 0.05


def chance_words(p_value: float | None, higher: bool, than: str = "") -> str:
    """"clearly higher", "clearly lower" or "could be chance" ("" without a p)."""
    if p_value is None or p_value != p_value:
        return ""
    if p_value < CLEAR_BELOW:
        return f"clearly {'higher' if higher else 'lower'}{(' ' + than) if than else ''}"
    return "could be chance"
