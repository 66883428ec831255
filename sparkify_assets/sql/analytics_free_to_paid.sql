-- analytics_free_to_paid: one row per conversion in the loaded period. A conversion is a pair of
-- consecutive events of one user (ordered by ts, then file and line, so ties never depend on load
-- order) where the earlier is at level free and the later at level paid: any event counts, not
-- only song plays. A user who goes paid, free, paid again converts twice. Without line numbers
-- (Redshift), a same-ts tie puts free before paid, as users takes paid as the latest level.
-- Only users with both a free and a paid event can convert: the others' events are not ordered
-- (29% of the users of a generated 1M lake; ordering every event was the cost, benchmarks/README.md).
-- The one parameter is a bound: NULL computes every conversion (a rebuild); a ts computes only
-- the conversions whose paid event has ts >= the bound, each with its true predecessor, from the
-- converters' events from the bound on plus those at each one's last ts before it (where the
-- predecessor of its first event from the bound on is): what a daily refresh replaces.
WITH bound AS (
    SELECT CAST(? AS BIGINT) AS ts
),
-- With a bound, a converter is a user with a paid event from it on (its predecessor may be at any
-- ts), found among the events from the bound on only.
converters AS (
    SELECT e.user_id
    FROM staging_events e
    CROSS JOIN bound b
    WHERE e.user_id IS NOT NULL AND (b.ts IS NULL OR e.ts >= b.ts)
    GROUP BY e.user_id, b.ts
    HAVING MAX(CASE WHEN e.level = 'paid' THEN 1 ELSE 0 END) = 1
        AND (b.ts IS NOT NULL OR MAX(CASE WHEN e.level = 'free' THEN 1 ELSE 0 END) = 1)
),
last_before AS (
    SELECT e.user_id, MAX(e.ts) AS ts
    FROM staging_events e
    JOIN bound b ON e.ts < b.ts
    WHERE e.user_id IN (SELECT user_id FROM converters)
    GROUP BY e.user_id
),
events AS (
    SELECT e.user_id, e.level, e.ts, e.source_date, e.source_key, e.source_line
    FROM staging_events e
    CROSS JOIN bound b
    WHERE e.user_id IN (SELECT user_id FROM converters) AND (b.ts IS NULL OR e.ts >= b.ts)
    UNION ALL
    SELECT e.user_id, e.level, e.ts, e.source_date, e.source_key, e.source_line
    FROM staging_events e
    JOIN last_before l ON l.user_id = e.user_id AND l.ts = e.ts
),
ordered AS (
    SELECT
        user_id, level, ts,
        LAG(level) OVER (PARTITION BY user_id ORDER BY ts, source_date, source_key, source_line, level) AS previous_level,
        LAG(ts) OVER (PARTITION BY user_id ORDER BY ts, source_date, source_key, source_line, level) AS previous_ts
    FROM events
)
SELECT
    o.user_id,
    u.first_name,
    u.last_name,
    epoch_ms(o.previous_ts) AS last_free_at,
    epoch_ms(o.ts) AS converted_at
FROM ordered o
CROSS JOIN bound b
LEFT JOIN users u ON u.user_id = o.user_id
WHERE o.previous_level = 'free' AND o.level = 'paid' AND (b.ts IS NULL OR o.ts >= b.ts)
