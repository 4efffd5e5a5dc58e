-- adverse_event_categories: the controlled categories of each row's adverse
-- event text (SPEC §2 adverse_event; §4: free text never leaves the clinical
-- team).  Included by a query that first defines the relation
--   adverse_event_text(natural_key, adverse_event)
-- with one row per visit (or any key) and the text as stored.  Rule
-- (analysis.metrics.adverse_events owns it; $parameters from its sql_params()):
--   * text in parentheses is dropped first ("hypertension (SBP 190, treated)"),
--     then the text is split on ";" and ",";
--   * each part is folded as column names are (reference.fold: lower case,
--     every run of other characters than letters and digits one "_", trimmed);
--   * an empty part, or one saying "none" ($not_events), is no event;
--   * a folded part listed in the categories table ($category_texts ->
--     $category_names) takes its category, any other text $other_category.
-- Result: natural_key, adverse_events (the distinct categories, sorted);
-- keys without an event are not in it.

WITH category_table AS (
    SELECT unnest($category_texts::VARCHAR[]) AS folded,
           unnest($category_names::VARCHAR[]) AS category
),

event_text_parts AS (
    SELECT natural_key,
           trim(regexp_replace(
               regexp_replace(lower(trim(part)), '[^a-z0-9]+', '_', 'g'), '^_+|_+$', '', 'g'))
               AS folded
    FROM (
        SELECT natural_key,
               unnest(string_split_regex(
                   regexp_replace(adverse_event, '\([^)]*\)', ' ', 'g'), '[;,]')) AS part
        FROM adverse_event_text
        WHERE adverse_event IS NOT NULL
    )
)

SELECT p.natural_key,
       list(DISTINCT coalesce(c.category, $other_category::VARCHAR)
            ORDER BY coalesce(c.category, $other_category::VARCHAR)) AS adverse_events
FROM event_text_parts AS p
LEFT JOIN category_table AS c USING (folded)
WHERE p.folded <> ''
  AND NOT list_contains($not_events::VARCHAR[], p.folded)
GROUP BY p.natural_key
