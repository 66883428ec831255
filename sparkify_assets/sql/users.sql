-- users: one row per non-empty user_id seen in any event, as of the user's latest event
-- (greatest ts; ties broken by the latest file and line, so the choice never depends on load order).
SELECT user_id, first_name, last_name, gender, level
FROM (
    SELECT
        user_id, first_name, last_name, gender, level,
        ROW_NUMBER() OVER (
            PARTITION BY user_id
            ORDER BY ts DESC, source_date DESC, source_key DESC, source_line DESC
        ) AS recency
    FROM staging_events
    WHERE user_id IS NOT NULL
) latest
WHERE recency = 1
