"""Documents that leave the dashboard: the quarterly outcomes report (HTML,
XLSX, PDF), the claim substantiation memo and the one-page program summary,
each already protected for the audience it is written for."""
