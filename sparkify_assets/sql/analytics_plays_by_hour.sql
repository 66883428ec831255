-- analytics_plays_by_hour: plays per hour of day (UTC, from the time dimension), with the share of
-- all plays. Hours without a play have no row.
SELECT t.hour AS hour_of_day, COUNT(*) AS plays, CAST(COUNT(*) AS DOUBLE PRECISION) / total.plays AS share_of_plays
FROM songplays sp
JOIN time t ON t.start_time = sp.start_time
CROSS JOIN (SELECT COUNT(*) AS plays FROM songplays) total
GROUP BY t.hour, total.plays
