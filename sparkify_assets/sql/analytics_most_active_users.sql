-- analytics_most_active_users: the 10 users with the most plays, with their distinct sessions and
-- their current name and level (users dimension). Ties: more sessions first, then user_id as text.
SELECT user_rank, user_id, first_name, last_name, level, plays, sessions
FROM (
    SELECT
        CAST(ROW_NUMBER() OVER (ORDER BY p.plays DESC, p.sessions DESC, p.user_id) AS INTEGER) AS user_rank,
        p.user_id, u.first_name, u.last_name, u.level, p.plays, p.sessions
    FROM (
        SELECT user_id, COUNT(*) AS plays, COUNT(DISTINCT session_id) AS sessions
        FROM songplays
        WHERE user_id IS NOT NULL
        GROUP BY user_id
    ) p
    LEFT JOIN users u ON u.user_id = p.user_id
) ranked
WHERE user_rank <= 10
