-- analytics_free_to_paid: one row per conversion in the loaded period. A conversion is a pair of
-- consecutive events of one user (ordered by ts, then file and line, so ties never depend on load
-- order) where the earlier is at level free and the later at level paid: any event counts, not
-- only song plays. A user who goes paid, free, paid again converts twice. Without line numbers
-- (Redshift), a same-ts tie puts free before paid, as users takes paid as the latest level.
-- Only users with both a free and a paid event can convert: the others' events are not ordered
-- (29% of the users of a generated 1M lake; ordering every event was the cost, benchmarks/README.md).
WITH ordered AS (
    SELECT
        user_id, level, ts,
        LAG(level) OVER (PARTITION BY user_id ORDER BY ts, source_date, source_key, source_line, level) AS previous_level,
        LAG(ts) OVER (PARTITION BY user_id ORDER BY ts, source_date, source_key, source_line, level) AS previous_ts
    FROM staging_events
    WHERE user_id IN (
        SELECT user_id
        FROM staging_events
        WHERE user_id IS NOT NULL
        GROUP BY user_id
        HAVING MAX(CASE WHEN level = 'free' THEN 1 ELSE 0 END) = 1
            AND MAX(CASE WHEN level = 'paid' THEN 1 ELSE 0 END) = 1
    )
)
SELECT
    o.user_id,
    u.first_name,
    u.last_name,
    epoch_ms(o.previous_ts) AS last_free_at,
    epoch_ms(o.ts) AS converted_at
FROM ordered o
LEFT JOIN users u ON u.user_id = o.user_id
WHERE o.previous_level = 'free' AND o.level = 'paid'
