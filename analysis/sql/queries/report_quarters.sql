-- report_quarters: the quarters that have visits, with their visit counts
-- (issue 6: a report is offered only for a quarter with data).

SELECT
    year(visit_date) || 'Q' || quarter(visit_date) AS quarter,
    count(*) AS visits
FROM visits
GROUP BY ALL
ORDER BY quarter
