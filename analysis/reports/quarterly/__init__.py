"""The quarterly report (issue 6): one quarter's activity, results and safety.

``build.build_report(snap, "2026Q3")`` computes every table from the snapshot's
models (the same ones every page reads) and records where the numbers came
from (quarter, data cutoff, data fingerprint, definitions, thresholds,
software version, when generated).  Two runs on the same data give the same
tables and fingerprint; only ``generated_at`` differs.

Tables (``QuarterlyReport.tables()``):

* ``activity``  new patients (index date in the quarter), patients treated,
  infusion visits and boosters (visits dated in the quarter), by site.
* ``cohort``    responder rates (ITT, Wilson 95% CI) of the quarter's new
  patients, every timepoint x definition, with the change from the previous
  quarter's cohort and from the same quarter a year earlier.  Recent cohorts
  are mostly "not yet due".
* ``due``       the same for the results that came due in the quarter
  (patients whose index date + target day lies in it).
* ``pchart``    responder rate by cohort quarter (pain30, 3 months, ITT)
  with p-chart limits (centre = pooled rate, 3 sigma by each quarter's n);
  points outside the limits are flagged.
* ``opioids``   baseline opioid users among new patients, mme50 and mme_stop
  at 3 months (results due in the quarter), share of visits at >= 50 and
  >= 90 MME/day.
* ``benzodiazepines``  share of visits with a benzodiazepine (and with an
  opioid as well) among the visits recording it.
* ``safety``    the Safety page's rates (:func:`analysis.metrics.safety.safety_summary`,
  one computation for both) over the treatment sessions (infusion visits and
  boosters) dated in the quarter: adverse events per 100 treatment sessions
  by type (a session listing several counts once for each), and SBP >= 180 /
  SpO2 < 90 per 100 sessions that recorded that vital sign, with the Wilson
  interval of the per-session proportion.

Audiences (:class:`analysis.core.audience.Audience`): ``clinical`` shows every
cell and the adverse events as written; ``analyst`` every cell too, with
groups under 11 flagged ``too_few`` and adverse events by category only;
``external`` is the whole program whatever the filters (a fixed table: two
filter states can never be differenced), adverse events by category, and
every count of the report registered in one :class:`analysis.core.disclosure.Tables`
with the sums that tie them (sites to their total, new patients to the
treated and to each definition's eligible patients, ITT n to responders and
non-responders, a definition's n to the claim's, a quarter's cohort to its
p-chart point, sessions to the safety table's denominator): every count from
1 to 10, every count that would reveal one, and every rate built on them
reads "too few to report".  Exports (``render/``): HTML (self-contained, charts
as inline SVG), XLSX (one sheet per table + Provenance, every text cell
through :func:`analysis.core.formatting.safe_for_spreadsheet`) and PDF (fpdf2,
DejaVu Sans, matplotlib charts as PNG).

Where each part lives: ``report`` (what a report holds, its provenance and
highlights), ``build`` (the numbers, :func:`build.build_report`),
``small_cells`` (what each audience may see), ``tables`` (columns, captions,
numbers as text), ``charts`` (matplotlib and Plotly), ``render/`` (``html``,
``xlsx``, ``pdf``; ``files``: formats, names, writing them all).
"""
