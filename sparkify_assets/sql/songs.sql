-- songs: one row per song_id; a year of 0 means unknown and becomes NULL.
-- A song_id present in several files keeps the row of the first file by key, then line; where
-- those are unknown (Redshift stages one key for the whole prefix and no lines), the row whose
-- values come first, so reruns stay identical.
SELECT song_id, title, artist_id, NULLIF(year, 0) AS year, duration
FROM (
    SELECT
        song_id, title, artist_id, year, duration,
        ROW_NUMBER() OVER (
            PARTITION BY song_id
            ORDER BY source_key, source_line NULLS LAST,
                title NULLS LAST, artist_id NULLS LAST, year NULLS LAST, duration NULLS LAST
        ) AS pick
    FROM staging_songs
) s
WHERE pick = 1
