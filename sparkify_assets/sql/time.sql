-- time: one row per distinct songplays.start_time. week is the ISO week; weekday counts from
-- 0 = Sunday to 6 = Saturday, as Redshift's DOW (and DuckDB's and PostgreSQL's dow).
-- {partition_filter} is a condition on the songplays rows whose start_time is computed, filled in
-- by the asset: the start_times time lacks, so a day's run computes its new plays' fields only.
SELECT
    start_time,
    CAST(EXTRACT(hour FROM start_time) AS INTEGER) AS hour,
    CAST(EXTRACT(day FROM start_time) AS INTEGER) AS day,
    CAST(EXTRACT(week FROM start_time) AS INTEGER) AS week,
    CAST(EXTRACT(month FROM start_time) AS INTEGER) AS month,
    CAST(EXTRACT(year FROM start_time) AS INTEGER) AS year,
    CAST(EXTRACT(dow FROM start_time) AS INTEGER) AS weekday
FROM (SELECT DISTINCT start_time FROM songplays WHERE {partition_filter}) t
