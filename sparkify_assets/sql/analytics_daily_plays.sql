-- analytics_daily_plays: plays and distinct listeners per calendar day of the play (UTC).
SELECT CAST(start_time AS DATE) AS play_date, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS listeners
FROM songplays
GROUP BY CAST(start_time AS DATE)
