"""The clinic's vocabulary and rules that need no data: the outcome
definitions (timepoints, responder rules, populations, thresholds), who may
see what (audience and small-cell disclosure control), the patient filters
and quarters, the statistics behind every rate, interval and survival curve,
how numbers are written in words and figures, the colours and font every
chart and document share, and the synthetic-data mark.  Nothing here opens
the database."""
