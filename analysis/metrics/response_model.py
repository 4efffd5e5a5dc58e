"""Who responds: a multivariable logistic regression of response (issue 18).

The clinic's own page says that "given that chronic pain is very
heterogeneous it can be challenging to predict exactly who will respond".
This module puts a number on it.

**The model.**  Response (the chosen definition at the chosen timepoint) of
the *completers* (due, with the follow-up: SPEC §3) who have every covariate,
regressed on condition, baseline pain (per point), opioid use at baseline,
baseline MME (per 10 MME/day, 0 for non-users), baseline PHQ-9 (per 5
points), benzodiazepine use at baseline, route and site, by maximum
likelihood (statsmodels ``Logit``): adjusted odds ratios with 95% Wald
intervals.  A category (condition, route, site) is compared with its largest
level; levels with fewer than :data:`MIN_LEVEL_PATIENTS` patients are pooled
into one "other" level, and a covariate left with one level (or no spread)
is dropped, and both are said.

**Refusal.**  With fewer than :data:`MIN_EVENTS_PER_VARIABLE` events per
parameter (the rarer of responders and non-responders, divided by the
parameters besides the intercept; Peduzzi et al., J Clin Epidemiol
1996;49:1373) the estimates are unreliable, so no model is fitted and the
result says why.  Perfect separation or a fit that does not converge is
refused the same way.

**How predictable.**  The model is fitted again in each of
:data:`FOLDS` stratified folds (deterministic) and scores the patients left
out; the area under the ROC curve of these out-of-fold predictions is the
cross-validated AUC, with a DeLong 95% interval (DeLong et al., Biometrics
1988; the fast midrank form of Sun & Xu 2014), which treats the pooled
out-of-fold scores as one set and so ignores the fold-to-fold variation of
the fitted models.  0.5 is a coin toss, 1 a perfect prediction.  The
calibration plot compares, in tenths of the predicted probability, the
average prediction with the observed rate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from analysis.core import definitions, stats
from analysis.core.audience import Audience
from analysis.core.filters import Filters
from analysis.storage.store import Snapshot

MIN_EVENTS_PER_VARIABLE = 10
MIN_LEVEL_PATIENTS = 20
FOLDS = 10
CALIBRATION_BINS = 10
SEED = 20240601          # the folds are the same on every run

# covariate -> (kind, label, unit of the odds ratio)
COVARIATES = {
    "condition": ("category", "Condition", None),
    "baseline_pain": ("number", "Baseline pain", 1.0),
    "opioid_user": ("flag", "On opioids at baseline", None),
    "baseline_mme": ("number", "Baseline opioid dose", 10.0),
    "baseline_phq9": ("number", "Baseline PHQ-9", 5.0),
    "benzodiazepine": ("flag", "Benzodiazepine at baseline", None),
    "route": ("category", "Route", None),
    "site": ("category", "Site", None),
}
UNITS = {"baseline_pain": "per point (0–10)", "baseline_mme": "per 10 MME/day",
         "baseline_phq9": "per 5 points"}
POOLED = "other (pooled)"


@dataclass(frozen=True)
class Term:
    term: str            # design column
    covariate: str
    label: str           # "Condition: Fibromyalgia (vs Migraine)"
    odds_ratio: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class Calibration:
    bins: pd.DataFrame   # bin, n, mean_predicted, observed, ci_low, ci_high


@dataclass(frozen=True)
class Fit:
    """A fitted model (or the reason there is none)."""
    n: int
    events: int                       # responders
    parameters: int                   # besides the intercept
    refused: str | None               # why no model was fitted
    terms: tuple[Term, ...] = ()
    notes: tuple[str, ...] = ()       # pooled levels, dropped covariates
    auc: float | None = None          # cross-validated
    auc_ci: tuple[float, float] | None = None
    apparent_auc: float | None = None  # on the data it was fitted to
    calibration: pd.DataFrame | None = None
    cv_note: str | None = None

    @property
    def events_per_variable(self) -> float | None:
        if not self.parameters:
            return None
        return min(self.events, self.n - self.events) / self.parameters


@dataclass(frozen=True)
class WhoResponds:
    timepoint: str
    definition: str
    completers: int                     # due with the follow-up
    complete_covariates: int            # ... and every covariate
    missing: dict[str, int]             # completers lacking each covariate
    fit: Fit
    summary: str
    excluded_covariates: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------
# design


def design(frame: pd.DataFrame, covariates: dict = COVARIATES,
           min_level: int = MIN_LEVEL_PATIENTS) -> tuple[pd.DataFrame, dict, list[str]]:
    """The design matrix (intercept first), each column's covariate and label,
    and notes on pooled levels and dropped covariates."""
    columns = {"const": np.ones(len(frame))}
    meaning: dict[str, tuple[str, str]] = {}
    notes: list[str] = []
    for name, (kind, label, unit) in covariates.items():
        if name not in frame:
            continue
        values = frame[name]
        if kind == "category":
            counts = values.value_counts()
            small = sorted(counts[counts < min_level].index)
            if len(small) >= 1 and len(counts) > 1:
                values = values.where(~values.isin(small), POOLED)
                notes.append(f"{label}: {', '.join(map(str, small))} pooled as "
                             f"'{POOLED}' (fewer than {min_level} patients each)")
            counts = values.value_counts()
            if len(counts) < 2:
                notes.append(f"{label} left out: every patient has the same one")
                continue
            # the reference: the commonest real level, never the pooled one
            order = sorted(counts.index, key=lambda v: (v == POOLED, -counts[v], str(v)))
            reference = order[0]
            for level in sorted(order[1:], key=str):
                column = f"{name}[{level}]"
                columns[column] = (values == level).astype(float).to_numpy()
                meaning[column] = (name, f"{label}: {level} (vs {reference})")
        else:
            numbers = values.astype(float)
            if numbers.nunique() < 2:
                notes.append(f"{label} left out: every patient has the same value")
                continue
            column = name
            scale = unit or 1.0
            columns[column] = (numbers / scale).to_numpy()
            text = f"{label}, {UNITS[name]}" if name in UNITS else label
            meaning[column] = (name, text)
    return pd.DataFrame(columns, index=frame.index), meaning, notes


# --------------------------------------------------------------------------
# fitting


class NotFitted(Exception):
    pass


def _logit(y: np.ndarray, x: pd.DataFrame):
    """statsmodels Logit by Newton's method; NotFitted on separation, a
    singular design or no convergence."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import (ConvergenceWarning, PerfectSeparationError,
                                                 PerfectSeparationWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            result = sm.Logit(y, x).fit(disp=0, method="newton", maxiter=100)
        except (PerfectSeparationError, PerfectSeparationWarning):
            raise NotFitted("some group's patients all respond or all do not (perfect "
                            "separation): its odds ratio cannot be estimated") from None
        except ConvergenceWarning:
            raise NotFitted("the fit did not converge") from None
        except np.linalg.LinAlgError:
            raise NotFitted("two covariates carry the same information (a singular "
                            "design)") from None
    if not result.mle_retvals.get("converged", False):
        raise NotFitted("the fit did not converge")
    if not np.all(np.isfinite(result.bse)):
        raise NotFitted("an odds ratio has no finite interval (separation)")
    return result


def fit(frame: pd.DataFrame, outcome: str = "responder", covariates: dict = COVARIATES,
        folds: int = FOLDS, min_level: int = MIN_LEVEL_PATIENTS,
        min_events_per_variable: float = MIN_EVENTS_PER_VARIABLE) -> Fit:
    """Fit the model to one row per patient (``outcome`` 0/1 and the
    covariate columns present in ``frame``).  ``folds=0`` skips the
    cross-validation (the simulation tests)."""
    y = frame[outcome].astype(float).to_numpy()
    n, events = len(y), int(y.sum())
    x, meaning, notes = design(frame, covariates, min_level)
    parameters = x.shape[1] - 1
    rarer = min(events, n - events)
    if parameters == 0:
        return Fit(n, events, 0, "no covariate varies among these patients", notes=tuple(notes))
    if rarer < min_events_per_variable * parameters:
        return Fit(n, events, parameters,
                   f"too few to fit: {events} responders and {n - events} non-responders for "
                   f"{parameters} parameters ({rarer / parameters:.1f} events per variable; "
                   f"at least {min_events_per_variable:g} are needed). Widen the filters, "
                   f"choose an earlier timepoint or a commoner definition.",
                   notes=tuple(notes))
    separated = [meaning[c][1] for c in x.columns
                 if c in meaning and COVARIATES.get(meaning[c][0], ("",))[0] == "category"
                 and len(set(y[x[c].to_numpy() == 1])) == 1]
    if separated:
        return Fit(n, events, parameters,
                   f"no model: every patient of {'; '.join(separated)} responds or none does "
                   f"(perfect separation), so its odds ratio cannot be estimated. Choose a "
                   f"commoner definition, an earlier timepoint or wider filters.",
                   notes=tuple(notes))
    try:
        result = _logit(y, x)
    except NotFitted as error:
        return Fit(n, events, parameters, f"no model: {error}", notes=tuple(notes))
    intervals = result.conf_int(0.05)
    terms = tuple(
        Term(column, meaning[column][0], meaning[column][1], float(np.exp(result.params[column])),
             float(np.exp(intervals.loc[column, 0])), float(np.exp(intervals.loc[column, 1])),
             float(result.pvalues[column]))
        for column in x.columns if column != "const")
    apparent = auc(y, result.predict(x))
    if folds:
        cv = cross_validate(y, x, folds)
    else:
        cv = (None, None, None, "cross-validation not run")
    return Fit(n, events, parameters, None, terms, tuple(notes), cv[0], cv[1], apparent, cv[2],
               cv[3])


def stratified_folds(y: np.ndarray, folds: int, seed: int = SEED) -> np.ndarray:
    """Fold number of each row: each class shuffled (seeded) and dealt out
    in turn, so every fold has its share of responders."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for value in (0.0, 1.0):
        rows = np.flatnonzero(y == value)
        rng.shuffle(rows)
        fold[rows] = np.arange(len(rows)) % folds
    return fold


def cross_validate(y: np.ndarray, x: pd.DataFrame, folds: int = FOLDS):
    """(AUC, its 95% interval, calibration table, note) of out-of-fold predictions."""
    fold = stratified_folds(y, folds)
    predicted = np.full(len(y), np.nan)
    for k in range(folds):
        train, test = fold != k, fold == k
        keep = [c for c in x.columns if c == "const" or x.loc[train, c].nunique() > 1]
        try:
            model = _logit(y[train], x.loc[train, keep])
        except NotFitted as error:
            return None, None, None, f"cross-validation not possible: in one fold {error}"
        predicted[test] = model.predict(x.loc[test, keep])
    value = auc(y, predicted)
    se = delong_se(y, predicted)
    z = scipy_stats.norm.ppf(0.975)
    interval = (max(0.0, value - z * se), min(1.0, value + z * se))
    return value, interval, calibration(y, predicted), None


# --------------------------------------------------------------------------
# how good the predictions are


def auc(y, score) -> float:
    """Area under the ROC curve: the chance that a responder scores above a
    non-responder (ties count half), from midranks (Mann-Whitney)."""
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if not positives or not negatives:
        raise ValueError("the AUC needs responders and non-responders")
    ranks = scipy_stats.rankdata(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def delong_se(y, score) -> float:
    """DeLong's standard error of the AUC (structural components from
    midranks: Sun & Xu, IEEE Signal Process Lett 2014;21:1389)."""
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    pos, neg = score[y == 1], score[y == 0]
    m, n = len(pos), len(neg)
    all_ranks = scipy_stats.rankdata(np.concatenate([pos, neg]))
    v10 = (all_ranks[:m] - scipy_stats.rankdata(pos)) / n            # per responder
    v01 = 1.0 - (all_ranks[m:] - scipy_stats.rankdata(neg)) / m      # per non-responder
    variance = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n
    return float(math.sqrt(variance))


def calibration(y, predicted, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Patients in tenths of the predicted probability (ties kept together):
    n, mean prediction, observed rate with its Wilson interval."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(predicted)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), q=min(bins, len(frame)),
                           labels=False)
    table = frame.groupby("bin").agg(n=("y", "size"), mean_predicted=("p", "mean"),
                                     responders=("y", "sum")).reset_index()
    table["responders"] = table["responders"].astype(int)
    table["observed"], table["ci_low"], table["ci_high"] = stats.intervals(
        table["responders"].to_numpy(), table["n"].to_numpy())
    return table


# --------------------------------------------------------------------------
# on the clinic's data


def patients(snap: Snapshot, timepoint: str, definition: str,
             filters: Filters = Filters()) -> pd.DataFrame:
    """One row per completer at the timepoint for the definition (due, with
    the follow-up): responder and the covariates (None where unknown)."""
    where, params = filters.sql("o")
    frame = snap.query(f"""
        WITH phq9 AS (
            SELECT DISTINCT patient_id, baseline AS baseline_phq9
            FROM mood_outcomes WHERE instrument = 'phq9'
        )
        SELECT o.patient_id, o.responder, o.condition, o.site, o.route,
               b.baseline_pain, b.baseline_mme, b.baseline_mme > 0 AS opioid_user,
               q.baseline_phq9, b.baseline_benzodiazepine AS benzodiazepine
        FROM patient_outcomes AS o
        JOIN baselines AS b USING (patient_id)
        LEFT JOIN phq9 AS q USING (patient_id)
        WHERE o.timepoint = $timepoint AND o.definition = $definition
          AND o.in_completers AND {where}
        ORDER BY o.patient_id
    """, {"timepoint": timepoint, "definition": definition, **params})
    frame["responder"] = frame["responder"].astype(bool)
    frame.loc[frame["route"] == "Unknown", "route"] = None
    frame.loc[frame["site"] == "Unknown", "site"] = None
    return frame


def who_responds(snap: Snapshot, timepoint: str = "3m", definition: str = "pain30",
                 filters: Filters = Filters(), audience: Audience = Audience.CLINICAL,
                 folds: int = FOLDS) -> WhoResponds:
    """The regression on the completers in view with complete covariates."""
    definitions.check_setting(timepoint, definition)
    if audience.external:
        raise PermissionError("who responds is an internal analysis (clinical team and "
                              "analysts)")
    frame = patients(snap, timepoint, definition, filters)
    covariates = list(COVARIATES)
    missing = {COVARIATES[c][1]: int(frame[c].isna().sum()) for c in covariates}
    complete = frame.dropna(subset=covariates)
    result = fit(complete, "responder", folds=folds)
    return WhoResponds(timepoint, definition, len(frame), len(complete), missing, result,
                       summarise(result, definition, timepoint))


def strength(value: float) -> str:
    """Words for a cross-validated AUC."""
    if value < 0.6:
        return "explain little of who responds"
    if value < 0.7:
        return "predict response modestly"
    if value < 0.8:
        return "predict response fairly well"
    return "predict response well"


# Plain words first (issue 19): what a director reads before the statistic.

#: Odds ratios read as "about the same odds" (the words only; whether a
#: difference could be chance is the interval's answer, :func:`chance_text`).
SAME_ODDS = (0.95, 1.05)

def clear(term: Term) -> bool:
    """The term's 95% interval leaves out 1 (its Wald p is below 0.05): not
    chance alone."""
    return term.ci_low > 1 or term.ci_high < 1


def odds_text(term: Term) -> str:
    """"2.3 times the odds of responding"; below 1, "less likely: 0.43 times
    the odds"; within 5% of 1, "about the same odds (0.99 times)"."""
    value = term.odds_ratio
    if value >= SAME_ODDS[1]:
        return f"{value:.1f} times the odds of responding"
    if value <= SAME_ODDS[0]:
        return f"less likely: {value:.2f} times the odds"
    return f"about the same odds ({value:.2f} times)"


def chance_text(term: Term) -> str:
    """The answer to "could it be chance?"."""
    if not clear(term):
        return "yes, could be chance"
    return "no: clearly more likely" if term.odds_ratio > 1 else "no: clearly less likely"


def picks_text(value: float) -> str:
    """A cross-validated AUC in words: "picks the responder 62 times in 100"."""
    return f"picks the responder {round(100 * value)} times in 100"


def summarise(result: Fit, definition: str, timepoint: str) -> str:
    """One plain-language paragraph; the statistics (odds ratios, AUC) are
    the page's "How this is computed"."""
    who = (f"{definitions.DEFINITION_LABELS[definition]} at "
           f"{definitions.TIMEPOINT_LABELS[timepoint]}")
    if result.refused:
        return f"No model for {who}: {result.refused}"
    found = sorted((t for t in result.terms if clear(t)), key=lambda t: t.p_value)
    if result.auc is None:
        how = f"were fitted, but how well they predict is unknown ({result.cv_note})"
    else:
        how = (f"{strength(result.auc)}: shown one responder and one non-responder it was "
               f"not fitted to, the model {picks_text(result.auc)} (a coin toss: 50)")
    if found:
        named = "; ".join(f"{t.label}: {odds_text(t)}" for t in found[:3])
        clearest = f"Clearest differences, other things equal: {named}."
    else:
        clearest = "No item clearly changes the chance of responding: each could be chance."
    return (f"Among {result.n:,} patients with a result for {who} ({result.events:,} "
            f"responders), condition, baseline pain, opioid use and dose, depression, "
            f"benzodiazepines, route and site together {how}. {clearest} These are "
            f"associations, not causes.")
