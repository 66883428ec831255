-- analytics_top_songs: the 10 most played songs, as listeners played them.
-- A song is the (title, artist name) pair of the NextSong events, not the catalog match: on the
-- sample only 1 play of 6,820 matches the catalog, so ranking catalog songs would say nothing.
-- Ties: more distinct listeners first, then title, then artist name in the warehouse's string
-- order (byte order on DuckDB, Redshift and PostgreSQL databases with the C collation).
SELECT song_rank, title, artist_name, plays, listeners
FROM (
    SELECT
        CAST(ROW_NUMBER() OVER (ORDER BY plays DESC, listeners DESC, title, artist_name) AS INTEGER) AS song_rank,
        title, artist_name, plays, listeners
    FROM (
        SELECT song AS title, artist AS artist_name, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS listeners
        FROM staging_events
        WHERE page = 'NextSong'
        GROUP BY song, artist
    ) per_song
) ranked
WHERE song_rank <= 10
