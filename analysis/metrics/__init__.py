"""The program's outcomes, one module per question the clinic asks: pain
response by timepoint and definition, the medical director's program view,
opioid tapering, mood, safety and adverse events, durability, one patient's
timeline, PGIC, site comparison, treatment course, who responds, the follow-up
worklist, and the chart specs the pages draw."""
